"""What the bench writes to set a physical CMe3100 up for the push suite (issue 12, "Setting
the gateway up"; docs/cme3100-suite.md).

One settings object is the source of everything: the rig's ``[push] scenario``'s
``[gateway]`` (:class:`~simulator.gateways.cme3100.gateway_settings.Cme3100Settings`).

* On a **sim rig** the model gets that object directly (:func:`apply_sim`; the push bench
  runs the scenario).
* On a **lab rig** :func:`gateway_setup` aims its reports and SNMP traps at the session's
  receivers (:class:`~simulator.testing.receivers.Receivers`) and :func:`prepare_lab` writes,
  from that one retargeted object: the meter list CSV of the emulated meters (seed 002 §6.5
  Table 4), a CAD file for Auto Configuration (seed 003 §6.2/§9.1 with this project's dotted
  keys, :mod:`simulator.gateways.cme3100.gateway_config`) served by the HTTP receiver at
  :data:`CAD_PATH`, and a setup sheet (markdown) the operator confirms.

::

    with Receivers.for_rig(rig) as rx:
        files = prepare_lab(rig, rx, out_dir, confirm=operator_prompt)   # BenchError: declined

The SMTP server of mail reports is not a setting the model has (the unit's SMTP page,
CME3100.md §5.1): the sheet names it, the CAD cannot carry it. The licence is bought, not
configured: the sheet says which one the suite expects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from simulator.building.scenario_model import group_ids
from simulator.gateways.cme3100.cad import parse_cad
from simulator.gateways.cme3100.gateway_config import updated
from simulator.gateways.cme3100.gateway_scenario import Cme3100Scenario, validate
from simulator.gateways.cme3100.gateway_settings import PRESETS, Cme3100Settings, TrapTarget
from simulator.gateways.cme3100.settings import SettingsError
from simulator.mbus.meterlist import MeterListEntry, format_meter_list, read_meter_list
from simulator.rig import Rig
from simulator.scenario import load_toml
from simulator.testing.bench import BenchError
from simulator.testing.receivers import Receivers

#: Where the HTTP receiver serves the CAD file (GET, no login: HttpSink serves files openly).
CAD_PATH = "/meterbench/cme3100.cad"
#: Settings a CAD never carries: the unit's own serial, its bought licence, and Auto
#: Configuration itself (the operator enters its URL by hand).
NOT_IN_CAD = ("serial", "licence", "auto_config")
#: Settings the CAD always carries (what the suite's reports and traps need).
ALWAYS_IN_CAD = ("readout_schedule", "reports", "event_reports", "snmp")
#: Hosts a receiver may bind that are not an address the gateway can be given.
_WILDCARD = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class GatewaySetup:
    """What one unit gets: ``settings`` (reports and traps aimed at the receivers), the
    ``meters`` of its meter list, and the SMTP server ``(host, port, user, password)`` of
    mail reports (None without a mail report)."""

    rig: Rig
    scenario: Cme3100Scenario
    settings: Cme3100Settings
    meters: tuple[MeterListEntry, ...]
    smtp: tuple[str, int, str | None, str] | None = None


@dataclass(frozen=True)
class SetupFiles:
    """The files :func:`prepare_lab` wrote and the CAD's URL (None: no HTTP receiver)."""

    meter_list: Path
    cad: Path
    sheet: Path
    cad_url: str | None
    sheet_text: str


# -- the scenario's side ------------------------------------------------------------------
def load_scenario(rig: Rig) -> tuple[Cme3100Scenario, Path]:
    """The rig's push scenario, validated, and its path; :class:`BenchError` without one."""
    if rig.push is None:
        raise BenchError(f"rig {rig.name!r} has no [push] section (the push suite's scenario)")
    path = rig.resolve(rig.push.scenario)
    return validate(load_toml(path)), path


def apply_sim(rig: Rig) -> Cme3100Settings:
    """The settings the simulated gateway gets on a sim rig: the scenario's ``[gateway]``
    exactly (the push bench runs that scenario; :mod:`simulator.testing.push_bench`). The
    lab's CAD and sheet are written from the same object, retargeted (:func:`gateway_setup`)."""
    return load_scenario(rig)[0].gateway


