"""Sweep files (simulator.study.spec): the shipped ones validate, bad ones list every problem
with file:line, points expand as written, run keys follow the scenario and seed; the Student
t interval (simulator.study.stats) against published table values; the results table."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import EXIT_BENCH_FAULT, EXIT_OK, EXIT_USAGE
from simulator.study.paths import set_path, split_path
from simulator.study.results import ResultsTable
from simulator.study.spec import load_sweep, run_key
from simulator.study.stats import estimate, t_quantile

ROOT = Path(__file__).resolve().parent.parent
SWEEPS = sorted((ROOT / "fixtures" / "sweeps").glob("*.toml"))
STREAM = ROOT / "fixtures" / "scenarios" / "stream-small.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text.replace("@STREAM@", str(STREAM)), encoding="utf-8")
    return path


def test_the_four_shipped_example_sweeps_are_there():
    names = {p.stem for p in SWEEPS}
    assert {
        "stream-receivers",
        "stream-capture-entry-loss",
        "nbiot-interval-coverage",
        "cme3100-push-outage",
    } <= names


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_shipped_sweeps_validate_with_units_on_every_axis(path):
    sweep = load_sweep(path)
    assert sweep.runs and len(sweep.runs) == sweep.points * len(sweep.seeds)
    assert all(p.unit for p in sweep.parameters) and all(f.unit for f in sweep.figures)
    assert len({r.key for r in sweep.runs}) == len(sweep.runs)


def test_a_bad_sweep_lists_every_problem_with_its_line(tmp_path):
    path = write(
        tmp_path,
        """name = "bad"
scenario = "@STREAM@"
seeds = 0
combine = "grid"

[vary."receivers.capture_db"]
range = { start = 3, stop = 1, step = 1 }

[vary."meters.count"]
values = [1, 2]
plot_as = [1]

[[figures]]
key = "no_such_figure"
""",
    )
    with pytest.raises(Exception) as info:
        load_sweep(path)
    text = str(info.value)
    assert f"{path}:3: seeds:" in text
    assert f"{path}:7: vary.receivers.capture_db.range:" in text and "below start" in text
    assert f"{path}:9: vary.meters.count:" in text and "plot_as has 1 numbers" in text
    assert f"{path}:14: figures.0.key:" in text and "no key 'no_such_figure'" in text


def test_a_point_scenario_problem_is_blamed_on_the_sweep_line_that_made_it_with_the_rest(tmp_path):
    path = write(
        tmp_path,
        """scenario = "@STREAM@"
seeds = 0

[set]
"meters.kount" = 3

[vary."receivers.grid"]
values = [[2, 2], [0, 3], [1, 1]]

[vary."report.resolutions_s.0"]
values = [900.0]

[vary."meters.interval_s"]
values = [60, 120, 60]

[[figures]]
key = "meters_heard"
""",
    )
    with pytest.raises(Exception) as info:
        load_sweep(path)
    issues = [str(i) for i in info.value.issues]
    assert f"{path}:13: vary.meters.interval_s: value(s) 60 given more than once" in issues
    assert any(i.startswith(f"{path}:5: set.meters.kount: every point:") for i in issues), issues
    assert any(
        i.startswith(f"{path}:7: vary.receivers.grid: point(s) 3, 4, 5:") and "at least 1 x 1" in i
        for i in issues
    ), issues
    # the points are checked even when another part of the file is wrong: all at once
    assert any(i.startswith(f"{path}:2: seeds:") for i in issues), issues
    assert len(issues) == 4


def test_an_index_past_an_array_is_an_error_not_a_new_key(tmp_path):
    path = write(
        tmp_path,
        """scenario = "@STREAM@"
[vary."report.resolutions_s.7"]
values = [60.0]
[[figures]]
key = "meters_heard"
""",
    )
    with pytest.raises(Exception, match=r"sweep.toml:2: vary.report.resolutions_s.7: .*2 elements"):
        load_sweep(path)


def test_grid_zip_range_linspace_random_expand_as_written(tmp_path):
    base = """scenario = "@STREAM@"
