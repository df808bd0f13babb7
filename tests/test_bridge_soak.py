"""Bridge soak: ``meterbench serve`` in its own process against masters that misbehave.

For a bounded time (:data:`SOAK_S` per transport, ``--tcp`` and ``--pty``) one master
session after another, drawn from a seeded mix: clean masters (SND_NKE and REQ_UD2 to the
meter at 4 or 5), masters that leave mid-frame, mid-reply or right after a request, line
noise and an oversize "long frame" (68 FF FF 68 and more bytes than its L-field allows),
each of the last two followed by a clean exchange in the same session. Then:

* every clean exchange got exactly its own reply: E5 for SND_NKE; for REQ_UD2 one valid
  RSP_UD from the address it asked (a stale reply for the other meter would show), and
  nothing else;
* the trace accounts for every byte: what the masters wrote is, in order, exactly what the
  bridge logged in; each byte in went to exactly one of a request put on the bus, junk, or a
  drop at a session's end; each reply byte the bus produced was written out or dropped.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from simulator.core.trace_invariants import check_bridge_bytes
from simulator.mbus.errors import MBusError
from simulator.mbus.frames import LongFrame, parse_frame
from simulator.testing.serve_process import MasterClient, ServeProcess

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

#: seconds of soak per transport
SOAK_S = 12.0
ADDRESSES = (4, 5)
E5 = b"\xe5"


def short(c: int, a: int) -> bytes:
    return bytes([0x10, c, a, (c + a) & 0xFF, 0x16])


def snd_nke(a: int) -> bytes:
    return short(0x40, a)


def req_ud2(a: int) -> bytes:
    return short(0x5B, a)


def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "soak.toml"
    path.write_text(
        'kind = "mbus"\nseed = 21\n[bus]\nbaud = 2400\n'
        '[[slaves]]\ntemplate = "water"\nid = 12345678\nprimary = 4\n'
        '[[slaves]]\ntemplate = "heat"\nid = 87654321\nprimary = 5\n'
    )
    return path


class Soak:
    """The master side: opens sessions, keeps every byte it wrote and every clean result."""

    def __init__(self, served: ServeProcess, rng: random.Random) -> None:
        self.served = served
        self.rng = rng
        self.written = bytearray()
        self.received = 0
        self.clean: list[tuple[str, bool, str]] = []  # (action, ok, detail)
        self.actions: dict[str, int] = {}

    def open(self) -> MasterClient:
        return MasterClient(self.served)

    def write(self, m: MasterClient, data: bytes) -> None:
        self.written += data
        m.write(data)

    def read(self, m: MasterClient, seconds: float, want: int | None = None) -> bytes:
        got, _ = m.read_for(seconds, want)
        self.received += len(got)
        return got

    def exchange(self, m: MasterClient, label: str) -> None:
        """One clean exchange; records whether exactly its own reply came back."""
        a = self.rng.choice(ADDRESSES)
        if self.rng.random() < 0.5:
            self.write(m, snd_nke(a))
            got = self.read(m, 0.5, want=1) + self.read(m, 0.05)
            self.clean.append((label, got == E5, f"SND_NKE {a}: {got.hex()}"))
            return
        self.write(m, req_ud2(a))
        head = self.read(m, 1.0, want=4)
        ok, detail = False, head.hex()
        if len(head) == 4 and head[0] == 0x68 and head[1] == head[2]:
            body = self.read(m, 1.5, want=head[1] + 2)
            extra = self.read(m, 0.05)
            try:
                frame = parse_frame(head + body)
            except MBusError as exc:
                detail = f"{(head + body).hex()}: {exc}"
            else:
                ok = isinstance(frame, LongFrame) and frame.a == a and not extra
                detail = f"REQ_UD2 {a}: RSP_UD from {frame.a}, {len(extra)} extra byte(s)"
        self.clean.append((label, ok, detail))

    def session(self) -> None:
        action = self.rng.choice(
            ["clean", "clean", "mid_frame", "mid_reply", "leave", "noise", "oversize"]
        )
        self.actions[action] = self.actions.get(action, 0) + 1
        m = self.open()
        try:
            if action == "clean":
                for _ in range(self.rng.randint(1, 3)):
                    self.exchange(m, action)
            elif action == "mid_frame":
                frame = req_ud2(self.rng.choice(ADDRESSES))
                self.write(m, frame[: self.rng.randint(1, 4)])
            elif action == "mid_reply":
                self.write(m, req_ud2(self.rng.choice(ADDRESSES)))
                self.read(m, 1.0, want=self.rng.randint(1, 12))
            elif action == "leave":
                self.write(m, req_ud2(self.rng.choice(ADDRESSES)))
            elif action == "noise":
                self.write(
                    m, bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 400)))
                )
                self.exchange(m, action)
            else:  # oversize: claims 261 bytes, checksum and stop byte in the wrong place
                tail = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(262, 320)))
                self.write(m, b"\x68\xff\xff\x68" + tail)
                time.sleep(0.05)  # > the 30 ms gap: the held candidate is given up
                self.exchange(m, action)
        finally:
            m.close()
        time.sleep(0.02)  # a pty shows the hang-up to the bridge within its wake-up


def account(events: list[dict], written: bytes) -> None:
    def of(kind: str, **match) -> list[dict]:
        return [
            e for e in events if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())
        ]

    bytes_in = b"".join(bytes.fromhex(e["hex"]) for e in of("bridge_bytes", direction="in"))
    assert bytes_in == written, "the bridge logged other bytes in than the masters wrote"
    check_bridge_bytes(events)  # the run-end check serve itself makes (every byte in = traced)
    starts = of("bridge_session", state="start")
    assert [e["session"] for e in starts] == list(range(1, len(starts) + 1))


@pytest.mark.parametrize("kind", ["tcp", "pty"])
def test_bridge_soak(tmp_path, kind):
    rng = random.Random(2024)
    served = ServeProcess(scenario(tmp_path), kind, tmp_path / "trace.jsonl", seconds=60)
    with served:
        soak = Soak(served, rng)
        end = time.monotonic() + SOAK_S
        sessions = 0
        while time.monotonic() < end:
            soak.session()
            sessions += 1
        time.sleep(0.3)  # the last replies leave (or are dropped) before the stop
        events = served.stop()
    print(f"\n{kind}: {sessions} sessions {soak.actions}, {len(soak.clean)} clean exchanges")
    bad = [c for c in soak.clean if not c[1]]
    assert not bad, bad
    assert len(soak.clean) >= 15 and sessions >= 15, (len(soak.clean), sessions)
    assert set(soak.actions) == {"clean", "mid_frame", "mid_reply", "leave", "noise", "oversize"}
    account(events, bytes(soak.written))
    starts = [e for e in events if e["kind"] == "bridge_session" and e["state"] == "start"]
    assert len(starts) == sessions
    out = sum(e["n"] for e in events if e["kind"] == "bridge_bytes" and e["direction"] == "out")
    assert soak.received <= out
