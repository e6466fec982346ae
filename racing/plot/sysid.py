"""Plots of system identification results (consume EvalResult / LearnResult; no computation)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

_SIGNALS = ((3, "v_x [m/s]", 1.0), (4, "v_y [m/s]", 1.0), (5, "yaw rate [rad/s]", 1.0),
            (6, "steering [deg]", 180.0 / np.pi))
_COLORS = {"base": "tab:gray", "parametric": "tab:blue", "semi-parametric": "tab:red"}
_NAMES = {"base": "base (before the fit)", "parametric": "fitted", "semi-parametric": "fitted + residual"}


def _joined(tr, model, col, sel, scale):
    """The open-loop predictions of the windows ``sel`` as one line with NaN gaps: (t, value, error)."""
    t, meas, H = tr["t"], tr["meas"], tr["H"]
    tt, vv, ee = [], [], []
    for j in sel:
        s = tr["starts"][j]
        idx = np.arange(s + 1, s + H + 1)
        pred = tr[model][j, :, col] * scale
        tt += [t[s], *t[idx], np.nan]
        vv += [meas[s, col] * scale, *pred, np.nan]
        ee += [0.0, *(pred - meas[idx, col] * scale), np.nan]
    return np.array(tt), np.array(vv), np.array(ee)


def fit_figure(ev, window=None, title: str | None = None):
    """Logged vs base vs fitted (vs fitted + residual) v_x, v_y, yaw rate and steering angle, open loop from the
    logged state at the start of each window (``ev.traces``: consecutive windows over the whole log), the
    steering command, and an error panel (prediction - logged yaw rate and v_y per model).

    window : (t0, t1) [s] to show part of the log; default the whole log. Returns a matplotlib Figure.
    """
    tr = ev.traces
    fig, axes = plt.subplots(len(_SIGNALS) + 2, 1, figsize=(13, 13), sharex=True,
                             gridspec_kw={"height_ratios": [1, 1, 1, 1, 0.8, 0.8]})
    if not tr:
        fig.text(0.5, 0.5, "no complete window to plot (log shorter than the horizon)", ha="center")
        return fig
    t, meas, starts, H = tr["t"], tr["meas"], tr["starts"], tr["H"]
    t0, t1 = (float(t[0]), float(t[-1])) if window is None else (float(window[0]), float(window[1]))
    if not t1 > t0:
        raise ValueError(f"window = {window}; expected (t0, t1) with t1 > t0 [s]")
    sel = [j for j, s in enumerate(starts) if t[s] >= t0 and t[min(s + H, len(t) - 1)] <= t1]
    if not sel:
        raise ValueError(f"window = ({t0:g}, {t1:g}) s holds no complete prediction window of {H} samples; the log "
                         f"spans {t[0]:.2f}..{t[-1]:.2f} s")
    shown = (t >= t0) & (t <= t1)
    models = [m for m in ("base", "parametric", "semi-parametric") if m in tr]
    h_label = next((h for h, v in ev.horizons.items() if abs(v - H * (t[1] - t[0])) < 1e-6), None)
    for ax, (col, label, scale) in zip(axes, _SIGNALS):
        ax.plot(t[shown], meas[shown, col] * scale, color="k", lw=1.6, alpha=0.55, zorder=3, label="logged")
        for m in models:
            tt, vv, _ = _joined(tr, m, col, sel, scale)
            ax.plot(tt, vv, color=_COLORS[m], lw=1.1, alpha=0.9, label=_NAMES[m])
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if "cmd" in tr:
        axes[3].plot(t[shown], tr["cmd"][shown, 0] * _SIGNALS[3][2], color="tab:orange", lw=0.8, ls="--",
                     label="steering command")
    for ax, (col, label) in zip(axes[4:], ((5, "yaw rate error [rad/s]"), (4, "v_y error [m/s]"))):
        for m in models:
            tt, _, ee = _joined(tr, m, col, sel, 1.0)
            rm = ev.rmse.get(m, {}).get(h_label, {}) if h_label else {}
            key = "yaw_rate" if col == 5 else "vy"
            rms = f" (RMSE {rm[key]:.3g})" if key in rm else ""
            ax.plot(tt, ee, color=_COLORS[m], lw=0.9, label=_NAMES[m] + rms)
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_ylabel(label)
        ax.legend(loc="upper right", fontsize=7)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8, ncol=len(models) + 1)
    axes[3].legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("t [s]")
    axes[-1].set_xlim(t0, t1)
    dt_w = H * (t[1] - t[0])
    axes[0].set_title(title or f"open-loop predictions over {dt_w:.2f} s windows from the logged state "
                               f"({len(sel)} windows, t = {t0:.1f}..{t1:.1f} s)")
    fig.tight_layout()
    return fig


def plot_predictions(ev, path, window=None, max_windows: int | None = None):
    """Write :func:`fit_figure` as a PNG (``max_windows``: only the first n windows); returns the path."""
    tr = ev.traces
    if window is None and max_windows is not None and tr:
        s = tr["starts"][:max_windows]
        window = (tr["t"][s[0]], tr["t"][min(s[-1] + tr["H"], len(tr["t"]) - 1)])
    fig = fit_figure(ev, window=window)
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
