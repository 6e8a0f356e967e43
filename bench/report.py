"""Markdown reports comparing the variants of a task, built only from MLflow (plus the Optuna
storage for hyperparameter importance). `<folder>/<task>.md` with PNGs and summary.json in
`<folder>/<task>/`, `<folder>/README.md` as an index and `<folder>/claims.md` (bench.claims); the
folder is reports/local/ (`make report`) or the committed reports/reference/ (`make reference`).

A report is a list of section functions over one prepared `Report` (the task's results, read once by
`bench.results`); each section returns its markdown lines and draws its figures through `bench.plots`.
This module composes the sections and publishes the result."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

from filelock import FileLock

from bench import plots, stores
from bench.cells import reference_cell
from bench.claim_rules import estimate
from bench.console import counted
from bench.convergence import backfill_left_baseline
from bench.errors import UserError, first_line
from bench.file_schema import describe_budget
from bench.horizon_rule import ordered_arms, tabulate
from bench.horizon_spec import load_horizon
from bench.markdown import MISSING, compute_text, fmt, fmt_param, markdown_table
from bench.paths import ROOT
from bench.registry import all_tasks, get_task
from bench.report_diagnostics import (
    ZeroInput,
    ablation_section,
    horizon_section,
    probe_section,
    zero_input_section,
    zero_input_table,
)
from bench.report_status import SMOKE_NOTE, is_smoke, smoke_banner, sweep_status
from bench.results import (
    NoSweepRuns,
    RunGroup,
    StudyResults,
    TaskResults,
    best_trial,
    compute_time,
    counterpart,
    final_values,
    grid_parts,
    group_single_runs,
    has_horizon_runs,
    read_horizon,
    read_task_runs,
    searched_keys,
    train_validation_gap,
)
from bench.run_keys import Metric, Tag
from bench.stats import below_p, compare, holm, summarize
from bench.verdicts import Verdict, all_verdicts, contradictions, verdict_section

REPORTS = ROOT / "reports" / "local"  # `make report`: the user's reports (git-ignored)
REFERENCE = ROOT / "reports" / "reference"  # committed references, rewritten only by `make reference TASK=...`


def load_task_results(
    task, profile: str | None = None, margin_from_file=None, dataset: str | None = None
) -> TaskResults:
    """The sweep of `profile` (default: the latest) and the latest horizon runs of `task` (or of one
    dataset of it), tabulated by the horizon rule; without a sweep, the finished single runs and
    cross-validations, grouped. UserError when the store has none of these."""
    groups = []
    try:
        studies, profile, _ = read_task_runs(task.name, profile, dataset)
    except UserError as error:
        groups = group_single_runs(error.runs) if isinstance(error, NoSweepRuns) else []
        if not groups and not has_horizon_runs(task.name):
            raise
        studies = []  # single runs, or horizon runs only (e.g. `make horizon` without a sweep)
    horizon = None if dataset else read_horizon(task, margin_from_file)
    try:  # runs from before left_baseline_step was logged: from their histories (tabulate does the horizon's)
        backfill_left_baseline(task, [r for s in studies for r in s.finals])
        horizon = tabulate(task, horizon)
    except Exception as error:
        raise stores.unreachable(error) from None
    return TaskResults(task, studies, profile, horizon, dataset, groups)


@dataclass
class Report:
    """What every section reads: the task's results, where figures go, and the zero-input computation
    (long-range tasks only)."""

    results: TaskResults
    images: Path
    storage_url: str | None = None
    zero_input: ZeroInput | None = None

    @property
    def task(self):
        return self.results.task

    @property
    def studies(self) -> list[StudyResults]:
        return self.results.studies

    @property
    def horizon(self):
        return self.results.horizon

    @property
    def metric(self) -> str:
        return self.results.main_metric

    @property
    def baseline(self) -> float | None:
        return self.results.baseline

    @property
    def smoke(self) -> bool:
        """From a smoke profile: checks the machinery, not the science (no findings, importances, verdicts)."""
        if self.studies:
            return is_smoke(self.results.profile)
        return bool(self.horizon) and is_smoke(self.horizon.profile)

    @property
    def name(self) -> str:
        """The report's file and figure-folder name."""
        return report_name(self.task.name, self.results.dataset)

    @cached_property
    def verdicts(self) -> list[Verdict]:
        """Judged once: the Verdicts section shows them, summary.json records them. Smoke and test
        profiles look at the machinery: no verdict, anywhere."""
        if self.smoke or self.look:
            return []
        return all_verdicts(self.task, self.studies, self.horizon, self.zero_input)

    @property
    def look(self) -> bool:
        """From a profile that is a look, not a result (test, quick): like smoke, no verdict."""
        profile = self.results.profile if self.studies else (self.horizon.profile if self.horizon else "")
        return str(profile or "").split()[-1:] in (["test"], ["quick"])


def report_name(task: str, dataset: str | None = None) -> str:
    """reports/<task>.md, or reports/<task>-<dataset>.md for one dataset of the user's own data."""
    return f"{task}-{dataset}" if dataset else task


def report_command(task: str, dataset: str | None = None) -> str:
    return f"make report TASK={task}" + (f" DATASET={dataset}" if dataset else "")


