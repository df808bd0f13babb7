"""A whole wireless M-Bus telegram: build it (encrypting), parse it (decrypting), show it.

Layer order after the data link layer: ``[ELL] [AFL] TPL APL`` (PROTOCOL.md §5.3). The
application data (APL) is DIF/VIF records, decoded by the wired codec
(:func:`simulator.mbus.records.decode_records`); this module adds only what is wireless.

Offsets in errors count from the L-field of the frame *without* its block CRCs (the form
rtl-wmbus and wmbusmeters print); inside an ELL-encrypted part they count in the decrypted
buffer, which lacks the 2-byte payload CRC.

Key choice (:func:`parse_telegram`): ``keys`` may be one 16-byte key, a
:class:`~simulator.wmbus.keys.KeyStore` (candidates for the meter's TPL identity first, then
its link-layer identity, in the store's priority order, each tried until one passes the
check) or ``None``. A telegram that is encrypted and has no candidate key is returned
undecrypted (``decrypted=False``, no records): a gateway forwards such telegrams as they came.
One whose configuration word announces mode 5/7 but whose data is plaintext (no key set, data
starts with 2F 2F and decodes as records) is decoded as received (``encrypted=False``), as
established decoders do.
If candidate keys exist and none passes, :class:`~simulator.wmbus.frame.WrongKeyError` is
raised: a wrong key never yields garbage records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator.wmbus import security as sec
from simulator.wmbus.afl import FragmentError, Reassembler, fragment_id, split_message
from simulator.wmbus.compact import CI_COMPACT, CompactFrameError, FormatStore, compact_apl
from simulator.wmbus.crc import crc16_en13757
from simulator.wmbus.frame import (
    DLL_HEADER_LEN,
    SND_NR,
    FrameError,
    LayerError,
    LinkHeader,
    MacError,
    MissingKeyError,
    RecordsError,
    SecurityError,
    WMBusError,
    WrongKeyError,
    decode_frame,
    encode_frame,
)
from simulator.wmbus.layers import (
    AFL,
    CI_AFL,
    CI_ELL_I,
    CI_TPL_LONG,
    CI_TPL_NONE,
    CI_TPL_SHORT,
    ELL,
    ELL_CIS,
    ELL_SECURITY_AES_CTR,
    ELL_SECURITY_NONE,
    FCL_MORE_FRAGMENTS,
    SECURITY_MODE_5,
    SECURITY_MODE_7,
    SECURITY_NONE,
    TPL,
    TPL_CIS,
)

if TYPE_CHECKING:
    from simulator.mbus.address import SecondaryAddress
    from simulator.wmbus.keys import KeyStore

#: AFL MCL used when building mode 7: message counter present + AES-CMAC-128 truncated to 8.
MCL_CMAC_8 = 0x25
#: Mode-7 config extension: KDF selection 1 (OMS KDF-A), key id 0.
CONFIG_EXT_KDF_A = 0x10


@dataclass
class WMBusTelegram:
    """A parsed wireless telegram.

    Attributes
    ----------
    link:
        L, C, M, A of the data link layer.
    ci:
        The CI-field right after the link header (e.g. 8D for an ELL, 7A for a TPL).
    ell, afl, tpl:
        The layer headers as JSON-friendly dicts (``None`` if absent; ``tpl`` is ``{}`` for a
        CI that is not 72/7A/78). ``tpl`` has ``access_no``, ``status``, ``config``,
        ``security_mode``, ``encrypted_blocks`` and, for CI 72, ``address`` (libmbus 16-hex).
    records:
        The DIF/VIF data records (``simulator.mbus.records.DataRecord``); empty if not
        decrypted or not decodable (see ``records_error``).
    encrypted:
        The telegram carries encrypted data (TPL mode 5/7 or ELL AES-CTR).
    decrypted:
        It was encrypted and a key decrypted it.
    security_mode:
        TPL security mode (0, 5, 7 ...), or 0 without TPL header.
    raw:
        Payload without CRCs from C onwards, as received (still encrypted).
    fmt, crc:
        Frame format ``"A"``/``"B"`` and whether the input carried block CRCs.
    apl:
        Application data after the TPL header (decrypted when possible), fillers included.
    more_follow, manufacturer_data:
        DIF 1F / 0F tails of the records.
    records_error:
        Why the records were not decoded (no key, unknown compact format, bad records), else
        ``None``.
    format_signature:
        For a compact frame (CI 79): its format signature (:mod:`.compact`), else ``None``.
    learned_signature:
        For a full frame parsed with a format store: the signature of the format it taught
        the store (:meth:`~.compact.FormatStore.learn`), else ``None``. Not part of the
        telegram's content (not compared, not exported).
    """

    link: LinkHeader
    ci: int
    ell: dict | None
    afl: dict | None
    tpl: dict
    records: list
    encrypted: bool
    decrypted: bool
    security_mode: int
    raw: bytes
    fmt: str = "A"
    crc: bool = True
    apl: bytes = b""
    more_follow: bool = False
    manufacturer_data: bytes = b""
    records_error: str | None = None
    tpl_ci: int | None = None
    format_signature: int | None = None
    learned_signature: int | None = field(default=None, repr=False, compare=False)
    _tpl_address: bytes | None = field(default=None, repr=False)

    @property
    def address(self) -> SecondaryAddress | None:
        """The meter's secondary address: the CI 72 long header's if present, else the link
        layer's (``None`` if not a valid BCD ID / three letters)."""
        from simulator.mbus.address import SecondaryAddress
        from simulator.mbus.errors import MBusError

        try:
            if self._tpl_address is not None:
                return SecondaryAddress.from_bytes(self._tpl_address)
            lk = self.link
            return SecondaryAddress(lk.id, lk.manufacturer, lk.version, lk.device_type)
        except MBusError:
            return None


