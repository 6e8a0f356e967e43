"""Sweeps that search: per-study samplers, start-up budgets, search spaces and step budgets."""

import optuna
import pytest
import yaml

from bench.config import resolve_config
from bench.convergence import BEST_STEP, LAST_FIFTH_GAIN, LEFT_BASELINE, NEVER, STILL, convergence, left_baseline_step
from bench.errors import UserError
from bench.sweep import load, study_name, suggest
from bench.sweep_config import SWEEP_DIR, load_sweep
from tests.sweep_helpers import write_sweep
from tests.text_helpers import LOCAL, make_dataset

SPACE = {
    "lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
    "hidden": {"type": "categorical", "choices": [32, 64, 128]},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
}


def three_studies(tmp_path):
    path = write_sweep(tmp_path / "s.yaml", cells=["rnn", "lstm", "gru"], search_space=SPACE, trials=4)
    return load_sweep("adding", "test", path)


def ask(spec, storage, key) -> tuple[optuna.Study, dict]:
    """What one worker does for its next trial: load the study (a fresh sampler) and draw a point."""
    name = study_name(spec, key)
    study = load(spec, storage, name)
    trial = study.ask()
    return study, suggest(trial, spec.space_for(key.variant))


def one_worker(spec, trials: int = 4) -> dict[str, list[dict]]:
    """Every study's points in order, each trial told a value that depends on its point."""
    storage, drawn = optuna.storages.InMemoryStorage(), {}
    for key in spec.studies:
        for _ in range(trials):
            study, point = ask(spec, storage, key)
            study.tell(study.get_trials(deepcopy=False)[-1].number, point["lr"] * point["hidden"])
            drawn.setdefault(key.label, []).append(point)
    return drawn


def test_studies_of_one_sweep_draw_different_first_points(tmp_path):
    drawn = one_worker(three_studies(tmp_path), trials=1)
    firsts = [tuple(sorted(points[0].items())) for points in drawn.values()]
    assert len(set(firsts)) == 3


def test_rerunning_one_worker_reproduces_every_point(tmp_path):
    spec = three_studies(tmp_path)
    assert one_worker(spec) == one_worker(spec)  # start-up and model-based trials alike


def test_a_second_worker_draws_a_different_point_while_the_first_runs(tmp_path):
    spec = three_studies(tmp_path)
    storage, key = optuna.storages.InMemoryStorage(), spec.studies[0]
    _, first = ask(spec, storage, key)  # trial 0 stays RUNNING
    _, second = ask(spec, storage, key)
    assert first != second


def test_workers_that_load_a_study_at_the_same_instant_draw_different_points(tmp_path):
    spec = three_studies(tmp_path)
    storage, key = optuna.storages.InMemoryStorage(), spec.studies[0]
    name = study_name(spec, key)
    first, second = load(spec, storage, name), load(spec, storage, name)  # both see no trials yet
    points = [suggest(study.ask(), spec.space_for(key.variant)) for study in (first, second)]
    assert points[0] != points[1]


