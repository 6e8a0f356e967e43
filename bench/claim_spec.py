"""A claim experiment (`sweeps/claims/<name>.yaml`) as its spec: the experiment designed to decide one
or more claims (`claims`, ids of `verdicts.CLAIMS`; `why` its design can). It is a horizon grid (the
same runner, resume and budgets; stage `claim`) whose arms are named in `lineup` (variant, cell, knobs),
each trained at every learning rate of a small grid (`lrs`; the one with the best mean validation
loss is judged), at each length of `values`, with `seeds`, and stopped once solved (`solved` x the
baseline loss). `reference` names the simple-RNN arm (claims 1, 7); `contrasts` the pairs [claimed
better, than] a comparison claim judges (3, 4, 5, 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

import yaml
from pydantic import Field, model_validator

from bench import file_schema as schema
from bench.cells import CELLS
from bench.errors import UserError
from bench.horizon_spec import Arm, HorizonSpec, check_arms
from bench.paths import ROOT
from bench.registry import get_task
from bench.run_keys import Stage, Tag
from bench.verdicts import CLAIMS

CLAIMS_DIR = ROOT / "sweeps" / "claims"
VERDICT_PROFILES = ("cpu", "gpu")  # smoke and test profiles are looks at the machinery: never a verdict
PositiveFloat = Annotated[float, Field(gt=0, description="a positive number")]


class LineupArm(schema.Strict):
    variant: schema.Variant = "simple"
    cell: Literal[tuple(CELLS)] = Field(description=f"a cell from {', '.join(CELLS)}")
    knobs: schema.Knobs = Field({}, description="a mapping of knob: value for this arm")
    lrs: list[PositiveFloat] | None = Field(None, description="this arm's learning rates (default: the file's)")


class ClaimSpec(HorizonSpec):
    stage: ClassVar[str] = Stage.CLAIM
    name: str = ""  # the file's stem (set by the loader)
    claims: list[str] = Field(min_length=1, description="a non-empty list of claim ids (verdicts.CLAIMS)")
    why: str = Field(description="why this design can decide its claims")
    lineup: dict[str, LineupArm] = Field(min_length=1, description="a mapping of arm name: {variant, cell, knobs}")
    lrs: list[PositiveFloat] = Field([], description="the learning-rate grid (empty: the fixed lr)")
    reference: str | None = Field(None, description="the lineup's simple-RNN arm (claims 1 and 7)")
    contrasts: list[Annotated[list[str], Field(min_length=2, max_length=2)]] = Field(
        [], description="a list of [claimed better, than] arm-name pairs"
    )
    solved: float = Field(0.01, ge=0, lt=1, description="a share of the baseline loss in [0, 1)")
    metric: str | None = Field(
        None, description="the test metric judged: loss or one of the task's (default: its report metric)"
    )

    @model_validator(mode="after")
    def names_in_the_lineup(self):
        named = [self.reference] if self.reference else []
        for name in [*named, *(n for pair in self.contrasts for n in pair)]:
            if name not in self.lineup:
                raise schema.SchemaError(f"{name!r} is not an arm of the lineup ({', '.join(self.lineup)})")
        return self

    @property
    def arms(self) -> list[Arm]:
        """Each lineup arm at each of its learning rates: "lstm lr=0.001", or "lstm" with one."""
        arms = []
        for name, arm in self.lineup.items():
            lrs = arm.lrs or self.lrs or [None]
            for lr in lrs:
                label = name if len(lrs) == 1 else f"{name} lr={lr:g}"
                knobs = {**arm.knobs, **({"lr": lr} if lr else {})}
                arms.append(Arm(arm.variant, arm.cell, name, label, tuple(sorted(knobs.items()))))
        return arms

    @property
    def budget_knobs(self) -> dict:
        return super().budget_knobs | ({"solved": self.solved} if self.solved else {})

    @property
    def run_tags(self) -> dict[str, str]:
        return super().run_tags | {Tag.EXPERIMENT: self.name}

    @property
    def decides(self) -> bool:
        """Whether this profile's runs may give a verdict (cpu, gpu) or are a look (smoke, test)."""
        return self.profile in VERDICT_PROFILES

    @property
    def fingerprint(self) -> str:
        """What makes two runs the same experiment; more seeds, lengths or learning rates add runs to it."""
        knobs = self.model_dump(
            include={"axis", "settings", "fixed", "lineup"}, exclude={"lineup": {"__all__": {"lrs"}}}
        )
        knobs["budget"] = [self.max_epochs, self.max_steps, self.eval_every_steps, self.patience_steps, self.solved]
        return schema.digest(knobs)


def experiment_paths(claim: str | None = None) -> list[Path]:
    """Every claim experiment file, or those deciding `claim`, or the one named `claim` (e.g. depth-sst2)."""
    paths = sorted(CLAIMS_DIR.glob("*.yaml"))
    if claim is None:
        return paths
    if (CLAIMS_DIR / f"{claim}.yaml") in paths:
        return [CLAIMS_DIR / f"{claim}.yaml"]
    chosen = [p for p in paths if claim in (yaml.safe_load(p.read_text()) or {}).get("claims", [])]
    if not chosen:
        raise UserError(f"no claim experiment decides claim {claim!r} (files in {CLAIMS_DIR.relative_to(ROOT)})")
    return chosen


def load_claim(path: Path, profile: str | None = None, knobs: dict | None = None) -> ClaimSpec:
    """Read and validate one claim experiment file (its profile merged in, `knobs` from the command line
    added to its fixed knobs, e.g. data_dir=... offline); UserError names file and key."""
    try:
        task = (yaml.safe_load(path.read_text()) or {}).get("task")
    except (OSError, yaml.YAMLError):
        task = None  # read_spec names the problem
    spec = schema.read_spec(ClaimSpec, "claim experiment", path, str(task), profile, knobs)
    spec.name = path.stem
    known = ["loss", *(m.name for m in get_task(spec.task).metrics)]
    if spec.metric is not None and spec.metric not in known:
        raise UserError(f"{path}: metric: {spec.metric!r} is not a metric of task {spec.task} ({', '.join(known)})")
    for claim in spec.claims:
        if claim not in CLAIMS:
            raise UserError(f"{path}: claims: unknown claim {claim!r}; known: {', '.join(CLAIMS)}")
    return check_arms(spec)
