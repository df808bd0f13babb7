"""The bench's command sender: encrypts commands for a CMe2100 and decrypts its responses.

This is the "separate system" seed 000 says a real installation needs ("a separate system is
required to encrypt outgoing SMS commands and decrypt incoming SMS responses"). It keeps the
head-end's side of protocol v1 state: the current communication key, the next command counter
and the last accepted response counter (replay protection), per key.

The same sender drives the simulated gateway (texts handed to
:meth:`~simulator.gateways.cme2100.gateway.Cme2100.receive`) and a physical one through a GSM
modem (:class:`~simulator.gateways.cme2100.modem.GsmModem`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.gateways.cme2100.protocol import (
    COUNTER_MAX,
    Direction,
    ReplayGuard,
    check_key_text,
    decrypt,
    encrypt,
)

PASSWORD_KEY = "common.security.product.communication.password"


@dataclass
class CommandSender:
    """Head-end side of the SMS channel.

    ``key``: the 16-character key commands are encrypted with (the factory communication key
    at first); ``next_counter``: the counter of the next command (1 for a fresh key).
    """

    key: str
    next_counter: int = 1
    guard: ReplayGuard = field(default_factory=ReplayGuard)
    _counters: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_key_text(self.key)

    def encrypt_command(self, command: str) -> str:
        """The SMS text for ``command`` under the current key; advances the counter.

        Raises ``ValueError`` when the key's counter space (2**32-1 messages) is used up.
        """
        if self.next_counter > COUNTER_MAX:
            raise ValueError("message counter exhausted: set a new communication password")
        text = encrypt(self.key, command, counter=self.next_counter, direction=Direction.COMMAND)
        self.next_counter += 1
        return text

    def decrypt_response(self, text: str, *, key: str | None = None) -> str:
        """The plaintext of a gateway response.

        Tries ``key`` (default: the current key). Raises
        :class:`~simulator.gateways.cme2100.protocol.SmsProtocolError` for any malformed,
        unauthentic or replayed response.
        """
        use = key or self.key
        message = decrypt(use, text, direction=Direction.RESPONSE)
        self.guard.accept(use, message)
        return message.text

    def password_command(self, new_password: str) -> str:
        """The plaintext command that sets the 16-character communication password."""
        return f"{PASSWORD_KEY}={new_password}"

    def switch_key(self, new_key: str) -> None:
        """Use ``new_key`` from now on (after the gateway confirmed the password change).

        Counters are per key: a key used before resumes after its last counter.
        """
        check_key_text(new_key)
        self._counters[self.key] = self.next_counter
        self.key = new_key
        self.next_counter = self._counters.get(new_key, 1)