def test_the_sampler_seed_changes_the_points(tmp_path):
    spec = three_studies(tmp_path)
    other = load_sweep(
        "adding",
        "test",
        write_sweep(tmp_path / "o.yaml", cells=["rnn", "lstm", "gru"], search_space=SPACE, trials=4, sampler_seed=7),
    )
    assert one_worker(spec, 1) != one_worker(other, 1)


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
@pytest.mark.parametrize("path", sorted(SWEEP_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_model_based_phase_runs_for_at_least_half_the_trials(path, profile):
    profiles = yaml.safe_load(path.read_text())["profiles"]
    if profile not in profiles:
        pytest.skip(f"no {profile} profile")
    spec = load_sweep(path.stem, profile)
    assert spec.trials - spec.startup_trials >= spec.trials / 2


@pytest.mark.parametrize("path", sorted(SWEEP_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_dropout_is_searched_only_where_it_acts(path):
    raw = yaml.safe_load(path.read_text())
    spaces = [raw.get("search_space") or {}] + [p.get("search_space") or {} for p in raw["profiles"].values() if p]
    assert all("dropout" not in space for space in spaces)
    for variant, space in (raw.get("variant_space") or {}).items():
        assert variant == "stacked" or "dropout" not in space


def reaches(spec, key, space: dict, name: str, value) -> bool:
    """`value` of `name` is a choice of the search space, or the value every trial uses (the task's
    training defaults under the file's fixed knobs, as a run resolves them)."""
    if name in space:
        return value in space[name].choices
    config = resolve_config(spec.task, key.variant, key.cell, {**spec.fixed, **dict(key.grid)})
    return getattr(config, name) == value


# 784-pixel sequences on 2 cores: the cpu profile fixes hidden at 64 (the gpu profile searches 128).
CPU_HIDDEN_CAPPED = {"seq-mnist", "perm-mnist"}


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
@pytest.mark.parametrize("path", sorted(SWEEP_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_search_spaces_reach_the_settings_that_learn(path, profile):
    if profile not in yaml.safe_load(path.read_text())["profiles"]:
        pytest.skip(f"no {profile} profile")
    spec = load_sweep(path.stem, profile)
    for key in spec.studies:
        space = spec.space_for(key.variant)
        assert space["lr"].high >= 3e-2
        assert reaches(spec, key, space, "batch_size", 128) and reaches(spec, key, space, "gradient_clip", 1.0)
        if not (profile == "cpu" and path.stem in CPU_HIDDEN_CAPPED):
            assert reaches(spec, key, space, "hidden", 128)


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
@pytest.mark.parametrize("task", ["copy-memory", "adding", "selective-copy"])
def test_step_budgets_outlast_the_known_plateau(task, profile):
    spec = load_sweep(task, profile)  # the tanh RNN's copy plateau: 2,000-2,500 steps at lr 1e-2
    assert spec.max_steps > 2500 and spec.patience_steps > 2500 and spec.pruner.n_warmup_steps > 2500
    assert spec.budget_knobs["patience"] * spec.eval_every_steps >= spec.patience_steps


@pytest.mark.parametrize("path", sorted(SWEEP_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_final_seeds_are_disjoint_from_the_search_seed(path):
    for profile in yaml.safe_load(path.read_text())["profiles"]:
        spec = load_sweep(path.stem, profile)
        assert spec.sampler_seed not in spec.final_seeds


def test_a_final_seed_equal_to_the_search_seed_is_refused(tmp_path):
    with pytest.raises(UserError, match="search seed"):
        load_sweep("adding", "test", write_sweep(tmp_path / "s.yaml", final_seeds=[0, 1]))


def test_a_step_budget_needs_a_validation_interval(tmp_path):
    with pytest.raises(UserError, match="eval_every_steps"):
        load_sweep("adding", "test", write_sweep(tmp_path / "s.yaml", max_steps=100))


# -- the convergence signal ---------------------------------------------------------------------------
def test_a_loss_still_falling_in_the_last_fifth_is_still_improving():
    history = [(step, 1.0 - step / 10_000) for step in range(250, 5001, 250)]
    signal = convergence(history, higher_is_better=False, early_stopped=False)
    assert signal[STILL] == 1.0 and signal[BEST_STEP] == 5000 and signal[LAST_FIFTH_GAIN] > 0.01


def test_a_plateaued_loss_is_not_still_improving():
    history = [(250, 1.0), (500, 0.5)] + [(step, 0.5 + 0.001 * (step % 500 == 0)) for step in range(750, 5001, 250)]
    signal = convergence(history, higher_is_better=False, early_stopped=False)
    assert signal[STILL] == 0.0 and signal[BEST_STEP] == 500


def test_the_step_a_run_left_the_baseline_and_a_run_that_never_did():
    plateau = [(step, 0.693) for step in range(250, 3501, 250)] + [(3750, 0.63), (4000, 0.55)]
    assert left_baseline_step(plateau, 0.6931, higher_is_better=False) == 3750
    assert convergence(plateau, False, False, scale=0.6931, baseline=0.6931)[LEFT_BASELINE] == 3750
    assert left_baseline_step(plateau[:14], 0.6931, higher_is_better=False) == NEVER  # flat for the whole budget
    accuracy = [(100, 0.5), (200, 0.509), (300, 0.6)]  # within 1 point of a 0.5 baseline, then beyond
    assert left_baseline_step(accuracy, 0.5, higher_is_better=True) == 300


def test_early_stopping_means_converged_and_accuracy_improves_upwards():
    rising = [(step, step / 10_000) for step in range(250, 5001, 250)]
    assert convergence(rising, higher_is_better=True, early_stopped=False)[STILL] == 1.0
    assert convergence(rising, higher_is_better=True, early_stopped=True)[STILL] == 0.0


# -- step budgets in training -------------------------------------------------------------------------
@pytest.mark.slow
def test_a_step_budget_stops_at_max_steps_and_validates_across_epochs():
    from bench import tracking
    from bench.config import resolve_config
    from bench.train import train

    config = resolve_config(
        "adding",
        "simple",
        "gru",
        {
            "T": 4,
            "n_train": 256,
            "n_val": 64,
            "n_test": 64,
            "batch_size": 32,
            "hidden": 8,
            "max_epochs": 100,
            "max_steps": 40,
            "eval_every_steps": 10,
            "patience": 100,
        },
    )
    result = train(config, progress=False)  # 8 steps an epoch: validations fall inside epochs
    metrics = tracking.client().get_run(result.run_id).data.metrics
    assert metrics["steps_trained"] == 40
    history = tracking.client().get_metric_history(result.run_id, "val/loss")
    assert len(history) == 4
    assert set(result.convergence) == {BEST_STEP, LAST_FIFTH_GAIN, STILL, "convergence/steps", LEFT_BASELINE}
    assert metrics[STILL] == result.convergence[STILL]
    assert result.convergence["convergence/steps"] == 40

    # A report reads the same step from the validation history of runs trained before it was logged.
    from bench.convergence import backfill_left_baseline
    from bench.registry import get_task
    from bench.results import RunRecord

    run = RunRecord.of(tracking.client().get_run(result.run_id))
    logged = run.metrics.pop(LEFT_BASELINE)
    backfill_left_baseline(get_task("adding"), [run])
    assert abs(run.metrics[LEFT_BASELINE] - logged) <= 1  # Lightning logs validation at global_step - 1


def test_a_loss_creeping_towards_zero_is_converged_when_measured_against_the_baseline():
    history = [(250, 0.5), (500, 1e-3)] + [(step, 3e-5 - step * 1e-9) for step in range(750, 5001, 250)]
    assert convergence(history, higher_is_better=False, early_stopped=False)[STILL] == 1.0  # 20% of 3e-5
    assert convergence(history, higher_is_better=False, early_stopped=False, scale=1.386)[STILL] == 0.0


def test_the_plan_times_a_step_budget_not_the_capping_epochs(tmp_path):
    from bench.plan import EpochCost, RunCost, build_plan

    path = write_sweep(tmp_path / "s.yaml", max_epochs=1000, max_steps=64, eval_every_steps=8)
    spec = load_sweep("adding", "test", path)
    plans = build_plan(
        spec,
        f"sqlite:///{tmp_path / 'none.db'}",
        epoch_probe=lambda s, k: EpochCost(step_seconds=0.1, steps=16, validation_seconds=2.0),
        overhead_probe=lambda s, k, e: RunCost(overhead=0.0, step_scale=1.0, startup=0.0),
    ).studies
    # 64 steps of 0.1 s, validated every 8 steps (not at each of the 4 epochs' ends): 6.4 s + 8 x 2 s
    assert plans[0].seconds_per_run == pytest.approx(6.4 + 16.0)


def test_the_plan_counts_the_steps_of_an_epoch_of_a_text_task_from_its_loader(tmp_path):
    """A text task has no n_train: its epoch length is the labeled split's, read from the data loader.
    (The sst2 cpu plan once timed 1,000 epochs for a 1,000-step budget: 113 hours instead of about 2.)"""
    from bench.plan import RunCost, build_plan, probe_epoch

    folder = make_dataset(tmp_path / "data", "jsonl", sizes=(300, 40, 40))
    path = write_sweep(
        tmp_path / "s.yaml",
        task="text-classification",
        max_epochs=1000,
        max_steps=100,
        eval_every_steps=10,
        search_space={"batch_size": {"type": "categorical", "choices": [32]}},
        fixed={"data_dir": str(folder), "hidden": 8, "embedding_size": 4, **LOCAL},
    )
    spec = load_sweep("text-classification", "test", path)
    epoch = probe_epoch(spec, spec.studies[0])
    assert epoch.steps == 10 and epoch.step_seconds > 0 and epoch.validation_seconds > 0  # 300 rows, batches of 32
    plans = build_plan(
        spec,
        f"sqlite:///{tmp_path / 'none.db'}",
        epoch_probe=lambda s, k: epoch,
        overhead_probe=lambda s, k, e: RunCost(overhead=0.0, step_scale=1.0, startup=0.0),
    ).studies
    # 100 steps (10 epochs, not 1,000), validated every 10 steps
    assert plans[0].seconds_per_run == pytest.approx(100 * epoch.step_seconds + 10 * epoch.validation_seconds)
