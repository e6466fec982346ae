"""Track geometry: spline fit, curvature, Frenet round trips, is_inside, the project's own tracks."""
from __future__ import annotations

import math

import numpy as np
import pytest

from racing.track import (
    DEFAULT_TRACK,
    Raceline,
    Track,
    TrackError,
    known_tracks,
    load_track,
    polyline_self_intersections,
    wrap_angle,
)

SHIPPED = known_tracks()


def circle(R=10.0, n=200, w=1.0, ccw=True, ds=None, noise=0.0, smoothing=None, seed=0):
    th = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    if not ccw:
        th = -th
    xy = np.column_stack([R * np.cos(th), R * np.sin(th)])
    if noise:
        xy = xy + np.random.default_rng(seed).normal(0.0, noise, xy.shape)
    return Track.from_centerline(xy, w, w, name="circle", ds=ds, smoothing=smoothing)


def random_inside(track, k, rng, frac=0.98):
    s = rng.uniform(0.0, track.length, k)
    wl, wr = track.widths_at(s)
    u = rng.uniform(-1.0, 1.0, k) * frac
    n = np.where(u >= 0, u * wl, u * wr)
    return s, n


# ---------------------------------------------------------------------------- basics
def test_wrap_angle_interval():
    a = wrap_angle(np.array([-np.pi, np.pi, 3 * np.pi, -3 * np.pi + 1e-3, 0.0, 7.0]))
    assert np.all(a > -np.pi) and np.all(a <= np.pi)
    assert a[0] == pytest.approx(np.pi) and a[1] == pytest.approx(np.pi)
    assert wrap_angle(7.0) == pytest.approx(7.0 - 2 * np.pi)


def test_circle_length_curvature_heading():
    R = 10.0
    tr = circle(R, n=200, ds=0.05)
    assert tr.length == pytest.approx(2 * np.pi * R, rel=1e-3)
    assert tr.n_samples * tr.ds == pytest.approx(tr.length, rel=1e-12)
    assert np.allclose(tr.kappa, 1.0 / R, rtol=1e-3)
    assert tr.min_radius == pytest.approx(R, rel=1e-3)
    th = np.arctan2(tr.xy[:, 1], tr.xy[:, 0])
    assert np.allclose(wrap_angle(tr.psi - (th + np.pi / 2)), 0.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(tr.xy, axis=1), R, atol=1e-4)
    assert np.all(tr.psi > -np.pi) and np.all(tr.psi <= np.pi)
    # s measures arc length: s = R * theta (start at theta = 0)
    assert np.allclose(tr.s, R * np.mod(th, 2 * np.pi), atol=1e-3)


def test_clockwise_circle_has_negative_curvature():
    tr = circle(5.0, ccw=False)
    assert np.allclose(tr.kappa, -1 / 5.0, rtol=1e-3)


def test_default_ds_and_repeated_first_point_dropped():
    th = np.linspace(0, 2 * np.pi, 101)  # last point repeats the first
    xy = np.column_stack([3 * np.cos(th), 3 * np.sin(th)])
    tr = Track.from_centerline(xy, 0.5, 0.5)
    assert tr.n_samples == 100
    assert tr.ds == pytest.approx(2 * np.pi * 3 / 100, rel=1e-3)
    assert tr.s[0] == 0.0 and np.allclose(np.diff(tr.s), tr.ds)
    assert not np.allclose(tr.xy[-1], tr.xy[0])


def test_smoothing_spline_on_noisy_circle():
    tr = circle(20.0, n=400, noise=0.02, smoothing=0.02)
    assert tr.length == pytest.approx(2 * np.pi * 20, rel=2e-3)
    assert np.median(np.abs(tr.kappa - 0.05)) < 0.01


def test_arrays_and_boundaries():
    tr = circle(10.0, w=1.5)
    a = tr.arrays()
    assert a.shape == (tr.n_samples, 7) and a.dtype == np.float64 and a.flags.c_contiguous
    assert np.allclose(a[:, 0], tr.s) and np.allclose(a[:, 1:3], tr.xy) and np.allclose(a[:, 3], tr.psi)
    assert np.allclose(a[:, 4], tr.kappa) and np.allclose(a[:, 5], tr.w_left) and np.allclose(a[:, 6], tr.w_right)
    assert np.allclose(np.linalg.norm(tr.left_boundary(), axis=1), 8.5, atol=1e-3)   # left = inside (CCW)
    assert np.allclose(np.linalg.norm(tr.right_boundary(), axis=1), 11.5, atol=1e-3)


def test_interp_periodic_and_consistent():
    tr = circle(10.0)
    s = np.linspace(-30.0, 100.0, 77).reshape(7, 11)
    a, b = tr.interp(s), tr.interp(s + tr.length)
    assert set(a) == {"x", "y", "psi", "kappa", "w_left", "w_right"}
    for k in a:
        assert a[k].shape == s.shape
        assert np.allclose(a[k], b[k], atol=1e-9)
    xy = tr.to_cartesian(s, 0.0)
    assert np.allclose(xy[..., 0], a["x"]) and np.allclose(xy[..., 1], a["y"])
    assert np.allclose(tr.curvature_at(s), 0.1, rtol=1e-3)
    # sample points are reproduced exactly
    i = tr.interp(tr.s)
    assert np.allclose(i["x"], tr.xy[:, 0]) and np.allclose(i["psi"], tr.psi)


