"""NB-IoT fidelity: the CMi6140 model against published battery-life and latency figures.

Runs one fleet per coupling loss (144 / 154 / 164 dB, fixed) through the same builder as
``meterbench run`` (:func:`.runner.build`) with the module's documented defaults, changing only
the traffic to the published case: one readout a day, sent once a day in one telegram
(SenML CBOR extended format: 76 B of application payload, the nearest the module sends to
Joerke's 84 B). The result is compared with:

* battery life for 84 B once a day: 25 / 18 / 4 years at 144 / 154 / 164 dB (Joerke,
  Falkenberg, Wietfeld, IEEE Globecom Workshops 2018; RADIO-NBIOT.md §1.1 [V, secondary]);
* the 3GPP exception-report latency at 164 dB: <= 10 s (RADIO §1.1);
* TR 45.820 battery life: >= 10 years on 5 Wh for 200 B a day at 164 dB (RADIO §1.1).

``python -m simulator.nbiot.fidelity [PATH]`` writes docs/nbiot-fidelity.md (the tables are
generated, never typed); ``tests/test_nbiot_fidelity.py`` checks the file is current, the
ordering and the 30 % band. Deterministic: the same seed gives the same file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.core.docgen import write_generated
from simulator.core.trace import Trace
from simulator.core.world import World
from simulator.nbiot.network import exception_report_latency
from simulator.nbiot.runner import build
from simulator.nbiot.scenario_model import NbiotScenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "nbiot-fidelity.md"
#: Joerke et al. 2018: battery years for 84 B once a day, per coupling loss (dB).
PUBLISHED_YEARS = {144.0: 25.0, 154.0: 18.0, 164.0: 4.0}
BAND = 0.30  # issue 17: each level within 30 % of the published figure
SEED, MODULES, DAYS = 2026, 40, 21
#: The published device class's sleep current: Quectel BG96 PSM 3.9 uA, the LENA-NB energy
#: model's values "compare Joerke" (RADIO §3.3 [V]); the CMi6140 data sheet says 8 uA.
PUBLISHED_FLOOR = {"psm_ua": 3.9}
#: Published latency and energy figures to show next to each level (not asserted).
PUBLISHED_NOTES = {
    144.0: (
        "median ~2 s, p95 < 10 s (Robinson 2019, all CE levels, 4 vendors but Nokia)",
        "p25 ~30 uWh = 0.11 J; central < 100 uWh = 0.36 J (Robinson 2019)",
    ),
    154.0: (
        "ECL1 medians 1-3 s (Robinson 2019: ZTE, Ericsson, Huawei)",
        "200 B at ECL1: RAI saves 93 % (u-blox via Robinson)",
    ),
    164.0: (
        "exception report <= 10 s (3GPP TR 45.820 / TR 38.913)",
        "200 B at ECL2: 200 uWh = 0.72 J (good SNR) .. 1.07 mWh = 3.85 J (bad SNR) (u-blox)",
    ),
}


@dataclass(frozen=True)
class Level:
    """Simulated figures at one coupling loss."""

    coupling_loss_db: float
    published_years: float | None
    years: float
    j_per_day: float
    j_per_uplink: float
    latency: tuple[float, float, float]  # p50, p95, p99 (s)
    uplinks: int
    coap_retransmissions: int
    bytes_per_uplink: int  # application payload of one telegram (B)

    @property
    def ratio(self) -> float | None:
        return None if self.published_years is None else self.years / self.published_years


def scenario(
    coupling_loss_db: float,
    *,
    readouts_per_day: int = 1,
    modules: int = MODULES,
    days: int = DAYS,
    seed: int = SEED,
    module: dict[str, Any] | None = None,
    network: dict[str, Any] | None = None,
    power: dict[str, Any] | None = None,
) -> NbiotScenario:
    """The published traffic case at one coupling loss; ``module`` / ``network`` / ``power``
    override defaults (the published device's sleep floor, what-ifs, the falsification
    test)."""
    cfg: dict[str, Any] = {
        "readout_interval_min": 1440 // readouts_per_day,
        "transmit_interval_min": 1440,
        "readouts_per_telegram": readouts_per_day,
        "message_format": "extended",
    }
    cfg.update(module or {})
    return NbiotScenario.model_validate(
        {
            "name": f"fidelity-{coupling_loss_db:g}dB",
            "seed": seed,
            "hours": 24.0 * days,
            "fleet": {
                "modules": modules,
                "coupling_loss": {"distribution": "fixed", "value_db": coupling_loss_db},
            },
            "module": cfg,
            # one device's energy and latency, as published: no other module's traffic
            "network": {"shared_data_channels": False, **(network or {})},
            "power": power or {},
            "output": {"trace": "off", "plots": False},
        }
    )


def simulate(scn: NbiotScenario, published_years: float | None = None) -> Level:
    """Run ``scn`` (fixed coupling loss) and reduce it to a :class:`Level`."""
    world = World(scn.seed, trace=Trace(keep=False))
    server, modules = build(scn, world)
    end = scn.hours * 3600.0
    world.run(end)
    days = scn.hours / 24.0
    per_day = []
    for m in modules:
        m.radio.finish(end)
        per_day.append(m.power.energy_j(m.radio.times, edrx=m.radio.edrx) / days)
    pm = modules[0].power
    floor = pm.voltage_v * pm.psm_ua / 1e6 * 86400.0  # J/day asleep all day
    lat = np.array([x for v in server.latencies.values() for x in v])
    uplinks = int(lat.size)
    j_day = float(np.mean(per_day))
    return Level(
        coupling_loss_db=modules[0].radio.coupling_loss_db,
        published_years=published_years,
        years=pm.battery_years(float(np.median(per_day))),
        j_per_day=j_day,
        # energy above the sleep floor (TAUs included) per delivered uplink
        j_per_uplink=(j_day - floor) * days * len(modules) / max(1, uplinks),
        latency=tuple(float(np.percentile(lat, q)) for q in (50, 95, 99)),
        uplinks=uplinks,
        coap_retransmissions=sum(m.coap_retransmissions for m in modules),
        bytes_per_uplink=len(modules[0]._encode(_probe(scn))),
    )


def _probe(scn: NbiotScenario) -> list:
    """A day's readouts as the scenario sends them (for the telegram size)."""
    from datetime import datetime

    from simulator.nbiot.payload import Readout

    regs = dict(energy_kwh=12000, volume_dl=30000, power_w=5000, flow_lph=200)
    regs.update(forward_dc=700, return_dc=450, error_flags=0)
    n = scn.module.readouts_per_telegram
    return [Readout(1, datetime(2026, 1, 1, 6 * i), seq=i, **regs) for i in range(n)]


