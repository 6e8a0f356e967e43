"""Every cell x variant builds and trains a step on every task's shapes; parameter counts."""

import pytest
import torch

from bench.cells import CELLS, group
from bench.config import resolve_config
from bench.errors import UserError
from bench.models import NetConfig, RecurrentNet, count_parameters, textbook_rnn_parameters
from bench.registry import all_tasks, get_task
from bench.train import build_network
from bench.variants import VARIANTS
from tests.task_fixtures import sample_batch, tiny_overrides


@pytest.fixture
def symbol_vectors(tmp_path):
    """A GloVe-format file covering copy-memory's symbols 0..8 (9 is missing on purpose)."""
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"{i} " + " ".join(f"{(i + j) / 10:.2f}" for j in range(8)) + "\n" for i in range(9)))
    return path


def tiny_data(task, config):
    return task.load_data(config.task_settings, 0)


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    """Each task's tiny overrides and data, made once per task: they do not depend on the cell or variant."""
    cache = {}

    def overrides_and_data(task):
        if task.name not in cache:
            overrides = {"hidden": 8, "embedding_size": 8, **tiny_overrides(task, tmp_path_factory.mktemp(task.name))}
            cache[task.name] = overrides, tiny_data(task, resolve_config(task.name, "simple", "lstm", overrides))
        return cache[task.name]

    return overrides_and_data


def pairwise_cases() -> list[tuple[str, str, str]]:
    """Every task x variant, every task x cell and every variant x cell at least once: task i runs
    max(variants, cells) cases, the k-th with variant k mod the number of variants and cell (i + k) mod
    the number of cells (as many cases as the larger registry, so that more cells than variants still
    meet every task). The full product of the classic cells runs in the slow suite."""
    variants, cells = sorted(VARIANTS), list(CELLS)
    return [
        (task, variants[k % len(variants)], cells[(i + k) % len(cells)])
        for i, task in enumerate(sorted(all_tasks()))
        for k in range(max(len(variants), len(cells)))
    ]


def full_product() -> list:
    covered = set(pairwise_cases())
    return [
        pytest.param(task, variant, cell, marks=pytest.mark.slow)
        for task in sorted(all_tasks())
        for variant in sorted(VARIANTS)
        for cell in group("classic")
        if (task, variant, cell) not in covered
    ]


def test_the_fast_cases_cover_every_pair():
    cases = pairwise_cases()
    for pick in ((0, 1), (0, 2), (1, 2)):
        pairs = {(case[pick[0]], case[pick[1]]) for case in cases}
        names = [sorted(all_tasks()), sorted(VARIANTS), list(CELLS)]
        assert len(pairs) == len(names[pick[0]]) * len(names[pick[1]])


@pytest.mark.parametrize("task_name,variant,cell", pairwise_cases() + full_product())
def test_every_cell_and_variant_runs_forward_and_backward(task_name, cell, variant, symbol_vectors, tiny_task):
    task = get_task(task_name)
    overrides, data = tiny_task(task)
    overrides = dict(overrides)
    if variant == "embedding-pretrained":
        overrides["embedding_vectors"] = str(symbol_vectors)
    if variant == "embedding-pretrained" and task.input_kind != "tokens":
        config = resolve_config(task_name, variant, cell, overrides)
        with pytest.raises(UserError, match="no token vocabulary"):
            build_network(task, config, data)
        return
    config = resolve_config(task_name, variant, cell, overrides)
    net = build_network(task, config, data)
    inputs, lengths = sample_batch(task, data)
    outputs = net(inputs, lengths)
    if task.output_kind == "per-step":
        assert outputs.shape == (3, inputs.shape[1], data.output_size)
    else:
        classes = data.output_size
        assert outputs.shape == ((3,) if classes == 1 else (3, classes))
    outputs.float().pow(2).mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("hidden,input_size", [(1, 1), (8, 3), (64, 16), (100, 50)])
def test_simple_rnn_has_the_textbook_parameter_count(hidden, input_size):
    net = RecurrentNet(
        NetConfig(
            input_kind="floats",
            input_size=2,
            output_size=1,
            output_kind="per-sequence",
            cell="rnn",
            hidden=hidden,
            embedding_size=input_size,
        )
    )
    assert (
        count_parameters(net.recurrent)
        == textbook_rnn_parameters(hidden, input_size)
        == hidden * (hidden + input_size) + hidden
    )


