"""The AT-command modem driver against the simulated modem over a real pseudo-terminal."""

from __future__ import annotations

import pytest

from simulator.core.world import World
from simulator.gateways.cme2100.gateway import Cme2100
from simulator.gateways.cme2100.modem import GsmModem, ModemError
from simulator.gateways.cme2100.sender import CommandSender
from simulator.gateways.cme2100.sim_modem import SimulatedModem

GATEWAY_NUMBER = "+46701112233"
BENCH_NUMBER = "+46709998877"
FACTORY_KEY = "Fk7#qZ2m!Lw9Rt4x"
PASSWORD = "Pa55-word_2026!x"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sim():
    with SimulatedModem() as modem:
        yield modem


@pytest.fixture
def driver(sim):
    with GsmModem(sim.path, timeout=5.0) as modem:
        yield modem


def test_init_switches_to_pdu_mode_and_indications(sim, driver):
    assert sim.pdu_mode and sim.indications and not sim.echo
    assert sim.commands[:5] == ["AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,0,0"]
    assert driver.command("AT+CMGF?") == ["+CMGF: 0"]


def test_send_single_and_concatenated(sim, driver):
    assert len(driver.send_sms(GATEWAY_NUMBER, "hello")) == 1
    long_text = "".join(chr(65 + i % 26) for i in range(400))
    refs = driver.send_sms(GATEWAY_NUMBER, long_text)
    assert len(refs) == 3 and len(set(refs)) == 3
    assert sim.sent == [(GATEWAY_NUMBER, "hello"), (GATEWAY_NUMBER, long_text)]


def test_receive_single_and_concatenated_then_storage_is_empty(sim, driver):
    sim.deliver(GATEWAY_NUMBER, "short one")
    sim.deliver(GATEWAY_NUMBER, "L" * 320)
    got = driver.wait_for_sms(2, timeout=5)
    assert [(m.number, m.text) for m in got] == [
        (GATEWAY_NUMBER, "short one"),
        (GATEWAY_NUMBER, "L" * 320),
    ]
    assert driver.command("AT+CMGL=4") == []


def test_modem_errors_are_typed(sim, driver):
    with pytest.raises(ModemError) as e:
        driver.command("AT+BOGUS")
    assert e.value.result == "ERROR"
    with pytest.raises(ModemError) as e:
        driver.command("AT+CMGD=42")
    assert e.value.result == "+CMS ERROR: 321"
    with pytest.raises(ModemError) as e:
        driver._submit("AT+CMGS=5", b"00ZZ")  # not a PDU: the modem refuses it
    assert e.value.result == "+CMS ERROR: 304"


def test_text_mode_sends_single_messages_only(sim):
    with GsmModem(sim.path, timeout=5.0, mode="text") as modem:
        assert not sim.pdu_mode
        modem.send_sms(GATEWAY_NUMBER, "plain")
        assert sim.sent == [(GATEWAY_NUMBER, "plain")]
        with pytest.raises(ModemError, match="concatenated"):
            modem.send_sms(GATEWAY_NUMBER, "x" * 161)
        sim.deliver(GATEWAY_NUMBER, "reply")
        assert [m.text for m in modem.wait_for_sms(1, timeout=5)] == ["reply"]


def test_sender_commands_a_simulated_cme2100_through_the_modem():
    """The lab path: sender -> driver -> pty -> modem -> network -> gateway, and back."""
    world = World(seed=1)
    gateway = Cme2100(world, factory_key=FACTORY_KEY)
    sim = SimulatedModem()

    def network(number: str, text: str) -> None:
        assert number == GATEWAY_NUMBER
        gateway.receive(text)
        world.run(world.now + 1)

    sim.on_sent = network
    gateway.on_sms.append(lambda text: sim.deliver(GATEWAY_NUMBER, text))
    sender = CommandSender(FACTORY_KEY)
    with sim, GsmModem(sim.path, timeout=5.0) as modem:
        modem.send_sms(GATEWAY_NUMBER, sender.encrypt_command(sender.password_command(PASSWORD)))
        (reply,) = modem.wait_for_sms(1, timeout=5)
        assert sender.decrypt_response(reply.text) == "OK communication password set"
        sender.switch_key(PASSWORD)
        # a command long enough to need two SMS
        long_address = "a" * 120 + "@example.com"
        command = sender.encrypt_command(f"qset email {long_address}")
        assert len(command) > 160
        modem.send_sms(GATEWAY_NUMBER, command)
        (reply,) = modem.wait_for_sms(1, timeout=5)
        assert sender.decrypt_response(reply.text) == f"OK e-mail recipient set to {long_address}"
    assert gateway.recipient == long_address


def test_a_ucs2_sms_is_read_and_does_not_block_later_messages(sim, driver):
    # issue 14: one UCS2 SMS (a phone's choice as soon as a character is not GSM 7-bit) made
    # receive() raise on every later call, since the message stayed in storage.
    sim.deliver(GATEWAY_NUMBER, "status? ÅÄÖ €", ucs2=True)
    sim.deliver(GATEWAY_NUMBER, "plain")
    got = driver.wait_for_sms(2, timeout=5)
    assert [m.text for m in got] == ["status? ÅÄÖ €", "plain"]
    assert driver.command("AT+CMGL=4") == []


def test_an_undecodable_sms_is_set_aside_and_deleted(sim, driver):
    sim.deliver(GATEWAY_NUMBER, "first")
    index, (stat, pdu) = next(iter(sim._store.items()))
    sim._store[index] = (stat, pdu[:22] + "04" + pdu[24:])  # DCS 8-bit data: not decodable
    sim.deliver(GATEWAY_NUMBER, "second")
    assert [m.text for m in driver.wait_for_sms(1, timeout=5)] == ["second"]
    assert [(i, type(e).__name__) for i, _, e in driver.rejected] == [(index, "PduError")]
    assert driver.command("AT+CMGL=4") == []