def levels(**overrides: Any) -> list[Level]:
    """The three published coupling losses with the defaults (or ``overrides``)."""
    return [simulate(scenario(cl, **overrides), y) for cl, y in PUBLISHED_YEARS.items()]


def band_failures(rows: list[Level], band: float = BAND) -> list[str]:
    """What breaks the published ordering or the band; empty when the model agrees."""
    out = []
    years = [r.years for r in rows]
    if years != sorted(years, reverse=True) or len(set(years)) != len(years):
        out.append(f"battery years {years} are not strictly falling with coupling loss")
    for r in rows:
        if r.ratio is not None and abs(r.ratio - 1.0) > band:
            out.append(
                f"{r.coupling_loss_db:g} dB: {r.years:.2f} y is {r.ratio:.2f} x the published "
                f"{r.published_years:g} y (band +-{band:.0%})"
            )
    return out


def design_point(seed: int = SEED, samples: int = 2000) -> tuple[float, float, float]:
    """Exception-report latency at 164 dB: (p50, p99 of the delivered, lost share)."""
    from simulator.nbiot.network import NetworkParams

    lat = np.array(
        exception_report_latency(NetworkParams(), 164.0, random.Random(seed), samples=samples)
    )
    ok = lat[np.isfinite(lat)]
    return float(np.percentile(ok, 50)), float(np.percentile(ok, 99)), 1 - ok.size / lat.size


def _f(x: float, nd: int = 2) -> str:
    return f"{x:.{nd}f}"


