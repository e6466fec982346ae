"""The geometry check tells real circuits from broken files (racing.track.checks), one test per defect class.

The tracks are built here: a figure of eight on a bridge, hairpins tighter than the width, and broken files
(self-overlapping, rows shuffled, an open line closed with a 40 m chord, a straight line, a 1e12 m scale, NaN, too
few points, a repeated point). Nothing here depends on a particular circuit file."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from racing.track import Track, TrackError, load_track, write_centerline
from racing.track.checks import TrackWarning


def figure_eight(a=60.0, b=30.0, n=240):
    """Centre line [n, 2] [m] of a figure of eight (x = a sin t, y = b sin 2t): one crossover at the origin at
    2 atan(a / 2b) (90 deg for a = 2b), the two parts half a lap apart."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.column_stack([a * np.sin(t), b * np.sin(2.0 * t)])


def rounded_polygon(vertices, radius, spacing=1.0):
    """Closed centre line [M, 2] [m] through the corners of a polygon (counter-clockwise) rounded with ``radius``
    [m]: straights joined by arcs, sampled every ~``spacing`` m."""
    v = np.asarray(vertices, dtype=float)
    pts = []
    for k in range(len(v)):
        p0, p1, p2 = v[k - 1], v[k], v[(k + 1) % len(v)]
        u1 = (p1 - p0) / np.linalg.norm(p1 - p0)
        u2 = (p2 - p1) / np.linalg.norm(p2 - p1)
        turn = math.atan2(u1[0] * u2[1] - u1[1] * u2[0], float(u1 @ u2))
        tan_len = radius * math.tan(abs(turn) / 2)
        start = p1 - tan_len * u1
        centre = start + radius * np.array([-u1[1], u1[0]]) * np.sign(turn)
        a0 = math.atan2(*(start - centre)[::-1])
        m = max(2, int(math.ceil(abs(turn) * radius / spacing)))
        arc = [centre + radius * np.array([math.cos(a0 + turn * q / m), math.sin(a0 + turn * q / m)])
               for q in range(m + 1)]
        nxt_start = v[(k + 1) % len(v)] - radius * math.tan(_turn(v, k + 1) / 2) * u2
        straight = np.linalg.norm(nxt_start - arc[-1])
        ms = max(1, int(round(straight / spacing)))
        pts += arc + [arc[-1] + (nxt_start - arc[-1]) * q / ms for q in range(1, ms)]
    return np.asarray(pts)


def _turn(v, k):
    p0, p1, p2 = v[(k - 1) % len(v)], v[k % len(v)], v[(k + 1) % len(v)]
    u1, u2 = (p1 - p0) / np.linalg.norm(p1 - p0), (p2 - p1) / np.linalg.norm(p2 - p1)
    return abs(math.atan2(u1[0] * u2[1] - u1[1] * u2[0], float(u1 @ u2)))


def circle(r=50.0, n=120, start=0.0, stop=2 * np.pi):
    t = np.linspace(start, stop, n, endpoint=False)
    return np.column_stack([r * np.cos(t), r * np.sin(t)])


# ---------------------------------------------------------------------------- real circuits: accepted
def test_figure_eight_on_a_bridge_is_a_circuit():
    tr = Track.from_centerline(figure_eight(), 3.0, 3.0, name="eight")
    assert tr.geometry_problems() == []
    assert len(tr.crossovers) == 1
    c = tr.crossovers[0]
    assert c.angle == pytest.approx(90.0, abs=2.0)
    assert abs(tr.s_diff(c.s_b, c.s_a)) == pytest.approx(tr.length / 2, rel=0.02)
    tr.check_geometry()


def test_projection_at_a_bridge_stays_on_its_branch():
    tr = Track.from_centerline(figure_eight(), 3.0, 3.0, name="eight")
    c = tr.crossovers[0]
    # a car 0.5 m past the crossing on each branch: with the hint of where it was, it stays on that branch
    for s_c in (c.s_a, c.s_b):
        xy = tr.to_cartesian(s_c + 0.5, 0.8)
        s, n, _ = tr.frenet(xy, hint=s_c - 1.0)
        assert abs(tr.s_diff(s, s_c + 0.5)) < 0.05 and n == pytest.approx(0.8, abs=0.05)
    # a path along the track (offset 1 m left) is projected point after point: its s never jumps
    s_true = np.arange(0.0, tr.length, 0.7)
    xy = tr.to_cartesian(s_true, 1.0)
    s, n, _ = tr.frenet_path(xy)
    assert np.all(np.abs(tr.s_diff(s, s_true)) < 0.05)
    assert np.allclose(n, 1.0, atol=0.05)


@pytest.mark.parametrize("apex_deg", [60.0, 20.0])
def test_hairpin_tighter_than_the_width_is_clipped_with_a_warning(apex_deg):
    # an isosceles triangle with rounded corners: at the apex the road turns 180 - apex_deg degrees on a 3 m
    # radius with 5 m of width on the inside
    half = math.radians(apex_deg / 2)
    base = 150.0
    height = 0.5 * base / math.tan(half)
    xy = rounded_polygon([(0.0, 0.0), (base, 0.0), (0.5 * base, height)], radius=3.0)
    with pytest.warns(TrackWarning, match=r"s = [0-9.]+-[0-9.]+ m left width down to"):
        tr = Track.from_centerline(xy, 5.0, 5.0, name="hairpin")
    assert tr.geometry_problems() == []
    inner = np.where(tr.kappa > 0, tr.w_left, tr.w_right)
    assert np.all(np.abs(tr.kappa) * inner < 1.0)
    assert tr.w_left.min() < 3.0 and tr.w_right.min() == pytest.approx(5.0)  # only the inside is narrowed


