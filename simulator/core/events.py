"""Every trace event type: one typed record per ``kind``, the single definition of a trace line.

A producer builds one of these classes and hands it to :meth:`World.emit
<simulator.core.world.World.emit>`; the JSON Schema of ``trace.jsonl`` (docs/trace.schema.json,
:mod:`simulator.core.trace_schema`) is generated from them, so the schema, the writers and the
readers cannot drift apart. Readers use fields (``ev["outcome"]``, ``ev.get("delay")``), never
the human ``summary`` text.

A field is in one of three states:

* required: no default, always written;
* nullable: ``X | None``, always written (``null`` when None);
* optional: default :data:`UNSET`, written only when set (the "sometimes" fields).

Field docs are the ``Annotated`` metadata strings; they carry the unit (s, ms, dBm, bit/s) and
become the schema's ``description``. Every class has a ``version``: a change to a class's
fields bumps it and :data:`TRACE_SCHEMA_VERSION` (the header line of every trace file names
the latter; ``meterbench trace validate`` refuses a file of another version).

Serialisation (:func:`encode_lines`, msgspec) is JSON with sorted keys and compact separators,
``t`` rounded to 1e-9 s and ``wall`` to 1e-6 s: the same run gives the same bytes.
"""

from __future__ import annotations

import json
import typing
from math import ulp as _ulp
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec

#: Version of the trace file format (the header's ``schema``). 1: untyped traces without a
#: header (before typed events); 2: typed events, header line, structured frame fields.
TRACE_SCHEMA_VERSION = 2

#: ``kind`` of the first line of every trace file.
HEADER_KIND = "trace_header"
#: ``format`` value of the header line.
TRACE_FORMAT = "meterbench-trace"


#: Default of the optional ("sometimes") fields: not written to the trace when left unset
#: (``msgspec.UNSET``, so the fast writer omits it natively; falsy, ``repr`` ``UNSET``).
UNSET: Any = msgspec.UNSET


#: Marker in ``Annotated`` metadata: the string holds bytes as lowercase hex.
HEX = "hex"

#: Every event class by its ``kind`` (filled by :func:`event`).
EVENT_TYPES: dict[str, type[TraceEvent]] = {}

Hex = Annotated[str, HEX]
S = Annotated[float, "s"]
#: The AFL fragment a wM-Bus event concerns (four kinds carry it).
Fragment = Annotated[int, "AFL fragment index 0, 1, ... (fragmenting mode-7 meters)"]

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=lambda v: _default(v))


def _default(value: Any) -> Any:
    # subclasses of str/int/float (e-mail headers, numpy scalars) are written as their base
    for base in (str, int, float):
        if isinstance(value, base):
            return base(value)
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"trace field of type {type(value).__name__} is not JSON-serialisable")


def header_line() -> str:
    """The first line of a trace file (deterministic: no wall time), without newline."""
    return _ENCODER.encode(
        {"kind": HEADER_KIND, "format": TRACE_FORMAT, "schema": TRACE_SCHEMA_VERSION}
    )


def _json_name(attr: str) -> str:
    return attr.rstrip("_")  # ``from_`` is written ``from``


#: The fields every event has (name, type, default): ``t`` is world time (s since the scenario
#: start; :meth:`World.emit` sets it), ``source`` who produced or observed it (``"master"``,
#: ``"slave/12345678"``, ``"bridge"``), ``wall`` Unix time (s) of events recorded in real time
#: (bridge runs), else None and not written.
BASE_FIELDS: tuple[tuple[str, Any, Any], ...] = (
    ("t", Annotated[float, "world time, s since the scenario start"], 0.0),
    ("source", Annotated[str, "who produced or observed the event"], msgspec.NODEFAULT),
    ("wall", Annotated[float | None, "Unix time, s (real-time runs only)"], None),
)