seeds = [5, 9]
combine = "{combine}"
sample_seed = 4
[vary."meters.interval_s"]
{a}
[vary."receivers.capture_db"]
{b}
[[figures]]
key = "meters_heard"
"""
    grid = load_sweep(
        write(
            tmp_path,
            base.format(
                combine="grid",
                a="range = { start = 60, stop = 180, step = 60 }",
                b="linspace = { start = 0.0, stop = 1.0, num = 3 }",
            ),
        )
    )
    assert grid.parameters[0].values == (60, 120, 180)
    assert grid.parameters[1].values == (0.0, 0.5, 1.0)
    assert grid.points == 9 and [r.seed for r in grid.runs[:2]] == [5, 9]
    assert grid.runs[2].values == {"meters.interval_s": 60, "receivers.capture_db": 0.5}
    assert grid.runs[2].data["meters"]["interval_s"] == 60
    assert grid.runs[2].data["receivers"]["capture_db"] == 0.5
    assert grid.runs[3].data["seed"] == 9

    text = base.format(
        combine="zip",
        a="random = { low = 60, high = 600, samples = 4, log = true, integer = true }",
        b="random = { low = 0, high = 10, samples = 4 }",
    )
    first, again = load_sweep(write(tmp_path, text)), load_sweep(write(tmp_path, text))
    assert first.points == 4
    xs = first.parameters[0].values
    assert all(isinstance(x, int) and 60 <= x <= 600 for x in xs) and len(set(xs)) > 1
    assert all(0 <= y <= 10 for y in first.parameters[1].values)
    assert [r.key for r in first.runs] == [r.key for r in again.runs]  # sample_seed: same draws
    other = load_sweep(write(tmp_path, text.replace("sample_seed = 4", "sample_seed = 5")))
    assert other.parameters[1].values != first.parameters[1].values

    with pytest.raises(Exception, match="zip needs equally many values"):
        load_sweep(
            write(tmp_path, base.format(combine="zip", a="values = [1, 2]", b="values = [3]"))
        )


def test_run_key_follows_the_scenario_and_the_seed():
    data = {"kind": "stream", "meters": {"count": 10}}
    k = run_key("stream", data, 1)
    assert k == run_key("stream", {"meters": {"count": 10}, "kind": "stream"}, 1)  # order-free
    assert k != run_key("stream", data, 2)
    assert k != run_key("stream", {"kind": "stream", "meters": {"count": 11}}, 1)


def test_dotted_paths_quote_dots_and_index_arrays():
    assert split_path('plugin.properties."filter.manufacturer"') == (
        "plugin",
        "properties",
        "filter.manufacturer",
    )
    data = {"gateway": {"reports": [{"schedule": "hourly"}]}}
    assert set_path(data, split_path("gateway.reports.0.schedule"), "daily") is None
    assert data["gateway"]["reports"][0]["schedule"] == "daily"
    assert set_path(data, ("new", "table", "key"), 3) is None and data["new"]["table"]["key"] == 3
    assert "cannot go into a str" in set_path(data, ("gateway", "reports", 0, "schedule", "x"), 1)


@pytest.mark.parametrize(
    "df, level, published",
    # Student t two-sided critical values, e.g. NIST/SEMATECH e-Handbook Table 1.3.6.7.2
    [(1, 0.95, 12.706), (2, 0.95, 4.303), (4, 0.95, 2.776), (9, 0.95, 2.262), (29, 0.95, 2.045)]
    + [(1, 0.99, 63.657), (10, 0.99, 3.169), (100, 0.90, 1.660)],
)
def test_t_quantile_matches_the_published_table(df, level, published):
    assert t_quantile(level, df) == pytest.approx(published, abs=6e-4)


def test_t_quantile_matches_scipy():
    from scipy import stats  # the test extra installs it: an independent implementation
    for df in (1, 2, 3, 5, 8, 13, 21, 50, 200):
        for level in (0.8, 0.95, 0.999):
            assert t_quantile(level, df) == pytest.approx(stats.t.ppf((1 + level) / 2, df), 1e-9)


def test_estimate_mean_and_interval():
    e = estimate([1.0, 2.0, 3.0, 4.0])
    assert e.mean == 2.5 and e.sd == pytest.approx(math.sqrt(5 / 3))
    assert e.half == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, rel=1e-6)
    one = estimate([7.0])
    assert one.mean == 7.0 and math.isnan(one.half)
    assert estimate([3.0, 3.0]).half == 0.0


def test_results_table_keeps_finished_runs_and_rewrites_in_order(tmp_path):
    sweep = load_sweep(
        write(
            tmp_path,
            """scenario = "@STREAM@"
seeds = 2
[vary."receivers.grid"]
values = [[1, 1], [2, 2]]
[[figures]]
key = "meters_heard"
""",
        )
    )
    table = ResultsTable(tmp_path / "results.csv", sweep)
    r = sweep.runs
    table.add(r[3], "ok", "", 1.0, {"meters_heard": 40})
    table.add(r[0], "failed", "ValueError: no", 0.5, {})
    table.add(r[1], "ok", "", 1.0, {"meters_heard": 30})
    table.close()
    again = ResultsTable(tmp_path / "results.csv", sweep)
    assert again.finished() == {r[3].key, r[1].key}  # failed runs are run again
    assert again.values(r[0].key)["error"] == "ValueError: no"
    assert again.values(r[3].key)["receivers.grid"] == [2, 2]
    assert again.rewrite() == 0
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [r[0].key, r[1].key, r[3].key]


def _cli(*args: str, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "simulator.cli", "sweep", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_cli_exit_2_for_a_bad_sweep_0_for_check(tmp_path):
    bad = write(tmp_path, 'scenario = "@STREAM@"\nseeds = -1\n')
    proc = _cli(str(bad))
    assert proc.returncode == EXIT_USAGE
    assert f"{bad}:2: seeds:" in proc.stderr and f"{bad}: vary:" in proc.stderr
    proc = _cli(str(SWEEPS[0]), "--check")
    assert proc.returncode == EXIT_OK and "runs" in proc.stdout


def test_cli_exit_3_when_the_scheduler_cannot_be_reached(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _cli(
        str(ROOT / "fixtures" / "sweeps" / "stream-receivers.toml"),
        "--out",
        str(tmp_path / "out"),
        "--scheduler",
        f"tcp://127.0.0.1:{port}",
        env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"},
    )
    assert proc.returncode == EXIT_BENCH_FAULT, proc.stderr
    assert f"cannot reach the Dask scheduler tcp://127.0.0.1:{port}" in proc.stderr
