"""Command line: `python -m bench <command>`. Imports torch/Lightning only for commands that train.

Each command's parser (`add_<command>`) sits next to its handler (`command_<command>`), which `main` calls.
An import inside a function is there for start-up speed, with its reason: `--help`, `list` and a bad
argument must not pay for torch, Lightning, Optuna, MLflow, pydantic or numpy they do not use
(tests/test_cli.py and tests/test_bad_input.py check that they import none of the heaviest)."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from bench import console, interrupts, stores
from bench.cells import CELLS, DEFAULT_CELL, GROUPS
from bench.config import GENERAL_KEYS, RunConfig, parse_overrides, resolve_config, torch_threads
from bench.errors import RunFailed, UserError
from bench.registry import all_tasks, get_task
from bench.run_keys import Metric, Tag
from bench.variants import VARIANT_HELP

TRAINING_COMMANDS = ("train", "pretrain-embeddings", "sweep", "horizon", "claims")
# MLflow 3's UI opens in its GenAI view (traces, evaluations) unless a link asks for its model-training
# view (runs, metrics, datasets); a link without it falls back to the view last chosen in that browser.
TRAINING_VIEW = "workflowType=machine_learning"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="rnnbench: benchmark recurrent networks.")
    # -v on every command: Lightning's banners and tips, Optuna's and datasets' logs and bars come back.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show the libraries' own logs and bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add_command in (  # in --help's order; each sets its handler, which main() calls
        add_list,
        add_train,
        add_pretrain,
        add_sweep,
        add_horizon,
        add_claims,
        add_report,
        add_ui,
        add_dashboard,
    ):
        add_command(commands, common)
    return parser


def overrides_of(args: argparse.Namespace) -> dict[str, str]:
    """key=value overrides from the command line, after those of `make ... ARGS="..."` (which arrive in
    RNNBENCH_ARGS, split like a shell would; a lone quote is kept as a character)."""
    text = os.environ.get("RNNBENCH_ARGS", "")
    try:
        from_make = shlex.split(text)
    except ValueError:
        from_make = text.split()
    return parse_overrides(from_make + list(args.overrides))


def add_list(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    listing = commands.add_parser(
        "list", parents=[common], help="list tasks, variants and cells; with --task, the effective defaults of one task"
    )
    listing.add_argument("--task", default=None, help="show what `train --task TASK` would run by default")
    listing.set_defaults(handler=command_list)


def command_list(args: argparse.Namespace) -> None:
    if args.task:
        command_list_task(args.task)
        return

    print("tasks:")
    for name, task in all_tasks().items():
        settings = " ".join(f"{k}={v}" for k, v in task.settings.items())
        print(f"  {name:<22} {task.description}\n  {'':<22} settings: {settings}")
    print("variants:")
    for name, text in VARIANT_HELP.items():
        print(f"  {name:<22} {text}")
    print("cells:")
    for name, cell in CELLS.items():
        groups = f" [{', '.join(cell.groups)}]" if cell.groups else ""
        print(f"  {name:<22} {cell.recurrence} ({cell.citation}){groups}")
    print(f"  groups a sweep or horizon file may name: {', '.join(GROUPS)}")
    print("knobs (key=value), suite defaults: " + " ".join(f"{k}={getattr(RunConfig, k)}" for k in GENERAL_KEYS))
    print("a task may change some of them: `make list TASK=<task>` shows what it runs with by default")


def command_list_task(task_name: str) -> None:
    """What `make train TASK=<task>` runs with when given nothing else, and where each value comes from."""
    task = get_task(task_name)
    config = resolve_config(task.name)
    print(f"{task.name}: {task.description}")
    print(f'effective defaults of `make train TASK={task.name}` (override any with ARGS="key=value"):')
    print(console.config_block(config, console.config_origins(task, config.variant, None, {})))
    print(
        f"metric: test/{task.report_metric} ({'higher' if task.higher_is_better else 'lower'} is better), "
        f"monitored on {task.monitor} ({task.monitor_mode})"
    )


def add_train(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    train = commands.add_parser(
        "train",
        parents=[common],
        help="train one variant on one task, tracked in MLflow",
        epilog="overrides: any knob as key=value, e.g. T=50 hidden=64 max_epochs=5 "
        "lr=3e-3 bidirectional=true; `python -m bench list` shows the knobs",
    )
    train.add_argument("--task", required=True)
    train.add_argument("--variant", default="simple")
    train.add_argument("--cell", default=None, help=f"{' | '.join(CELLS)} (default: {RunConfig.cell})")
    train.add_argument("--no-progress", action="store_true", help="hide the progress line")
    train.add_argument("overrides", nargs="*", metavar="key=value")
    train.set_defaults(handler=command_train)


def command_train(args: argparse.Namespace) -> None:
    started = time.monotonic()
    overrides = overrides_of(args)
    config = resolve_config(args.task, args.variant, args.cell, overrides)
    check_data(config)
    check_stores()
    task = get_task(config.task)
    print(console.config_block(config, console.config_origins(task, args.variant, args.cell, overrides)))
    print(console.environment_line(), flush=True)
    from bench.train import cross_validate, train  # (lazy: torch, Lightning; only once the input is valid)

    if config.task_settings.get("folds") and config.task_settings.get("fold", -1) < 0:  # fold=k: k alone
        folds = config.task_settings["folds"]

        def fold_line(fold: int, result) -> None:  # as each fold ends, above the progress line
            console.say(f"fold {fold + 1}/{folds}: {final_line(task, result, result.seconds)}", sys.stdout)

        outcome = cross_validate(config, progress=not args.no_progress, on_fold_end=fold_line)
        print(cross_validation_line(task, outcome, time.monotonic() - started))
        return
    settings = config.task_settings
    one_fold = {Tag.FOLD: settings["fold"], Tag.FOLDS: settings["folds"]} if settings.get("folds") else None
    result = train(config, progress=not args.no_progress, tags=one_fold)
    print(final_line(task, result, time.monotonic() - started))


def check_data(config) -> None:
    """The task's cheap data checks (files, encoding, columns, labels, word vectors) and TORCH_THREADS,
    before the stores, torch and Lightning start: a data problem is one line in a fraction of a second."""
    torch_threads()
    if config.embedding_vectors and not config.vectors_file:
        from bench.embeddings import check_vectors_source  # (lazy: numpy)

        check_vectors_source(config.embedding_vectors)
    task = get_task(config.task)
    if task.check_data:
        task.check_data(config.data_settings())


def final_line(task, result, seconds: float) -> str:
    """The test metric against its baseline (majority-class accuracy for classification), the other
    test metrics, size, epochs, elapsed time and where to see the run."""
    metric = Metric.test(task.report_metric)
    value = result.test_metrics.get(metric)
    baseline = result.baselines.get(Metric.baseline(task.report_metric))
    if value is None:
        head = "no test metric"
    elif task.report_metric == "acc":
        head = f"{metric} {value:.4g}" + (
            f" vs {baseline:.4g} for always predicting the majority class ({ratio(value, baseline)}×)"
            if baseline
            else ""
        )
    else:
        head = f"{metric} {value:.4g}" + (
            f" = {ratio(value, baseline)}× the memoryless baseline {baseline:.4g}" if baseline else ""
        )
    others = ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.test_metrics.items()) if k != metric)
    return (
        f"{head}" + (f" ({others})" if others else "") + f" · {result.param_count:,} parameters, "
        f"{console.counted(result.epochs, 'epoch')}, {console.duration(seconds)} · {run_url(result.run_id)}"
    )


def cross_validation_line(task, outcome, seconds: float) -> str:
    """The mean ± sd over folds of the test metric first, then the other test metrics, then the baselines."""
    metric = Metric.test(task.report_metric)

    def order(key: str) -> tuple:
        return (key != metric, key.startswith(Metric.baseline("")), key)

    return (
        f"{len(outcome.folds)}-fold cross-validation, run {outcome.parent_run_id}: "
        + ", ".join(
            f"{key} {mean:.4g} ± {sd:.2g}"
            for key, (mean, sd) in sorted(outcome.summary.items(), key=lambda i: order(i[0]))
        )
        + f" (mean ± sd over folds), {console.duration(seconds)}"
    )


def ratio(value: float, baseline: float) -> str:
    """Two decimals, or two significant digits below 0.1 (0.003× is not 0.00×)."""
    share = value / baseline
    return f"{share:.2f}" if abs(share) >= 0.1 else f"{share:.2g}"


def run_url(run_id: str) -> str:
    """The run's page in the MLflow UI: the tracking server's, or `make ui`'s for a local store."""
    from bench.results import read_run  # (lazy: MLflow's client; loaded by the training that precedes)

    uri = stores.tracking_uri()
    base = (
        uri.rstrip("/")
        if uri.startswith(("http://", "https://"))
        else f"http://127.0.0.1:{os.environ.get('PORT', '5000')}"
    )
    experiment = read_run(run_id).experiment_id
    local = "" if uri.startswith(("http://", "https://")) else " (make ui)"
    return f"{base}/#/experiments/{experiment}/runs/{run_id}?{TRAINING_VIEW}{local}"


