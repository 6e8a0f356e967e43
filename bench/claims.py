"""The claims page: each claim of the material x each task that tests it, with its verdict, the key
number and a link to the task report's section, and an overall line per claim. Built from the task
reports' summary.json files in one folder, so the user's reports and the reference set each get
their own page (`make report`, `make reference`)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.verdicts import BUDGET_LIMITED, CLAIMS, INCONCLUSIVE, NOT_SUPPORTED, NOT_TESTED, SUPPORTED, WORDS


def overall(verdicts: dict[str, str]) -> str:
    """One line from the tasks' verdicts (task -> verdict) of one claim."""
    tested = {task: v for task, v in verdicts.items() if v != NOT_TESTED}
    if not tested:
        return NOT_TESTED

    def named(word: str) -> str:
        return ", ".join(sorted(task for task, v in tested.items() if v == word))

    if SUPPORTED in tested.values() and NOT_SUPPORTED in tested.values():
        return f"mixed: supported on {named(SUPPORTED)}, not supported on {named(NOT_SUPPORTED)}"
    for word in (SUPPORTED, NOT_SUPPORTED, BUDGET_LIMITED):
        if word in tested.values():
            others = sorted({v for v in tested.values() if v != word})
            return word + (f" (on {named(word)}; also {', '.join(others)})" if others else f" (on {named(word)})")
    return INCONCLUSIVE


def write_claims(out_dir: Path) -> Path:
    """claims.md in `out_dir`, from every `<task>/summary.json` there."""
    summaries = []
    for path in sorted(out_dir.glob("*/summary.json")):
        try:
            summaries.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    lines = [
        "# Claims",
        "",
        "Each claim of the material, judged on each task whose runs test it (verdicts from the "
        "task reports in this folder; the evidence and its test are in each report's Verdicts section).",
        "",
        "Verdict words: " + "; ".join(f"**{word}**: {meaning}" for word, meaning in WORDS.items()) + ".",
        "",
    ]
    missing = [s["task"] for s in summaries if "verdicts" not in s]
    for number, claim in CLAIMS.items():
        rows, verdicts = [], {}
        for summary in summaries:
            found = next((v for v in summary.get("verdicts", []) if v["id"] == number), None)
            if found is None:
                continue
            verdicts[summary["task"]] = found["verdict"]
            if found["verdict"] != NOT_TESTED or found.get("scope"):  # a part tested is shown, not counted
                scope = f" ({found['scope']})" if found.get("scope") else ""
                rows.append(
                    f"| [{summary['task']}]({summary['task']}.md#verdicts) | {summary.get('profile', '?')} | "
                    f"{found['verdict']}{scope} | {found.get('key', '')} |"
                )
        if claim.computed is not None:
            computed = claim.computed()
            verdicts["(computed)"] = computed.verdict
            rows.append(f"| (computed) | – | {computed.verdict} | {computed.key} |")
        verdict = overall(verdicts) if verdicts or not missing else "no verdict recorded (see the note below)"
        lines += [f"## {number}. {claim.text}", "", f"**Overall: {verdict}**", ""]
        if rows:
            lines += ["| task | profile | verdict | key number |", "|---|---|---|---|", *rows, ""]
        else:
            lines += [f"No task report here tests it (it needs {claim.needs}).", ""]
    if missing:
        lines += [
            f"Reports without recorded verdicts (written before verdicts were recorded, under the earlier "
            f"epoch-budget protocol; regenerate them): {', '.join(missing)}. Their own Verdicts sections use "
            "the earlier rules.",
            "",
        ]
    path = out_dir / "claims.md"
    path.write_text("\n".join(lines))
    return path
