"""Session discipline and timing of the bridge, against ``meterbench serve`` in its own process.

The master is this test process, over ``--tcp`` (a socket) and ``--pty`` (pyserial on the
terminal), as a lab's independent master would be. Each case is one way the bridge once
confused two masters or fell behind (docs/bridge.md "Sessions", "Timing"):

* a request sent by a master that then left is never answered to the next master;
* a reply cut by the master leaving (mid-reply) does not reach the next one;
* bytes of a frame one master started never complete a frame with the next master's bytes;
* noise (even noise that looks like a long frame's header) costs nothing: the valid frame
  right after it is answered at once (it once waited ~0.2 s per noise "frame", 8 s for 4 kB);
* a second TCP client is refused with a traced reason, or queued (``--tcp-busy queue``);
* a 300 bit/s master scanning absent addresses at libmbus cadence builds no backlog: the
  reply after the scan starts the slave's delay after its own request (it once drifted
  ~60 ms per absent address).

Every wait is bounded; the whole module runs in well under a minute.
"""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import pytest

from simulator.mbus.wire import response_window
from simulator.testing.serve_process import MasterClient as Master
from simulator.testing.serve_process import ServeProcess

pytestmark = pytest.mark.timeout(60)

SND_NKE_4 = bytes.fromhex("1040044416")
REQ_UD2_4 = bytes.fromhex("105b045f16")
E5 = b"\xe5"
TRANSPORTS = ["tcp", "pty"]
CHAR = 11  # bits per character (8E1)


def snd_nke(address: int) -> bytes:
    return bytes([0x10, 0x40, address, (0x40 + address) & 0xFF, 0x16])


def scenario(tmp_path: Path, baud: int, delay_ms: float | None = None) -> Path:
    delay = f"delay_ms = [{delay_ms}, {delay_ms}]\n" if delay_ms is not None else ""
    path = tmp_path / f"bus{baud}.toml"
    path.write_text(
        f'kind = "mbus"\nseed = 5\n[bus]\nbaud = {baud}\n'
        f'[[slaves]]\ntemplate = "water"\nid = 12345678\nprimary = 4\nbaud = {baud}\n{delay}'
    )
    return path


def by_kind(events: list[dict], kind: str, **match) -> list[dict]:
    return [e for e in events if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())]


def served(tmp_path: Path, kind: str, baud: int = 2400, *extra: str, delay_ms=None):
    return ServeProcess(
        scenario(tmp_path, baud, delay_ms), kind, tmp_path / "trace.jsonl", *extra, seconds=40
    )


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_request_of_a_master_that_left_is_not_answered_to_the_next(tmp_path, kind):
    with served(tmp_path, kind) as srv:
        first = Master(srv)
        first.write(REQ_UD2_4)  # a RSP_UD would come back within ~0.3 s
        first.close()  # ... but this master leaves at once
        time.sleep(0.05)
        second = Master(srv)
        stale, _ = second.read_for(0.8)
        second.write(SND_NKE_4)
        own, _ = second.read_for(0.6)
        second.close()
        events = srv.stop()
    assert stale == b"", f"the next master got {stale.hex()}"
    assert own == E5  # its own reply, exactly
    dropped = [e for e in by_kind(events, "bridge_dropped") if e["session"] == 1]
    assert dropped and b"".join(bytes.fromhex(e["hex"]) for e in dropped), events
    assert {e["what"] for e in dropped} <= {"input", "request", "reply"}
    ends = by_kind(events, "bridge_session", state="end", session=1)
    assert ends and "gone" in ends[0]["reason"]


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_reply_cut_by_a_master_leaving_does_not_reach_the_next(tmp_path, kind):
    with served(tmp_path, kind) as srv:
        first = Master(srv)
        first.write(REQ_UD2_4)
        head, _ = first.read_for(1.0, want=4)  # the RSP_UD has begun (68 L L 68) ...
        first.close()  # ... and the master leaves mid-reply
        time.sleep(0.05)
        second = Master(srv)
        leaked, _ = second.read_for(0.8)
        second.write(SND_NKE_4)
        own, _ = second.read_for(0.6)
        second.close()
        events = srv.stop()
    assert head[:1] == b"\x68" and head[3:4] == b"\x68"
    assert leaked == b"", f"the next master got {leaked.hex()} of the first one's reply"
    assert own == E5
    reply = bytes.fromhex(by_kind(events, "bridge_exchange")[0]["reply"])
    written = [e for e in by_kind(events, "bridge_bytes", direction="out")]
    dropped = by_kind(events, "bridge_dropped", what="reply", session=1)
    assert dropped, "the rest of the reply must be traced as dropped"
    # every reply byte was either written to the first master or dropped, none twice
    out_first = bytes.fromhex(written[0]["hex"]) if written else b""
    assert len(out_first) + sum(e["n"] for e in dropped) == len(reply)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_frame_started_by_one_master_is_not_completed_by_the_next(tmp_path, kind):
    # 300 bit/s: the inter-byte gap that ends a partial frame is 110 ms, longer than the
    # hand-over below, so only the session rule keeps the two masters' bytes apart
    with served(tmp_path, kind, 300) as srv:
        first = Master(srv, 300)
        first.write(SND_NKE_4[:3])
        first.close()
        time.sleep(0.02)
        second = Master(srv, 300)
        second.write(SND_NKE_4[3:] + SND_NKE_4)  # the tail would complete the first's frame
        got, _ = second.read_for(1.5)
        second.close()
        events = srv.stop()
    assert got == E5, f"expected one E5, got {got.hex()}"
    assert [e["request"] for e in by_kind(events, "bridge_exchange")] == [SND_NKE_4.hex()]
    assert by_kind(events, "bridge_dropped", what="input", session=1)[0]["hex"] == "104004"
    assert by_kind(events, "bridge_junk")[0]["hex"] == "4416"


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_noise_then_a_valid_frame_is_answered_at_once(tmp_path, kind):
    rng = random.Random(13)
    noise = bytes(rng.randrange(256) for _ in range(2000))
    # and noise that looks like the header of a 261-byte long frame, right before the frame
    noise += b"\x68\xff\xff\x68" + bytes(rng.randrange(256) for _ in range(40))
    with served(tmp_path, kind) as srv:
        master = Master(srv)
        t0 = master.write(noise + SND_NKE_4)
        got, first = master.read_for(1.0)
        master.close()
        events = srv.stop()
    assert got == E5
    assert first is not None and first - t0 < 0.05 + 5 * CHAR / 2400 + response_window(2400)[1]
    exchanges = by_kind(events, "bridge_exchange")
    assert [e["request"] for e in exchanges] == [SND_NKE_4.hex()]
    assert exchanges[0]["queued_ms"] < 20
    assert sum(e["n"] for e in by_kind(events, "bridge_junk")) == len(noise)