def emulated_meters(rig: Rig) -> list[MeterListEntry]:
    """The meter list the unit gets: the scenario's ``[install] meter_list`` without wireless
    rows, else one ``secondary`` row per emulated meter of the ``[[slaves]]`` groups (8-digit
    ID, the bus's baud; position = the group's name or template and the ID). Raises
    :class:`BenchError` for a group whose IDs come only from a golden telegram."""
    sc, path = load_scenario(rig)
    if sc.install.meter_list is not None:
        entries = read_meter_list(path.parent / sc.install.meter_list)
        return [e for e in entries if e.mode != "esecondary"]  # wireless: not on the wire
    out = []
    for i, g in enumerate(sc.slaves):
        if g.id is None and g.ids is None:
            raise BenchError(
                f"{path}: slaves[{i}] has no id or ids: give [install] meter_list for the unit"
            )
        label = g.name or g.template or "meter"
        baud = g.baud or sc.bus.baud
        out += [MeterListEntry(f"{label} {m:08d}", f"{m:08d}", baud, "secondary")
                for m in group_ids(g)]  # fmt: skip
    return out


# -- the receivers' side ------------------------------------------------------------------
def _host(rig: Rig, table: str, host: str, bench_host: str | None) -> str:
    if bench_host:
        return bench_host
    if host in _WILDCARD:
        raise BenchError(
            f"rig {rig.name!r} [receivers.{table}] binds {host!r}: give the bench's address on "
            "the gateway's network (bench_host) for the gateway's settings"
        )
    return host


def gateway_setup(rig: Rig, receivers: Receivers, bench_host: str | None = None) -> GatewaySetup:
    """The scenario's settings with every report aimed at the running ``receivers`` (HTTP: the
    rig's ``path`` + the report's path, Basic auth as the receiver wants; FTP: the report's
    folder, the receiver's account; mail: the recipients stay, the SMTP server is the
    receiver) and SNMP traps sent to the trap receiver with its community. ``bench_host``:
    the address the gateway reaches the bench at, when the receivers bind a wildcard.
    Raises :class:`BenchError` when a report or the traps need a receiver the rig lacks."""
    sc, _ = load_scenario(rig)
    s = sc.gateway

    missing: list[str] = []

    def need(table: str, what: str):
        rx = getattr(receivers, table)
        if rx is None:  # every missing receiver is named at once, below
            missing.append(f"{what} needs a running [receivers.{table}]")
            return rx, ""
        return rx, _host(rig, table, rx.host, bench_host)

    def move(r):
        what = f"report {r.name!r} ({r.protocol})"
        path = urlsplit(r.target).path or "/"
        if r.protocol == "http":
            rx, host = need("http", what)
            if rx is None:
                return r
            prefix = receivers.spec.http.path.rstrip("/") if receivers.spec.http else ""
            url = f"http://{host}:{rx.port}{prefix}{path}"
            return r.model_copy(update={"target": url, "user": rx.user, "password": rx.password})
        if r.protocol == "ftp":
            rx, host = need("ftp", what)
            if rx is None:
                return r
            url = f"ftp://{host}:{rx.port}/{path.strip('/') or 'reports'}"
            return r.model_copy(update={"target": url, "user": rx.user, "password": rx.password})
        need("smtp", what)  # the recipients stay; the SMTP server is the receiver
        return r

    reports = [move(r) for r in s.reports]
    event_reports = [move(r) for r in s.event_reports]
    snmp = s.snmp
    if snmp.enabled and snmp.traps:
        rx, host = need("snmp_traps", "SNMP traps")
        if rx is not None:
            traps = [TrapTarget(host=host, port=rx.port)]
            snmp = snmp.model_copy(update={"traps": traps, "community": rx.community})
    if missing:
        raise BenchError(f"rig {rig.name!r}: " + "; ".join(missing))
    update = {"reports": reports, "event_reports": event_reports, "snmp": snmp}
    settings = s.model_copy(update=update)
    smtp = None
    if any(r.protocol == "mail" for r in (*s.reports, *s.event_reports)):
        rx = receivers.smtp  # there: a mail report would have named it missing
        smtp = (_host(rig, "smtp", rx.host, bench_host), rx.port, rx.user, rx.password)
    return GatewaySetup(rig, sc, settings, tuple(emulated_meters(rig)), smtp)


