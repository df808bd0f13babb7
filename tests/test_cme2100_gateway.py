"""The CMe2100 model on its SMS channel: security states, rejections, commands, replies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.core.world import World
from simulator.gateways.cme2100 import protocol as p
from simulator.gateways.cme2100.gateway import FACTORY, PASSWORD_SET, Cme2100
from simulator.gateways.cme2100.sender import CommandSender

FACTORY_KEY = "Fk7#qZ2m!Lw9Rt4x"
PASSWORD = "Pa55-word_2026!x"
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Bench:
    """A gateway in a world, a sender, and the responses the sender decrypts."""

    def __init__(self) -> None:
        self.world = World(seed=3)
        self.gw = Cme2100(self.world, factory_key=FACTORY_KEY)
        self.sender = CommandSender(FACTORY_KEY)
        self.raw: list[str] = []
        self.gw.on_sms.append(self.raw.append)

    def send_text(self, text: str) -> list[str]:
        """Deliver one SMS text now, run, and return the new responses' plaintexts."""
        before = len(self.raw)
        self.gw.receive(text)
        self.world.run(self.world.now + 1)
        return [self.sender.decrypt_response(t) for t in self.raw[before:]]

    def command(self, command: str) -> list[str]:
        return self.send_text(self.sender.encrypt_command(command))

    def set_password(self) -> None:
        assert self.command(self.sender.password_command(PASSWORD)) == [
            "OK communication password set"
        ]
        self.sender.switch_key(PASSWORD)

    def last_sms(self):
        return self.world.trace.select("sms", direction="in")[-1]


@pytest.fixture
def bench() -> Bench:
    return Bench()


def test_factory_state_to_password_set(bench):
    assert bench.gw.state == FACTORY
    assert bench.command("qset email ops@example.com")[0].startswith("ERROR factory state")
    assert bench.gw.recipient is None
    bench.set_password()
    assert bench.gw.state == PASSWORD_SET
    (change,) = bench.world.trace.select("security_state")
    assert (change["from"], change["to"]) == (FACTORY, PASSWORD_SET)
    assert bench.command("qset email ops@example.com") == [
        "OK e-mail recipient set to ops@example.com"
    ]
    assert bench.gw.recipient == "ops@example.com"
    # the password never appears in the trace
    assert PASSWORD not in "".join(e.to_json() for e in bench.world.trace)


@pytest.mark.parametrize(
    ("new", "error"),
    [
        ("short", "exactly 16 characters"),
        ("x" * 17, "exactly 16 characters"),
        ("with space 12345", "not printable"),
        (FACTORY_KEY, "differ from the factory key"),
    ],
)
def test_bad_new_passwords_are_refused_and_state_stays(bench, new, error):
    (reply,) = bench.command(bench.sender.password_command(new))
    assert reply.startswith("ERROR") and error in reply
    assert bench.gw.state == FACTORY
    assert not bench.world.trace.select("security_state")


def rejected(bench: Bench, text: str, reason: str) -> None:
    state, recipient, guard_last = bench.gw.state, bench.gw.recipient, bench.gw._guard._last.copy()
    assert bench.send_text(text) == []  # rejected SMS get no response
    ev = bench.last_sms()
    assert (ev["outcome"], ev["reason"]) == ("rejected", reason)
    assert (bench.gw.state, bench.gw.recipient, bench.gw._guard._last) == (
        state,
        recipient,
        guard_last,
    )


def test_every_rejection_has_its_reason_and_changes_nothing(bench):
    bench.set_password()
    factory = CommandSender(FACTORY_KEY, next_counter=10)
    wrong = CommandSender("Wrong-key_2026!z")
    good = bench.sender.encrypt_command("qset email a@example.com")
    rejected(bench, "qset email evil@example.com", "plaintext")
    rejected(bench, "install 3", "plaintext")
    rejected(bench, good[:20] + "*" + good[21:], "not_base64url")
    rejected(bench, good[:16], "truncated")
    rejected(bench, wrong.encrypt_command("qset email evil@example.com"), "bad_tag")
    rejected(bench, factory.encrypt_command("qset email evil@example.com"), "factory_key")
    rejected(
        bench, factory.encrypt_command(factory.password_command("Another_pw_2026!")), "factory_key"
    )
    tampered = bytearray(p.b64url_decode(good))
    tampered[8] ^= 0x01
    rejected(bench, p.b64url_encode(bytes(tampered)), "bad_tag")
    response_like = p.encrypt(
        PASSWORD, "qset email evil@example.com", counter=50, direction=p.Direction.RESPONSE
    )
    rejected(bench, response_like, "bad_direction")
    # the genuine one still works after all that, then its replay is refused
    assert bench.send_text(good) == ["OK e-mail recipient set to a@example.com"]
    rejected(bench, good, "replay")
    assert bench.gw.recipient == "a@example.com"


