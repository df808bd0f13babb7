"""Regression tracking (issue 15): normalised bench figures, `meterbench bench compare` on
synthetic result files (one must fail), the history plot, the README table generated from a
saved run, and the calibration that benches/conftest.py writes into a real pytest-benchmark
JSON file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.report.bench_history import plot, results_in
from simulator.report.benchmarks import (
    README_BEGIN,
    README_END,
    BenchFileError,
    compare,
    load,
    source_of,
    table,
    with_table,
)

ROOT = Path(__file__).resolve().parents[1]


def result_file(
    path: Path, means: dict[str, float], calibration: float = 0.1, commit: str = "abc123"
) -> Path:
    """A pytest-benchmark JSON file as benches/conftest.py leaves it."""
    benches = [
        {
            "name": name.split("::")[-1],
            "fullname": name,
            "stats": {"mean": mean * 1.1, "min": mean},
            "extra_info": {
                "us_per_event": mean * 1e3,
                "calibration_s": calibration,
                "normalised": mean / calibration,
            },
        }
        for name, mean in means.items()
    ]
    data = {
        "machine_info": {"python_implementation": "CPython", "python_version": "3.11.7"},
        "commit_info": {"id": commit, "time": f"2026-12-0{len(commit) % 9 + 1}T10:00:00"},
        "benchmarks": benches,
        "datetime": "2026-12-03T10:00:00",
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


A, B = "benches/bench_a.py::test_a", "benches/bench_b.py::test_b"


def test_a_regression_over_20_percent_fails_and_under_passes(tmp_path, capsys):
    base = result_file(tmp_path / "base.json", {A: 0.010, B: 0.020})
    ok = result_file(tmp_path / "ok.json", {A: 0.0119, B: 0.015})  # +19 %, -25 %
    bad = result_file(tmp_path / "bad.json", {A: 0.0125, B: 0.020})  # +25 %
    assert main(["bench", "compare", str(base), str(ok)]) == 0
    assert main(["bench", "compare", str(base), str(bad)]) == 1
    out = capsys.readouterr()
    assert "REGRESSION" in out.out and "1 regression(s) over 20%" in out.err
    assert main(["bench", "compare", str(base), str(bad), "--threshold", "0.3"]) == 0


def test_a_slower_machine_is_not_a_regression(tmp_path):
    base = result_file(tmp_path / "base.json", {A: 0.010})
    slow = result_file(tmp_path / "slow.json", {A: 0.030}, calibration=0.3)  # all 3x slower
    faster_code = result_file(tmp_path / "fast.json", {A: 0.030}, calibration=0.1)
    assert main(["bench", "compare", str(base), str(slow)]) == 0
    assert main(["bench", "compare", str(base), str(faster_code)]) == 1


def test_benches_in_one_file_only_are_listed_not_failed(tmp_path):
    base = result_file(tmp_path / "base.json", {A: 0.010})
    new = result_file(tmp_path / "new.json", {B: 0.5})
    cmp = compare(load(base), load(new))
    assert cmp.regressions == [] and cmp.only_baseline == [A] and cmp.only_new == [B]
    assert any("only in the baseline" in line for line in cmp.lines())


def test_compare_takes_the_newest_file_of_a_folder(tmp_path):
    import os

    base = result_file(tmp_path / "base.json", {A: 0.010})
    runs = tmp_path / "results"
    runs.mkdir()
    old = result_file(runs / "c1.json", {A: 0.050})
    new = result_file(runs / "c2.json", {A: 0.010})
    os.utime(old, (1, 1))
    os.utime(new, (2, 2))
    assert main(["bench", "compare", str(base), str(runs)]) == 0
    os.utime(old, (3, 3))
    assert main(["bench", "compare", str(base), str(runs)]) == 1


def test_a_file_without_calibration_is_refused(tmp_path, capsys):
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"benchmarks": [{"fullname": A, "stats": {"mean": 1.0}}]}))
    with pytest.raises(BenchFileError, match="no extra_info.normalised"):
        load(raw)
    base = result_file(tmp_path / "base.json", {A: 0.010})
    assert main(["bench", "compare", str(base), str(raw)]) == 2
    assert main(["bench", "compare", str(base), str(tmp_path / "missing.json")]) == 2
    assert "not a pytest-benchmark JSON file" in capsys.readouterr().err


def test_history_plots_every_saved_result(tmp_path):
    runs = tmp_path / "results"
    runs.mkdir()
    result_file(runs / "1.json", {A: 0.010, B: 0.02}, commit="c1")
    result_file(runs / "2.json", {A: 0.013, B: 0.02}, commit="c22")
    results = results_in(runs)
    assert [r.commit for r in results] == ["c1", "c22"]  # commit time order
    png = plot(results, tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["bench", "history", "--results", str(runs), "--out", str(tmp_path / "k.png")]) == 0
    with pytest.raises(ValueError, match="no benchmark"):
        plot(results, tmp_path / "x.png", match="nothing")


def test_readme_table_is_written_between_the_markers_and_checked(tmp_path):
    res = result_file(tmp_path / "r.json", {A: 0.010, B: 0.002})
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{README_BEGIN}\nhand typed\n{README_END}\nrest\n")
    args = ["bench", "readme", str(res), "--readme", str(readme)]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    text = readme.read_text()
    assert main([*args, "--check"]) == 0
    assert "hand typed" not in text and text.endswith(f"{README_END}\nrest\n")
    assert "| `bench_a.py::test_a` | 11.000 ms | 0.100 | us_per_event 10 |" in text
    assert source_of(text) == str(res)
    assert with_table(text, table(load(res), str(res))) == text


def test_the_shipped_readme_table_comes_from_the_saved_run_it_names():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    source = source_of(text)
    assert (ROOT / source).exists(), f"README table names {source}, which is not in the repo"
    expected = with_table(text, table(load(ROOT / source), source))
    assert text == expected, f"regenerate: meterbench bench readme {source}"


def test_conftest_writes_calibration_and_normalised_figures(tmp_path):
    out = tmp_path / "run.json"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "benches" / "bench_trace.py"),
        "-k",
        "serialise",
        "--benchmark-only",
        "--benchmark-min-rounds=2",
        "--benchmark-max-time=0.05",
        f"--benchmark-json={out}",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text())
    (bench,) = data["benchmarks"]
    assert "data" not in bench["stats"]  # per-round samples dropped: files stay small
    cal = bench["extra_info"]["calibration_s"]
    assert 0 < cal == pytest.approx(data["machine_info"]["calibration_s"], rel=1e-3)
    assert bench["extra_info"]["normalised"] == pytest.approx(bench["stats"]["min"] / cal, 1e-3)
    (fig,) = load(out).figures.values()
    assert fig.extra["us_per_event"] > 0 and "calibration_s" not in fig.extra
