"""Bridge transport layer: ptys, pyserial URLs, framing, pacing, the reader thread."""

from __future__ import annotations

import os
import queue
import socket
import threading
import time

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.bridge.framing import Framer, default_gap
from simulator.bridge.pacing import PacedWriter, Written, char_times
from simulator.bridge.pty import PtyTransport
from simulator.bridge.reader import PortReader
from simulator.bridge.transports import PortGone, SerialTransport

SND_NKE_1 = bytes.fromhex("1040014116")
REQ_UD2_1 = bytes.fromhex("105b015c16")
SELECT = bytes.fromhex("680b0b6853fd52785634121596010466 16".replace(" ", ""))  # valid CS


# -- pty -------------------------------------------------------------------------------------
def test_pty_passes_bytes_both_ways_unchanged():
    pty = PtyTransport()
    try:
        with serial.Serial(pty.path, 2400, timeout=1) as master:
            pty.reopen()  # a master program opened it: its session starts (the reader does this)
            every_byte = bytes(range(256))
            master.write(every_byte)
            got = b""
            deadline = time.monotonic() + 2
            while len(got) < 256 and time.monotonic() < deadline:
                got += pty.read(0.1)
            assert got == every_byte  # raw mode: no CR/LF mangling, no XON/XOFF, no echo
            pty.write(every_byte)
            assert master.read(256) == every_byte
    finally:
        pty.close()


def test_pty_link_points_at_terminal_and_is_removed(tmp_path):
    link = tmp_path / "ttyMBUS"
    pty = PtyTransport(link=link)
    assert os.path.realpath(link) == os.path.realpath(pty.path)
    with serial.Serial(str(link), 2400, timeout=0.5) as master:
        pty.reopen()
        master.write(b"\xe5")
        assert pty.read(1.0) == b"\xe5"
    pty.close()
    assert not link.exists() and not link.is_symlink()


def test_pty_reports_gone_when_master_closes_and_back_when_reopened():
    pty = PtyTransport()
    try:
        with pytest.raises(PortGone):  # nobody has opened the terminal yet
            pty.reopen()
        master = serial.Serial(pty.path, 2400, timeout=0.5)
        pty.reopen()
        master.close()
        with pytest.raises(PortGone, match="closed|no program"):
            pty.read(0.2)
        with serial.Serial(pty.path, 2400, timeout=0.5) as again:
            pty.reopen()
            again.write(b"\x10")
            assert pty.read(1.0) == b"\x10"
    finally:
        pty.close()


# -- pyserial URLs -----------------------------------------------------------------------------
def test_loop_url_round_trip():
    t = SerialTransport("loop://", baud=2400)
    try:
        t.write(REQ_UD2_1)
        got = b""
        while len(got) < 5:
            chunk = t.read(0.5)
            assert chunk, "loop:// returned nothing"
            got += chunk
        assert got == REQ_UD2_1
        t.set_baud(300)  # accepted and ignored by loop://
    finally:
        t.close()


def test_socket_url_drop_is_port_gone_and_reopen_reconnects():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        t = SerialTransport(f"socket://127.0.0.1:{port}")
        conn, _ = srv.accept()
        conn.sendall(b"\xe5")
        assert t.read(1.0) == b"\xe5"
        conn.close()  # the far end drops (a TCP-serial server restarting)
        with pytest.raises(PortGone):
            for _ in range(20):
                t.read(0.1)
        t.reopen()
        conn2, _ = srv.accept()
        conn2.sendall(b"\x16")
        assert t.read(1.0) == b"\x16"
        conn2.close()
        t.close()
    finally:
        srv.close()


def test_unopenable_url_waits_instead_of_raising():
    t = SerialTransport("/dev/does-not-exist-mbus")
    with pytest.raises(PortGone, match="does-not-exist"):
        t.read(0.01)
    with pytest.raises(PortGone):
        t.reopen()


# -- framing --------------------------------------------------------------------------------
def frames_of(items):
    return [i.data for i in items if i.kind == "frame"]


def test_framer_cuts_back_to_back_frames_from_one_chunk():
    f = Framer(default_gap(2400))
    out = f.feed(0.0, SND_NKE_1 + REQ_UD2_1 + b"\xe5" + SELECT)
    # a master never sends the single character E5 (only slaves do): junk, not a request
    assert frames_of(out) == [SND_NKE_1, REQ_UD2_1, SELECT]
    assert [i.data for i in out if i.kind == "junk"] == [b"\xe5"]
    assert f.pending == 0


def test_framer_reassembles_a_frame_split_across_chunks():
    f = Framer(default_gap(2400))
    out = []
    for i, b in enumerate(SELECT):
        out += f.feed(i * 11 / 2400, bytes([b]))
    assert frames_of(out) == [SELECT]
    assert out[0].times[0] == 0.0 and out[0].last == pytest.approx((len(SELECT) - 1) * 11 / 2400)


def test_framer_skips_and_reports_junk_then_resynchronises():
    f = Framer(default_gap(2400))
    out = f.feed(0.0, b"\x00\xff\x55" + REQ_UD2_1)
    assert [i.kind for i in out] == ["junk", "frame"]
    assert out[0].data == b"\x00\xff\x55" and "start byte" in out[0].reason
    assert out[1].data == REQ_UD2_1


