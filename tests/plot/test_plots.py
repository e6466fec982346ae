"""The figures carry what an engineer reads: per-lap speed and lateral offset over distance, time delta, compute
against the period, off-track markers in a legend, driving direction; the fit figure's channels and error panel."""
import numpy as np
import pytest

import racing
from racing.control import make_controller

matplotlib = pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def runs(wobble_cls):
    track, car = racing.load_track("lab_loop"), racing.load_car("f1tenth")
    clean = racing.race(track, car, controller="pure_pursuit", laps=2)
    wobbly = racing.race(track, car, controller=wobble_cls(make_controller("pure_pursuit", track, car)), laps=1)
    return track, car, clean, wobbly


def _texts(fig):
    out = []
    for ax in fig.axes:
        out += [ax.get_ylabel(), ax.get_xlabel(), ax.get_title()]
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    return "\n".join(out)


def test_lap_segments_split_the_run_per_lap(runs):
    from racing.plot.race import lap_segments

    track, _, clean, _ = runs
    laps = lap_segments(clean, track)
    assert [lp["complete"] for lp in laps] == [True, True]
    for lp, lap_time in zip(laps, clean.laps):
        assert lp["d"].min() >= -0.5 and lp["d"].max() <= track.length + 0.5
        assert lp["tl"][-1] == pytest.approx(lap_time, abs=0.03)


@pytest.mark.parametrize("s0_behind", [0.06, 0.0])
def test_lap_segments_from_a_start_just_behind_the_line(runs, s0_behind):
    """A car placed a hair behind the start line (an F1TENTH map's start) has distance ~0 at the line, not one
    lap length (its traces fell outside the panels)."""
    from types import SimpleNamespace

    from racing.plot.race import lap_segments

    track = runs[0]
    L = track.length
    t = np.arange(0.0, 2.5 * L, 0.5)  # 1 m/s along the centre line
    s = np.mod(L - s0_behind + t, L)
    ends = [t[np.searchsorted(t, s0_behind + k * L)] for k in (1, 2)]  # the simulator's lap ends
    fake = SimpleNamespace(t=t, frenet=np.column_stack([s, np.zeros_like(s), np.zeros_like(s)]), lap_end_t=ends)
    laps = lap_segments(fake, track)
    assert len(laps) == 3
    for lp in laps:
        assert lp["d"].min() >= -0.5 and lp["d"].max() <= L + 0.5
    assert laps[0]["d"][0] == pytest.approx(-s0_behind, abs=1e-6)
    assert laps[1]["d"][0] == pytest.approx(0.0, abs=0.6)


def test_race_figure_panels(runs):
    import matplotlib.pyplot as plt

    track, _, clean, _ = runs
    fig = racing.plot_race(clean, track)
    text = _texts(fig)
    for word in ("speed [m/s]", "lateral offset n [m]", "time delta [s]", "to lap 2 (best)", "compute [ms]",
                 "period 20 ms", "distance along the lap [m]", "lap 1", "lap 2", "driving direction",
                 "start / finish", "off track (0)"):
        assert word in text, word
    plt.close(fig)


def test_off_track_markers_are_in_the_legend(runs):
    import matplotlib.pyplot as plt

    track, _, _, wobbly = runs
    assert wobbly.off_track == 1
    fig = racing.plot_race(wobbly, track)
    assert "off track (1)" in _texts(fig)
    plt.close(fig)


def test_fit_figure_channels_error_panel_and_window(runs):
    import matplotlib.pyplot as plt

    from racing.sysid.evaluate import evaluate

    _, car, clean, _ = runs
    log = clean.to_log().slice(0.0, 12.0)
    start = car.replace(D_f=0.8, D_r=0.9)
    ev = evaluate([log], car, base_params=start)
    fig = racing.plot_fit(ev)
    text = _texts(fig)
    for word in ("v_x [m/s]", "v_y [m/s]", "yaw rate [rad/s]", "steering [deg]", "steering command",
                 "yaw rate error [rad/s]", "v_y error [m/s]", "logged", "base (before the fit)", "fitted"):
        assert word in text, word
    plt.close(fig)
    fig = racing.plot_fit(ev, window=(2.0, 6.0))
    assert fig.axes[-1].get_xlim() == pytest.approx((2.0, 6.0))
    plt.close(fig)
    with pytest.raises(ValueError, match="window"):
        racing.plot_fit(ev, window=(6.0, 2.0))


def test_lap_animation_is_written(runs, tmp_path):
    from PIL import Image

    from racing.plot.mppi import animate_lap

    track, _, clean, _ = runs
    short = racing.race(track, racing.load_car("f1tenth"), controller="pure_pursuit", laps=1, max_time_s=2.0)
    path = animate_lap(short, track, tmp_path / "lap.gif")
    with Image.open(path) as im:
        assert im.n_frames > 5
    assert np.isfinite(clean.t).all()


def test_the_cli_selects_agg_only_without_a_display(monkeypatch):
    import os

    from racing.plot import headless_backend_for_cli

    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    if os.sys.platform.startswith("linux"):
        assert headless_backend_for_cli() is False and "MPLBACKEND" not in os.environ
    monkeypatch.delenv("DISPLAY")
    if os.sys.platform.startswith("linux"):
        assert headless_backend_for_cli() is True and os.environ["MPLBACKEND"] == "Agg"
    monkeypatch.setenv("MPLBACKEND", "svg")
    assert headless_backend_for_cli() is False and os.environ["MPLBACKEND"] == "svg"
