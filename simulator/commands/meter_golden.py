"""Golden telegrams of a meter type: build them from the file, decode them as the CLI does.

:func:`build_golden` makes the bytes a meter of the type sends for a ``[[golden]]`` entry: the
wired slave (a real :class:`~simulator.mbus.slave.Slave` in a world of ``seed``, asked with
REQ_UD2 at ``t_s``; its profile stream is the one the ``mbus`` runner uses) or the wM-Bus
meter (:class:`~simulator.wmbus.meter.RadioMeter`, telegram at ``t_s`` with ``access_no``).
:func:`decode_json` is ``meterbench decode --json`` (``--wmbus`` for wireless) on the bytes,
one object, without the ``source`` key (where the input came from, not what it says).
"""

from __future__ import annotations

import io
import json
from typing import Any

from simulator.meters.model import GoldenModel
from simulator.meters.types import MeterType


def telegram_bytes(g: GoldenModel) -> bytes:
    return bytes.fromhex("".join(g.telegram.split()))


def decode_json(raw: bytes, link: str = "wired") -> dict[str, Any]:
    """The ``decode --json`` object of one telegram; ``ValueError`` if it does not decode."""
    from simulator.cli import build_parser

    argv = ["decode", "--json", *(["--wmbus"] if link == "wireless" else []), raw.hex()]
    args = build_parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    status = args.func(args, out, err)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    if status != 0 or len(lines) != 1 or "error" in lines[0]:
        raise ValueError(f"{link} telegram does not decode: {err.getvalue().strip() or lines}")
    doc = lines[0]
    doc.pop("source", None)
    return doc


def build_golden(mt: MeterType, g: GoldenModel) -> bytes:
    """The telegram a meter of type ``mt`` sends in the situation ``g`` describes."""
    if g.link == "wireless":
        from simulator.wmbus.meter import RadioMeter

        meter = RadioMeter(
            id=g.id,
            x=0.0,
            y=0.0,
            mode=g.mode,
            manufacturer=mt.manufacturer,
            version=mt.version,
            profile=mt.name,
            meter_type=mt,
            seed=g.seed,
        )
        return meter.telegram(g.t_s, g.access_no)
    from simulator.core.world import World
    from simulator.mbus.address import SecondaryAddress
    from simulator.mbus.frames import REQ_UD2, ShortFrame
    from simulator.mbus.slave import Slave

    world = World(g.seed)
    addr = SecondaryAddress(g.id, mt.manufacturer, mt.version, mt.medium)
    name = f"slave/{addr}"  # as simulator.building.runner names it: same profile stream
    slave = Slave(
        world, addr, primary=g.primary, records=mt.build(world.rng(f"{name}/profile")), name=name
    )
    if g.t_s:
        world.run(until=g.t_s)
    reply = slave.hear(ShortFrame(REQ_UD2, g.primary).to_bytes(), slave.baud)
    assert reply is not None, "a slave always answers REQ_UD2 to its primary address"
    return reply.data


def check_golden(mt: MeterType) -> list[str]:
    """Every problem with the type's golden telegrams: a telegram whose decode differs from
    its ``expected`` JSON, or (``rebuild = true``) one the model does not send exactly."""
    problems = []
    for i, g in enumerate(mt.model.golden):
        raw = telegram_bytes(g)
        try:
            got = decode_json(raw, g.link)
        except ValueError as exc:
            problems.append(f"golden {i}: {exc}")
            continue
        if got != json.loads(g.expected):
            problems.append(f"golden {i}: decode differs from expected")
        if g.rebuild:
            built = build_golden(mt, g)
            if built != raw:
                problems.append(f"golden {i}: the model sends {built.hex(' ').upper()}")
    return problems
