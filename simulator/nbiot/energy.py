"""State power model of a CMi6140: energy per day and battery life from the time per state.

E = V x (I_tx t_tx + I_rx t_rx + I_conn t_conn + I_idle t_idle + I_psm t_psm) + n_TAU E_TAU,
where ``t_conn`` is RRC-connected time not spent sending or receiving. Defaults (RADIO §3.3):

* ``tx_ma`` 155 mA at 23 dBm, ``rx_ma`` 21 mA (80 mW at 3.8 V), idle DRX 1.56 mA, idle eDRX
  0.81 mA: Quectel BG96 values of the LENA-NB energy model ("compare Joerke") [V];
* ``connected_ma`` 48 mA: u-blox SARA-N2 average while RRC connected (inactivity timer) [V,
  secondary via Robinson 2019];
* ``psm_ua`` 8 uA: CMi6140 "power consumption sleep mode" (seed 001 §8, page 34) [V];
* ``voltage_v`` 3.6 V (lithium thionyl chloride cell) and ``battery_wh`` 5 Wh: the TR 45.820
  §5.4 battery-life evaluation battery [V, secondary];
* a periodic TAU costs one short connection (bench: 0.2 s TX, 1 s RX, 1 s connected).

Cross-check (RADIO §1.1): Joerke et al. 2018 report 25 / 18 / 4 years at 144 / 154 / 164 dB for
84 B once a day; the bench computes its own figures and docs/nbiot.md compares them.
"""

from __future__ import annotations

from simulator.nbiot.network import StateTimes
from simulator.scenario import StrictModel


class PowerModel(StrictModel):
    """Currents per state (mA unless named otherwise), supply voltage and battery capacity."""

    voltage_v: float = 3.6
    tx_ma: float = 155.0
    rx_ma: float = 21.0
    connected_ma: float = 48.0
    idle_drx_ma: float = 1.56
    idle_edrx_ma: float = 0.81
    psm_ua: float = 8.0
    tau_tx_s: float = 0.2
    tau_rx_s: float = 1.0
    tau_connected_s: float = 1.0
    battery_wh: float = 5.0

    def energy_j(self, times: StateTimes, *, edrx: bool) -> float:
        """Joules spent in ``times`` (see the module docstring for the formula)."""
        idle_ma = self.idle_edrx_ma if edrx else self.idle_drx_ma
        conn = max(0.0, times.connected_s - times.tx_s - times.rx_s)
        tau_mas = times.tau * (
            self.tau_tx_s * self.tx_ma
            + self.tau_rx_s * self.rx_ma
            + self.tau_connected_s * self.connected_ma
        )
        mas = (
            times.tx_s * self.tx_ma
            + times.rx_s * self.rx_ma
            + conn * self.connected_ma
            + times.idle_s * idle_ma
            + times.psm_s * self.psm_ua / 1000.0
            + tau_mas
        )
        return self.voltage_v * mas / 1000.0

    def battery_years(self, joules_per_day: float) -> float:
        """Years until ``battery_wh`` is spent at ``joules_per_day`` (no self-discharge)."""
        if joules_per_day <= 0:
            return float("inf")
        return self.battery_wh * 3600.0 / joules_per_day / 365.25
