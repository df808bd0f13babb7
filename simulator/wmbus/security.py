"""OMS / EN 13757 security for wireless telegrams, on top of ``cryptography``.

* **Mode 5** (security profile A): AES-128-CBC, IV = ``M(2) A(6) ACC x 8``; the first N x 16
  bytes after the TPL header are encrypted (N from the config field); the plaintext starts with
  ``2F 2F``, which is the key check (PROTOCOL.md §5.4, W2 ``decrypt_TPL_AES_CBC_IV``).
* **Mode 7** (security profile B): ephemeral keys ``Kenc``/``Kmac`` = AES-CMAC(K, 00/01 |
  MCR(4, LE) | ID(4) | 07 x 7); the AFL MAC = AES-CMAC(Kmac, MCL | MCR | [ML] | TPL CI .. end)
  truncated, checked before decrypting; AES-128-CBC with a zero IV (PROTOCOL.md §5.5).
* **ELL AES-128-CTR** (C1 meters): initial counter ``M A CC&~0x12 SN(4) 00 00 00``; the first
  two plaintext bytes are the CRC-16/EN-13757 (LE) of the rest (PROTOCOL.md §5.6).

A wrong key is always detected (``2F 2F``, MAC or payload CRC) and raised as
:class:`~simulator.wmbus.frame.WrongKeyError`; garbage plaintext is never returned.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from simulator.wmbus.crc import crc16_en13757
from simulator.wmbus.frame import SecurityError, WrongKeyError

FILLER = 0x2F
KDF_ENC_FROM_METER = 0x00
KDF_MAC_FROM_METER = 0x01
KDF_ENC_TO_METER = 0x10
KDF_MAC_TO_METER = 0x11


def check_key(key: bytes) -> bytes:
    """Return ``key`` as bytes; :class:`SecurityError` unless it is 16 bytes (AES-128)."""
    if not isinstance(key, bytes | bytearray | memoryview) or len(key) != 16:
        n = len(key) if isinstance(key, bytes | bytearray | memoryview) else type(key).__name__
        raise SecurityError(f"an AES-128 key is 16 bytes, got {n}")
    return bytes(key)


def _cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(check_key(key)), modes.CBC(iv))
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


def pad_filler(plain: bytes) -> bytes:
    """Pad with ``2F`` fillers to a multiple of 16 bytes (PROTOCOL.md §5.4)."""
    return plain + bytes([FILLER]) * (-len(plain) % 16)


# --- mode 5 -------------------------------------------------------------------------------


def mode5_iv(address: bytes, access_no: int) -> bytes:
    """IV = M(2) + A(6) as on air + access number x 8. ``address`` is the 8 bytes M A."""
    if len(address) != 8:
        raise SecurityError(f"mode 5 IV needs the 8 bytes M(2) A(6), got {len(address)}")
    return bytes(address) + bytes([access_no & 0xFF]) * 8


def mode5_encrypt(key: bytes, address: bytes, access_no: int, plain: bytes) -> bytes:
    """Encrypt ``plain`` (must start with ``2F 2F``; padded with 2F to 16-byte blocks)."""
    if plain[:2] != b"\x2f\x2f":
        raise SecurityError("mode 5 plaintext must start with 2F 2F (the decryption check)")
    return _cbc(key, mode5_iv(address, access_no), pad_filler(plain), encrypt=True)


def mode5_decrypt(
    key: bytes, address: bytes, access_no: int, cipher: bytes, offset: int | None = None
) -> bytes:
    """Decrypt N x 16 bytes; raises :class:`WrongKeyError` if the result lacks ``2F 2F``."""
    if len(cipher) % 16 or not cipher:
        raise SecurityError(f"mode 5 ciphertext must be N x 16 bytes, got {len(cipher)}", offset)
    plain = _cbc(key, mode5_iv(address, access_no), cipher, encrypt=False)
    if plain[:2] != b"\x2f\x2f":
        raise WrongKeyError("mode 5: decrypted data does not start with 2F 2F (wrong key?)", offset)
    return plain


# --- mode 7 -------------------------------------------------------------------------------


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (RFC 4493) of ``data``, 16 bytes."""
    c = CMAC(algorithms.AES(check_key(key)))
    c.update(bytes(data))
    return c.finalize()


