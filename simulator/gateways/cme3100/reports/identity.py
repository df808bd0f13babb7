"""What a CMe3100 says about itself in its reports: serial, model, versions, MAC, name.

The HTTP ``User-Agent`` follows the form captured from a real CMe3100 (FW 1.15.0, CME3100.md
§5.2 "observed", Gaps #4): ``Model/CMe3100 Hardware/R1E Serial/0016045167
Application/1.15.0 MAC/00:D0:93:71:BD:4C``. The defaults are that capture's values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from simulator.gateways.cme3100.reports.names import TemplateError


@dataclass(frozen=True)
class GatewayIdentity:
    """``serial``: 10 digits (``0016...`` = CMe3100, CME3100.md §5.2); ``name``: the product
    name used in mail subjects and the default sender (Localisation identity, 004 §6.36)."""

    serial: str = "0016045167"
    model: str = "CMe3100"
    hardware: str = "R1E"
    application: str = "1.15.0"
    mac: str = "00:D0:93:71:BD:4C"
    name: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{8,10}", self.serial):
            raise TemplateError(f"gateway serial {self.serial!r}: 8-10 digits expected")

    @property
    def product_name(self) -> str:
        return self.name or f"{self.model}.{self.serial}"

    def user_agent(self) -> str:
        """The G1-form User-Agent (module doc)."""
        return (
            f"Model/{self.model} Hardware/{self.hardware} Serial/{self.serial} "
            f"Application/{self.application} MAC/{self.mac}"
        )
