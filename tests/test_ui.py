"""The MLflow UI as a user sees it: `python -m bench ui` serving a smoke sweep, opened in headless Chromium."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench import tracking
from bench.cli import TRAINING_VIEW, run_url
from tests.sweep_helpers import ROOT, worker_env

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_chromium() -> None:
    """Skip a browser test where Chromium is missing; in CI, where it must be installed, fail it."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (see .ci/run)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


def launch_chromium(playwright):
    """The system's headless Chromium, with nothing that reaches out to the network on its own."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    )


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mlflow ui exited: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"mlflow ui did not answer at {url} within {timeout} s")


def announced_url(server: subprocess.Popen, name: str) -> str:
    """The URL the command prints, read line by line; the page must answer the moment it appears."""
    for line in server.stdout:
        if line.startswith(f"{name} at "):
            url = line.split(" at ", 1)[1].split()[0]
            with urllib.request.urlopen(url + "/", timeout=5) as response:
                assert response.status == 200
            return url
    raise AssertionError(f"{name} exited without announcing its URL")


@pytest.mark.slow
def test_mlflow_ui_shows_the_runs_in_the_training_view_with_their_dataset_and_metrics(smoke_sweep_store, monkeypatch):
    require_chromium()
    from playwright.sync_api import sync_playwright

    env = worker_env(smoke_sweep_store)
    for key in ("MLFLOW_TRACKING_URI", "RNNBENCH_ARTIFACTS"):
        monkeypatch.setenv(key, env[key])
    client = tracking.client()
    experiment = client.get_experiment_by_name("copy-memory")
    final = client.search_runs([experiment.experiment_id], "tags.stage = 'final'")[0]
    test_loss = final.data.metrics["test/loss"]
    fingerprint = final.data.tags["dataset_fingerprint"]

    port = free_port()
    monkeypatch.setenv("PORT", str(port))  # run_url links to `make ui` on this port
    server = subprocess.Popen(
        [sys.executable, "-m", "bench", "ui", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        base = announced_url(server, "MLflow UI")  # printed only once the page answers
        assert base == f"http://127.0.0.1:{port}"
        assert f"{base}/#/experiments?{TRAINING_VIEW}" in server.stdout.readline()  # the landing in that view
        # A laptop-sized server: this command, mlflow's launcher and one uvicorn worker, no job runners.
        group = subprocess.run(["ps", "-o", "pid=,args=", "-g", str(server.pid)], capture_output=True, text=True).stdout
        assert len(group.strip().splitlines()) <= 3, group
        wait_until_serving(base + "/", server)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # The experiment list: where a user starts.
            page.goto(base + "/#/experiments", wait_until="domcontentloaded", timeout=90000)
            page.get_by_text("copy-memory").first.wait_for(timeout=60000)
            # The experiment's runs in the model-training view (not GenAI's), with the run names we give
            # and each run's data in the Dataset column: its name and our fingerprint as the digest.
            page.goto(
                f"{base}/#/experiments/{experiment.experiment_id}/runs?{TRAINING_VIEW}",
                wait_until="domcontentloaded",
                timeout=90000,
            )
            page.get_by_text("copy-memory/simple/rnn/sweep").first.wait_for(timeout=60000)
            # The Datasets filter offers the runs' data; picking it lists the trained runs (a study's runs
            # are nested under its parent run, which trains nothing) with it in their Dataset column.
            page.get_by_text("Datasets", exact=True).first.click()
            page.get_by_text(f"copy-memory ({fingerprint})").first.wait_for(timeout=60000)
            page.get_by_test_id("dataset-dropdown-copy-memory").first.click()
            page.keyboard.press("Escape")
            page.get_by_text(final.info.run_name, exact=True).first.wait_for(timeout=60000)
            runs_page = page.inner_text("body")
            page.screenshot(path=str(ARTIFACTS / "mlflow-ui-runs.png"), full_page=True)
            # One final-seed run, through the link `train` prints: the training view's run page, with its
            # test metric, its dataset and its system metrics.
            page.goto(run_url(final.info.run_id).split()[0], wait_until="domcontentloaded", timeout=90000)
            page.get_by_text("test/loss").first.wait_for(timeout=60000)
            page.get_by_text("system/cpu_utilization_percentage").first.wait_for(timeout=60000)
            body = page.inner_text("body")
            page.screenshot(path=str(ARTIFACTS / "mlflow-ui-run.png"), full_page=True)
            browser.close()
        for text in (runs_page, body):  # the training view's menu, not GenAI's (Observability, Evaluations)
            assert "Model registry" in text and "Observability" not in text, text[:1000]
        assert "Evaluations" not in body
        assert runs_page.count(f"copy-memory ({fingerprint})") >= 8  # every final and trial run of the sweep
        assert "copy-memory" in body and fingerprint in body, body[:3000]
        assert final.info.run_name in body
        assert f"{test_loss:.3f}"[:5] in body or str(round(test_loss, 4)) in body, body[:2000]
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    assert (ARTIFACTS / "mlflow-ui-run.png").stat().st_size > 10000
