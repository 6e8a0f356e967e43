"""`make dashboard` as a user sees it: optuna-dashboard on a smoke sweep's Optuna storage, opened in
headless Chromium, lists the sweep's studies; its URL is printed only once the page answers."""

import os
import re
import subprocess
import sys

import pytest

from tests.sweep_helpers import ROOT, worker_env
from tests.test_ui import ARTIFACTS, announced_url, free_port, launch_chromium, require_chromium, wait_until_serving


@pytest.mark.slow
def test_dashboard_lists_the_studies_of_a_smoke_sweep(smoke_sweep_store):
    require_chromium()
    from playwright.sync_api import sync_playwright

    port = free_port()
    storage = f"sqlite:///{smoke_sweep_store / 'optuna.db'}"
    server = subprocess.Popen(
        [sys.executable, "-m", "bench", "dashboard", "--port", str(port), "--storage", storage],
        env=worker_env(smoke_sweep_store),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        base = announced_url(server, "optuna-dashboard")
        assert base == f"http://127.0.0.1:{port}"
        wait_until_serving(base + "/dashboard", server)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base + "/dashboard", wait_until="domcontentloaded", timeout=90000)
            # The smoke sweep's search studies (2 variants x 2 cells) and their final-seed studies.
            for study in (
                "copy-memory:test:simple:rnn",
                "copy-memory:test:stacked:gru",
                "copy-memory:test:simple:gru:final",
            ):
                # Listed as "<study id>. <name>".
                page.get_by_text(re.compile(rf"^\d+\. {re.escape(study)}$")).first.wait_for(timeout=60000)
            page.screenshot(path=str(ARTIFACTS / "optuna-dashboard.png"), full_page=True)
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    assert (ARTIFACTS / "optuna-dashboard.png").stat().st_size > 10000


def test_dashboard_without_a_storage_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "dashboard", "--storage", f"sqlite:///{tmp_path / 'missing.db'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no Optuna storage at sqlite:///{tmp_path / 'missing.db'}: run a sweep first "
        "(make sweep TASK=... PROFILE=smoke)"
    ]
    assert not (tmp_path / "missing.db").exists()