def horizon_margin(task_name: str, profile: str) -> float:
    """For horizon runs from before they recorded their margin: the horizon file's."""
    return load_horizon(task_name, profile).margin


def label(study: StudyResults) -> str:
    return "/".join(filter(None, [study.variant, study.cell, study.grid]))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# -- sections of a sweep report ----------------------------------------------------------------------
def title_section(report: Report) -> list[str]:
    name = report.task.name
    banner = []
    if report.smoke and report.studies:
        params = next((s.parent.params for s in report.studies if s.parent), {})
        banner = smoke_banner(
            report.results.profile,
            f"{counted(params.get('trials', '?'), 'trial')} per study, at most "
            f"{counted(params.get('max_epochs', '?'), 'epoch')}, final seeds {params.get('final_seeds', '?')}",
        )
    elif report.smoke:
        banner = smoke_banner(report.horizon.profile)
    return [
        f"# {report.name}: recurrent variants compared",
        "",
        f"*Generated by `{report_command(name, report.results.dataset)}` on {now():%Y-%m-%d %H:%M UTC} "
        f"from the MLflow store `{stores.safe_url(stores.tracking_uri())}`. Regenerate rather than edit.*",
        "",
        *banner,
    ]


def sweep_hardware(results: TaskResults) -> list[str]:
    return sorted(
        {
            r.tags.get(Tag.HARDWARE) or r.tags.get(Tag.DEVICE, "unknown")
            for r in results.finals + [r for s in results.studies for r in s.trials]
        }
    )


def setup_section(report: Report) -> list[str]:
    task, studies, results = report.task, report.studies, report.results
    finals, everything = results.finals, results.sweep_runs
    starts = [r.start_time for r in everything if r.start_time]
    ends = [r.end_time for r in everything if r.end_time]
    settings = {
        k: v
        for k, v in (
            finals[0].params if finals else studies[0].trials[0].params if studies and studies[0].trials else {}
        ).items()
        if k in task.settings
    }
    parent_params = next((s.parent.params for s in studies if s.parent), {})
    commits = sorted({r.tags.get(Tag.GIT_COMMIT, "unknown") for r in everything if r.tags.get(Tag.GIT_COMMIT)})
    torch_versions = sorted(
        {r.tags[Tag.TORCH_VERSION] for s in studies for r in s.trials + s.finals if Tag.TORCH_VERSION in r.tags}
    )
    return [
        "## Setup",
        "",
        f"- **Task**: {task.description}. ({task.references})"
        if task.references
        else f"- **Task**: {task.description}.",
        *data_lines(finals or [r for s in studies for r in s.trials], results.dataset),
        f"- **Settings**: {', '.join(f'{k}={v}' for k, v in settings.items()) or MISSING}",
        f"- **Profile**: `{results.profile}` — {len(studies)} studies with runs (variant × cell; the Status "
        "section lists every planned one), "
        f"{counted(parent_params.get('trials', '?'), 'trial')} each "
        f"({counted(parent_params.get('startup_trials', '?'), 'random start-up trial')}, then TPE's model-based phase; each study's own sampler, seeded from sampler_seed "
        f"{parent_params.get('sampler_seed', '?')} and the study), pruner {parent_params.get('pruner', '?')} "
        f"(warm-up {parent_params.get('pruner_warmup', '?')}), final seeds {parent_params.get('final_seeds', '?')}.",
        f"- **Budget** per trial and final run: {budget_text(parent_params)}.",
        *pinned_vectors(finals),
        f"- **Protocol**: each study tunes on the validation split ({task.monitor}, {task.monitor_mode}); its best "
        "configuration is retrained once per final seed and evaluated once on test, from the best-validation "
        "checkpoint. The test split never takes part in selection.",
        f"- **Dates**: {when(min(starts)) if starts else MISSING} to {when(max(ends)) if ends else MISSING}",
        f"- **Compute**: {compute_text(*compute_time([r for s in studies for r in s.trials + s.finals]))}",
        f"- **Code version**: {', '.join(f'`{c}`' for c in commits) or 'unknown'}",
        f"- **Hardware**: {'; '.join(sweep_hardware(results)) or 'unknown'}"
        + (f"; torch {', '.join(torch_versions)}" if torch_versions else ""),
        f"- **Memoryless baseline** ({report.metric}): {fmt(report.baseline)}",
        "",
    ]


def status_section(report: Report) -> list[str]:
    """Every planned study as done / running / not started, with the planned totals (one line when
    everything is done)."""
    return sweep_status(report.studies)[0]


def best_study(report: Report) -> tuple[StudyResults | None, float | None]:
    """The study with the best mean final-seed test metric."""
    winner, best_mean = None, None
    for study in report.studies:
        main = summarize(final_values(study, report.metric))
        if main and (
            best_mean is None or (main.mean > best_mean if report.task.higher_is_better else main.mean < best_mean)
        ):
            winner, best_mean = study, main.mean
    return winner, best_mean


def interval_text(values: list[float], higher_is_better: bool) -> str:
    shown = estimate(values, higher_is_better)
    return f"[{fmt(shown.low)}, {fmt(shown.high)}]" if shown and shown.n > 1 else MISSING


