"""Figures of a closed-loop run (:class:`racing.sim.result.SimResult`): what a race engineer reads.

``race_figure``: the map (trajectory coloured by speed, driving direction, start line, off-track excursions) and,
over the distance along the lap with every lap overlaid, the speed beside the reference line's, the lateral offset
between the track edges, the time delta to the reference lap (the racing line's own time profile when the track
given to the plot carries one: the cached minimum-time lap for a race, :attr:`racing.assembly.Race.plot_track`;
else the run's best complete lap), and the controller's compute time against the period (late calls as markers,
or as a rug along the top when there are many).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D


def draw_track(ax, track, raceline: bool = True, direction: bool = True) -> None:
    """Track edges (black), centre line (dashed grey), raceline (thin blue), start line and driving direction."""
    left, right = track.left_boundary(), track.right_boundary()
    for b in (left, right):
        bb = np.vstack([b, b[:1]])
        ax.plot(bb[:, 0], bb[:, 1], "k-", lw=0.8)
    c = np.vstack([track.xy, track.xy[:1]])
    ax.plot(c[:, 0], c[:, 1], "--", color="0.6", lw=0.6)
    if raceline and track.raceline is not None:
        ax.plot(track.raceline.x, track.raceline.y, "-", color="tab:blue", lw=0.6, alpha=0.6, label="raceline")
    ax.plot([left[0, 0], right[0, 0]], [left[0, 1], right[0, 1]], "k-", lw=2.5)  # start / finish line
    if direction:
        span = float(np.ptp(track.xy, axis=0).max())
        n_arrows = 6
        for i in np.linspace(0, track.n_samples, n_arrows, endpoint=False).astype(int):
            p, psi = track.xy[i], track.psi[i]
            d = 0.04 * span * np.array([np.cos(psi), np.sin(psi)])
            ax.annotate("", xy=p + d, xytext=p, arrowprops=dict(arrowstyle="-|>", color="0.35", lw=1.2))
    ax.set_aspect("equal")


def lap_segments(result, track) -> list[dict]:
    """Split the run into laps along the unwrapped arc length: for each lap (complete or not) the indices ``i``,
    the distance along the lap ``d`` [m] (0 at the start line), the time in the lap ``tl`` [s] and ``complete``."""
    t, s = result.t, result.frenet[:, 0]
    if t.size == 0:
        return []
    L = track.length
    prog = np.unwrap(s * (2 * np.pi / L)) * (L / (2 * np.pi))
    prog = prog - (0.0 if prog[0] < 0.5 * L else L)  # from the start line: a car placed just behind it starts < 0
    starts = [0.0] + list(result.lap_end_t)
    out = []
    for k, t0 in enumerate(starts):
        t1 = result.lap_end_t[k] if k < len(result.lap_end_t) else np.inf
        i = np.flatnonzero((t >= t0) & (t < t1))
        if i.size < 2:
            continue
        out.append({"lap": k + 1, "i": i, "d": prog[i] - k * L, "tl": t[i] - t0, "complete": np.isfinite(t1)})
    return out


def _time_at(d_ref, t_ref, d):
    """Time [s] at distance ``d`` by interpolation of a monotonic (d_ref, t_ref) profile."""
    order = np.maximum.accumulate(d_ref)
    keep = np.concatenate([[True], np.diff(order) > 1e-9])
    return np.interp(d, order[keep], t_ref[keep], left=np.nan, right=np.nan)


def line_profile(track):
    """``(d [m], t [s], v [m/s])`` of the track's racing line against the distance along the centre line (0 at the
    start line), or None without a line (or one with a non-positive speed)."""
    rl = track.raceline
    if rl is None or not np.all(rl.vx > 0):
        return None
    ds = np.diff(np.append(rl.s, rl.length))
    t_rl = np.concatenate([[0.0], np.cumsum(ds / rl.vx)])[:-1]
    s_c, _, _ = track.frenet_path(np.column_stack([rl.x, rl.y]))
    d = np.unwrap(s_c * (2 * np.pi / track.length)) * (track.length / (2 * np.pi))
    return d - d[0], t_rl, rl.vx


def _reference(result, track, laps):
    """(label, d [m], t [s]) of the reference lap: the racing line's time profile, else the best complete lap."""
    prof = line_profile(track)
    if prof is not None:
        return "reference line", prof[0], prof[1]
    done = [lp for lp in laps if lp["complete"]]
    if done:
        best = min(done, key=lambda lp: result.laps[lp["lap"] - 1])
        return f"lap {best['lap']} (best)", best["d"], best["tl"]
    return None