# --- helpers ------------------------------------------------------------------------------


def _tpl_ma(tpl_address: bytes) -> bytes:
    """CI 72 address (ID(4) M(2) ver type) reordered as M(2) ID(4) ver type (IV order)."""
    return tpl_address[4:6] + tpl_address[0:4] + tpl_address[6:8]


def _records_api():
    from simulator.mbus import records

    return records


def _identities(link: LinkHeader, tpl_address: bytes | None) -> list[tuple[str, str, int, int]]:
    out = []
    if tpl_address is not None:
        try:
            from simulator.mbus.address import SecondaryAddress

            a = SecondaryAddress.from_bytes(tpl_address)
            out.append((a.manufacturer, f"{a.id:08d}", a.version, a.medium))
        except Exception:  # noqa: BLE001 - an odd long header only loses its key lookup
            pass
    # id_text: a non-BCD ID (id None) is looked up by its hex digits (issue 14)
    out.append((link.manufacturer, link.id_text, link.version, link.device_type))
    return out


def _plaintext_despite_flags(apl: bytes, offset: int, candidates: list[bytes]) -> bool:
    """True if a telegram whose configuration word announces mode 5/7 carries plaintext:
    no key is set and the data starts with the 2F 2F check bytes a decrypted block starts
    with and then decodes as DIF/VIF records. Established decoders (wmbusmeters) decode such
    telegrams; with a key set the mismatch stays an error (issue 14)."""
    if candidates or apl[:2] != b"\x2f\x2f":
        return False
    from simulator.mbus.errors import MBusError

    try:
        _records_api().decode_records(apl, offset=offset)
    except (MBusError, WMBusError):  # not plaintext records
        return False
    return True


def _candidate_keys(keys, link: LinkHeader, tpl_address: bytes | None) -> list[bytes]:
    if keys is None:
        return []
    if isinstance(keys, bytes | bytearray | memoryview):
        return [sec.check_key(bytes(keys))]
    out: list[bytes] = []
    for ident in _identities(link, tpl_address):
        for k in keys.candidates(*ident):
            if k not in out:
                out.append(k)
    return out


