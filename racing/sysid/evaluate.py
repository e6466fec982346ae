"""Prediction-error evaluation that cannot flatter: causal starts, baselines in every table.

For every horizon (one step, 0.5 s, 1 s by default) windows start at every ``stride``-th sample
(every sample for one step) and are rolled out open loop with the logged commands (the same
predictor as the fit, :mod:`racing.sysid.rollout`). The RMSE of a horizon is taken over *all*
steps 1..H of all windows (the error of the whole predicted trajectory): v_x, v_y [m/s], yaw rate
[rad/s], and the position error ``|p_pred - p_log|`` [m]. Position is also scored as deep-dynamics
does, at ``pos_horizon_s`` (0.6 s = 15 steps at 25 Hz): the average over steps 1..H of ``|p_pred -
p_log|`` (``pos_avg``) and its value at step H (``pos_final``), means over the windows [m].

**Initial states.** Every predictor starts every window from the same state estimate at the
window's first sample, by default the *causal* one of :func:`racing.sysid.rollout.prepare`
(straight-line fit over the last 5 samples; no future sample); ``init="raw"`` starts from the
logged sample itself. Positions and yaw are the logged samples. The centred smoothing the fit
uses is available as ``init="centred"`` but flatters one-step errors (it sees 3 future samples).

**Baselines** (always in the table): ``persistence`` keeps the initial state (``x_{k+h} = x_k``:
velocities, yaw rate and position constant); ``constant-velocity`` keeps the body velocities and
yaw rate and moves the car along the arc they describe (its velocity errors equal persistence's,
its position errors are the meaningful baseline). A model worth anything beats persistence on
v_x, v_y, r and constant velocity on position.

Models: ``base`` (the un-fitted car; for pedal logs with the pedal map's regression start values,
:func:`racing.sysid.pedals.initial_map`), ``parametric`` (fitted), ``semi-parametric`` (fitted +
residual). A residual with filter states starts from its filters run over the log's commands
*before* the window (:func:`racing.sysid.rollout.aug_history`). Evaluate on held-out logs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from racing.models.params import VehicleParams
from racing.models.residual import ResidualWeights
from racing.sysid import rollout as ro
from racing.sysid.pedals import initial_map

METRICS = ("vx", "vy", "yaw_rate", "pos")
UNITS = {"vx": "m/s", "vy": "m/s", "yaw_rate": "rad/s", "pos": "m", "pos_avg": "m", "pos_final": "m"}
BASELINES = ("persistence", "constant-velocity")


@dataclass
class EvalResult:
    """rmse[model][horizon_label][metric] -> float; horizons: label -> seconds; example traces for plots.

    position[model] -> {"pos_avg", "pos_final"} at ``pos_horizon_s``; init : initial-state mode
    """

    rmse: dict
    horizons: dict
    n_windows: dict
    traces: dict = field(default_factory=dict)
    position: dict = field(default_factory=dict)
    pos_horizon_s: float = 0.6
    init: str = "causal"

    def table(self) -> str:
        models = list(self.rmse)
        w = max(12, max(len(m) for m in models) + 2)
        lines = [f"initial states: {self.init}; RMSE over all steps of each horizon",
                 f"{'horizon':<10}{'metric':<18}" + "".join(f"{m:>{w}}" for m in models)]
        for h in self.horizons:
            for k in METRICS:
                vals = [self.rmse[m][h][k] for m in models]
                lines.append(f"{h:<10}{k + ' [' + UNITS[k] + ']':<18}" + "".join(f"{v:>{w}.4f}" for v in vals))
        if self.position:
            lab = f"{self.pos_horizon_s:g} s"
            for k in ("pos_avg", "pos_final"):
                vals = [self.position[m][k] for m in models]
                lines.append(f"{lab:<10}{k + ' [m]':<18}" + "".join(f"{v:>{w}.4f}" for v in vals))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"rmse": self.rmse, "horizons_s": self.horizons, "n_windows": self.n_windows,
                "position": self.position, "pos_horizon_s": self.pos_horizon_s, "init": self.init}

    def verdict(self, model: str = "parametric") -> list[str]:
        """What ``model`` predicts worse than the base car (when evaluated) or than persistence (holding the last
        value), per horizon and metric, in words; empty when it beats both everywhere. On held-out data these are
        the places where the fit does not carry over; a caller reports them (``racing fit`` does)."""
        out = []
        for other, what in (("base", "the base car"), ("persistence", "holding the last value")):
            if other not in self.rmse or model not in self.rmse:
                continue
            for h in self.horizons:
                worse = [f"{k} {self.rmse[model][h][k]:.4g} vs {self.rmse[other][h][k]:.4g} {UNITS[k]}"
                         for k in METRICS if k != "pos" and self.rmse[model][h][k] > self.rmse[other][h][k]]
                if worse:
                    out.append(f"{h}: worse than {what} in {', '.join(worse)}")
        return out

    def reduction(self, horizon: str, metric: str, a: str = "parametric", b: str = "semi-parametric") -> float:
        """Relative RMSE reduction of ``b`` versus ``a`` (0.5 = halved)."""
        return 1.0 - self.rmse[b][horizon][metric] / self.rmse[a][horizon][metric]


def _label(h_s: float, dt: float) -> str:
    return "one-step" if h_s <= dt * 1.01 else f"{round(h_s, 3):g} s"


def baseline_predictions(data: ro.Data, H: int, starts: np.ndarray, kind: str) -> np.ndarray:
    """Predictions ``[W, H, 7]`` of a baseline: "persistence" or "constant-velocity" (module doc)."""
    x0 = data.init[starts]
    out = np.repeat(x0[:, None, :], H, axis=1)
    if kind == "persistence":
        return out
    if kind != "constant-velocity":
        raise ValueError(f"unknown baseline {kind!r}")
    dt = data.dt[starts][:, None]  # segment-uniform steps
    k = np.arange(1, H + 1)[None, :]
    vx, vy, r, psi0 = x0[:, 3:4], x0[:, 4:5], x0[:, 5:6], x0[:, 2:3]
    # exact arc: displacement over each step is the mid-step heading's velocity times sinc(r dt / 2)
    mid = psi0 + r * dt * (np.arange(H)[None, :] + 0.5)
    sinc = np.sinc(r * dt / (2 * np.pi))
    dx = (np.cos(mid) * vx - np.sin(mid) * vy) * dt * sinc
    dy = (np.sin(mid) * vx + np.cos(mid) * vy) * dt * sinc
    out[..., 0] = x0[:, 0:1] + np.cumsum(dx, axis=1)
    out[..., 1] = x0[:, 1:2] + np.cumsum(dy, axis=1)
    out[..., 2] = psi0 + r * dt * k
    return out


def evaluate(logs, params: VehicleParams, residual: ResidualWeights | None = None,
             horizons_s=(None, 0.5, 1.0), stride: int = 5, h_max: float = 0.01, trace_horizon_s: float = 1.0,
             base_params: VehicleParams | None = None, pedal_theta=None, init: str = "causal",
             min_speed: float = 0.0, pos_horizon_s: float | None = 0.6, baselines: bool = True) -> EvalResult:
    """RMSE tables of the fitted model, the baselines, and optionally the base car and the semi-parametric model.

    logs : DriveLogs (prepared here with ``init`` and ``min_speed``) or a prepared ``rollout.Data`` (used as is)
    horizons_s : None stands for one step; base_params (optional) adds the un-fitted model as "base"
    pedal_theta : the fitted pedal map of pedal logs (:class:`racing.sysid.parametric.FitResult.pedal_theta`)
    pos_horizon_s : horizon of the average / final position errors [s] (None: none)
    """
    data = logs if isinstance(logs, ro.Data) else ro.prepare(list(logs), init=init, min_speed=min_speed)
    dt = 1.0 / data.rate_hz
    models = {}
    base_ped = None
    if data.pedals is not None:
        if pedal_theta is None:
            raise ValueError("pedal logs need the fitted pedal map (pedal_theta)")

        base_ped = initial_map(data.pedals, data.meas[:, 3], data.t, data.seg).to_array()
    if base_params is not None:
        models["base"] = (base_params.to_array(), None, base_ped, _delayed(data, base_params))
    models["parametric"] = (params.to_array(), None, pedal_theta, _delayed(data, params))
    if residual is not None:
        models["semi-parametric"] = (params.to_array(), residual.flat, pedal_theta, models["parametric"][3])
    names = list(models) + (list(BASELINES) if baselines else [])
    rmse = {m: {} for m in names}
    horizons, nwin = {}, {}
    traces = {}

    def predict(m, H, starts):
        if m in BASELINES:
            return baseline_predictions(data, H, starts, m)
        p, w, q, dat = models[m]
        return ro.predict(dat, p, H, starts, "dynamic", residual_flat=w, h_max=h_max, pedal_theta=q)

    for h_s in horizons_s:
        H = 1 if h_s is None else max(1, int(round(h_s * data.rate_hz)))
        label = _label(H * dt, dt)
        horizons[label] = H * dt
        starts = ro.starts_or_raise(data, H, 1 if H == 1 else stride, H * dt)
        nwin[label] = int(starts.size)
        tgt = ro.targets(data, H, starts)
        for m in names:
            e = predict(m, H, starts) - tgt
            rmse[m][label] = {
                "vx": float(np.sqrt(np.mean(e[..., 3] ** 2))),
                "vy": float(np.sqrt(np.mean(e[..., 4] ** 2))),
                "yaw_rate": float(np.sqrt(np.mean(e[..., 5] ** 2))),
                "pos": float(np.sqrt(np.mean(e[..., 0] ** 2 + e[..., 1] ** 2))),
            }
    position = {}
    if pos_horizon_s:
        H = max(1, int(round(pos_horizon_s * data.rate_hz)))
        starts = ro.starts_or_raise(data, H, stride, H * dt)
        tgt = ro.targets(data, H, starts)
        for m in names:
            d = np.hypot(*(predict(m, H, starts) - tgt)[..., :2].transpose(2, 0, 1))
            position[m] = {"pos_avg": float(d.mean()), "pos_final": float(d[:, -1].mean())}
    # example traces for plots: consecutive non-overlapping windows of trace_horizon_s
    H = max(1, int(round(trace_horizon_s * data.rate_hz)))
    starts = data.starts(H, H)
    if starts.size:
        traces["t"] = data.t
        traces["meas"] = data.meas
        traces["cmd"] = data.cmd  # for the steering channel of the fit plot
        traces["starts"] = starts
        traces["H"] = H
        for m in models:
            traces[m] = predict(m, H, starts)
    return EvalResult(rmse=rmse, horizons=horizons, n_windows=nwin, traces=traces, position=position,
                      pos_horizon_s=float(pos_horizon_s or 0.0), init=data.init_mode)


def _delayed(data: ro.Data, params) -> ro.Data:
    """``data`` as the car ``params`` sees it: the steering command delayed by its ``steer_delay`` [s] (a log whose
    steering input is the measured angle has no servo, hence no delay)."""
    if not params.steer_delay or data.steer_input:
        return data
    return dataclasses.replace(data, cmd=ro.delayed_steer(data, params.steer_delay))
