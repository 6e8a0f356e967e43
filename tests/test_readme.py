"""The README is read in ten minutes and tells the truth: at most 160 lines, every docs/ page it links
exists, its test commands are the ones CI runs, and every sweep, horizon and claim-experiment figure
that it or a docs/ page quotes (studies, trials, final seeds, runs, arms, values, seeds, steps) is what
the files in sweeps/ give, as the plans count them (studies x (trials + final seeds); arms x values x
seeds).

A figure is quoted in one of these forms (anything else that says "N studies", "N runs" or "N arms" is
an error here, so no unchecked count slips in):
- inline: copy-memory `cpu` sweep: 6 studies × (6 trials + 3 final seeds) = 54 runs, each up to 4,000 steps
- a row of the sweep table:   | task | profile | studies | trials + final seeds | runs | budget per run |
- a row of the horizon table: | task | profile | arms | T | seeds | runs | budget per run |
- a row of the claims table:  | `name` | decides | task, axis | profile | arms × values × seeds = runs | budget | ...
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bench.claim_spec import CLAIMS_DIR, load_claim
from bench.horizon_spec import load_horizon
from bench.sweep_config import load_sweep
from tests.sweep_helpers import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

NUMBER = r"\d[\d,]*"
BUDGET = (
    rf"(?:up to (?P<steps>{NUMBER}) steps(?:, validation every (?P<every>{NUMBER}), patience (?P<patience>{NUMBER}))?"
    r"|(?P<epochs>\d+) epochs?)"
)
INLINE_SWEEP = re.compile(
    rf"(?P<task>[a-z0-9-]+) `(?P<profile>[a-z-]+)` sweep: (?P<studies>{NUMBER}) studies × \((?P<trials>{NUMBER}) "
    rf"trials \+ (?P<finals>{NUMBER}) final seeds\) = (?P<runs>{NUMBER}) runs(?:, each {BUDGET})?"
)
SWEEP_ROW = re.compile(
    rf"^\| (?P<task>[a-z0-9-]+) \| (?P<profile>[a-z-]+) \| (?P<studies>{NUMBER}) \| (?P<trials>{NUMBER}) \+ "
    rf"(?P<finals>{NUMBER}) \| (?P<runs>{NUMBER}) \| {BUDGET} \|$",
    re.M,
)
HORIZON_ROW = re.compile(
    rf"^\| (?P<task>[a-z0-9-]+) \| (?P<profile>[a-z-]+) \| (?P<arms>{NUMBER}) \| (?P<values>[\d, ]+) \| "
    rf"(?P<seeds>{NUMBER}) \| (?P<runs>{NUMBER}) \| {BUDGET} \|$",
    re.M,
)
CLAIM_ROW = re.compile(
    rf"^\| `(?P<name>[a-z0-9-]+)` \| (?P<claims>[0-9a-z, ]+) \| (?P<task>[a-z0-9-]+), (?P<axis>[a-z_A-Z]+) \| "
    rf"(?P<profile>[a-z-]+) \| (?P<arms>{NUMBER}) × (?P<values>{NUMBER}) × (?P<seeds>{NUMBER}) = (?P<runs>{NUMBER}) \| "
    rf"{BUDGET} \|",
    re.M,
)
COUNT = re.compile(rf"\b{NUMBER} (?:[a-z-]+ )?(?:studies|runs|arms)\b")


def number(text: str | None) -> int | None:
    return None if text is None else int(text.replace(",", ""))


def figures(pattern: re.Pattern) -> list[tuple[str, re.Match]]:
    return [(page.name, match) for page in PAGES for match in pattern.finditer(page.read_text())]


def check_budget(where: str, match: re.Match, spec) -> None:
    if match["steps"] is not None:
        assert number(match["steps"]) == spec.max_steps, f"{where}: steps"
        if match["every"] is not None:
            assert number(match["every"]) == spec.eval_every_steps, f"{where}: validation interval"
            assert number(match["patience"]) == spec.patience_steps, f"{where}: patience"
    elif match["epochs"] is not None:
        assert spec.max_steps == 0 and number(match["epochs"]) == spec.max_epochs, f"{where}: epochs"


def test_the_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines: move detail into docs/"


def test_every_docs_page_the_readme_and_the_docs_link_exists():
    linked = 0
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (page.parent / target).exists(), f"{page.name} links {target}, which does not exist"
            linked += target.startswith("docs/") and page == README
    assert linked >= 7  # tracking, sweeps, own-data, diagnostics, claims, gpu, tests


def test_every_docs_page_is_linked_from_the_readme():
    readme = README.read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"docs/{page.name} is not linked from the README"


def test_the_readme_test_commands_are_what_ci_runs():
    """CI (.ci/run) runs `make lint` and `make test-all`; the README's Tests block names both as CI's."""
    readme = README.read_text()
    block = re.search(r"## Tests\n\n```bash\n(.*?)```", readme, re.S)
    assert block, "the README has a Tests section with one bash block"
    commands = [shlex.split(line.split("#")[0]) for line in block[1].splitlines() if line.strip()]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    for command in (["make", "test-all"], ["make", "lint"]):
        assert command in commands and " ".join(command) in ci
    assert "what CI runs (.ci/run)" in block[1]


def test_quoted_sweep_figures_match_the_sweep_files():
    found = figures(INLINE_SWEEP) + figures(SWEEP_ROW)
    assert any(m["task"] == "copy-memory" and m["profile"] == "cpu" for page, m in found if page == "README.md")
    for page, match in found:
        spec = load_sweep(match["task"], match["profile"])
        where = f"{page}: {match[0]}"
        studies = len(spec.studies)
        assert number(match["studies"]) == studies, f"{where}: studies"
        assert number(match["trials"]) == spec.trials, f"{where}: trials"
        assert number(match["finals"]) == len(spec.final_seeds), f"{where}: final seeds"
        assert number(match["runs"]) == studies * (spec.trials + len(spec.final_seeds)), f"{where}: runs"
        check_budget(where, match, spec)


def test_the_sweep_table_lists_every_profile_of_every_sweep_file():
    import yaml

    listed = {(m["task"], m["profile"]) for page, m in figures(SWEEP_ROW)}
    for path in sorted((ROOT / "sweeps").glob("*.yaml")):
        for profile in yaml.safe_load(path.read_text()).get("profiles", {}):
            assert (path.stem, profile) in listed, f"docs/sweeps.md lacks {path.stem} {profile}"


def test_quoted_horizon_figures_match_the_horizon_files():
    found = figures(HORIZON_ROW)
    assert found
    for page, match in found:
        spec = load_horizon(match["task"], match["profile"])
        where = f"{page}: {match[0]}"
        values = [int(v) for v in match["values"].split(",")]
        assert values == list(spec.values), f"{where}: lengths"
        assert number(match["arms"]) == len(spec.arms), f"{where}: arms"
        assert number(match["seeds"]) == len(spec.seeds), f"{where}: seeds"
        assert number(match["runs"]) == len(spec.arms) * len(spec.values) * len(spec.seeds), f"{where}: runs"
        check_budget(where, match, spec)


def test_quoted_claim_experiment_figures_match_the_claim_files():
    found = figures(CLAIM_ROW)
    assert {m["name"] for _, m in found} == {path.stem for path in CLAIMS_DIR.glob("*.yaml")}
    for page, match in found:
        spec = load_claim(CLAIMS_DIR / f"{match['name']}.yaml", match["profile"])
        where = f"{page}: {match[0]}"
        assert [c.strip() for c in match["claims"].split(",")] == spec.claims, f"{where}: claims"
        assert (match["task"], match["axis"]) == (spec.task, spec.axis), f"{where}: task and axis"
        assert number(match["arms"]) == len(spec.arms), f"{where}: arms"
        assert number(match["values"]) == len(spec.values), f"{where}: values"
        assert number(match["seeds"]) == len(spec.seeds), f"{where}: seeds"
        assert number(match["runs"]) == len(spec.arms) * len(spec.values) * len(spec.seeds), f"{where}: runs"
        check_budget(where, match, spec)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_count_of_studies_runs_or_arms_escapes_the_checked_forms(page: Path):
    text = page.read_text()
    checked = [
        m.span() for pattern in (INLINE_SWEEP, SWEEP_ROW, HORIZON_ROW, CLAIM_ROW) for m in pattern.finditer(text)
    ]
    for count in COUNT.finditer(text):
        assert any(start <= count.start() < end for start, end in checked), (
            f"{page.name}: {count[0]!r} is not in a checked form ({text[max(0, count.start() - 80) : count.end()]!r})"
        )