def mode7_derive(key: bytes, constant: int, mcr: int, meter_id: bytes) -> bytes:
    """Ephemeral key: AES-CMAC(K, constant | MCR(4, LE) | ID(4, as on air) | 07 x 7).

    ``constant`` 0x00 Kenc / 0x01 Kmac from the meter, 0x10 / 0x11 towards it (KDF-A, OMS).
    """
    if len(meter_id) != 4:
        raise SecurityError(f"mode 7 key derivation needs the 4 ID bytes, got {len(meter_id)}")
    msg = bytes([constant]) + (mcr & 0xFFFFFFFF).to_bytes(4, "little") + bytes(meter_id)
    return aes_cmac(key, msg + b"\x07" * 7)


def mode7_mac(
    kmac: bytes, mcl: int, mcr: int, ml: int | None, tpl_onwards: bytes, length: int = 8
) -> bytes:
    """AFL MAC: AES-CMAC(Kmac, MCL | MCR(4, LE) | [ML(2, LE)] | TPL CI .. end)[:length]."""
    msg = bytes([mcl]) + (mcr & 0xFFFFFFFF).to_bytes(4, "little")
    if ml is not None:
        msg += ml.to_bytes(2, "little")
    return aes_cmac(kmac, msg + bytes(tpl_onwards))[:length]


def mode7_encrypt(kenc: bytes, plain: bytes) -> bytes:
    """AES-128-CBC with a zero IV over ``plain`` padded with 2F (must start with 2F 2F)."""
    if plain[:2] != b"\x2f\x2f":
        raise SecurityError("mode 7 plaintext must start with 2F 2F (the decryption check)")
    return _cbc(kenc, bytes(16), pad_filler(plain), encrypt=True)


def mode7_decrypt(kenc: bytes, cipher: bytes, offset: int | None = None) -> bytes:
    """Decrypt; :class:`WrongKeyError` if the plaintext lacks ``2F 2F``."""
    if len(cipher) % 16 or not cipher:
        raise SecurityError(f"mode 7 ciphertext must be N x 16 bytes, got {len(cipher)}", offset)
    plain = _cbc(kenc, bytes(16), cipher, encrypt=False)
    if plain[:2] != b"\x2f\x2f":
        raise WrongKeyError("mode 7: decrypted data does not start with 2F 2F (wrong key?)", offset)
    return plain


# --- ELL AES-CTR --------------------------------------------------------------------------


def ell_counter(address: bytes, cc: int, sn: int) -> bytes:
    """Initial counter block: M(2) A(6) | CC & ~0x12 | SN(4, LE) | FN 00 00 | BC 00."""
    if len(address) != 8:
        raise SecurityError(f"ELL counter needs the 8 bytes M(2) A(6), got {len(address)}")
    return (
        bytes(address)
        + bytes([cc & ~0x12 & 0xFF])
        + (sn & 0xFFFFFFFF).to_bytes(4, "little")
        + b"\x00\x00\x00"
    )


def _ctr(key: bytes, counter: bytes, data: bytes) -> bytes:
    op = Cipher(algorithms.AES(check_key(key)), modes.CTR(counter)).encryptor()
    return op.update(bytes(data)) + op.finalize()


def ell_encrypt(key: bytes, address: bytes, cc: int, sn: int, payload: bytes) -> bytes:
    """Prefix ``payload`` with its CRC (LE) and encrypt both with AES-128-CTR."""
    plain = crc16_en13757(payload).to_bytes(2, "little") + bytes(payload)
    return _ctr(key, ell_counter(address, cc, sn), plain)


def ell_decrypt(
    key: bytes, address: bytes, cc: int, sn: int, cipher: bytes, offset: int | None = None
) -> tuple[int, bytes]:
    """Decrypt; returns ``(payload_crc, payload)``. :class:`WrongKeyError` if the payload CRC
    does not match (the only check CTR mode offers)."""
    if len(cipher) < 2:
        raise SecurityError("ELL encrypted part needs at least the 2-byte payload CRC", offset)
    plain = _ctr(key, ell_counter(address, cc, sn), cipher)
    got = int.from_bytes(plain[:2], "little")
    want = crc16_en13757(plain[2:])
    if got != want:
        raise WrongKeyError(
            f"ELL AES-CTR: payload CRC {got:04X} != computed {want:04X} (wrong key?)", offset
        )
    return got, plain[2:]