def _try_keys(candidates: list[bytes], attempt, what: str):
    """Run ``attempt(key)`` for each candidate; the first success wins."""
    last: WrongKeyError | None = None
    for key in candidates:
        try:
            return attempt(key)
        except WrongKeyError as exc:
            last = exc
    assert last is not None
    n = len(candidates)
    tried = f"{what}: {n} keys tried, none fits; last: " if n > 1 else ""
    raise type(last)(f"{tried}{last.reason}", last.offset)  # keeps MacError a MacError


# --- parse --------------------------------------------------------------------------------


def parse_telegram(
    raw: bytes,
    *,
    keys: KeyStore | bytes | None = None,
    fmt: str | None = None,
    crc: bool | None = None,
    strict: bool = False,
    formats: FormatStore | None = None,
    fragments: Reassembler | None = None,
) -> WMBusTelegram:
    """Parse one received telegram (L-field first), decrypting where a key fits.

    ``fmt``/``crc`` as :func:`~simulator.wmbus.frame.decode_frame` (``None`` = detect).
    With ``strict`` a records problem raises :class:`RecordsError`; otherwise it is kept in
    ``records_error`` with the headers still decoded.

    ``formats`` (:class:`~simulator.wmbus.compact.FormatStore`): the receiver's memory of
    compact-frame formats; every decoded full frame teaches it its format and a compact frame
    (CI 79) is expanded from it. Without it a compact frame keeps ``records_error``.
    ``fragments`` (:class:`~simulator.wmbus.afl.Reassembler`): the receiver's open AFL
    fragmented messages; a fragment that is not the last comes back with its headers only
    (``records_error`` says it is held), the last one with the whole message decoded.
    Error offsets after the first fragment count in the reassembled message.

    Raises :class:`~simulator.wmbus.frame.WMBusError` subclasses only: ``FrameError``/
    ``CRCError`` (link layer), ``LayerError`` (ELL/AFL/TPL), ``WrongKeyError`` (keys given but
    none fits; ``MacError`` for a mode-7 AFL MAC that does not verify), ``SecurityError``
    (e.g. mode 7 without AFL), ``FragmentError`` (a missing AFL fragment), ``RecordsError``
    (strict; ``UnknownFormatError`` / ``CompactFrameError`` for compact frames).
    """
    fmt_used, payload = decode_frame(raw, fmt, crc=crc)
    had_crc = len(raw) != len(payload) + 1
    try:
        return _parse_payload(
            bytes(raw)[0], payload, fmt_used, had_crc, keys, strict, formats, fragments
        )
    except IndexError as exc:  # a bounds check missed: still one typed error
        raise LayerError(f"telegram ends too early ({exc})") from None


