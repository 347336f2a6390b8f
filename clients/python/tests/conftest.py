"""Fixtures: the real server (one shared by most tests, and fresh ones for tests that
restart it), tokens for each role, and fast reconnect backoffs."""

from __future__ import annotations

import itertools
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from proxy import free_port  # noqa: E402
from server import Server, find_binary  # noqa: E402

from switchboard import Backoff  # noqa: E402

_ids = itertools.count(1)


@pytest.fixture(scope="session")
def binary() -> str:
    path = find_binary()
    if path is None:
        pytest.fail(
            "no server binary: set SWITCHBOARD_BIN, or build target/debug/switchboard "
            "(cargo build -p server --bin switchboard)"
        )
    return path


def _tokens(srv: Server) -> dict:
    return {
        "operator": srv.token("op", "--operator"),
        # a producer: publishes to session:* and reads every topic
        "producer": srv.token("producer", "--pub-topics", "session:*", "--sub-topics", "*"),
        # the executor of external runs: creates them, registers as `backend`, reads runs
        "backend": srv.token("backend", "--agent", "--run", "--sub-topics", "workflow:*"),
        "reader": srv.token("reader", "--sub-topics", "session:*,workflow:*"),
    }


@pytest.fixture(scope="session")
def server(binary: str, tmp_path_factory: pytest.TempPathFactory):
    """One server for the tests that do not stop it; --allowed-hosts lets the
    proxies (other ports of 127.0.0.1) through the Host check, and a short heartbeat
    closes any connection whose Pings go unanswered within 0.6 s."""
    extra = ["--allowed-hosts", "127.0.0.1", "--heartbeat-ms", "300"]
    srv = Server(binary, tmp_path_factory.mktemp("shared"), extra).start()
    srv.tokens = _tokens(srv)
    yield srv
    srv.stop(signal.SIGTERM)


@pytest.fixture
def own_server(binary: str, tmp_path: Path):
    """A server of this test's own, on a fixed free port, that the test may restart."""
    srv = Server(binary, tmp_path / "data", ["--allowed-hosts", "127.0.0.1"])
    srv.data_dir.mkdir()
    srv.start(free_port())
    srv.tokens = _tokens(srv)
    yield srv
    srv.stop(signal.SIGKILL)


@pytest.fixture
def fast() -> Backoff:
    """Reconnect quickly in tests (the default starts at about 1 s)."""
    return Backoff(initial=0.1, cap=1.0)


@pytest.fixture
def uid() -> str:
    """A name unique in this test session (topics, run ids)."""
    return f"t{next(_ids)}"
