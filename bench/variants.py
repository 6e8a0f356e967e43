"""Cells and variants. A variant is a named preset of the one configurable network, not a class."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CellSpec:
    """A recurrent cell: the torch.nn layer that implements it (cuDNN on GPU) and its extra arguments."""

    layer: str  # torch.nn.RNN | LSTM | GRU, by name (this module imports no torch)
    options: dict[str, Any] = field(default_factory=dict)  # extra constructor arguments of the layer
    simple: bool = False  # the Elman RNN: takes activation= and init= (the activation ablation)
    gated: bool = False  # what claim 1 compares the simple RNN against


# Adding a cell is one entry here (and a test): configs, models, sweeps, reports and verdicts read it.
CELL_SPECS: dict[str, CellSpec] = {
    "rnn": CellSpec("RNN", simple=True),
    "lstm": CellSpec("LSTM", gated=True),
    "gru": CellSpec("GRU", gated=True),
}
CELLS = tuple(CELL_SPECS)
ACTIVATIONS = ("tanh", "relu", "linear")
INITS = ("default", "identity")  # recurrent weights of the simple RNN

# Each preset sets only the knobs that define the variant; every other knob stays overridable,
# so e.g. a stacked bidirectional GRU is VARIANT=stacked CELL=gru bidirectional=true.
VARIANTS: dict[str, dict[str, Any]] = {
    "simple": {"layers": 1, "bidirectional": False},
    "stacked": {"layers": 2, "bidirectional": False},
    "bidirectional": {"layers": 1, "bidirectional": True},
    "embedding-pretrained": {"layers": 1, "bidirectional": False, "freeze_embedding": True},
}

# The order of rows in reports and tables (unknown names last).
VARIANT_ORDER = {"simple": 0, "stacked": 1, "bidirectional": 2, "embedding-pretrained": 3}
CELL_ORDER = {name: index for index, name in enumerate(CELLS)}

VARIANT_HELP = {
    "simple": "one recurrent layer",
    "stacked": "num layers >= 2 (default 2), dropout between layers",
    "bidirectional": "both directions, outputs concatenated",
    "embedding-pretrained": "embedding initialised from a word-vectors file, frozen or fine-tuned",
}


def apply_variant(name: str) -> dict[str, Any]:
    """The preset values of variant `name` (a copy, safe to modify)."""
    return dict(VARIANTS[name])
