"""``meterbench serve`` as a separate process, for tests and benches that act as its master.

A real master is another program: the bridge's timing and session rules are only shown when
the bridge runs in its own process (its own GIL, its own scheduler slot) and the master in
another. :class:`ServeProcess` starts ``python -m simulator.cli serve SCENARIO (--tcp
127.0.0.1:0 | --pty) --trace FILE ...``, reads the address or pty path it prints, and on
:meth:`ServeProcess.stop` ends it with SIGTERM (which writes the trace, like Ctrl-C) and loads
the trace. :class:`MasterClient` is one master session on it (a TCP client, or a program
that opens the pty). Every wait is bounded: a service that does not come up or does not stop
within its timeout is killed and reported with its stderr.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import serial

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


class MasterClient:
    """One master session on a :class:`ServeProcess`: a TCP client or a program on the pty
    (opened 8N1 at ``baud`` bit/s). Every read is bounded by its ``seconds``."""

    def __init__(self, served: ServeProcess, baud: int = 2400) -> None:
        self.kind = served.kind
        if self.kind == "tcp":
            self.sock = socket.create_connection(served.address, timeout=2.0)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.port = serial.Serial(served.path, baud, timeout=0)
            time.sleep(0.03)  # the bridge notices the open within 20 ms (its session starts)

    def write(self, data: bytes) -> float:
        """Write ``data``; returns ``time.monotonic()`` just before the write."""
        t = time.monotonic()
        if self.kind == "tcp":
            self.sock.sendall(data)
        else:
            self.port.write(data)
        return t

    def read_for(self, seconds: float, want: int | None = None) -> tuple[bytes, float | None]:
        """Bytes that arrive within ``seconds`` (stop early once ``want`` arrived) and the
        monotonic time the first one was seen."""
        got, first = b"", None
        end = time.monotonic() + seconds
        while time.monotonic() < end and (want is None or len(got) < want):
            if self.kind == "tcp":
                self.sock.settimeout(max(0.001, min(0.01, end - time.monotonic())))
                try:
                    chunk = self.sock.recv(4096)
                except TimeoutError:
                    chunk = b""
                if chunk == b"" and not self._tcp_open():
                    break
            else:
                chunk = self.port.read(4096)
                if not chunk:
                    time.sleep(0.0005)
            if chunk and first is None:
                first = time.monotonic()
            got += chunk
        return got, first

    def _tcp_open(self) -> bool:
        try:
            self.sock.settimeout(0)
            return self.sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self.kind == "tcp":
            self.sock.close()
        else:
            self.port.close()