def add_pretrain(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    pretrain = commands.add_parser(
        "pretrain-embeddings", parents=[common], help="train a next-word LM and export its embeddings"
    )
    pretrain.add_argument("--corpus", default="imdb", help="imdb | sst2 | rotten-tomatoes (hub), or corpus_file=...")
    pretrain.add_argument("--cell", default=DEFAULT_CELL)
    pretrain.add_argument("--no-progress", action="store_true")
    pretrain.add_argument("overrides", nargs="*", metavar="key=value")
    pretrain.set_defaults(handler=command_pretrain)


def command_pretrain(args: argparse.Namespace) -> None:
    config = resolve_config("next-word", "simple", args.cell, {"corpus": args.corpus, **overrides_of(args)})
    check_data(config)
    check_stores()
    from bench.pretrain import corpus_label, pretrain_embeddings  # (lazy: torch, Lightning; once the input is valid)

    path, result = pretrain_embeddings(config, progress=not args.no_progress)
    print(
        f"run {result.run_id}: test perplexity {result.test_metrics.get(Metric.test('perplexity'), float('nan')):.1f}"
    )
    print(
        f"embeddings: {path} (by name, the latest run on this corpus: "
        f"embedding_vectors=lm:{corpus_label(config.task_settings)})\nuse them: make train TASK=sst2 "
        f'VARIANT=embedding-pretrained ARGS="embedding_vectors=lm:{corpus_label(config.task_settings)} '
        f'embedding_size={config.embedding_size}"'
    )


def add_sweep(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sweep = commands.add_parser("sweep", parents=[common], help="run (or resume, or join) the Optuna sweep of a task")
    sweep.add_argument("--task", required=True)
    sweep.add_argument("--profile", default=None, help="cpu | gpu | smoke | ... (default: gpu if CUDA, else cpu)")
    sweep.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL (default: $STORAGE or sweeps/optuna.db); `ps` shows argv: a URL with a "
        "password goes in $STORAGE",
    )
    sweep.add_argument("--file", default=None, help="sweep file (default: sweeps/<task>.yaml)")
    sweep.add_argument("--no-progress", action="store_true")
    sweep.add_argument(
        "--plan",
        action="store_true",
        help="print the studies, trials, runs and an estimated time (from a short timing probe); start nothing",
    )
    sweep.add_argument("overrides", nargs="*", metavar="key=value", help="added to the file's fixed knobs")
    sweep.set_defaults(handler=command_sweep)


def command_sweep(args: argparse.Namespace) -> None:
    from bench import sweep_config  # (lazy: pydantic, yaml)

    spec = sweep_config.load_sweep(args.task, args.profile, Path(args.file) if args.file else None, overrides_of(args))
    for config in sweep_config.study_configs(spec):
        check_data(config)
    check_stores(optuna_storage=args.storage or os.environ.get("STORAGE") or "")
    from bench import sweep  # (lazy: Optuna; only once the file and the stores are valid)

    storage_url = stores.optuna_storage_url(args.storage)
    print(console.sweep_block(spec, storage_url), flush=True)
    if args.plan:
        from bench import plan  # (lazy: torch, Lightning; only a plan probes training steps)

        plan.print_plan(spec, storage_url)
        return
    rows = sweep.run_sweep(spec, args.storage, show_progress=not args.no_progress)
    print(
        f"\nsweep {spec.task} [{spec.profile}]: {console.counted(len(spec.studies), 'study', 'studies')} x "
        f"{console.counted(spec.trials, 'trial')}, "
        f"final seeds {spec.final_seeds}"
    )
    print(sweep.format_summary(rows, Metric.test(get_task(spec.task).report_metric)))
    dataset = spec.experiment.partition("/")[2]
    print(
        "\nlook at the runs: make ui   |   the studies: make dashboard   |   write the report: make report TASK="
        + spec.task
        + (f" DATASET={dataset}" if dataset else "")
    )


def add_horizon(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    horizon = commands.add_parser(
        "horizon", parents=[common], help="memory horizon: train every variant x cell at each length T"
    )
    horizon.add_argument("--task", required=True)
    horizon.add_argument("--profile", default=None, help="cpu | gpu | smoke (default: gpu if CUDA, else cpu)")
    horizon.add_argument("--file", default=None, help="horizon file (default: sweeps/horizon/<task>.yaml)")
    horizon.add_argument("--jobs", type=int, default=None, help="parallel training processes (default: the file's)")
    horizon.add_argument("--no-progress", action="store_true")
    horizon.add_argument("--plan", action="store_true", help="estimate the time on this machine; start nothing")
    horizon.set_defaults(handler=command_horizon)


def command_horizon(args: argparse.Namespace) -> None:
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be >= 1")
    from bench import horizon, horizon_rule, horizon_spec, results  # (lazy: pydantic, yaml, numpy; no torch)

    spec = horizon_spec.load_horizon(args.task, args.profile, Path(args.file) if args.file else None)
    if args.plan:
        from bench import plan  # (lazy: torch, Lightning; only a plan probes training steps)

        print(console.horizon_block(spec, args.jobs or spec.jobs), flush=True)
        print(plan.horizon_plan(spec, args.jobs or spec.jobs))
        return
    check_stores()
    print(console.horizon_block(spec, args.jobs or spec.jobs), flush=True)
    counts = horizon.run_horizon(spec, args.jobs, show_progress=not args.no_progress)
    print(
        f"\nhorizon {spec.task} [{spec.profile}]: {len(spec.arms)} arms x {spec.axis} in {spec.values} x "
        f"{len(spec.seeds)} seeds; this call: " + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
    task = get_task(spec.task)
    runs = results.horizon_runs(spec.task, spec.profile, spec.fingerprint)
    print("\n".join(horizon_rule.format_table(task, horizon_rule.collect(task, runs), spec.margin)))
    print("\nwrite the report: make report TASK=" + spec.task)


def add_claims(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    claims = commands.add_parser(
        "claims",
        parents=[common],
        help="run (or resume) the claim experiments of sweeps/claims/ and write their reports and the claims page",
    )
    claims.add_argument(
        "--claim", default=None, help="only the experiments deciding this claim id (e.g. 4), or one experiment by name"
    )
    claims.add_argument("--profile", default=None, help="cpu | gpu | smoke (default: gpu if CUDA, else cpu)")
    claims.add_argument("--jobs", type=int, default=None, help="parallel training processes (default: the file's)")
    claims.add_argument("--no-progress", action="store_true")
    claims.add_argument("--plan", action="store_true", help="estimate the time on this machine; start nothing")
    claims.add_argument("--report-only", action="store_true", help="write the reports from MLflow; train nothing")
    claims.add_argument("--out", default=None, help="output folder (default: reports/local/claims/)")
    claims.add_argument(
        "--reference", action="store_true", help="write the committed references in reports/reference/claims/"
    )
    claims.add_argument("overrides", nargs="*", metavar="key=value", help="added to each file's fixed knobs")
    claims.set_defaults(handler=command_claims)


def command_claims(args: argparse.Namespace) -> None:
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be >= 1")
    from bench import claim_report, claim_spec, horizon  # (lazy: pydantic, yaml, numpy; no torch)

    knobs = overrides_of(args)
    paths = claim_spec.experiment_paths(args.claim)
    specs = [claim_spec.load_claim(path, args.profile, knobs) for path in paths]  # all, before any run
    if args.plan:
        from bench import plan  # (lazy: torch, Lightning; only a plan probes training steps)

        for spec in specs:
            print(f"claim experiment {spec.name} (claims {', '.join(spec.claims)})")
            print(console.horizon_block(spec, args.jobs or spec.jobs), flush=True)
            print(plan.horizon_plan(spec, args.jobs or spec.jobs) + "\n", flush=True)
        return
    check_stores()
    for spec in specs:
        if not args.report_only:
            print(f"claim experiment {spec.name} (claims {', '.join(spec.claims)}): {spec.why.strip()}")
            print(console.horizon_block(spec, args.jobs or spec.jobs), flush=True)
            counts = horizon.run_horizon(spec, args.jobs, show_progress=not args.no_progress)
            print(f"{spec.name}: this call: " + ", ".join(f"{v} {k}" for k, v in counts.items()), flush=True)
    out = Path(args.out) if args.out else None
    for path in claim_report.write_claim_reports(specs, reference=args.reference, out=out):
        print(f"wrote {path}")


def check_stores(optuna_storage: str | None = None, make_missing: bool = True) -> None:
    """Before any heavy import or data loading: a store that cannot work fails in seconds, in one line.
    `optuna_storage`: a sweep's Optuna storage, checked too. `make_missing=False` (a report): a missing SQLite
    store is not checked, which would make it (the report then finds no runs)."""
    uri = stores.tracking_uri()
    if make_missing or not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists():
        stores.check_store(uri)
    if optuna_storage is not None:
        stores.check_database(optuna_storage, "Optuna storage")


def add_report(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    report = commands.add_parser(
        "report",
        parents=[common],
        help="write reports/local/<task>.md from MLflow (no --task: every task), the index and the claims page",
    )
    report.add_argument("--task", default=None)
    report.add_argument("--dataset", default=None, help="your own data's name (text-classification: the data folder's)")
    report.add_argument("--profile", default=None, help="default: the profile of the most recent sweep")
    report.add_argument("--storage", default=None, help="Optuna storage URL for importances (default: the sweep's)")
    report.add_argument("--out", default=None, help="output folder (default: reports/local/)")
    report.add_argument(
        "--cells", action="store_true", help="the cells page: every cell of the `cells` horizon profile side by side"
    )
    report.add_argument(
        "--reference",
        action="store_true",
        help="rewrite the committed reference of --task in reports/reference/ (make reference)",
    )
    report.set_defaults(handler=command_report)


def command_report(args: argparse.Namespace) -> None:
    check_stores(make_missing=False)  # before seconds of imports
    from bench import claims, report, report_cells, results  # (lazy: matplotlib, MLflow)

    # An unreachable tracking server should fail in seconds, not after minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    if args.cells:
        out = report.REFERENCE if args.reference else Path(args.out) if args.out else report.REPORTS
        print(f"wrote {report_cells.write_cells_page(out)}")
        return
    if args.reference and (not args.task or args.out):
        raise UserError("--reference rewrites one committed reference: give --task <task> (and no --out)")
    out = report.REFERENCE if args.reference else Path(args.out) if args.out else report.REPORTS
    storage = args.storage or os.environ.get("STORAGE") or None
    if args.dataset and not args.task:
        raise UserError("--dataset needs --task (e.g. make report TASK=text-classification DATASET=<name>)")
    if args.task:
        task = get_task(args.task)
        if task.dataset_name and not args.dataset:
            datasets = results.dataset_experiments(task.name)
            raise UserError(
                f"task {task.name} reports one dataset at a time: set DATASET=<name> (here: "
                f"{', '.join(datasets) or 'none yet; train first'})"
            )
        print(f"wrote {report.write_report(args.task, args.profile, out, storage, args.dataset)}")
    else:
        for task in all_tasks():
            for dataset in results.dataset_experiments(task) if all_tasks()[task].dataset_name else [None]:
                try:
                    print(f"wrote {report.write_report(task, args.profile, out, storage, dataset)}")
                except UserError as error:
                    print(f"skipped {task}{'/' + dataset if dataset else ''}: {error}")
    print(f"wrote {report.write_index(out)}")
    print(f"wrote {claims.write_claims(out)}")


def add_ui(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    ui = commands.add_parser("ui", parents=[common], help="serve the MLflow UI for the results store on 127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(handler=command_ui)


def command_ui(args: argparse.Namespace) -> None:
    uri = stores.tracking_uri()
    stores.check_store(uri)  # an unreachable database fails here in seconds, its password masked
    # One worker: a laptop (or 2 shared cores) has no use for MLflow's default four. Nor for its job
    # runner (seven huey consumer processes for GenAI evaluation jobs): browsing runs never starts a job.
    # The store URL goes in the environment (MLflow's own variable), not on argv: `ps` shows argv.
    serve(
        "MLflow UI",
        f"results in {stores.safe_url(uri)}",
        [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
            "--workers",
            "1",
        ],
        f"http://127.0.0.1:{args.port}",
        args.verbose,
        {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        secrets={"MLFLOW_BACKEND_STORE_URI": uri},
        # A link cannot make the training view stick (the UI keeps it only once its toggle is clicked).
        note=f"  your runs: http://127.0.0.1:{args.port}/#/experiments?{TRAINING_VIEW} (click 'Model training', "
        "top left, once: this browser then keeps that view)",
    )


def add_dashboard(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    dashboard = commands.add_parser(
        "dashboard", parents=[common], help="serve optuna-dashboard for the sweeps' Optuna storage on 127.0.0.1"
    )
    dashboard.add_argument("--port", type=int, default=8080)
    dashboard.add_argument("--storage", default=None, help="Optuna storage URL (default: $STORAGE or sweeps/optuna.db)")
    dashboard.set_defaults(handler=command_dashboard)


def command_dashboard(args: argparse.Namespace) -> None:
    url = stores.optuna_storage_url(args.storage)
    if url.startswith("sqlite:///") and not os.path.exists(url.removeprefix("sqlite:///")):
        raise UserError(f"no Optuna storage at {url}: run a sweep first (make sweep TASK=... PROFILE=smoke)")
    stores.check_database(url, "Optuna storage")
    # The storage URL reaches the dashboard in its environment and is put on its argv inside the
    # process: `ps` shows the argv the process started with, and with it the password.
    serve(
        "optuna-dashboard",
        f"studies in {stores.safe_url(url)}",
        [
            sys.executable,
            "-c",
            "import os, sys; from optuna_dashboard._cli import main; "
            "sys.argv.insert(1, os.environ.pop('RNNBENCH_DASHBOARD_STORAGE')); sys.exit(main())",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
            "--server",
            "wsgiref",
        ]
        + ([] if args.verbose else ["--quiet"]),
        f"http://127.0.0.1:{args.port}",
        args.verbose,
        secrets={"RNNBENCH_DASHBOARD_STORAGE": url},
    )


def serve(
    name: str,
    what: str,
    command: list[str],
    url: str,
    verbose: bool,
    extra_env: dict | None = None,
    secrets: dict | None = None,
    timeout: float = 300,
    note: str = "",
) -> None:
    """Start a web server, print its URL (and `note`) only once the page answers, and stop it on Ctrl-C/SIGTERM.
    `secrets`: environment variables that carry a store URL (never on argv, where `ps` shows them)."""
    import subprocess  # (lazy, as tempfile: ~8 ms that every other command does without)
    import tempfile  # (lazy: as subprocess)

    env = server_environment(verbose, extra_env, secrets)
    print(f"starting the {name} for {what} ...", flush=True)
    log = tempfile.TemporaryFile()  # a pipe nobody reads would fill up and stall the server
    server = subprocess.Popen(
        command,
        env=env,
        start_new_session=True,
        stdout=None if verbose else subprocess.DEVNULL,
        stderr=None if verbose else log,
    )

    def stop(*_) -> None:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        wait_until_answering(server, log, name, url, timeout, list((secrets or {}).values()))
        print(f"{name} at {url} (Ctrl-C to stop)" + (f"\n{note}" if note else ""), flush=True)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)


def server_environment(verbose: bool, extra_env: dict | None, secrets: dict | None) -> dict[str, str]:
    """Ours (`extra_env`) under the user's environment, which wins; then the secrets; deprecation
    warnings off unless -v."""
    env = {**extra_env, **os.environ} if extra_env else dict(os.environ)
    env.update(secrets or {})
    if not verbose:  # the servers' own deprecation warnings (Starlette, ...) are not the user's concern
        env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    return env


def wait_until_answering(server, log, name: str, url: str, timeout: float, secrets: list[str]) -> None:
    """Return once the page at `url` answers; a server that exits first, or does not answer within `timeout`
    seconds, is one line (the exit's from the last line of its stderr `log`, the `secrets` masked)."""
    import urllib.request  # (lazy: ~50 ms with ssl and http.client, that every other command does without)

    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            log.seek(0)
            error = log.read().decode(errors="replace").strip().splitlines()
            raise UserError(
                f"the {name} exited before answering: {stores.scrub(error[-1], *secrets) if error else 'no message'}"
            )
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise UserError(f"the {name} did not answer at {url} within {timeout:.0f} s")
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:

    args = build_parser().parse_args(argv)
    console.set_verbose(args.verbose)
    console.quiet_libraries()
    # Ctrl-C / SIGTERM: stop at the next safe point (bench/interrupts.py); `python -m bench` installed it already
    installed = args.command in TRAINING_COMMANDS and interrupts.install()
    if args.command in TRAINING_COMMANDS:
        stores.git_commit()  # the version of the code this process loaded, before the worktree can move
    try:
        args.handler(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RunFailed as error:  # an outcome (the run is closed as FAILED with this reason), not a crash
        run = f" (run {error.run_id}: FAILED, with this reason)" if error.run_id else ""
        print(f"error: {error}{run}" + (f"; {error.hint}" if error.hint else ""), file=sys.stderr)
        return 1
    except (interrupts.Interrupted, KeyboardInterrupt) as error:  # KeyboardInterrupt: list, report, ui, dashboard
        interrupt = error if isinstance(error, interrupts.Interrupted) else interrupts.Interrupted(signal.SIGINT)
        closed = sys.modules["bench.tracking"].close_interrupted(interrupt) if "bench.tracking" in sys.modules else 0
        print(
            f"{interrupt}: {closed} open MLflow run(s) closed as KILLED; run the same command to resume",
            file=sys.stderr,
        )
        return interrupt.exit_code
    finally:
        if installed:  # a caller in this process (a test) finds its own handlers again
            interrupts.uninstall()
    return 0
