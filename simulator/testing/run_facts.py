"""The facts of a suite run a QA record needs: rig, adapter, device under test, meterbench version.

The device's model, serial and firmware come from the rig file's ``[dut]``, or from the device
itself when the rig says how: ``[dut] identify`` is a shell command printing a JSON object with
any of ``model``, ``serial``, ``firmware`` (e.g. a script that asks the gateway's console).
A failing ``identify`` does not stop the run: the rig file's values are kept and the problem is
recorded under ``identify_error``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from typing import Any

from simulator import __version__
from simulator.rig import Rig, TransportSpec

#: How long (s) the ``identify`` command may take.
IDENTIFY_TIMEOUT_S = 30.0


def adapter(spec: TransportSpec | None) -> str:
    """The transport that reaches the DUT, e.g. ``"dut: /dev/ttyUSB0 2400 bit/s 8N1"``;
    ``"none (simulated DUT)"`` for a rig without one."""
    if spec is None:
        return "none (simulated DUT)"
    where = spec.url or (f"tcp {spec.tcp}" if spec.tcp else f"pty {spec.pty_link or ''}".strip())
    echo = ", echo" if spec.echo else ""
    return f"{spec.name}: {where} {spec.baud} bit/s 8{spec.parity}1{echo}"


def identify(rig: Rig) -> dict[str, Any]:
    """``model``/``serial``/``firmware`` and their ``source`` (``"rig file"`` or
    ``"device (identify)"``); ``identify_error`` when the rig's command failed."""
    dut = rig.dut
    out: dict[str, Any] = {
        "model": dut.model,
        "serial": dut.serial,
        "firmware": dut.firmware,
        "source": "rig file",
    }
    if not dut.identify:
        return out
    try:
        proc = subprocess.run(
            shlex.split(dut.identify),
            capture_output=True,
            text=True,
            timeout=IDENTIFY_TIMEOUT_S,
            check=True,
            cwd=rig.resolve("."),
        )
        got = json.loads(proc.stdout)
        if not isinstance(got, dict):
            raise ValueError(f"expected a JSON object, got {proc.stdout.strip()[:80]!r}")
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        out["identify_error"] = f"[dut] identify {dut.identify!r}: {exc}"
        return out
    out.update({k: str(got[k]) for k in ("model", "serial", "firmware") if k in got})
    out["source"] = "device (identify)"
    return out


def run_facts(rig: Rig) -> dict[str, Any]:
    """The record's ``run`` object: ``rig``, ``rig_path``, ``mode``, ``adapter``, ``dut``
    (:func:`identify`) and ``meterbench_version``."""
    return {
        "rig": rig.name,
        "rig_path": rig.path,
        "mode": rig.mode,
        "adapter": adapter(rig.transport("dut")),
        "dut": identify(rig),
        "meterbench_version": __version__,
    }