def test_framer_drops_partial_frame_after_gap():
    gap = default_gap(2400)
    f = Framer(gap)
    assert f.feed(0.0, REQ_UD2_1[:3]) == []
    assert f.deadline() == pytest.approx(gap)
    assert f.expire(gap / 2) == []
    out = f.expire(gap * 1.5)
    assert [i.kind for i in out] == ["junk"] and "incomplete" in out[0].reason
    # a late tail after the gap is junk too, and the next frame still comes through
    out = f.feed(1.0, REQ_UD2_1[3:] + SND_NKE_1)
    assert frames_of(out) == [SND_NKE_1]
    assert out[0].kind == "junk"


def test_framer_transparent_mode_packs_by_silence():
    f = Framer(0.05, mode="transparent")
    assert f.feed(0.0, b"\x01\x02") == []
    assert f.feed(0.01, b"\x03") == []
    out = f.expire(0.2)
    assert [(i.kind, i.data) for i in out] == [("frame", b"\x01\x02\x03")]


@settings(max_examples=150, deadline=None)
@given(noise=st.binary(max_size=40), cuts=st.lists(st.integers(1, 7), max_size=30))
def test_framer_never_raises_and_loses_no_byte(noise, cuts):
    """Whatever arrives, every byte comes out exactly once (as frame, junk or still pending)."""
    stream = noise + REQ_UD2_1 + noise + SELECT
    f = Framer(0.03)
    out, pos, t = [], 0, 0.0
    for n in cuts + [len(stream)]:
        out += f.feed(t, stream[pos : pos + n])
        pos += n
        t += 0.001
    assert pos >= len(stream)
    emitted = b"".join(i.data for i in out)
    assert len(emitted) + f.pending == len(stream)
    out2 = f.expire(t + 1.0)
    assert b"".join(i.data for i in out + out2) == stream


def test_default_gap_covers_usb_latency_and_three_chars():
    assert default_gap(2400) == pytest.approx(0.030)
    assert default_gap(300) == pytest.approx(3 * 11 / 300)


# -- pacing ---------------------------------------------------------------------------------
def test_paced_writer_writes_each_byte_at_its_instant():
    pty = PtyTransport()
    done: queue.Queue[Written] = queue.Queue()
    writer = PacedWriter(pty, done.put)
    try:
        with serial.Serial(pty.path, 9600, timeout=1) as master:
            pty.reopen()
            start = time.monotonic() + 0.02
            due = char_times(start, 8, 2400)  # 4.58 ms apart
            writer.submit(b"\x68\x03\x03\x68\x08\x01\x72\x7b", due, tag="reply")
            w = done.get(timeout=2)
            assert w.error is None and w.data == b"\x68\x03\x03\x68\x08\x01\x72\x7b"
            assert master.read(8) == w.data
            for want, got in zip(due, w.mono, strict=True):
                assert got >= want  # never early
            gaps = [b - a for a, b in zip(w.mono, w.mono[1:], strict=False)]
            # paced, not burst: the mean spacing is the character time (loose bound for CI load)
            assert sum(gaps) / len(gaps) == pytest.approx(11 / 2400, rel=0.5)
            assert len(w.wall) == 8
    finally:
        writer.stop()
        pty.close()


def test_paced_writer_reports_port_gone_without_crashing():
    pty = PtyTransport()
    done: queue.Queue[Written] = queue.Queue()
    writer = PacedWriter(pty, done.put)
    pty.close()
    writer.submit(b"\xe5\xe5", char_times(time.monotonic(), 2, 2400))
    w = done.get(timeout=2)
    assert w.data == b"" and "closed" in (w.error or "")
    writer.stop()


def test_paced_writer_rejects_mismatched_lengths():
    writer = PacedWriter(SerialTransport("loop://"), lambda w: None)
    with pytest.raises(ValueError, match="2 bytes but 1"):
        writer.submit(b"\x01\x02", [0.0])
    writer.stop()


# -- reader thread ---------------------------------------------------------------------------
def test_reader_stamps_chunks_and_survives_master_unplug():
    pty = PtyTransport()
    inbox: queue.Queue = queue.Queue()
    master = serial.Serial(pty.path, 2400, timeout=0.5)
    reader = PortReader(pty, inbox, poll=0.02, backoff=0.01, backoff_max=0.05).start()
    try:
        # the first master's session starts through reopen() (gone: none yet, back: session 1)
        assert [inbox.get(timeout=2).kind for _ in range(2)] == ["gone", "back"]
        before = time.monotonic()
        master.write(REQ_UD2_1)
        ev = inbox.get(timeout=2)
        assert ev.kind == "rx" and ev.data == REQ_UD2_1 and ev.mono >= before
        assert ev.session == 1
        master.close()  # USB unplug as the bridge sees it
        ev = inbox.get(timeout=2)
        assert ev.kind == "gone"
        time.sleep(0.1)
        again = serial.Serial(pty.path, 2400, timeout=0.5)
        ev = inbox.get(timeout=2)
        assert ev.kind == "back" and ev.session == 2
        again.write(SND_NKE_1)
        ev = inbox.get(timeout=2)
        assert ev.kind == "rx" and ev.data == SND_NKE_1 and ev.session == 2
        again.close()
    finally:
        reader.stop()
        pty.close()
    assert not any(t.name == "bridge-reader" and t.is_alive() for t in threading.enumerate())