def test_a_track_within_its_bends_is_not_changed():
    xy = rounded_polygon([(0.0, 0.0), (200.0, 0.0), (200.0, 100.0), (0.0, 100.0)], radius=20.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackWarning)
        tr = Track.from_centerline(xy, 5.0, 5.0)
    assert np.all(tr.w_left == 5.0) and np.all(tr.w_right == 5.0) and tr.geometry_problems() == []


# ---------------------------------------------------------------------------- broken files: refused, clearly
def _load(tmp_path, xy, w=3.0, name="broken.csv", **kw):
    path = tmp_path / name
    write_centerline(path, xy, w, w)
    return path, (lambda: load_track(path, **kw))


def test_self_overlapping_lap_is_refused(tmp_path):
    # the same circle twice (the second time 0.3 m outside): distinct parts of the lap on top of each other
    xy = np.vstack([circle(50.0, 120), circle(50.3, 120, start=np.pi / 120, stop=2 * np.pi + np.pi / 120)])
    path, load = _load(tmp_path, xy)
    with pytest.raises(TrackError, match=rf"{path}: .*(distinct parts of the track .* overlap|runs over itself)"):
        load()
    assert load_track(path, check_geometry=False).length > 600  # the option still races it


def test_rows_out_of_order_are_refused(tmp_path):
    xy = circle(50.0, 120)
    xy[[40, 43]] = xy[[43, 40]]
    path, load = _load(tmp_path, xy)
    with pytest.raises(TrackError, match=rf"{path}: .*crosses itself at s = .* after only .* m .*rows out of order"):
        load()


def test_open_line_closed_with_a_40_m_chord_is_refused(tmp_path):
    xy = circle(40.0, 60, start=0.0, stop=2 * np.pi * 300 / 360)  # 300 deg of a circle: 40 m gap, 4.4 m spacing
    xy = np.vstack([xy, [40.0 * math.cos(math.radians(300)), 40.0 * math.sin(math.radians(300))]])
    path, load = _load(tmp_path, xy)
    with pytest.raises(TrackError, match=rf"{path}: .*row \d+ \(the last point\) is 40(\.\d)? m from row \d+ "
                                         r"\(the first\).*open line closed with a straight chord"):
        load()


def test_straight_line_says_it_is_a_line(tmp_path):
    xy = np.column_stack([np.arange(0.0, 100.0, 5.0), np.zeros(20)])
    path, load = _load(tmp_path, xy)
    with pytest.raises(TrackError, match=rf"{path}: the 20 centre-line points lie within 0 m of a straight line "
                                         r"95 m long.*not a lap") as err:
        load()
    assert "crosses itself" not in str(err.value)


def test_track_at_1e12_scale_is_refused(tmp_path):
    path, load = _load(tmp_path, circle(1e12, 100))
    with pytest.raises(TrackError, match=rf"{path}: row \d+: [xy]_m = .*e\+12 m; expected a circuit in metres"):
        load()


def test_lap_longer_than_a_circuit_is_refused():
    with pytest.raises(TrackError, match=r"<array>: lap length 3.14e\+05 m; expected a circuit under 1e\+05 m"):
        Track.from_centerline(circle(5e4, 400), 5.0, 5.0)


def test_widths_in_another_unit_than_the_centre_line_are_refused(tmp_path):
    # coordinates in km (a 6 km circle written as r = 1), widths in m: bends tighter than the width everywhere
    path, load = _load(tmp_path, circle(1.0, 120), w=1.5)
    with pytest.warns(TrackWarning), pytest.raises(TrackError, match=rf"{path}: .*clipped over 100 % of the lap"):
        load()


@pytest.mark.parametrize("bad", [None, 3.0, "", ["lab_loop"]])
def test_load_track_of_not_a_name_says_what_it_takes(bad):
    with pytest.raises(TrackError, match=r"load_track: got .*; expected a track name \(.*lab_loop.*\), the path"):
        load_track(bad)


@pytest.mark.parametrize("rows, match", [
    ("0,0,1,1\n10,0,1,1\nnan,10,1,1\n0,10,1,1\n", r"row 4: x_m is NaN; expected a finite number"),
    ("0,0,1,1\n10,0,1,1\n10,10,1,1\n", r"only 3 points; a track needs at least 4"),
    ("0,0,1,1\n10,0,1,1\n10,0,1,1\n10,10,1,1\n0,10,1,1\n", r"row 4: point \(10.0, 0.0\) repeats the previous point \(row 3\)"),
])
def test_malformed_rows_name_file_row_and_expectation(tmp_path, rows, match):
    path = tmp_path / "t.csv"
    path.write_text("# x_m,y_m,w_tr_right_m,w_tr_left_m\n" + rows)
    with pytest.raises(TrackError, match=rf"{path}: {match}"):
        load_track(path)
