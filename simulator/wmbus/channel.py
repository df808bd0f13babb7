"""868 MHz radio channel: log-distance path loss, shadowing, fading and building entry loss.

The received power of one telegram at one receiver is::

    RSSI = P_tx - PL(d) - L_building(indoor, floor) - X_link + F_packet          (dBm)
    PL(d) = PL0 + 10 n log10(d / d0)                                             (dB)

``X_link`` is log-normal shadowing (a normal variate in dB, standard deviation ``sigma_db``)
drawn once per meter-receiver link and kept for the whole run (the obstacles do not move);
``F_packet`` is a per-telegram fading term (normal in dB, ``fading_sigma_db``), drawn anew
for every telegram at every receiver.

Presets carry published parameters (RADIO-NBIOT.md §6.1); see :data:`PRESETS`. Building entry
loss follows RADIO-NBIOT.md §6.2: 15 dB at ground floor (Elgannas & Kostanic, WCECS 2014),
about 2 dB less per floor above ground (Turkmani, Liverpool), and a bench assumption of 7 dB
more per basement level (midpoint of the 2-12 dB extra error Thrane et al., arXiv 2006.00880,
report at levels -1/-2; not a published loss figure).

Everything here is vectorised over NumPy arrays and is pure: no randomness is drawn in this
module except through the generators passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class PathLossModel:
    """Log-distance path loss ``PL(d) = pl0_db + 10 n log10(d / d0_m)`` with shadowing.

    ``sigma_db`` is the log-normal shadowing standard deviation (dB) per link; ``source``
    names the publication the numbers come from.
    """

    name: str
    pl0_db: float
    d0_m: float
    n: float
    sigma_db: float
    source: str

    def path_loss_db(self, distance_m: np.ndarray | float) -> np.ndarray:
        """Median path loss (dB) at ``distance_m`` (m); distances below 1 m are taken as 1 m."""
        d = np.maximum(np.asarray(distance_m, dtype=float), 1.0)
        return self.pl0_db + 10.0 * self.n * np.log10(d / self.d0_m)

    def range_m(self, budget_db: float) -> float:
        """Distance (m) at which the median path loss equals ``budget_db`` (dB)."""
        return float(self.d0_m * 10.0 ** ((budget_db - self.pl0_db) / (10.0 * self.n)))


#: Published log-distance parameters at 868 MHz (RADIO-NBIOT.md §6.1).
PRESETS: dict[str, PathLossModel] = {
    "oulu": PathLossModel(
        "oulu",
        128.95,
        1000.0,
        2.32,
        7.8,
        "Petäjäjärvi et al., ITST 2015 (FLoRa LoRaPathLossOulu.ned)",
    ),
    # The notebook gives no sigma for Dortmund; the Oulu value (same band, urban) is used.
    "dortmund": PathLossModel(
        "dortmund",
        132.25,
        1000.0,
        2.65,
        7.8,
        "Jörke et al., PIMRC 2017 (lora-bonn analyze.ipynb ldpl_dortmund); sigma from Oulu",
    ),
    "lorasim": PathLossModel(
        "lorasim",
        127.41,
        40.0,
        2.08,
        3.57,
        "Bor et al., MSWiM 2016 (LoRaSim Lpld0=127.41, d0=40 m, gamma=2.08, sigma=3.57)",
    ),
}

#: Ground-floor building entry loss (dB), Elgannas & Kostanic 2014 (RADIO-NBIOT.md §6.2).
BUILDING_ENTRY_DB = 15.0
#: Loss change per floor above ground (dB), Turkmani (RADIO-NBIOT.md §6.2).
PER_FLOOR_DB = -2.0
#: Extra loss per basement level (dB): bench assumption, see the module docstring.
PER_BASEMENT_DB = 7.0


def building_loss_db(
    indoor: np.ndarray | bool, floor: np.ndarray | int, entry_db: float = BUILDING_ENTRY_DB
) -> np.ndarray:
    """Building entry loss (dB) for meters ``indoor`` on ``floor`` (0 = ground, -1 basement).

    ``entry_db`` is the ground-floor loss (dB; default :data:`BUILDING_ENTRY_DB`). Outdoor
    meters get 0 dB; the loss never goes below 0 dB on high floors.
    """
    indoor = np.asarray(indoor, dtype=bool)
    floor = np.asarray(floor, dtype=float)
    above = np.maximum(floor, 0.0) * PER_FLOOR_DB
    below = np.maximum(-floor, 0.0) * PER_BASEMENT_DB
    return np.where(indoor, np.maximum(entry_db + above + below, 0.0), 0.0)


@dataclass(frozen=True)
class Channel:
    """A path loss model plus per-packet fading (``fading_sigma_db``, dB, normal in dB).

    ``fading_sigma_db`` is a bench choice (default 3 dB), not a published figure: it makes
    repeated telegrams on a marginal link succeed sometimes, which is what the Stream Plugin
    manual's §3.4 (range vs resolution) describes. ``building_entry_db`` is the ground-floor
    building entry loss (dB), a study parameter (default :data:`BUILDING_ENTRY_DB`).
    """

    model: PathLossModel
    fading_sigma_db: float = 3.0
    building_entry_db: float = BUILDING_ENTRY_DB

    @classmethod
    def preset(
        cls,
        name: str,
        *,
        sigma_db: float | None = None,
        fading_sigma_db: float = 3.0,
        building_entry_db: float = BUILDING_ENTRY_DB,
    ) -> Channel:
        """The named preset (``oulu``, ``dortmund``, ``lorasim``); KeyError lists the names."""
        try:
            model = PRESETS[name]
        except KeyError:
            raise KeyError(f"unknown path loss preset {name!r}; one of {sorted(PRESETS)}") from None
        if sigma_db is not None:
            model = replace(model, sigma_db=float(sigma_db))
        return cls(model, float(fading_sigma_db), float(building_entry_db))

    def mean_rssi_dbm(
        self,
        tx_power_dbm: np.ndarray,
        distance_m: np.ndarray,
        indoor: np.ndarray,
        floor: np.ndarray,
        shadowing_db: np.ndarray,
    ) -> np.ndarray:
        """Link RSSI (dBm) without per-packet fading; arrays broadcast together."""
        return (
            np.asarray(tx_power_dbm, dtype=float)
            - self.model.path_loss_db(distance_m)
            - building_loss_db(indoor, floor, self.building_entry_db)
            - np.asarray(shadowing_db, dtype=float)
        )