def _parse_payload(
    l_field, payload, fmt_used, had_crc, keys, strict, formats, fragments
) -> WMBusTelegram:
    link = LinkHeader.from_payload(payload, l_field, offset=1)
    if len(payload) <= DLL_HEADER_LEN:
        raise LayerError("no CI-field after the link header", 1 + len(payload))
    data = bytearray(payload)  # decrypted parts replace ciphertext as we go
    pos = DLL_HEADER_LEN
    first_ci = data[pos]
    ell_h: ELL | None = None
    afl_h: AFL | None = None
    afl_count = 1
    encrypted = decrypted = False
    no_key_reason: str | None = None

    def base(p: int) -> int:  # payload index -> offset counted from L
        return p + 1

    if data[pos] in ELL_CIS:
        ell_h, pos = ELL.parse(data, pos)
        if ell_h.has_sn:
            rest = bytes(data[pos:])
            if len(rest) < 2:
                raise LayerError("ELL payload CRC missing", base(pos))
            if ell_h.security_mode == ELL_SECURITY_AES_CTR:
                encrypted = True
                cands = _candidate_keys(keys, link, None)
                if cands:
                    crc_val, plain = _try_keys(
                        cands,
                        lambda k: sec.ell_decrypt(
                            k, link.address_bytes, ell_h.cc, ell_h.sn, rest, base(pos)
                        ),
                        "ELL AES-CTR",
                    )
                    ell_h.payload_crc = crc_val
                    data[pos:] = plain
                    decrypted = True
                else:
                    no_key_reason = "ELL AES-CTR encrypted, no key"
            elif ell_h.security_mode == ELL_SECURITY_NONE:
                crc_val = int.from_bytes(rest[:2], "little")
                if crc_val != crc16_en13757(rest[2:]):
                    raise LayerError(
                        f"ELL payload CRC {crc_val:04X} != computed {crc16_en13757(rest[2:]):04X}",
                        base(pos),
                    )
                ell_h.payload_crc = crc_val
                del data[pos : pos + 2]
            else:
                raise SecurityError(
                    f"ELL security mode {ell_h.security_mode} not supported", base(pos - 4)
                )

    def headers_only(**kw) -> WMBusTelegram:  # a telegram decoded no further than its headers
        return WMBusTelegram(
            link=link,
            ci=first_ci,
            ell=ell_h.to_dict() if ell_h else None,
            tpl={},
            records=[],
            decrypted=False,
            security_mode=0,
            raw=bytes(payload),
            fmt=fmt_used,
            crc=had_crc,
            **kw,
        )

    if no_key_reason is not None:
        return headers_only(
            afl=None, encrypted=True, apl=bytes(data[pos:]), records_error=no_key_reason
        )
    if pos >= len(data):
        raise LayerError("no CI-field after the ELL", base(pos))
    if data[pos] == CI_AFL:
        afl_pos = pos
        afl_h, pos = AFL.parse(data, pos)
        if fragments is not None:
            whole = fragments.add(link.address_bytes, afl_h, bytes(data[pos:]), base(afl_pos))
            if whole is None:  # more fragments to come: only the headers so far
                return headers_only(
                    afl=afl_h.to_dict(),
                    encrypted=False,
                    records_error=f"AFL fragment {fragment_id(afl_h)} held: more fragments follow",
                )
            afl_h, message, afl_count = whole
            data[pos:] = message  # the reassembled message (TPL onwards) after the first AFL
        elif afl_h.fcl & FCL_MORE_FRAGMENTS:
            raise FragmentError(
                "fragmented AFL message: reassembling it needs a fragment store (fragments=)",
                base(afl_pos),
            )
    if pos >= len(data):
        raise LayerError("no TPL CI-field", base(pos))
    tpl_pos = pos
    tpl_ci = data[pos]
    tpl_h: TPL | None = None
    records_error: str | None = None
    if tpl_ci in TPL_CIS:
        tpl_h, pos = TPL.parse(data, pos)
    mode = tpl_h.security_mode if tpl_h else SECURITY_NONE
    tpl_address = tpl_h.address if tpl_h else None
    apl = bytes(data[pos:])
    signature: int | None = None
    if tpl_ci == CI_COMPACT:
        signature, apl, records_error = _expand_compact(data, pos + 1, formats, strict, base)
        pos += 1 + 4  # CI, signature, data CRC: the records' data start here
    elif tpl_h is None:
        records_error = (
            f"CI {tpl_ci:02X} is not a TPL with DIF/VIF records (72/7A/78/79); "
            "manufacturer frames are not decoded"
        )
    elif mode in (SECURITY_MODE_5, SECURITY_MODE_7) and _plaintext_despite_flags(
        apl, base(pos), _candidate_keys(keys, link, tpl_address)
    ):
        pass  # no key and plain records (2F 2F, then valid DIF/VIF): decode as received
    elif mode in (SECURITY_MODE_5, SECURITY_MODE_7):
        encrypted = True
        n = tpl_h.encrypted_blocks * 16
        if n == 0 or pos + n > len(data):
            raise SecurityError(
                f"config says {tpl_h.encrypted_blocks} encrypted blocks, "
                f"{len(data) - pos} bytes follow the TPL header",
                base(pos),
            )
        cipher = bytes(data[pos : pos + n])
        cands = _candidate_keys(keys, link, tpl_address)
        if not cands:
            records_error = f"security mode {mode} encrypted, no key"
        elif mode == SECURITY_MODE_5:
            ma = _tpl_ma(tpl_address) if tpl_address else link.address_bytes
            if cipher[:2] == b"\x2f\x2f":
                raise SecurityError(
                    "config says mode 5 but the data is not encrypted (2F 2F)", base(pos)
                )
            plain = _try_keys(
                cands,
                lambda k: sec.mode5_decrypt(k, ma, tpl_h.access_no, cipher, base(pos)),
                "mode 5",
            )
            apl = plain + bytes(data[pos + n :])
            decrypted = True
        else:
            if afl_h is None or afl_h.mcr is None or afl_h.mac is None or afl_h.mcl is None:
                raise SecurityError("mode 7 needs an AFL with MCL, MCR and MAC", base(tpl_pos))
            meter_id = tpl_address[0:4] if tpl_address else link.to_bytes()[3:7]
            signed = bytes(data[tpl_pos:])

            def attempt(k: bytes) -> bytes:
                kmac = sec.mode7_derive(k, sec.KDF_MAC_FROM_METER, afl_h.mcr, meter_id)
                mac = sec.mode7_mac(kmac, afl_h.mcl, afl_h.mcr, afl_h.ml, signed, len(afl_h.mac))
                if mac != afl_h.mac:
                    raise MacError(
                        f"mode 7: AFL MAC {afl_h.mac.hex().upper()} != computed "
                        f"{mac.hex().upper()} (wrong key or corrupted data)",
                        base(tpl_pos),
                    )
                kenc = sec.mode7_derive(k, sec.KDF_ENC_FROM_METER, afl_h.mcr, meter_id)
                return sec.mode7_decrypt(kenc, cipher, base(pos))

            apl = _try_keys(cands, attempt, "mode 7") + bytes(data[pos + n :])
            decrypted = True
    elif mode != SECURITY_NONE:
        encrypted = True
        records_error = f"security mode {mode} is not supported"

    records: list = []
    more = False
    mdata = b""
    if records_error is None:
        try:
            recs = _records_api()
            records, mdata, more = recs.decode_records(apl, offset=base(pos))
        except WMBusError:
            raise
        except Exception as exc:  # the wired codec's RecordError (an MBusError)
            from simulator.mbus.errors import MBusError

            if not isinstance(exc, MBusError):
                raise
            if strict:
                raise RecordsError(f"records: {exc.reason}", exc.offset) from None
            records_error = f"records: {exc}"
            records = []
    learned = None
    if formats is not None and tpl_h is not None and records_error is None:
        learned = formats.learn(records)  # a full frame defines later compact frames' format
    return WMBusTelegram(
        link=link,
        ci=first_ci,
        ell=ell_h.to_dict() if ell_h else None,
        afl=None if afl_h is None else {**afl_h.to_dict(), "fragments": afl_count},
        tpl=_tpl_dict(tpl_h),
        records=records,
        encrypted=encrypted,
        decrypted=decrypted,
        security_mode=mode,
        raw=bytes(payload),
        fmt=fmt_used,
        crc=had_crc,
        apl=apl,
        more_follow=more,
        manufacturer_data=mdata,
        records_error=records_error,
        tpl_ci=tpl_ci,
        format_signature=signature,
        learned_signature=learned,
        _tpl_address=tpl_address,
    )


