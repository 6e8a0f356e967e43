"""Markdown reports comparing the variants of a task, built only from MLflow (plus the Optuna
storage for hyperparameter importance). `reports/<task>.md` with PNGs in `reports/<task>/`, and
`reports/README.md` as an index."""
from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import tempfile
from pathlib import Path

from bench import tracking
from bench.errors import UserError, first_line
from bench.paths import ROOT
from bench.registry import all_tasks, get_task
from bench.horizon_rule import ordered_arms
from bench.horizon_spec import load_horizon
from bench.report_diagnostics import (ablation_section, horizon_section, probe_section, zero_input_section,
                                      zero_input_table)
from bench.results import (StudyResults, best_trial, counterpart, final_values, grid_parts, has_horizon_runs,
                           load_horizon_data, metric_history, read_task_runs, searched_keys, task_baseline,
                           train_validation_gap)
from bench.stats import below_p, holm, summarize, welch_p
from bench.verdicts import all_verdicts, verdict_section

REPORTS = ROOT / "reports"


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.{digits}f}"
    return str(value)


def horizon_margin(task_name: str, profile: str) -> float:
    """For horizon runs from before they recorded their margin: the horizon file's."""
    return load_horizon(task_name, profile).margin


def label(study: StudyResults) -> str:
    return "/".join(filter(None, [study.variant, study.cell, study.grid]))


_STORAGES: dict[str, object] = {}


