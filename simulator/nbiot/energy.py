"""State power model of a CMi6140: energy per day and battery life from the time per state.

E = V x (I_tx t_tx + I_rx t_rx + I_conn t_conn + I_rx t_on + I_cdrx t_cdrx_sleep + I_idle t_idle
+ I_psm t_psm), where ``t_conn`` is RRC-connected time not spent sending, receiving or in
connected-mode DRX, ``t_on`` the C-DRX on-durations and ``t_cdrx_sleep`` the rest of the C-DRX
time (:class:`.network.StateTimes`). Periodic TAUs are air time like any other procedure (the
radio adds them to the state times). Defaults (RADIO §3.3):

* ``tx_ma`` 155 mA at 23 dBm, ``rx_ma`` 21 mA (80 mW at 3.8 V), idle DRX 1.56 mA, idle eDRX
  0.81 mA: Quectel BG96 values of the LENA-NB energy model ("compare Joerke") [V];
* ``connected_ma`` 48 mA: u-blox SARA-N2 average while RRC connected (inactivity timer) [V,
  secondary via Robinson 2019];
* ``psm_ua`` 8 uA: CMi6140 "power consumption sleep mode" (seed 001 §8, page 34) [V];
* ``voltage_v`` 3.6 V (lithium thionyl chloride cell) and ``battery_wh`` 5 Wh: the TR 45.820
  §5.4 battery-life evaluation battery [V, secondary];
* ``cdrx_sleep_ma`` 0.81 mA between C-DRX on-durations: BG96 "connected idle" of the
  LENA-NB energy model [V].

Cross-check (RADIO §1.1): Joerke et al. 2018 report 25 / 18 / 4 years at 144 / 154 / 164 dB for
84 B once a day; the bench computes its own figures and docs/nbiot.md compares them.
"""

from __future__ import annotations

from simulator.core.settings import setting
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
    cdrx_sleep_ma: float = setting(
        0.81,
        source="Quectel BG96 'connected idle' of the LENA-NB energy model (RADIO §3.3) [V]",
        unit="mA",
        ge=0,
        doc="current between the on-durations of connected-mode DRX",
    )
    battery_wh: float = 5.0

    def energy_j(self, times: StateTimes, *, edrx: bool) -> float:
        """Joules spent in ``times`` (see the module docstring for the formula)."""
        idle_ma = self.idle_edrx_ma if edrx else self.idle_drx_ma
        conn = max(0.0, times.connected_s - times.tx_s - times.rx_s - times.cdrx_s)
        mas = (
            times.tx_s * self.tx_ma
            + times.rx_s * self.rx_ma
            + conn * self.connected_ma
            + times.cdrx_on_s * self.rx_ma
            + (times.cdrx_s - times.cdrx_on_s) * self.cdrx_sleep_ma
            + times.idle_s * idle_ma
            + times.psm_s * self.psm_ua / 1000.0
        )
        return self.voltage_v * mas / 1000.0

    def battery_years(self, joules_per_day: float) -> float:
        """Years until ``battery_wh`` is spent at ``joules_per_day`` (no self-discharge)."""
        if joules_per_day <= 0:
            return float("inf")
        return self.battery_wh * 3600.0 / joules_per_day / 365.25
