"""Scenario model for ``kind = "cme2100"``: a CMe2100 commissioned by SMS on a wired M-Bus.

Shape (every key optional unless marked; see fixtures/scenarios/cme2100-building.toml)::

    kind = "cme2100"                   # required
    name = "..."; description = "..."
    seed = 1
    start = 2026-01-05T00:00:00Z       # world time 0 (naive = UTC)
    hours = 48                         # simulated duration; the end instant is included

    [gateway]                          # required
    factory_key = "Fk7#qZ2m!Lw9Rt4x"   # required: 16 printable ASCII characters (NFC record)
    password = "Pa55-word_2026!x"      # required: the communication password to set (16 chars)
    email = "ops@example.com"          # required: the Push Report recipient (qset email)
    expected_meters = 6                # required: the number given to "install"
    name = "cme2100"                   # trace source and e-mail subject
    mail_from = "cme2100@meterbench.invalid"
    sms_latency_s = 5.0                # SMS network latency (s), each direction; or [low, high]
                                       # drawn uniformly per SMS from stream "sms/latency"

    [smtp]                             # optional: also send each Push Report to this server
    host = "127.0.0.1"; port = 2525; timeout_s = 10

    [bus] ... [[slaves]] ...           # the wired segment: exactly the schema of kind = "mbus"
                                       # (simulator/building/scenario_model.py)

    [sms_network]                      # optional, all off by default (settings.py
    loss_probability = 0.0             # SmsNetworkSettings): lost, held by the SMS centre
    late_probability = 0.0             # (late_s more), delivered twice (duplicate_after_s
    late_s = [600, 3600]               # later); each SMS either way, stream "sms/network"
    duplicate_probability = 0.0
    duplicate_after_s = [30, 300]

    [[sms]]                            # the head-end's script; absent: the default
    at = "00:05"                       # commissioning (password 00:01, qset email 00:02,
    text = "install {expected_meters}" # install 00:03). at = world time since start,
    fault = "wrong_key"                # "H:MM" or "H:MM:SS" (H may exceed 23).
    key = "Wr0ngKey-0000000"           # text placeholders: {password} {email}
                                       # {expected_meters} {factory_key}
    coding = "ucs2"                    # as a phone sends it: UCS-2 SMS-DELIVER PDUs

``fault`` (optional) makes the bench send a bad SMS the gateway must reject: ``wrong_key``
(encrypted under ``key``, default :data:`DEFAULT_WRONG_KEY`), ``factory_key`` (under the
factory key after the password was set), ``tampered`` (one character of the encrypted text
changed), ``plaintext`` (``text`` unencrypted), ``replay`` (the bench's previous SMS sent
again; no ``text``), ``non_gsm`` (encrypted, then a typographic apostrophe U+2019 inserted,
as a phone's keyboard does; always sent UCS-2 coded).

Validation (:func:`validate`) reports pydantic errors, the wired segment's cross checks and
this kind's own (key format, password different from the factory key, e-mail syntax, times
inside the run, placeholders, fault rules) together in one
:class:`~simulator.scenario.ScenarioError` with file:line.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator

# The wired segment's schema and cross checks are the mbus kind's, reused as they are.
from simulator.building.scenario_model import BusModel, SlaveGroup
from simulator.building.scenario_model import cross_issues as mbus_cross_issues
from simulator.core.world import EPOCH
from simulator.gateways.cme2100.gateway import EMAIL_RE
from simulator.gateways.cme2100.protocol import KeyFormatError, check_key_text
from simulator.gateways.cme2100.sender import PASSWORD_KEY
from simulator.gateways.cme2100.settings import SmsNetworkSettings
from simulator.scenario import Issue, ScenarioDoc, StartTime, StrictModel

Fault = Literal["wrong_key", "factory_key", "tampered", "plaintext", "replay", "non_gsm"]

#: The key a ``wrong_key`` SMS is encrypted with when the script gives none.
DEFAULT_WRONG_KEY = "Wr0ngKey-0000000"
#: Placeholders an SMS ``text`` may use, filled from ``[gateway]``.
PLACEHOLDERS = ("password", "email", "expected_meters", "factory_key")
_AT = re.compile(r"^([0-9]{1,4}):([0-5][0-9])(?::([0-5][0-9](?:\.[0-9]{1,6})?))?$")


def parse_at(text: str) -> float:
    """World seconds of an ``at`` value ``"H:MM"`` or ``"H:MM:SS[.ffffff]"``.

    Raises ``ValueError`` naming the expected form.
    """
    m = _AT.match(text.strip())
    if not m:
        raise ValueError(f"time {text!r} is not H:MM or H:MM:SS (world time since the start)")
    return int(m.group(1)) * 3600.0 + int(m.group(2)) * 60.0 + float(m.group(3) or 0)


class GatewayModel(StrictModel):
    factory_key: str
    password: str
    email: str
    expected_meters: int = Field(ge=0, le=1000)
    name: str = Field("cme2100", pattern=r"^[A-Za-z0-9_.-]+$")
    mail_from: str = "cme2100@meterbench.invalid"
    sms_latency_s: float | tuple[float, float] = 0.0

    @field_validator("factory_key", "password")
    @classmethod
    def _key(cls, v: str) -> str:
        try:
            return check_key_text(v)
        except KeyFormatError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("email", "mail_from")
    @classmethod
    def _email(cls, v: str) -> str:
        if not EMAIL_RE.fullmatch(v):
            raise ValueError(f"{v!r} is not a valid e-mail address")
        return v

    @field_validator("sms_latency_s")
    @classmethod
    def _latency(cls, v: float | tuple[float, float]) -> float | tuple[float, float]:
        lo, hi = (v, v) if isinstance(v, float | int) else v
        if not 0 <= lo <= hi <= 86400:
            raise ValueError("SMS latency must be s >= 0, or [low, high] with 0 <= low <= high")
        return v

    def latency_range(self) -> tuple[float, float]:
        """(low, high) SMS latency in s."""
        v = self.sms_latency_s
        return (float(v), float(v)) if isinstance(v, float | int) else (float(v[0]), float(v[1]))


class SmtpModel(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    timeout_s: float = Field(10.0, gt=0)


class SmsModel(StrictModel):
    at: str
    text: str | None = None
    fault: Fault | None = None
    key: str | None = None
    coding: Literal["gsm7", "ucs2"] = "gsm7"

    @field_validator("at")
    @classmethod
    def _at(cls, v: str) -> str:
        parse_at(v)
        return v

    @property
    def seconds(self) -> float:
        return parse_at(self.at)


class Cme2100Scenario(StrictModel):
    kind: Literal["cme2100"]
    name: str | None = None
    description: str | None = None
    seed: int = 0
    start: StartTime = EPOCH
    hours: float = Field(24.0, gt=0, le=24 * 366)
    gateway: GatewayModel
    smtp: SmtpModel | None = None
    bus: BusModel = Field(default_factory=BusModel)
    slaves: list[SlaveGroup] = Field(min_length=1)
    sms: list[SmsModel] = Field(default_factory=list)
    sms_network: SmsNetworkSettings = Field(default_factory=SmsNetworkSettings)

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)

    def script(self) -> list[SmsModel]:
        """The SMS script in time order (stable for equal times); the default if none given."""
        if not self.sms:
            return [
                SmsModel(at="0:01", text=f"{PASSWORD_KEY}={{password}}"),
                SmsModel(at="0:02", text="qset email {email}"),
                SmsModel(at="0:03", text="install {expected_meters}"),
            ]
        return sorted(self.sms, key=lambda s: s.seconds)

    def fill(self, text: str) -> str:
        """``text`` with its placeholders replaced by the ``[gateway]`` values."""
        g = self.gateway
        return text.format(
            password=g.password,
            email=g.email,
            expected_meters=g.expected_meters,
            factory_key=g.factory_key,
        )


def _placeholders(text: str) -> list[str]:
    """Field names used in a ``str.format`` template; ``ValueError`` for a broken one."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