def results_section(report: Report) -> list[str]:
    task, metric, baseline, monitor_best = report.task, report.metric, report.baseline, report.results.monitor_best
    metric_keys = list(dict.fromkeys([metric, *(Metric.test(m.name) for m in task.metrics), Metric.test("loss")]))
    higher = task.higher_is_better
    # An interval inside the metric's range: accuracy's clipped to [0, 1], a loss's on the log scale
    # (of the geometric mean: a loss is positive, and seeds differ by factors).
    header = ["variant", "cell", f"{metric} mean ± sd", "95% CI" if higher else "95% CI (geometric mean)", "n"]
    header += [f"{k} mean ± sd" for k in metric_keys[1:]]
    header += ["baseline", "gap to baseline", "best val", "still improving", "params", "s / epoch", "trials c/p/f"]
    rows = []
    for study in report.studies:
        main = summarize(final_values(study, metric))
        counts = study.state_counts()
        best = best_trial(study, monitor_best, task.monitor_mode)
        params = summarize(final_values(study, Metric.PARAM_COUNT))
        seconds = summarize(final_values(study, Metric.SECONDS_PER_EPOCH))
        cells = [
            study.variant + (f" ({study.grid})" if study.grid else ""),
            study.cell,
            f"{fmt(main.mean)} ± {fmt(main.sd)}" if main else MISSING,
            interval_text(final_values(study, metric), higher) if main else MISSING,
            str(main.n if main else 0)
            + (f" (+{len(study.diverged_finals)} diverged)" if study.diverged_finals else ""),
        ]
        for key in metric_keys[1:]:
            extra = summarize(final_values(study, key))
            cells.append(f"{fmt(extra.mean)} ± {fmt(extra.sd)}" if extra else MISSING)
        gap = f"{fmt(main.mean - baseline)} ({main.mean / baseline:.2f}×)" if main and baseline else MISSING
        cells += [
            fmt(baseline),
            gap,
            fmt(best.metrics[monitor_best]) if best else MISSING,
            improving_text(study, best),
            str(int(params.mean)) if params else MISSING,
            fmt(seconds.mean, 3) if seconds else MISSING,
            f"{counts['complete']}/{counts['pruned']}/{counts['failed']}",
        ]
        rows.append(cells)
    shown = [(label(s), summarize(final_values(s, metric))) for s in report.studies]
    plots.test_metric(
        [(name, summary) for name, summary in shown if summary], baseline, metric, report.images / "test_metric.png"
    )
    better = "higher" if task.higher_is_better else "lower"
    return [
        "## Results",
        "",
        f"{metric} of the final seeds ({better} is better); n = seeds that finished (a diverged seed is "
        "counted beside them, not in the mean); gap = mean − baseline "
        "(and mean / baseline); best val = the study's best trial on validation; still improving = final runs "
        "whose validation was still improving when their budget ran out (best-so-far gain over 1% of the "
        "baseline loss, or 1 accuracy point, in the last fifth of the steps), and ↑ if the study's best trial "
        "was: such a cell's result is budget-limited, not a property of the cell; flat: final runs whose validation "
        "never left the baseline, a plateau that may outlast any budget and is not convergence.",
        "",
        *markdown_table(header, rows),
        "",
        f"![{metric} per variant]({report.name}/test_metric.png)",
        "",
    ]


def hyperparameters_section(report: Report) -> list[str]:
    keys = searched_keys(report.studies)
    rows = []
    for study in report.studies:
        best = best_trial(study, report.results.monitor_best, report.task.monitor_mode)
        trial = best.tags.get(Tag.OPTUNA_TRIAL, "?") if best else MISSING
        variant = f"{study.variant} ({study.grid})" if study.grid else study.variant
        rows.append([variant, study.cell, trial, *(fmt_param(best.params.get(k)) if best else MISSING for k in keys)])
    return ["## Best hyperparameters", "", *markdown_table(["variant", "cell", "best trial", *keys], rows), ""]


_STORAGES: dict[str, object] = {}


MIN_IMPORTANCE_TRIALS = 20  # fewer complete trials: fANOVA's forest fits noise ("lr 1.00" from 2 trials)


