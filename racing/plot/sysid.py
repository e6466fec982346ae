"""Plots of system identification results (consume EvalResult / LearnResult; no computation)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

_SIGNALS = ((3, "v_x [m/s]"), (4, "v_y [m/s]"), (5, "yaw rate [rad/s]"))


def plot_predictions(ev, path, max_windows: int = 12):
    """Predicted (open loop, each model) vs logged v_x, v_y, yaw rate over consecutive windows."""
    tr = ev.traces
    fig, axes = plt.subplots(len(_SIGNALS), 1, figsize=(11, 8), sharex=True)
    if not tr:
        fig.text(0.5, 0.5, "no complete window to plot", ha="center")
    else:
        t, meas, starts, H = tr["t"], tr["meas"], tr["starts"][:max_windows], tr["H"]
        i0, i1 = starts[0], starts[-1] + H + 1
        models = [m for m in ("base", "parametric", "semi-parametric") if m in tr]
        colors = {"base": "tab:gray", "parametric": "tab:blue", "semi-parametric": "tab:red"}
        for ax, (c, label) in zip(axes, _SIGNALS):
            ax.plot(t[i0:i1], meas[i0:i1, c], color="k", lw=0.8, label="logged")
            for m in models:
                for j, s in enumerate(starts):
                    tt = t[s + 1:s + H + 1]
                    ax.plot(tt, tr[m][j, :, c], color=colors[m], lw=1.2, label=m if j == 0 else None)
                    ax.plot(t[s], meas[s, c], "o", color=colors[m], ms=2)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(loc="upper right", fontsize=8)
        axes[-1].set_xlabel("t [s]")
        h = next(iter(ev.horizons)) if ev.horizons else ""
        axes[0].set_title(f"open-loop predictions over {H} steps from logged states ({h} ...)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_learn(res, path):
    """Best lap time and 1 s prediction RMSE per iteration of the learn loop."""
    its = [r.iteration for r in res.iterations]
    lap = [np.nan if r.best_lap_s is None else r.best_lap_s for r in res.iterations]
    vy = [np.nan if r.rmse_vy_1s is None else r.rmse_vy_1s for r in res.iterations]
    rr = [np.nan if r.rmse_r_1s is None else r.rmse_r_1s for r in res.iterations]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(its, lap, "o-")
    for i, r in zip(its, res.iterations):
        if r.off_track:
            a1.annotate(f"{r.off_track} off", (i, lap[i]), fontsize=8)
    a1.set_xlabel("iteration")
    a1.set_ylabel("best lap [s]")
    a1.set_title(f"{res.controller} on {res.track}")
    a1.grid(alpha=0.3)
    a2.semilogy(its, vy, "o-", label="v_y [m/s]")
    a2.semilogy(its, rr, "s-", label="yaw rate [rad/s]")
    a2.set_xlabel("iteration")
    a2.set_ylabel("1 s open-loop RMSE")
    a2.legend()
    a2.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
