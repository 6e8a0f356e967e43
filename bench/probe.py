"""The gradient-decay probe as a run artifact: CSV + PNG of dL/dh_t, dL/dx_t and dh_T/dx_t by distance
from the end of the sequence, for the trained network (best-validation weights) and the same network
at initialisation, plus summary metrics (far / near ratios) that reports can compare without files."""

from __future__ import annotations

import copy
import csv
import math
import tempfile
from pathlib import Path

from bench import tracking
from bench.diagnostics import gradient_probe
from bench.run_keys import Metric

PROBE_ROWS = 32  # validation sequences the probe averages over
COLUMNS = {"dL_dh": "‖dL/dh_t‖", "dL_dx": "‖dL/dx_t‖", "dhT_dx": "‖dh_T/dx_t‖"}


def probe_batch(datamodule) -> dict | None:
    """The first validation batch, cut to PROBE_ROWS; None for padded (variable-length) batches."""
    batch = next(iter(datamodule._loader("validation", shuffle=False)))
    if "lengths" in batch:
        return None
    return {k: v[:PROBE_ROWS] for k, v in batch.items()}


def run_probe(trained_net, initial_state: dict, batch: dict, loss_fn) -> dict[str, dict[str, list[float]]]:
    untrained = copy.deepcopy(trained_net)
    untrained.load_state_dict(initial_state)
    device = next(trained_net.parameters()).device
    inputs, targets = batch["inputs"].to(device), batch["targets"].to(device)
    return {
        which: gradient_probe(net, inputs, targets, loss_fn)
        for which, net in (("trained", trained_net), ("untrained", untrained))
    }


def summary_metrics(results: dict[str, dict[str, list[float]]]) -> dict[str, float]:
    """probe/<column>_<trained|untrained>_far_over_near: the norm at the first step over the norm at
    the last one (how much of the signal survives the whole sequence)."""
    metrics = {}
    for which, columns in results.items():
        for column in COLUMNS:
            values = columns[column]
            near, far = values[-1], values[0]  # rows run from the first step (largest distance) to the last
            if math.isfinite(near) and math.isfinite(far) and near > 0:
                metrics[f"{Metric.PROBE_PREFIX}{column}_{which}_far_over_near"] = far / near
    return metrics


def flat_columns(results: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    """{"distance": [...], "<column>_<trained|untrained>": [...]}: the CSV's columns, and what `plots.probe_artifact` reads."""
    columns = {"distance": next(iter(results.values()))["distance"]}
    columns.update({f"{column}_{which}": values[column] for which, values in results.items() for column in COLUMNS})
    return columns


def write_csv(columns: dict[str, list[float]], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values()))


def log_probe(run_id: str, trained_net, initial_state: dict, datamodule, loss_fn, title: str) -> None:
    batch = probe_batch(datamodule)
    if batch is None:
        return
    results = run_probe(trained_net, initial_state, batch, loss_fn)
    tracking.log_metrics(run_id, summary_metrics(results))
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, png_path = Path(tmp) / "gradient_probe.csv", Path(tmp) / "gradient_probe.png"
        columns = flat_columns(results)
        write_csv(columns, csv_path)
        from bench import plots  # matplotlib: only once a run has a probe to draw

        plots.probe_artifact(columns, COLUMNS, title, png_path)
        client = tracking.client()
        client.log_artifact(run_id, str(csv_path), "probe")
        client.log_artifact(run_id, str(png_path), "probe")


def initial_state(net) -> dict:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}
