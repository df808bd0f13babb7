"""CMe2100 SMS encryption protocol v1: the exact frame, its keys and its text form.

Seed 000 (CMe2100 LTE G2 commissioning) names only the primitives: "AES-CTR for payload
encryption, HKDF-derived per-message keys, and an 8-byte truncated HMAC-SHA256 for
authentication. The encrypted frame is Base64URL encoded without padding." The bench defines
the rest here; ``docs/cme2100-sms-protocol.md`` is the normative spec (with test vectors in
``fixtures/cme2100/vectors.json``) and this module implements it.

Frame (bytes, before Base64URL)::

    offset  size  field
    0       1     version            0x01
    1       1     direction          0x00 command (head-end -> gateway), 0x01 response
    2       4     message counter    unsigned, big-endian, 1 .. 2**32-1 (0 is invalid)
    6       n     ciphertext         AES-128-CTR of the UTF-8 plaintext, n >= 0
    6+n     8     tag                HMAC-SHA256(mac_key, frame[0:6+n])[:8]

Per-message keys: ``HKDF-SHA256(IKM=communication key bytes, salt=b"CMe2100-SMS-v1",
info=b"CMe2100 SMS v1 keys" + header, L=48)``; the first 16 bytes are the AES-128 key, the
last 32 the HMAC key. ``header`` is ``frame[0:6]``, so every (key, direction, counter) gets its
own key pair. The initial AES-CTR counter block is ``header + 10 zero bytes``, incremented as a
128-bit big-endian integer per 16-byte block (NIST SP 800-38A). The tag is encrypt-then-MAC over
header and ciphertext. The SMS text is ``base64.urlsafe_b64encode(frame)`` with ``=`` removed.

Communication keys: the factory communication key (printed in the NFC status record) and the
16-character communication password are both 16 printable ASCII characters (0x21-0x7E); their
16 ASCII bytes are the HKDF input keying material.

Errors: every malformed or unauthentic text raises :class:`SmsProtocolError` with a
``reason`` code (see :data:`REASONS`) and, where it applies, the character or byte ``offset``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
HEADER_LEN = 6  # version, direction, 4-byte counter
TAG_LEN = 8
OVERHEAD = HEADER_LEN + TAG_LEN  # bytes a frame adds to its plaintext
KEY_CHARS = 16
COUNTER_MAX = 2**32 - 1
HKDF_SALT = b"CMe2100-SMS-v1"
HKDF_INFO_PREFIX = b"CMe2100 SMS v1 keys"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
#: What a receiver removes around the Base64URL text before checking it (spec §3 step 0):
#: space, CR and LF, the GSM-7 characters phones and SMS centres add (trailing line break,
#: signature separator). Nothing else, and nothing inside the text.
SURROUNDING_WHITESPACE = " \r\n"

#: Reason codes of :class:`SmsProtocolError` (and of rejected "sms" trace events).
REASONS = {
    "empty": "the SMS text is empty",
    "not_base64url": "a character outside the Base64URL alphabet",
    "non_canonical": "Base64URL text that is not the canonical unpadded encoding",
    "truncated": "shorter than header + tag (14 bytes)",
    "bad_version": "version byte is not 1",
    "bad_direction": "direction byte is not the one expected",
    "bad_counter": "message counter 0 is never valid",
    "bad_tag": "authentication tag does not verify (wrong key or tampered text)",
    "bad_utf8": "authentic plaintext that is not UTF-8",
    "replay": "message counter not above the last accepted one",
    "factory_key": "authentic under the factory key, which is no longer accepted",
    "plaintext": "an unencrypted command",
    "non_gsm": "a UCS-2 SMS with a character outside the GSM 7-bit alphabet (typed on a phone)",
    "bad_pdu": "an SMS PDU that cannot be decoded (e.g. UCS-2 of odd length, a lone surrogate)",
}


class Direction(IntEnum):
    """Who sent the frame: the head-end (bench, Elvaco Play) or the gateway."""

    COMMAND = 0x00  # head-end -> gateway
    RESPONSE = 0x01  # gateway -> head-end


class SmsProtocolError(Exception):
    """An SMS text that is not a valid, authentic v1 frame.

    ``reason`` is a code from :data:`REASONS`; ``offset`` is the character offset in the SMS
    text (Base64URL problems) or the byte offset in the decoded frame (header problems), or
    ``None``. ``str(err)`` reads ``"<reason>: <detail>"``.
    """

    def __init__(self, reason: str, detail: str = "", offset: int | None = None) -> None:
        self.reason = reason
        self.detail = detail or REASONS.get(reason, reason)
        self.offset = offset
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{reason}: {self.detail}{where}")


class KeyFormatError(ValueError):
    """A communication key or password that is not 16 printable ASCII characters."""


def key_material(key: str | bytes) -> bytes:
    """The HKDF input keying material of a communication key (16 ASCII bytes).

    ``key`` is the 16-character password or factory key as text (or its 16 ASCII bytes).
    Raises :class:`KeyFormatError` naming the first bad character's position.
    """
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    check_key_text(raw.decode("latin-1"))
    return raw


def check_key_text(text: str) -> str:
    """Return ``text`` if it is a valid 16-character key, else raise :class:`KeyFormatError`."""
    if len(text) != KEY_CHARS:
        raise KeyFormatError(
            f"a communication key has exactly {KEY_CHARS} characters, got {len(text)}"
        )
    for i, ch in enumerate(text):
        if not 0x21 <= ord(ch) <= 0x7E:
            raise KeyFormatError(f"character {i} ({ch!r}) is not printable ASCII 0x21-0x7E")
    return text


def header_bytes(direction: Direction | int, counter: int, version: int = VERSION) -> bytes:
    """The 6-byte frame header: version, direction, counter (big-endian)."""
    if not 1 <= counter <= COUNTER_MAX:
        raise ValueError(f"message counter must be 1..{COUNTER_MAX}, got {counter}")
    return bytes([version, int(direction)]) + counter.to_bytes(4, "big")


def derive_message_keys(ikm: bytes, header: bytes) -> tuple[bytes, bytes]:
    """Per-message keys ``(aes_key 16 B, mac_key 32 B)`` from HKDF-SHA256 (RFC 5869)."""
    okm = HKDF(
        algorithm=hashes.SHA256(), length=48, salt=HKDF_SALT, info=HKDF_INFO_PREFIX + header
    ).derive(ikm)
    return okm[:16], okm[16:]


def _ctr(aes_key: bytes, header: bytes, data: bytes) -> bytes:
    block = header + bytes(16 - HEADER_LEN)
    enc = Cipher(algorithms.AES(aes_key), modes.CTR(block)).encryptor()
    return enc.update(data) + enc.finalize()


def _tag(mac_key: bytes, signed: bytes) -> bytes:
    h = crypto_hmac.HMAC(mac_key, hashes.SHA256())
    h.update(signed)
    return h.finalize()[:TAG_LEN]


def b64url_encode(data: bytes) -> str:
    """Base64URL (RFC 4648 §5) without ``=`` padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict, canonical Base64URL without padding.

    Raises :class:`SmsProtocolError` (``empty``, ``not_base64url`` with the character offset,
    ``non_canonical`` for a length of 1 mod 4 or non-zero unused bits in the last character).
    Strictness matters: a lenient decoder would accept a substituted last character whose
    difference falls in the unused bits.
    """
    if not text:
        raise SmsProtocolError("empty")
    m = _B64URL.match(text)
    if m.end() != len(text):
        i = m.end()
        raise SmsProtocolError("not_base64url", f"character {text[i]!r} is not Base64URL", i)
    if len(text) % 4 == 1:
        raise SmsProtocolError("non_canonical", f"length {len(text)} is 1 mod 4", len(text) - 1)
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - alphabet checked above
        raise SmsProtocolError("not_base64url", str(exc)) from None
    if b64url_encode(data) != text:
        raise SmsProtocolError(
            "non_canonical", "unused bits of the last character are not 0", len(text) - 1
        )
    return data


@dataclass(frozen=True)
class Frame:
    """A decoded but not yet authenticated frame."""

    version: int
    direction: int
    counter: int
    ciphertext: bytes
    tag: bytes

    @property
    def header(self) -> bytes:
        return bytes([self.version, self.direction]) + self.counter.to_bytes(4, "big")


def sms_body(text: str) -> str:
    """``text`` without the surrounding space, CR and LF a receiver tolerates (spec §3,
    "Receiving" step 0); any other character, or whitespace inside, stays (and then fails
    as ``not_base64url``)."""
    return text.strip(SURROUNDING_WHITESPACE)


def parse_text(text: str) -> Frame:
    """Decode an SMS text into a :class:`Frame` (no key needed, nothing authenticated yet).

    Surrounding space / CR / LF is tolerated (:func:`sms_body`); offsets of Base64URL
    problems count in ``text`` as received. Raises :class:`SmsProtocolError` (``empty``,
    ``not_base64url``, ``non_canonical``, ``truncated``, ``bad_version``, ``bad_counter``).
    """
    body = sms_body(text)
    lead = len(text) - len(text.lstrip(SURROUNDING_WHITESPACE))
    try:
        raw = b64url_decode(body)
    except SmsProtocolError as err:
        if err.offset is None or not lead:
            raise
        raise SmsProtocolError(err.reason, err.detail, err.offset + lead) from None
    if len(raw) < OVERHEAD:
        raise SmsProtocolError(
            "truncated", f"{len(raw)} bytes, a v1 frame has at least {OVERHEAD}", len(raw)
        )
    if raw[0] != VERSION:
        raise SmsProtocolError("bad_version", f"version {raw[0]}, expected {VERSION}", 0)
    counter = int.from_bytes(raw[2:6], "big")
    if counter == 0:
        raise SmsProtocolError("bad_counter", offset=2)
    return Frame(raw[0], raw[1], counter, raw[HEADER_LEN:-TAG_LEN], raw[-TAG_LEN:])


@dataclass(frozen=True)
class Message:
    """An authentic, decrypted message."""

    direction: Direction
    counter: int
    plaintext: bytes

    @property
    def text(self) -> str:
        return self.plaintext.decode("utf-8")


def encrypt(key: str | bytes, plaintext: str | bytes, *, counter: int, direction: Direction) -> str:
    """Encrypt one message into its SMS text (Base64URL, no padding).

    ``key``: the 16-character communication key; ``plaintext``: text (UTF-8 encoded) or
    bytes; ``counter``: 1..2**32-1, never reused with the same key and direction.
    Raises :class:`KeyFormatError` (bad key) or ``ValueError`` (counter out of range).
    """
    ikm = key_material(key)
    data = plaintext.encode("utf-8") if isinstance(plaintext, str) else bytes(plaintext)
    header = header_bytes(direction, counter)
    aes_key, mac_key = derive_message_keys(ikm, header)
    signed = header + _ctr(aes_key, header, data)
    return b64url_encode(signed + _tag(mac_key, signed))


def authenticate(key: str | bytes, frame: Frame) -> bool:
    """True if ``frame``'s tag verifies under ``key`` (constant-time comparison)."""
    _, mac_key = derive_message_keys(key_material(key), frame.header)
    return hmac.compare_digest(_tag(mac_key, frame.header + frame.ciphertext), frame.tag)


