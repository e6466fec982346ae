"""Prediction-error evaluation: one-step and open-loop multi-step RMSE, parametric vs semi-parametric.

For every horizon (one step, 0.5 s, 1 s by default) windows start at every ``stride``-th logged
(smoothed) state and are rolled out open loop with the logged commands (the same predictor as
the fit, :mod:`racing.sysid.rollout`). The RMSE of a horizon is taken over *all* steps 1..H of all
windows (the error of the whole predicted trajectory): v_x, v_y [m/s], yaw rate [rad/s], and the
position error ``|p_pred - p_log|`` [m]. Evaluate on held-out laps/logs, not the fit data.

Both models start every window from the same (smoothed) logged state, get the same commands,
step and horizon. A residual with filter states (:mod:`racing.models.residual`) additionally
starts from its filters run over the log's commands *before* the window (causal history, what a
controller would carry), see :func:`racing.sysid.rollout.aug_history`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from racing.models.params import VehicleParams
from racing.models.residual import ResidualWeights
from racing.sysid import rollout as ro

METRICS = ("vx", "vy", "yaw_rate", "pos")
UNITS = {"vx": "m/s", "vy": "m/s", "yaw_rate": "rad/s", "pos": "m"}


@dataclass
class EvalResult:
    """rmse[model][horizon_label][metric] -> float; horizons: label -> seconds; example traces for plots."""

    rmse: dict
    horizons: dict
    n_windows: dict
    traces: dict = field(default_factory=dict)

    def table(self) -> str:
        models = list(self.rmse)
        lines = [f"{'horizon':<10}{'metric':<10}" + "".join(f"{m:>18}" for m in models) +
                 ("   change" if len(models) == 2 else "")]
        for h in self.horizons:
            for k in METRICS:
                vals = [self.rmse[m][h][k] for m in models]
                row = f"{h:<10}{k + ' [' + UNITS[k] + ']':<10}" + "".join(f"{v:>18.4f}" for v in vals)
                if len(vals) == 2 and vals[0] > 0:
                    row += f"  {(vals[1] / vals[0] - 1) * 100:+6.1f}%"
                lines.append(row)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"rmse": self.rmse, "horizons_s": self.horizons, "n_windows": self.n_windows}

    def reduction(self, horizon: str, metric: str, a: str = "parametric", b: str = "semi-parametric") -> float:
        """Relative RMSE reduction of ``b`` versus ``a`` (0.5 = halved)."""
        return 1.0 - self.rmse[b][horizon][metric] / self.rmse[a][horizon][metric]


def _label(h_s: float, dt: float) -> str:
    return "one-step" if h_s <= dt * 1.01 else f"{h_s:g} s"


def evaluate(logs, params: VehicleParams, residual: ResidualWeights | None = None,
             horizons_s=(None, 0.5, 1.0), stride: int = 5, h_max: float = 0.01, trace_horizon_s: float = 1.0,
             base_params: VehicleParams | None = None) -> EvalResult:
    """RMSE tables of the parametric model (and the semi-parametric one when ``residual`` is given).

    horizons_s : None stands for one step; base_params (optional) adds the un-fitted model as "base"
    """
    data = logs if isinstance(logs, ro.Data) else ro.prepare(list(logs))
    dt = 1.0 / data.rate_hz
    models = {}
    if base_params is not None:
        models["base"] = (base_params.to_array(), None)
    models["parametric"] = (params.to_array(), None)
    if residual is not None:
        models["semi-parametric"] = (params.to_array(), residual.flat)
    rmse = {m: {} for m in models}
    horizons, nwin = {}, {}
    traces = {}
    for h_s in horizons_s:
        H = 1 if h_s is None else max(1, int(round(h_s * data.rate_hz)))
        label = _label(H * dt, dt)
        horizons[label] = H * dt
        starts = ro.starts_or_raise(data, H, 1 if H == 1 else stride, H * dt)
        nwin[label] = int(starts.size)
        tgt = ro.targets(data, H, starts)
        for m, (p, w) in models.items():
            pred = ro.predict(data, p, H, starts, "dynamic", residual_flat=w, h_max=h_max)
            e = pred - tgt
            rmse[m][label] = {
                "vx": float(np.sqrt(np.mean(e[..., 3] ** 2))),
                "vy": float(np.sqrt(np.mean(e[..., 4] ** 2))),
                "yaw_rate": float(np.sqrt(np.mean(e[..., 5] ** 2))),
                "pos": float(np.sqrt(np.mean(e[..., 0] ** 2 + e[..., 1] ** 2))),
            }
    # example traces for plots: consecutive non-overlapping windows of trace_horizon_s
    H = max(1, int(round(trace_horizon_s * data.rate_hz)))
    starts = data.starts(H, H)
    if starts.size:
        traces["t"] = data.t
        traces["meas"] = data.meas
        traces["cmd"] = data.cmd  # for the steering channel of the fit plot
        traces["starts"] = starts
        traces["H"] = H
        for m, (p, w) in models.items():
            traces[m] = ro.predict(data, p, H, starts, "dynamic", residual_flat=w, h_max=h_max)
    return EvalResult(rmse=rmse, horizons=horizons, n_windows=nwin, traces=traces)