def _cross_issues(doc: ScenarioDoc) -> list[Issue]:
    """This kind's checks pydantic cannot see (on the raw data, defensively)."""
    issues: list[Issue] = []
    data = doc.data
    gw = data.get("gateway") if isinstance(data.get("gateway"), dict) else {}
    if gw.get("password") is not None and gw.get("password") == gw.get("factory_key"):
        issues.append(
            doc.issue(("gateway", "password"), "the password must differ from the factory key")
        )
    if gw.get("name") == "bench":
        issues.append(doc.issue(("gateway", "name"), "'bench' is the head-end's trace source"))
    hours = data.get("hours", 24.0)
    end = float(hours) * 3600 if isinstance(hours, int | float) and hours > 0 else None
    script = data.get("sms") if isinstance(data.get("sms"), list) else []
    password_before: float | None = None  # earliest time of a password-setting SMS
    timed = []
    for i, s in enumerate(script):
        if not isinstance(s, dict):
            continue
        try:
            t = parse_at(str(s.get("at", "")))
        except ValueError:
            t = None  # reported by pydantic
        text, fault = s.get("text"), s.get("fault")
        if t is not None and end is not None and t >= end:
            issues.append(
                doc.issue(
                    ("sms", i, "at"), f"{s['at']} is at or after the end of the run ({hours:g} h)"
                )
            )
        if fault == "replay":
            if text is not None:
                issues.append(
                    doc.issue(("sms", i, "text"), "a replay resends the previous SMS: no text")
                )
        elif text is None:
            issues.append(doc.issue(("sms", i), "needs 'text' (the plaintext command)"))
        if s.get("key") is not None:
            if fault != "wrong_key":
                issues.append(doc.issue(("sms", i, "key"), "'key' is only for fault = wrong_key"))
            else:
                try:
                    check_key_text(str(s["key"]))
                except KeyFormatError as exc:
                    issues.append(doc.issue(("sms", i, "key"), str(exc)))
                if s["key"] in (gw.get("password"), gw.get("factory_key")):
                    issues.append(
                        doc.issue(
                            ("sms", i, "key"), "a wrong key must not be a key the gateway knows"
                        )
                    )
        if isinstance(text, str):
            try:
                unknown = [n for n in _placeholders(text) if n not in PLACEHOLDERS]
            except ValueError as exc:
                issues.append(doc.issue(("sms", i, "text"), f"bad placeholder: {exc}"))
            else:
                if unknown:
                    issues.append(
                        doc.issue(
                            ("sms", i, "text"),
                            f"unknown placeholder {{{unknown[0]}}}; one of "
                            + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS),
                        )
                    )
            if fault is None and text.startswith(PASSWORD_KEY + "=") and t is not None:
                password_before = t if password_before is None else min(password_before, t)
        timed.append((i, t, fault))
    for i, t, fault in timed:
        if t is None:
            continue
        if fault == "replay" and not any(u is not None and u < t for _, u, _ in timed):
            issues.append(doc.issue(("sms", i, "fault"), "a replay needs an earlier SMS to resend"))
        if fault == "factory_key" and (password_before is None or password_before >= t):
            issues.append(
                doc.issue(
                    ("sms", i, "fault"),
                    "fault = factory_key needs an earlier SMS that sets the password",
                )
            )
    return issues


def validate(doc: ScenarioDoc) -> Cme2100Scenario:
    """Validate a ``cme2100`` scenario; :class:`ScenarioError` lists every problem at once.

    The wired part is checked by the ``mbus`` scenario's own cross checks.
    """
    return doc.validate(Cme2100Scenario, checks=[mbus_cross_issues, _cross_issues])
