"""The command line: light start-up, and one-line errors with exit 2 that leave nothing behind."""

import os
import subprocess
import sys

import pytest

from bench.cli import main
from bench.paths import ROOT


def run_cli(*args, env_extra=None, tmp_path=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, env=env, timeout=120)


def test_help_and_list_do_not_import_torch_or_lightning():
    code = (
        "import sys; from bench.cli import main; main(['list']);"
        "heavy = [m for m in ('torch', 'lightning', 'mlflow', 'datasets') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert run_cli("--help").returncode == 0


def test_list_shows_tasks_variants_and_cells(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("copy-memory", "adding", "simple", "stacked", "bidirectional", "embedding-pretrained", "lstm", "gru"):
        assert name in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--task", "nope"], "unknown task 'nope'"),
        (["--task", "copy-memory", "--variant", "wide"], "unknown variant 'wide'"),
        (["--task", "copy-memory", "--cell", "cnn"], "unknown cell 'cnn'"),
        (["--task", "copy-memory", "colour=red"], "unknown key 'colour'"),
        (["--task", "copy-memory", "T=0"], "T=0 is out of range"),
        (["--task", "adding", "hidden=1.5"], "hidden='1.5' is not valid"),
        (["--task", "adding", "lr"], "not of the form key=value"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_creates_nothing(tmp_path, args, message):
    store = tmp_path / "fresh.db"
    result = run_cli(
        "train",
        *args,
        env_extra={"MLFLOW_TRACKING_URI": f"sqlite:///{store}", "RNNBENCH_CACHE": str(tmp_path / "cache")},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not store.exists() and not (tmp_path / "cache").exists()


def test_makefile_targets_run_their_commands():
    """Each documented target runs its own command, and no target is defined twice."""
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    expected = {
        "report": "-m bench report",
        "horizon": "-m bench horizon",
        "sweep": "-m bench sweep",
        "bench-report": "bench.benchmarks.report_speed",
        "train": "-m bench train",
        "lint": "ruff check",
        "dashboard": "-m bench dashboard",
        "ui": "-m bench ui",
        "list": "-m bench list",
    }
    for target, command in expected.items():
        result = subprocess.run(
            ["make", "-n", "-o", ".venv/.installed", target], capture_output=True, text=True, cwd=ROOT
        )
        assert result.returncode == 0 and command in result.stdout, (target, result.stdout)
        assert "overriding recipe" not in result.stderr, result.stderr


def test_make_train_and_the_cli_agree_on_the_default_cell():
    """`make train` passes no --cell unless CELL= is given, so both run RunConfig's default."""
    from bench.config import RunConfig, resolve_config

    plain = subprocess.run(["make", "-n", "-o", ".venv/.installed", "train"], capture_output=True, text=True, cwd=ROOT)
    assert "--cell" not in plain.stdout, plain.stdout
    chosen = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "train", "CELL=gru"], capture_output=True, text=True, cwd=ROOT
    )
    assert "--cell 'gru'" in chosen.stdout
    assert resolve_config("copy-memory").cell == RunConfig.cell == "lstm"


def test_sweep_dry_run_and_list_task_reach_the_cli():
    dry = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "sweep", "TASK=adding", "DRY_RUN=1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert "--plan" in dry.stdout
    listing = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "list", "TASK=adding"], capture_output=True, text=True, cwd=ROOT
    )
    assert "-m bench list --task 'adding'" in listing.stdout


@pytest.mark.parametrize("exported, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_cli_makes_openmp_threads_sleep_while_waiting_unless_told_otherwise(exported, expected):
    """Spinning OpenMP waits made 2 torch threads 10-20x slower than one beside another process (issue
    25, `make bench-threads`); `python -m bench` sets the sleeping policy before torch loads."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | (
        {"OMP_WAIT_POLICY": exported} if exported else {}
    )
    code = "import os, runpy, sys\nsys.argv = ['bench', '--help']\ntry:\n    runpy.run_module('bench', run_name='__main__')\nexcept SystemExit:\n    pass\nprint('policy', os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == f"policy {expected}"


def test_a_server_that_exits_before_answering_is_one_line_with_the_store_password_masked():
    """`make ui` / `make dashboard`: the server's last line of stderr, with the password of the store URL
    it was given in its environment masked."""
    import signal

    from bench.cli import serve
    from bench.errors import UserError

    url = "postgresql://bench:s3cret@127.0.0.1:9/db"
    exits = "import os, sys; sys.exit('cannot open ' + os.environ['STORE_URL'])"
    sigterm = signal.getsignal(signal.SIGTERM)  # serve() installs its own, to stop the server
    try:
        with pytest.raises(UserError) as error:
            serve(
                "test server",
                "tests",
                [sys.executable, "-c", exits],
                "http://127.0.0.1:9",
                False,
                secrets={"STORE_URL": url},
            )
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert (
        str(error.value) == "the test server exited before answering: cannot open postgresql://bench:***@127.0.0.1:9/db"
    )