def open_frame(key: str | bytes, frame: Frame, *, direction: Direction) -> Message:
    """Authenticate and decrypt a parsed frame. Raises :class:`SmsProtocolError`."""
    if frame.direction != int(direction):
        raise SmsProtocolError(
            "bad_direction", f"direction {frame.direction}, expected {int(direction)}", 1
        )
    aes_key, mac_key = derive_message_keys(key_material(key), frame.header)
    if not hmac.compare_digest(_tag(mac_key, frame.header + frame.ciphertext), frame.tag):
        raise SmsProtocolError("bad_tag")
    plaintext = _ctr(aes_key, frame.header, frame.ciphertext)
    try:
        plaintext.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SmsProtocolError("bad_utf8", str(exc), HEADER_LEN + exc.start) from None
    return Message(Direction(frame.direction), frame.counter, plaintext)


def decrypt(key: str | bytes, text: str, *, direction: Direction) -> Message:
    """Parse, authenticate and decrypt an SMS text. Raises :class:`SmsProtocolError`.

    Replay protection is the receiver's job (:class:`ReplayGuard`): this function is stateless.
    """
    return open_frame(key, parse_text(text), direction=direction)


class ReplayGuard:
    """The receiver's memory of the highest accepted counter, per key and direction.

    A counter is accepted only if it is above the last accepted one (strictly increasing,
    gaps allowed: a lost SMS must not block the channel).
    """

    def __init__(self) -> None:
        self._last: dict[tuple[bytes, int], int] = {}

    def last(self, key: str | bytes, direction: Direction) -> int:
        return self._last.get((key_material(key), int(direction)), 0)

    def check(self, key: str | bytes, message: Message) -> None:
        """Raise :class:`SmsProtocolError` ``replay`` if the counter was not fresh."""
        last = self.last(key, message.direction)
        if message.counter <= last:
            raise SmsProtocolError(
                "replay", f"counter {message.counter} <= last accepted {last}", 2
            )

    def accept(self, key: str | bytes, message: Message) -> None:
        self.check(key, message)
        self._last[(key_material(key), int(message.direction))] = message.counter


def max_plaintext_for(chars: int) -> int:
    """Largest plaintext (bytes) whose SMS text has at most ``chars`` characters."""
    frame_bytes = (chars * 6) // 8  # unpadded Base64URL: ceil(4n/3) chars for n bytes
    while frame_bytes > 0 and len(b64url_encode(bytes(frame_bytes))) > chars:
        frame_bytes -= 1
    return max(0, frame_bytes - OVERHEAD)


def text_length(plaintext_len: int) -> int:
    """Characters of the SMS text for a plaintext of ``plaintext_len`` bytes."""
    n = plaintext_len + OVERHEAD
    return (4 * n + 2) // 3