def race_figure(result, track, title: str | None = None):
    """The race figure (see the module docstring); returns a matplotlib Figure."""
    s = result.summary()
    laps = lap_segments(result, track)
    colors = plt.get_cmap("tab10")
    fig = plt.figure(figsize=(15, 9.5))
    gs = fig.add_gridspec(4, 2, width_ratios=[1.15, 1.0], height_ratios=[1.2, 1.0, 0.9, 0.8])
    ax = fig.add_subplot(gs[:, 0])
    draw_track(ax, track)
    xy = result.state[:, :2]
    v = np.hypot(result.state[:, 3], result.state[:, 4])
    if len(xy) > 1:
        seg = np.stack([xy[:-1], xy[1:]], axis=1)
        lc = LineCollection(seg, cmap="viridis", linewidths=1.8)
        lc.set_array(v[:-1])
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, orientation="horizontal", shrink=0.8, pad=0.07, label="speed [m/s]")
    handles = [Line2D([], [], color="k", lw=2.5, label="start / finish"),
               Line2D([], [], color="0.35", marker=r"$\rightarrow$", ls="", ms=12, label="driving direction")]
    off = [ev for ev in result.events if ev["type"] == "off_track"]
    for ev in off:
        i = min(int(np.searchsorted(result.t, ev["t"])), len(xy) - 1)
        ax.plot(xy[i, 0], xy[i, 1], "x", color="red", ms=11, mew=2.5)
    handles.append(Line2D([], [], color="red", marker="x", ls="", ms=9, mew=2.5,
                          label=f"off track ({len(off)})"))
    if track.raceline is not None:
        handles.append(Line2D([], [], color="tab:blue", lw=0.8, label="raceline"))
    ax.legend(handles=handles, loc="best", fontsize=8)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    lap_txt = ", ".join(f"{x:.2f}" for x in result.laps) or "none"
    ax.set_title(title or f"{s['track']} / {s['car']} / {s['controller']}\nlaps [s]: {lap_txt}   status: {s['status']}")

    a_v = fig.add_subplot(gs[0, 1])
    a_n = fig.add_subplot(gs[1, 1], sharex=a_v)
    a_dt = fig.add_subplot(gs[2, 1], sharex=a_v)
    a_c = fig.add_subplot(gs[3, 1])
    for k, lp in enumerate(laps):
        style = dict(color=colors(k % 10), lw=1.0, ls="-" if lp["complete"] else ":")
        lap_s = result.laps[lp["lap"] - 1] if lp["complete"] else None
        label = f"lap {lp['lap']}" + (f" {lap_s:.2f} s" if lap_s is not None else " (incomplete)")
        a_v.plot(lp["d"], v[lp["i"]], label=label, **style)
        a_n.plot(lp["d"], result.frenet[lp["i"], 1], **style)
    prof = line_profile(track)
    if prof is not None:
        a_v.plot(prof[0], prof[2], color="0.3", lw=0.9, ls="--", label="reference line")
    a_v.set_ylabel("speed [m/s]")
    a_v.legend(loc="lower right", fontsize=7, ncol=2)
    a_v.grid(alpha=0.3)
    sg = np.linspace(0, track.length, 400)
    wl, wr = track.widths_at(sg)
    a_n.fill_between(sg, -wr, wl, color="0.92", zorder=0)
    a_n.plot(sg, wl, "k-", lw=0.6)
    a_n.plot(sg, -wr, "k-", lw=0.6)
    a_n.set_ylabel("lateral offset n [m]\n(+ left, edges black)")
    a_n.grid(alpha=0.3)
    ref = _reference(result, track, laps)
    if ref is not None:
        name, d_ref, t_ref = ref
        for k, lp in enumerate(laps):
            delta = lp["tl"] - _time_at(d_ref, t_ref, lp["d"])
            a_dt.plot(lp["d"], delta, color=colors(k % 10), lw=1.0, ls="-" if lp["complete"] else ":")
        a_dt.axhline(0.0, color="k", lw=0.6)
        a_dt.set_ylabel(f"time delta [s]\nto {name}")
    else:
        a_dt.text(0.5, 0.5, "no complete lap and no raceline: no reference", ha="center", va="center",
                  transform=a_dt.transAxes)
        a_dt.set_ylabel("time delta [s]")
    a_dt.set_xlabel("distance along the lap [m]")
    a_dt.grid(alpha=0.3)
    a_dt.set_xlim(0, track.length)

    _compute_panel(a_c, result, s)
    fig.tight_layout()
    return fig


#: late calls drawn one marker each up to this count; a rug along the top above it
MAX_MARKERS = 60


def _compute_panel(a_c, result, s: dict) -> None:
    """Compute time per call [ms] against the period; the y axis stops at 3 periods (taller calls are clipped at
    the top and counted in the legend), late calls as markers or, when many, as a rug along the top."""
    c_ms = result.compute_s * 1e3
    period_ms = 1e3 * (result.period_s if result.period_s else 1.0 / (s.get("rate_hz") or 50.0))
    top = min(3.0 * period_ms, max(1.3 * period_ms, float(np.percentile(c_ms, 99.5)) * 1.1 if c_ms.size else 1.0))
    a_c.plot(result.t, np.minimum(c_ms, top), lw=0.6, color="tab:purple", label="compute per call")
    a_c.axhline(period_ms, color="red", ls="--", lw=1.0, label=f"period {period_ms:g} ms")
    over = c_ms > period_ms
    n_over = int(over.sum())
    if n_over:
        what = ("deadline misses" if s.get("realtime") else "over the period (off-line)") + \
            f" ({n_over}, {100.0 * n_over / max(c_ms.size, 1):.1f} %)"
        if n_over <= MAX_MARKERS:
            a_c.plot(result.t[over], np.minimum(c_ms[over], top), "v", color="red", ms=3, alpha=0.6, label=what)
        else:
            a_c.vlines(result.t[over], 0.9, 1.0, transform=a_c.get_xaxis_transform(), color="red", lw=0.4,
                       alpha=0.5, label=what)
    a_c.set_xlabel("t [s]")
    a_c.set_ylabel("compute [ms]" + (f"\n(clipped at {top:.3g})" if c_ms.size and c_ms.max() > top else ""))
    a_c.set_ylim(0, top)
    a_c.legend(loc="upper left", fontsize=7)
    a_c.grid(alpha=0.3)


def save_race_plot(result, track, path: str | Path, title: str | None = None) -> Path:
    """Write :func:`race_figure` as a PNG; returns the path."""
    fig = race_figure(result, track, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