class TraceEvent(msgspec.Struct, kw_only=True, rename=_json_name):
    """One observable event: base of every event class (never recorded itself).

    A class body declares the payload fields; :func:`event` builds the registered class with
    those, :data:`BASE_FIELDS` and ``kind``, ordered by JSON name so the encoder writes the
    keys sorted without sorting them per line.
    """

    #: the class body's ``kind = "..."``; on a registered class ``kind`` is a field (always
    #: written, default the kind) and ``KIND`` holds the kind on the class
    kind: ClassVar[str] = ""
    KIND: ClassVar[str] = ""
    version: ClassVar[int] = 1
    #: (JSON key, attribute name) of the payload fields, sorted by key (set by :func:`event`).
    _keys: ClassVar[tuple[tuple[str, str], ...]] = ()
    _attr: ClassVar[dict[str, str]] = {}
    #: payload field names in declaration order (docs/trace.md lists them so)
    _declared: ClassVar[tuple[str, ...]] = ()
    #: a field may hold a dict, whose keys the encoder must sort (set by :func:`event`)
    _sort: ClassVar[bool] = False

    if typing.TYPE_CHECKING:  # the fields event() adds to every registered class
        t: float
        source: str
        wall: float | None

    # -- reading (the old dict-like interface) -----------------------------------------------
    @property
    def fields(self) -> dict[str, Any]:
        """The payload fields that are set, by JSON key (computed; a fresh dict)."""
        out = {}
        for key, attr in self._keys:
            v = getattr(self, attr)
            if v is not UNSET:
                out[key] = v
        return out

    def get(self, key: str, default: Any = None) -> Any:
        """Field ``key`` (JSON name), or ``default`` if the class has none or it is unset."""
        attr = self._attr.get(key)
        if attr is None:
            return default
        v = getattr(self, attr)
        return default if v is UNSET else v

    def __getitem__(self, key: str) -> Any:
        v = self.get(key, UNSET)
        if v is UNSET:
            raise KeyError(key)
        return v

    def __contains__(self, key: str) -> bool:
        return self.get(key, UNSET) is not UNSET

    # -- writing ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The trace line as a dict: ``t`` rounded to 1e-9 s, ``wall`` to 1e-6 s, unset omitted."""
        d: dict[str, Any] = {"t": round_ns(self.t), "kind": self.kind, "source": self.source}
        for key, attr in self._keys:
            v = getattr(self, attr)
            if v is not UNSET:
                d[key] = v
        if self.wall is not None:
            d["wall"] = round(self.wall, 6)
        return d

    def to_json(self) -> str:
        """One trace line (no newline): sorted keys, compact separators (see :func:`encode_lines`)."""
        return encode_lines([self])[:-1].decode("utf-8")


#: The trace line encoders: fields are declared in key order (see :func:`event`), so only
#: events that may hold a dict need the sorting one (its keys are sorted like ``sort_keys``).
_LINE = msgspec.json.Encoder(enc_hook=lambda v: _default(v))
_LINE_SORTED = msgspec.json.Encoder(order="sorted", enc_hook=lambda v: _default(v))
_NS_EXACT = float(1 << 52)  # below this t * 1e9 keeps enough bits for the quick exact rounding


def round_ns(t: float) -> float:
    """``round(t, 9)``, bit for bit, in about a third of its time.

    ``p = t * 1e9`` is within half an ulp of the exact product; when ``p`` is further than one
    ulp from a tie, ``round(p)`` is the correctly rounded count of ns and ``k / 1e9`` (one
    IEEE division) the nearest double, which is what ``round(t, 9)`` returns. Otherwise (a
    near-tie, or t >= 2**52 ns, about 52 days) it calls ``round(t, 9)``.
    """
    p = t * 1e9
    k = round(p)
    if -_NS_EXACT < p < _NS_EXACT and 0.5 - abs(p - k) > _ulp(p):
        return k / 1e9
    return round(t, 9)


def encode_lines(events: list[TraceEvent]) -> bytes:
    """The trace lines of ``events``, each ending in a newline: UTF-8 JSON with sorted keys,
    ``t`` rounded to 1e-9 s, ``wall`` to 1e-6 s and left out when None, unset fields left out.

    Floats are written shortest-round-trip (``0.0086``); outside 1e-4 <= |x| < 1e16 the
    notation is msgspec's (``1e-7``, ``1e16``), where Python's ``json`` wrote ``1e-07``,
    ``1e+16`` (the same value). Non-ASCII text is written as UTF-8; NaN and infinities as
    ``null``. Raises TypeError for a field value JSON cannot hold.
    """
    # round in place for the encoder, then put the exact values back (kept events keep them)
    saved = []
    unset, exact, ulp = UNSET, _NS_EXACT, _ulp
    for e in events:
        t, w = e.t, e.wall
        saved.append((t, w))
        p = t * 1e9
        k = round(p)
        e.t = k / 1e9 if -exact < p < exact and 0.5 - abs(p - k) > ulp(p) else round(t, 9)
        e.wall = unset if w is None else round(w, 6)
    try:
        sort = not _PLAIN.issuperset(map(type, events))
        return (_LINE_SORTED if sort else _LINE).encode_lines(events)
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"trace event not JSON-serialisable: {exc}") from None
    finally:
        for e, (t, w) in zip(events, saved, strict=True):
            e.t = t
            e.wall = w


_E = TypeVar("_E", bound=type[TraceEvent])


