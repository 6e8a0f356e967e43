"""The recurrent cells: everything the suite needs to know about a cell is its one `Cell` entry here.

No torch import: configs, sweep files, listings and reports read this registry without loading torch.
Adding a cell = one entry in `CELLS` (a torch layer, or one layer class of ours in `bench/cells/<name>.py`
that `Stack` runs stacked and bidirectional) + its test in tests/test_cells.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    name: str
    recurrence: str  # the update, one line (`make list`, README)
    citation: str
    # "torch.nn:LSTM": a torch layer (packed sequences, cuDNN on GPU, returns (outputs, h_n or (h_n, c_n)));
    # "bench.cells.indrnn:IndRNN": one layer, one direction of ours, run by bench.cells.stack.Stack
    layer: str
    # trainable parameters of one layer in one direction, in x (input size) and h (hidden size), as the
    # README shows it; tests check it against the built module, the memory check uses it before building
    formula: str
    simple_rnn: bool = False  # the reference simple RNN: takes activation= and init= (the ablation), claims 1, 2, 7
    groups: tuple[str, ...] = ()  # names sweep and horizon files may use instead of listing cells ("all" is implicit)

    @property
    def torch_layer(self) -> bool:
        return self.layer.startswith("torch.nn:")

    def parameters(self, x: int, h: int) -> int:
        return int(eval(self.formula.replace("·", "*"), {"__builtins__": {}}, {"x": x, "h": h}))


CELLS: dict[str, Cell] = {
    "rnn": Cell(
        "rnn",
        "h_t = tanh(A·[h_{t-1}; x_t] + b)",
        "Elman 1990",
        "torch.nn:RNN",
        "h·(h+x) + h",  # one bias: torch's second one is fixed at 0 (models.single_bias)
        simple_rnn=True,
        groups=("classic", "reference"),
    ),
    "lstm": Cell(
        "lstm",
        "c_t = f⊙c_{t-1} + i⊙tanh(W·[h_{t-1}; x_t] + b), h_t = o⊙tanh(c_t)",
        "Hochreiter & Schmidhuber 1997",
        "torch.nn:LSTM",
        "4·(h·(h+x) + 2·h)",  # torch's two bias vectors per gate
        groups=("classic", "gated"),
    ),
    "gru": Cell(
        "gru",
        "h_t = (1-z)⊙h_{t-1} + z⊙tanh(W·[r⊙h_{t-1}; x_t] + b)",
        "Cho et al. 2014",
        "torch.nn:GRU",
        "3·(h·(h+x) + 2·h)",
        groups=("classic", "gated"),
    ),
    "indrnn": Cell(
        "indrnn",
        "h_t = relu(W·x_t + u⊙h_{t-1} + b), |u| <= 1",
        "Li et al. 2018",
        "bench.cells.indrnn:IndRNN",
        "h·x + 2·h",
    ),
    # Linear in the state, so they run in parallel over time (bench/cells/scan.py); g(v) = v + 0.5 for
    # v >= 0, σ(v) below (Feng et al.'s activation, positive). Gates read the input only.
    "mingru": Cell(
        "mingru",
        "h_t = (1-z_t)⊙h_{t-1} + z_t⊙g(W_h·x_t + b_h), z_t = σ(W_z·x_t + b_z)",
        "Feng et al. 2024",
        "bench.cells.mingru:MinGRU",
        "2·h·(x+1)",
        groups=("modern",),
    ),
    "minlstm": Cell(
        "minlstm",
        "h_t = f_t/(f_t+i_t)⊙h_{t-1} + i_t/(f_t+i_t)⊙g(W_h·x_t + b_h), f_t, i_t = σ(W·x_t + b)",
        "Feng et al. 2024",
        "bench.cells.minlstm:MinLSTM",
        "3·h·(x+1)",
        groups=("modern",),
    ),
    "lru": Cell(  # N = h complex state units; B, C complex; D real h x x (bench/cells/lru.py)
        "lru",
        "x_t = λ⊙x_{t-1} + γ⊙(B·u_t), y_t = Re(C·x_t) + D·u_t, λ = exp(-exp(ν) + i·exp(θ))",
        "Orvieto et al. 2023",
        "bench.cells.lru:LRU",
        "3·h·x + 2·h·h + 3·h",
        groups=("modern",),
    ),
}
DEFAULT_CELL = "lstm"  # what `make train` uses when CELL is not given
GROUPS = ("all", *dict.fromkeys(group for cell in CELLS.values() for group in cell.groups))
DEFAULT_GROUP = "classic"  # sweep and horizon files that name no cells: the material's three
ACTIVATIONS = ("tanh", "relu", "linear")  # of the simple RNN
INITS = ("default", "identity")  # recurrent weights of the simple RNN
CELL_ORDER = {name: index for index, name in enumerate(CELLS)}  # rows of reports and tables


def reference_cell() -> str:
    """The simple RNN the claims are about."""
    return next(name for name, cell in CELLS.items() if cell.simple_rnn)


def group(name: str) -> list[str]:
    """The cells of a group, in registry order."""
    return [cell for cell, spec in CELLS.items() if name == "all" or name in spec.groups]


def expand(names: list[str]) -> list[str]:
    """Cell and group names -> cell names, each once, in the order given (KeyError on an unknown name)."""
    cells: list[str] = []
    for name in names:
        if name in CELLS:
            members = [name]
        elif name in GROUPS:
            members = group(name)
        else:
            raise KeyError(name)
        cells += [cell for cell in members if cell not in cells]
    return cells


def network_parameters(cell: str, input_size: int, hidden: int, layers: int, directions: int) -> int:
    """The recurrent stack's trainable parameters: layer 1 reads the input, later ones both directions."""
    count = CELLS[cell].parameters
    return directions * (count(input_size, hidden) + (layers - 1) * count(directions * hidden, hidden))
