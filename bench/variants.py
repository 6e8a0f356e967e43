"""Variants: a variant is a named preset of the one configurable network, not a class (cells: bench/cells)."""

from __future__ import annotations

from typing import Any

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

VARIANT_HELP = {
    "simple": "one recurrent layer",
    "stacked": "num layers >= 2 (default 2), dropout between layers",
    "bidirectional": "both directions, outputs concatenated",
    "embedding-pretrained": "embedding initialised from a word-vectors file, frozen or fine-tuned",
}


def apply_variant(name: str) -> dict[str, Any]:
    """The preset values of variant `name` (a copy, safe to modify)."""
    return dict(VARIANTS[name])
