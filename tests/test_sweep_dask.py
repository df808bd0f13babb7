"""Sweeps on a real Dask LocalCluster of 2 worker processes (simulator.study.execute): a worker
killed mid-sweep still leaves the full table, with the same figures as the runs made one by
one in this process; a stopped sweep resumes without re-running what it finished; a run that
fails keeps its error in the table and the others go on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.study.execute import local_cluster, run_point, run_sweep
from simulator.study.results import ResultsTable
from simulator.study.spec import load_sweep

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
STREAM = ROOT / "fixtures" / "scenarios" / "stream-small.toml"

# 2 parameters x 2 values x 2 seeds on a short kernel run (about 1 s a run here).
SPEC = f"""name = "tiny"
scenario = "{STREAM}"
seeds = 2
[set]
engine = "kernel"
hours = 1.0
"report.plots" = false
"plugin.push" = false
[vary."meters.count"]
values = [2500, 3000]
unit = "meters"
[vary."receivers.capture_db"]
values = [3.0, 10.0]
unit = "dB"
[[figures]]
key = "resolutions.15 min.mean_ratio"
unit = "1"
[[figures]]
key = "collisions_lost"
unit = "telegrams"
"""


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    cluster = local_cluster(2)  # the sweep's own LocalCluster: 2 single-threaded processes
    with Client(cluster) as c:
        yield c
    cluster.close()


def sweep_file(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_worker_killed_mid_sweep_still_gives_the_full_table(tmp_path, client):
    sweep = load_sweep(sweep_file(tmp_path))
    assert len(sweep.runs) == 8
    before = client.run(os.getpid)  # worker address -> pid
    killed: list[tuple[str, list]] = []

    def kill_a_busy_worker(run, result):
        if killed:
            return
        for _ in range(100):  # the next task is usually already running; wait for it if not
            busy = {a: k for a, k in client.processing().items() if k and a in before}
            if busy:
                break
            time.sleep(0.02)
        address, keys = next(iter(busy.items()))
        os.kill(before[address], signal.SIGKILL)
        killed.append((address, list(keys)))

    table = ResultsTable(tmp_path / "results.csv", sweep)
    ran = run_sweep(sweep, table, client, on_result=kill_a_busy_worker)
    assert len(ran) == 8 and killed and killed[0][1], "no worker was killed with a task on it"
    table.rewrite()
    rows = [table.values(r.key) for r in sweep.runs]
    assert [r["status"] for r in rows] == ["ok"] * 8, [r["error"] for r in rows]
    after = client.run(os.getpid)
    assert set(after.values()) != set(before.values())  # the nanny started a new worker
    # the same figures as each run made here, one by one, without Dask
    figures = [(f.key, f.parts) for f in sweep.figures]
    for run, row in zip(sweep.runs, rows, strict=True):
        alone = run_point(str(sweep.scenario_path), run.data, run.seed, figures)
        assert alone["status"] == "ok"
        assert {f.key: row[f.key] for f in sweep.figures} == alone["figures"]


def test_a_stopped_sweep_resumes_without_rerunning_finished_runs(tmp_path, client):
    sweep = load_sweep(sweep_file(tmp_path))
    table = ResultsTable(tmp_path / "results.csv", sweep)
    first: list[str] = []

    def stop_after_three(run, result):
        first.append(run.key)
        if len(first) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, table, client, on_result=stop_after_three)
    kept = (tmp_path / "results.csv").read_text().splitlines()
    assert len(kept) == 1 + 3  # header + the three finished runs, written as they came

    again = ResultsTable(tmp_path / "results.csv", sweep)
    assert again.finished() == set(first)
    second: list[str] = []
    ran = run_sweep(sweep, again, client, on_result=lambda run, result: second.append(run.key))
    assert len(ran) == len(second) == 5 and not set(second) & set(first)
    again.rewrite()
    final = (tmp_path / "results.csv").read_text().splitlines()
    assert len(final) == 1 + 8
    assert set(kept[1:]) <= set(final[1:])  # the first three rows, byte for byte
    assert [line.split(",")[0] for line in final[1:]] == [r.key for r in sweep.runs]

    third = ResultsTable(tmp_path / "results.csv", sweep)  # a third start runs nothing
    assert run_sweep(sweep, third, client) == []


def test_a_failed_run_keeps_its_error_and_the_sweep_goes_on(tmp_path, client):
    # resolutions [900 s] has no "1 h" figure: those runs fail when the figure is picked
    text = SPEC.replace('values = [3.0, 10.0]\nunit = "dB"', 'values = [3.0]\nunit = "dB"')
    text = text.replace("values = [2500, 3000]", "values = [300]")
    text += '[vary."report.resolutions_s"]\nvalues = [[900.0], [3600.0]]\nunit = "s"\n'
    text = text.replace(
        'key = "resolutions.15 min.mean_ratio"', 'key = "resolutions.1 h.mean_ratio"'
    )
    sweep = load_sweep(sweep_file(tmp_path, text))
    table = ResultsTable(tmp_path / "results.csv", sweep)
    run_sweep(sweep, table, client)
    rows = [table.values(r.key) for r in sweep.runs]
    status = {(r["report.resolutions_s"][0], r["status"]) for r in rows}
    assert status == {(900.0, "failed"), (3600.0, "ok")}
    failed = [r for r in rows if r["status"] == "failed"]
    assert all("KeyError" in r["error"] and "has no '1 h'" in r["error"] for r in failed)


def test_the_cli_runs_a_sweep_and_writes_table_study_and_plots(tmp_path):
    out = tmp_path / "out"
    sweep_file(tmp_path, SPEC.replace("values = [2500, 3000]", "values = [100, 200]"))  # fast
    proc = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "sweep", str(tmp_path / "tiny.toml"), "--out"]
        + [str(out), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "8 ok, 0 failed" in proc.stdout and "[8/8 runs]" in proc.stderr
    names = {p.name for p in out.iterdir()}
    assert {"results.csv", "study.csv", "study.md", "report.html"} <= names
    assert len([n for n in names if n.endswith(".png")]) == 4  # 2 figures x 2 parameters
    page = (out / "report.html").read_text()
    assert "8 ok, 0 failed" in page and page.count("<img") == 4
    again = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "sweep", str(tmp_path / "tiny.toml"), "--out"]
        + [str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert again.returncode == 0 and "resuming: 8 run(s)" in again.stdout
    assert "dask:" not in again.stdout  # nothing left to run: no cluster started
