"""Figures of a closed-loop run (:class:`racing.sim.result.SimResult`)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection


def draw_track(ax, track, raceline: bool = True) -> None:
    """Track edges (black), centre line (dashed grey) and raceline (thin blue) on ``ax``."""
    left, right = track.left_boundary(), track.right_boundary()
    for b in (left, right):
        bb = np.vstack([b, b[:1]])
        ax.plot(bb[:, 0], bb[:, 1], "k-", lw=0.8)
    c = np.vstack([track.xy, track.xy[:1]])
    ax.plot(c[:, 0], c[:, 1], "--", color="0.6", lw=0.6)
    if raceline and track.raceline is not None:
        ax.plot(track.raceline.x, track.raceline.y, "-", color="tab:blue", lw=0.6, alpha=0.6, label="raceline")
    ax.plot(*track.xy[0], "k|", ms=12, mew=2)
    ax.set_aspect("equal")


def race_figure(result, track, title: str | None = None):
    """Track with the trajectory coloured by speed; speed and steering over distance."""
    fig = plt.figure(figsize=(12, 8))
    gs = fig.add_gridspec(2, 2, width_ratios=[1.35, 1.0])
    ax = fig.add_subplot(gs[:, 0])
    draw_track(ax, track)
    xy = result.state[:, :2]
    v = np.hypot(result.state[:, 3], result.state[:, 4])
    if len(xy) > 1:
        seg = np.stack([xy[:-1], xy[1:]], axis=1)
        lc = LineCollection(seg, cmap="viridis", linewidths=1.8)
        lc.set_array(v[:-1])
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, shrink=0.7, label="speed [m/s]")
    for ev in result.events:
        if ev["type"] == "off_track":
            i = int(np.searchsorted(result.t, ev["t"]))
            i = min(i, len(xy) - 1)
            ax.plot(xy[i, 0], xy[i, 1], "rx", ms=9)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    s = result.summary()
    laps = ", ".join(f"{x:.2f}" for x in result.laps) or "none"
    ax.set_title(title or f"{s['track']} / {s['car']} / {s['controller']}\nlaps [s]: {laps}  status: {s['status']}")
    # distance along the run (unwrapped)
    dist = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    ax1 = fig.add_subplot(gs[0, 1])
    ax1.plot(dist, v, lw=1.0, label="speed")
    ax1.plot(dist, result.command[:, 1], lw=0.7, alpha=0.7, label="speed command")
    for t_end in result.lap_end_t:
        ax1.axvline(np.interp(t_end, result.t, dist), color="0.5", lw=0.6, ls=":")
    ax1.set_ylabel("speed [m/s]")
    ax1.legend(loc="lower right", fontsize=8)
    ax1.grid(alpha=0.3)
    ax2 = fig.add_subplot(gs[1, 1], sharex=ax1)
    ax2.plot(dist, np.degrees(result.state[:, 6]), lw=1.0, label="steering")
    ax2.plot(dist, np.degrees(result.command[:, 0]), lw=0.7, alpha=0.7, label="steering command")
    ax2.set_ylabel("steering [deg]")
    ax2.set_xlabel("distance driven [m]")
    ax2.legend(loc="lower right", fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def save_race_plot(result, track, path: str | Path, title: str | None = None) -> Path:
    """Write :func:`race_figure` as a PNG; returns the path."""
    fig = race_figure(result, track, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