def markdown() -> str:
    """The whole docs/nbiot-fidelity.md text."""
    rows = levels(power=PUBLISHED_FLOOR)
    own = levels()
    tr = simulate(scenario(164.0, readouts_per_day=4, module={"message_format": "standard"}))
    p50, p99, lost = design_point()
    fails = band_failures(rows)
    out = [
        "# NB-IoT fidelity: CMi6140 model vs published figures",
        "",
        "<!-- generated by `python -m simulator.nbiot.fidelity`; do not edit by hand -->",
        "",
        f"Generated by `python -m simulator.nbiot.fidelity` (seed {SEED}, {MODULES} modules "
        f"per coupling loss, {DAYS} days, module and network defaults; "
        "`simulator/nbiot/fidelity.py`). `tests/test_nbiot_fidelity.py` fails when this file "
        "is stale, when the ordering breaks or when a level leaves the 30 % band.",
        "",
        "Traffic: one readout a day sent once a day in one LwM2M Send (SenML CBOR extended, "
        "76 B application payload; Joerke et al. send 84 B). Defaults in play: Release "
        "Assistance on, DTLS Connection ID on (one full handshake after boot, none per "
        "uplink), DTLS timer RFC 7925 (9 s), C-DRX 2.048 s, PSM with T3324 10 s / T3412 12 h, "
        "eDRX 81.92 s, CoAP RFC 7252 timers, 8 uA sleep, 5 Wh.",
        "",
        "## Battery life, latency and energy per coverage level",
        "",
        "Battery life depends on the sleep floor, which is a property of the module, not of "
        "the network: the CMi6140 data sheet gives 8 uA (seed 001 §8), the published "
        "device class about 3.9 uA (Quectel BG96 in the LENA-NB energy model written to "
        "compare with Joerke; RADIO §3.3). The band test compares like with like (3.9 uA, "
        "every other knob at the module's defaults); the CMi6140's own figure is shown too.",
        "",
        "| coupling loss | published battery (Joerke 2018) | simulated, 3.9 uA sleep "
        "| ratio | simulated, CMi6140 8 uA sleep | ratio | latency p50 / p95 / p99 (s) "
        "| published latency | energy per uplink (J above sleep, TAUs incl.) "
        "| published energy | J/day (8 uA) | CoAP resent / uplinks |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r, o in zip(rows, own, strict=True):
        lat_note, e_note = PUBLISHED_NOTES[r.coupling_loss_db]
        out.append(
            f"| {r.coupling_loss_db:g} dB | {r.published_years:g} y | {_f(r.years)} y "
            f"| {_f(r.ratio)} | {_f(o.years)} y | {_f(o.ratio)} "
            f"| {' / '.join(_f(x) for x in o.latency)} | {lat_note} "
            f"| {_f(o.j_per_uplink, 3)} | {e_note} | {_f(o.j_per_day, 3)} "
            f"| {o.coap_retransmissions} / {o.uplinks} |"
        )
    own_fails = band_failures(own)
    floor_years = 5.0 * 3600 / (3.6 * 8e-6 * 86400) / 365.25
    out += [
        "",
        "Band check (3.9 uA): "
        + ("ordering and +-30 % band hold." if not fails else "; ".join(fails)),
        "",
        "CMi6140 (8 uA): "
        + ("ordering and +-30 % band hold." if not own_fails else "; ".join(own_fails)),
        "",
        "Energy above the sleep floor, which is what the radio and the protocol stack decide, "
        "can be compared directly: Joerke's years with a 3.9 uA floor at 3.6 V imply about "
        + ", ".join(
            f"{_f(5.0 * 3600 / (y * 365.25) - 3.6 * 3.9e-6 * 86400, 2)} J"
            for y in PUBLISHED_YEARS.values()
        )
        + " a day at 144 / 154 / 164 dB; the model spends "
        + ", ".join(_f(o.j_per_day - 3.6 * 8e-6 * 86400, 2) + " J" for o in own)
        + ".",
        "",
        f"Ceiling: the CMi6140's 8 uA sleep current alone uses {_f(3.6 * 8e-6 * 86400, 3)} J a "
        f"day, so no traffic gives more than {_f(floor_years, 1)} years on 5 Wh; the published "
        "25 y at 144 dB needs a lower sleep floor than this module's data sheet value: at "
        "144 dB the CMi6140's figure is bound by its sleep current, not by the radio.",
        "",
        "## 3GPP design points",
        "",
        "| design point | target | simulated |",
        "|---|---|---|",
        f"| exception report (20 B, from PSM) at 164 dB | <= 10 s | p50 {_f(p50)} s, p99 "
        f"{_f(p99)} s of the delivered; {lost:.1%} lost (CE2 residual loss) |",
        f"| TR 45.820 battery: 200 B/day at 164 dB, 5 Wh | >= 10 y | {_f(tr.years)} y "
        f"(4 readouts in one {tr.bytes_per_uplink} B telegram a day; "
        f"{_f(tr.j_per_day, 2)} J/day) |",
        "",
    ]
    if tr.years < 10:
        need = 5.0 * 3600 / (10 * 365.25)
        out += [
            f"Gap: 10 years on 5 Wh allow {_f(need, 2)} J a day; the sleep floor takes "
            f"{_f(3.6 * 8e-6 * 86400, 2)} J and the 164 dB uplink (CE2: 32 repetitions, "
            "about 0.4 kbit/s, RFC 7252 CoAP timers that resend during the slow uplink), the "
            "DTLS/CoAP/IP overhead and the periodic TAUs take the rest and more. Joerke's own "
            "164 dB figure (4 y for 84 B) is below 10 y too.",
            "",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    return write_generated(DOC, markdown, argv)


if __name__ == "__main__":
    raise SystemExit(main())
