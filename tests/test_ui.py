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
def test_mlflow_ui_shows_the_experiment_runs_and_a_metric(smoke_sweep_store, monkeypatch):
    require_chromium()
    from playwright.sync_api import sync_playwright

    env = worker_env(smoke_sweep_store)
    for key in ("MLFLOW_TRACKING_URI", "RNNBENCH_ARTIFACTS"):
        monkeypatch.setenv(key, env[key])
    client = tracking.client()
    experiment = client.get_experiment_by_name("copy-memory")
    final = client.search_runs([experiment.experiment_id], "tags.stage = 'final'")[0]
    test_loss = final.data.metrics["test/loss"]

    port = free_port()
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
            # The experiment's runs: the model-training view, with the run names we give.
            page.goto(
                f"{base}/#/experiments/{experiment.experiment_id}/runs", wait_until="domcontentloaded", timeout=90000
            )
            page.get_by_text("copy-memory/simple/rnn/sweep").first.wait_for(timeout=60000)
            page.screenshot(path=str(ARTIFACTS / "mlflow-ui-runs.png"), full_page=True)
            # One final-seed run: its test metric is on the page.
            page.goto(
                f"{base}/#/experiments/{experiment.experiment_id}/runs/{final.info.run_id}",
                wait_until="domcontentloaded",
                timeout=90000,
            )
            page.get_by_text("test/loss").first.wait_for(timeout=60000)
            body = page.inner_text("body")
            page.screenshot(path=str(ARTIFACTS / "mlflow-ui-run.png"), full_page=True)
            browser.close()
        assert final.info.run_name in body
        assert f"{test_loss:.3f}"[:5] in body or str(round(test_loss, 4)) in body, body[:2000]
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    assert (ARTIFACTS / "mlflow-ui-run.png").stat().st_size > 10000