# ---------------------------------------------------------------------------- Frenet
def test_frenet_on_circle_matches_analytic():
    R = 10.0
    tr = circle(R, n=400, ds=0.05)
    rng = np.random.default_rng(1)
    th = rng.uniform(0, 2 * np.pi, 2000)
    r = rng.uniform(R - 0.95, R + 0.95, th.size)
    psi = rng.uniform(-np.pi, np.pi, th.size)
    p = np.column_stack([r * np.cos(th), r * np.sin(th)])
    s, n, dpsi = tr.frenet(p, psi)
    assert np.all((s >= 0) & (s < tr.length))
    assert np.max(np.abs(tr.s_diff(s, R * th))) < 1e-3
    assert np.max(np.abs(n - (R - r))) < 1e-3  # CCW: the centre of the circle is on the left
    assert np.max(np.abs(wrap_angle(dpsi - (psi - (th + np.pi / 2))))) < 1e-3
    back = tr.to_cartesian(s, n)
    assert np.max(np.abs(back - p)) < 1e-6


@pytest.mark.parametrize("name", SHIPPED)
def test_frenet_round_trip_on_shipped_track(name):
    tr = load_track(name)
    rng = np.random.default_rng(2)
    s0, n0 = random_inside(tr, 3000, rng)
    p = tr.to_cartesian(s0, n0)
    s, n, dpsi = tr.frenet(p)
    assert np.all(np.isnan(dpsi))
    assert np.max(np.abs(tr.to_cartesian(s, n) - p)) < 1e-3
    assert np.max(np.abs(tr.s_diff(s, s0))) < 1e-3 and np.max(np.abs(n - n0)) < 1e-3
    # random points (not built from s, n) inside the track
    q = p + rng.normal(0, 0.01 * tr.w_left.mean(), p.shape)
    s2, n2, _ = tr.frenet(q)
    assert np.max(np.abs(tr.to_cartesian(s2, n2) - q)) < 1e-3
    # the local search with a hint agrees
    s3, n3, _ = tr.frenet(p, hint=tr.wrap_s(s0 + rng.normal(0, 2 * tr.ds, s0.shape)))
    assert np.max(np.abs(tr.s_diff(s3, s0))) < 1e-3 and np.max(np.abs(n3 - n0)) < 1e-3


def test_frenet_shapes_and_scalars():
    tr = circle(10.0)
    p = np.zeros((3, 4, 2)) + [10.0, 0.0]
    s, n, d = tr.frenet(p, psi=np.full((3, 4), np.pi / 2))
    assert s.shape == n.shape == d.shape == (3, 4)
    assert np.allclose(n, 0.0, atol=1e-9) and np.allclose(d, 0.0, atol=1e-6)
    s1, n1, d1 = tr.frenet(np.array([10.0, 1.0]), psi=0.0)
    assert isinstance(s1, float) and isinstance(n1, float) and isinstance(d1, float)
    assert s1 == pytest.approx(10 * math.atan2(1.0, 10.0), abs=1e-3)
    assert n1 == pytest.approx(10.0 - math.hypot(10.0, 1.0), abs=1e-3)


def test_hint_disambiguates_close_sections():
    # lab_loop: the main straight (y = 0, heading +x) and the leg after the T1 hairpin run side by side.
    # A car 2.25 m left of the main straight is nearer that other leg; the hint keeps it on its own section.
    tr = load_track("lab_loop")
    p = tr.to_cartesian(8.0, 2.25)
    s_free, _, _ = tr.frenet(p)
    assert abs(tr.s_diff(s_free, 8.0)) > 5.0  # global nearest point: the other leg
    s, n, _ = tr.frenet(p, hint=8.2)
    assert s == pytest.approx(8.0, abs=1e-6) and n == pytest.approx(2.25, abs=1e-6)
    s, n, _ = tr.frenet(np.stack([p, p]), hint=np.array([8.2, 7.5]))
    assert np.allclose(s, 8.0) and np.allclose(n, 2.25)


def test_is_inside_and_margin():
    tr = circle(10.0, w=1.0)
    s = np.linspace(0, tr.length, 50, endpoint=False)
    assert tr.is_inside(tr.to_cartesian(s, 0.99)).all()
    assert tr.is_inside(tr.to_cartesian(s, -0.99)).all()
    assert not tr.is_inside(tr.to_cartesian(s, 1.01)).any()
    assert not tr.is_inside(tr.to_cartesian(s, -1.01)).any()
    assert not tr.is_inside(tr.to_cartesian(s, 0.9), margin=0.2).any()
    assert tr.is_inside(tr.to_cartesian(s, 0.7), margin=0.2).all()
    assert tr.is_inside(np.array([[0.0, 0.0], [10.0, 0.0]])).tolist() == [False, True]


