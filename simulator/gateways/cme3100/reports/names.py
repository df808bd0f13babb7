"""Report templates and file names (seed 002 §6.9; Elvaco's FTP/HTTP template reference as
summarised in CME3100.md §5.1-5.2).

A template number is ``<protocol><kind>``: 1xxx e-mail, 2xxx FTP, 3xxx HTTP (4xxx MQTT is
not modelled); ``x001`` install report, ``x005`` event report, ``x007`` status report (device
list), ``x101`` value report (all values in one file), ``x109`` value report (one file per
meter), ``x115`` value report with meter-list columns (CME3100.md Gaps #1).

File names (the HTTP ``Filename`` header, the FTP file, the mail attachment):

- one file: ``<serial>_<report-type>_<YYYYMMDDhhmmss>_<report-id>.csv``
- one file per meter (x109): ``<serial>_<meter>_<report-type>_<YYYYMMDDhhmmss>_<report-id>.csv``
  (the reference's 2109 example drops ``_<report-id>``; the bench keeps the pattern as
  written, so two templates sent the same second cannot collide).

The time is the local time the report was built (Gaps #5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PROTOCOLS = {1: "mail", 2: "ftp", 3: "http"}
#: template kind (last three digits) -> report type in the file name (CME3100.md §5.2)
REPORT_TYPES = {
    1: "installreport",
    5: "eventreport",
    7: "statusreport",
    101: "valuereport",
    109: "valuereport",
    115: "valuereport",
}
#: Template kinds whose rows are meter values: raw (x001) and decoded (x101, x109, x115).
VALUE_KINDS = (1, 101, 109, 115)


class TemplateError(ValueError):
    """A template number the bench does not know, or bad input to a template."""


@dataclass(frozen=True)
class Template:
    """A report template number such as 3115 (``protocol`` 3 = HTTP, ``kind`` 115)."""

    number: int

    def __post_init__(self) -> None:
        if not isinstance(self.number, int) or self.number // 1000 not in PROTOCOLS:
            raise TemplateError(
                f"template {self.number!r}: the first digit must be 1 (mail), 2 (FTP) or 3 (HTTP)"
            )
        if self.number % 1000 not in REPORT_TYPES:
            kinds = ", ".join(f"x{k:03d}" for k in REPORT_TYPES)
            raise TemplateError(f"template {self.number}: kind not modelled; one of {kinds}")

    @property
    def protocol(self) -> str:
        return PROTOCOLS[self.number // 1000]

    @property
    def kind(self) -> int:
        return self.number % 1000

    @property
    def report_type(self) -> str:
        return REPORT_TYPES[self.kind]

    @property
    def per_meter(self) -> bool:
        """One file per meter (x109)."""
        return self.kind == 109


def stamp(at: datetime) -> str:
    """``YYYYMMDDhhmmss`` of ``at``."""
    return at.strftime("%Y%m%d%H%M%S")


def file_name(serial: str, template: Template, at: datetime, meter: str | None = None) -> str:
    """The report's file name (module doc); ``meter`` for a per-meter file."""
    mid = f"_{meter}" if meter is not None else ""
    return f"{serial}{mid}_{template.report_type}_{stamp(at)}_{template.number}.csv"
