#!/usr/bin/env python3
"""Generate the project's own tracks ``tracks/<name>/{centerline.csv, track.yaml}`` from a layout.

Each track is a sequence of elements along the driving direction:

* ``S(length)``                     a straight [m];
* ``S(length, free=True)``          a straight whose length may change so that the loop closes (at least two
                                    per track, not all parallel);
* ``T(angle_deg, radius, ramp)``    a corner turning ``angle_deg`` (positive = left) with a constant radius
                                    [m] between two clothoid ramps of length ``ramp`` [m] (curvature goes
                                    linearly 0 -> 1/radius -> 0, so the curvature is continuous).

The turning angles sum to +360 deg (counter-clockwise) or -360 deg (clockwise), which closes the heading
exactly; the free straights close the position: their headings do not depend on their lengths, so the
smallest (length-weighted) change of their nominal lengths that closes the loop is a linear solve. The centre line is integrated finely, written every ``spacing`` metres, loaded back with
:class:`racing.track.Track` and checked: length and width ranges, radius of curvature > inner width,
no self-intersection of the centre line or edges, clearance between distinct parts of the track.

Usage::

    python tools/make_tracks.py                  # write all tracks, print a summary
    python tools/make_tracks.py --preview /tmp/tracks.png [--check-only]
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from racing.track import Track, write_centerline  # noqa: E402


@dataclass(frozen=True)
class S:
    length: float
    free: bool = False


@dataclass(frozen=True)
class T:
    angle_deg: float
    radius: float
    ramp: float = 0.0


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    scale: str  # "1:10" or "full"
    width: float  # half width: w_left = w_right [m]
    elements: tuple
    spacing: float  # output point spacing [m]
    length_range: tuple[float, float]
    min_radius: float  # required minimum radius [m]
    clearance: float  # required edge-to-edge gap between distinct parts [m]
    start_heading_deg: float = 0.0


# ------------------------------------------------------------------------------------------------
# Layouts. Names of the features in comments; angles in degrees, lengths in metres.
# ------------------------------------------------------------------------------------------------
LAB_LOOP = Layout(
    name="lab_loop",
    description="1:10 scale lab circuit (counter-clockwise): long main straight into a left hairpin, "
                "a right kink, a fast left sweeper, a top straight, a left-right chicane, a double-apex "
                "left and a fast final corner onto the main straight.",
    scale="1:10", width=1.0, spacing=0.1, length_range=(60.0, 200.0), min_radius=1.5, clearance=0.5,
    elements=(
        S(9.0, free=True),       # main straight, second half after start/finish
        T(178.0, 1.9, 0.8),      # T1 hairpin (left)
        S(3.0),
        T(-60.0, 4.0, 1.0),      # T2 right kink
        S(6.0),
        T(62.0, 7.5, 1.5),       # T3 fast left sweeper
        S(10.0, free=True),      # top straight
        T(35.0, 3.0, 0.8),       # T4-T5 chicane (left-right)
        S(0.6),
        T(-35.0, 3.0, 0.8),
        S(3.0, free=True),
        T(60.0, 3.2, 0.8),       # T6-T7 double-apex left
        S(1.5),
        T(62.0, 4.0, 0.8),
        S(4.0, free=True),
        T(58.0, 6.0, 1.0),       # T8 fast final left onto the main straight
        S(20.0),                  # main straight, first half before start/finish
    ),
)

GARAGE_GP = Layout(
    name="garage_gp",
    description="1:10 scale grand-prix layout (clockwise): a long straight into a right hairpin, "
                "esses, a right-left chicane, a fast right sweeper, a double right, a left and a "
                "final right onto the main straight.",
    scale="1:10", width=1.2, spacing=0.1, length_range=(60.0, 200.0), min_radius=1.5, clearance=0.5,
    elements=(
        S(16.0, free=True),      # main straight (second half)
        T(-175.0, 2.0, 1.0),     # T1 hairpin (right)
        S(4.0),
        T(45.0, 5.0, 1.0),       # T2-T4 esses
        S(3.0),
        T(-75.0, 5.0, 1.0),
        T(45.0, 6.0, 1.0),
        S(8.0, free=True),
        T(-40.0, 2.6, 0.8),      # T5-T6 chicane (right-left)
        S(0.5),
        T(40.0, 2.6, 0.8),
        S(6.0),
        T(-70.0, 10.0, 2.0),     # T7 fast right sweeper
        S(6.0, free=True),
        T(-70.0, 4.5, 1.0),      # T8-T9 double right
        S(2.0),
        T(-60.0, 5.5, 1.0),
        S(5.0, free=True),
        T(-40.0, 6.0, 1.5),      # T10 right
        S(4.0, free=True),
        T(40.0, 3.5, 1.0),       # T11 final left onto the main straight
        S(14.0),                 # main straight (first half)
    ),
)

RIDGE_RING = Layout(
    name="ridge_ring",
    description="Full-size circuit (clockwise): a 900 m main straight into a tight right hairpin, "
                "a left-right infield section, a high-speed sweeper along the ridge, a chicane, a medium right, a "
                "left-right complex and a fast final right back to the pit straight.",
    scale="full", width=6.0, spacing=2.0, length_range=(2000.0, 5000.0), min_radius=15.0, clearance=15.0,
    elements=(
        S(450.0, free=True),     # main straight (second half)
        T(-172.0, 20.0, 25.0),   # T1 hairpin (right)
        S(150.0),
        T(80.0, 60.0, 25.0),     # T2 left
        S(150.0, free=True),
        T(-70.0, 50.0, 25.0),    # T3 right
        S(120.0),
        T(40.0, 140.0, 40.0),    # T4 fast left
        S(200.0, free=True),
        T(-75.0, 250.0, 60.0),   # T5 ridge sweeper (fast right)
        S(300.0, free=True),     # back straight
        T(-45.0, 30.0, 15.0),    # T6-T7 chicane
        S(15.0),
        T(45.0, 30.0, 15.0),
        S(120.0),
        T(-95.0, 60.0, 25.0),    # T8 medium right
        S(80.0, free=True),
        T(40.0, 90.0, 30.0),     # T9-T10 left-right complex
        S(30.0),
        T(-65.0, 70.0, 30.0),
        S(60.0, free=True),
        T(-43.0, 150.0, 40.0),   # T11 fast final right
        S(450.0),                # main straight (first half)
    ),
)

HARBOUR_CIRCUIT = Layout(
    name="harbour_circuit",
    description="Full-size waterfront circuit (counter-clockwise): a 1 km harbour straight into a "
                "90-degree left, a chicane, fast sweepers along the quay, a left hairpin and a "
                "flowing run back to the start.",
    scale="full", width=7.0, spacing=2.0, length_range=(2000.0, 5000.0), min_radius=15.0, clearance=15.0,
    elements=(
        S(500.0),                # harbour straight (second half)
        T(90.0, 45.0, 25.0),     # T1 left
        S(180.0),
        T(-50.0, 35.0, 20.0),    # T2-T3 chicane (right-left)
        S(20.0),
        T(50.0, 35.0, 20.0),
        S(120.0, free=True),
        T(100.0, 200.0, 60.0),   # T4 fast quay sweeper (left)
        S(450.0, free=True),
        T(-60.0, 300.0, 60.0),   # T5 fast right
        S(200.0, free=True),
        T(176.0, 18.0, 25.0),    # T6 hairpin (left)
        S(250.0),
        T(-70.0, 80.0, 30.0),    # T7 right
        S(100.0, free=True),
        T(60.0, 150.0, 40.0),    # T8 flowing left
        S(200.0, free=True),
        T(64.0, 100.0, 40.0),    # T9 final left onto the harbour straight
        S(500.0),                # harbour straight (first half)
    ),
)

LAYOUTS = (LAB_LOOP, GARAGE_GP, RIDGE_RING, HARBOUR_CIRCUIT)


# ------------------------------------------------------------------------------------------------
# Construction
# ------------------------------------------------------------------------------------------------
def _curvature_nodes(elements, free_lengths):
    """Piecewise-linear curvature profile: node arc lengths [K] and curvatures [K]; free straight starts."""
    s_nodes, k_nodes = [0.0], [0.0]
    free_at = []
    it = iter(free_lengths)
    s = 0.0

    def add(ds, k):
        nonlocal s
        s += ds
        s_nodes.append(s)
        k_nodes.append(k)

    for el in elements:
        if isinstance(el, S):
            length = next(it) if el.free else el.length
            if el.free:
                free_at.append(s)
            if length > 0:
                add(length, 0.0)
        else:
            ang = math.radians(el.angle_deg)
            k = math.copysign(1.0 / el.radius, ang)
            const = abs(ang) * el.radius - el.ramp
            if const < 0:
                raise ValueError(f"corner {el}: ramp {el.ramp} m too long for the angle and radius")
            if el.ramp > 0:
                add(el.ramp, k)
            add(const, k)
            if el.ramp > 0:
                add(el.ramp, 0.0)
    return np.asarray(s_nodes), np.asarray(k_nodes), free_at


def integrate(layout: Layout, free_lengths, h: float):
    """Integrate the curvature profile with step ~h [m]; returns s [K], xy [K, 2] (last = end point), psi [K]."""
    s_nodes, k_nodes, free_at = _curvature_nodes(layout.elements, free_lengths)
    # sample every ~h but always hit the nodes exactly (exact heading for piecewise-linear curvature)
    pieces = [np.linspace(a, b, max(2, int(math.ceil((b - a) / h)) + 1))[:-1]
              for a, b in zip(s_nodes[:-1], s_nodes[1:]) if b > a]
    s = np.concatenate(pieces + [s_nodes[-1:]])
    k = np.interp(s, s_nodes, k_nodes)
    psi = math.radians(layout.start_heading_deg) + np.concatenate(
        [[0.0], np.cumsum(0.5 * (k[1:] + k[:-1]) * np.diff(s))])
    # Simpson-like integration of (cos psi, sin psi): midpoint heading from the quadratic heading model
    dk = np.diff(k)
    hs = np.diff(s)
    psi_mid = psi[:-1] + 0.5 * hs * k[:-1] + 0.125 * hs * dk
    c = (np.cos(psi[:-1]) + 4 * np.cos(psi_mid) + np.cos(psi[1:])) / 6.0
    sn = (np.sin(psi[:-1]) + 4 * np.sin(psi_mid) + np.sin(psi[1:])) / 6.0
    xy = np.column_stack([np.concatenate([[0.0], np.cumsum(hs * c)]), np.concatenate([[0.0], np.cumsum(hs * sn)])])
    return s, xy, psi, free_at


def build(layout: Layout, h: float | None = None):
    """Solve the closure; return xy [K, 2] (every ``spacing`` m, end point not repeated), the solved
    lengths of the free straights [m] and the integration residual [m]."""
    total = sum(el.angle_deg for el in layout.elements if isinstance(el, T))
    if abs(abs(total) - 360.0) > 1e-9:
        raise ValueError(f"{layout.name}: corner angles sum to {total} deg; expected +-360")
    nominal = np.array([el.length for el in layout.elements if isinstance(el, S) and el.free])
    if nominal.size < 2:
        raise ValueError(f"{layout.name}: {nominal.size} free straights; expected at least 2")
    h = h or layout.spacing / 5.0
    s, xy, psi, free_at = integrate(layout, nominal, h)
    gap = xy[-1] - xy[0]
    D = np.array([[math.cos(np.interp(a, s, psi)), math.sin(np.interp(a, s, psi))] for a in free_at]).T  # [2, F]
    # weighted minimum-norm change of the free lengths that closes the loop (long straights give more)
    W = np.diag(nominal)
    delta = W @ D.T @ np.linalg.solve(D @ W @ D.T, -gap)
    lengths = nominal + delta
    if np.any(lengths < 0.25 * nominal):
        raise ValueError(f"{layout.name}: closing the loop needs free straights {lengths.round(2).tolist()} m "
                         f"(nominal {nominal.round(2).tolist()}); adjust the layout (gap {gap.round(2).tolist()} m)")
    s, xy, psi, _ = integrate(layout, lengths, h)
    resid = xy[-1] - xy[0]
    xy = xy - (s / s[-1])[:, None] * resid[None, :]  # distribute the (tiny) integration residual
    # resample every `spacing` metres (closed: drop the end point)
    n = int(round(s[-1] / layout.spacing))
    sq = np.arange(n) * (s[-1] / n)
    out = np.column_stack([np.interp(sq, s, xy[:, 0]), np.interp(sq, s, xy[:, 1])])
    return out, lengths, float(np.linalg.norm(resid))


def check(layout: Layout, track: Track) -> list[str]:
    probs = list(track.geometry_problems(clearance=layout.clearance))
    lo, hi = layout.length_range
    if not lo <= track.length <= hi:
        probs.append(f"length {track.length:.1f} m outside [{lo}, {hi}]")
    width = track.w_left + track.w_right
    wlo, whi = (1.5, 3.0) if layout.scale == "1:10" else (10.0, 15.0)
    if width.min() < wlo or width.max() > whi:
        probs.append(f"width {width.min():.2f}..{width.max():.2f} m outside [{wlo}, {whi}]")
    if track.min_radius < layout.min_radius:
        probs.append(f"min radius {track.min_radius:.2f} m < required {layout.min_radius} m")
    return probs


def make(layout: Layout, out_dir: Path | None):
    xy, lengths, resid = build(layout)
    w = np.full(xy.shape[0], layout.width)
    track = Track.from_centerline(xy, w, w, name=layout.name, description=layout.description, scale=layout.scale)
    probs = check(layout, track)
    if out_dir is not None and not probs:
        folder = out_dir / layout.name
        folder.mkdir(parents=True, exist_ok=True)
        write_centerline(folder / "centerline.csv", xy, w, w, comments=[
            f"{layout.name}: generated by tools/make_tracks.py; do not edit by hand",
            f"scale {layout.scale}, closed loop (first point not repeated), driving direction = row order",
        ])
        (folder / "track.yaml").write_text(
            f"name: {layout.name}\n"
            f"description: \"{layout.description}\"\n"
            f"scale: \"{layout.scale}\"\n", encoding="utf-8")
    return track, lengths, resid, probs


def preview(tracks, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(14, 12))
    for ax, tr in zip(axes.ravel(), tracks):
        lb, rb = tr.left_boundary(), tr.right_boundary()
        ax.fill(np.r_[lb[:, 0], rb[::-1, 0]], np.r_[lb[:, 1], rb[::-1, 1]], color="0.85")
        ax.plot(*np.vstack([lb, lb[:1]]).T, "k", lw=0.8)
        ax.plot(*np.vstack([rb, rb[:1]]).T, "k", lw=0.8)
        sc = ax.scatter(tr.xy[:, 0], tr.xy[:, 1], c=np.abs(tr.kappa), s=2, cmap="viridis")
        ax.annotate("start", tr.xy[0], color="r")
        ax.arrow(*tr.xy[0], *(tr.xy[5] - tr.xy[0]) * 4, color="r", width=tr.w_left[0] * 0.2)
        fig.colorbar(sc, ax=ax, label="|kappa| [1/m]")
        ax.set_aspect("equal")
        ax.set_title(f"{tr.name}: {tr.length:.1f} m, min R {tr.min_radius:.2f} m")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "tracks",
                    help="output folder (default: <repo>/tracks)")
    ap.add_argument("--check-only", action="store_true", help="do not write files")
    ap.add_argument("--preview", type=Path, default=None, help="write a PNG preview here (keep it out of the repo)")
    ap.add_argument("--only", nargs="*", default=None, help="names of the layouts to build")
    args = ap.parse_args(argv)
    ok = True
    tracks = []
    for lay in LAYOUTS:
        if args.only and lay.name not in args.only:
            continue
        try:
            tr, lengths, resid, probs = make(lay, None if args.check_only else args.out)
        except ValueError as exc:
            print(f"{lay.name}: FAILED: {exc}")
            ok = False
            continue
        tracks.append(tr)
        width = tr.w_left + tr.w_right
        straight = _longest_straight(tr)
        print(f"{tr.name:16s} scale {lay.scale:5s} length {tr.length:8.1f} m  width {width.min():.2f} m "
              f"(w_left {tr.w_left.min():.2f}, w_right {tr.w_right.min():.2f})  min radius {tr.min_radius:6.2f} m  "
              f"longest straight {straight:6.1f} m  closure straights {np.round(lengths, 2).tolist()} m  "
              f"clearance {tr.min_clearance():.2f} m  points {tr.n_samples}")
        for p in probs:
            print(f"    PROBLEM: {p}")
            ok = False
    if args.preview is not None and tracks:
        preview(tracks, args.preview)
        print(f"preview written to {args.preview}")
    return 0 if ok else 1


def _longest_straight(tr: Track, kappa_max: float | None = None) -> float:
    """Longest run [m] with |kappa| below ``kappa_max`` (default 1 / (100 * width))."""
    if kappa_max is None:
        kappa_max = 1.0 / (100.0 * float(np.mean(tr.w_left + tr.w_right)))
    flat = np.abs(tr.kappa) < kappa_max
    if flat.all():
        return tr.length
    k = int(np.flatnonzero(~flat)[0])
    f = np.roll(flat, -k)
    best = run = 0
    for v in f:
        run = run + 1 if v else 0
        best = max(best, run)
    return best * tr.ds


if __name__ == "__main__":
    sys.exit(main())