def event(cls: _E) -> _E:
    """Class decorator: build and register the event class of ``cls`` under its ``kind``.

    The registered class is a new keyword-only ``msgspec.Struct`` under :class:`TraceEvent`
    with the payload fields of ``cls`` (its annotations, inherited ones included), the
    :data:`BASE_FIELDS` and ``kind`` (a field whose default is the kind), all ordered by JSON
    name; docstring and ``version`` are kept. A field named with a trailing underscore
    (``from_``) is written without it (``"from"``). Raises ValueError for a missing or
    duplicate ``kind``.
    """
    kind = cls.__dict__.get("kind")
    if not kind or kind in EVENT_TYPES:
        raise ValueError(f"event class {cls.__name__}: kind {kind!r} missing or already used")
    hints = typing.get_type_hints(cls, include_extras=True)
    names, given = cls.__struct_fields__[::-1], cls.__struct_defaults__[::-1]
    defaults = dict(zip(names, given, strict=False))  # defaults belong to the last fields
    specs = [(n, hints[n], defaults.get(n, msgspec.NODEFAULT)) for n in cls.__struct_fields__]
    specs += [*BASE_FIELDS, ("kind", Literal[kind], kind)]
    specs.sort(key=lambda spec: _json_name(spec[0]))
    new = msgspec.defstruct(
        cls.__name__,
        specs,
        bases=(TraceEvent,),
        module=cls.__module__,
        namespace={
            "__doc__": cls.__doc__,
            "__qualname__": cls.__qualname__,
            "version": cls.version,
            "KIND": kind,
            "_declared": cls.__struct_fields__,
        },
        kw_only=True,
        rename=_json_name,
    )
    base = {"t", "source", "wall", "kind"}
    pairs = [(_json_name(f), f) for f in new.__struct_fields__ if f not in base]
    new._keys = tuple(pairs)
    new._attr = dict(pairs)
    new._sort = any("dict" in str(tp) or "Any" in str(tp) for _, tp, _ in specs)
    EVENT_TYPES[kind] = new
    return new  # type: ignore[return-value]


def from_fields(kind: str, source: str, fields: dict[str, Any]) -> TraceEvent:
    """The typed event for ``kind`` built from JSON-named ``fields`` (the deprecated form).

    Raises KeyError for an unknown kind and TypeError for a field the kind does not have.
    """
    try:
        cls = EVENT_TYPES[kind]
    except KeyError:
        raise KeyError(
            f"unknown trace event kind {kind!r} (see simulator/core/events.py)"
        ) from None
    attr = cls._attr
    try:
        return cls(source=source, **{attr.get(k, k): v for k, v in fields.items()})
    except TypeError as exc:
        raise TypeError(f"trace event {kind!r}: {exc}") from None


# == wired M-Bus: the bus (simulator/mbus/bus.py) =============================================


@event
class Frame(TraceEvent):
    """A frame on the wired bus: a request (``m2s``, at its first start bit) or a reception
    (``s2m``, at its first start bit, or at the give-up time with outcome ``timeout``).

    ``function``/``address``/``ci``/``fcb``/``more_follow`` come from the frame bytes
    (:func:`simulator.mbus.frames.frame_facts`); ``summary`` is for humans only.
    """

    kind = "frame"
    version = 2
    direction: Annotated[Literal["m2s", "s2m"], "m2s: master to slaves; s2m: slaves to master"]
    hex: Annotated[Hex, "the bytes on the line (empty for a timeout)"]
    summary: Annotated[str, "human one-line description (describe()); do not parse"]
    outcome: Annotated[
        str, "ok, timeout, overload, collision, checksum, garbled, ignored (late reply)"
    ]
    baud: Annotated[int, "line rate, bit/s"]
    end: Annotated[float, "end of the last stop bit, world s"]
    function: Annotated[str, "C-field function: SND_NKE, SND_UD, REQ_UD1, REQ_UD2, RSP_UD, ACK"] = (
        UNSET
    )
    address: Annotated[int, "A-field (primary address 0..255)"] = UNSET
    ci: Annotated[str, "CI-field, 2 uppercase hex digits"] = UNSET
    fcb: Annotated[int, "frame count bit 0/1 (requests whose C-field has FCV set)"] = UNSET
    more_follow: Annotated[bool, "RSP_UD: the slave signals more records (DIF 1F)"] = UNSET
    start: Annotated[float, "first start bit, world s (ignored late replies)"] = UNSET
    senders: Annotated[list[str], "sources of the slaves that drove the line"] = UNSET
    waited: Annotated[float, "s the master listened before giving up (timeout)"] = UNSET
    uart_errors: Annotated[int, "characters with parity/framing errors"] = UNSET
    bit_errors: Annotated[int, "bits flipped by overspeed on the cable"] = UNSET
    delay: Annotated[float, "s from the request's end to the first start bit"] = UNSET
    in_window: Annotated[bool, "delay inside the response window (11..330 bit times + 50 ms)"] = (
        UNSET
    )
    collision_detected: Annotated[bool, "the master's current detector fired"] = UNSET
    talkover: Annotated[
        list[str] | bool, "m2s: sources whose replies this request ran over; s2m: True if run over"
    ] = UNSET


