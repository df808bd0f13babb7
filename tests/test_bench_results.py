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
    blocks,
    compare,
    load,
    pages_with_tables,
    source_of,
    table,
    with_tables,
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
    before = readme.read_bytes()
    assert main([*args, "--check"]) == 1
    assert readme.read_bytes() == before  # --check writes nothing
    assert main(args) == 0
    text = readme.read_text()
    assert main([*args, "--check"]) == 0
    assert "hand typed" not in text and text.endswith(f"{README_END}\nrest\n")
    assert "| `bench_a.py::test_a` | 11.000 ms | 0.100 | us_per_event 10 |" in text
    assert source_of(text) == str(res)
    assert with_tables(text, load(res), str(res)) == text


def test_a_docs_page_gets_the_benchmarks_its_markers_name(tmp_path, monkeypatch):
    """`bench readme` fills README.md (every benchmark) and each docs page's blocks (those
    whose name has the marker's text), several blocks per page; --check names stale pages."""
    res = result_file(tmp_path / "r.json", {A: 0.010, B: 0.002})
    (tmp_path / "docs").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{README_BEGIN}\nold\n{README_END}\n")
    page = tmp_path / "docs" / "bus.md"
    page.write_text(
        "# bus\n<!-- bench:begin bench_b.py -->\nhand typed 3x off\n<!-- bench:end -->\n"
        "text between\n<!-- bench:begin bench_a.py::test_a -->\n<!-- bench:end -->\nend\n"
    )
    (tmp_path / "docs" / "plain.md").write_text("# no tables here\n")
    monkeypatch.chdir(tmp_path)
    assert pages_with_tables(tmp_path) == [readme, page]
    before = page.read_bytes()
    assert main(["bench", "readme", "r.json", "--check"]) == 1
    assert page.read_bytes() == before
    assert main(["bench", "readme", "r.json"]) == 0
    assert main(["bench", "readme", "r.json", "--check"]) == 0
    text = page.read_text()
    first, second = (text[a:b] for a, b, _ in blocks(text))
    assert "`bench_b.py::test_b`" in first and "bench_a" not in first
    assert "`bench_a.py::test_a`" in second and "bench_b" not in second
    assert "hand typed" not in text and "text between" in text and text.endswith("end\n")
    assert "bench_a" in readme.read_text() and "bench_b" in readme.read_text()
    assert source_of(text) == "r.json"
    assert with_tables(text, load(res), "r.json") == text


@pytest.mark.parametrize(
    "text, error",
    [
        ("a\n<!-- bench:begin x -->\nno end\n", "line 2: bench block without"),
        ("a\nb\n<!-- bench:end -->\n", "line 3: <!-- bench:end --> without a begin"),
        (
            "<!-- bench:begin a -->\n<!-- bench:begin b -->\n<!-- bench:end -->\n",
            "line 1: bench block without",
        ),
        (
            "x\n<!-- bench:end -->\n<!-- bench:begin a -->\nold\n<!-- bench:end -->\n",
            "line 2: <!-- bench:end --> without a begin",
        ),
    ],
)
def test_unbalanced_markers_name_their_line(text, error):
    with pytest.raises(ValueError, match=error):
        blocks(text)


def test_a_marker_no_benchmark_matches_is_an_error(tmp_path, capsys, monkeypatch):
    res = result_file(tmp_path / "r.json", {A: 0.010})
    page = tmp_path / "p.md"
    page.write_text("<!-- bench:begin bench_renamed.py -->\n<!-- bench:end -->\n")
    assert main(["bench", "readme", str(res), "--readme", str(page)]) == 2
    assert "'bench_renamed.py'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no benchmark"):
        table(load(res), "r.json", "bench_renamed.py")


@pytest.mark.parametrize("page", [p.relative_to(ROOT).as_posix() for p in pages_with_tables(ROOT)])
def test_the_shipped_tables_come_from_the_saved_run_they_name(page):
    """README.md and the docs pages: every figure table is generated from a committed result
    (docs/benchmarks.md), never typed by hand."""
    text = (ROOT / page).read_text(encoding="utf-8")
    source = source_of(text)
    assert (ROOT / source).exists(), f"{page} names {source}, which is not in the repo"
    expected = with_tables(text, load(ROOT / source), source)
    assert text == expected, f"regenerate: meterbench bench readme {source}"


