"""The claims page: each claim of the material x each task that tests it, with its verdict, the key
number and a link to the task report's section, and an overall line per claim. Built from the task
reports' summary.json files in one folder, so the user's reports and the reference set each get
their own page (`make report`, `make reference`)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cells import reference_cell

SUPPORTED, NOT_SUPPORTED, BUDGET_LIMITED = "supported", "not supported", "budget-limited"
INCONCLUSIVE, NOT_TESTED = "inconclusive", "not tested"
WORDS = {
    SUPPORTED: "the runs show it, with the test named in the evidence",
    NOT_SUPPORTED: "the runs contradict it, and they had converged (not still improving, not flat)",
    BUDGET_LIMITED: "the runs it rests on were still improving when their step budget ran out, or flat (they "
    "never left the baseline: a plateau is not convergence): a longer budget could change it",
    INCONCLUSIVE: "the runs neither show nor contradict it (too few seeds, wide intervals, mixed signs)",
    NOT_TESTED: "this task's runs do not test it",
}
CLAIMS = {
    "1": "The simple RNN is good at short-term and bad at long-term dependence.",
    "2a": "tanh keeps the state bounded where a linear recurrence explodes.",
    "2b": "tanh keeps the state alive where a linear recurrence dies.",
    "3": "Several layers beat one.",
    "4": "Bidirectional beats unidirectional.",
    "5": "Pretrained embeddings curb overfitting when labeled data is small.",
    "6": "A simple RNN has h·(h+x) + h parameters.",
}


def claim_id(claim: str) -> str:
    """ "2a. tanh keeps ..." -> "2a"."""
    return claim.split(".", 1)[0].strip()


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


def parameter_count_verdict() -> dict:
    """Claim 6, computed: the suite's one-layer simple RNN against the textbook count (torch imported
    here only, for the report)."""
    from bench.models import RecurrentNet, count_parameters, textbook_rnn_parameters

    hidden, inputs = 64, 16
    net = RecurrentNet(
        input_kind="floats",
        input_size=inputs,
        output_size=1,
        output_kind="per-sequence",
        cell=reference_cell(),
        hidden=hidden,
        embedding_size=inputs,
    )
    recurrent = count_parameters(net.recurrent)  # trainable: torch's second bias is frozen at 0
    expected = textbook_rnn_parameters(hidden, inputs)
    verdict = SUPPORTED if recurrent == expected else NOT_SUPPORTED
    return {
        "id": "6",
        "verdict": verdict,
        "key": f"recurrent layer h={hidden}, x={inputs}: {recurrent:,} parameters, h·(h+x)+h = {expected:,} "
        f"trainable (PyTorch's nn.RNN has a second bias vector, fixed at zero here: {expected + hidden:,} "
        "with it)",
    }


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
    computed = parameter_count_verdict()
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
        if number == "6":
            verdicts["(computed)"] = computed["verdict"]
            rows.append(f"| (computed) | – | {computed['verdict']} | {computed['key']} |")
        verdict = overall(verdicts) if verdicts or not missing else "no verdict recorded (see the note below)"
        lines += [f"## {number}. {claim}", "", f"**Overall: {verdict}**", ""]
        if rows:
            lines += ["| task | profile | verdict | key number |", "|---|---|---|---|", *rows, ""]
        else:
            lines += ["No task report here tests it.", ""]
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