def _expand_compact(data, pos, formats, strict, base) -> tuple[int | None, bytes, str | None]:
    """(signature, full record part, records_error) of a compact frame whose signature
    starts at ``data[pos]``; in ``strict`` mode a problem raises instead."""
    body = bytes(data[pos:])
    signature = int.from_bytes(body[:2], "little") if len(body) >= 2 else None
    if formats is None:
        formats = FormatStore()  # an empty memory: the error says what is missing
    try:
        signature, full = formats.expand(body, base(pos))
    except CompactFrameError as exc:
        if strict:
            raise
        return signature, b"", f"records: {exc.reason}"
    return signature, full, None


def _tpl_dict(tpl_h: TPL | None) -> dict:
    if tpl_h is None:
        return {}
    d = tpl_h.to_dict()
    if tpl_h.address is not None:
        a = tpl_h.address
        d["address"] = bytes(a[:4][::-1]).hex().upper() + bytes(a[4:]).hex().upper()
    return d


# --- build --------------------------------------------------------------------------------


def build_telegram(
    *,
    manufacturer: str,
    id: int | str,  # noqa: A002 - the standard's field name
    version: int,
    device_type: int,
    records: list | bytes,
    access_no: int,
    c: int = SND_NR,
    ci: int = CI_TPL_SHORT,
    security_mode: int = SECURITY_NONE,
    key: bytes | None = None,
    status: int = 0,
    ell: ELL | dict | None = None,
    fmt: str = "A",
    crc: bool = True,
    message_counter: int | None = None,
    more_follow: bool = False,
    manufacturer_data: bytes = b"",
    tpl_address: SecondaryAddress | None = None,
    config_flags: int = 0,
    afl_ml: bool = False,
) -> bytes:
    """On-air bytes (L to last CRC) of a meter telegram.

    ``records``: ``DataRecord`` list (encoded by the wired codec) or ready APL bytes.
    ``ci``: 0x7A (short header), 0x72 (long header: ``tpl_address`` or the link address) or
    0x78 (no header; only without TPL security). ``security_mode`` 0, 5 or 7 needs ``key``
    for 5/7; the plaintext gets ``2F 2F`` in front and 2F fillers to 16-byte blocks (at most 15
    blocks). Mode 7 adds an AFL (CI 90) with MCL 0x25, ``message_counter`` (default
    ``access_no``) and an 8-byte AES-CMAC. ``ell``: an :class:`~simulator.wmbus.layers.ELL`
    or a dict of its fields (``ci``, ``cc``, ``acc`` (default ``access_no``), ``sn``, ``m2``,
    ``a2``); SN security bits 29-31 = 1 encrypt the rest with AES-CTR and ``key``.
    ``config_flags`` are ORed into the config field (bits 15-13, 3-0). ``afl_ml``: mode 7's
    AFL also carries ML (the message length, which the MAC then covers; fragmented messages
    need it). ``ci=0x79`` sends ``records`` as a compact frame (:mod:`.compact`).
    ``crc=False`` returns L + payload without block CRCs. ``id``: 0..99_999_999 (sent as BCD),
    or 8 hex digits for a meter whose ID is not BCD (``"7A348799"``, as decoders print it).

    Raises :class:`MissingKeyError`, :class:`SecurityError` (plaintext too long for 15 blocks),
    :class:`FrameError` (bad link fields or too long for the frame format), ``LayerError``.
    """
    if isinstance(id, str):
        if len(id) != 8 or any(ch not in "0123456789abcdefABCDEF" for ch in id):
            raise FrameError(f"a hex ID is 8 hex digits, got {id!r}")
        link = LinkHeader(
            0, c, manufacturer, None, version, device_type, id_field=bytes.fromhex(id)[::-1]
        )
    else:
        link = LinkHeader(0, c, manufacturer, id, version, device_type)
    head = link.to_bytes()
    if isinstance(records, bytes | bytearray):
        apl = bytes(records)
    else:
        apl = _records_api().encode_records(
            list(records), more_follow=more_follow, manufacturer_data=manufacturer_data
        )
    if ci not in (*TPL_CIS, CI_COMPACT):
        raise LayerError(f"TPL CI must be 72, 7A, 78 or 79, got {ci:02X}")
    if ci in (CI_TPL_NONE, CI_COMPACT) and security_mode != SECURITY_NONE:
        raise LayerError(f"CI {ci:02X} (no TPL header) cannot carry a security mode")
    if ci == CI_COMPACT:
        if isinstance(records, bytes | bytearray):
            raise LayerError("a compact frame (CI 79) is built from records, not bytes")
        apl = compact_apl(list(records), apl)
    if security_mode not in (SECURITY_NONE, SECURITY_MODE_5, SECURITY_MODE_7):
        raise SecurityError(f"security mode {security_mode} not supported (0, 5 or 7)")
    tpl = TPL(
        ci=CI_TPL_NONE if ci == CI_COMPACT else ci, access_no=access_no & 0xFF, status=status & 0xFF
    )
    if ci == CI_TPL_LONG:
        if tpl_address is not None:
            tpl.address = tpl_address.to_bytes()
        else:
            tpl.address = head[3:7] + head[1:3] + head[7:9]
    if security_mode != SECURITY_NONE:
        if key is None:
            raise MissingKeyError(f"security mode {security_mode} needs a key")
        sec.check_key(key)
        plain = sec.pad_filler(b"\x2f\x2f" + apl)
        blocks = len(plain) // 16
        if blocks > 15:
            raise SecurityError(
                f"{len(plain)} bytes of plaintext need {blocks} blocks; the config field holds 15"
            )
        tpl.config = TPL.make_config(security_mode, blocks) | (config_flags & 0xE00F)
    else:
        tpl.config = config_flags & 0xE00F
        plain = apl

    afl_bytes = b""
    if security_mode == SECURITY_MODE_5:
        ma = _tpl_ma(tpl.address) if tpl.address else head[1:9]
        body = tpl.to_bytes() + sec.mode5_encrypt(key, ma, tpl.access_no, plain)
    elif security_mode == SECURITY_MODE_7:
        tpl.config_ext = CONFIG_EXT_KDF_A
        mcr = access_no if message_counter is None else message_counter
        meter_id = tpl.address[0:4] if tpl.address else head[3:7]
        kenc = sec.mode7_derive(key, sec.KDF_ENC_FROM_METER, mcr, meter_id)
        kmac = sec.mode7_derive(key, sec.KDF_MAC_FROM_METER, mcr, meter_id)
        body = tpl.to_bytes() + sec.mode7_encrypt(kenc, plain)
        ml = len(body) if afl_ml else None
        mac = sec.mode7_mac(kmac, MCL_CMAC_8, mcr, ml, body, 8)
        afl_bytes = AFL(mcl=MCL_CMAC_8, mcr=mcr, mac=mac, ml=ml).to_bytes()
    elif ci == CI_COMPACT:
        body = bytes([CI_COMPACT]) + plain
    else:
        body = tpl.to_bytes() + plain

    inner = afl_bytes + body
    if ell is not None:
        e = ell if isinstance(ell, ELL) else _ell_from_dict(ell, access_no)
        if e.has_sn:
            if e.security_mode == ELL_SECURITY_AES_CTR:
                if key is None:
                    raise MissingKeyError("ELL AES-CTR needs a key")
                inner = sec.ell_encrypt(key, head[1:9], e.cc, e.sn or 0, inner)
            elif e.security_mode == ELL_SECURITY_NONE:
                inner = crc16_en13757(inner).to_bytes(2, "little") + inner
            else:
                raise SecurityError(f"ELL security mode {e.security_mode} not supported")
        inner = e.header_bytes() + inner
    payload = head + inner
    if not crc:
        if len(payload) > 255:
            raise FrameError(f"payload of {len(payload)} bytes does not fit the L-field")
        return bytes([len(payload)]) + payload
    return encode_frame(payload, fmt)


