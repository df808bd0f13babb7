"""The master's time and retry settings (CMe3100 "M-Bus time and retry settings").

Seed 002 §6.25.2, Table 7; default values from the screenshots of seed 004 §6.25.2/§6.25.3:

===================  ========  ====================================================================
setting              default   meaning in this model
===================  ========  ====================================================================
response_timeout     1.0 s     wait for the first start bit of a reply after a request ends
readout_retries      1         extra REQ_UD2 attempts per telegram (same FCB) before a readout fails
selection_retries    1         extra selection attempts (CI 52) when nothing answers
init_idle            10.0 s    from the end of a SND_NKE to the next request
collision_idle       5.0 s     from the end of a reception with a detected collision to the next request
request_idle         2.0 s     from the end of the last reception (or timeout) to the next request
multi_telegram       False     "Off" in the manual: read the first telegram only
max_telegrams        0         multi-telegram read limit, 0 = automatic (until no DIF 1F, capped at 64)
===================  ========  ====================================================================

The manual's advanced multi-telegram set (1500 ms / 3 / 2 / 10000 ms / 3500 ms / 1000 ms)
is :meth:`MasterSettings.multi_telegram_defaults`: the same six knobs, with multi-telegram on.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Upper bound of telegrams in "automatic" multi-telegram mode (a runaway slave guard).
AUTO_TELEGRAM_CAP = 64
#: Values of :attr:`MasterSettings.f_nibble_search`.
F_NIBBLE_MODES = ("off", "unexplained", "always")


@dataclass
class MasterSettings:
    """The CMe3100 M-Bus time and retry settings (seed 002 §6.25.2; values seed 004). Times in s.

    Raises ``ValueError`` for an unknown ``f_nibble_search`` mode.
    """

    response_timeout: float = 1.0
    readout_retries: int = 1
    selection_retries: int = 1
    init_idle: float = 10.0
    collision_idle: float = 5.0
    request_idle: float = 2.0
    multi_telegram: bool = False
    max_telegrams: int = 0
    #: SND_NKE to the meter's primary address before a primary readout (then init_idle).
    send_nke: bool = True
    #: Step hex nibbles 0-F in manufacturer/version/medium positions of a secondary search
    #: (False reproduces libmbus, which steps 0-9 everywhere).
    hex_search: bool = True
    #: How the search finds meters with an F nibble in a hex position, which no probe 0-E
    #: selects (F in a mask is the wildcard): ``"off"``; ``"unexplained"`` (continue the
    #: descent with F kept at that position when fewer than two found meters explain the
    #: parent's collision: costs probes only when such a meter surely exists); ``"always"``
    #: (continue at every colliding hex node: also finds F meters hidden behind two found
    #: siblings, at up to 15 probes per remaining position). docs/mbus.md "F nibbles".
    f_nibble_search: str = "unexplained"
    #: End a multi-telegram readout at a telegram that repeats an earlier one but for its
    #: access number (the meter starts over, or repeats one telegram despite DIF 1F); the
    #: recorder's rule, off for the gateway model.
    stop_on_repeat: bool = False

    def __post_init__(self) -> None:
        if self.f_nibble_search not in F_NIBBLE_MODES:
            raise ValueError(
                f"f_nibble_search must be one of {F_NIBBLE_MODES}, got {self.f_nibble_search!r}"
            )

    @classmethod
    def multi_telegram_defaults(cls) -> MasterSettings:
        """The manual's advanced multi-telegram defaults: 1500 ms, 3, 2, 10000, 3500, 1000 ms."""
        return cls(
            response_timeout=1.5,
            readout_retries=3,
            selection_retries=2,
            init_idle=10.0,
            collision_idle=3.5,
            request_idle=1.0,
            multi_telegram=True,
            max_telegrams=0,
        )

    @property
    def telegram_limit(self) -> int:
        if not self.multi_telegram:
            return 1
        return self.max_telegrams if self.max_telegrams > 0 else AUTO_TELEGRAM_CAP
