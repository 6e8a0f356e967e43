"""The cell registry: each entry's parameter formula against the built network, groups, the generic
stack of our own layers (directions, depth, padded batches, stepping), the gradient probe on every cell,
and IndRNN (Li et al. 2018): its recurrence, gradients, variants and sweep/horizon files."""

import subprocess
import sys

import pytest
import torch

from bench.cells import CELLS, DEFAULT_GROUP, GROUPS, expand, group, network_parameters, reference_cell
from bench.models import NetConfig, RecurrentNet, count_parameters, recurrent_stack

OWN_CELLS = [name for name, cell in CELLS.items() if not cell.torch_layer]


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (1, True), (2, True)])
def test_parameter_formula_matches_the_built_stack(cell, layers, bidirectional):
    stack = recurrent_stack(cell, 5, 7, layers, bidirectional, dropout=0.0)
    assert count_parameters(stack) == network_parameters(cell, 5, 7, layers, 2 if bidirectional else 1)


def test_the_reference_cell_is_the_one_simple_rnn_and_has_the_textbook_count():
    assert [name for name, cell in CELLS.items() if cell.simple_rnn] == [reference_cell()]
    assert (
        CELLS[reference_cell()].parameters(4, 6) == 6 * (6 + 4) + 6 and CELLS[reference_cell()].formula == "h·(h+x) + h"
    )


def test_groups_expand_to_cells_in_registry_order_each_once():
    assert expand(["all"]) == list(CELLS)
    assert expand(["reference", "classic"]) == group("classic")
    assert set(group("gated")) <= set(group("classic")) and reference_cell() not in group("gated")
    assert "indrnn" not in expand([DEFAULT_GROUP])  # a new cell does not grow the default grids
    assert set(GROUPS) >= {"all", "classic", "gated", "reference"}
    with pytest.raises(KeyError):
        expand(["nosuch"])


def test_the_registry_imports_no_torch():
    code = "import sys, bench.cells, bench.variants; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("cell", OWN_CELLS)
def test_a_padded_batch_gives_each_sequence_what_it_gives_alone(cell):
    """Both directions, two layers: padding changes neither the valid outputs nor the final states."""
    torch.manual_seed(0)
    stack = recurrent_stack(cell, 3, 4, layers=2, bidirectional=True, dropout=0.0).double()
    x, lengths = torch.randn(2, 6, 3, dtype=torch.float64), torch.tensor([6, 4])
    outputs, final = stack(x, lengths=lengths)
    final = final[0] if isinstance(final, tuple) else final
    for row, length in enumerate(lengths.tolist()):
        alone, alone_final = stack(x[row : row + 1, :length])
        alone_final = alone_final[0] if isinstance(alone_final, tuple) else alone_final
        torch.testing.assert_close(outputs[row : row + 1, :length], alone)
        torch.testing.assert_close(final[:, row : row + 1], alone_final)


@pytest.mark.parametrize("cell", OWN_CELLS)
def test_stepping_with_the_returned_state_equals_the_whole_sequence(cell):
    torch.manual_seed(0)
    stack = recurrent_stack(cell, 3, 4, layers=2, bidirectional=False, dropout=0.0).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    whole, whole_final = stack(x)
    state, steps = None, []
    for t in range(5):
        out, state = stack(x[:, t : t + 1], state)
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole)
    torch.testing.assert_close(state, whole_final)


def test_indrnn_computes_its_recurrence_with_bounded_recurrent_weights():
    torch.manual_seed(0)
    stack = recurrent_stack("indrnn", 3, 4, layers=1, bidirectional=False, dropout=0.0)
    layer = stack.layers[0]
    with torch.no_grad():
        layer.recurrent_weight.copy_(torch.tensor([0.5, -2.0, 3.0, 1.0]))  # beyond the bound: clamped to ±1
    x = torch.randn(2, 6, 3)
    outputs, _ = stack(x)
    u, h = torch.tensor([0.5, -1.0, 1.0, 1.0]), torch.zeros(2, 4)
    for t in range(6):
        h = torch.relu(x[:, t] @ layer.input.weight.T + layer.input.bias + u * h)
        torch.testing.assert_close(outputs[:, t], h)
    assert 0 <= CELLS["indrnn"].parameters(3, 4) == 4 * 3 + 4 + 4


def test_indrnn_gradients_match_finite_differences():
    torch.manual_seed(0)
    stack = recurrent_stack("indrnn", 2, 3, layers=2, bidirectional=True, dropout=0.0).double()
    with torch.no_grad():  # keep every unit away from ReLU's kink, where finite differences are undefined
        for layer in stack.layers:
            layer.input.bias.fill_(1.0)
    x = torch.rand(2, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inputs: stack(inputs)[0], (x,))


@pytest.mark.parametrize("variant", ["simple", "stacked", "bidirectional"])
def test_indrnn_trains_in_every_variant(variant):
    from bench.config import resolve_config

    config = resolve_config("adding", variant, "indrnn", {"T": 6, "hidden": 8, "embedding_size": 4})
    net = RecurrentNet(
        NetConfig(
            input_kind="floats",
            input_size=2,
            output_size=1,
            output_kind="per-sequence",
            cell=config.cell,
            layers=config.layers,
            bidirectional=config.bidirectional,
            hidden=config.hidden,
            embedding_size=config.embedding_size,
        )
    )
    x, y = torch.randn(16, 6, 2), torch.randn(16)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("cell", list(CELLS))
def test_the_gradient_probe_runs_on_every_cell(cell):
    from bench.diagnostics import gradient_probe

    torch.manual_seed(0)
    net = RecurrentNet(
        NetConfig(
            input_kind="floats",
            input_size=2,
            output_size=3,
            output_kind="per-step",
            cell=cell,
            hidden=4,
            embedding_size=3,
        )
    ).double()
    inputs, targets = torch.randn(2, 5, 2, dtype=torch.float64), torch.randint(0, 3, (2, 5))
    loss = lambda logits, y: torch.nn.functional.cross_entropy(logits.reshape(-1, 3), y.reshape(-1))  # noqa: E731
    probe = gradient_probe(net, inputs, targets, loss)
    assert probe["distance"] == [4, 3, 2, 1, 0]
    for column in ("dL_dh", "dL_dx", "dhT_dx"):
        assert len(probe[column]) == 5 and all(v >= 0 for v in probe[column])
    assert probe["dL_dh"][-1] > 0 and probe["dhT_dx"][-1] > 0


def test_sweep_and_horizon_files_can_name_indrnn(tmp_path):
    from bench.horizon_spec import load_horizon
    from bench.sweep_config import load_sweep
    from tests.sweep_helpers import write_sweep
    from tests.test_horizon import write_horizon

    path = write_sweep(tmp_path / "s.yaml", cells=["reference", "indrnn"])
    assert [s.cell for s in load_sweep("adding", "test", path).studies] == ["rnn", "indrnn"]
    path = write_horizon(tmp_path / "h.yaml", cells=["indrnn"], ablation={})
    assert [a.label for a in load_horizon("copy-memory", "test", path).arms] == ["simple/indrnn"]


def test_the_docs_cells_table_lists_every_cell_as_the_registry_has_it():
    from bench.paths import ROOT

    page = (ROOT / "docs" / "tasks.md").read_text()
    for cell in CELLS.values():
        row = f"| `{cell.name}` | {cell.recurrence} | {cell.citation} | {cell.formula} | {', '.join(cell.groups) or '–'} |"
        assert row in page