def test_the_readme_has_the_whole_table():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [match for _, _, match in blocks(text)] == [""]  # every benchmark


def test_source_of_needs_every_block_to_name_one_file():
    named = (
        "<!-- bench:begin -->\nGenerated by `meterbench bench readme {}` (x)\n<!-- bench:end -->\n"
    )
    assert source_of(named.format("a.json") * 2) == "a.json"
    with pytest.raises(ValueError, match="different result files"):
        source_of(named.format("a.json") + named.format("b.json"))
    with pytest.raises(ValueError, match="line 1: the bench block names no result file"):
        source_of("<!-- bench:begin -->\nhand typed\n<!-- bench:end -->\n")


def test_the_command_refuses_what_it_cannot_check(tmp_path, monkeypatch, capsys):
    """No page here, a named page without a block, a malformed marker, a marker no benchmark
    matches: exit 2 with the page (and line) named, nothing written, nothing passed."""
    result_file(tmp_path / "r.json", {A: 0.010})
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "readme", "r.json", "--check"]) == 2
    assert "no README.md or docs/*.md with bench markers" in capsys.readouterr().err
    plain = tmp_path / "plain.md"
    plain.write_text("# no block\n")
    assert main(["bench", "readme", "r.json", "--readme", "plain.md"]) == 2
    assert "plain.md: no <!-- bench:begin -->" in capsys.readouterr().err
    (tmp_path / "docs").mkdir()
    typo = tmp_path / "docs" / "typo.md"
    typo.write_text("# t\n<!-- bench:begin bench_a.py-->\nold\n<!-- bench:end -->\n")
    assert pages_with_tables(tmp_path) == [typo]  # found, so its marker is reported
    assert main(["bench", "readme", "r.json"]) == 2
    assert "docs/typo.md: line 4: <!-- bench:end --> without a begin" in capsys.readouterr().err
    typo.write_text("# t\n\n<!-- bench:begin bench_gone.py -->\n<!-- bench:end -->\n")
    assert main(["bench", "readme", "r.json"]) == 2
    assert "docs/typo.md: line 3: no benchmark in r.json has 'bench_gone.py'" in (
        capsys.readouterr().err
    )
    assert "old" not in typo.read_text() and "Generated" not in typo.read_text()


def test_a_page_named_twice_is_written_once(tmp_path, capsys):
    res = result_file(tmp_path / "r.json", {A: 0.010})
    page = tmp_path / "p.md"
    page.write_text(f"{README_BEGIN}\n{README_END}\n")
    assert main(["bench", "readme", str(res), "--readme", str(page), "--readme", str(page)]) == 0
    assert "(1 rewritten)" in capsys.readouterr().out


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


def test_a_figure_that_is_a_list_of_rows_gets_its_own_table(tmp_path):
    path = result_file(tmp_path / "r.json", {A: 0.010})
    data = json.loads(path.read_text())
    data["benchmarks"][0]["extra_info"]["rows"] = [
        {"baud": 300, "p99_ms": 0.5},
        {"baud": 2400, "p99_ms": 1.25, "late": 2},
    ]
    path.write_text(json.dumps(data))
    text = table(load(path), "r.json")
    assert "rows [2 rows]" in text
    sub = text.split("`bench_a.py::test_a`, `rows`:\n\n", 1)[1]
    assert sub.splitlines() == [
        "| baud | p99_ms | late |",
        "|---:|---:|---:|",
        "| 300 | 0.5 |  |",
        "| 2,400 | 1.25 | 2 |",
    ]


def test_a_marker_quoted_inside_a_line_is_text():
    text = (
        "write a line `<!-- bench:begin bench_bus.py -->` and a line `<!-- bench:end -->`\n"
        "<!-- bench:begin bench_a -->\nold\n<!-- bench:end -->\n"
    )
    ((start, end, match),) = blocks(text)
    assert match == "bench_a" and text[start:end] == "old\n"
