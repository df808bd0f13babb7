"""Operator prompts for lab rigs: shown on the terminal past pytest's capture, answered or timed out.

A lab procedure sometimes needs a person ("make the gateway run: read 3"). Under pytest the
prompt must get past output capture and the answer must come from the real stdin, so
:meth:`Operator.confirm` suspends the capture manager (``global_and_fixture_disabled`` plus
stdin, as pytest documents for interactive use) while it asks. Nobody answering is a fault of
the bench, not of the device under test: :class:`OperatorTimeout` and :class:`OperatorAbsent`
are :class:`~simulator.testing.bench.BenchError` (pytest shows ERROR).

``mode = "auto"`` (``--operator=auto``): for unattended rigs that confirm by hardware (the
bench sees the gateway's requests on the wire); every prompt is logged and confirmed at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from simulator.testing.errors import BenchError

#: Default wait (s) for an operator's answer (``--operator-timeout``).
DEFAULT_TIMEOUT_S = 300.0

#: Answers that abort the test as a bench fault (the operator cannot do the step).
ABORT_ANSWERS = ("a", "abort")


class OperatorTimeout(BenchError):
    """No answer to an operator prompt within the timeout (s)."""


class OperatorAbsent(BenchError):
    """No terminal to answer on (stdin closed or at end of file), or the operator aborted."""


@dataclass
class Prompt:
    """One prompt: Unix time asked (s), the message, the answer (``"auto"`` in auto mode)."""

    asked: float
    message: str
    answer: str


@dataclass
class Operator:
    """Asks the person at the bench. ``mode``: ``"terminal"`` or ``"auto"``; ``timeout_s``: how
    long to wait for an answer (s); ``capture``: pytest's capture manager plugin or ``None``
    (outside pytest, or ``-s``); ``stdin_fd``: where answers come from (fd 0)."""

    mode: Literal["terminal", "auto"] = "terminal"
    timeout_s: float = DEFAULT_TIMEOUT_S
    capture: Any = None
    stdin_fd: int = 0
    log: list[Prompt] = field(default_factory=list)

    def confirm(self, message: str) -> str:
        """Show ``message`` and wait for the operator to press Enter; returns the answer line
        (stripped). Raises :class:`OperatorTimeout` after ``timeout_s``, :class:`OperatorAbsent`
        when stdin is closed or the answer is ``a``/``abort``."""
        asked = time.time()
        if self.mode == "auto":
            print(f"[meterbench] operator (auto): {message}", file=sys.stderr, flush=True)
            self.log.append(Prompt(asked, message, "auto"))
            return "auto"
        with self._terminal():
            print(
                f"\n[meterbench] OPERATOR: {message}\n"
                f"[meterbench] press Enter when done (a = abort; {self.timeout_s:g} s timeout): ",
                end="",
                file=sys.stderr,
                flush=True,
            )
            try:
                line = self._read_line(message)
            except BenchError:
                self.log.append(Prompt(asked, message, "(no answer)"))
                raise
        answer = line.strip()
        self.log.append(Prompt(asked, message, answer))
        if answer.lower() in ABORT_ANSWERS:
            raise OperatorAbsent(f"the operator aborted at: {message}")
        return answer

    def _read_line(self, message: str) -> str:
        """One line from ``stdin_fd`` within ``timeout_s`` (raw fd: pytest replaced sys.stdin)."""
        deadline = time.monotonic() + self.timeout_s
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready = select.select([self.stdin_fd], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                raise OperatorTimeout(
                    f"no operator answer within {self.timeout_s:g} s (--operator-timeout) to: "
                    f"{message!r}; use --operator=auto on a rig that confirms by "
                    "hardware"
                )
            chunk = os.read(self.stdin_fd, 1)
            if not chunk:
                raise OperatorAbsent(
                    "stdin is closed: no operator can answer (run from a terminal, or use "
                    "--operator=auto on a rig that confirms by hardware)"
                )
            buf += chunk
        return buf.decode("utf-8", "replace")

    @contextlib.contextmanager
    def _terminal(self):
        """Suspend pytest's global and fixture capture, stdin included, while asking."""
        if self.capture is None:
            yield
            return
        with self.capture.global_and_fixture_disabled():
            self.capture.suspend_global_capture(in_=True)  # gives fd 0 back to the terminal
            yield
