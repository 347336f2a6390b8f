"""The real Switchboard server, as a child process: started on a data folder, its
address read off its log, stopped with SIGTERM (clean) or SIGKILL (a crash), started
again on the same folder and port; and tokens minted with `switchboard token create`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[3]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LISTENING = re.compile(r"listening on (http://\S+)")


def find_binary() -> Optional[str]:
    env = os.environ.get("SWITCHBOARD_BIN")
    if env:
        return env if os.path.exists(env) else None
    for p in (ROOT / "target/debug/switchboard", ROOT / "target/release/switchboard"):
        if p.exists():
            return str(p)
    return None


class Server:
    def __init__(self, binary: str, data_dir: Path, extra: Sequence[str] = ()):
        self.binary = binary
        self.data_dir = data_dir
        self.extra = list(extra)
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.port = 0
        self.log: List[str] = []
        self.starts = 0

    def start(self, port: int = 0, timeout: float = 30.0) -> "Server":
        args = [
            self.binary, "--port", str(port), "--data-dir", str(self.data_dir), "--log", "info",
            "--inline-pipelines", "on", "--concurrency", "16", *self.extra,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        env["NO_COLOR"] = "1"
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=str(self.data_dir))
        found = threading.Event()

        def drain(proc: subprocess.Popen) -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                line = _ANSI.sub("", line.rstrip("\n"))
                self.log.append(line)
                m = _LISTENING.search(line)
                if m and not found.is_set():
                    self.url = m.group(1).rstrip("/.,")
                    found.set()

        threading.Thread(target=drain, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self.log[-30:])
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"the server did not start ({' '.join(args)}):\n{tail}")
        self.port = int(self.url.rsplit(":", 1)[1])
        self.starts += 1
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, sig: int = signal.SIGTERM) -> "Server":
        port = self.port
        self.stop(sig)
        return self.start(port)

    def token(self, sub: str, *flags: str, ttl: str = "1h") -> str:
        args = [self.binary, "token", "create", "--sub", sub, "--data-dir", str(self.data_dir), "--ttl", ttl, *flags]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"token create failed: {out.stderr}")
        return out.stdout.strip().splitlines()[-1].strip()