def build_fragments(*, fragment_size: int, fmt: str = "A", crc: bool = True, **kwargs) -> list:
    """On-air bytes of each AFL fragment of a mode-7 telegram (:mod:`.afl`).

    ``kwargs`` as :func:`build_telegram` (``security_mode`` must be 7; no ``ell``); the
    message (TPL onwards) is cut into pieces of at most ``fragment_size`` bytes, the first
    fragment carrying MCL, MCR, the MAC over the whole message and ML. Raises as
    :func:`build_telegram`, and :class:`LayerError` for another mode or an ELL.
    """
    if kwargs.get("security_mode") != SECURITY_MODE_7 or kwargs.get("ell") is not None:
        raise LayerError("AFL fragments are built for security mode 7 without an ELL")
    whole = build_telegram(**kwargs, crc=False, afl_ml=True)
    head = whole[1 : 1 + DLL_HEADER_LEN]
    first, pos = AFL.parse(whole, 1 + DLL_HEADER_LEN)
    out = []
    for piece in split_message(first, whole[pos:], fragment_size):
        payload = head + piece
        out.append(encode_frame(payload, fmt) if crc else bytes([len(payload)]) + payload)
    return out


def _ell_from_dict(d: dict, access_no: int) -> ELL:
    unknown = set(d) - {"ci", "cc", "acc", "sn", "m2", "a2"}
    if unknown:
        raise LayerError(f"unknown ELL field(s): {', '.join(sorted(unknown))}")
    return ELL(
        ci=d.get("ci", CI_ELL_I),
        cc=d.get("cc", 0),
        acc=d.get("acc", access_no),
        m2=d.get("m2"),
        a2=d.get("a2"),
        sn=d.get("sn"),
    )


