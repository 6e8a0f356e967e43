"""The MLflow schema: every tag, tag value and metric name a writer sets and a reader reads, named once.
Pure names (no imports), so data preparation can name its tags and baselines without loading the store
machinery; `bench.tracking` re-exports them.
"""

from __future__ import annotations


class Tag:
    STAGE = "stage"  # one of Stage
    STATE = "state"  # one of State, set when the run closes
    FAILURE_REASON = "failure_reason"
    TASK, VARIANT, CELL, SEED = "task", "variant", "cell", "seed"
    PROFILE = "profile"  # the sweep profile (study, trial, final runs)
    GRID = "grid"  # the sweep grid point, "train_subset=500:embedding_vectors=glove-6b-50d"
    OPTUNA_STUDY, OPTUNA_TRIAL, OPTUNA_STORAGE, OPTUNA_VERSION = (
        "optuna_study",
        "optuna_trial",
        "optuna_storage",
        "optuna_version",
    )
    BEST_TRIAL = "best_trial"  # final-seed runs: the search trial whose configuration they retrain
    SWEEP_FILE = "sweep_file"
    GIT_COMMIT, HARDWARE, DEVICE, TORCH_VERSION = "git_commit", "hardware", "device", "torch_version"
    LOAD_AVERAGE = "load_average"  # the machine's 1-minute load when the run started (other work sharing it)
    DATASET_FINGERPRINT, PARAM_COUNT = "dataset_fingerprint", "param_count"
    ARM, ABLATION = "arm", "ablation"  # horizon runs: "simple/rnn" or "simple/rnn/irnn"; the ablation name
    HORIZON_PROFILE, HORIZON_SPEC = "horizon_profile", "horizon_spec"  # the spec's fingerprint
    HORIZON_AXIS, HORIZON_VALUE, HORIZON_MARGIN = "horizon_axis", "horizon_value", "horizon_margin"
    CONFIG_SOURCE = "config_source"  # where a horizon arm's configuration came from
    EXPERIMENT = "claim_experiment"  # a claim experiment's runs: its file's name (sweeps/claims/<name>.yaml)
    CORPUS, EMBEDDINGS_FILE = "corpus", "embeddings_file"  # pretraining runs
    # who owns a RUNNING run: its process (host, pid, the pid's start time) and, on a shared server, a heartbeat
    HOST, PID, PID_STARTED, HEARTBEAT = "host", "pid", "pid_started", "heartbeat"
    SWEEP_STUDIES = "sweep_studies"  # a parent run: every study of its sweep (JSON list), started or not
    SWEEP_STUDIES_AT = "sweep_studies_at"  # when that list was recorded (unix seconds): a resume re-records it
    EMBEDDING_SOURCE_RUN = "embedding_source_run"  # runs with embedding_vectors=lm:...: the pretraining run used
    DATASET = "dataset"  # the user's own data: its name (also in the experiment's name)
    FOLD, FOLDS = "fold", "folds"  # cross-validation: this run's fold, of how many
    # how the data was made: split layout (files given, carved, folds), label name:id mapping, tokenizer
    DATA_LAYOUT, LABEL_MAP, TOKENIZER = "data/layout", "data/label_map", "data/tokenizer"


class Stage:
    STUDY, TRIAL, FINAL = "study", "trial", "final"  # a sweep's parent run, search trials, final seeds
    HORIZON, PRETRAIN = "horizon", "pretrain"
    CLAIM = "claim"  # a claim experiment's runs (sweeps/claims/): a horizon grid judged by the claims' rules
    CV, FOLD = "cv", "fold"  # a cross-validation's parent run, and its runs (one per fold)
    SWEPT = (STUDY, TRIAL, FINAL)


class State:
    COMPLETE, PRUNED, FAILED, INTERRUPTED = "complete", "pruned", "failed", "interrupted"
    RUNNING = "running"  # a parent run while its sweep goes on


class Metric:
    PARAM_COUNT = "params/count"
    SECONDS_PER_EPOCH = "time/seconds_per_epoch"
    TRAIN_EXAMPLES = "data/train_examples"
    EPOCHS_TRAINED = "epochs_trained"
    STEPS_TRAINED = "steps_trained"
    PROBE_PREFIX = "probe/"
    # the convergence signal (bench.convergence), logged by every trained run
    BEST_STEP, LAST_FIFTH_GAIN, CONVERGENCE_STEPS, STILL_IMPROVING, LEFT_BASELINE = (
        "convergence/best_step",
        "convergence/last_fifth_gain",
        "convergence/steps",
        "convergence/still_improving",
        "convergence/left_baseline_step",
    )
    NEVER_LEFT = -1.0  # LEFT_BASELINE of a run whose validation never left the baseline
    SOLVED = "convergence/solved"  # 1.0: validation reached the run's `solved` share of the baseline loss

    @staticmethod
    def train(name: str) -> str:
        """In-epoch, train mode (dropout on, a moving model)."""
        return f"train/{name}"

    @staticmethod
    def train_eval(name: str) -> str:
        """Eval mode on a fixed train sample, logged with each validation."""
        return f"train_eval/{name}"

    @staticmethod
    def val(name: str) -> str:
        return f"val/{name}"

    @staticmethod
    def data(name: str) -> str:
        """What the data preparation measured (sizes, vocabulary, shares)."""
        return f"data/{name}"

    @staticmethod
    def name_of(key: str) -> str:
        """ "val/acc" -> "acc"."""
        return key.partition("/")[2]

    @staticmethod
    def test(name: str) -> str:
        return f"test/{name}"

    @staticmethod
    def baseline(name: str) -> str:
        """The memoryless baseline of a metric, as logged next to it: baseline/loss, baseline/acc."""
        return f"baseline/{name}"

    @staticmethod
    def validation_baseline(name: str) -> str:
        """The same baseline scored on the validation split (baseline/val_acc: the train-majority class
        on validation), where it differs from test's."""
        return f"baseline/val_{name}"

    @staticmethod
    def baseline_for_validation(metrics: dict, name: str) -> float | None:
        """The baseline a run's validation history is judged against (has it left the baseline?): the
        validation split's own where logged, else test's (the loss baseline, the train prior's entropy,
        is one number for both; runs from before baseline/val_acc was logged)."""
        return metrics.get(Metric.validation_baseline(name), metrics.get(Metric.baseline(name)))
