"""``meterbench sms encrypt/decrypt/send``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.core.world import World
from simulator.gateways.cme2100.gateway import Cme2100
from simulator.gateways.cme2100.sim_modem import SimulatedModem

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "fixtures" / "cme2100" / "vectors.json").read_text("utf-8"))["vectors"]


@pytest.mark.parametrize("v", VECTORS[:5], ids=lambda v: v["name"])
def test_encrypt_and_decrypt_reproduce_the_vectors(v, capsys):
    direction = ["--response"] if v["direction"] == 1 else []
    assert (
        main(
            [
                "sms",
                "encrypt",
                "--key",
                v["key"],
                "--counter",
                str(v["counter"]),
                *direction,
                v["plaintext"],
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert out.out.strip() == v["sms"]
    assert f"{len(v['sms'])} characters, 1 SMS" in out.err
    back = [] if v["direction"] == 1 else ["--command"]
    assert main(["sms", "decrypt", "--key", v["key"], *back, v["sms"]]) == 0
    out = capsys.readouterr()
    assert out.out == v["plaintext"] + "\n"
    assert f"counter {v['counter']}" in out.err


def test_decrypt_errors_name_the_reason(capsys, monkeypatch):
    monkeypatch.setenv("MBENCH_SMS_KEY", "Pa55-word_2026!x")
    assert main(["sms", "decrypt", "not base64"]) == 2
    assert "not_base64url" in capsys.readouterr().err
    assert main(["sms", "decrypt", VECTORS[0]["sms"]]) == 2  # other key, other direction
    assert "bad_direction" in capsys.readouterr().err
    assert main(["sms", "decrypt", "--command", VECTORS[0]["sms"]]) == 2
    assert "bad_tag" in capsys.readouterr().err
    assert main(["sms", "encrypt", "--key", "short", "--counter", "1", "x"]) == 2
    assert "exactly 16 characters" in capsys.readouterr().err
    monkeypatch.delenv("MBENCH_SMS_KEY")
    assert main(["sms", "encrypt", "--counter", "1", "x"]) == 2
    assert "MBENCH_SMS_KEY" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_send_through_a_modem_and_print_the_decrypted_response(capsys):
    factory = "Fk7#qZ2m!Lw9Rt4x"
    world = World(seed=4)
    gateway = Cme2100(world, factory_key=factory)
    sim = SimulatedModem()

    def network(number: str, text: str) -> None:
        gateway.receive(text)
        world.run(world.now + 1)

    sim.on_sent = network
    gateway.on_sms.append(lambda text: sim.deliver("+46701112233", text))
    with sim:
        rc = main(
            [
                "sms",
                "send",
                "--port",
                sim.path,
                "--to",
                "+46701112233",
                "--key",
                factory,
                "--counter",
                "1",
                "--wait",
                "5",
                "qset email a@example.com",
            ]
        )
    assert rc == 0
    out = capsys.readouterr()
    assert out.out.startswith("ERROR factory state")
    assert "as 1 SMS" in out.err
    assert sim.sent[0][0] == "+46701112233"


def test_example_lab_rig_validates_and_names_the_modem():
    from simulator.rig import load_rig

    rig = load_rig(ROOT / "rigs" / "cme2100-lab.toml")
    assert rig.dut.model == "CMe2100" and rig.transport("modem").url


@pytest.mark.timeout(60)
def test_send_takes_the_modem_port_from_a_rig(tmp_path, capsys):
    with SimulatedModem() as sim:
        text = (ROOT / "rigs" / "cme2100-lab.toml").read_text()
        rig = tmp_path / "rig.toml"
        rig.write_text(text.replace('"/dev/ttyUSB2"', f'"{sim.path}"'))
        assert (
            main(
                [
                    "sms",
                    "send",
                    "--rig",
                    str(rig),
                    "--to",
                    "+4670111",
                    "--key",
                    "Pa55-word_2026!x",
                    "--counter",
                    "7",
                    "install 3",
                ]
            )
            == 0
        )
        ((number, sent),) = sim.sent
    assert number == "+4670111"
    assert main(["sms", "decrypt", "--command", "--key", "Pa55-word_2026!x", sent]) == 0
    assert capsys.readouterr().out.endswith("install 3\n")


def test_decrypt_in_the_wrong_direction_names_the_flag(capsys):
    """encrypt makes a command by default and decrypt expects a response: the error says so."""
    key = "PASSWORD16CHARS!"
    assert main(["sms", "encrypt", "--key", key, "--counter", "1", "qset email a@b.example"]) == 0
    command = capsys.readouterr().out.strip()
    assert main(["sms", "decrypt", "--key", key, command]) == 2
    assert "bad_direction" in (err := capsys.readouterr().err) and "add --command" in err
    assert main(["sms", "decrypt", "--key", key, "--command", command]) == 0
    assert capsys.readouterr().out == "qset email a@b.example\n"
    assert main(["sms", "encrypt", "--key", key, "--counter", "2", "--response", "ok"]) == 0
    response = capsys.readouterr().out.strip()
    assert main(["sms", "decrypt", "--key", key, "--command", response]) == 2
    assert "drop --command" in capsys.readouterr().err
