"""Issue 16: every run's results folder has a static ``report.html`` (summary and every
picture), a sweep's folder gets one too (its pictures and tables), and a real headless Chromium
loads it and draws every picture (naturalWidth > 0).

``MBENCH_DOCS_SCREENSHOTS=1 python3 -m pytest tests/test_report_page.py -k screenshots``
refreshes docs/img/report-<kind>.png (the screenshots docs/results-page.md links)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from simulator.devices import run_scenario
from simulator.report import figures as fg
from simulator.report.page import MAX_ROWS, write_page
from simulator.scenario import RunOptions, load_toml
from simulator.testing import browser

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fixtures" / "scenarios"
DOCS_IMG = ROOT / "docs" / "img"

# kind: (shipped scenario, replacements that shrink it, hours)
RUNS = {
    "mbus": ("mbus-small.toml", {}, 3),
    "cme2100": ("cme2100-small.toml", {}, 24),
    "cme3100": ("cme3100-building.toml", {}, 50),
    "nbiot": ("nbiot-fleet.toml", {"modules = 2000": "modules = 200"}, 25),
    "stream": ("stream-small.toml", {}, 2),
}

needs_chromium = pytest.mark.skipif(
    browser.chromium() is None, reason="no chromium binary on PATH (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One results folder per kind."""
    out = {}
    for kind, (name, replacements, hours) in RUNS.items():
        path = SCENARIOS / name
        if replacements:
            text = path.read_text()
            for old, new in replacements.items():
                assert old in text
                text = text.replace(old, new)
            path = tmp_path_factory.mktemp("scn") / name
            path.write_text(text)
        folder = tmp_path_factory.mktemp(kind)
        run_scenario(load_toml(path), RunOptions(out_dir=folder, hours=hours))
        out[kind] = folder
    return out


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_every_run_writes_a_static_page_with_summary_and_every_picture(runs, kind):
    folder = runs[kind]
    html = (folder / "report.html").read_text()
    summary = json.loads((folder / "summary.json").read_text())
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert f"random seed {summary['seed']}" in html and summary["scenario"] in html
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert len(pngs) >= 2
    assert sorted(re.findall(r"<img src='([^']+)'", html)) == pngs


@needs_chromium
@pytest.mark.parametrize("kind", sorted(RUNS))
def test_chromium_loads_the_page_and_draws_every_picture(runs, kind):
    folder = runs[kind]
    seen = browser.probe(folder / "report.html")
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert sorted(i["src"] for i in seen["images"]) == pngs
    for img in seen["images"]:
        assert img["complete"] and img["width"] > 0 and img["height"] > 0, img
    assert "summary" in seen["ids"] and "pictures" in seen["ids"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["scenario"] in seen["text"]
    assert f"random seed {summary['seed']}" in seen["text"]
    first_row = next(iter(summary))  # every figure of summary.json is on the page
    assert first_row in seen["text"] and str(summary["trace_events"]) in seen["text"]


@needs_chromium
def test_chromium_tells_a_missing_picture(runs, tmp_path):
    # the check can fail: a page whose picture is gone has an image of width 0
    folder = tmp_path / "broken"
    folder.mkdir()
    for p in runs["mbus"].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "meters.png").write_bytes(b"not a png")
    seen = browser.probe(folder / "report.html")
    widths = {i["src"]: i["width"] for i in seen["images"]}
    assert widths["meters.png"] == 0 and widths["readout_rounds.png"] > 0


def _sweep_folder(root: Path) -> Path:
    """A folder shaped like a sweep's: a results table, a study table, plots in a subfolder."""
    root.mkdir()
    lines = ["receivers,seed,meters_heard,error"]
    lines += [f"{r},{s},{100 + 10 * r + s},\n" for r in range(1, 11) for s in range(1, 9)]
    (root / "results.csv").write_text("\n".join(x.strip() for x in lines) + "\n")
    (root / "study.csv").write_text(
        "receivers;mean;ci_low;ci_high\n4;0.61;0.58;0.64\n9;0.83;0.8;0.86\n"
    )
    (root / "plots").mkdir()
    run = fg.RunLabel("stream-receivers sweep", 1)
    plt = fg.pyplot()
    for name in ("meters_heard", "redundancy"):
        fig, ax = plt.subplots()
        ax.errorbar([4, 9], [0.61, 0.83], yerr=[0.03, 0.03], label="mean, 95 % CI")
        ax.set(xlabel="receivers (count)", ylabel=f"{name} (fraction)")
        ax.set_title(fg.run_title(name, run))
        ax.legend()
        fg.save(fig, root / "plots" / f"{name}.png", run)
    return root