@event
class Talkover(TraceEvent):
    """A request started while a reply was still on the line (the reply is lost)."""

    kind = "talkover"
    request: Annotated[str, "summary of the request"]
    request_start: S
    request_end: S
    reply_start: S
    reply_end: S


@event
class BusOverload(TraceEvent):
    """The slaves draw more than the master's port supplies (EN 13757-2 unit loads)."""

    kind = "bus_overload"
    unit_loads: Annotated[int, "unit loads on the bus (1 UL = 1.5 mA)"]
    limit: Annotated[int, "unit loads the port supplies"]
    current_ma: Annotated[float, "quiescent current drawn, mA"]
    limit_ma: Annotated[float, "port current limit, mA"]


@event
class Fault(TraceEvent):
    """A scripted slave fault fired on a reply."""

    kind = "fault"
    fault: Annotated[str, "fault kind (scenario [[faults]])"]
    command: Annotated[str, "request function the fault applied to"]
    detail: Annotated[str, "what was done to the reply"]


@event
class Deselect(TraceEvent):
    """A selected slave was deselected (CI 56)."""

    kind = "deselect"
    ci: Annotated[str, "CI-field, hex"]


# == wired M-Bus: the master (simulator/mbus/master.py) and install procedures ================


@event
class Readout(TraceEvent):
    """One meter readout finished (all telegrams, retries included)."""

    kind = "readout"
    target: Annotated[str, "p<n> primary address or 16-hex secondary address"]
    ok: bool
    attempts: int
    telegrams: int
    records: int
    error: Annotated[str | None, "why it failed, None if ok"]
    started: Annotated[float, "world s the readout started"]
    more_pending: Annotated[bool, "the meter still signalled more records (telegram cap)"]


@event
class Scan(TraceEvent):
    """A primary scan finished."""

    kind = "scan"
    found: Annotated[list[int], "primary addresses that answered"]


@event
class Search(TraceEvent):
    """A step or the end of a secondary search (digit descent)."""

    kind = "search"
    result: Annotated[str, "single, none, collision, found, inferred, ambiguous, unresolved, done"]
    mask: Annotated[str, "secondary mask, 16 hex digits with F wildcards"]
    address: Annotated[str, "secondary address found"] = UNSET
    found: Annotated[list[str], "done: every address found"] = UNSET
    alongside: Annotated[list[str], "inferred: addresses already known under the mask"] = UNSET


@event
class Install(TraceEvent):
    """Installation of meters (mbus runner: meter list or search; CMe2100: install command)."""

    kind = "install"
    version = 2  # 2: primary_addresses
    method: Annotated[str, "meter_list, primary_scan, secondary_search"] = UNSET
    meters: Annotated[int, "meters installed"] = UNSET
    position: Annotated[str, "meter list position skipped"] = UNSET
    skipped: Annotated[str, "why that meter list entry was skipped"] = UNSET
    phase: Annotated[str, "CMe2100: started or completed"] = UNSET
    expected: Annotated[int, "CMe2100: meters the install command expects"] = UNSET
    found: Annotated[int, "CMe2100: meters found"] = UNSET
    addresses: Annotated[list[str], "CMe2100: secondary addresses found"] = UNSET
    primary_addresses: Annotated[list[int], "CMe2100 install primary: addresses found"] = UNSET
    cad_file: Annotated[str | None, "CMe2100: CAD file named in the command"] = UNSET


# == CMe2100 gateway (simulator/gateways/cme2100) ==============================================


@event
class ReadoutCycle(TraceEvent):
    """The gateway read all installed meters once."""

    kind = "readout_cycle"
    meters: int
    ok: int
    failed: int
    baud: Annotated[int, "readout rate, bit/s"]
    started: Annotated[float, "world s the cycle started"]


@event
class Push(TraceEvent):
    """A push report (e-mail) attempt."""

    kind = "push"
    outcome: Annotated[str, "delivered, failed, skipped"]
    error: Annotated[str, "why not delivered, empty if delivered"]
    recipient: str = UNSET
    subject: str = UNSET
    meters: int = UNSET
    rows: Annotated[int, "readout rows in the report"] = UNSET
    window: Annotated[
        list[str],
        "[first, last] read time (ISO 8601) of the rows carried; what the at-most-once check reads",
    ] = UNSET


@event
class SecurityState(TraceEvent):
    """The gateway's SMS security state changed."""

    kind = "security_state"
    from_: Annotated[str, "state before"]
    to: Annotated[str, "state after"]


