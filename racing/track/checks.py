"""Geometry checks of a track: tell a real circuit from a broken file.

Real circuits have features a naive check refuses; they are accepted here:

* a **crossover on a bridge** (the centre line crosses itself, Suzuka's figure of eight): accepted when the crossing
  is at a clear angle (>= :data:`MIN_BRIDGE_ANGLE_DEG`) between parts of the lap far apart along it (more than
  twice the stretch over which the two parts overlap). The track records it (:class:`Crossover`,
  ``Track.crossovers``) and the overlap around it is not a defect; a car must be projected onto the track locally
  (``Track.frenet(hint=...)``, ``Track.frenet_path``), never onto the other branch;
* a **short bend tighter than the width on its inside**: the widths are clipped (:func:`clip_widths`) to
  :data:`CLIP` x the radius of the bend, or of the distance to the line midway to another part of the track it
  overlaps (where the Frenet frame stops being one-to-one),
  with a :class:`TrackWarning` naming the s ranges: TUM's pipeline narrows or smooths such bends likewise.

Broken files are refused with a :class:`~racing.track.TrackError` naming the file, the s (or row) and what was
expected: coordinates at an absurd scale and points on a straight line (always), an open line closed with a long
chord, a centre line that runs over itself at a shallow angle or loops within a few widths, distinct parts that
overlap without crossing, edges that cross, a lap whose widths must be clipped almost everywhere (these last ones
can be overridden: ``check_geometry=False`` / ``--allow-bad-geometry``).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import TrackError, TrackWarning

__all__ = ["CLIP", "Crossover", "TrackWarning", "clip_widths", "crossing_pairs", "find_crossovers",
           "polyline_self_intersections", "polylines_intersect", "problems", "check_input_points", "check_length",
           "bridges"]

#: clipped widths end at this fraction of the radius of the bend / the distance to the line midway to the overlap
CLIP = 0.95
#: a crossover at a smaller angle [deg] is a centre line running over itself, not a bridge
MIN_BRIDGE_ANGLE_DEG = 20.0
#: more of the lap [fraction] clipped than this: the widths do not belong to the centre line (units?)
MAX_CLIPPED_FRACTION = 0.25
#: a closing chord longer than this many times the longest other spacing: an open line, not a loop
MAX_CLOSING_RATIO = 4.0
#: coordinates beyond this [m] are not a circuit in metres (the Earth is 4e7 m around)
MAX_COORDINATE_M = 1e8
#: a lap longer than this [m] is not a circuit in metres (the Nordschleife is 2.1e4 m)
MAX_LENGTH_M = 1e5


# --------------------------------------------------------------------------------------------
# Segment intersections
# --------------------------------------------------------------------------------------------
def _cross(ax, ay, bx, by):
    return ax * by - ay * bx


def _segments_intersect(p1, p2, q1, q2) -> np.ndarray:
    """Proper intersection test for segment pairs p1p2 / q1q2 (arrays [K, 2]); touching counts."""
    d1 = _cross(*(q2 - q1).T, *(p1 - q1).T)
    d2 = _cross(*(q2 - q1).T, *(p2 - q1).T)
    d3 = _cross(*(p2 - p1).T, *(q1 - p1).T)
    d4 = _cross(*(p2 - p1).T, *(q2 - p1).T)
    # the bounding boxes must overlap too: collinear segments (all d = 0) one after the other do not touch
    boxes = np.all((np.minimum(p1, p2) <= np.maximum(q1, q2)) & (np.minimum(q1, q2) <= np.maximum(p1, p2)), axis=-1)
    return (d1 * d2 <= 0) & (d3 * d4 <= 0) & boxes


def _segments(xy, closed):
    xy = np.asarray(xy, dtype=np.float64)
    return (xy, np.roll(xy, -1, axis=0)) if closed else (xy[:-1], xy[1:])


def polyline_self_intersections(xy, closed: bool = True) -> np.ndarray:
    """Index pairs ``(i, j)`` [K, 2], i < j, of non-adjacent segments of the polyline ``xy`` [N, 2] that intersect.

    Segment i joins xy[i] and xy[i+1] (and, when ``closed``, segment N-1 joins xy[N-1] and xy[0]).
    Candidate pairs come from a KD-tree, so this is fast for long polylines. Empty array = simple curve.
    """
    from scipy.spatial import cKDTree

    a, nxt = _segments(xy, closed)
    nseg = a.shape[0]
    mid = 0.5 * (a + nxt)
    half = 0.5 * np.linalg.norm(nxt - a, axis=1)
    pairs = cKDTree(mid).query_pairs(r=2.0 * float(half.max()) + 1e-12, output_type="ndarray")
    if pairs.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    i, j = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    gap = j - i
    if closed:
        gap = np.minimum(gap, nseg - gap)
    keep = gap > 1
    i, j = i[keep], j[keep]
    hit = _segments_intersect(a[i], nxt[i], a[j], nxt[j])
    out = np.column_stack([i[hit], j[hit]]).astype(np.int64)
    return out[np.lexsort((out[:, 1], out[:, 0]))] if len(out) else out


def crossing_pairs(a, b, closed: bool = True) -> np.ndarray:
    """Index pairs ``(i, j)`` [K, 2]: segment i of polyline ``a`` [N, 2] crosses segment j of ``b`` [M, 2]."""
    from scipy.spatial import cKDTree

    a0, a1 = _segments(a, closed)
    b0, b1 = _segments(b, closed)
    ha = 0.5 * np.linalg.norm(a1 - a0, axis=1).max()
    hb = 0.5 * np.linalg.norm(b1 - b0, axis=1).max()
    lists = cKDTree(0.5 * (a0 + a1)).query_ball_tree(cKDTree(0.5 * (b0 + b1)), r=ha + hb + 1e-12)
    i = np.repeat(np.arange(len(lists)), [len(l) for l in lists])
    if i.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    j = np.concatenate([np.asarray(l, dtype=np.int64) for l in lists if l])
    hit = _segments_intersect(a0[i], a1[i], b0[j], b1[j])
    return np.column_stack([i[hit], j[hit]]).astype(np.int64)


def polylines_intersect(a, b, closed: bool = True) -> bool:
    """True if any segment of polyline ``a`` [N, 2] crosses any segment of polyline ``b`` [M, 2]."""
    return len(crossing_pairs(a, b, closed)) > 0


# --------------------------------------------------------------------------------------------
# Input points (before the spline fit): hard errors and problems
# --------------------------------------------------------------------------------------------
def check_input_points(xy, w_right, w_left, rows, source: str) -> list[str]:
    """Check the raw centre-line points [M, 2] [m] (closing point already dropped, M >= 4) with their widths [m].

    Raises TrackError for what no option can make raceable: an absurd scale, points on a straight line.
    Returns problems that ``--allow-bad-geometry`` may override: an open line closed with a long chord.
    """
    big = float(np.abs(xy).max())
    if big > MAX_COORDINATE_M:
        k = int(np.argmax(np.abs(xy)))
        i, col = divmod(k, 2)
        raise TrackError(f"{source}: row {rows[i]}: {('x_m', 'y_m')[col]} = {xy[i, col]:.3g} m; expected a circuit in metres (|x|, |y| < {MAX_COORDINATE_M:.0e} m; the file may be in "
                         f"another unit or corrupt)")
    centred = xy - xy.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    along = float(np.ptp(centred @ vt[0]))
    across = float(np.ptp(centred @ vt[1]))
    width = float(np.median(np.asarray(w_right) + np.asarray(w_left)))
    if across < min(width, 0.05 * along) or across <= 1e-9 * along:
        raise TrackError(f"{source}: the {len(xy)} centre-line points lie within {across:.3g} m of a straight line "
                         f"{along:.3g} m long, less than the track's width ({width:.3g} m): the line encloses no "
                         f"area, so it is not a lap; expected a closed circuit, its rows in driving order around it")
    seg = np.linalg.norm(np.roll(xy, -1, axis=0) - xy, axis=1)
    closing, longest = float(seg[-1]), float(seg[:-1].max())
    if closing > MAX_CLOSING_RATIO * longest:
        return [f"row {rows[-1]} (the last point) is {closing:.3g} m from row {rows[0]} (the first), "
                f"{closing / longest:.1f} x the longest spacing of the other rows ({longest:.3g} m): an open line "
                f"closed with a straight chord; expected a closed loop whose last point is about one spacing from "
                f"the first"]
    return []


def check_length(length: float, source: str) -> None:
    """Raise TrackError when the fitted lap length [m] is not that of a circuit in metres."""
    if not length < MAX_LENGTH_M:
        raise TrackError(f"{source}: lap length {length:.3g} m; expected a circuit under {MAX_LENGTH_M:.0e} m "
                         f"(are the coordinates in metres?)")


# --------------------------------------------------------------------------------------------
# Width clipping
# --------------------------------------------------------------------------------------------
def distinct_span(w_left, w_right, ds: float) -> float:
    """Arc-length separation [m] beyond which two samples are 'distinct parts' of the track (and below which the
    clipping looks for normals that meet): 2 x (4 x the largest side width + 2 ds)."""
    return 2.0 * (4.0 * float(max(np.max(w_left), np.max(w_right))) + 2.0 * ds)


def medial_limits(xy, normals, w_left, w_right, span_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the track folds onto itself: for each sample i, the distance [m] along its left / right normal to the
    perpendicular bisector of the chord to the nearest sample j (within ``span_samples``, on that side) whose track
    surface it overlaps (|p_j - p_i| below the two widths facing each other); inf where none does. For neighbours on
    a bend this is the radius of curvature; for the two legs of a hairpin, the line midway between them.
    Returns (left [N], right [N])."""
    n = xy.shape[0]
    lim = {1.0: np.full(n, np.inf), -1.0: np.full(n, np.inf)}
    i = np.arange(n)
    for k in range(1, max(1, min(span_samples, n // 2)) + 1):
        j = (i + k) % n
        d = xy[j] - xy
        dist2 = np.sum(d * d, axis=1)
        ui, uj = np.sum(d * normals, axis=1), -np.sum(d * normals[j], axis=1)  # components along each normal
        wi = np.where(ui > 0, w_left, w_right)
        wj = np.where(uj > 0, w_left[j], w_right[j])
        close = dist2 < (wi + wj) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            mi = np.where(close & (np.abs(ui) > 0), dist2 / (2.0 * np.abs(ui)), np.inf)
            mj = np.where(close & (np.abs(uj) > 0), dist2 / (2.0 * np.abs(uj)), np.inf)
        for side in (1.0, -1.0):
            hi, hj = (np.sign(ui) == side) & np.isfinite(mi), (np.sign(uj) == side) & np.isfinite(mj)
            np.minimum.at(lim[side], i[hi], mi[hi])
            np.minimum.at(lim[side], j[hj], mj[hj])
    return lim[1.0], lim[-1.0]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) sample indices of the runs of True in a periodic bool array."""
    n = mask.size
    if mask.all():
        return [(0, n - 1)]
    start = int(np.flatnonzero(~mask)[0]) + 1  # begin scanning just after a False
    runs, cur = [], None
    for k in range(n):
        i = (start + k) % n
        if mask[i] and cur is None:
            cur = i
        elif not mask[i] and cur is not None:
            runs.append((cur, (i - 1) % n))
            cur = None
    if cur is not None:
        runs.append((cur, (start - 1) % n))
    return runs


def clip_widths(s, xy, normals, kappa, w_left, w_right, ds: float, source: str):
    """Clip the widths [m] where the track folds onto itself within them (:func:`medial_limits`) or the radius of
    curvature [m] (1/|kappa|, kappa [1/m]) is below them (a bend tighter than the width on its inside) to
    :data:`CLIP` x that distance, with one :class:`TrackWarning` naming the s ranges.

    Returns (w_left [N], w_right [N], problems): a problem when more than :data:`MAX_CLIPPED_FRACTION` of the lap
    had to be clipped (the widths do not belong to this centre line).
    """
    span = int(math.ceil(distinct_span(w_left, w_right, ds) / ds))
    lim_l, lim_r = medial_limits(xy, normals, w_left, w_right, span)
    with np.errstate(divide="ignore"):  # and the radius of curvature on the inside, at the sample itself
        radius = 1.0 / np.abs(kappa)
    lim_l = np.where(kappa > 0, np.minimum(lim_l, radius), lim_l)
    lim_r = np.where(kappa < 0, np.minimum(lim_r, radius), lim_r)
    new_l, new_r = np.minimum(w_left, CLIP * lim_l), np.minimum(w_right, CLIP * lim_r)
    cut_l, cut_r = new_l < w_left, new_r < w_right
    mask = cut_l | cut_r
    if not mask.any():
        return w_left, w_right, []
    parts = []
    for a, b in _runs(mask):
        idx = np.arange(a, a + ((b - a) % len(s)) + 1) % len(s)
        for side, old, new in (("left", w_left, new_l), ("right", w_right, new_r)):
            k = idx[np.argmax(old[idx] - new[idx])]
            if new[k] < old[k]:
                parts.append(f"s = {s[a]:.1f}-{s[b] + ds:.1f} m {side} width down to {new[k]:.3g} m from {old[k]:.3g} m")
    frac = float(mask.mean())
    shown = "; ".join(parts[:6]) + (f"; and {len(parts) - 6} more" if len(parts) > 6 else "")
    warnings.warn(f"{source}: a bend tighter than the track's width on its inside: widths clipped to {CLIP} x "
                  f"the bend's radius (or the distance to the line midway to the part it overlaps) over "
                  f"{100 * frac:.1f} % of the lap: {shown}", TrackWarning, stacklevel=3)
    probs = []
    if frac > MAX_CLIPPED_FRACTION:
        probs.append(f"the widths had to be clipped over {100 * frac:.0f} % of the lap (more than "
                     f"{100 * MAX_CLIPPED_FRACTION:.0f} %): the bends are tighter than the widths almost everywhere; "
                     f"expected widths that fit the centre line's bends (are the coordinates and the widths in the "
                     f"same unit, metres?)")
    return new_l, new_r, probs


# --------------------------------------------------------------------------------------------
# Crossovers and overlaps
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crossover:
    """Where the centre line crosses itself: at arc lengths ``s_a`` and ``s_b`` [m] (``s_a < s_b``), at the point
    ``(x, y)`` [m], at ``angle`` [deg] in (0, 90] between the two parts; ``reach_a`` / ``reach_b`` [m]: half the
    stretch of each part over which the two track surfaces overlap around the crossing."""

    s_a: float
    s_b: float
    x: float
    y: float
    angle: float
    reach_a: float
    reach_b: float

    def covers(self, si, sj, length: float) -> np.ndarray:
        """bool [...]: the samples at arc lengths ``si`` and ``sj`` [m] are the two parts overlapping here."""
        return ((_near(si, self.s_a, self.reach_a, length) & _near(sj, self.s_b, self.reach_b, length))
                | (_near(si, self.s_b, self.reach_b, length) & _near(sj, self.s_a, self.reach_a, length)))

    def near(self, s, length: float) -> np.ndarray:
        """bool [...]: arc length(s) ``s`` [m] lie on either part within the overlap around the crossing."""
        return _near(s, self.s_a, self.reach_a, length) | _near(s, self.s_b, self.reach_b, length)


def _near(s, centre: float, reach: float, length: float) -> np.ndarray:
    d = np.mod(np.asarray(s, dtype=np.float64) - centre + 0.5 * length, length) - 0.5 * length
    return np.abs(d) <= reach


def _same_crossing(s_a: float, s_b: float, c: "Crossover", track, tol: float) -> bool:
    """Whether the crossing at (s_a, s_b) [m] is ``c`` (its two branches within ``tol`` [m], in either order)."""
    def close(a, b):
        return abs(track.s_diff(a, b)) <= tol

    return (close(s_a, c.s_a) and close(s_b, c.s_b)) or (close(s_a, c.s_b) and close(s_b, c.s_a))


def find_crossovers(track) -> list[Crossover]:
    """Every place where the centre line of ``track`` crosses itself (one :class:`Crossover` each, whatever its
    kind: :func:`problems` decides which are bridges)."""
    xy, ds = track.xy, track.ds
    out: list[Crossover] = []
    d = np.roll(xy, -1, axis=0) - xy
    w = np.maximum(track.w_left, track.w_right)
    for i, j in polyline_self_intersections(xy):
        den = _cross(d[i, 0], d[i, 1], d[j, 0], d[j, 1])
        q = xy[j] - xy[i]
        t = float(np.clip(_cross(q[0], q[1], d[j, 0], d[j, 1]) / den, 0, 1)) if den else 0.0
        s_a, s_b = (i + t) * ds, (j + (float(np.clip(_cross(q[0], q[1], d[i, 0], d[i, 1]) / den, 0, 1))
                                      if den else 0.0)) * ds
        if any(_same_crossing(s_a, s_b, c, track, 2 * ds) for c in out):
            continue  # the same crossing seen on a neighbouring segment (either way round: at the start line)
        sin = min(1.0, abs(den) / (np.linalg.norm(d[i]) * np.linalg.norm(d[j])))
        cos = math.sqrt(max(0.0, 1.0 - sin * sin))
        ang = math.degrees(math.asin(sin))
        sin = max(sin, 1e-3)
        reach_a = (w[j] + w[i] * cos) / sin + 2 * ds
        reach_b = (w[i] + w[j] * cos) / sin + 2 * ds
        p = xy[i] + t * d[i]
        out.append(Crossover(float(s_a % track.length), float(s_b % track.length), float(p[0]), float(p[1]), ang,
                             float(reach_a), float(reach_b)))
    return out


def _crossing_problem(c: Crossover, length: float) -> str | None:
    sep = abs((c.s_b - c.s_a + 0.5 * length) % length - 0.5 * length)
    where = f"s = {c.s_a:.1f} m and s = {c.s_b:.1f} m ({c.x:.2f}, {c.y:.2f})"
    if sep <= 2.0 * min(c.reach_a + c.reach_b, 4.0 * (c.reach_a + c.reach_b) * math.sin(math.radians(c.angle))):
        return (f"the centre line crosses itself at {where} after only {sep:.1f} m (a loop within the overlap of the "
                f"track's width; rows out of order?); expected a simple loop, or a crossover on a bridge between "
                f"parts of the lap far apart")
    if c.angle < MIN_BRIDGE_ANGLE_DEG:
        return (f"the centre line runs over itself at {where}, crossing at {c.angle:.1f} deg; expected separate parts, "
                f"or a crossover on a bridge at >= {MIN_BRIDGE_ANGLE_DEG:.0f} deg")
    return None


def bridges(track) -> list[Crossover]:
    """The crossovers of ``track`` that are bridges (clear angle, far apart along the lap)."""
    return [c for c in track.crossovers if _crossing_problem(c, track.length) is None]


def _overlap_problem(track, ok: list[Crossover], clearance: float) -> str | None:
    """Distinct parts of the track closer than ``clearance`` [m] edge to edge (facing sides), bridges excepted."""
    from scipy.spatial import cKDTree

    span = distinct_span(track.w_left, track.w_right, track.ds)
    pairs = cKDTree(track.xy).query_pairs(r=0.5 * span + max(clearance, 0.0), output_type="ndarray")
    if pairs.size == 0:
        return None
    i, j = pairs[:, 0], pairs[:, 1]
    far = np.abs(track.s_diff(track.s[i], track.s[j])) > span
    for c in ok:
        far &= ~c.covers(track.s[i], track.s[j], track.length)
    i, j = i[far], j[far]
    if i.size == 0:
        return None
    v = track.xy[j] - track.xy[i]
    wi = np.where(np.sum(v * track.normals[i], axis=1) >= 0, track.w_left[i], track.w_right[i])
    wj = np.where(np.sum(-v * track.normals[j], axis=1) >= 0, track.w_left[j], track.w_right[j])
    gap = np.linalg.norm(v, axis=1) - wi - wj
    k = int(np.argmin(gap))
    if gap[k] >= clearance:
        return None
    what = (f"overlap by {-gap[k]:.3g} m" if gap[k] < 0 else f"are only {gap[k]:.3g} m apart edge to edge")
    return (f"distinct parts of the track at s = {track.s[i[k]]:.1f} m and s = {track.s[j[k]]:.1f} m {what} "
            f"(centre lines {np.linalg.norm(v[k]):.3g} m apart, widths {wi[k]:.3g} + {wj[k]:.3g} m) without a "
            f"crossover; expected >= {clearance:g} m between them")


def _edge_problems(track, ok: list[Crossover]) -> list[str]:
    out = []
    s, L = track.s, track.length
    lines = (("left edge", track.left_boundary()), ("right edge", track.right_boundary()))
    for what, line in lines:
        hits = polyline_self_intersections(line)
        for c in ok:
            hits = hits[~c.covers(s[hits[:, 0]], s[hits[:, 1]], L)] if len(hits) else hits
        if len(hits):
            out.append(f"the {what} crosses itself near s = {s[hits[0, 0]]:.1f} m and s = {s[hits[0, 1]]:.1f} m "
                       f"({len(hits)} crossings: the track overlaps itself there)")
    hits = crossing_pairs(lines[0][1], lines[1][1])
    for c in ok:
        hits = hits[~c.covers(s[hits[:, 0]], s[hits[:, 1]], L)] if len(hits) else hits
    if len(hits):
        out.append(f"the left edge near s = {s[hits[0, 0]]:.1f} m crosses the right edge near "
                   f"s = {s[hits[0, 1]]:.1f} m ({len(hits)} crossings)")
    return out


def problems(track, clearance: float = 0.0) -> list[str]:
    """Human-readable problems of ``track`` (empty list = a raceable circuit); see the module docstring."""
    probs = list(getattr(track, "input_problems", ()))
    inner = np.where(track.kappa > 0, track.w_left, track.w_right)
    ratio = np.abs(track.kappa) * inner
    if np.any(ratio >= 1.0):
        i = int(np.argmax(ratio))
        probs.append(f"s = {track.s[i]:.2f} m: radius {1 / abs(track.kappa[i]):.3f} m <= inner width {inner[i]:.3f} m "
                     f"(the inside edge folds over; Track.from_centerline clips such widths)")
    ok = []
    for c in track.crossovers:
        p = _crossing_problem(c, track.length)
        (probs.append(p) if p else ok.append(c))
    probs += _edge_problems(track, ok)
    p = _overlap_problem(track, ok, clearance)
    if p:
        probs.append(p)
    return probs