def test_second_tcp_client_is_refused_with_a_traced_reason(tmp_path):
    with served(tmp_path, "tcp") as srv:
        first = Master(srv)
        time.sleep(0.05)
        second = socket.create_connection(srv.address, timeout=2.0)
        second.settimeout(2.0)
        assert second.recv(16) == b""  # closed at once
        second.close()
        first.write(SND_NKE_4)
        got, _ = first.read_for(0.5)
        first.close()
        events = srv.stop()
    assert got == E5  # the served client is not disturbed
    refused = by_kind(events, "bridge_session", state="refused")
    assert len(refused) == 1
    assert "one client at a time" in refused[0]["reason"]
    start = by_kind(events, "bridge_session", state="start")[0]
    assert start["peer"] in refused[0]["reason"]  # names who is being served


def test_second_tcp_client_waits_its_turn_with_tcp_busy_queue(tmp_path):
    with served(tmp_path, "tcp", 2400, "--tcp-busy", "queue") as srv:
        first = Master(srv)
        time.sleep(0.05)
        second = Master(srv)
        second.write(SND_NKE_4)  # held: not read while the first is served
        early, _ = second.read_for(0.4)
        first.write(SND_NKE_4)
        mine, _ = first.read_for(0.5)
        first.close()  # now the second one's session starts and its request is read
        later, _ = second.read_for(1.0)
        second.close()
        events = srv.stop()
    assert (early, mine, later) == (b"", E5, E5)
    assert len(by_kind(events, "bridge_session", state="queued")) == 1
    assert [e["session"] for e in by_kind(events, "bridge_session", state="start")] == [1, 2]


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_300_bit_s_scan_of_absent_addresses_builds_no_backlog(tmp_path, kind):
    # libmbus cadence: write SND_NKE, wait up to (330 + 11) bit times + 150 ms = 1.29 s for
    # the reply, next address. Four absent addresses, then the meter at 4, which answers
    # 100 ms after the request's end. The bridge once waited 1.17 s + the request's 183 ms
    # after each request before it read the next: 63 ms of backlog per absent address.
    delay = 0.100
    wait = (330 + 11) / 300 + 0.150
    duration = 5 * CHAR / 300
    lo, hi = response_window(300)
    with served(tmp_path, kind, 300, delay_ms=delay * 1000) as srv:
        master = Master(srv, 300)
        for address in (1, 2, 3, 5):
            master.write(snd_nke(address))
            silent, _ = master.read_for(wait)
            assert silent == b""
        t0 = master.write(SND_NKE_4)
        got, first = master.read_for(wait)
        master.close()
        events = srv.stop()
    assert got == E5 and first is not None
    measured = first - (t0 + duration)  # from the request's own end
    assert lo <= measured <= hi
    assert measured == pytest.approx(delay, abs=0.030), f"reply {measured * 1000:.1f} ms"
    exchanges = by_kind(events, "bridge_exchange")
    assert len(exchanges) == 5 and all(e["queued_ms"] < 20 for e in exchanges)
    assert exchanges[-1]["delay"] == pytest.approx(delay, abs=1e-6)
    late = [x for e in by_kind(events, "bridge_bytes", direction="out") for x in e["byte_late_ms"]]
    assert late and max(late) < 20
