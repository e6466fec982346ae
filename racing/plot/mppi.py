"""The MPPI picture (sampled rollouts coloured by weight, nominal plan, executed path) and a lap animation.

Input is data only: a snapshot dict from ``SimResult.snapshots`` (keys ``t``, ``state``,
``samples[R, T+1, 2]``, ``weights[R]``, ``nominal[T+1, 2]``, ``dt``) and the result itself.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection


def _draw_track(ax, track):
    try:
        from racing.plot.race import draw_track

        draw_track(ax, track)
    except ImportError:  # pragma: no cover - the lead's module is optional here
        for b in (track.left_boundary(), track.right_boundary()):
            bb = np.vstack([b, b[:1]])
            ax.plot(bb[:, 0], bb[:, 1], "k-", lw=0.8)
        ax.set_aspect("equal")


def draw_snapshot(ax, snap: dict, result=None, cmap: str = "viridis"):
    """Samples coloured by normalised weight (w / max w), nominal plan and, with ``result``, the executed path."""
    samples = np.asarray(snap["samples"])
    w = np.asarray(snap["weights"], dtype=float)
    if samples.size:
        # colour = log10(w / max w) clipped to [-6, 0]: the weights span many decades
        with np.errstate(divide="ignore"):
            lw = np.log10(w / w.max()) if w.size and w.max() > 0 else np.full(len(samples), -6.0)
        lw = np.clip(lw, -6.0, 0.0)
        order = np.argsort(lw)  # heaviest drawn last (on top)
        lc = LineCollection(samples[order], array=lw[order], cmap=cmap, linewidths=0.6,
                            alpha=0.6, norm=plt.Normalize(-6.0, 0.0))
        ax.add_collection(lc)
        plt.colorbar(lc, ax=ax, fraction=0.04, label="log10(weight / max weight)")
    nom = np.asarray(snap["nominal"])
    ax.plot(nom[:, 0], nom[:, 1], "r-", lw=2.0, label="nominal (plan)")
    if result is not None:
        t0 = snap["t"]
        horizon = snap.get("dt", 0.05) * (len(nom) - 1)
        sel = (result.t >= t0) & (result.t <= t0 + horizon)
        ax.plot(result.state[sel, 0], result.state[sel, 1], "k--", lw=1.6, label="executed")
    st = np.asarray(snap["state"])
    ax.plot(st[0], st[1], "o", color="tab:orange", ms=7, label="car")


def mppi_figure(snap: dict, track, result=None, margin: float | None = None, title: str | None = None):
    """Figure of one snapshot, zoomed on the rollouts."""
    fig, ax = plt.subplots(figsize=(8, 7))
    _draw_track(ax, track)
    draw_snapshot(ax, snap, result)
    pts = np.concatenate([np.asarray(snap["samples"]).reshape(-1, 2), np.asarray(snap["nominal"])])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    m = margin if margin is not None else 0.15 * float(max(hi - lo)) + 2.0 * float(np.mean(track.w_left))
    ax.set_xlim(lo[0] - m, hi[0] + m)
    ax.set_ylim(lo[1] - m, hi[1] + m)
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    K = snap.get("K", len(snap["samples"]))
    ax.set_title(title or f"MPPI at t = {snap['t']:.2f} s: {len(snap['samples'])} of K = {K} rollouts, "
                 f"ESS = {snap.get('ess', float('nan')):.0f}")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def save_mppi_plot(result, track, path, index: int = 0) -> Path:
    """Write the picture of ``result.snapshots[index]`` to ``path`` (png/pdf/svg)."""
    if not result.snapshots:
        raise ValueError("the result has no controller snapshots; race with --snapshot T (SimConfig.snapshot_times)")
    fig = mppi_figure(result.snapshots[index], track, result)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def save_snapshot_plots(result, track, out_dir) -> list[Path]:
    """One picture per snapshot: ``<out_dir>/mppi_t<time>.png``; returns the paths."""
    out = []
    for i, snap in enumerate(result.snapshots):
        out.append(save_mppi_plot(result, track, Path(out_dir) / f"mppi_t{snap['t']:07.2f}.png", index=i))
    return out


def animate_lap(result, track, path, fps: int = 20, speedup: float = 2.0, trail_s: float = 3.0) -> Path:
    """Animate the run (gif, or mp4 when ffmpeg is available): car, trail coloured by speed, snapshots when present.

    ``speedup`` = simulated seconds per real second; frames are taken every ``speedup / fps`` s.
    """
    from matplotlib import animation

    path = Path(path)
    t, X = result.t, result.state
    if t.size < 2:
        raise ValueError("nothing to animate: the result has fewer than 2 samples")
    step = max(1, int(round(speedup / fps / max(t[1] - t[0], 1e-9))))
    frames = np.arange(0, t.size, step)
    v = np.hypot(X[:, 3], X[:, 4])
    fig, ax = plt.subplots(figsize=(8, 7))
    _draw_track(ax, track)
    trail = LineCollection([], cmap="plasma", norm=plt.Normalize(float(v.min()), float(v.max()) + 1e-9), lw=2.0)
    ax.add_collection(trail)
    plt.colorbar(trail, ax=ax, fraction=0.04, label="speed [m/s]")
    span = float(np.ptp(track.xy, axis=0).max())
    car, = ax.plot([], [], "o", color="tab:red", ms=5)
    heading = ax.quiver([X[0, 0]], [X[0, 1]], [np.cos(X[0, 2])], [np.sin(X[0, 2])], color="tab:red", angles="xy",
                        scale_units="xy", scale=1.0 / (0.05 * span), width=0.008, zorder=5)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    s = result.summary()
    ax.set_title(f"{s['track']} / {s['car']} / {s['controller']}   laps [s]: "
                 f"{', '.join(f'{x:.2f}' for x in result.laps) or 'none'}   status: {s['status']}", fontsize=9)
    nom, = ax.plot([], [], "r-", lw=1.2, alpha=0.8)
    txt = ax.text(0.02, 0.97, "", transform=ax.transAxes, va="top")
    snaps = sorted(result.snapshots, key=lambda s: s["t"]) if result.snapshots else []
    n_trail = max(2, int(trail_s / max(t[1] - t[0], 1e-9)))

    def update(i):
        a = max(0, i - n_trail)
        pts = X[a:i + 1, :2]
        if len(pts) >= 2:
            seg = np.stack([pts[:-1], pts[1:]], axis=1)
            trail.set_segments(seg)
            trail.set_array(v[a:i])
        car.set_data([X[i, 0]], [X[i, 1]])
        heading.set_offsets([[X[i, 0], X[i, 1]]])
        heading.set_UVC([np.cos(X[i, 2])], [np.sin(X[i, 2])])
        near = [s for s in snaps if abs(s["t"] - t[i]) <= 0.5 * step * (t[1] - t[0])]
        if near:
            nom.set_data(near[0]["nominal"][:, 0], near[0]["nominal"][:, 1])
        txt.set_text(f"t = {t[i]:6.2f} s   v = {v[i]:5.1f} m/s   heading {np.degrees(X[i, 2]):6.1f} deg")
        return trail, car, heading, nom, txt

    anim = animation.FuncAnimation(fig, update, frames=frames, blit=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".mp4" and animation.writers.is_available("ffmpeg"):
        anim.save(path, writer=animation.FFMpegWriter(fps=fps))
    else:
        if path.suffix.lower() != ".gif":
            path = path.with_suffix(".gif")
        anim.save(path, writer=animation.PillowWriter(fps=fps))
    plt.close(fig)
    return path
