r"""Parametric fit of the bicycle models from driving logs by multi-step prediction error.

For a parameter vector theta (a subset of :class:`VehicleParams`, the rest held at the base car's
values) the cost is the sum over windows w and steps k = 1..H of::

    sum_c  ( (x_pred[w, k, c](theta) - x_log[start_w + k, c]) / sigma_c )^2     c in (v_x, v_y, r, delta)
    + sum_i ( (theta_i - theta0_i) / (prior_rel * scale_i) )^2                    (weak prior, optional)

``x_pred`` is the open-loop prediction of :mod:`racing.sysid.rollout` (the car's actuator model
turns the logged commands into steering rate and acceleration); sigma_c is the measurement
noise of channel c estimated from the data (second differences). This "simulation error"
criterion uses whole 0.5 s windows, not finite-difference derivatives, so it is robust to the
sensor noise and matches how the model is used (MPPI rolls it out). The weak prior keeps
parameters the data does not excite (e.g. ``mu`` when the car never reaches the grip limit in
braking) at the base values instead of letting them wander; the report flags them.

Solver: ``scipy.optimize.least_squares`` (trust-region reflective, bounds, 2-point finite-
difference Jacobian; each residual evaluation is one parallel numba pass over all windows).
Standard errors: ``sqrt(diag((J^T J)^-1) * s^2)`` with ``s^2 = 2 cost / (m - n)`` at the optimum;
overlapping windows make them optimistic (treat them as relative indicators).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from racing.logs import DriveLog, LogError
from racing.models.params import PARAM_NAMES, VehicleParams
from racing.sysid import rollout as ro

#: parameters fitted by default, per model
DEFAULT_FIT = {
    "dynamic": ("inertia_z", "B_f", "C_f", "D_f", "B_r", "C_r", "D_r", "mu", "c_drag", "c_roll", "steer_gain", "steer_tau",
                "steer_offset"),
    "kinematic": ("l_f", "l_r", "steer_gain", "steer_offset"),
}
#: absolute bounds; a pair of None means relative bounds (0.2x .. 5x the base value)
BOUNDS = {
    "inertia_z": None, "mass": None, "l_f": None, "l_r": None, "h_cg": (0.0, 1.0),
    "B_f": (0.5, 40.0), "B_r": (0.5, 40.0), "C_f": (0.3, 3.0), "C_r": (0.3, 3.0),
    "D_f": (0.1, 5.0), "D_r": (0.1, 5.0), "E_f": (-3.0, 1.0), "E_r": (-3.0, 1.0), "mu": (0.05, 5.0),
    "c_roll": (0.0, 0.5), "c_drag": (0.0, 2.0), "steer_gain": (0.3, 3.0), "steer_offset": (-0.2, 0.2),
    "steer_tau": (0.0, 0.5), "speed_kp": (0.1, 100.0), "power_max": None,
}
#: additive scale of parameters whose base value may be 0
ABS_SCALE = {"steer_offset": 0.02, "c_roll": 0.02, "c_drag": 0.01, "E_f": 0.3, "E_r": 0.3, "h_cg": 0.05,
             "steer_tau": 0.02}
CHANNEL_UNITS = ("m/s", "m/s", "rad/s", "rad")
MU_SCAN = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.25, 1.5)


@dataclass
class FitResult:
    """Outcome of :func:`fit`.

    params : fitted VehicleParams (base values for the parameters not fitted)
    names : fitted parameter names; values, std_errors, initial : float64[n] (SI units)
    cost : final cost (0.5 sum r^2); cost_initial : at the base values
    rmse_initial, rmse_final : per-channel multi-step (horizon) RMSE on the fit data [SI]
    sigma : per-channel noise scale used as weights; n_windows, horizon_s, seconds, nfev, message
    poorly_identified : names whose relative standard error exceeds 20% or that sit at a bound
    """

    params: VehicleParams
    base: VehicleParams
    model: str
    names: tuple
    values: np.ndarray
    std_errors: np.ndarray
    initial: np.ndarray
    cost: float
    cost_initial: float
    rmse_initial: dict
    rmse_final: dict
    sigma: np.ndarray
    n_windows: int
    n_samples: int
    horizon_s: float
    seconds: float
    nfev: int
    message: str
    poorly_identified: list = field(default_factory=list)
    at_bound: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "params": {n: float(v) for n, v in zip(self.names, self.values)},
            "std_errors": {n: float(s) for n, s in zip(self.names, self.std_errors)},
            "initial": {n: float(v) for n, v in zip(self.names, self.initial)},
            "cost": float(self.cost), "cost_initial": float(self.cost_initial),
            "rmse_initial": self.rmse_initial, "rmse_final": self.rmse_final,
            "n_windows": self.n_windows, "n_samples": self.n_samples, "horizon_s": self.horizon_s,
            "seconds": round(self.seconds, 3), "nfev": self.nfev, "message": self.message,
            "poorly_identified": self.poorly_identified, "at_bound": self.at_bound,
        }

    def report(self) -> str:
        """The fit report as text."""
        lines = [f"Parametric fit ({self.model} model), {self.n_samples} samples, {self.n_windows} windows of "
                 f"{self.horizon_s:.2f} s, {self.seconds:.1f} s, {self.nfev} evaluations: {self.message}",
                 f"cost {self.cost_initial:.4g} -> {self.cost:.4g}",
                 "",
                 f"{'parameter':<14}{'base':>12}{'fitted':>12}{'std err':>11}{'rel':>8}{'change':>9}  note"]
        for n, v0, v, s in zip(self.names, self.initial, self.values, self.std_errors):
            rel = abs(s / v) if v != 0 else float("inf")
            ch = (v / v0 - 1) * 100 if v0 != 0 else float("nan")
            note = "at bound" if n in self.at_bound else ("poorly identified" if n in self.poorly_identified else "")
            lines.append(f"{n:<14}{v0:>12.5g}{v:>12.5g}{s:>11.3g}{rel * 100:>7.1f}%{ch:>8.1f}%  {note}")
        lines += ["", f"{'channel':<10}{'sigma':>10}{'RMSE base':>12}{'RMSE fit':>12}  (over the {self.horizon_s:.2f} s windows)"]
        for j, c in enumerate(ro.CHANNEL_NAMES):
            lines.append(f"{c:<10}{self.sigma[j]:>10.4f}{self.rmse_initial[c]:>12.4f}{self.rmse_final[c]:>12.4f}"
                         f"  [{CHANNEL_UNITS[j]}]")
        if self.poorly_identified:
            lines += ["", "Poorly identified parameters are barely excited by these logs (e.g. mu needs hard "
                          "braking/acceleration at the grip limit; B, C, D need large slip angles)."]
        return "\n".join(lines)


def _scales(base: VehicleParams, names) -> np.ndarray:
    return np.array([ABS_SCALE.get(n, 0.0) if getattr(base, n) == 0 else max(abs(getattr(base, n)),
                     ABS_SCALE.get(n, 0.0)) for n in names])


def _bounds(base: VehicleParams, names) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = [], []
    for n in names:
        b = BOUNDS.get(n)
        v = getattr(base, n)
        if b is None:
            lo.append(0.2 * v if v > 0 else -5 * abs(v) - 1)
            hi.append(5.0 * v if v > 0 else 5 * abs(v) + 1)
        else:
            lo.append(b[0])
            hi.append(b[1])
    return np.array(lo), np.array(hi)


def _channel_rmse(err: np.ndarray, mask_steer: np.ndarray) -> dict:
    out = {}
    for j, c in enumerate(ro.CHANNEL_NAMES):
        e = err[..., j]
        if c == "steer":
            e = e[mask_steer]
        out[c] = float(np.sqrt(np.mean(e ** 2))) if e.size else float("nan")
    return out


def fit(logs: list[DriveLog] | ro.Data, base: VehicleParams, model: str = "dynamic", names=None,
        horizon_s: float = 0.5, stride: int = 5, prior_rel: float | None = 1.0, h_max: float = 0.005,
        max_nfev: int = 60, verbose: int = 0, name: str | None = None) -> FitResult:
    """Fit ``names`` (default :data:`DEFAULT_FIT` of ``model``) to the logs.

    Parameters
    ----------
    logs : driving logs (validated) or prepared :class:`racing.sysid.rollout.Data`
    base : the starting parameters (the car's nominal YAML); unfitted parameters keep these values
    model : "dynamic" | "kinematic"
    horizon_s : window length of the multi-step prediction error [s]
    stride : a window starts every ``stride`` samples
    prior_rel : standard deviation of the weak prior around ``base``, relative to each parameter's
        scale (None: no prior)
    h_max : largest RK4 sub-step [s]
    max_nfev : iteration cap of least_squares

    Raises
    ------
    LogError : a log shorter than the horizon (no complete window), or an empty set of logs
    ValueError : unknown parameter names
    """
    from scipy.optimize import least_squares

    t_start = time.perf_counter()
    names = tuple(names) if names else DEFAULT_FIT[model]
    unknown = [n for n in names if n not in PARAM_NAMES]
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAM_NAMES)}")
    data = logs if isinstance(logs, ro.Data) else ro.prepare(list(logs))
    H = max(1, int(round(horizon_s * data.rate_hz)))
    starts = ro.starts_or_raise(data, H, stride, horizon_s)
    tgt = ro.targets(data, H, starts)[..., list(ro.CHANNELS)]
    sigma = ro.noise_scale(data)
    steer_ok = data.steer_ok[starts][:, None].repeat(H, axis=1)
    wts = np.broadcast_to(1.0 / sigma, tgt.shape).copy()
    wts[..., 3] *= steer_ok
    p_base = base.to_array()
    idx = np.array([PARAM_NAMES.index(n) for n in names])
    theta0 = p_base[idx].copy()
    scale = _scales(base, names)
    lo, hi = _bounds(base, names)
    theta0 = np.clip(theta0, lo + 1e-9 * scale, hi - 1e-9 * scale)

    def params_of(theta):
        p = p_base.copy()
        p[idx] = theta
        return p

    def resid(theta):
        pred = ro.predict(data, params_of(theta), H, starts, model, h_max=h_max)[..., list(ro.CHANNELS)]
        r = ((pred - tgt) * wts).ravel()
        r = np.where(np.isfinite(r), r, 1e3)
        if prior_rel:
            r = np.concatenate([r, (theta - theta0) / (prior_rel * scale)])
        return r

    r0 = resid(theta0)
    cost0 = 0.5 * float(r0 @ r0)
    x_start = theta0.copy()
    if "mu" in names:
        # mu only acts when |F_x| reaches mu m g: its gradient is zero where the base value never
        # saturates, so scan it first and start from the best value
        j = names.index("mu")
        best = cost0
        for f in MU_SCAN:
            th = theta0.copy()
            th[j] = np.clip(theta0[j] * f, lo[j], hi[j])
            r = resid(th)
            c = 0.5 * float(r @ r)
            if c < best:
                best, x_start = c, th
    sol = least_squares(resid, x_start, bounds=(lo, hi), x_scale=scale, method="trf", jac="2-point",
                        diff_step=1e-4, max_nfev=max_nfev, verbose=verbose, xtol=1e-6, ftol=1e-7)
    theta = sol.x
    J = sol.jac
    m, n = J.shape
    dof = max(m - n - (n if prior_rel else 0), 1)
    s2 = 2.0 * sol.cost / dof
    try:
        cov = np.linalg.pinv(J.T @ J) * s2
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    except np.linalg.LinAlgError:
        se = np.full(n, np.nan)
    pred0 = ro.predict(data, params_of(theta0), H, starts, model, h_max=h_max)[..., list(ro.CHANNELS)]
    pred1 = ro.predict(data, params_of(theta), H, starts, model, h_max=h_max)[..., list(ro.CHANNELS)]
    at_bound = [nm for nm, v, a, b, s in zip(names, theta, lo, hi, scale) if v <= a + 1e-6 * s or v >= b - 1e-6 * s]
    rel = np.where(theta != 0, np.abs(se / np.where(theta == 0, 1, theta)), np.abs(se / scale))
    poor = [nm for nm, r_ in zip(names, rel) if r_ > 0.2 or nm in at_bound]
    fitted = VehicleParams.from_array(params_of(theta), name=name or f"{base.name}_fitted",
                                      tuning=base.tuning)
    return FitResult(params=fitted, base=base, model=model, names=names, values=theta, std_errors=se,
                     initial=theta0, cost=float(sol.cost), cost_initial=cost0,
                     rmse_initial=_channel_rmse(pred0 - tgt, steer_ok), rmse_final=_channel_rmse(pred1 - tgt, steer_ok),
                     sigma=sigma, n_windows=int(starts.size), n_samples=data.n, horizon_s=H / data.rate_hz,
                     seconds=time.perf_counter() - t_start, nfev=int(sol.nfev), message=str(sol.message),
                     poorly_identified=poor, at_bound=at_bound)
