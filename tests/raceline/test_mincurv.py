"""Minimum-curvature line, QSS speed profile, the raceline cache and the ``racing raceline`` command."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from racing.models.params import G, load_params
from racing.raceline import RacelineError, cached_raceline, reference_for, reference_lap
from racing.raceline.cache import cache_path, params_fingerprint, read_metadata, save_raceline, track_fingerprint
from racing.raceline.mincurv import min_curvature_line, offset_bounds, resample_track
from racing.track import Raceline, Track, load_track, write_centerline


def circle_track(R: float, w_left: float, w_right: float, n: int = 240, name: str = "circle") -> Track:
    th = np.linspace(0.0, 2 * np.pi, n, endpoint=False)  # counter-clockwise: the outside is on the right
    xy = R * np.column_stack([np.cos(th), np.sin(th)])
    return Track.from_centerline(xy, w_right, w_left, name=name)


@pytest.fixture(scope="module")
def f1tenth():
    return load_params("f1tenth")


def test_circle_line_is_the_largest_circle_and_speed_is_sqrt_mu_g_r(f1tenth):
    R, wl, wr, margin = 5.0, 0.6, 0.8, 0.05
    track = circle_track(R, wl, wr)
    res = min_curvature_line(track, f1tenth, spacing=0.2, margin=margin)
    R_line = R + wr - (0.5 * f1tenth.width + margin)
    rl = res.raceline
    radius = np.hypot(rl.x, rl.y)
    assert np.max(np.abs(radius - R_line)) < 1e-3 * R_line
    assert np.max(np.abs(rl.kappa - 1.0 / R_line)) < 2e-3 / R_line
    assert rl.length == pytest.approx(2 * np.pi * R_line, rel=1e-4)
    mu = min(f1tenth.D_f, f1tenth.D_r)  # the model's lateral tyre peak
    v_expected = math.sqrt(mu * G * R_line)
    assert v_expected < f1tenth.v_max
    np.testing.assert_allclose(rl.vx, v_expected, rtol=5e-3)
    assert res.lap_time == pytest.approx(2 * np.pi * R_line / v_expected, rel=5e-3)
    assert res.status == "Solve_Succeeded"


def test_line_stays_within_the_widths_minus_car_and_margin(f1tenth):
    track = load_track("lab_loop")
    margin = 0.04
    res = min_curvature_line(track, f1tenth, margin=margin)
    assert np.all(res.alpha >= res.lb - 1e-6) and np.all(res.alpha <= res.ub + 1e-6)
    s, n, _ = track.frenet(res.raceline.xy())
    wl, wr = track.widths_at(s)
    c = 0.5 * f1tenth.width + margin
    # the spline between the optimised points may cut a corner by a hair
    assert np.all(n <= wl - c + 5e-3) and np.all(n >= -wr + c - 5e-3)
    # a racing line: it uses the width of the track and is smoother than the centre line
    assert np.sum(res.raceline.kappa ** 2) * res.raceline.length / len(res.raceline) < np.sum(
        track.kappa ** 2) * track.ds
    assert np.all(np.diff(res.raceline.s) > 0)
    assert res.lap_time > 0 and res.v_max <= f1tenth.v_max + 1e-9


def test_too_narrow_track_names_track_and_position(f1tenth):
    n = 240
    wl = np.full(n, 0.6)
    wr = np.full(n, 0.6)
    wl[100:104] = wr[100:104] = 0.16  # 0.32 m wide: the car is 0.31 m, margin 0.05 m
    th = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    track = Track.from_centerline(5.0 * np.column_stack([np.cos(th), np.sin(th)]), wr, wl, name="pinch")
    with pytest.raises(RacelineError) as info:
        min_curvature_line(track, f1tenth, spacing=0.2, margin=0.05)
    msg = str(info.value)
    assert "pinch" in msg and "too narrow" in msg and "s = " in msg
    s_bad = float(msg.split("s = ")[1].split(" m")[0])
    assert 100 * track.length / n - 1.0 < s_bad < 104 * track.length / n + 1.0


def test_bend_tighter_than_the_car_can_steer_is_an_error(f1tenth):
    track = circle_track(0.45, 0.3, 0.3, n=120, name="tiny")  # turning radius of the car ~0.74 m
    with pytest.raises(RacelineError, match="tighter than car f1tenth can turn"):
        min_curvature_line(track, f1tenth, spacing=0.05, margin=0.0)


def test_offset_bounds_shrink_by_half_width_and_margin(f1tenth):
    track = circle_track(5.0, 0.6, 0.8)
    grid = resample_track(track, 0.25)
    lb, ub = offset_bounds(grid, f1tenth, 0.02)
    c = 0.5 * f1tenth.width + 0.02
    np.testing.assert_allclose(ub, 0.6 - c)
    np.testing.assert_allclose(lb, -0.8 + c)


# ------------------------------------------------------------------------------------------ cache / CLI
def _tmp_track(tmp_path):
    """A copy of lab_loop outside the repository (so its cache goes to $RACING_RACELINE_CACHE)."""
    src = load_track("lab_loop")
    folder = tmp_path / "my_loop"
    folder.mkdir()
    write_centerline(folder / "centerline.csv", src.xy, src.w_right, src.w_left)
    return load_track(folder)


def test_cli_writes_a_tum_file_to_the_cache_and_reuses_it(tmp_path, monkeypatch, capsys):
    from racing.cli import main

    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path / "cache"))
    track = _tmp_track(tmp_path)
    out = tmp_path / "line.csv"
    assert main(["raceline", "--track", track.source, "--car", "f1tenth", "--method", "mincurv", "--json",
                 "--out", str(out)]) == 0
    first = json.loads(capsys.readouterr().out)
    for key in ("track", "car", "method", "lap_time_s", "length_m", "solve_time_s", "status", "n_points",
                "v_max_mps", "path"):
        assert key in first
    assert first["status"] == "Solve_Succeeded" and not first["cached"]
    cpath = cache_path(track, "f1tenth", "mincurv")
    assert cpath.parent == tmp_path / "cache" and cpath.is_file() and out.is_file()
    rl = Raceline.load(out)  # the track loader's reader
    assert len(rl) == first["n_points"]
    assert rl.length == pytest.approx(first["length_m"], rel=1e-3)
    meta = read_metadata(cpath)
    assert float(meta["lap_time_s"]) == pytest.approx(first["lap_time_s"])
    # second call: reused from the cache
    assert main(["raceline", "--track", track.source, "--car", "f1tenth", "--method", "mincurv", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["cached"] and second["lap_time_s"] == pytest.approx(first["lap_time_s"])
    assert cached_raceline(track, "f1tenth", "mincurv") is not None
    # no min-time lap yet -> no reference
    assert reference_lap(track, "f1tenth") is None
    assert reference_for(track, "f1tenth") is None


def test_cache_is_ignored_for_other_car_parameters_or_geometry(tmp_path, monkeypatch, f1tenth):
    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path / "cache"))
    track = _tmp_track(tmp_path)
    rl = min_curvature_line(track, f1tenth).raceline
    meta = {"lap_time_s": 12.5, "status": "Solve_Succeeded", "params_sha1": params_fingerprint(f1tenth),
            "track_sha1": track_fingerprint(track)}
    save_raceline(rl, cache_path(track, "f1tenth", "mintime"), meta)
    assert reference_lap(track, "f1tenth") == pytest.approx(12.5)
    assert reference_for(track, "f1tenth") == pytest.approx(12.5)
    assert cached_raceline(track, "f1tenth", "mintime") is not None
    heavier = f1tenth.replace(mass=4.0)
    assert reference_lap(track, "f1tenth", params=heavier) is None
    other = track.with_raceline(None)
    assert reference_lap(other, "f1tenth") == pytest.approx(12.5)
    moved = Track.from_centerline(track.xy + 0.01, track.w_right, track.w_left, name=track.name,
                                  source=track.source)
    assert reference_lap(moved, "f1tenth") is None
    # unknown cars and broken inputs never raise
    assert reference_for(track, "no_such_car") is None
    assert reference_for("no/such/track.csv", "f1tenth") is None


def test_project_tracks_cache_beside_the_track():
    track = load_track("lab_loop")
    p = cache_path(track, "f1tenth", "mintime")
    assert p.parent.name == "lab_loop" and p.name == "raceline_f1tenth_mintime.csv"
    # the loader attaches '*raceline.csv' files: the cache name must not match that pattern
    assert not p.name.endswith("raceline.csv")


def test_a_car_that_borrows_a_project_cars_name_caches_its_lines_apart(tmp_path, monkeypatch, f1tenth):
    """A perturbed (fitted, edited) car that keeps the name of a project car: its lines go to the user's cache under
    its parameters' fingerprint; the line beside the project track, made for the car file of that name, is neither
    replaced nor read for it."""
    from racing.assembly import resolve_line

    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path / "cache"))
    track = load_track("lab_loop")
    shipped = cache_path(track, "f1tenth", "mincurv")
    before = shipped.read_bytes() if shipped.is_file() else None
    heavier = f1tenth.replace(mass=4.2)
    apart = cache_path(track, "f1tenth", "mincurv", heavier)
    assert apart.parent == tmp_path / "cache" and params_fingerprint(heavier) in apart.name
    assert cache_path(track, "f1tenth", "mincurv", f1tenth) == shipped  # the car file's own parameters
    with_line, record = resolve_line(track, heavier, (), "mincurv")
    assert record["computed"] and record["source"] == str(apart) and apart.is_file()
    assert (shipped.read_bytes() if shipped.is_file() else None) == before
    again, record = resolve_line(track, heavier, (), "mincurv")  # found in the user's cache now
    assert record["source"] == str(apart) and "computed" not in record
    assert cached_raceline(track, "f1tenth", "mincurv", heavier) is not None


def test_cli_reports_a_too_narrow_track(tmp_path, monkeypatch, capsys):
    from racing.cli import main

    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "narrow"
    folder.mkdir()
    th = np.linspace(0.0, 2 * np.pi, 120, endpoint=False)
    write_centerline(folder / "centerline.csv", 5.0 * np.column_stack([np.cos(th), np.sin(th)]), 0.15, 0.15)
    rc = main(["raceline", "--track", str(folder), "--car", "f1tenth", "--method", "mincurv", "--json"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "too narrow" in json.loads(captured.out)["error"]
    assert "too narrow" in captured.err
    assert not any((tmp_path / "cache").glob("*.csv"))