def test_a_sweep_folder_gets_a_page_of_its_pictures_and_tables(tmp_path):
    folder = _sweep_folder(tmp_path / "sweep")
    html = write_page(folder, title="stream-receivers").read_text()
    assert "<h1>stream-receivers</h1>" in html
    assert sorted(re.findall(r"<img src='([^']+)'", html)) == [
        "plots/meters_heard.png",
        "plots/redundancy.png",
    ]
    assert "study.csv</a> (2 rows)" in html and "<th>ci_low</th>" in html  # ';' separated
    assert "results.csv (80 rows)" in html and "first 15 of 80 rows" in html
    assert 80 > MAX_ROWS


@needs_chromium
def test_chromium_draws_a_sweep_folder_page(tmp_path):
    folder = _sweep_folder(tmp_path / "sweep")
    seen = browser.probe(write_page(folder, title="stream-receivers"))
    assert len(seen["images"]) == 2
    assert all(i["width"] > 0 for i in seen["images"])
    assert "0.83" in seen["text"] and "tables" in seen["ids"]


@needs_chromium
@pytest.mark.skipif(
    os.environ.get("MBENCH_DOCS_SCREENSHOTS") != "1",
    reason="MBENCH_DOCS_SCREENSHOTS=1 refreshes docs/img",
)
@pytest.mark.parametrize("kind", sorted(RUNS))
def test_screenshots_for_the_docs(runs, kind):
    png = browser.screenshot(
        runs[kind] / "report.html", DOCS_IMG / f"report-{kind}.png", height=2200
    )
    assert png.stat().st_size > 20_000


def test_report_verb_writes_the_page_of_any_folder(tmp_path, capsys):
    from simulator.cli import main

    folder = _sweep_folder(tmp_path / "sweep")
    assert main(["report", str(folder), "--title", "my sweep"]) == 0
    assert "<h1>my sweep</h1>" in (folder / "report.html").read_text()
    assert "wrote:" in capsys.readouterr().out
    assert main(["report", str(folder / "study.csv")]) == 2


@pytest.mark.parametrize(
    "tail",
    [
        "7,8\r\n" * 500,  # a city's meters.csv: counted without parsing
        "7,8\n\r\n\r9,10",  # mixed line ends, a blank line, no end at the end
        '7,"a\r\nb"\r\n9,"c\nd"\n',  # quoted fields over two lines: the reader counts
        "7,\x0c8\r\n\x859\r\n",  # form feed and NEL are not line ends for the reader
    ],
)
def test_a_long_table_counts_its_rows_as_the_csv_reader_does(tmp_path, tail):
    import csv

    text = "a,b\r\n" + "1,2\r\n" * (MAX_ROWS + 5) + tail
    (tmp_path / "t.csv").write_text(text, encoding="utf-8", newline="")
    with (tmp_path / "t.csv").open(encoding="utf-8", newline="") as fh:
        rows = sum(1 for _ in csv.reader(fh)) - 1  # the header is not a row
    write_page(tmp_path)
    assert f"t.csv ({rows} rows)" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
@pytest.mark.parametrize(
    "tail",
    [
        "7,8\r\n" * 50,
        "7,8\n\r\n\r9,10",
        "7," + "x" * 40 + "\r\n9,10\n",  # a line over the (lowered) field size limit
        "7," + "x" * 20 + "\n" + "y" * 30,  # the last line, open, over the limit
        '7,"a\r\nb"\r\n9,"c\nd"\n',
        "7,8\r\n\r\n\n\r",
    ],
)
def test_rows_are_counted_in_chunks_as_the_csv_reader_does(tmp_path, monkeypatch, tail, chunk):
    """The rest of a long table is streamed in chunks: line ends split over two chunks, lines
    over the field size limit (inside a chunk or over several) and quotes still count as the
    csv reader counts (here with a 25-character limit and tiny chunks)."""
    import csv

    from simulator.core.text import CsvRowError
    from simulator.report import page

    text = "a,b\r\n" + "1,2\r\n" * (MAX_ROWS + 5) + tail
    (tmp_path / "t.csv").write_text(text, encoding="utf-8", newline="")
    old = csv.field_size_limit(25)
    try:
        with (tmp_path / "t.csv").open(encoding="utf-8", newline="") as fh:
            try:
                expected = f"({sum(1 for _ in csv.reader(fh)) - 1} rows)"
            except csv.Error:
                expected = None
        monkeypatch.setattr(page, "CHUNK", chunk)
        if expected is None:  # the reader refuses the table: so does the page, saying where
            with pytest.raises(CsvRowError, match="field larger than field limit"):
                page._read_csv(tmp_path / "t.csv")
        else:
            write_page(tmp_path)
            assert f"t.csv {expected}" in (tmp_path / "report.html").read_text()
    finally:
        csv.field_size_limit(old)
