"""`.ci/run` leaves no service behind: the PostgreSQL server it starts is stopped at exit, also when the
tests fail. Run for real, with `make` replaced by a stand-in that fails at once."""

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.sweep_helpers import ROOT


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_ci_run_stops_the_postgres_server_it_started_even_when_the_tests_fail(tmp_path):
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or os.geteuid() != 0 or not shutil.which("su"):
        pytest.skip("needs Debian's postgresql and root (as in CI)")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip(".ci/run would install chromium first")
    port = 55499  # not the default 55432, which other test runs may be using
    assert not listening(port)
    stand_in = tmp_path / "bin"
    stand_in.mkdir()
    (stand_in / "make").write_text(
        f'#!/bin/sh\necho "make $*" >> {tmp_path}/make.log\n'
        f"pg_isready -h 127.0.0.1 -p {port} >> {tmp_path}/make.log 2>&1\nexit 3\n"
    )
    (stand_in / "make").chmod(0o755)
    data = Path(f"/tmp/rnnbench-ci-test-{os.getpid()}")  # pytest's own folders are closed to the postgres user
    pg_bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    env = {
        **os.environ,
        "PATH": f"{stand_in}:{pg_bin}:{os.environ['PATH']}",
        "PGPORT": str(port),
        "PGDATA_DIR": str(data),
    }
    result = subprocess.run([str(ROOT / ".ci" / "run")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    log = (tmp_path / "make.log").read_text()
    assert result.returncode == 3, result.stderr
    assert "make install" in log and "accepting connections" in log  # the server was up while "tests" ran
    assert not listening(port), "the PostgreSQL server started by .ci/run is still running"
    assert not data.exists()
