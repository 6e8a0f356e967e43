"""The claims page (`<folder>/claims.md`): each claim of the material with the verdict of every claim
experiment in `<folder>/claims/` that decides it (their `<name>.json` records: experiments run in
separate sittings and stores combine), the computed claims (2a, 2b, 6) judged once here, and the rules
every verdict follows. Smoke and test profiles never appear: they give no verdict."""

from __future__ import annotations

import json
from pathlib import Path

from bench.claim_rules import BUDGET_LIMITED, INCONCLUSIVE, NOT_SUPPORTED, NOT_TESTED, RULES, SUPPORTED
from bench.console import duration
from bench.verdicts import CLAIMS

WORDS = {
    SUPPORTED: "the designed experiment shows it, by the rules below",
    NOT_SUPPORTED: "its converged runs contradict it, or bound its effect below δ",
    BUDGET_LIMITED: "the runs it rests on had not converged (still improving, or a plateau shorter than the rule's)",
    INCONCLUSIVE: "converged runs, but neither shown nor bounded (more seeds would decide)",
    NOT_TESTED: "no experiment of this folder decides it",
}


def overall(verdicts: dict[str, str]) -> str:
    """One line from the experiments' verdicts (experiment -> verdict) of one claim."""
    decided = {name: v for name, v in verdicts.items() if v != NOT_TESTED}
    if not decided:
        return NOT_TESTED

    def named(word: str) -> str:
        return ", ".join(sorted(name for name, v in decided.items() if v == word))

    if SUPPORTED in decided.values() and NOT_SUPPORTED in decided.values():
        return f"mixed: supported on {named(SUPPORTED)}, not supported on {named(NOT_SUPPORTED)}"
    scale = [name for name, v in decided.items() if v.startswith(CPU_SCALE)]
    if scale and not {SUPPORTED, NOT_SUPPORTED} & set(decided.values()):
        return f"{CPU_SCALE} (on {', '.join(sorted(scale))})"
    for word in (SUPPORTED, NOT_SUPPORTED, BUDGET_LIMITED):
        if word in decided.values():
            others = sorted({v for v in decided.values() if v != word})
            return word + (f" (on {named(word)}; also {', '.join(others)})" if others else f" (on {named(word)})")
    return INCONCLUSIVE


def records(folder: Path) -> list[dict]:
    found = []
    for path in sorted((folder / "claims").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("decides"):
            found.append(record)
    return found


CPU_SCALE = "not decided at CPU scale"
CPU_SCALE_CLAIMS = ("1", "7")  # a lag long enough for them may be beyond a CPU: the gpu profile's is named


def beyond_cpu(claim: str, verdict: str) -> bool:
    """Claim 1 or 7 left undecided by a cpu profile's lags: the one case a page may say CPU_SCALE."""
    return claim in CPU_SCALE_CLAIMS and verdict in (BUDGET_LIMITED, INCONCLUSIVE)


def cpu_scale(record: dict, word: str) -> str:
    """Claims 1 and 7 where the cpu profile's lags could not decide: which lag it reached, and what the
    gpu profile (the literature's lags) would cost."""
    gpu, axis = record["gpu_plan"], record.get("axis", "T")
    return (
        f"{CPU_SCALE} ({word} at {axis} ≤ {max(record['values'])}; the gpu profile's "
        f"{axis} = {', '.join(map(str, gpu['values']))}: about {duration(gpu['seconds_one_worker'])} for one "
        "worker on this CPU, a fraction on a GPU)"
    )


def compute_text(record: dict) -> str:
    """ "41:10 wall, load 2.1–5.3": what the experiment cost, and how busy the machine was."""
    compute = record.get("compute") or {}
    load = compute.get("load")
    return f"{duration(compute.get('wall_seconds'))} wall" + (f", load {load[0]:g}–{load[1]:g}" if load else "")


def write_claims(folder: Path) -> Path:
    """claims.md in `folder`, from `folder/claims/*.json` and the computed claims."""
    found = records(folder)
    lines = [
        "# Claims",
        "",
        "Each claim of the material, decided by the claim experiment designed for it (`sweeps/claims/`, "
        "`make claims`; the evidence is in each experiment's report) or, for 6, by a computation made here "
        "(2a and 2b rest on the zero-input computation and a trained tanh/linear pair: their experiment).",
        "",
        "Verdict words: " + "; ".join(f"**{word}**: {meaning}" for word, meaning in WORDS.items()) + ".",
        "",
        "## Rules (every verdict, both directions)",
        "",
        *[f"- {rule}" for rule in RULES],
        "",
    ]
    for number, claim in CLAIMS.items():
        rows, verdicts = [], {}
        for record in found:
            for verdict in record["verdicts"]:
                if verdict["id"] == number:
                    word = verdict["verdict"]
                    if record.get("gpu_plan") and beyond_cpu(number, word):
                        word = cpu_scale(record, word)
                    verdicts[record["experiment"]] = word
                    rows.append(
                        f"| [{record['experiment']}](claims/{record['experiment']}.md) | {record['task']} | "
                        f"{record['profile']} | {word} | {verdict['key']} | {compute_text(record)} |"
                    )
        if claim.computed is not None:
            computed = claim.computed()
            verdicts["(computed)"] = computed.verdict
            rows.append(f"| (computed) | – | – | {computed.verdict} | {computed.key} | – |")
        lines += [f"## {number}. {claim.text}", "", f"**Overall: {overall(verdicts)}**", ""]
        if claim.delta is not None:
            lines += [
                f"δ for “no effect”: {claim.delta.points * 100:g} accuracy points or a factor "
                f"{claim.delta.ratio:g} on a loss ratio — {claim.delta.reason}",
                "",
            ]
        if rows:
            header = "| experiment | task | profile | verdict | key number | compute |"
            lines += [header, "|---|---|---|---|---|---|", *rows, ""]
        else:
            lines += [f"No experiment in this folder decides it yet (it needs {claim.needs}).", ""]
    path = folder / "claims.md"
    path.write_text("\n".join(lines))
    return path
