"""CMe2100 SMS protocol v1 throughput: messages encrypted + decrypted per second.

Run: ``python3 -m pytest benches/bench_cme2100.py --benchmark-only``. The figure to compare
is ops/s (one op = one command encrypted and decrypted, HKDF twice).
"""

from __future__ import annotations

from simulator.gateways.cme2100 import protocol as p

KEY = "Pa55-word_2026!x"
COMMAND = "qset email metering@example.com"


def test_encrypt_decrypt_round_trip(benchmark):
    counter = iter(range(1, 10**9))

    def round_trip() -> str:
        text = p.encrypt(KEY, COMMAND, counter=next(counter), direction=p.Direction.COMMAND)
        return p.decrypt(KEY, text, direction=p.Direction.COMMAND).text

    assert benchmark(round_trip) == COMMAND


def test_gateway_handles_commands(benchmark):
    from simulator.core.world import World
    from simulator.gateways.cme2100.gateway import Cme2100
    from simulator.gateways.cme2100.sender import CommandSender

    world = World(seed=1)
    gateway = Cme2100(world, factory_key="Fk7#qZ2m!Lw9Rt4x")
    gateway.password = KEY  # start in password_set: measure command handling only
    sender = CommandSender(KEY)
    replies: list[str] = []
    gateway.on_sms.append(replies.append)

    def one() -> None:
        gateway.receive(sender.encrypt_command(COMMAND))
        world.run(world.now + 1)

    benchmark(one)
    assert replies and len(replies) == sender.next_counter - 1
