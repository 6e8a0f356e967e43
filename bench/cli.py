"""Command line: `python -m bench <command>`. Imports torch/Lightning only for commands that train.

Every import inside a command function below is there for start-up speed: `--help`, `list` and
`report` must not pay for torch, Lightning, Optuna or MLflow they do not use."""
from __future__ import annotations

import argparse
import os
import sys

from bench import interrupts
from bench.errors import UserError
from bench.variants import CELLS

TRAINING_COMMANDS = ("train", "pretrain-embeddings", "sweep", "horizon")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="rnnbench: benchmark recurrent networks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    commands.add_parser("list", help="list tasks, variants and cells")

    train = commands.add_parser("train", help="train one variant on one task, tracked in MLflow",
                                epilog="overrides: any knob as key=value, e.g. T=50 hidden=64 max_epochs=5 "
                                       "lr=3e-3 bidirectional=true; `python -m bench list` shows the knobs")
    train.add_argument("--task", required=True)
    train.add_argument("--variant", default="simple")
    train.add_argument("--cell", default=None, help=f"{' | '.join(CELLS)} (default: rnn)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.add_argument("overrides", nargs="*", metavar="key=value")

    pretrain = commands.add_parser("pretrain-embeddings", help="train a next-word LM and export its embeddings")
    pretrain.add_argument("--corpus", default="imdb", help="imdb | sst2 | rotten-tomatoes (hub), or corpus_file=...")
    pretrain.add_argument("--cell", default="lstm")
    pretrain.add_argument("--no-progress", action="store_true")
    pretrain.add_argument("overrides", nargs="*", metavar="key=value")

    sweep = commands.add_parser("sweep", help="run (or resume, or join) the Optuna sweep of a task")
    sweep.add_argument("--task", required=True)
    sweep.add_argument("--profile", default=None, help="cpu | gpu | smoke | ... (default: gpu if CUDA, else cpu)")
    sweep.add_argument("--storage", default=None, help="Optuna storage URL (default: $STORAGE or sweeps/optuna.db)")
    sweep.add_argument("--file", default=None, help="sweep file (default: sweeps/<task>.yaml)")
    sweep.add_argument("--no-progress", action="store_true")
    sweep.add_argument("overrides", nargs="*", metavar="key=value", help="added to the file's fixed knobs")

    horizon = commands.add_parser("horizon", help="memory horizon: train every variant x cell at each length T")
    horizon.add_argument("--task", required=True)
    horizon.add_argument("--profile", default=None, help="cpu | gpu | smoke (default: gpu if CUDA, else cpu)")
    horizon.add_argument("--file", default=None, help="horizon file (default: sweeps/horizon/<task>.yaml)")
    horizon.add_argument("--jobs", type=int, default=None, help="parallel training processes (default: the file's)")
    horizon.add_argument("--no-progress", action="store_true")

    report = commands.add_parser("report", help="write reports/<task>.md from MLflow (no --task: every task + index)")
    report.add_argument("--task", default=None)
    report.add_argument("--profile", default=None, help="default: the profile of the most recent sweep")
    report.add_argument("--storage", default=None, help="Optuna storage URL for importances (default: the sweep's)")
    report.add_argument("--out", default=None, help="output folder (default: reports/)")

    ui = commands.add_parser("ui", help="serve the MLflow UI for the results store on 127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    return parser


def overrides_of(args: argparse.Namespace) -> dict[str, str]:
    """key=value overrides from the command line, after those of `make ... ARGS="..."` (which arrive in
    RNNBENCH_ARGS, split like a shell would; a lone quote is kept as a character)."""
    import shlex

    from bench.config import parse_overrides

    text = os.environ.get("RNNBENCH_ARGS", "")
    try:
        from_make = shlex.split(text)
    except ValueError:
        from_make = text.split()
    return parse_overrides(from_make + list(args.overrides))


def command_list() -> None:
    from bench.config import GENERAL_KEYS, RunConfig
    from bench.registry import all_tasks
    from bench.variants import CELLS, VARIANT_HELP

    print("tasks:")
    for name, task in all_tasks().items():
        settings = " ".join(f"{k}={v}" for k, v in task.settings.items())
        print(f"  {name:<22} {task.description}\n  {'':<22} settings: {settings}")
    print("variants:")
    for name, text in VARIANT_HELP.items():
        print(f"  {name:<22} {text}")
    print(f"cells: {', '.join(CELLS)}")
    print("knobs (key=value): " + " ".join(f"{k}={getattr(RunConfig, k)}" for k in GENERAL_KEYS))


def command_train(args: argparse.Namespace) -> None:
    from bench.config import resolve_config

    config = resolve_config(args.task, args.variant, args.cell, overrides_of(args))
    check_stores()
    from bench.train import train  # heavy imports only once the input is known to be valid

    result = train(config, progress=not args.no_progress)
    metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(result.test_metrics.items()))
    print(f"run {result.run_id}: {metrics} (memoryless baseline loss {result.baseline:.4g}, "
          f"{result.param_count} parameters, {result.epochs} epochs)")


def command_pretrain(args: argparse.Namespace) -> None:
    from bench.config import resolve_config

    config = resolve_config("next-word", "simple", args.cell, {"corpus": args.corpus, **overrides_of(args)})
    check_stores()
    from bench.pretrain import corpus_label, pretrain_embeddings

    path, result = pretrain_embeddings(config, progress=not args.no_progress)
    print(f"run {result.run_id}: test perplexity {result.test_metrics.get('test/perplexity', float('nan')):.1f}")
    print(f"embeddings: {path} (by name, the latest run on this corpus: "
          f"embedding_vectors=lm:{corpus_label(config.task_settings)})\nuse them: make train TASK=sst2 "
          f"VARIANT=embedding-pretrained ARGS=\"embedding_vectors=lm:{corpus_label(config.task_settings)} "
          f"embedding_size={config.embedding_size}\"")


def command_sweep(args: argparse.Namespace) -> None:
    from pathlib import Path

    from bench.sweep_config import load_sweep

    spec = load_sweep(args.task, args.profile, Path(args.file) if args.file else None,
                      overrides_of(args))
    check_stores()
    from bench.sweep import format_summary, run_sweep  # optuna, torch: only once the file is valid

    rows = run_sweep(spec, args.storage, show_progress=not args.no_progress)
    print(f"\nsweep {spec.task} [{spec.profile}]: {len(spec.studies)} studies x {spec.trials} trials, "
          f"final seeds {spec.final_seeds}")
    from bench.registry import get_task

    print(format_summary(rows, f"test/{get_task(spec.task).report_metric}"))
    print("\nlook at the runs: make ui   |   write the report: make report TASK=" + spec.task)


def command_horizon(args: argparse.Namespace) -> None:
    from pathlib import Path

    from bench.horizon import run_horizon
    from bench.horizon_rule import collect, format_table
    from bench.horizon_spec import load_horizon
    from bench.registry import get_task
    from bench.results import horizon_runs

    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be >= 1")
    spec = load_horizon(args.task, args.profile, Path(args.file) if args.file else None)
    check_stores()
    counts = run_horizon(spec, args.jobs, show_progress=not args.no_progress)
    print(f"\nhorizon {spec.task} [{spec.profile}]: {len(spec.arms)} arms x {spec.axis} in {spec.values} x "
          f"{len(spec.seeds)} seeds; this call: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    task = get_task(spec.task)
    print("\n".join(format_table(task, collect(task, horizon_runs(spec.task, spec.profile, spec.fingerprint)), spec.margin)))
    print("\nwrite the report: make report TASK=" + spec.task)


def check_stores() -> None:
    """Before any heavy import or data loading: a store that cannot work fails in seconds, in one line."""
    from bench import tracking

    tracking.check_store(tracking.tracking_uri())


def command_report(args: argparse.Namespace) -> None:
    from pathlib import Path

    from bench.registry import all_tasks, get_task
    from bench.report import REPORTS, write_index, write_report  # matplotlib, mlflow: report only

    # An unreachable tracking server should fail in seconds, not after minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    out = Path(args.out) if args.out else REPORTS
    storage = args.storage or os.environ.get("STORAGE") or None
    if args.task:
        get_task(args.task)
        print(f"wrote {write_report(args.task, args.profile, out, storage)}")
    else:
        for task in all_tasks():
            try:
                print(f"wrote {write_report(task, args.profile, out, storage)}")
            except UserError as error:
                print(f"skipped {task}: {error}")
    print(f"wrote {write_index(out)}")


def command_ui(args: argparse.Namespace) -> None:
    from bench.tracking import tracking_uri

    uri = tracking_uri()
    print(f"MLflow UI for {uri} at http://127.0.0.1:{args.port} (Ctrl-C to stop)")
    os.execvp(sys.executable, [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                               "--host", "127.0.0.1", "--port", str(args.port)])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in TRAINING_COMMANDS:
        interrupts.install()
    try:
        if args.command == "list":
            command_list()
        elif args.command == "train":
            command_train(args)
        elif args.command == "pretrain-embeddings":
            command_pretrain(args)
        elif args.command == "sweep":
            command_sweep(args)
        elif args.command == "horizon":
            command_horizon(args)
        elif args.command == "report":
            command_report(args)
        elif args.command == "ui":
            command_ui(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, interrupts.Interrupted) as error:
        signum = error.signum if isinstance(error, interrupts.Interrupted) else 2
        name = "SIGINT" if signum == 2 else "SIGTERM"
        closed = close_open_runs(f"interrupted by {name}; run the same command to resume")
        print(f"interrupted by {name}: {closed} open MLflow run(s) closed as KILLED; run the same command to resume",
              file=sys.stderr)
        return 128 + signum
    return 0


def close_open_runs(reason: str) -> int:
    if "bench.tracking" not in sys.modules:  # nothing was opened (and mlflow stays unimported)
        return 0
    from bench import tracking

    return tracking.close_open_runs(reason)