# --- JSON ---------------------------------------------------------------------------------


def telegram_json(t: WMBusTelegram) -> dict[str, Any]:
    """The ``meterbench decode --wmbus --json`` shape: ``header`` and ``records`` as
    :func:`simulator.mbus.telegram.telegram_json` (the meter's address, CI, access number,
    status, config as ``signature``), plus ``link`` (l, c, c_name, manufacturer, id, version,
    device_type, format, crc), ``security_mode``, ``encrypted``, ``decrypted``, ``ell``,
    ``afl``, ``tpl`` and ``records_error``."""
    from simulator.mbus.telegram import Header, Telegram
    from simulator.mbus.telegram import telegram_json as mbus_json

    tpl = t.tpl
    lk = t.link
    raw_address = t._tpl_address or (
        lk.to_bytes()[3:7] + lk.to_bytes()[1:3] + bytes([lk.version, lk.device_type])
    )
    header = Header(
        ci=t.tpl_ci if t.tpl_ci is not None else t.ci,
        access_no=tpl.get("access_no", t.ell["acc"] if t.ell else 0),
        status=tpl.get("status", 0),
        signature=tpl.get("config", 0),
        address=t.address,
        raw_address=raw_address,
    )
    out = mbus_json(
        Telegram(
            header=header,
            records=list(t.records),
            more_follow=t.more_follow,
            manufacturer_data=t.manufacturer_data,
            c=t.link.c,
            a=0,
        )
    )
    out["link"] = {
        "l": lk.l,
        "c": f"{lk.c:02X}",
        "c_name": lk.c_name,
        "manufacturer": lk.manufacturer,
        "id": lk.id_text,
        "version": lk.version,
        "device_type": lk.device_type,
        "format": t.fmt,
        "crc": t.crc,
    }
    out["security_mode"] = t.security_mode
    out["encrypted"] = t.encrypted
    out["decrypted"] = t.decrypted
    out["ell"] = t.ell
    out["afl"] = t.afl
    out["tpl"] = t.tpl
    out["records_error"] = t.records_error
    if t.format_signature is not None:  # compact frames only: other shapes stay as they were
        out["format_signature"] = f"{t.format_signature:04X}"
    return out
