"""``meterbench serve`` as a separate process, for tests and benches that act as its master.

A real master is another program: the bridge's timing and session rules are only shown when
the bridge runs in its own process (its own GIL, its own scheduler slot) and the master in
another. :class:`ServeProcess` starts ``python -m simulator.cli serve SCENARIO (--tcp
127.0.0.1:0 | --pty) --trace FILE ...``, reads the address or pty path it prints, and on
:meth:`ServeProcess.stop` ends it with SIGTERM (which writes the trace, like Ctrl-C) and loads
the trace. Every wait is bounded: a service that does not come up or does not stop within
its timeout is killed and reported with its stderr.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from simulator.core.trace import Trace

ROOT = Path(__file__).resolve().parents[2]


class ServeError(RuntimeError):
    """``meterbench serve`` did not start or stop as expected (its stderr is in the message)."""


class ServeProcess:
    """``meterbench serve`` on one transport: ``kind`` is ``"tcp"`` or ``"pty"``.

    ``scenario``: an mbus scenario TOML; ``trace``: where serve writes its trace; ``extra``:
    more serve options (``--baud 300``, ``--tcp-busy queue`` ...); ``seconds``: serve stops by
    itself after this long (a bound, in case the test never calls :meth:`stop`).
    After :meth:`start`: :attr:`address` (``(host, port)``, tcp) or :attr:`path` (pty).
    Raises :class:`ServeError` if serve does not print its address within ``start_timeout`` s.
    """

    def __init__(
        self,
        scenario: str | Path,
        kind: str,
        trace: str | Path,
        *extra: str,
        seconds: float = 120.0,
        start_timeout: float = 20.0,
    ) -> None:
        if kind not in ("tcp", "pty"):
            raise ValueError(f"kind must be 'tcp' or 'pty' (got {kind!r})")
        self.kind = kind
        self.trace_path = Path(trace)
        where = ["--tcp", "127.0.0.1:0"] if kind == "tcp" else ["--pty"]
        self.cmd = [
            sys.executable,
            "-m",
            "simulator.cli",
            "serve",
            str(scenario),
            *where,
            "--trace",
            str(self.trace_path),
            "--seconds",
            str(seconds),
            *extra,
        ]
        self.start_timeout = start_timeout
        self.address: tuple[str, int] = ("", 0)
        self.path = ""
        self.proc: subprocess.Popen[str] | None = None
        self.output = ""
        self._lines: queue.Queue[str] = queue.Queue()

    def start(self) -> ServeProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        # stdout is read by a thread: a pipe read with a timeout, whatever Python buffered
        threading.Thread(target=self._pump, daemon=True, name="serve-stdout").start()
        first = self._line(self.start_timeout)
        if self.kind == "tcp":
            host, port = first.split()[1].rsplit(":", 1)
            self.address = (host, int(port))
        else:
            self.path = first.split()[1]
        # "serving N simulated slave(s)": the signal handlers are set, the world runs
        self._line(self.start_timeout)
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _line(self, timeout: float) -> str:
        assert self.proc is not None
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line:
            self.proc.kill()
            self.proc.wait(timeout=10)
            err = self.proc.stderr.read() if self.proc.stderr is not None else ""
            raise ServeError(f"serve printed nothing within {timeout:g} s: {err.strip()}")
        self.output += line
        return line

    def stop(self, timeout: float = 20.0) -> list[dict[str, Any]]:
        """SIGTERM, wait (bounded), return the trace's events (dicts, header excluded).

        Raises :class:`ServeError` if serve exits non-zero or writes no trace."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise ServeError(f"serve did not stop within {timeout:g} s") from None
        err = self.proc.stderr.read() if self.proc.stderr is not None else ""
        while True:
            try:
                line = self._lines.get(timeout=5)
            except queue.Empty:
                break
            if not line:
                break
            self.output += line
        if self.proc.returncode != 0 or not self.trace_path.is_file():
            raise ServeError(f"serve exited {self.proc.returncode}: {err.strip()}")
        return Trace.read_jsonl(self.trace_path)

    def kill(self) -> None:
        """Make sure the process is gone (for ``finally`` blocks)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def wait_for(predicate, timeout: float, step: float = 0.01) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` s passed; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(step)