@event
class Sms(TraceEvent):
    """An SMS sent or received (by the gateway or the bench's head-end)."""

    kind = "sms"
    version = 2  # 2: coding
    direction: Annotated[str, "in or out, seen from the source"]
    text: Annotated[str, "the SMS as sent (encrypted form)"]
    outcome: Annotated[str, "accepted, rejected, sent, answered, ..."] = UNSET
    reason: str = UNSET
    detail: str = UNSET
    counter: Annotated[int | None, "message counter of the frame"] = UNSET
    state: Annotated[str, "gateway security state"] = UNSET
    key: Annotated[str, "which key opened the frame"] = UNSET
    command: Annotated[str, "command text (secrets redacted)"] = UNSET
    plain: Annotated[str, "plaintext (secrets redacted)"] = UNSET
    fault: Annotated[str, "fault the bench injected into this SMS"] = UNSET
    coding: Annotated[str, "ucs2 when the SMS came UCS-2 coded (DCS 08), else absent"] = UNSET


@event
class SmsNetwork(TraceEvent):
    """What the mobile network did to one SMS beyond its plain latency (a CMe2100 run with
    ``[sms_network]``; plain deliveries are not traced)."""

    kind = "sms_network"
    direction: Annotated[str, "to_gateway or from_gateway"]
    text: Annotated[str, "the SMS as sent"]
    fate: Annotated[str, "lost, late, duplicated or late+duplicated"]
    delays_s: Annotated[list[float], "s from sending to each copy's arrival; empty when lost"]


# == NB-IoT (simulator/nbiot) ==================================================================


@event
class NbiotTimeSync(TraceEvent):
    """The meter clock was synchronised."""

    kind = "nbiot.time_sync"
    before: Annotated[str, "local time before, ISO 8601"]
    after: Annotated[str, "local time after, ISO 8601"]


@event
class NbiotReadout(TraceEvent):
    """The meter took a readout."""

    kind = "nbiot.readout"
    local_time: Annotated[str, "meter local time, ISO 8601"]
    reason: str
    seq: int


@event
class NbiotTransmission(TraceEvent):
    """A transmission window opened."""

    kind = "nbiot.transmission"
    reason: str
    unsent: Annotated[int, "readouts waiting"]
    telegrams: Annotated[int, "telegrams to send"]
    planned: Annotated[str, "planned local time, ISO 8601"] = UNSET
    window_s: Annotated[float, "s after the planned time"] = UNSET
    window: Annotated[list[float], "randomisation window [from, to], s after the slot"] = UNSET


@event
class NbiotTelegram(TraceEvent):
    """One telegram's delivery attempts ended."""

    kind = "nbiot.telegram"
    ok: bool
    attempts: int
    readouts: int
    bytes: Annotated[int, "payload bytes"]
    first_seq: int


@event
class NbiotUplink(TraceEvent):
    """A datagram reached the server."""

    kind = "nbiot.uplink"
    module: str
    op: Annotated[str, "register, update, send, connect, publish, ..."]
    protocol: Annotated[str, "coap or mqttsn"]
    bytes: Annotated[int, "datagram bytes"]
    duplicate: Annotated[bool, "a retransmission of a message already delivered"] = UNSET
    latency_s: Annotated[float, "s since the telegram's first attempt"] = UNSET
    readouts: int = UNSET
    times: Annotated[list[int], "readout UTC times, Unix s (all, or [min, max])"] = UNSET
    order: Annotated[list[int], "first readout's UTC time, Unix s"] = UNSET
    error: Annotated[str, "payload decode error"] = UNSET


class _ProtoTx(TraceEvent):  # shared payload of the protocol datagram events
    op: str
    attempt: Annotated[int, "0 = first send"]
    bytes: Annotated[int, "datagram bytes"]


@event
class NbiotCoapTx(_ProtoTx):
    """A CoAP request sent (datagram detail)."""

    kind = "nbiot.coap_tx"


@event
class NbiotMqttsnTx(_ProtoTx):
    """An MQTT-SN message sent (datagram detail)."""

    kind = "nbiot.mqttsn_tx"


@event
class NbiotDtlsTx(TraceEvent):
    """A DTLS handshake flight sent (datagram detail)."""

    kind = "nbiot.dtls_tx"
    handshake: Annotated[str, "full or resume"]
    flight: int
    attempt: int
    bytes: int


@event
class NbiotDtlsFailed(TraceEvent):
    """A DTLS handshake gave up."""

    kind = "nbiot.dtls_failed"
    handshake: str
    flight: int


@event
class NbiotBootstrapOp(TraceEvent):
    """A step of an LwM2M Client Initiated Bootstrap (OMA LwM2M 1.1 Core §6.1.3.3): the
    module sent its Bootstrap-Request, or received one of the Bootstrap-Server's requests."""

    kind = "nbiot.bootstrap_op"
    op: Annotated[str, "bootstrap_request, delete, write, discover or bootstrap_finish"]
    path: Annotated[str, "CoAP path (/bs, /, /0/1, ...)"]
    attempt: Annotated[int, "0 = first send of this request"]
    bytes: Annotated[int, "CoAP bytes of the request"]