def test_single_bias_is_fixed_at_zero_and_not_trained():
    net = RecurrentNet(
        NetConfig(input_kind="floats", input_size=2, output_size=1, output_kind="per-sequence", cell="rnn")
    )
    assert not net.recurrent.bias_hh_l0.requires_grad and net.recurrent.bias_hh_l0.abs().sum() == 0
    torch_counts = sum(p.numel() for p in net.recurrent.parameters())
    assert torch_counts - count_parameters(net.recurrent) == net.recurrent.hidden_size  # the unused b_hh


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear"])
def test_simple_rnn_computes_the_textbook_recurrence(activation):
    """h_t = act(A·[h_{t-1}; x_t] + b), checked against a hand-written loop."""
    torch.manual_seed(0)
    net = RecurrentNet(
        NetConfig(
            input_kind="floats",
            input_size=3,
            output_size=1,
            output_kind="per-step",
            cell="rnn",
            activation=activation,
            hidden=5,
            embedding_size=3,
        )
    )
    x = torch.randn(2, 7, 3)
    outputs, _ = net.recurrent(x)
    act = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda v: v}[activation]
    if activation == "linear":
        A, b = net.recurrent.layers[0].cell.weight, net.recurrent.layers[0].cell.bias  # A acts on [h; x]
        hx = lambda h, xt: torch.cat([h, xt], -1) @ A.T + b  # noqa: E731
    else:
        r = net.recurrent
        hx = lambda h, xt: h @ r.weight_hh_l0.T + xt @ r.weight_ih_l0.T + r.bias_ih_l0  # noqa: E731
    h = torch.zeros(2, 5)
    for t in range(7):
        h = act(hx(h, x[:, t]))
        torch.testing.assert_close(outputs[:, t], h, rtol=1e-5, atol=1e-6)


def test_linear_rnn_has_the_textbook_parameter_count():
    net = RecurrentNet(
        NetConfig(
            input_kind="floats",
            input_size=2,
            output_size=1,
            output_kind="per-sequence",
            cell="rnn",
            activation="linear",
            hidden=6,
            embedding_size=4,
        )
    )
    assert count_parameters(net.recurrent) == textbook_rnn_parameters(6, 4)


def test_bidirectional_sequence_head_reads_both_directions_final_states():
    torch.manual_seed(0)
    net = RecurrentNet(
        NetConfig(
            input_kind="floats",
            input_size=2,
            output_size=1,
            output_kind="per-sequence",
            cell="gru",
            bidirectional=True,
            layers=2,
            hidden=4,
            embedding_size=3,
        )
    )
    x = torch.randn(2, 6, 2)
    outputs, _ = net.recurrent(net.encoder(x))
    forward_last, backward_first = outputs[:, -1, :4], outputs[:, 0, 4:]
    expected = net.head(torch.cat([forward_last, backward_first], dim=-1)).squeeze(-1)
    torch.testing.assert_close(net(x), expected)


def test_pretrained_embedding_rows_come_from_the_vectors_file(symbol_vectors):
    task = get_task("copy-memory")
    config = resolve_config(
        "copy-memory",
        "embedding-pretrained",
        "gru",
        {"embedding_vectors": str(symbol_vectors), "embedding_size": 8, "n_train": 8, "n_val": 4, "n_test": 4},
    )
    data = tiny_data(task, config)
    net = build_network(task, config, data)
    assert net.embedding_coverage["embedding/coverage"] == pytest.approx(0.9)
    torch.testing.assert_close(net.encoder.weight[3], torch.tensor([(3 + j) / 10 for j in range(8)]))
    assert not net.encoder.weight.requires_grad  # frozen by default
    tuned = build_network(
        task,
        resolve_config(
            "copy-memory",
            "embedding-pretrained",
            "gru",
            {"embedding_vectors": str(symbol_vectors), "embedding_size": 8, "freeze_embedding": "false"},
        ),
        data,
    )
    assert tuned.encoder.weight.requires_grad


def test_vectors_dimension_mismatch_is_a_user_error(symbol_vectors):
    config = resolve_config("copy-memory", "embedding-pretrained", "lstm", {"embedding_vectors": str(symbol_vectors)})
    with pytest.raises(UserError, match="set embedding_size=8"):
        build_network(get_task("copy-memory"), config, tiny_data(get_task("copy-memory"), config))
