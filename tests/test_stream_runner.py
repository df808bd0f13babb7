"""`meterbench run` on stream scenarios: the small event-model scenario end to end (real HTTP
head-end), a tiny kernel run, and scenario validation with file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main as cli_main
from simulator.gateways.cme3100 import stream_runner as runner
from simulator.scenario import RunOptions, ScenarioError, load_toml

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"


def test_small_event_scenario_via_cli(tmp_path, capsys):
    out = tmp_path / "small"
    assert (
        cli_main(
            [
                "run",
                str(SCENARIOS / "stream-small.toml"),
                "--out",
                str(out),
                "--quiet",
                "--hours",
                "1",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "meters heard" in printed and "head-end" in printed
    summary = json.loads((out / "summary.json").read_text())
    h = summary["headend"]
    # 4 gateways x 4 pushes in one hour, all delivered
    assert h["pushes_ok"] == 16 and h["pushes_failed"] == 0
    # seed 003 §3.2: at most one line per meter in each push of each gateway
    assert h["max_repeats_of_a_meter_in_one_push"] == 1
    lines = (out / "headend.csv").read_text().splitlines()[1:]
    assert len(lines) == h["report_lines"] > 50
    # the filter (ELV,KAM) holds: no DME meter reaches the head-end
    analyzers = "".join((out / f"analyzer-rx0{k}.csv").read_text() for k in range(4))
    assert ";Filtered;" in analyzers and "DME" in analyzers
    meters_csv = (out / "meters.csv").read_text().splitlines()
    assert len(meters_csv) == 151
    for name in ("redundancy.png", "ratio_vs_distance.png", "map.png", "trace.jsonl"):
        assert (out / name).stat().st_size > 1000
    trace = (out / "trace.jsonl").read_text()
    assert '"kind":"stream_push"' in trace and '"kind":"wmbus_rx"' in trace


def test_same_seed_same_trace(tmp_path):
    doc = load_toml(SCENARIOS / "stream-small.toml")
    a = runner.run(doc, RunOptions(out_dir=tmp_path / "a", hours=0.25))
    b = runner.run(doc, RunOptions(out_dir=tmp_path / "b", hours=0.25))
    ta = (tmp_path / "a" / "trace.jsonl").read_text()
    assert ta == (tmp_path / "b" / "trace.jsonl").read_text()
    assert a.summary["receptions"] == b.summary["receptions"] > 0


def test_kernel_scenario_small(tmp_path):
    text = (SCENARIOS / "stream-city.toml").read_text().replace("count = 20000", "count = 500")
    path = tmp_path / "city-mini.toml"
    path.write_text(text)
    res = runner.run(load_toml(path), RunOptions(out_dir=tmp_path / "o", hours=2))
    s = res.summary
    assert s["engine"] == "kernel" and s["meters"] == 500 and s["receivers"] == 25
    assert 0 < s["meters_heard"] <= 500
    hist = s["receivers_per_push_window_hist"]
    assert sum(hist.values()) == 500 * 8  # meters x 15-min windows in 2 h
    rows = s["ratio_vs_distance"]["15 min"]
    assert rows[0][1] > rows[-1][1]  # close meters do better than far ones


def test_bad_scenario_reports_every_error_with_lines(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        'kind = "stream"\nengine = "warp"\n[meters]\ncount = 0\n'
        'modes = { X9 = 1.0 }\n[receivers]\nradio_mode = "T9"\n'
    )
    with pytest.raises(ScenarioError) as exc:
        runner.run(load_toml(path), RunOptions(out_dir=tmp_path / "o"))
    text = str(exc.value)
    for where in (":2: engine", ":4: meters.count", ":5: meters.modes", ":7: receivers"):
        assert where in text, text
    path.write_text(
        'kind = "stream"\n[receivers]\ngrid = [1, 1]\n[plugin]\n'
        'properties = { "radio.mode" = "T9", "usb.baud.rate" = "1" }\n'
    )
    with pytest.raises(ScenarioError) as exc:
        runner.run(load_toml(path), RunOptions(out_dir=tmp_path / "o"))
    assert len(exc.value.issues) == 2 and ":5: plugin.properties.radio.mode" in str(exc.value)


def test_kernel_scenario_summed_interference_loses_more(tmp_path):
    """``receivers.interference = "sum"`` on a dense kernel scenario (1000 meters sending every
    second): same transmissions, strictly more collision losses than "pairwise"."""
    base = (SCENARIOS / "stream-city.toml").read_text()
    for old, new in (
        ("count = 20000", "count = 1000"),
        ("interval_s = 900.0", "interval_s = 1.0"),
        ("width_m = 3000.0", "width_m = 600.0"),
        ("height_m = 3000.0", "height_m = 600.0"),
        ("grid = [5, 5]", "grid = [2, 2]"),
        ("resolutions_s = [900.0, 86400.0]", "resolutions_s = [60.0]\nplots = false"),
    ):
        assert old in base
        base = base.replace(old, new)
    summaries = {}
    for rule in ("pairwise", "sum"):
        path = tmp_path / f"{rule}.toml"
        path.write_text(base.replace("[receivers]\n", f'[receivers]\ninterference = "{rule}"\n'))
        res = runner.run(load_toml(path), RunOptions(out_dir=tmp_path / rule, hours=0.05))
        summaries[rule] = res.summary
    pair, summ = summaries["pairwise"], summaries["sum"]
    assert pair["interference"] == "pairwise" and summ["interference"] == "sum"
    assert pair["transmissions"] == summ["transmissions"] > 100_000
    assert summ["collisions_lost"] > pair["collisions_lost"] > 0
    assert summ["receptions"] < pair["receptions"]


def test_event_scenario_with_summed_interference_and_ell_encryption(tmp_path):
    """``meters.ell_encryption = true`` (with ``interference = "sum"``) end to end: the
    head-end gets C1 telegrams with ELL I (CI 8C) or, when encrypted, ELL II AES-CTR (CI 8D)
    that decrypt with the meter's key; T1 telegrams carry no ELL."""
    from simulator.gateways.cme3100.container import parse_container
    from simulator.wmbus.telegram import parse_telegram

    text = (SCENARIOS / "stream-small.toml").read_text()
    for old, new in (
        ("[report]\n", "[report]\nplots = false\n"),
        ("encrypted_fraction = 0.3", "encrypted_fraction = 0.5\nell_encryption = true"),
        ('radio_mode = "T1_C1A_C1B"', 'radio_mode = "T1_C1A_C1B"\ninterference = "sum"'),
    ):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "ell.toml"
    path.write_text(text)
    res = runner.run(load_toml(path), RunOptions(out_dir=tmp_path / "o", hours=0.25))
    assert res.summary["interference"] == "sum" and res.summary["receptions"] > 0
    modes = {
        row.split(",")[0]: row.split(",")[1]
        for row in (tmp_path / "o" / "meters.csv").read_text().splitlines()[1:]
    }
    seen: dict[str, int] = {}
    for line in (tmp_path / "o" / "headend.csv").read_text().splitlines()[1:]:
        meter_id, cell = line.split(";")[1], line.split(";")[4]
        wireless = parse_container(bytes.fromhex(cell)).wireless
        t = parse_telegram(wireless, keys=runner.meter_key(3, int(meter_id)))
        assert t.link.id == int(meter_id)
        kind = t.ell["ci"] if t.ell else "none"
        assert (kind != "none") == modes[meter_id].startswith("C1"), (meter_id, kind)
        if kind == "8D":
            assert t.decrypted and t.ell["security_mode"] == 1 and t.tpl_ci == 0x78
        seen[kind] = seen.get(kind, 0) + 1
    assert seen.get("8C", 0) > 0 and seen.get("8D", 0) > 0 and seen.get("none", 0) > 0


def test_run_shorter_than_every_window_plots_without_warnings(tmp_path):
    import warnings

    doc = load_toml(SCENARIOS / "stream-small.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warned "No artists with labels" here
        runner.run(doc, RunOptions(out_dir=tmp_path, hours=0.1))
    assert (tmp_path / "ratio_vs_distance.png").stat().st_size > 0