# -- the files ----------------------------------------------------------------------------
def cad_keys(settings: Cme3100Settings) -> list[str]:
    """The top-level settings the CAD carries: :data:`ALWAYS_IN_CAD` and every other one that
    differs from a factory-fresh unit, minus :data:`NOT_IN_CAD`, in the model's order."""
    fresh = Cme3100Settings().model_dump(mode="json")
    mine = settings.model_dump(mode="json")
    return [
        k
        for k in Cme3100Settings.model_fields
        if k not in NOT_IN_CAD and (k in ALWAYS_IN_CAD or mine[k] != fresh[k])
    ]


def cad_text(settings: Cme3100Settings, sync_id: str = "meterbench") -> str:
    """A CAD file (seed 003 §6.2) setting :func:`cad_keys` of ``settings``: one
    ``Sync-Config-N: <key>=<value>`` line each, a list or table as JSON (gateway_config)."""
    data = settings.model_dump(mode="json")
    lines = ["# meterbench: the CMe3100 push suite's settings", "Sync-Mode: server"]
    lines.append(f"Sync-Id: {sync_id}")
    for n, key in enumerate(cad_keys(settings)):
        v = data[key]
        text = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        if not isinstance(v, str):  # a '|/' in JSON (a URL) would read as a config file
            text = text.replace("|", r"\u007c")
        lines.append(f"Sync-Config-{n}: {key}={text}")
    return "\n".join(lines) + "\n"


def settings_from_cad(base: Cme3100Settings, text: str) -> Cme3100Settings:
    """``base`` with a CAD file's items applied as the unit takes them before a run (every
    key; :func:`~simulator.gateways.cme3100.gateway_config.updated`). Raises
    :class:`~simulator.gateways.cme3100.cad.CadError` or :class:`SettingsError`."""
    cad = parse_cad(text)
    with_file = [(c.key, f"config file {c.path}: none expected") for c in cad.configs if c.path]
    if with_file:
        raise SettingsError(with_file)
    return updated(base, {c.key: c.value for c in cad.configs}, refused=())


def _schedule(text: str) -> str:
    preset = PRESETS.get(text.strip().lower())
    return f"{text} (`{preset}`)" if preset else f"`{text}`"


