"""A claim experiment's report (`<folder>/claims/<name>.md`) and its record (`<name>.json`: the verdicts,
key numbers, compute and load), written from what MLflow holds; and the claims page built from the
records in one folder, so experiments run in separate sittings and stores combine (`make claims`,
`make claims-reference`)."""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path

from bench.claim_judges import ExperimentData, tabulate
from bench.claim_rules import RULES, estimate
from bench.claim_spec import load_claim
from bench.claims import beyond_cpu, write_claims
from bench.console import duration
from bench.markdown import markdown_table
from bench.paths import ROOT
from bench.registry import get_task
from bench.results import compute_time, horizon_runs, train_validation_gap
from bench.run_keys import Tag
from bench.verdicts import CLAIMS

LOCAL, REFERENCE = ROOT / "reports" / "local", ROOT / "reports" / "reference"


def read_experiment(spec) -> tuple[ExperimentData, list]:
    task = get_task(spec.task)
    runs = horizon_runs(spec.task, spec.profile, spec.fingerprint, spec.stage)
    data = tabulate(spec, task, runs)
    if "5" in spec.claims:  # the overfitting the claim is about: train - validation at the best validation
        for cell, chosen in data.chosen.items():
            data.gaps[cell] = [g for r in chosen if r.complete and (g := train_validation_gap(r, task)) is not None]
    return data, runs


def decisions(data: ExperimentData) -> list:
    return [CLAIMS[claim].decide(data) for claim in data.spec.claims if CLAIMS[claim].decide is not None]


def arm_table(data: ExperimentData) -> list[str]:
    """One row per arm and length: the chosen learning rate, the runs, the test metric's centre and
    95% interval, and the convergence flags."""
    higher, axis = data.higher, data.spec.axis
    unit = f"test {data.metric} (mean [95%])" if higher else f"test {data.metric} / baseline (geometric mean [95%])"
    rows = []
    for name, cells in data.table.items():
        for value, arm in sorted(cells.items()):
            scale = 1 if higher or not arm.baseline else arm.baseline
            shown = estimate([v / scale for v in arm.values], higher)
            tried = data.lr_choice.get((name, value), {})
            lrs = (
                ", ".join(f"{lr:g}{'*' if lr == arm.lr else ''}" for lr in sorted(tried))
                if len(tried) > 1
                else f"{arm.lr:g}"
            )
            flags = [f"{arm.solved} solved"] * bool(arm.solved) + [f"↑{arm.still_improving}"] * bool(
                arm.still_improving
            )
            flags += [f"{len(arm.flat_steps)} flat"] * bool(arm.flat_steps) + [f"{arm.misses} missed"] * bool(
                arm.misses
            )
            rows.append(
                [
                    name,
                    f"{value}",
                    lrs,
                    f"{arm.n}",
                    shown.text() if shown else "–",
                    ", ".join(flags) or "–",
                    f"{arm.params or '?':,}" if arm.params else "?",
                ]
            )
    return markdown_table(["arm", axis, "lr (* chosen on validation)", "runs", unit, "flags", "parameters"], rows)


def compute_line(runs: list) -> dict:
    busy, summed, count = compute_time(runs)
    loads = sorted(float(r.tags[Tag.LOAD_AVERAGE]) for r in runs if r.tags.get(Tag.LOAD_AVERAGE))
    commits = sorted({r.tags.get(Tag.GIT_COMMIT, "?")[:7] for r in runs})
    hardware = next((r.tags.get(Tag.HARDWARE) for r in runs if r.tags.get(Tag.HARDWARE)), platform.processor())
    return {
        "wall_seconds": busy,
        "run_seconds": summed,
        "runs": count,
        "load": [loads[0], loads[-1]] if loads else None,
        "commits": commits,
        "hardware": hardware,
    }


def write_experiment(spec, folder: Path) -> Path | None:
    """The experiment's report and record in `folder`; None (nothing written) when it has no runs in this
    store: a record without runs would hide another sitting's record of the same experiment."""
    data, runs = read_experiment(spec)
    if not runs:
        return None
    found = decisions(data) if spec.decides and data.table else []
    compute = compute_line(runs)
    load = f"load {compute['load'][0]:g}–{compute['load'][1]:g} at the runs' starts" if compute["load"] else "load ?"
    lines = [
        f"# Claim experiment: {spec.name} (claims {', '.join(spec.claims)})",
        "",
        f"{spec.description[:1].upper()}{spec.description[1:]}. Task **{spec.task}**, profile **{spec.profile}**, from `sweeps/claims/{spec.name}.yaml`.",
        "",
        f"**Why this design can decide it.** {spec.why.strip()}",
        "",
        f"Budget per run: {spec.describe_budget()}, stopped once solved (validation loss below {spec.solved:g} × "
        f"the baseline); {len(spec.seeds)} seeds; margin {spec.margin:g}.",
        "",
        f"Compute: {duration(compute['wall_seconds'])} of wall time while a run trained, "
        f"{duration(compute['run_seconds'])} of run time summed over {compute['runs']} runs; {compute['hardware']}; "
        f"{load}; code {', '.join(compute['commits'])}.",
        "",
        "## Runs",
        "",
        *arm_table(data),
        "",
        "## Verdicts",
        "",
    ]
    if not spec.decides:
        lines += [f"None: the {spec.profile} profile is a look at the machinery, never a verdict.", ""]
    elif not found:
        lines += ["None yet: no finished runs.", ""]
    for decision in found:
        lines.append(f"- **{decision.claim}. {CLAIMS[decision.claim].text}** — ***{decision.verdict}***")
        lines += [f"  - {line}" for line in decision.evidence]
    lines += ["", "## Rules", "", *[f"- {rule}" for rule in RULES], ""]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.name}.md"
    path.write_text("\n".join(lines))
    record = {
        "experiment": spec.name,
        "axis": spec.axis,
        "values": spec.values,
        "gpu_plan": gpu_plan(spec)
        if spec.profile == "cpu" and any(beyond_cpu(d.claim, d.verdict) for d in found)
        else None,
        "task": spec.task,
        "profile": spec.profile,
        "claims": spec.claims,
        "decides": spec.decides,
        "verdicts": [{"id": d.claim, "verdict": d.verdict, "key": d.key} for d in found],
        "compute": compute,
        "generated": datetime.date.today().isoformat(),
    }
    (folder / f"{spec.name}.json").write_text(json.dumps(record, indent=1) + "\n")
    return path


def gpu_plan(spec) -> dict | None:
    """The experiment's gpu profile: its lengths and the time its plan estimates for one worker on this
    machine (what the claims page names when the cpu profile's lags could not decide claim 1 or 7)."""
    from bench.plan import horizon_seconds  # (lazy: torch, to probe a few steps)

    try:
        gpu = load_claim(spec.path, "gpu")
    except Exception:  # no gpu profile
        return None
    return {"values": gpu.values, "seconds_one_worker": sum(horizon_seconds(gpu).values())}


def write_claim_reports(specs: list, reference: bool = False, out: Path | None = None) -> list[Path]:
    base = out or (REFERENCE if reference else LOCAL)
    paths = [path for spec in specs if (path := write_experiment(spec, base / "claims")) is not None]
    return paths + [write_claims(base)]
