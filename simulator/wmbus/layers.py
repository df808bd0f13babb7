"""The layers after the data link layer: ``[ELL] [AFL] TPL APL`` (PROTOCOL.md §5.3).

* **ELL**, extended link layer, CI 8C..8F: communication control CC, access number ACC, and
  optionally a second address (M2, A2), a session number SN and an (encrypted) payload CRC.
* **AFL**, authentication and fragmentation layer, CI 90: fragment control FCL, message control
  MCL, key information KI, message counter MCR, MAC, message length ML (OMS security mode 7).
* **TPL**, transport layer: CI 7A (short header: ACC, status, config), CI 72 (long header: the
  meter's secondary address first), CI 78 (no header); the config field carries the security
  mode and the number of encrypted 16-byte blocks; mode 7 adds a config-extension byte.

Each header is a small dataclass with ``parse(buf, pos)`` (returns the header and the position
after it) and ``to_bytes()``; errors are :class:`~simulator.wmbus.frame.LayerError` with the
byte offset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from simulator.wmbus.frame import LayerError

# --- CI values (W1 LIST_OF_CI_FIELDS; PROTOCOL.md §5.3) ---
CI_ELL_I = 0x8C  #: CC, ACC
CI_ELL_II = 0x8D  #: CC, ACC, SN, payload CRC
CI_ELL_III = 0x8E  #: CC, ACC, M2, A2
CI_ELL_IV = 0x8F  #: CC, ACC, M2, A2, SN, payload CRC
CI_AFL = 0x90
CI_TPL_LONG = 0x72  #: long header (secondary address + ACC, ST, CFG)
CI_TPL_SHORT = 0x7A  #: short header (ACC, ST, CFG)
CI_TPL_NONE = 0x78  #: no header
CI_TPL_COMPACT = 0x79  #: compact frame (format signature), records not decodable alone

ELL_CIS = (CI_ELL_I, CI_ELL_II, CI_ELL_III, CI_ELL_IV)
TPL_CIS = (CI_TPL_LONG, CI_TPL_SHORT, CI_TPL_NONE)

# CC bits (W1 wmbus.h l.168-172)
CC_BIDIRECTIONAL = 0x80
CC_RESPONSE_DELAY = 0x40
CC_SYNCHRONOUS = 0x20
CC_HOP = 0x10
CC_PRIORITY = 0x08
CC_REPEATED_ACCESS = 0x02

ELL_SECURITY_NONE = 0
ELL_SECURITY_AES_CTR = 1

# AFL FCL flag bits (W1 parseAFL)
FCL_KI = 0x0200
FCL_MAC = 0x0400
FCL_MCR = 0x0800
FCL_ML = 0x1000
FCL_MCL = 0x2000
FCL_MORE_FRAGMENTS = 0x4000

#: AFL MCL authentication type (low nibble) -> MAC length in bytes
MAC_LENGTHS = {0: 0, 3: 2, 4: 4, 5: 8, 6: 12, 7: 16}

# TPL security modes (config field bits 12..8; W4 wmbus.h l.194)
SECURITY_NONE = 0
SECURITY_MODE_5 = 5  #: AES-128-CBC, IV from M, A, ACC (OMS security profile A)
SECURITY_MODE_7 = 7  #: AES-128-CBC, zero IV, CMAC-derived keys (OMS security profile B)


def _need(buf: bytes, pos: int, n: int, what: str) -> None:
    if pos + n > len(buf):
        raise LayerError(f"{what} needs {n} bytes, only {max(0, len(buf) - pos)} left", pos)


@dataclass
class ELL:
    """Extended link layer header (CI 8C..8F). ``sn`` and ``payload_crc`` for 8D/8F only;
    ``m2``/``a2`` (manufacturer code, 6 A-field bytes) for 8E/8F only.

    ``sn`` bits 0-3 session, 4-28 time, 29-31 ELL security mode (1 = AES-128-CTR); the
    ``payload_crc`` is the plaintext CRC over the rest of the payload, LE (PROTOCOL.md §5.6).
    """

    ci: int = CI_ELL_I
    cc: int = 0
    acc: int = 0
    m2: int | None = None
    a2: bytes | None = None
    sn: int | None = None
    payload_crc: int | None = None

    @property
    def security_mode(self) -> int:
        """ELL security mode from SN bits 29-31 (0 = none, 1 = AES-128-CTR)."""
        return 0 if self.sn is None else (self.sn >> 29) & 0x7

    @property
    def has_sn(self) -> bool:
        return self.ci in (CI_ELL_II, CI_ELL_IV)

    @property
    def has_address(self) -> bool:
        return self.ci in (CI_ELL_III, CI_ELL_IV)

    def header_bytes(self) -> bytes:
        """CI .. SN (everything before the payload CRC, which belongs to the encrypted part)."""
        if self.ci not in ELL_CIS:
            raise LayerError(f"ELL CI must be 8C..8F, got {self.ci:02X}")
        out = bytes([self.ci, self.cc & 0xFF, self.acc & 0xFF])
        if self.has_address:
            if self.m2 is None or self.a2 is None or len(self.a2) != 6:
                raise LayerError(f"ELL CI {self.ci:02X} needs m2 and a 6-byte a2")
            out += self.m2.to_bytes(2, "little") + bytes(self.a2)
        if self.has_sn:
            out += (self.sn or 0).to_bytes(4, "little")
        return out

    @classmethod
    def parse(cls, buf: bytes, pos: int) -> tuple[ELL, int]:
        """Parse from ``buf[pos]`` (the CI); returns the header and the position after SN (the
        payload CRC, if any, is left in place because it may be encrypted)."""
        ci = buf[pos]
        if ci not in ELL_CIS:
            raise LayerError(f"CI {ci:02X} is not an ELL (8C..8F)", pos)
        ell = cls(ci=ci)
        size = {CI_ELL_I: 2, CI_ELL_II: 6, CI_ELL_III: 10, CI_ELL_IV: 14}[ci]
        _need(buf, pos + 1, size, f"ELL CI {ci:02X}")
        p = pos + 1
        ell.cc, ell.acc = buf[p], buf[p + 1]
        p += 2
        if ell.has_address:
            ell.m2 = int.from_bytes(buf[p : p + 2], "little")
            ell.a2 = bytes(buf[p + 2 : p + 8])
            p += 8
        if ell.has_sn:
            ell.sn = int.from_bytes(buf[p : p + 4], "little")
            p += 4
        return ell, p

    def to_dict(self) -> dict:
        d = {"ci": f"{self.ci:02X}", "cc": self.cc, "acc": self.acc}
        if self.has_address:
            d["m2"] = self.m2
            d["a2"] = (self.a2 or b"").hex().upper()
        if self.has_sn:
            d["sn"] = self.sn
            d["security_mode"] = self.security_mode
            d["payload_crc"] = self.payload_crc
        return d


@dataclass
class AFL:
    """Authentication and fragmentation layer (CI 90), OMS mode 7 (PROTOCOL.md §5.3, §5.5).

    Fields in wire order after CI and AFL.L: FCL(2, LE), [MCL], [KI(2)], [MCR(4, LE)], [MAC],
    [ML(2)]; each optional field is present when its FCL bit is set.
    """

    fcl: int = 0
    mcl: int | None = None
    ki: int | None = None
    mcr: int | None = None
    mac: bytes | None = None
    ml: int | None = None

    @property
    def mac_length(self) -> int:
        if self.mcl is None:
            return 0
        return MAC_LENGTHS.get(self.mcl & 0x0F, 0)

    def to_bytes(self) -> bytes:
        fcl = self.fcl
        body = bytearray()
        for bit, val in ((FCL_MCL, self.mcl), (FCL_KI, self.ki), (FCL_MCR, self.mcr)):
            fcl = (fcl | bit) if val is not None else (fcl & ~bit)
        fcl = (fcl | FCL_MAC) if self.mac is not None else (fcl & ~FCL_MAC)
        fcl = (fcl | FCL_ML) if self.ml is not None else (fcl & ~FCL_ML)
        body += fcl.to_bytes(2, "little")
        if self.mcl is not None:
            body.append(self.mcl)
        if self.ki is not None:
            body += self.ki.to_bytes(2, "little")
        if self.mcr is not None:
            body += self.mcr.to_bytes(4, "little")
        if self.mac is not None:
            body += self.mac
        if self.ml is not None:
            body += self.ml.to_bytes(2, "little")
        return bytes([CI_AFL, len(body)]) + bytes(body)

    @classmethod
    def parse(cls, buf: bytes, pos: int) -> tuple[AFL, int]:
        if buf[pos] != CI_AFL:
            raise LayerError(f"CI {buf[pos]:02X} is not an AFL (90)", pos)
        _need(buf, pos + 1, 1, "AFL.L")
        length = buf[pos + 1]
        start = pos + 2
        _need(buf, start, length, "AFL")
        end = start + length
        _need(buf, start, 2, "AFL.FCL")
        afl = cls(fcl=int.from_bytes(buf[start : start + 2], "little"))
        p = start + 2

        def take(n: int, what: str) -> bytes:
            nonlocal p
            if p + n > end:
                raise LayerError(f"AFL.{what} needs {n} bytes beyond AFL.L={length}", p)
            out = bytes(buf[p : p + n])
            p += n
            return out

        if afl.fcl & FCL_MCL:
            afl.mcl = take(1, "MCL")[0]
        if afl.fcl & FCL_KI:
            afl.ki = int.from_bytes(take(2, "KI"), "little")
        if afl.fcl & FCL_MCR:
            afl.mcr = int.from_bytes(take(4, "MCR"), "little")
        if afl.fcl & FCL_MAC:
            afl.mac = take(afl.mac_length, "MAC")
        if afl.fcl & FCL_ML:
            afl.ml = int.from_bytes(take(2, "ML"), "little")
        if p != end:
            raise LayerError(f"AFL.L={length} but its fields take {p - start} bytes", p)
        return afl, end

    def to_dict(self) -> dict:
        return {
            "fcl": self.fcl,
            "mcl": self.mcl,
            "ki": self.ki,
            "mcr": self.mcr,
            "mac": None if self.mac is None else self.mac.hex().upper(),
            "ml": self.ml,
            "fragment_id": self.fcl & 0xFF,
            "more_fragments": bool(self.fcl & FCL_MORE_FRAGMENTS),
        }


@dataclass
class TPL:
    """Transport layer header: CI 7A (short), 72 (long) or 78 (none).

    Attributes
    ----------
    ci:
        0x7A, 0x72 or 0x78.
    access_no, status:
        ACC and status byte (short and long header).
    config:
        16-bit config field, LE on air. Bits 12-8 security mode, bits 7-4 number of encrypted
        16-byte blocks, bit 15 bidirectional, 14 accessibility, 13 synchronous, 3-2 content,
        1 RA, 0 HC (PROTOCOL.md §5.3).
    config_ext:
        The mode-7 config-extension byte (bits 5-4 KDF selection, bits 3-0 key id), else None.
    address:
        Long header only: ``ID(4 BCD LE) M(2) version type`` as 8 wire bytes.
    """

    ci: int = CI_TPL_SHORT
    access_no: int = 0
    status: int = 0
    config: int = 0
    config_ext: int | None = None
    address: bytes | None = field(default=None, repr=False)

    @property
    def security_mode(self) -> int:
        return (self.config >> 8) & 0x1F

    @property
    def encrypted_blocks(self) -> int:
        return (self.config >> 4) & 0x0F

    @property
    def kdf_selection(self) -> int | None:
        return None if self.config_ext is None else (self.config_ext >> 4) & 0x3

    @staticmethod
    def make_config(
        security_mode: int,
        blocks: int,
        *,
        bidirectional: bool = False,
        accessible: bool = False,
        synchronous: bool = False,
        content: int = 0,
    ) -> int:
        """Assemble a config field; raises :class:`LayerError` if ``blocks`` > 15."""
        if not 0 <= blocks <= 15:
            raise LayerError(f"config field holds 0..15 encrypted blocks, got {blocks}")
        if not 0 <= security_mode <= 31:
            raise LayerError(f"security mode must be 0..31, got {security_mode}")
        return (
            (bidirectional << 15)
            | (accessible << 14)
            | (synchronous << 13)
            | (security_mode << 8)
            | (blocks << 4)
            | ((content & 3) << 2)
        )

    def to_bytes(self) -> bytes:
        if self.ci == CI_TPL_NONE:
            return bytes([self.ci])
        out = bytes([self.ci])
        if self.ci == CI_TPL_LONG:
            if self.address is None or len(self.address) != 8:
                raise LayerError("a CI 72 long header needs an 8-byte address")
            out += self.address
        elif self.ci != CI_TPL_SHORT:
            raise LayerError(f"TPL CI must be 72, 7A or 78, got {self.ci:02X}")
        out += bytes([self.access_no & 0xFF, self.status & 0xFF])
        out += self.config.to_bytes(2, "little")
        if self.security_mode == SECURITY_MODE_7:
            out += bytes([self.config_ext or 0])
        return out

    @classmethod
    def parse(cls, buf: bytes, pos: int) -> tuple[TPL, int]:
        ci = buf[pos]
        tpl = cls(ci=ci)
        p = pos + 1
        if ci == CI_TPL_NONE:
            return tpl, p
        if ci == CI_TPL_LONG:
            _need(buf, p, 12, "CI 72 long header")
            tpl.address = bytes(buf[p : p + 8])
            p += 8
        elif ci == CI_TPL_SHORT:
            _need(buf, p, 4, "CI 7A short header")
        else:
            raise LayerError(f"unsupported TPL CI {ci:02X}", pos)
        tpl.access_no, tpl.status = buf[p], buf[p + 1]
        tpl.config = int.from_bytes(buf[p + 2 : p + 4], "little")
        p += 4
        if tpl.security_mode == SECURITY_MODE_7:
            _need(buf, p, 1, "mode-7 config extension")
            tpl.config_ext = buf[p]
            p += 1
        return tpl, p

    def to_dict(self) -> dict:
        if self.ci == CI_TPL_NONE:
            return {"ci": f"{self.ci:02X}", "security_mode": 0}
        d = {
            "ci": f"{self.ci:02X}",
            "access_no": self.access_no,
            "status": self.status,
            "config": self.config,
            "security_mode": self.security_mode,
            "encrypted_blocks": self.encrypted_blocks,
        }
        if self.config_ext is not None:
            d["config_ext"] = self.config_ext
            d["kdf_selection"] = self.kdf_selection
        if self.address is not None:
            d["address"] = self.address.hex().upper()
        return d


def as_dict(obj) -> dict:
    """Plain dict of a layer dataclass (bytes kept as bytes), for callers that want raw values."""
    return asdict(obj)
