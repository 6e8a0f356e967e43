"""Report generation time for a store of ~200 runs (9 studies x (1 parent + 18 trials + 3 finals)),
written directly with MLflow's client and Optuna's `create_trial` (no training), and a check that
writing the report imports neither Lightning nor torch."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from mlflow.entities import Metric
from optuna.distributions import FloatDistribution

from bench import tracking
from bench.cells import group

# Lazy imports: the heavy libraries and suite modules a measurement needs are imported inside the
# functions that use them, after the environment (cache, threads) is set up.


def fill_store(work: Path) -> int:
    """A study per classic cell and variant of copy-memory, with synthetic runs; returns the run count."""
    random.seed(0)
    storage_url = f"sqlite:///{work / 'optuna.db'}"
    client = tracking.client()
    experiment = tracking.ensure_experiment("copy-memory")
    count = 0
    for variant in ("simple", "stacked", "bidirectional"):
        for cell in group("classic"):
            count += fill_study(client, experiment, storage_url, variant, cell)
    return count


def fill_study(client, experiment: str, storage_url: str, variant: str, cell: str) -> int:
    """One study's parent run, 18 trials (also in its Optuna study) and 3 finals; returns the run count."""
    name = f"copy-memory:cpu:{variant}:{cell}"
    common = {"task": "copy-memory", "variant": variant, "cell": cell, "profile": "cpu", "optuna_study": name}
    parent = client.create_run(experiment, tags={**common, "stage": "study", "optuna_storage": storage_url})
    tracking.log_params(
        parent.info.run_id,
        {"trials": 18, "max_epochs": 10, "pruner": "median", "sampler_seed": 0, "final_seeds": [0, 1, 2], "T": 10},
    )
    study = optuna.create_study(study_name=name, storage=storage_url)
    runs = [("trial", n) for n in range(18)] + [("final", s) for s in range(3)]
    for stage, number in runs:
        lr = 10 ** random.uniform(-3, -1.5)
        tags = {**common, "stage": stage, "state": "complete", "optuna_trial": number, "seed": number}
        tags |= {"mlflow.parentRunId": parent.info.run_id, "hardware": "synthetic", "git_commit": "bench"}
        best = add_run(client, experiment, tags, lr)
        if stage == "trial":
            distributions = {"lr": FloatDistribution(1e-3, 0.1, log=True)}
            study.add_trial(optuna.trial.create_trial(params={"lr": lr}, distributions=distributions, value=best))
    tracking.close_run(parent.info.run_id, "FINISHED", "complete")
    return len(runs) + 1


def add_run(client, experiment: str, tags: dict, lr: float) -> float:
    """A finished run with a made-up validation curve; returns its best validation loss."""
    run = client.create_run(experiment, tags=tags)
    losses = [0.69 * (0.9**epoch) * random.uniform(0.9, 1.1) for epoch in range(10)]
    tracking.log_params(run.info.run_id, {"lr": lr, "hidden": random.choice([32, 64]), "T": 10})
    client.log_batch(run.info.run_id, metrics=[Metric("val/loss", v, 0, e) for e, v in enumerate(losses)])
    tracking.log_metrics(
        run.info.run_id,
        {
            "val/loss_best": min(losses),
            "test/loss": min(losses) * 1.02,
            "test/recall_acc": 0.5,
            "baseline/loss": 0.693,
            "params/count": 20000,
            "time/seconds_per_epoch": 1.0,
        },
    )
    tracking.close_run(run.info.run_id, "FINISHED", "complete")
    return min(losses)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ.update(MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}", RNNBENCH_ARTIFACTS=str(work / "a"))
        runs = fill_store(work)
        command = [
            sys.executable,
            "-c",
            "import sys; from bench.cli import main; code = main(sys.argv[1:]); "
            "heavy = [m for m in ('lightning', 'torch') if m in sys.modules]; "
            "print('heavy modules imported:', heavy or 'none'); sys.exit(code)",
            "report",
            "--task",
            "copy-memory",
            "--out",
            str(work / "reports"),
        ]
        times = []
        for _ in range(3):
            start = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            times.append(time.perf_counter() - start)
        print(result.stdout.strip().splitlines()[-1])
        print(
            f"report for {runs} runs: {min(times):.2f} s best of 3 ({', '.join(f'{t:.2f}' for t in times)}), "
            f"whole command incl. interpreter start and imports (goal < 10 s)"
        )


if __name__ == "__main__":
    main()
