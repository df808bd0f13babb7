"""Issue 16 "Pictures that tell the truth": every kind draws pictures, and every picture names
its run (scenario and random seed in words), its axes with units, and has a legend
(simulator.report.figures.save refuses any other); the redundancy histogram counts the windows
no receiver heard apart; the map tells never-heard, once-heard and redundant meters apart in
colour-blind-safe colours and does not paint failures over successes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.devices import run_scenario
from simulator.report import figures as fg
from simulator.scenario import RunOptions, load_toml

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fixtures" / "scenarios"

# kind: (shipped scenario, replacements that shrink it, hours, pictures)
KINDS = {
    "mbus": ("mbus-small.toml", {}, 3, {"readout_rounds.png", "meters.png"}),
    "cme2100": ("cme2100-small.toml", {}, 24, {"readout_rounds.png", "sms_and_push.png"}),
    "cme3100": ("cme3100-building.toml", {}, 50, {"readout_rounds.png", "push_delivery.png"}),
    "nbiot": (
        "nbiot-fleet.toml",
        {"modules = 2000": "modules = 60"},
        25,
        {"latency_hist.png", "transmission_spread.png", "battery_vs_coupling_loss.png"},
    ),
    "stream": (
        "stream-small.toml",
        {},
        1,
        {"redundancy.png", "ratio_vs_distance.png", "map.png"},
    ),
}


@pytest.fixture
def drawn(monkeypatch):
    """Every figure handed to figures.save: {file name: facts read before it is closed}."""
    seen: dict[str, dict] = {}
    real = fg.save

    def record(fig, path, run):
        axes = fig.axes
        seen[Path(path).name] = {
            "run": run,
            "titles": [fig.get_suptitle()] + [a.get_title() for a in axes],
            "labels": [(a.get_xlabel(), a.get_ylabel()) for a in axes if a.get_gid() != "no-data"],
            "legends": [
                [t.get_text() for t in a.get_legend().get_texts()] if a.get_legend() else None
                for a in axes
            ],
            "axes": axes,
        }
        return real(fig, path, run)

    monkeypatch.setattr(fg, "save", record)
    return seen


def _scenario(tmp_path: Path, name: str, replacements: dict[str, str]) -> Path:
    path = SCENARIOS / name
    if not replacements:
        return path
    text = path.read_text()
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    (tmp_path / name).write_text(text)
    return tmp_path / name


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_draws_pictures_that_name_the_run_axes_units_and_legend(kind, tmp_path, drawn):
    name, replacements, hours, pictures = KINDS[kind]
    doc = load_toml(_scenario(tmp_path, name, replacements))
    res = run_scenario(doc, RunOptions(out_dir=tmp_path / "out", hours=hours))
    assert set(drawn) == pictures
    scenario, seed = res.summary["scenario"], res.summary["seed"]
    for png, facts in drawn.items():
        assert (tmp_path / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        title = facts["titles"][0] or facts["titles"][1]
        assert f"{scenario}, random seed {seed}" in title, (png, title)
        assert "seed 00" not in " ".join(facts["titles"])  # a manual is never "seed 003"
        assert facts["labels"], png  # every kind's run here has something to draw
        for x, y in facts["labels"]:
            for label in (x, y):
                assert label.endswith(")") and "(" in label, (png, label)
        assert any(facts["legends"]), png


def test_the_rules_refuse_a_picture_without_names_units_or_legend(tmp_path):
    plt = fg.pyplot()
    run = fg.RunLabel("city", 4)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("distance")
    ax.set_title("seed 003")
    with pytest.raises(fg.FigureError) as exc:
        fg.save(fig, tmp_path / "bad.png", run)
    text = str(exc.value)
    assert "no title names the run ('city, random seed 4')" in text
    assert "x axis 'distance' has no unit" in text and "no y axis name" in text
    assert "no legend" in text
    assert not (tmp_path / "bad.png").exists()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="ratio")
    ax.set(xlabel="distance (m)", ylabel="ratio (fraction)", title=fg.run_title("R", run))
    ax.legend()
    assert fg.save(fig, tmp_path / "good.png", run).stat().st_size > 1000


def _kernel_city(tmp_path: Path, meters: int = 1500) -> Path:
    text = (SCENARIOS / "stream-city.toml").read_text()
    for old, new in (
        ("count = 20000", f"count = {meters}"),
        ("width_m = 3000.0", "width_m = 1500.0"),
        ("height_m = 3000.0", "height_m = 1500.0"),
        ("grid = [5, 5]", "grid = [3, 3]"),
    ):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "city.toml"
    path.write_text(text)
    return path


def test_redundancy_histogram_counts_unheard_windows_apart(tmp_path, drawn):
    res = run_scenario(load_toml(_kernel_city(tmp_path)), RunOptions(tmp_path / "o", hours=3))
    h = {int(k): v for k, v in res.summary["receivers_per_push_window_hist"].items()}
    total = sum(h.values())
    assert h[0] > max(v for k, v in h.items() if k > 0)  # the zero bar would dominate
    left, right = drawn["redundancy.png"]["axes"]
    shares = [p.get_height() for p in left.patches]
    assert shares == pytest.approx([100 * h[0] / total, 100 * (total - h[0]) / total])
    xs = {round(p.get_x() + p.get_width() / 2) for p in right.patches if p.get_height() > 0}
    assert 0 not in xs and xs == {k for k in h if k > 0}
    heard = total - h[0]
    tops = sorted((round(p.get_x() + p.get_width() / 2), p.get_height()) for p in right.patches)
    assert dict((k, v) for k, v in tops if v > 0) == pytest.approx(
        {k: 100 * v / heard for k, v in h.items() if k > 0}
    )


def test_map_tells_never_once_and_twice_heard_apart_successes_on_top(tmp_path, drawn):
    res = run_scenario(load_toml(_kernel_city(tmp_path)), RunOptions(tmp_path / "o", hours=3))
    ax = drawn["map.png"]["axes"][0]
    never, once, more, receivers = ax.collections
    colours = [tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in (never, once, more)]
    from matplotlib.colors import to_rgb

    want = [tuple(np.round(to_rgb(c), 3)) for c in (fg.BAD, fg.PARTLY, fg.GOOD)]
    assert colours == want  # Okabe-Ito vermillion, orange, blue; drawn in this order
    sizes = [len(c.get_offsets()) for c in (never, once, more)]
    assert sum(sizes) == res.summary["meters"] and len(receivers.get_offsets()) == 9
    assert sizes[1] + sizes[2] == res.summary["meters_heard"]
    hist = res.summary["heard_by_receivers_hist"]
    assert sizes[0] == hist.get("0", 0) and sizes[1] == hist.get("1", 0)
    legend = drawn["map.png"]["legends"][0]
    assert legend[0].startswith(f"never heard: {sizes[0]} (")