def importance(study: StudyResults, storage_url: str | None) -> str:
    """Optuna's fANOVA importance of the searched hyperparameters, from the Optuna storage."""
    import optuna  # only for reports of sweeps: a horizon-only report does without it

    url = storage_url or (study.parent.data.tags.get(tracking.Tag.OPTUNA_STORAGE) if study.parent else None)
    if not url or "***" in url:
        return "n/a (Optuna storage unknown: pass STORAGE=<url>)"
    try:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        if url not in _STORAGES:  # one connection per storage, not one per study
            _STORAGES[url] = optuna.storages.RDBStorage(url) if "://" in url else url
        loaded = optuna.load_study(study_name=study.name, storage=_STORAGES[url])
        scores = optuna.importance.get_param_importances(
            loaded, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except Exception as error:  # too few complete trials, storage gone, ...
        return f"n/a ({first_line(error, 80)})"
    return ", ".join(f"{key} {value:.2f}" for key, value in scores.items()) or "n/a"


# -- plots -------------------------------------------------------------------------------------------
def plot_test_metric(studies, baseline, metric, path: Path) -> None:
    import matplotlib.pyplot as plt

    shown = [(label(s), summarize(final_values(s, metric))) for s in studies]
    shown = [(name, summary) for name, summary in shown if summary]
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(shown) + 2), 3.6))
    positions = range(len(shown))
    ax.errorbar(positions, [s.mean for _, s in shown], yerr=[0 if math.isnan(s.sd) else s.sd for _, s in shown],
                fmt="o", capsize=4)
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", label=f"memoryless baseline {baseline:.4g}")
        ax.legend(loc="best", fontsize=8)
    ax.set_xticks(list(positions), [name for name, _ in shown], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (mean ± sd over seeds)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_val_curves(curves: dict[str, list[float]], baseline, monitor, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker=".", label=name)
    if baseline is not None and monitor == "val/loss":
        ax.axhline(baseline, color="grey", linestyle="--", label="memoryless baseline")
    ax.set_xlabel("epoch")
    ax.set_ylabel(monitor)
    ax.set_title("validation curve of each study's best trial", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(studies, monitor_best, mode, path: Path) -> None:
    """Optuna's optimisation history per study: each trial's objective and the best so far."""
    import matplotlib.pyplot as plt

    columns = min(3, len(studies))
    rows = math.ceil(len(studies) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows), squeeze=False)
    for ax, study in zip(axes.flat, studies):
        # A pruned trial has no `_best` metric: plot the last validation value it reached.
        points = sorted((int(r.data.tags.get("optuna_trial", 0)),
                         r.data.metrics.get(monitor_best, r.data.metrics.get(monitor_best.removesuffix("_best"))),
                         r.data.tags.get("state")) for r in study.trials)
        done = [(n, v) for n, v, state in points if state == "complete" and v is not None]
        pruned = [(n, v) for n, v, state in points if state == "pruned" and v is not None]
        if done:
            ax.scatter(*zip(*done), s=14, label="complete")
            best, so_far = [], None
            for n, v in done:
                so_far = v if so_far is None else (min(so_far, v) if mode == "min" else max(so_far, v))
                best.append((n, so_far))
            ax.step(*zip(*best), where="post", color="red", label="best so far")
        if pruned:
            ax.scatter(*zip(*pruned), s=14, color="grey", marker="x", label="pruned")
        ax.set_title(label(study), fontsize=9)
        ax.set_xlabel("trial", fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(studies):]:
        ax.axis("off")
    axes.flat[0].set_ylabel(monitor_best, fontsize=8)
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- findings ----------------------------------------------------------------------------------------
def comparisons(studies: list[StudyResults]) -> list[tuple[StudyResults, StudyResults]]:
    """The comparisons behind the suite's claims, at each grid point: cells within a variant
    (LSTM/GRU vs the simple RNN), variants within a cell (stacked/bidirectional/pretrained vs one layer)."""
    pairs = []
    for study in studies:
        for variant, cell in ((study.variant, "rnn"), ("simple", study.cell)):
            if (variant, cell) != (study.variant, study.cell):
                other = counterpart(study, studies, variant, cell)
                if other is not None:
                    pairs.append((study, other))
    return pairs


def findings(studies, baseline, metric, higher_is_better: bool) -> list[str]:
    lines = []
    seeds = [len(final_values(s, metric)) for s in studies]
    if seeds and min(seeds) < 5:
        lines.append(f"With {min(seeds)}–{max(seeds)} seeds per study, only large differences can reach "
                     "significance; 'not supported' below means *not shown at this budget*, not *no difference*.")
    tests, texts = [], []
    if baseline is not None:
        for study in studies:
            values = final_values(study, metric)
            # One-sided: better than the baseline (below it for losses, above it for accuracy).
            tests.append(below_p([-v for v in values], -baseline) if higher_is_better else below_p(values, baseline))
            summary = summarize(values)
            texts.append((f"**{label(study)} vs the memoryless baseline**: {metric} "
                          f"{fmt(summary.mean if summary else None)} vs {fmt(baseline)}", "better than the baseline"))
    for better, reference in comparisons(studies):
        a, b = final_values(better, metric), final_values(reference, metric)
        tests.append(welch_p(a, b))
        sa, sb = summarize(a), summarize(b)
        if sa and sb:
            wins = sa.mean > sb.mean if higher_is_better else sa.mean < sb.mean
            winner, loser = (better, reference) if wins else (reference, better)
            texts.append((f"**{label(better)} vs {label(reference)}**: {metric} {fmt(sa.mean)} ± {fmt(sa.sd)} vs "
                          f"{fmt(sb.mean)} ± {fmt(sb.sd)}", f"{label(winner)} better than {label(loser)}"))
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


# -- the report --------------------------------------------------------------------------------------
def write_report(task_name: str, profile: str | None = None, out_dir: Path = REPORTS,
                 storage_url: str | None = None) -> Path:
    task = get_task(task_name)
    try:
        studies, profile, runs = read_task_runs(task.name, profile)
    except UserError:
        if not has_horizon_runs(task.name):
            raise
        studies, runs = [], []  # horizon runs only (e.g. `make horizon` without a sweep)
    monitor_best = f"{task.monitor}_best"
    baseline = task_baseline(studies, f"test/{task.report_metric}")
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".tmp-{task.name}-"))
    try:
        images = staging / task.name
        images.mkdir()
        if studies:
            markdown, summary = render(task, studies, profile, runs, baseline, monitor_best, images, storage_url)
        else:
            markdown, summary = render_horizon_only(task, images)
        (staging / f"{task.name}.md").write_text(markdown)
        (images / "summary.json").write_text(json.dumps(summary, indent=1))
        publish(staging, out_dir, task.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir / f"{task.name}.md"


def publish(staging: Path, out_dir: Path, name: str) -> None:
    """Swap the new report in only once it is complete: no half-written report is ever visible."""
    old = out_dir / f".old-{name}"
    shutil.rmtree(old, ignore_errors=True)
    if (out_dir / name).exists():
        (out_dir / name).rename(old)
    (staging / name).rename(out_dir / name)
    (staging / f"{name}.md").replace(out_dir / f"{name}.md")
    shutil.rmtree(old, ignore_errors=True)


def render(task, studies, profile, runs, baseline, monitor_best, images: Path, storage_url) -> tuple[str, dict]:
    main_metric = f"test/{task.report_metric}"
    better = "higher" if task.higher_is_better else "lower"
    metric_keys = list(dict.fromkeys([main_metric, *(f"test/{m.name}" for m in task.metrics), "test/loss"]))
    finals = [r for s in studies for r in s.finished_finals]
    everything = [r for s in studies for r in ([s.parent] if s.parent else []) + s.trials + s.finals]
    starts = [r.info.start_time for r in everything if r.info.start_time]
    ends = [r.info.end_time for r in everything if r.info.end_time]
    when = lambda ms: dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")  # noqa: E731
    settings = {k: v for k, v in (finals[0].data.params if finals else studies[0].trials[0].data.params
                                   if studies and studies[0].trials else {}).items() if k in task.settings}
    parent_params = next((s.parent.data.params for s in studies if s.parent), {})
    commits = sorted({r.data.tags.get("git_commit", "unknown") for r in everything if r.data.tags.get("git_commit")})
    hardware = sorted({r.data.tags.get("hardware") or r.data.tags.get("device", "unknown") for r in finals + [
        r for s in studies for r in s.trials]})
    torch_versions = sorted({r.data.tags["torch_version"] for r in finals if "torch_version" in r.data.tags})

    out = [f"# {task.name}: recurrent variants compared", "",
           f"*Generated by `make report TASK={task.name}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} "
           f"from the MLflow store `{tracking.safe_url(tracking.tracking_uri())}`. Regenerate rather than edit.*", "",
           "## Setup", "",
           f"- **Task**: {task.description}. ({task.references})" if task.references else f"- **Task**: {task.description}.",
           f"- **Settings**: {', '.join(f'{k}={v}' for k, v in settings.items()) or '–'}",
           f"- **Profile**: `{profile}` — {len(studies)} studies (variant × cell), {parent_params.get('trials', '?')} "
           f"trials each, at most {parent_params.get('max_epochs', '?')} epochs per trial, pruner "
           f"{parent_params.get('pruner', '?')}, TPE sampler seed {parent_params.get('sampler_seed', '?')}, "
           f"final seeds {parent_params.get('final_seeds', '?')}.",
           f"- **Protocol**: each study tunes on the validation split ({task.monitor}, {task.monitor_mode}); its best "
           "configuration is retrained once per final seed and evaluated once on test, from the best-validation "
           "checkpoint. The test split never takes part in selection.",
           f"- **Dates**: {when(min(starts)) if starts else '–'} to {when(max(ends)) if ends else '–'}",
           f"- **Code version**: {', '.join(f'`{c}`' for c in commits) or 'unknown'}",
           f"- **Hardware**: {'; '.join(hardware) or 'unknown'}; torch {', '.join(torch_versions) or '?'}",
           f"- **Memoryless baseline** ({main_metric}): {fmt(baseline)}", ""]

    missing = []
    for study in studies:
        counts = study.state_counts()
        planned_trials, planned_seeds = study.planned("trials", 0), study.planned("final_seeds", 0)
        done = counts["complete"] + counts["pruned"]
        if done < planned_trials or len(study.finished_finals) < planned_seeds:
            missing.append(f"- {label(study)}: {done}/{planned_trials} trials finished, "
                           f"{len(study.finished_finals)}/{planned_seeds} final seeds")
    out += ["## Status", ""] + (["Incomplete (a sweep still running, or interrupted: re-run `make sweep` to resume):",
                                 *missing] if missing else ["Complete: every study finished its trials and final seeds."])
    out.append("")

    header = ["variant", "cell", f"{main_metric} mean ± sd", "95% CI", "n"]
    header += [f"{k} mean ± sd" for k in metric_keys[1:]]
    header += ["baseline", "gap to baseline", "best val", "params", "s / epoch", "trials c/p/f"]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best_study, best_mean = None, None
    for study in studies:
        main = summarize(final_values(study, main_metric))
        counts = study.state_counts()
        best = best_trial(study, monitor_best, task.monitor_mode)
        params = summarize(final_values(study, "params/count"))
        seconds = summarize(final_values(study, "time/seconds_per_epoch"))
        cells = [study.variant + (f" ({study.grid})" if study.grid else ""), study.cell,
                 f"{fmt(main.mean)} ± {fmt(main.sd)}" if main else "–",
                 f"[{fmt(main.ci_low)}, {fmt(main.ci_high)}]" if main else "–", str(main.n if main else 0)]
        for key in metric_keys[1:]:
            extra = summarize(final_values(study, key))
            cells.append(f"{fmt(extra.mean)} ± {fmt(extra.sd)}" if extra else "–")
        gap = f"{fmt(main.mean - baseline)} ({main.mean / baseline:.2f}×)" if main and baseline else "–"
        cells += [fmt(baseline), gap, fmt(best.data.metrics[monitor_best]) if best else "–",
                  str(int(params.mean)) if params else "–", fmt(seconds.mean, 3) if seconds else "–",
                  f"{counts['complete']}/{counts['pruned']}/{counts['failed']}"]
        table.append("| " + " | ".join(cells) + " |")
        if main and (best_mean is None or (main.mean > best_mean if task.higher_is_better else main.mean < best_mean)):
            best_study, best_mean = study, main.mean
    out += ["## Results", "", f"{main_metric} of the final seeds ({better} is better); gap = mean − baseline "
            "(and mean / baseline); best val = the study's best trial on validation.", ""] + table + [""]

    plot_test_metric(studies, baseline, main_metric, images / "test_metric.png")
    out += [f"![{main_metric} per variant]({task.name}/test_metric.png)", ""]

    keys = searched_keys(studies)
    out += ["## Best hyperparameters", "", "| variant | cell | best trial | " + " | ".join(keys) + " |",
            "|" + "---|" * (len(keys) + 3)]
    curves = {}
    for study in studies:
        best = best_trial(study, monitor_best, task.monitor_mode)
        if best is None:
            out.append(f"| {study.variant} | {study.cell} | – |" + " – |" * len(keys))
            continue
        out.append(f"| {study.variant} | {study.cell} | {best.data.tags.get('optuna_trial', '?')} | "
                   + " | ".join(fmt_param(best.data.params.get(k)) for k in keys) + " |")
        curves[label(study)] = metric_history(best.info.run_id, task.monitor)
    out += ["", "## Hyperparameter importance", "", "fANOVA importance (Optuna) of each searched "
            "hyperparameter for the validation objective; unreliable with few trials.", ""]
    out += [f"- {label(s)}: {importance(s, storage_url)}" for s in studies] + [""]

    plot_val_curves(curves, baseline, task.monitor, images / "val_curves.png")
    plot_history(studies, monitor_best, task.monitor_mode, images / "optimization_history.png")
    out += ["## Validation curves", "", f"![validation curves]({task.name}/val_curves.png)", "",
            "## Optimisation history", "", f"![optimisation history]({task.name}/optimization_history.png)", ""]

    out += ["## Findings", "", "Differences of the final-seed test metric, by Welch's t-test (one-sided t-test "
            "against the baseline), p-values Holm-adjusted over all comparisons below.", ""]
    out += [f"- {line}" for line in findings(studies, baseline, main_metric, task.higher_is_better)] + [""]
    out += learning_curve(task, studies, main_metric, images)
    long_range, horizons = long_range_and_verdicts(task, studies, load_horizon_data(task, horizon_margin), images)
    out += long_range

    line = "no finished final seeds yet"
    if best_study:
        line = (f"best: {label(best_study)} {main_metric} {fmt(best_mean)} vs baseline {fmt(baseline)}"
                + (f" ({best_mean / baseline:.2f}×)" if baseline else ""))
    line += f"; {horizons}" if horizons else ""
    summary = {"task": task.name, "profile": profile, "summary": line, "incomplete": bool(missing),
               "hardware": "; ".join(hardware),
               "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    return "\n".join(out), summary


def long_range_and_verdicts(task, studies, horizon, images: Path) -> tuple[list[str], str]:
    """Horizon, ablation, probe and zero-input sections (long-range tasks), then the verdicts; and
    a one-line summary of the horizons for the index ("" without horizon runs)."""
    zero_input = zero_input_table() if "T" in task.settings else None
    out = []
    if horizon:
        out += horizon_section(task, horizon, images) + ablation_section(task, horizon, images)
        out += probe_section(task, horizon, images)
    if zero_input:
        out += zero_input_section(task, zero_input, images)
    summary = ""
    if horizon:
        arms = [a for a in ordered_arms(horizon.table) if a.count("/") == 1]
        summary = f"horizon ({horizon.axis}, {horizon.profile}): " + ", ".join(
            f"{a} {horizon.describe(a, task.higher_is_better).replace(' (longest tested)', '')}" for a in arms)
    return out + verdict_section(all_verdicts(task, studies, horizon, zero_input)), summary


def render_horizon_only(task, images: Path) -> tuple[str, dict]:
    """A report for a task with horizon runs but no sweep yet."""
    horizon = load_horizon_data(task, horizon_margin)
    hardware = sorted({r.data.tags.get("hardware", "unknown") for r in horizon.runs})
    out = [f"# {task.name}: recurrent variants compared", "",
           f"*Generated by `make report TASK={task.name}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} "
           f"from the MLflow store `{tracking.safe_url(tracking.tracking_uri())}`. Regenerate rather than edit.*", "",
           f"- **Task**: {task.description}. ({task.references})", f"- **Hardware**: {'; '.join(hardware)}",
           f"- No sweep yet (`make sweep TASK={task.name}`): this report holds the horizon runs only.", ""]
    long_range, line = long_range_and_verdicts(task, [], horizon, images)
    out += long_range
    return "\n".join(out), {"task": task.name, "profile": f"horizon {horizon.profile}", "summary": line,
                            "incomplete": False, "hardware": "; ".join(hardware),
                            "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def learning_curve(task, studies, metric: str, images: Path) -> list[str]:
    """With a grid over train_subset: the test metric and the train-vs-validation gap by labeled size."""
    if not any("train_subset=" in s.grid for s in studies):
        return []
    import matplotlib.pyplot as plt

    curves: dict[str, list] = {}
    rows = ["| variant | cell | labeled examples | " + f"{metric} mean ± sd | train − val {task.metrics[0].name} "
            "(at the best epoch) |", "|---|---|---|---|---|"]
    for study in studies:
        sizes = final_values(study, "data/train_examples")
        summary, gaps = summarize(final_values(study, metric)), [train_validation_gap(r, task) for r in
                                                                study.finished_finals]
        gap = summarize([g for g in gaps if g is not None])
        if not sizes or not summary:
            continue
        others = [f"{k}={v}" for k, v in grid_parts(study.grid).items() if k != "train_subset"]
        curves.setdefault("/".join([study.variant, study.cell, *others]), []).append((sizes[0], summary.mean, summary.sd))
        rows.append(f"| {'/'.join([study.variant, *others])} | {study.cell} | {int(sizes[0])} | {fmt(summary.mean)} ± {fmt(summary.sd)} | "
                    f"{fmt(gap.mean) if gap else '–'} ± {fmt(gap.sd) if gap else '–'} |")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, points in curves.items():
        points.sort()
        ax.errorbar([p[0] for p in points], [p[1] for p in points],
                    yerr=[0 if math.isnan(p[2]) else p[2] for p in points], marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labeled training examples")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(images / "learning_curve.png", dpi=110)
    plt.close(fig)
    return ["## Learning curve by labeled size", "", "Pretrained embeddings are claimed to curb overfitting when "
            "labeled data is small: compare the test metric and the train − validation gap across sizes.", "",
            *rows, "", f"![learning curve]({task.name}/learning_curve.png)", ""]


def fmt_param(value: str | None) -> str:
    if value is None:
        return "–"
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() and "." not in value else f"{number:.3g}"


def write_index(out_dir: Path = REPORTS) -> Path:
    """reports/README.md: one line per task report found on disk."""
    lines = ["# Reports", "", "One report per task, generated by `make report TASK=<task>` from the MLflow store. "
             "The committed reference results were produced on this project's 2-core development machine (no GPU), "
             "with the profile named in each row.", "",
             "| task | profile | summary | hardware | generated |", "|---|---|---|---|---|"]
    for task in all_tasks():
        summary_file = out_dir / task / "summary.json"
        if summary_file.exists() and (out_dir / f"{task}.md").exists():
            summary = json.loads(summary_file.read_text())
            state = " (incomplete)" if summary.get("incomplete") else ""
            lines.append(f"| [{task}]({task}.md) | {summary['profile']} | {summary['summary']}{state} | "
                         f"{summary.get('hardware', '?')} | {summary['generated'][:10]} |")
    path = out_dir / "README.md"
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