def setup_sheet(setup: GatewaySetup, meter_list: Path, cad: Path, cad_url: str | None) -> str:
    """The operator's setup sheet (markdown): every value from ``setup``, nothing typed twice."""
    s, sc, rig = setup.settings, setup.scenario, setup.rig
    dut = rig.transport("dut")
    wire = f"{dut.url or dut.tcp or 'pty'}" if dut else "(the rig names no dut transport)"
    active = min(len(setup.meters), s.licence)
    out = [
        f"# Set the CMe3100 up for the push suite (rig {rig.name})",
        "",
        f"Scenario: {sc.name or '(unnamed)'}. Enter every value below by hand, or load the CAD "
        "file by Auto Configuration; then confirm.",
        "",
        "## Wiring",
        f"- Gateway M-Bus master terminals -> M-Bus *slave* level converter -> bench host "
        f"`{wire}`; the bus at {sc.bus.baud} bit/s (the emulated meters answer there).",
        "- The gateway's Ethernet port on the bench host's network (it pushes to the receivers "
        "below).",
        "",
        "## Meter list (Installation > Meter list, seed 002 §6.5 Table 4)",
        f"- Upload `{meter_list}`: {len(setup.meters)} meters.",
        f"- Licence: the suite expects {s.licence} ({active} active; the "
        f"{len(setup.meters) - active} latest installed passive).",
        f"- Readout schedule: {_schedule(s.readout_schedule)}.",
        "",
        "## Push reports (Push reports > Report 1-5)",
        "| report | template | target | login | schedule | Value Period | Value Interval |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in s.reports:
        login = f"{r.user} / {r.password}" if r.user else "none"
        out.append(
            f"| {r.name} | {r.template} | `{r.target}` | {login} | {_schedule(r.schedule)} "
            f"| {r.value_period} | {r.value_interval} |"
        )
    if s.event_reports:
        out += ["", "## Event reports", "| report | template | target | login | events |"]
        out.append("|---|---|---|---|---|")
        for e in s.event_reports:
            login = f"{e.user} / {e.password}" if e.user else "none"
            out.append(
                f"| {e.name} | {e.template} | `{e.target}` | {login} | {', '.join(e.events)} |"
            )
    out += [
        "",
        "## Services > Push reports: timeouts",
        f"- HTTP {s.http_timeout_s:g} s, FTP {s.ftp_timeout_s:g} s, mail {s.mail_timeout_s:g} s.",
    ]
    if setup.smtp:
        host, port, user, password = setup.smtp
        login = f"{user} / {password}" if user else "none"
        out += [f"- SMTP server (mail reports): `{host}` port {port}, login {login}."]
    snmp = s.snmp
    out += ["", "## Services > SNMP"]
    if snmp.enabled:
        traps = ", ".join(f"`{t.host}:{t.port}`" for t in snmp.traps) or "none"
        out.append(f"- Enabled, community `{snmp.community}`, trap receivers {traps}.")
    else:
        out.append("- Disabled.")
    out += ["", "## Auto Configuration (System > Auto Configuration)", f"- CAD file: `{cad}`."]
    if cad_url:
        out.append(f"- Or: URL `{cad_url}`, authentication none, Save & execute.")
    else:
        out.append("- No HTTP receiver serves it: set the values by hand.")
    return "\n".join(out) + "\n"


def prepare_lab(
    rig: Rig,
    receivers: Receivers,
    out_dir: Path,
    confirm: Callable[[str], bool],
    bench_host: str | None = None,
) -> SetupFiles:
    """Write ``meterlist.csv``, ``cme3100.cad`` and ``setup-sheet.md`` into ``out_dir``, serve
    the CAD at :data:`CAD_PATH` on the HTTP receiver (if running), make every FTP report's
    folder in the FTP receiver's directory (the FTP page names a folder, CME3100.md §5.1,
    and nothing says the unit makes it; the project's client changes into it, 550 if
    missing), show the sheet through
    ``confirm(sheet_text)`` and return the files. Raises :class:`BenchError` when the
    operator declines (``confirm`` returns false) or a receiver is missing."""
    setup = gateway_setup(rig, receivers, bench_host)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ml, cad = out_dir / "meterlist.csv", out_dir / "cme3100.cad"
    ml.write_text(format_meter_list(list(setup.meters)), encoding="utf-8")
    text = cad_text(setup.settings, f"meterbench-{rig.name}")
    cad.write_text(text, encoding="utf-8")
    if receivers.ftp is not None and receivers.ftp.directory is not None:
        for r in (*setup.settings.reports, *setup.settings.event_reports):
            if r.protocol == "ftp":
                folder = urlsplit(r.target).path.strip("/")
                (receivers.ftp.directory / folder).mkdir(parents=True, exist_ok=True)
    cad_url = None
    if receivers.http is not None:
        receivers.http.add_file(CAD_PATH, text)
        host = _host(rig, "http", receivers.http.host, bench_host)
        cad_url = f"http://{host}:{receivers.http.port}{CAD_PATH}"
    sheet_text = setup_sheet(setup, ml, cad, cad_url)
    sheet = out_dir / "setup-sheet.md"
    sheet.write_text(sheet_text, encoding="utf-8")
    if not confirm(sheet_text):
        raise BenchError(f"rig {rig.name!r}: the operator did not confirm the setup ({sheet})")
    return SetupFiles(ml, cad, sheet, cad_url, sheet_text)