@event
class NbiotBootstrap(TraceEvent):
    """An LwM2M bootstrap ended (done: the module acknowledged Bootstrap-Finish)."""

    kind = "nbiot.bootstrap"
    outcome: Annotated[str, "done or failed"]
    reason: Annotated[str, "first_start or registration_failure"]
    duration_s: Annotated[float, "s from the DTLS handshake's start to the end"]
    failed_at: Annotated[
        str,
        "the step that got no answer: dtls, bootstrap_request, or the server's request "
        "(delete /, write /0/1, ..., bootstrap_finish /bs) unanswered or past EXCHANGE_LIFETIME",
    ] = UNSET


@event
class NbiotRaCollision(TraceEvent):
    """Random access lost contention on its NPRACH subcarrier."""

    kind = "nbiot.ra_collision"
    ce_level: int
    attempt: int


@event
class NbiotRaFailed(TraceEvent):
    """Random access failed on every preamble attempt."""

    kind = "nbiot.ra_failed"
    ce_level: int
    attempts: int


@event
class NbiotRrcConnected(TraceEvent):
    """The module reached RRC connected."""

    kind = "nbiot.rrc_connected"
    ce_level: int
    setup_s: Annotated[float, "s from the start of random access"]
    from_psm: bool


@event
class NbiotDownlinkUnreachable(TraceEvent):
    """A downlink datagram could not reach the module."""

    kind = "nbiot.downlink_unreachable"
    reason: str


@event
class NbiotPaged(TraceEvent):
    """The module was paged for a downlink."""

    kind = "nbiot.paged"
    wait_s: Annotated[float, "s until the paging occasion"]


@event
class NbiotMtDelivered(TraceEvent):
    """A mobile-terminated (server-initiated) request reached the module after the network
    held it (RADIO-NBIOT §8 anchor 4)."""

    kind = "nbiot.mt_delivered"
    op: Annotated[str, "the server's request (read, write, execute, ...)"]
    via: Annotated[str, "connected, paging (DRX/eDRX), mo (next uplink) or tau (periodic TAU)"]
    wait_s: Annotated[float, "s from the server's request to the module starting to receive it"]


# == wireless M-Bus radio (simulator/wmbus) ====================================================


@event
class WmbusTx(TraceEvent):
    """A meter transmitted a telegram."""

    kind = "wmbus_tx"
    version = 2  # 2: fragment
    seq: int
    mode: Annotated[str, "radio mode (T1, C1, ...)"]
    access_no: Annotated[int, "access number 0..255"]
    airtime_ms: Annotated[float, "time on air, ms"]
    fragment: Fragment = UNSET


@event
class DutyCycle(TraceEvent):
    """A meter exceeded its band's duty cycle in one hour."""

    kind = "duty_cycle"
    hour: int
    band: str
    exceeded: bool
    airtime_s: Annotated[float, "airtime in that hour, s"]
    limit_s: Annotated[float, "band limit per hour, s"]


@event
class WmbusRx(TraceEvent):
    """A receiver decoded a telegram."""

    kind = "wmbus_rx"
    version = 2  # 2: fragment
    meter: Annotated[str, "meter ID, 8 digits"]
    seq: int
    rssi_dbm: Annotated[float, "received power, dBm"]
    fragment: Fragment = UNSET


@event
class WmbusCollision(TraceEvent):
    """A telegram was lost at a receiver to interference."""

    kind = "wmbus_collision"
    version = 2  # 2: fragment
    meter: Annotated[str, "meter ID, 8 digits"]
    seq: int
    rssi_dbm: Annotated[float, "received power, dBm"]
    strongest_dbm: Annotated[float, "strongest interferer, dBm"]
    interference_dbm: Annotated[float, "summed interference, dBm (summed model)"] = UNSET
    fragment: Fragment = UNSET


@event
class WmbusDecode(TraceEvent):
    """A receiver decoded a telegram of a compact-frame meter or an AFL fragment of a
    fragmenting mode-7 meter against its own memory (simulator/wmbus/listener.py)."""

    kind = "wmbus_decode"
    version = 2  # 2: fragment
    meter: Annotated[str, "meter ID, 8 digits"]
    seq: int
    outcome: Annotated[
        str,
        "full | compact | unknown_format | compact_error | fragment_held | fragment_error | "
        "undecoded",
    ]
    signature: Annotated[
        str, "format signature, 4 hex digits: named by a compact frame, defined by a full one"
    ] = UNSET
    fragment: Fragment = UNSET


