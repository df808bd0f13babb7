"""UCS-2 SMS at the CMe2100: what a phone sends when one character is not GSM 7-bit.

A phone codes the whole message UCS-2 (3GPP TS 23.038 DCS 08, UTF-16BE, 70 characters a
single SMS, 67 a part) as soon as one character is outside the GSM 7-bit alphabet. The model
reads SMS-DELIVER PDUs (``Cme2100.receive_pdu``): an encrypted command that arrives UCS-2
coded is decoded and accepted; a non-GSM character in it is rejected ``non_gsm`` naming the
character; a command typed on the phone stays ``plaintext``; an undecodable PDU is
``bad_pdu``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from simulator.core.world import World
from simulator.gateways.cme2100.gateway import Cme2100
from simulator.gateways.cme2100.pdu import decode_pdu, encode_deliver
from simulator.gateways.cme2100.sender import CommandSender

FACTORY_KEY = "Fk7#qZ2m!Lw9Rt4x"
PASSWORD = "Pa55-word_2026!x"
PHONE = "+46701234567"
WHEN = datetime(2026, 1, 5, 0, 1, tzinfo=UTC)


class Bench:
    def __init__(self) -> None:
        self.world = World(seed=3)
        self.gw = Cme2100(self.world, factory_key=FACTORY_KEY)
        self.sender = CommandSender(FACTORY_KEY)
        self.raw: list[str] = []
        self.gw.on_sms.append(self.raw.append)

    def deliver(self, text: str, *, ucs2: bool = True, order=None) -> list[str]:
        """Hand ``text`` to the gateway as the SMS-DELIVER PDUs a phone's SMS makes."""
        before = len(self.raw)
        pdus = encode_deliver(PHONE, text, timestamp=WHEN, reference=9, ucs2=ucs2)
        for i in order or range(len(pdus)):
            self.gw.receive_pdu(pdus[i])
        self.world.run(self.world.now + 1)
        return [self.sender.decrypt_response(t) for t in self.raw[before:]]

    def last(self):
        return self.world.trace.select("sms", direction="in")[-1]


@pytest.fixture
def bench() -> Bench:
    return Bench()


def test_ucs2_sms_with_an_encrypted_command_is_decoded_and_accepted(bench) -> None:
    text = bench.sender.encrypt_command(bench.sender.password_command(PASSWORD))
    pdus = encode_deliver(PHONE, text, timestamp=WHEN, reference=9, ucs2=True)
    assert len(pdus) == 2 and {decode_pdu(p).coding for p in pdus} == {"ucs2"}  # 103 chars
    assert bench.deliver(text, order=[1, 0]) == ["OK communication password set"]
    ev = bench.last()
    assert ev["outcome"] == "accepted" and ev["coding"] == "ucs2" and ev["text"] == text


def test_gsm7_sms_trace_has_no_coding_field(bench) -> None:
    text = bench.sender.encrypt_command(bench.sender.password_command(PASSWORD))
    assert bench.deliver(text, ucs2=False) == ["OK communication password set"]
    assert "coding" not in bench.last().fields


def test_ucs2_sms_with_a_non_gsm_character_is_rejected_naming_it(bench) -> None:
    text = bench.sender.encrypt_command(bench.sender.password_command(PASSWORD))
    pasted = text[:40] + "\u2019" + text[40:]  # a phone keyboard's typographic apostrophe
    assert bench.deliver(pasted) == []  # rejected: no response
    ev = bench.last()
    assert (ev["outcome"], ev["reason"], ev["coding"]) == ("rejected", "non_gsm", "ucs2")
    assert "U+2019" in ev["detail"] and "offset 40" in ev["detail"]
    assert bench.gw.state == "factory"


def test_the_same_character_in_a_gsm7_text_is_only_not_base64url(bench) -> None:
    # the reason depends on the coding the SMS came in: a check that can tell them apart
    text = bench.sender.encrypt_command("qset email ops@example.com")
    bench.gw.receive(text[:40] + "\u2019" + text[40:])
    bench.world.run(1)
    assert bench.last()["reason"] == "not_base64url"


def test_ucs2_command_typed_on_a_phone_is_rejected_as_plaintext(bench) -> None:
    assert bench.deliver("install 3 Zählerraum\u2013Nord") == []
    ev = bench.last()
    assert (ev["reason"], ev["coding"]) == ("plaintext", "ucs2")
    assert "UCS-2" in ev["detail"]


@pytest.mark.parametrize(
    ("user_data", "what"),
    [
        ("0300410042", "odd length"),  # UDL 3 octets of UCS-2
        ("02D800", "lone surrogate"),  # a high surrogate with nothing after it
    ],
)
def test_an_undecodable_ucs2_pdu_is_rejected_bad_pdu(bench, user_data: str, what: str) -> None:
    good = encode_deliver(PHONE, "AB", timestamp=WHEN, ucs2=True)[0]
    head = good[: -len("0400410042")]  # everything before UDL
    bench.gw.receive_pdu(head + user_data)
    bench.world.run(1)
    ev = bench.last()
    assert (ev["outcome"], ev["reason"]) == ("rejected", "bad_pdu"), what
    assert "UCS2" in ev["detail"] and "offset" in ev["detail"]
