"""The master machine alone: canned reception facts in, commands out (no bus, no port)."""

from __future__ import annotations

import random

import pytest

from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.frames import describe, parse_frame
from simulator.mbus.procedures import (
    Clock,
    Done,
    Heard,
    Listen,
    MasterMachine,
    MasterSettings,
    Note,
    Procedure,
    Send,
    Wait,
)
from simulator.mbus.slave import Slave
from simulator.meters.wired import heat_records

E5 = b"\xe5"
ADDR = SecondaryAddress(12_345_678, "ELV", 1, 4)


def rsp_ud(telegrams: int = 2) -> list[bytes]:
    """Canned RSP_UD frames of a heat meter at primary 3 (DIF 1F on all but the last)."""
    s = Slave(World(0), ADDR, primary=3, records=heat_records(random.Random(1), telegrams))
    return [s._build(i, 7, draw=False) for i in range(telegrams)]


class Script:
    """Feeds a procedure: replies in order for each Listen; time advances as a wire would."""

    def __init__(self, machine: MasterMachine, proc, replies: list[bytes | str]) -> None:
        self.m, self.p, self.replies = machine, Procedure(proc), list(replies)
        self.now = machine.now
        self.log: list[str] = []

    def run(self):
        cmd = self.p.command
        while not isinstance(cmd, Done):
            if isinstance(cmd, Send):
                self.now += len(cmd.frame) * 11 / cmd.baud
                self.log.append(describe(parse_frame(cmd.frame)))
                cmd = self.p.feed(Clock(self.now))
            elif isinstance(cmd, Wait):
                self.log.append(f"wait {cmd.seconds:.3f}")
                self.now += cmd.seconds
                cmd = self.p.feed(Clock(self.now))
            elif isinstance(cmd, Listen):
                reply = self.replies.pop(0)
                if reply == "garbled":
                    data, bad = E5 + b"\x13", True
                else:
                    data, bad = reply, False
                if data:
                    end = self.now + 0.05 + len(data) * 11 / 2400
                    heard = Heard(data, end, end + 0.01, uart_error=bad)
                else:
                    end = self.now + cmd.timeout
                    heard = Heard(b"", end, end)
                self.log.append(f"heard {data.hex() or '-'}")
                self.now = heard.now
                cmd = self.p.feed(heard)
            else:
                assert isinstance(cmd, Note)
                self.log.append(f"note {cmd.kind}")
                cmd = self.p.feed(Clock(self.now))
        assert not self.replies, "replies left over"
        return cmd.result


def test_multi_telegram_readout_toggles_fcb_and_retries_with_the_same_fcb():
    m = MasterMachine(MasterSettings(multi_telegram=True, readout_retries=1))
    t0, t1 = rsp_ud(2)
    script = Script(m, m.read(3), [E5, t0, b"", t1])
    ro = script.run()
    assert ro.ok and ro.attempts == 3 and ro.frames == [t0, t1]
    assert [t.more_follow for t in ro.telegrams] == [True, False]
    assert script.log == [
        "SND_NKE a=3",
        "heard e5",
        # init idle 10 s from the end of the SND_NKE; the E5 took 0.05 s + 1 char, the
        # receiver gave it back 0.01 s after its end
        "wait 9.935",
        "REQ_UD2 a=3 FCB=1",
        f"heard {t0.hex()}",
        "wait 1.990",  # request idle 2 s from the end of the reply
        "REQ_UD2 a=3 FCB=0",  # DIF 1F: next telegram, FCB toggled
        "heard -",
        "wait 2.000",  # from the give-up time
        "REQ_UD2 a=3 FCB=0",  # the retry repeats the FCB
        f"heard {t1.hex()}",
        "note readout",
    ]


def test_silent_meter_fails_after_readout_retries_plus_one():
    m = MasterMachine(MasterSettings(readout_retries=2, send_nke=False))
    ro = Script(m, m.read(9), [b"", b"", b""]).run()
    assert not ro.ok and ro.error == "no reply" and ro.attempts == 3


def test_selection_outcomes_and_collision_idle():
    m = MasterMachine(MasterSettings(selection_retries=1, collision_idle=4.0))
    assert Script(m, m.select(ADDR), [E5]).run() == "single"
    assert Script(m, m.select(ADDR), [b"", b""]).run() == "none"  # one retry, then give up
    script = Script(m, m.select(ADDR), ["garbled"])
    assert script.run() == "collision"
    end = script.now - 0.01
    assert m.next_free == pytest.approx(end + 4.0)
    assert Script(m, m.select(ADDR), [E5 + E5]).run() == "collision"  # two E5: two meters


def test_secondary_search_of_one_meter_and_a_primary_scan():
    m = MasterMachine(MasterSettings(selection_retries=0))
    (t0,) = rsp_ud(1)
    # wildcard selection: one E5; REQ_UD2 to 253: its RSP_UD; the purge hears nothing
    script = Script(m, m.search_secondary(), [E5, t0, b""])
    assert script.run() == [ADDR]
    assert script.log[-2:] == ["note search", "note search"]  # found, done
    m = MasterMachine(MasterSettings(selection_retries=0))
    assert Script(m, m.scan_primary(range(1, 4)), [b"", "garbled", E5]).run() == [2, 3]


def test_machine_refuses_a_wrong_event():
    m = MasterMachine()
    p = Procedure(m.select(ADDR))
    assert isinstance(p.command, Send)
    p.feed(Clock(0.1))
    with pytest.raises(AssertionError, match="Heard"):
        p.feed(Clock(0.2))