@event
class RadioReceiver(TraceEvent):
    """Radio kernel totals of one receiver."""

    kind = "radio_receiver"
    receptions: int
    collisions: int


# == CMe3100 Stream plugin and CAD (simulator/gateways/cme3100) ================================


@event
class StreamBadTelegram(TraceEvent):
    """The Stream plugin could not parse a received telegram."""

    kind = "stream_bad_telegram"
    receiver: str
    offset: Annotated[int | None, "byte offset of the error, if known"]
    reason: str


@event
class StreamRx(TraceEvent):
    """The Stream plugin received a telegram."""

    kind = "stream_rx"
    meter: Annotated[str, "meter ID, 8 digits"]
    receiver: str
    rssi_dbm: Annotated[float, "received power, dBm"]
    accepted: Annotated[bool, "passed the plugin's filter"]


@event
class StreamPush(TraceEvent):
    """A Stream push attempt."""

    kind = "stream_push"
    meters: int
    ok: bool
    status: Annotated[int | str, "HTTP status, or the transport error"]
    attempt: int
    bytes: Annotated[int, "report bytes"]
    window: Annotated[
        list[float],
        "[first, last] world time (s) the carried telegrams were received; what the "
        "at-most-once check reads",
    ] = UNSET


@event
class AnalyzerReset(TraceEvent):
    """The daily reset of the telegram analyzer."""

    kind = "analyzer_reset"


@event
class CadSync(TraceEvent):
    """A CAD synchronisation finished."""

    kind = "cad_sync"
    code: Annotated[int, "result code (900 success, 920, 921)"]
    url: str
    sync_id: str | None
    applied: list[str]
    problems: list[str]


@event
class CadNotifyFailed(TraceEvent):
    """The CAD result notification could not be delivered."""

    kind = "cad_notify_failed"
    reason: str


# == CMe3100 gateway (simulator/gateways/cme3100/gateway.py) ===================================


@event
class ReadoutRound(TraceEvent):
    """A CMe3100 readout round over its active meters finished (seed 002 §6.7, §6.22)."""

    kind = "readout_round"
    trigger: Annotated[str, "schedule, manual, retry"]
    started: Annotated[float, "world s the round started"]
    meters: Annotated[int, "active meters read"]
    ok: int
    failed: int
    passive: Annotated[int, "installed meters skipped as passive"]


@event
class PushAttempt(TraceEvent):
    """One delivery attempt of a CMe3100 push or event report (seed 002 §6.9, §6.32)."""

    kind = "push_attempt"
    report: Annotated[str, "report slot name"]
    protocol: Annotated[str, "http, ftp, mail"]
    template: Annotated[int, "template number (1xxx mail, 2xxx FTP, 3xxx HTTP)"]
    attempt: Annotated[int, "0 = first attempt, 1.. = retries"]
    ok: bool
    status: Annotated[
        int | None, "receiver's code (HTTP status, FTP/SMTP reply), None if unreached"
    ]
    reason: Annotated[str, "why not delivered, empty if delivered"]
    values: Annotated[int, "readouts the report carries"]
    resent: Annotated[int, "of them already delivered before (fixed Value Period)"]
    bytes: Annotated[int, "report bytes"]
    file: Annotated[str, "report file name"]
    duration_s: Annotated[float, "s the attempt took"]
    new_values: Annotated[
        dict[str, list[str | int]],
        "per meter: [first, last read_at (ISO 8601), count] of the values carried for the "
        "first time (not resent); what the at-most-once check reads",
    ] = UNSET


@event
class ValuesLost(TraceEvent):
    """Unsent readouts of one meter fell out of a report's Value Period (seed 002 §6.32.2)."""

    kind = "values_lost"
    report: Annotated[str, "report slot name"]
    meter: Annotated[str, "8-digit identification"]
    read_at: Annotated[list[str], "local times the lost readouts were read, ISO 8601"]


@event
class GatewayEvent(TraceEvent):
    """Something the CMe3100 reports as an event (CME3100.md §6): startup, installation,
    readout_failed, licence_exceeded, configuration_changed."""

    kind = "gateway_event"
    event: str
    detail: str


@event
class SnmpStatus(TraceEvent):
    """The CMe3100's aggregated SNMP status changed (seed 002 §6.30 Table 8)."""

    kind = "snmp_status"
    old: Annotated[int, "1 OK, 2 WARNING, 3 ERROR"]
    new: Annotated[int, "1 OK, 2 WARNING, 3 ERROR"]
    traps: Annotated[int, "recipients that acknowledged the notification"]
    recipients: int