def test_s_diff_and_wrap():
    tr = circle(10.0)
    L = tr.length
    assert tr.s_diff(1.0, L - 1.0) == pytest.approx(2.0)
    assert tr.s_diff(L - 1.0, 1.0) == pytest.approx(-2.0)
    assert tr.wrap_s(-1.0) == pytest.approx(L - 1.0)
    assert 0.0 <= tr.wrap_s(L) < L


def test_with_raceline_keeps_geometry():
    tr = circle(10.0)
    s = tr.s
    rl = Raceline.from_arrays(s, tr.xy[:, 0], tr.xy[:, 1], tr.psi, tr.kappa, np.full_like(s, 3.0),
                              np.zeros_like(s))
    t2 = tr.with_raceline(rl)
    assert t2.raceline is rl and tr.raceline is None
    assert t2.xy is tr.xy and t2.length == tr.length
    assert rl.length == pytest.approx(tr.length, rel=1e-4)
    assert rl.xy().shape == (tr.n_samples, 2)


def test_arrays_are_read_only():
    tr = circle(10.0)
    with pytest.raises(ValueError):
        tr.xy[0, 0] = 1.0


# ---------------------------------------------------------------------------- input errors
def _circle_xy(n=20):
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([5 * np.cos(th), 5 * np.sin(th)])


def test_error_nan_names_row_and_field():
    xy = _circle_xy()
    xy[7, 1] = np.nan
    with pytest.raises(TrackError, match=r"<array>: row 7: y_m is NaN; expected a finite number"):
        Track.from_centerline(xy, 1.0, 1.0)
    wl = np.ones(20)
    wl[3] = np.nan
    with pytest.raises(TrackError, match=r"row 3: w_tr_left_m is NaN"):
        Track.from_centerline(_circle_xy(), 1.0, wl)


def test_error_too_few_points():
    with pytest.raises(TrackError, match=r"<array>: only 3 points; a track needs at least 4"):
        Track.from_centerline(_circle_xy(3), 1.0, 1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_error_width_not_positive(bad):
    wr = np.ones(20)
    wr[5] = bad
    with pytest.raises(TrackError, match=rf"row 5: w_tr_right_m = {bad}; expected > 0"):
        Track.from_centerline(_circle_xy(), wr, 1.0)


def test_error_duplicate_consecutive_points():
    xy = _circle_xy()
    xy[9] = xy[8]
    with pytest.raises(TrackError, match=r"row 9: .*repeats the previous point \(row 8\)"):
        Track.from_centerline(xy, 1.0, 1.0)


def test_error_bad_shape():
    with pytest.raises(TrackError, match=r"shape \[M, 2\]"):
        Track.from_centerline(np.zeros((10, 3)), 1.0, 1.0)


# ---------------------------------------------------------------------------- geometry checks
def test_geometry_problems_detects_tight_corner_and_crossing():
    assert circle(10.0, w=1.0).geometry_problems() == []
    assert any("inner width" in p for p in circle(1.0, w=1.2).geometry_problems())
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    eight = np.column_stack([10 * np.sin(t), 5 * np.sin(2 * t)])  # figure eight
    tr = Track.from_centerline(eight, 0.3, 0.3)
    assert len(polyline_self_intersections(tr.xy)) > 0
    assert any("centre line crosses itself" in p for p in tr.geometry_problems())


# ---------------------------------------------------------------------------- shipped tracks
def test_at_least_four_shipped_tracks_and_default():
    assert len(SHIPPED) >= 4
    assert DEFAULT_TRACK in SHIPPED
    tr = load_track(DEFAULT_TRACK)
    assert tr.scale == "1:10"
    scales = [load_track(n).scale for n in SHIPPED]
    assert scales.count("1:10") >= 2 and scales.count("full") >= 2


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_track_is_sane(name):
    tr = load_track(name)
    assert tr.name == name and tr.scale in ("1:10", "full") and tr.description
    width = tr.w_left + tr.w_right
    assert np.all(tr.w_left > 0) and np.all(tr.w_right > 0)
    if tr.scale == "1:10":
        assert 60.0 <= tr.length <= 200.0
        assert 1.5 <= width.min() and width.max() <= 3.0
        assert tr.min_radius >= 1.5
    else:
        assert 2000.0 <= tr.length <= 5000.0
        assert 10.0 <= width.min() and width.max() <= 15.0
        assert tr.min_radius >= 15.0
    # the edges do not fold over: radius of curvature > the width on the inside, everywhere
    inner = np.where(tr.kappa > 0, tr.w_left, tr.w_right)
    assert np.all(np.abs(tr.kappa) * inner < 1.0)
    assert tr.min_radius > max(tr.w_left.max(), tr.w_right.max())
    assert len(polyline_self_intersections(tr.xy)) == 0
    assert tr.geometry_problems(clearance=0.2 * width.mean()) == []
    # closed: the last sample runs smoothly into the first
    gap = np.linalg.norm(tr.xy[0] - tr.xy[-1])
    assert gap == pytest.approx(tr.ds, rel=1e-2)
    assert abs(wrap_angle(tr.psi[0] - tr.psi[-1])) < 0.2
