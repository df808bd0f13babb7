"""Paging occasions of an idle NB-IoT UE: DRX, and eDRX with its paging time window (PTW).

A downlink for an idle UE waits in the core network until the UE's next paging occasion (PO);
the UE then answers the page with random access. Where the POs are (3GPP TS 36.304):

* **Frames**: a radio frame is 10 ms, the SFN counts 0..1023 (one hyperframe = 10.24 s) and
  the H-SFN counts hyperframes. The bench aligns H-SFN 0 / SFN 0 with world time 0.
* **DRX** (§7.1): paging frames are the frames with ``SFN mod T = (T div N) x (UE_ID mod N)``,
  ``N = min(T, nB)``, ``UE_ID = IMSI mod 4096`` (NB-IoT); the PO is subframe 9 of the frame
  (Ns = 1, i_s = 0, table of §7.2). ``T`` is the default paging cycle rf256 = 2.56 s (decoded
  SIB2-NB, RADIO-NBIOT §3.2); ``nB = T`` is a bench choice (one PF per UE per cycle).
* **eDRX** (§7.3): the paging hyperframe (PH) is the H-SFN with
  ``H-SFN mod T_eDRX,H = UE_ID_H mod T_eDRX,H`` (``T_eDRX,H`` = eDRX cycle in hyperframes);
  the PTW starts in the PH at ``SFN = 256 x ieDRX``, ``ieDRX = floor(UE_ID_H / T_eDRX,H) mod
  4``, and lasts the NAS-negotiated PTW length L (NB-S1: (n + 1) x 2.56 s, TS 24.008
  §10.5.5.32). Inside the PTW the UE monitors the DRX POs above; outside it sleeps
  (TS 36.300 §10.1.4: "During the PTW, the UE monitors paging for the duration of the PTW").
  ``UE_ID_H`` is the 12 most significant bits of the Hashed ID (P-RNTI on NPDCCH); the Hashed
  ID is a CRC-32 over the S-TMSI (Annex B). The S-TMSI is assigned by the MME and not modelled:
  the bench hashes a stand-in (``IMSI mod 2**32``) with :func:`zlib.crc32`, which spreads the
  PHs of a fleet uniformly but is not the Annex B bit pattern.

The formulas were cross-checked with jounikor/3gpp ``paging/paging.py`` (``gotpaged_DRX``,
``gotpaged_eDRX``).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

FRAME_MS = 10
FRAMES_PER_HYPERFRAME = 1024
PO_SUBFRAME = 9  # Ns = 1, i_s = 0 (TS 36.304 §7.2)
DEFAULT_PAGING_CYCLE_FRAMES = 256  # rf256 = 2.56 s (RADIO-NBIOT §3.2, decoded SIB2-NB)


@dataclass(frozen=True)
class PagingSchedule:
    """The POs of one UE. ``edrx_cycle_s`` None: plain DRX; else the NB-S1 eDRX cycle (s,
    20.48 .. 10485.76) with a PTW of ``ptw_s`` (s, 2.56 .. 40.96). ``drx_cycle_frames`` is T.
    Raises ``ValueError`` for a cycle that is not a whole number of hyperframes (>= 2) or a
    PTW shorter than the paging cycle T (it would hold no PO)."""

    imsi: int
    edrx_cycle_s: float | None = None
    ptw_s: float = 2.56
    drx_cycle_frames: int = DEFAULT_PAGING_CYCLE_FRAMES

    def __post_init__(self) -> None:
        if self.edrx_cycle_s is not None:
            h = self.edrx_cycle_s / 10.24
            if abs(h - round(h)) > 1e-9 or round(h) < 2:
                raise ValueError(
                    f"eDRX cycle {self.edrx_cycle_s} s is not a whole number (>= 2) of "
                    "10.24 s hyperframes (TS 24.008 NB-S1 values)"
                )
        if self.edrx_cycle_s is not None and round(self.ptw_s * 100) < self.drx_cycle_frames:
            raise ValueError(
                f"paging time window {self.ptw_s} s is shorter than the paging cycle "
                f"{self.drx_cycle_frames * FRAME_MS / 1000:g} s: it would hold no paging occasion"
            )

    # -- identities (TS 36.304 §7.1, §7.3) ------------------------------------------------------
    @property
    def ue_id(self) -> int:
        return self.imsi % 4096

    @property
    def ue_id_h(self) -> int:
        """12 most significant bits of the (stand-in) Hashed ID."""
        return zlib.crc32((self.imsi % 2**32).to_bytes(4, "big")) >> 20

    @property
    def t_edrx_h(self) -> int:
        """The eDRX cycle in hyperframes (``T_eDRX,H``)."""
        assert self.edrx_cycle_s is not None
        return round(self.edrx_cycle_s / 10.24)

    @property
    def paging_frame_offset(self) -> int:
        """``SFN mod T`` of the UE's paging frames (nB = T, so N = T)."""
        n = self.drx_cycle_frames
        return (self.drx_cycle_frames // n) * (self.ue_id % n)

    def ptw_start_frame(self, cycle_index: int) -> int:
        """Absolute frame number where the PTW of eDRX cycle ``cycle_index`` starts."""
        th = self.t_edrx_h
        ph = (self.ue_id_h % th) + cycle_index * th  # H-SFN of the paging hyperframe
        i_edrx = (self.ue_id_h // th) % 4
        return ph * FRAMES_PER_HYPERFRAME + 256 * i_edrx

    @property
    def ptw_frames(self) -> int:
        return round(self.ptw_s * 100)

    # -- occasions ----------------------------------------------------------------------------
    def _first_pf_at_or_after(self, frame: int) -> int:
        t, r = self.drx_cycle_frames, self.paging_frame_offset
        return frame + (r - frame) % t

    def next_occasion(self, t: float) -> float:
        """World time (s) of the first PO at or after ``t`` (s)."""
        # First frame whose PO subframe is not before t (integer ms avoids float drift).
        t_ms = math.ceil(t * 1000 - 1e-6)
        frame = max(0, math.ceil((t_ms - PO_SUBFRAME) / FRAME_MS))
        if self.edrx_cycle_s is None:
            pf = self._first_pf_at_or_after(frame)
            return (pf * FRAME_MS + PO_SUBFRAME) / 1000.0
        cycle = self.t_edrx_h * FRAMES_PER_HYPERFRAME
        k = (frame - self.ptw_start_frame(0)) // cycle
        for index in (k, k + 1, k + 2):
            start = self.ptw_start_frame(index)
            pf = self._first_pf_at_or_after(max(frame, start))
            if pf < start + self.ptw_frames:
                return (pf * FRAME_MS + PO_SUBFRAME) / 1000.0
        raise AssertionError("a PTW holds at least one paging frame")  # pragma: no cover

    def occasions(self, start: float, end: float) -> list[float]:
        """All PO times (s) in [start, end)."""
        out = []
        t = self.next_occasion(start)
        while t < end:
            out.append(t)
            t = self.next_occasion(t + 0.001)
        return out