@event
class VirtualMbusExchange(TraceEvent):
    """A request to the CMe3100's Virtual M-Bus service and its answer from the value
    database (seed 002 §6.27; simulator/gateways/cme3100/virtual_mbus.py); no bus traffic."""

    kind = "virtual_mbus"
    request: Annotated[Hex, "the request frame"]
    reply: Annotated[Hex, "what the gateway sent back (empty = silence)"]
    outcome: Annotated[
        str,
        "ack, rsp_ud, repeat, not_valid, expired, no_value, no_meter, ambiguous, deselected, "
        "ignored",
    ]
    meter: Annotated[str, "8-digit identification answered for, empty if none"]
    telegram: Annotated[int, "index of the stored telegram served (multi-telegram)"] = UNSET
    age_s: Annotated[float, "age of the value served, s"] = UNSET


@event
class ClockStep(TraceEvent):
    """The CMe3100's clock was stepped: an NTP sync found a difference of at least the
    accepted one, or the scenario set the clock (CME3100.md §10, Gaps #13)."""

    kind = "clock_step"
    reason: Annotated[str, "ntp or scenario"]
    step_s: Annotated[float, "s the clock moved, + forward"]
    before: Annotated[str, "local time before the step, ISO 8601"]
    after: Annotated[str, "local time after the step, ISO 8601"]


# == serial bridge (simulator/bridge) ==========================================================


@event
class BridgeBaud(TraceEvent):
    """The bridge switched its master-side rate."""

    kind = "bridge_baud"
    old: Annotated[int, "bit/s"]
    new: Annotated[int, "bit/s"]
    cause: str


@event
class BridgePort(TraceEvent):
    """The bridge's serial port went away, came back, or a write failed."""

    kind = "bridge_port"
    state: Annotated[str, "gone, back, write_failed"]
    port: str
    reason: str = UNSET
    unwritten: Annotated[int, "bytes not written"] = UNSET


@event
class BridgeBytes(TraceEvent):
    """Bytes read from or written to the master's port."""

    kind = "bridge_bytes"
    version = 2  # 2: byte_late_ms
    direction: Annotated[str, "in, out, echo"]
    hex: Hex
    n: Annotated[int, "byte count"]
    byte_t: Annotated[list[float], "world time of each byte, s"]
    byte_wall: Annotated[list[float], "Unix time of each byte, s"]
    lateness_ms: Annotated[float, "worst write lateness, ms"] = UNSET
    byte_late_ms: Annotated[list[float], "write lateness of each byte (actual - due), ms"] = UNSET


@event
class BridgeJunk(TraceEvent):
    """Bytes from the master that are not a frame."""

    kind = "bridge_junk"
    hex: Hex
    n: int
    reason: str


@event
class BridgeSession(TraceEvent):
    """A master session on the bridge's port started, ended, or a second master was refused.

    A session is one TCP connection, one open..close of the pty by a master program, or on a
    serial line a run of traffic ended by ``session_idle`` s of silence (docs/bridge.md).
    """

    kind = "bridge_session"
    state: Annotated[str, "start, end, refused, queued"]
    session: Annotated[int, "bridge session number (1, 2, ...); 0 for a refused client"]
    port: str
    peer: Annotated[str, "the TCP client's host:port"] = UNSET
    reason: str = UNSET


@event
class BridgeDropped(TraceEvent):
    """Bytes of an ended session the bridge threw away instead of forwarding."""

    kind = "bridge_dropped"
    what: Annotated[str, "input (held or unread bytes), request (queued frame), reply, echo"]
    session: Annotated[int, "the session the bytes belonged to"]
    hex: Hex
    n: Annotated[int, "byte count"]
    reason: str


@event
class BridgeExchange(TraceEvent):
    """A request the bridge put on the simulated bus and what came back."""

    kind = "bridge_exchange"
    request: Hex
    summary: Annotated[str, "human description of the request; do not parse"]
    baud: Annotated[int, "bit/s"]
    request_end: Annotated[float, "world s"]
    reply: Annotated[Hex, "first reception"]
    outcome: str
    queued_ms: Annotated[float, "ms the request waited in the bridge"]
    receptions: int
    delay: Annotated[float, "s from request end to the first reply"] = UNSET
    late: Annotated[bool, "the reply was written later than due"] = UNSET
    senders: list[str] = UNSET
    more: Annotated[list[dict[str, Any]], "further receptions in the window"] = UNSET


#: Event classes without dict-bearing fields (written by the non-sorting encoder).
_PLAIN = frozenset(cls for cls in EVENT_TYPES.values() if not cls._sort)

__all__ = [
    "EVENT_TYPES",
    "HEADER_KIND",
    "TRACE_SCHEMA_VERSION",
    "UNSET",
    "TraceEvent",
    "event",
    "from_fields",
    "encode_lines",
    "round_ns",
    "header_line",
    *sorted(cls.__name__ for cls in EVENT_TYPES.values()),
]