def test_factory_state_rejects_other_keys_and_replays(bench):
    first = bench.sender.encrypt_command("qset email a@example.com")
    assert bench.send_text(first)[0].startswith("ERROR factory state")
    rejected(bench, first, "replay")
    rejected(bench, CommandSender(PASSWORD).encrypt_command("qset email a@example.com"), "bad_tag")


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("reboot now", "ERROR unknown command 'reboot'"),
        ("qset email not-an-address", "ERROR invalid e-mail address 'not-an-address'"),
        ("qset email", "ERROR usage: qset email <recipient>"),
        ("qset sms +4670", "ERROR usage: qset email <recipient>"),
        (
            "install",
            "ERROR usage: install [primary|secondary] <expected number of meters> [CAD file]",
        ),
        (
            "install many",
            "ERROR usage: install [primary|secondary] <expected number of meters> [CAD file]",
        ),
        ("common.mbus.baudrate=300", "ERROR unknown configuration key 'common.mbus.baudrate'"),
    ],
)
def test_bad_commands_get_a_clear_error_response(bench, command, reply):
    bench.set_password()
    assert bench.command(command) == [reply]


def test_install_without_a_bus_reports_zero_found(bench):
    bench.set_password()
    replies = bench.command("install 2 site.cad")
    assert replies == [
        "installation started, expecting 2 meters",
        "installation completed: found 0 of 2 expected meters MISMATCH",
    ]
    done = bench.world.trace.select("install", phase="completed")[0]
    assert (done["expected"], done["found"], done["cad_file"]) == (2, 0, "site.cad")


def test_responses_are_encrypted_and_counted(bench):
    bench.set_password()
    bench.command("qset email a@example.com")
    bench.command("qset email b@example.com")
    out = bench.world.trace.select("sms", direction="out")
    counters = [p.parse_text(e["text"]).counter for e in out]
    assert counters == [1, 1, 2]  # factory key: 1; password: 1, 2
    assert all(" " not in e["text"] for e in out)


def test_password_can_be_changed_again_under_the_password(bench):
    bench.set_password()
    assert bench.command(bench.sender.password_command("Second_pw_2026!!")) == [
        "OK communication password set"
    ]
    bench.sender.switch_key("Second_pw_2026!!")
    assert bench.command("qset email c@example.com") == ["OK e-mail recipient set to c@example.com"]
    rejected(
        bench, CommandSender(PASSWORD, next_counter=99).encrypt_command("install 1"), "bad_tag"
    )


def test_same_seed_same_trace():
    def run() -> str:
        b = Bench()
        b.set_password()
        b.command("qset email a@example.com")
        b.send_text("install 3")
        return "\n".join(e.to_json() for e in b.world.trace)

    assert run() == run()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_gateway_rejects_any_bit_flip_or_character_substitution(data):
    b = Bench()
    b.set_password()
    good = b.sender.encrypt_command("qset email evil@example.com")
    if data.draw(st.booleans()):
        raw = bytearray(p.b64url_decode(good))
        bit = data.draw(st.integers(0, len(raw) * 8 - 1))
        raw[bit // 8] ^= 1 << (bit % 8)
        bad = p.b64url_encode(bytes(raw))
    else:
        i = data.draw(st.integers(0, len(good) - 1))
        ch = data.draw(st.sampled_from(B64URL + " =.").filter(lambda c: c != good[i]))
        bad = good[:i] + ch + good[i + 1 :]
    assert b.send_text(bad) == []
    assert b.last_sms()["outcome"] == "rejected"
    assert b.gw.recipient is None
    # the untouched message is still fresh: nothing was consumed by the forgery
    assert b.send_text(good) == ["OK e-mail recipient set to evil@example.com"]
