"""Same scenario and seed, byte-identical results, whatever the interpreter's hash seed.

The in-process "same seed, same trace" tests of each runner cannot see an order that comes
from iterating a set or dict of strings: Python salts ``hash(str)`` per process
(PYTHONHASHSEED), so such an order is stable inside one process and differs between two.
Here each shipped scenario kind runs as two ``meterbench run`` processes with different hash
seeds, shortened to a few simulated hours, and every result file except the summary (which
holds the wall time) and the plots must be byte-identical.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fixtures" / "scenarios"
NOT_COMPARED = {"summary.json", "report.html"}  # both show wall_seconds, which differs
# from run to run by design

# (shipped scenario, text replacements that shrink it, simulated hours)
CASES = {
    "mbus": ("mbus-small.toml", {}, 1),
    "stream": ("stream-small.toml", {"[report]\n": "[report]\nplots = false\n"}, 0.25),
    "cme2100": ("cme2100-small.toml", {}, 2),
    "nbiot": ("nbiot-fleet.toml", {"modules = 2000": "modules = 40", "plots = true": ""}, 25),
}


def _start(scenario: Path, out: Path, hours: float, hash_seed: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "run", str(scenario), "--out", str(out)]
        + ["--hours", str(hours), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _compared(out: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(out.iterdir())
        if p.is_file() and p.name not in NOT_COMPARED and p.suffix != ".png"
    }


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(CASES))
def test_results_do_not_depend_on_the_hash_seed(kind, tmp_path):
    name, replacements, hours = CASES[kind]
    scenario = SCENARIOS / name  # as shipped where it can be (its relative paths resolve)
    if replacements:
        text = scenario.read_text(encoding="utf-8")
        for old, new in replacements.items():
            assert old in text, f"{name} no longer contains {old!r}: update this test"
            text = text.replace(old, new)
        scenario = tmp_path / name
        scenario.write_text(text, encoding="utf-8")
    runs = {seed: _start(scenario, tmp_path / f"hash-{seed}", hours, seed) for seed in ("1", "2")}
    for proc in runs.values():  # the two processes run side by side
        _, err = proc.communicate(timeout=110)
        assert proc.returncode == 0, err
    a, b = (_compared(tmp_path / f"hash-{seed}") for seed in runs)
    assert "trace.jsonl" in a and len(a["trace.jsonl"]) > 1000
    assert sorted(a) == sorted(b)
    for file_name in a:
        assert a[file_name] == b[file_name], f"{kind}: {file_name} differs between hash seeds"