def importance(study: StudyResults, storage_url: str | None) -> str:
    """Optuna's fANOVA importance of the searched hyperparameters, from the Optuna storage."""
    import optuna  # only for reports of sweeps: a horizon-only report does without it

    url = storage_url or (study.parent.tags.get(Tag.OPTUNA_STORAGE) if study.parent else None)
    if not url or "***" in url:
        return "n/a (Optuna storage unknown: pass STORAGE=<url>)"
    try:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        if url not in _STORAGES:  # one connection per storage, not one per study
            _STORAGES[url] = optuna.storages.RDBStorage(url) if "://" in url else url
        loaded = optuna.load_study(study_name=study.name, storage=_STORAGES[url])
        scores = optuna.importance.get_param_importances(
            loaded, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
        complete = len(loaded.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    except Exception as error:  # too few complete trials, storage gone, ...
        return f"n/a ({first_line(error, 80)})"
    if complete < MIN_IMPORTANCE_TRIALS:
        return f"not shown: {complete} complete trials (fANOVA needs at least {MIN_IMPORTANCE_TRIALS} to mean anything)"
    return ", ".join(f"{key} {value:.2f}" for key, value in scores.items()) or "n/a"


def importance_section(report: Report) -> list[str]:
    if report.smoke:
        return ["## Hyperparameter importance", "", f"Not computed: a smoke run {SMOKE_NOTE}.", ""]
    return [
        "## Hyperparameter importance",
        "",
        "fANOVA importance (Optuna) of each searched hyperparameter for the validation objective, shown "
        f"only for studies with at least {MIN_IMPORTANCE_TRIALS} complete trials.",
        "",
        *(f"- {label(s)}: {importance(s, report.storage_url)}" for s in report.studies),
        "",
    ]


def curves_section(report: Report) -> list[str]:
    """The validation curve of each study's best trial, and Optuna's optimisation history."""
    task, monitor_best = report.task, report.results.monitor_best
    curves = {}
    for study in report.studies:
        best = best_trial(study, monitor_best, task.monitor_mode)
        if best is not None:
            curves[label(study)] = best.history(task.monitor)
    plots.val_curves(curves, report.baseline, task.monitor, report.images / "val_curves.png")
    # A pruned trial has no `_best` metric: plot the last validation value it reached.
    histories = [
        (
            label(study),
            sorted(
                [
                    (
                        int(r.tags.get(Tag.OPTUNA_TRIAL, 0)),
                        r.metrics.get(monitor_best, r.metrics.get(monitor_best.removesuffix("_best"))),
                        r.tags.get(Tag.STATE),
                    )
                    for r in study.trials
                ],
                key=lambda point: point[0],  # by trial number only: a pruned trial may have no value
            ),
        )
        for study in report.studies
    ]
    plots.optimisation_history(histories, monitor_best, task.monitor_mode, report.images / "optimization_history.png")
    return [
        "## Validation curves",
        "",
        f"![validation curves]({report.name}/val_curves.png)",
        "",
        "## Optimisation history",
        "",
        f"![optimisation history]({report.name}/optimization_history.png)",
        "",
    ]


def comparisons(studies: list[StudyResults]) -> list[tuple[StudyResults, StudyResults]]:
    """The comparisons behind the suite's claims, at each grid point: cells within a variant
    (LSTM/GRU vs the simple RNN), variants within a cell (stacked/bidirectional/pretrained vs one layer)."""
    pairs = []
    for study in studies:
        for variant, cell in ((study.variant, reference_cell()), ("simple", study.cell)):
            if (variant, cell) != (study.variant, study.cell):
                other = counterpart(study, studies, variant, cell)
                if other is not None:
                    pairs.append((study, other))
    return pairs


def findings(studies, baseline, metric, higher_is_better: bool) -> list[str]:
    lines = []
    seeds = [len(final_values(s, metric)) for s in studies]
    if seeds and min(seeds) < 5:
        lines.append(
            f"With {min(seeds)}–{max(seeds)} seeds per study, only large differences can reach "
            "significance; 'not supported' below means *not shown at this budget*, not *no difference*."
        )
    tests, texts = [], []
    if baseline is not None:
        for study in studies:
            values = final_values(study, metric)
            # One-sided: better than the baseline (below it for losses, above it for accuracy).
            # Losses on log scale: a loss is compared with its baseline (and with others) by ratio.
            tests.append(
                below_p([-v for v in values], -baseline)
                if higher_is_better
                else below_p([math.log(v) for v in values if v > 0], math.log(baseline))
                if baseline > 0
                else None
            )
            summary = summarize(values)
            texts.append(
                (
                    f"**{label(study)} vs the memoryless baseline**: {metric} "
                    f"{fmt(summary.mean if summary else None)} vs {fmt(baseline)}",
                    "better than the baseline",
                )
            )
    for better, reference in comparisons(studies):
        comparison = compare(final_values(better, metric), final_values(reference, metric), higher_is_better)
        tests.append(comparison.p)
        sa, sb = comparison.a, comparison.b
        if sa and sb:
            winner, loser = (better, reference) if comparison.a_better else (reference, better)
            texts.append(
                (
                    f"**{label(better)} vs {label(reference)}**: {metric} {fmt(sa.mean)} ± {fmt(sa.sd)} vs "
                    f"{fmt(sb.mean)} ± {fmt(sb.sd)}",
                    f"{label(winner)} better than {label(loser)}",
                )
            )
        else:
            texts.append((f"**{label(better)} vs {label(reference)}**: missing final seeds", ""))
    for (text, claim), p, adjusted in zip(texts, tests, holm(tests)):
        if p is None:
            lines.append(f"{text}: too few seeds to test (need ≥ 2 per group).")
        elif adjusted < 0.05:
            lines.append(f"{text}; p = {p:.2g} (Holm-adjusted {adjusted:.2g}): {claim} — **statistically supported**.")
        else:
            lines.append(f"{text}; p = {p:.2g} (Holm-adjusted {adjusted:.2g}): not statistically supported.")
    return lines


def findings_section(report: Report) -> list[str]:
    if report.smoke:
        return ["## Findings", "", f"None: a smoke run {SMOKE_NOTE}.", ""]
    scale = "" if report.task.higher_is_better else " on log values (losses differ by ratios)"
    return [
        "## Findings",
        "",
        f"Differences of the final-seed test metric, by Welch's t-test (one-sided t-test "
        f"against the baseline){scale}, p-values Holm-adjusted over all comparisons below.",
        "",
        *(
            f"- {line}"
            for line in findings(report.studies, report.baseline, report.metric, report.task.higher_is_better)
        ),
        "",
    ]


def learning_curve_section(report: Report) -> list[str]:
    """With a grid over train_subset: the test metric and the train-vs-validation gap by labeled size."""
    task, metric = report.task, report.metric
    if not any("train_subset=" in s.grid for s in report.studies):
        return []
    curves: dict[str, list] = {}
    rows = []
    for study in report.studies:
        sizes = final_values(study, Metric.TRAIN_EXAMPLES)
        summary, gaps = (
            summarize(final_values(study, metric)),
            [train_validation_gap(r, task) for r in study.finished_finals],
        )
        gap = summarize([g for g in gaps if g is not None])
        if not sizes or not summary:
            continue
        others = [f"{k}={v}" for k, v in grid_parts(study.grid).items() if k != "train_subset"]
        curves.setdefault("/".join([study.variant, study.cell, *others]), []).append(
            (sizes[0], summary.mean, summary.sd)
        )
        rows.append(
            [
                "/".join([study.variant, *others]),
                study.cell,
                str(int(sizes[0])),
                f"{fmt(summary.mean)} ± {fmt(summary.sd)}",
                f"{fmt(gap.mean) if gap else MISSING} ± {fmt(gap.sd) if gap else MISSING}",
                fmt_count(final_values(study, Metric.PARAM_COUNT)),
            ]
        )
    plots.learning_curve(curves, metric, report.images / "learning_curve.png")
    header = [
        "variant",
        "cell",
        "labeled examples",
        f"{metric} mean ± sd",
        f"train (eval mode) − val {task.metrics[0].name} (at the best validation)",
        "trainable parameters",
    ]
    return [
        "## Learning curve by labeled size",
        "",
        "Pretrained embeddings are claimed to curb overfitting when "
        "labeled data is small: compare the test metric and the train − validation gap across sizes.",
        "",
        *markdown_table(header, rows),
        "",
        f"![learning curve]({report.name}/learning_curve.png)",
        "",
    ]


def verdicts_section(report: Report) -> list[str]:
    if report.smoke:
        return ["## Verdicts", "", f"None: a smoke run {SMOKE_NOTE}.", ""]
    if report.look:
        return ["## Verdicts", "", "None: the test and quick profiles are looks, not results.", ""]
    return verdict_section(report.verdicts)


def contradictions_section(report: Report) -> list[str]:
    """Horizon cells that disagree with this report's sweep finals at the same length."""
    flagged = contradictions(report.task, report.studies, report.horizon)
    if not flagged:
        return []
    return [
        "### Horizon vs sweep finals",
        "",
        "Cells where the horizon and this report's sweep finals at the same "
        "length disagree (pass vs fail by the horizon rule): read the budgets before either.",
        "",
        *(f"- {line}" for line in flagged),
        "",
    ]


def fmt_count(values: list[float]) -> str:
    return f"{int(statistics.fmean(values)):,}" if values else MISSING


def budget_text(params: dict) -> str:
    """The sweep's budget from its parent run's params (sweeps from before step budgets: epochs)."""

    def number(key: str) -> int:
        try:
            return int(params.get(key) or 0)
        except ValueError:
            return 0

    if "max_epochs" not in params:
        return "?"
    return describe_budget(
        number("max_epochs"), number("max_steps"), number("eval_every_steps"), number("patience_steps")
    )


def improving_text(study: StudyResults, best) -> str:
    """ "1/3 ↑": final runs still improving at the end of their budget, ↑ if the best trial was too."""
    known = [s for s in (r.still_improving for r in study.finished_finals) if s is not None]
    text = f"{sum(known)}/{len(known)}" if known else MISSING
    flat = sum(r.flat for r in study.finished_finals)
    text += f" ({flat} flat)" if flat else ""
    return text + (" ↑" if best is not None and best.still_improving else "")


def pinned_vectors(finals: list) -> list[str]:
    """Which pretraining run each `lm:` vectors source resolved to, as the runs recorded it."""
    pins = sorted(
        {
            (
                r.params.get("embedding_vectors", "").partition("@")[0],
                r.tags.get(Tag.EMBEDDING_SOURCE_RUN, "?"),
            )
            for r in finals
            if r.params.get("embedding_vectors", "").startswith("lm:")
        }
    )
    if not pins:
        return []
    return [
        "- **Pretrained LM vectors** (pinned by run id; `embedding_vectors=lm:<corpus>@<run id>` reuses one): "
        + "; ".join(f"`{source}` = pretraining run `{run}`" for source, run in pins)
    ]


def data_lines(runs: list, dataset: str | None) -> list[str]:
    """The dataset, how its splits were made and the label mapping, as the runs logged them."""

    def values(tag: str) -> list[str]:
        return sorted({r.tags[tag] for r in runs if r.tags.get(tag)})

    lines = [f"- **Dataset**: `{dataset}`"] if dataset else []
    # One layout per study ("splits as given", "...; a stratified subset of 500 training rows"): each
    # part once, so a grid over train_subset does not repeat the common part per study.
    layouts = dict.fromkeys(part for layout in values(Tag.DATA_LAYOUT) for part in layout.split("; "))
    if layouts:
        lines.append(f"- **Splits**: {'; '.join(layouts)}")
    if values(Tag.LABEL_MAP):
        lines.append(f"- **Labels** (name:id): {'; '.join(values(Tag.LABEL_MAP))}")
    return lines


# -- sections of a report of single runs (no sweep) --------------------------------------------------
def group_metric(group: RunGroup, key: str):
    return summarize([r.metrics[key] for r in group.runs if key in r.metrics])


def mean_sd(summary) -> str:
    return f"{fmt(summary.mean)} ± {fmt(summary.sd)}" if summary else MISSING


def group_runs(report: Report) -> list:
    return [r for g in report.results.groups for r in g.runs]


def single_runs_setup_section(report: Report) -> list[str]:
    runs = group_runs(report)
    hardware = sorted({r.tags.get(Tag.HARDWARE, "unknown") for r in runs})
    commits = sorted({r.tags[Tag.GIT_COMMIT] for r in runs if r.tags.get(Tag.GIT_COMMIT)})
    return [
        "## Setup",
        "",
        f"- **Task**: {report.task.description}.",
        *data_lines(runs, report.results.dataset),
        "- **Runs**: no sweep in this experiment, so this report shows its finished runs (`make train`) grouped "
        "by variant and cell (runs that differ in any knob but the seed are kept apart; sd over seeds), and each "
        "cross-validation (`folds=K`) as the mean ± sd over its folds. Each run selects its checkpoint on "
        "validation and is tested once.",
        f"- **Code version**: {', '.join(f'`{c}`' for c in commits) or 'unknown'}",
        f"- **Hardware**: {'; '.join(hardware) or 'unknown'}",
        "",
    ]


def single_runs_section(report: Report) -> list[str]:
    task, metric = report.task, report.metric
    trivial = "majority class" if task.report_metric == "acc" else "baseline"
    header = [
        "variant",
        "cell",
        "runs",
        f"{metric} mean ± sd",
        trivial,
        f"{Metric.test('loss')} mean ± sd",
        "epochs",
        "other knobs",
    ]
    rows = []
    for group in report.results.groups:
        count = len(group.runs)
        baseline, epochs = (
            group_metric(group, Metric.baseline(task.report_metric)),
            group_metric(group, Metric.EPOCHS_TRAINED),
        )
        rows.append(
            [
                group.variant,
                group.cell,
                f"{count} folds" if group.kind == "cv" else f"{count} seed{'s' * (count != 1)}",
                mean_sd(group_metric(group, metric)),
                fmt(baseline.mean) if baseline else MISSING,
                mean_sd(group_metric(group, Metric.test("loss"))),
                f"{epochs.mean:.1f}" if epochs else MISSING,
                group.settings or MISSING,
            ]
        )
    better = "higher" if task.higher_is_better else "lower"
    return [
        "## Results",
        "",
        f"{metric} over each group's runs ({better} is better): sd over seeds, or over folds for a cross-validation.",
        "",
        *markdown_table(header, rows),
        "",
    ]


def cross_validation_section(report: Report) -> list[str]:
    metric = report.metric
    cvs = [g for g in report.results.groups if g.kind == "cv"]
    if not cvs:
        return []
    lines = ["## Cross-validation", "", f"Stratified K-fold: each fold is the test split once. {metric} per fold:", ""]
    for group in cvs:
        values = ", ".join(fmt(r.metrics.get(metric), 3) for r in group.runs)
        lines.append(
            f"- {group.variant}/{group.cell}, {group.settings}: {mean_sd(group_metric(group, metric))} "
            f"(folds: {values})"
        )
    return lines + [""]


def leader_word(report: Report, winner: StudyResults) -> str:
    """ "best" only when the leading study beats every other significantly (Welch, log scale for losses,
    Holm over those comparisons); else "highest mean" / "lowest mean" and how many it does not beat."""
    higher = report.task.higher_is_better
    others = [s for s in report.studies if s is not winner and final_values(s, report.metric)]
    tests = [compare(final_values(winner, report.metric), final_values(s, report.metric), higher).p for s in others]
    unbeaten = sum(q is None or q >= 0.05 for q in holm(tests))
    if others and not unbeaten:
        return "best"
    word = "highest mean" if higher else "lowest mean"
    return f"{word} (not significantly better than {counted(unbeaten, 'other')})" if others else word


def best_group(report: Report) -> tuple[RunGroup | None, object]:
    winner, best = None, None
    for group in report.results.groups:
        main = group_metric(group, report.metric)
        if main and (
            best is None or (main.mean > best.mean if report.task.higher_is_better else main.mean < best.mean)
        ):
            winner, best = group, main
    return winner, best


# -- sections of a report without a sweep ------------------------------------------------------------
def horizon_hardware(report: Report) -> list[str]:
    return sorted({r.tags.get(Tag.HARDWARE, "unknown") for r in report.horizon.runs})


def horizon_only_setup_section(report: Report) -> list[str]:
    task = report.task
    return [
        f"- **Task**: {task.description}. ({task.references})",
        f"- **Hardware**: {'; '.join(horizon_hardware(report))}",
        f"- No sweep yet (`make sweep TASK={task.name}`): this report holds the horizon runs only.",
        "",
    ]


Section = Callable[[Report], list[str]]
LONG_RANGE_SECTIONS: list[Section] = [
    horizon_section,
    contradictions_section,
    ablation_section,
    probe_section,
    zero_input_section,
    verdicts_section,
]
SWEEP_SECTIONS: list[Section] = [
    title_section,
    setup_section,
    status_section,
    results_section,
    hyperparameters_section,
    importance_section,
    curves_section,
    findings_section,
    learning_curve_section,
    *LONG_RANGE_SECTIONS,
]
HORIZON_ONLY_SECTIONS: list[Section] = [title_section, horizon_only_setup_section, *LONG_RANGE_SECTIONS]
SINGLE_RUN_SECTIONS: list[Section] = [
    title_section,
    single_runs_setup_section,
    single_runs_section,
    cross_validation_section,
]


def horizons_line(report: Report) -> str:
    """The horizons of the variant x cell arms in one line, for the index ("" without horizon runs)."""
    horizon, task = report.horizon, report.task
    if not horizon:
        return ""
    arms = [a for a in ordered_arms(horizon.table) if a.count("/") == 1]
    return f"horizon ({horizon.axis}, {horizon.profile}): " + ", ".join(
        f"{a} {horizon.describe(a, task.higher_is_better).replace(' (longest tested)', '')}" for a in arms
    )


def records_convergence(report: Report) -> bool:
    """Whether the report's runs record the convergence signal (bench.convergence): False only when
    every finished run it reads lacks it, i.e. they were trained under the earlier protocol (epoch
    budgets, no signal). The index labels such reports; a report with no finished runs is not one."""
    results = report.results
    runs = [
        *results.finals,
        *(run for study in report.studies for run in study.trials),
        *group_runs(report),
        *(report.horizon.runs if report.horizon else []),
    ]
    finished = [run for run in runs if run.complete]
    return not finished or any(run.still_improving is not None for run in finished)


def index_summary(report: Report) -> dict:
    """The report's row in reports/README.md (written next to its figures as summary.json)."""
    return {**summary_of(report), "convergence_signal": records_convergence(report)}


def summary_of(report: Report) -> dict:
    horizons = horizons_line(report)
    if not report.studies and report.results.groups:
        winner, best = best_group(report)
        line = (
            (
                f"best: {winner.variant}/{winner.cell} {report.metric} {fmt(best.mean)} ± {fmt(best.sd)} over "
                f"{len(winner.runs)} {'folds' if winner.kind == 'cv' else 'runs'} (no sweep)"
            )
            if winner
            else "no finished runs"
        )
        return {
            "task": report.name,
            "profile": "single runs",
            "summary": line,
            "incomplete": False,
            "hardware": "; ".join(sorted({r.tags.get(Tag.HARDWARE, "unknown") for r in group_runs(report)})),
            "generated": now().isoformat(timespec="seconds"),
        }
    if report.smoke:
        horizons = f"smoke run: {SMOKE_NOTE}"
    if not report.studies:
        return {
            "task": report.task.name,
            "profile": f"horizon {report.horizon.profile}",
            "summary": horizons,
            "incomplete": False,
            "hardware": "; ".join(horizon_hardware(report)),
            "verdicts": [v.as_record() for v in report.verdicts],
            "generated": now().isoformat(timespec="seconds"),
        }
    winner, best_mean = best_study(report)
    line = "no finished final seeds yet"
    if report.smoke:
        line = f"smoke run: {SMOKE_NOTE}"
        horizons = ""
    elif winner:
        line = f"{leader_word(report, winner)}: {label(winner)} {report.metric} {fmt(best_mean)} vs baseline " + (
            f"{fmt(report.baseline)}" + (f" ({best_mean / report.baseline:.2f}×)" if report.baseline else "")
        )
    line += f"; {horizons}" if horizons else ""
    return {
        "task": report.task.name,
        "profile": report.results.profile,
        "summary": line,
        "incomplete": sweep_status(report.studies)[1],
        "hardware": "; ".join(sweep_hardware(report.results)),
        "verdicts": [v.as_record() for v in report.verdicts],
        "generated": now().isoformat(timespec="seconds"),
    }


def render(report: Report) -> tuple[str, dict]:
    if report.studies:
        sections = SWEEP_SECTIONS
    elif report.results.groups:  # single runs, and the long-range sections when horizon runs exist too
        sections = [*SINGLE_RUN_SECTIONS, *(LONG_RANGE_SECTIONS if report.horizon else [])]
    else:
        sections = HORIZON_ONLY_SECTIONS
    return "\n".join(line for section in sections for line in section(report)), index_summary(report)


# -- publishing --------------------------------------------------------------------------------------
def write_report(
    task_name: str,
    profile: str | None = None,
    out_dir: Path = REPORTS,
    storage_url: str | None = None,
    dataset: str | None = None,
) -> Path:
    """The report of what MLflow holds for a task (or one dataset of the user's own data): its sweep
    when there is one, else its finished single runs and cross-validations, else its horizon runs."""
    task = get_task(task_name)
    results = load_task_results(task, profile, horizon_margin, dataset)
    name = report_name(task.name, dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(out_dir)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".tmp-{name}-p{os.getpid()}-"))
    try:
        images = staging / name
        images.mkdir()
        zero_input = zero_input_table() if task.long_range else None
        markdown, summary = render(Report(results, images, storage_url, zero_input))
        (staging / f"{name}.md").write_text(markdown)
        (images / "summary.json").write_text(json.dumps(summary, indent=1))
        publish(staging, out_dir, name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir / f"{name}.md"


STAGING_PID = re.compile(r"^\.(?:tmp-.*-p|README\.md\.)(\d+)(?:-[^-]*)?$")  # .tmp-<name>-p<pid>-<random>


def remove_abandoned_staging(out_dir: Path) -> None:
    """What a report killed mid-write left in its folder (SIGKILL, a power cut: no `finally` ran), removed
    by the next one: staging folders and index files whose process is gone, and those of older names
    (no pid) after an hour."""
    for path in [*out_dir.glob(".tmp-*"), *out_dir.glob(".README.md.*")]:
        match = STAGING_PID.match(path.name)
        try:
            if match and process_alive(int(match[1])):
                continue
            if not match and time.time() - path.stat().st_mtime < 3600:
                continue
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:  # another report removed it first
            pass


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    return True


def publish_lock(out_dir: Path) -> Path:
    """One lock per report folder, kept outside it (the folder holds only reports)."""
    key = hashlib.sha256(str(out_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"rnnbench-report-{key}.lock"


def publish(staging: Path, out_dir: Path, name: str) -> None:
    """Swap the new report in only once it is complete, under a lock (two `make report` at once take
    turns): each image and then the markdown replace their old versions atomically, so a reader never
    sees a half-written file or a missing image folder; images the new report no longer has go last."""
    with FileLock(publish_lock(out_dir), timeout=600):
        images = out_dir / name
        images.mkdir(exist_ok=True)
        fresh = {path.name for path in (staging / name).iterdir()}
        for path in (staging / name).iterdir():
            if path.is_dir() and (images / path.name).is_dir():
                shutil.rmtree(images / path.name)
            os.replace(path, images / path.name)
        os.replace(staging / f"{name}.md", out_dir / f"{name}.md")
        for path in images.iterdir():
            if path.name not in fresh:
                shutil.rmtree(path) if path.is_dir() else path.unlink()


def earlier_protocol(summary: dict) -> bool:
    """A report whose runs were trained under the earlier protocol, as its summary.json records. Files
    written before that record existed: a sweep or horizon report without verdicts (verdicts came with
    the convergence signal); a report of single runs never has verdicts, so their absence says nothing."""
    if "convergence_signal" in summary:
        return not summary["convergence_signal"]
    return "verdicts" not in summary and summary.get("profile") != "single runs"


def write_index(out_dir: Path = REPORTS) -> Path:
    """README.md of a report folder: the claims page first, then one line per task report on disk."""
    rows = []
    own_data = sorted(p.parent.name for p in out_dir.glob("*/summary.json") if p.parent.name not in all_tasks())
    for task in [*all_tasks(), *own_data]:
        summary_file = out_dir / task / "summary.json"
        if summary_file.exists() and (out_dir / f"{task}.md").exists():
            summary = json.loads(summary_file.read_text())
            state = " (incomplete)" if summary.get("incomplete") else ""
            if earlier_protocol(summary):
                state += " (earlier protocol: epoch budgets, no convergence signal; to be regenerated)"
            rows.append(
                [
                    f"[{task}]({task}.md)",
                    summary["profile"],
                    f"{summary['summary']}{state}",
                    summary.get("hardware", "?"),
                    summary["generated"][:10],
                ]
            )
    reference = out_dir.resolve() == REFERENCE.resolve()
    intro = (
        "The committed reference reports, each rewritten only by `make reference TASK=<task>`; the profile "
        "and the hardware that produced each are named in its row."
        if reference
        else "Your reports, written by `make report` from the MLflow store (this folder is git-ignored; the "
        "committed references are in `reports/reference/`)."
    )
    lines = [
        "# Reports",
        "",
        intro,
        "",
        "**[Claims](claims.md)**: every claim of the material x every task that tests it, with its verdict.",
        "",
        *markdown_table(["task", "profile", "summary", "hardware", "generated"], rows),
    ]
    path = out_dir / "README.md"
    out_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(publish_lock(out_dir), timeout=600):
        staging = path.with_name(f".README.md.{os.getpid()}")
        staging.write_text("\n".join(lines) + "\n")
        os.replace(staging, path)
    return path
