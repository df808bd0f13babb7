"""One call from a template number and plain data to the report file(s): :func:`render`.

The gateway hands over what the template needs (readouts for x001/x101/x109/x115, the meter
list for x007, an event for x005) and gets :class:`Rendered` files: name and text parts.
:mod:`.envelope` turns a file into what goes on the wire (HTTP request, FTP file, e-mail).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from simulator.gateways.cme3100.readout import Readout
from simulator.gateways.cme3100.reports.bodies import (
    Event,
    MeterEntry,
    event_report,
    install_report,
    status_report,
    value_report,
)
from simulator.gateways.cme3100.reports.identity import GatewayIdentity
from simulator.gateways.cme3100.reports.names import Template, TemplateError, file_name


@dataclass(frozen=True)
class Rendered:
    """One report file: ``name`` (:func:`~.names.file_name`), ``parts`` its text in chunks,
    ``template`` and the local build time ``at``."""

    template: Template
    at: datetime
    name: str
    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(self.parts)


def render(
    template: Template | int,
    identity: GatewayIdentity,
    at: datetime,
    *,
    readouts: Sequence[Readout] = (),
    meters: Sequence[MeterEntry] = (),
    event: Event | None = None,
) -> list[Rendered]:
    """The file(s) of ``template`` built at local time ``at`` (one, or one per meter for
    x109; none for x109 without readouts). Raises :class:`~.names.TemplateError` for an
    unknown template or an x005 without ``event``."""
    t = template if isinstance(template, Template) else Template(template)
    serial = identity.serial
    if t.kind == 1:
        parts = install_report(serial, readouts)
    elif t.kind == 5:
        if event is None:
            raise TemplateError(f"template {t.number} is an event report and needs an event")
        parts = event_report(serial, identity.application, event)
    elif t.kind == 7:
        parts = status_report(serial, meters)
    elif t.kind == 109:
        per_meter: dict[str, list[Readout]] = {}
        for r in readouts:
            per_meter.setdefault(r.meter, []).append(r)
        out = []
        for meter, rs in per_meter.items():
            parts = value_report(serial, rs, positions=False)
            if parts:
                out.append(Rendered(t, at, file_name(serial, t, at, meter), tuple(parts)))
        return out
    else:
        parts = value_report(serial, readouts, positions=t.kind == 115)
    return [Rendered(t, at, file_name(serial, t, at), tuple(parts))]
