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
Channel weights (``weights``) multiply ``1 / sigma_c``; a log without a measured angle has no steer
channel. Pedal logs add the pedal map (:mod:`racing.sysid.pedals`) to the fitted parameters.

**Uncertainty.** Residuals of overlapping multi-step windows are strongly correlated, so the
textbook ``(J^T J)^-1 s^2`` is far too optimistic. Standard errors, correlations and 95 % intervals
come from a *block bootstrap over windows*: the windows are cut into contiguous time blocks (each
much longer than a window), blocks are resampled with replacement (``n_boot`` replicates) and each
replicate's estimate is the Gauss-Newton step from the optimum with the resampled ``J^T J`` and
``J^T r`` (a linearised bootstrap: no extra model evaluations).

**Identifiability** (the log decides what it can say):

* *not excited, before the fit*: ``mu`` (here it only caps ``|F_x| <= mu m g``) is fitted only when
  the log's longitudinal acceleration reaches 0.8 mu g; ``C`` and ``D`` of both axles only when its
  lateral acceleration reaches 0.6 D g (in the linear range only the cornering stiffness B C D is
  identified, through B); otherwise they keep their base values;
* *not identified, after the fit*: a parameter within 1 % of a bound of its search range, or with a bootstrap
  relative standard error above 50 % (above 100 % of its additive scale when its value is about 0),
  goes back to its base value and the rest is refitted without it (never pushed to a bound);
* *confounded pairs*: two fitted parameters whose bootstrap correlation exceeds 0.9 in magnitude (e.g.
  ``inertia_z`` and ``steer_tau`` without a measured steering angle) are each flagged with the
  partner and an interval: the bootstrap 95 % interval joined with the stretch of the valley, along
  the pair's correlation direction, where the cost rises by less than 1 % (:func:`valley_interval`);
* *drive limits* (``power_max``, ``v_max``, ``accel_max``, ``decel_max``) are not fitted from windows;
  :func:`drive_limits` compares the log's peaks (smoothed derivatives) with them: a limit the log
  exceeds by over 10 % is raised to the log's peak (the car did it), one the log reaches within 10 %
  is reported as reached, any other keeps its base value and is reported "not identified by this log".
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from racing.logs import DriveLog
from racing.models.dynamic import grip_limits
from racing.models.ops import NUMPY
from racing.models.params import PARAM_NAMES, G, VehicleParams
from racing.sysid import pedals as pm
from racing.sysid import rollout as ro
from racing.sysid.speedloop import identify_speed_loop

#: parameters fitted by default, per model
DEFAULT_FIT = {
    "dynamic": ("inertia_z", "B_f", "C_f", "D_f", "B_r", "C_r", "D_r", "mu", "c_drag", "c_roll", "steer_gain", "steer_tau",
                "steer_offset", "speed_kp"),
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
REL_SE_MAX = 0.5
CORR_MAX = 0.9
CHANNEL_KEYS = {"vx": 0, "vy": 1, "yaw_rate": 2, "r": 2, "steer": 3}


@dataclass
class FitResult:
    """Outcome of :func:`fit`.

    params : fitted VehicleParams (base values for the parameters not fitted or not identified)
    names : fitted parameter names (vehicle parameters, then the pedal map's); values, std_errors, initial :
        float64[n] (SI units); std_errors from the block bootstrap (module doc); interval95 : float64[n, 2]
    correlation : float64[n, n] bootstrap correlation of the fitted parameters
    cost : final cost (0.5 sum r^2); cost_initial : at the base values
    rmse_initial, rmse_final : per-channel multi-step (horizon) RMSE on the fit data [SI]
    sigma : per-channel noise scale; weights : per-channel weight multipliers
    not_identified : name -> reason (kept at the base value); confounded : name -> {partner, correlation, interval}
    limits : drive-limit report (:func:`drive_limits`); pedal_map : PedalMap of pedal logs, else None
    actuator : the steering actuator's structure: {"chosen": "lag" | "lag+delay", "why", and for a choice
        "held_out_cost": {structure: cost}, "windows": [fit, held out]} (:func:`choose_actuator`)
    disagree : name -> {"halves": [value, value], "std_errors": [se, se], "widened_se", "split"}: parameters whose
        fits on two parts of the log's windows (``split`` "time": the first and the second half; "speed": below and
        above the median speed) disagree beyond their error bars (:func:`split_agreement`: a bias from model
        structure the bootstrap cannot see); their ``std_errors`` and ``interval95`` are widened to cover both
        parts, and the report does not call them identified
    implausible : name -> {"value", "dynamic_index", "range", "base_dynamic_index"}: fitted values a car cannot have
        (:func:`implausible`: a yaw inertia whose dynamic index is outside :data:`DYNAMIC_INDEX_RANGE`); the report
        does not call them identified
    speed_loop : the speed loop's structure (:func:`racing.sysid.speedloop.identify_speed_loop`: ``chosen`` "P" or
        "PI", ``why``, the PI loop's gains, the held-out errors of both); {} for a log without a speed loop to
        identify (a pedal log, ``speed_kp`` not fitted)
    grip_margin : the share of the grip the fit cannot vouch for (:func:`grip_margin`; also ``params.grip_margin``);
        None when it was not computed (a grip parameter fitted without bootstrap replicates, ``n_boot = 0``: the
        fitted car then carries ``grip_margin = 0``, its fitted grip in full)
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
    interval95: np.ndarray | None = None
    correlation: np.ndarray | None = None
    not_identified: dict = field(default_factory=dict)
    confounded: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)
    pedal_map: pm.PedalMap | None = None
    weights: dict = field(default_factory=dict)
    n_boot: int = 0
    reference_x: float | None = None
    grip_margin: float | None = 0.0
    disagree: dict = field(default_factory=dict)
    actuator: dict = field(default_factory=dict)
    implausible: dict = field(default_factory=dict)
    speed_loop: dict = field(default_factory=dict)

    @property
    def pedal_theta(self):
        return None if self.pedal_map is None else self.pedal_map.to_array()

    def to_dict(self) -> dict:
        d = {
            "model": self.model,
            "params": {n: float(v) for n, v in zip(self.names, self.values)},
            "std_errors": {n: _finite(s) for n, s in zip(self.names, self.std_errors)},
            "initial": {n: float(v) for n, v in zip(self.names, self.initial)},
            "cost": float(self.cost), "cost_initial": float(self.cost_initial),
            "rmse_initial": self.rmse_initial, "rmse_final": self.rmse_final,
            "n_windows": self.n_windows, "n_samples": self.n_samples, "horizon_s": self.horizon_s,
            "seconds": round(self.seconds, 3), "nfev": self.nfev, "message": self.message,
            "poorly_identified": self.poorly_identified, "at_bound": self.at_bound,
            "not_identified": self.not_identified, "confounded": self.confounded, "limits": self.limits,
            "weights": self.weights, "n_boot": self.n_boot, "name": self.params.name,
            "grip_margin": self.grip_margin, "halves_disagree": self.disagree, "actuator": self.actuator,
            "implausible": self.implausible, "speed_loop": self.speed_loop,
        }
        if self.interval95 is not None:
            d["interval95"] = {n: [_finite(a), _finite(b)] for n, (a, b) in zip(self.names, self.interval95)}
        if self.n_boot <= 0:
            d["uncertainty"] = NO_BOOT
        if self.correlation is not None and self.n_boot > 0:
            d["correlation"] = {"names": list(self.names), "matrix": np.round(self.correlation, 4).tolist()}
        if self.pedal_map is not None:
            d["pedal_map"] = self.pedal_map.to_dict()
        if self.reference_x is not None:
            d["reference_point"] = [self.reference_x, 0.0]
        return d

    def report(self) -> str:
        """The fit report as text."""
        lines = [f"Parametric fit ({self.model} model) -> {self.params.name}, {self.n_samples} samples, {self.n_windows} "
                 f"windows of {self.horizon_s:.2f} s, {self.seconds:.1f} s, {self.nfev} evaluations: {self.message}",
                 f"cost {self.cost_initial:.4g} -> {self.cost:.4g}; standard errors and 95 % intervals: " +
                 (f"block bootstrap over windows ({self.n_boot} replicates)" if self.n_boot > 0 else NO_BOOT),
                 "",
                 f"{'parameter':<20}{'base':>11}{'fitted':>11}{'std err':>10}{'rel':>8}{'95 % interval':>24}  note"]
        for i, (n, v0, v, s) in enumerate(zip(self.names, self.initial, self.values, self.std_errors)):
            rel = abs(s / v) if v != 0 else float("inf")
            iv = self.interval95[i] if self.interval95 is not None else (float("nan"), float("nan"))
            note = ""
            if n in self.implausible:
                q = self.implausible[n]
                note = (f"NOT vouched for: a dynamic index I_z / (m l_f l_r) of {q['dynamic_index']:.2f}, outside "
                        f"{q['range'][0]:g}..{q['range'][1]:g} (the base car's: {q['base_dynamic_index']:.2f})")
            elif n in self.disagree:
                h = self.disagree[n]["halves"]
                part = ("slower and faster half" if self.disagree[n].get("split") == "speed" else "halves")
                note = f"NOT vouched for: the log's {part} give {h[0]:.4g} and {h[1]:.4g} (model structure?)"
            elif n in self.confounded:
                c = self.confounded[n]
                note = f"confounded with {c['partner']} (corr {c['correlation']:+.2f}): interval {c['interval'][0]:.4g}" \
                       f"..{c['interval'][1]:.4g}"
            elif n in self.poorly_identified:
                note = "poorly identified"
            if np.isfinite(s):
                lines.append(f"{n:<20}{v0:>11.5g}{v:>11.5g}{s:>10.3g}{rel * 100:>7.1f}%  [{iv[0]:>10.4g}, "
                             f"{iv[1]:>10.4g}]  {note}")
            else:
                lines.append(f"{n:<20}{v0:>11.5g}{v:>11.5g}{'n/a':>10}{'n/a':>8}  {'(not computed)':>24}  {note}")
        if self.actuator:
            a = self.actuator
            costs = ", ".join(f"{k} {v:.4g}" for k, v in a.get("held_out_cost", {}).items())
            lines += ["", f"Steering actuator: {a['chosen']} ({a['why']}" + (f"; prediction cost on the held-out "
                                                                          f"windows: {costs}" if costs else "") + ")"]
            if a.get("misfit"):
                worst = ", ".join(f"{c} {v:g}x" for c, v in a["misfit"].items())
                lines.append(f"STRUCTURE-LIMITED: the fitted model's errors are many times the log's noise ({worst}; a "
                             f"model that fits the car stays within {MISFIT_FACTOR:g}x): the car has structure the "
                             f"model lacks (actuators, tyres, load paths), and these values are the best wrong "
                             f"model's (not reflected in the grip margin)")
            if a.get("held_out_over_in_sample", 0.0) > HELD_OUT_FACTOR:
                lines.append(f"STRUCTURE-LIMITED: the fit predicts the last {a['windows'][1]} windows "
                             f"{a['held_out_over_in_sample']:.2f}x worse per window than the {a['windows'][0]} it "
                             f"was fitted on (a model that fits the car predicts both alike): its parameters hold "
                             f"for the manoeuvres it saw, not beyond them")
        if self.speed_loop:
            q = self.speed_loop
            gains = (f": speed_kp {q['speed_kp']:.4g} 1/s, speed_ki {q['speed_ki']:.4g} 1/s^2" if q["chosen"] == "PI"
                     else "")
            lines += ["", f"Speed loop: {q['chosen']}{gains} ({q['why']})"]
        if self.disagree:
            lines += ["", "Fits on two halves of the log (first and second in time, or below and above its median "
                          "speed) disagree beyond their error bars (a bias "
                          "the bootstrap cannot see, e.g. an actuator or tyre the model does not have): "
                          + ", ".join(self.disagree) + "; their errors above are widened to cover both halves"]
        if self.implausible:
            lines += ["", "Physically implausible: " + ", ".join(self.implausible) + ". A car's yaw inertia is about "
                          "m l_f l_r (a dynamic index near 1); a fit far from it has most likely traded the inertia "
                          "against the tyres' cornering stiffness to fit structure the model lacks (a servo, a dead "
                          "time, a speed loop). Check the car's data sheet; the fitted value is kept, flagged"]
        if self.not_identified:
            lines += ["", "Not identified by this log (kept at the base value):"]
            for n, why in self.not_identified.items():
                lines.append(f"  {n:<18} {why}")
        if self.grip_margin is None:
            lines += ["", "Grip margin: not computed (a grip parameter was fitted without bootstrap replicates); the "
                          "fitted car carries grip_margin 0, so controllers use its fitted grip in full. Run with "
                          "--boot 200 (n_boot) to measure what the fit vouches for"]
        else:
            lines += ["", f"Grip margin {self.grip_margin * 100:.1f} %: controllers plan speeds with "
                          f"{(1 - self.grip_margin) * 100:.1f} % of the fitted grip (what this fit vouches for)"]
        if self.limits:
            lines += ["", "Drive limits:"]
            for n, d in self.limits.items():
                lines.append(f"  {n:<18} {d['status']}: {d['note']}")
        lines += ["", f"{'channel':<10}{'sigma':>10}{'weight':>8}{'RMSE base':>12}{'RMSE fit':>12}  "
                      f"(over the {self.horizon_s:.2f} s windows)"]
        for j, c in enumerate(ro.CHANNEL_NAMES):
            lines.append(f"{c:<10}{self.sigma[j]:>10.4f}{self.weights.get(c, 1.0):>8.3g}{self.rmse_initial[c]:>12.4f}"
                         f"{self.rmse_final[c]:>12.4f}  [{CHANNEL_UNITS[j]}]")
        return "\n".join(lines)


#: what the report says of the uncertainty of a fit without bootstrap replicates
NO_BOOT = ("not computed (no bootstrap replicates: --boot 0 / n_boot = 0); neither is the check that the log pins "
           "each parameter")


def _finite(v) -> float | None:
    """``float(v)``, or None (JSON null: not available) when it is NaN or infinite."""
    v = float(v)
    return v if math.isfinite(v) else None


def fitted_name(base_name: str, p: np.ndarray) -> str:
    """Name of a fitted car: ``<base>_fit_<sha1 of the parameter array, 8 hex>``, so two fits from one base car
    never share a name (and never overwrite each other's cached racelines, which are keyed by car name)."""
    import hashlib

    return f"{base_name}_fit_{hashlib.sha1(np.ascontiguousarray(p, dtype=np.float64).tobytes()).hexdigest()[:8]}"


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


def parse_weights(spec: str | dict | None) -> dict:
    """Channel weights ``"vx=1,vy=2,yaw_rate=1,steer=0"`` (or a dict) -> {channel: weight} (missing ones 1)."""
    out = {c: 1.0 for c in ro.CHANNEL_NAMES}
    if not spec:
        return out
    items = spec.items() if isinstance(spec, dict) else (kv.split("=", 1) for kv in str(spec).split(",") if kv.strip())
    for k, v in items:
        k = str(k).strip()
        if k not in CHANNEL_KEYS:
            raise ValueError(f"channel weight {k!r}: unknown channel; expected one of vx, vy, yaw_rate, steer")
        try:
            w = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"channel weight {k}={v!r}: expected a number") from None
        if not (w >= 0 and math.isfinite(w)):
            raise ValueError(f"channel weight {k}={w}: expected a finite number >= 0")
        out[ro.CHANNEL_NAMES[CHANNEL_KEYS[k]]] = w
    return out


def longitudinal_accel(data: ro.Data, window_s: float = 0.25) -> np.ndarray:
    """dv_x/dt [m/s^2] per sample: Savitzky-Golay derivative (order 2) over ``window_s`` (sensor noise would
    inflate finite-difference peaks: 0.05 m/s at 50 Hz gives 1.8 m/s^2 of noise); 0 in segments too short."""
    from scipy.signal import savgol_filter

    a = np.zeros(data.n)
    w = max(5, int(round(window_s * data.rate_hz)) | 1)
    for s in np.unique(data.seg):
        i = np.flatnonzero(data.seg == s)
        if i.size >= w:
            a[i] = savgol_filter(data.meas[i, 3], w, 2, deriv=1, delta=1.0 / data.rate_hz)
    return a


def drive_limits(data: ro.Data, base: VehicleParams) -> tuple[dict, dict]:
    """({limit: {status, log, base, value, note}}, {limit: new value}) for power_max, v_max, accel_max, decel_max
    (module doc); the log's peaks are robust (99.5th percentiles of the moving samples)."""
    a = longitudinal_accel(data)
    v = np.hypot(data.meas[:, 3], data.meas[:, 4])
    mv = data.meas[:, 3] > 1.0
    q = lambda x: float(np.percentile(x, 99.5)) if x.size else 0.0  # noqa: E731
    drag = base.c_drag * v ** 2 + base.c_roll * base.mass * G
    peaks = {"power_max": (q(((base.mass * a + drag) * data.meas[:, 3])[mv & (a > 0)]), "W"),
             "v_max": (q(v), "m/s"),
             "accel_max": (q(a[mv & (a > 0)]), "m/s^2"),
             "decel_max": (q(-a[mv & (a < 0)]), "m/s^2")}
    out, new = {}, {}
    for n, (peak, unit) in peaks.items():
        b = float(getattr(base, n))
        if peak > 1.1 * b:
            status, val = "identified (raised)", peak
            note = f"the log reaches {peak:.4g} {unit}, above the base car's {b:.4g}: raised to the log's peak " \
                   f"(a lower bound of the car's limit)"
            new[n] = peak
        elif peak >= 0.9 * b:
            status, val = "reached", b
            note = f"the log reaches {peak:.4g} {unit}, within 10 % of the base car's {b:.4g}: consistent, kept"
        else:
            status, val = "not identified by this log", b
            note = f"the log's peak {peak:.4g} {unit} is {peak / b * 100:.0f} % of the base car's {b:.4g}: kept"
        out[n] = {"status": status, "log_peak": peak, "base": b, "value": val, "note": note}
    return out, new


def _block_bootstrap(J: np.ndarray, r: np.ndarray, rows_per_window: int, n_windows: int, n_prior: int,
                     block_windows: int, n_boot: int, seed: int) -> np.ndarray:
    """Linearised block-bootstrap replicates of the parameter step ``[n_boot, n]`` (module doc)."""
    n = J.shape[1]
    m_data = rows_per_window * n_windows
    nb = max(2, int(math.ceil(n_windows / block_windows)))
    jtj = np.zeros((nb, n, n))
    jtr = np.zeros((nb, n))
    for b in range(nb):
        a0 = b * block_windows * rows_per_window
        a1 = min(m_data, (b + 1) * block_windows * rows_per_window)
        if a1 <= a0:
            continue
        Jb, rb = J[a0:a1], r[a0:a1]
        jtj[b] = Jb.T @ Jb
        jtr[b] = Jb.T @ rb
    Jp, rp = J[m_data:m_data + n_prior], r[m_data:m_data + n_prior]
    jtj_p, jtr_p = Jp.T @ Jp, Jp.T @ rp
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, n))
    for k in range(n_boot):
        cnt = np.bincount(rng.integers(0, nb, nb), minlength=nb).astype(float)
        A = np.tensordot(cnt, jtj, 1) + jtj_p
        g = cnt @ jtr + jtr_p
        out[k] = -np.linalg.lstsq(A, g, rcond=None)[0]
    return out


def lateral_peak(data: ro.Data) -> float:
    """The log's peak lateral acceleration [m/s^2]: the 99.5th percentile of |v_x r| (measured)."""
    return float(np.percentile(np.abs(data.meas[:, 3] * data.meas[:, 5]), 99.5))


def longitudinal_peak(data: ro.Data) -> float:
    """The log's peak longitudinal acceleration [m/s^2]: the 99.5th percentile of |dv_x/dt|."""
    return float(np.percentile(np.abs(longitudinal_accel(data)), 99.5))


def longitudinal_grip(params: VehicleParams) -> float:
    """The longitudinal acceleration [m/s^2] mu gives the car at rest, the lower of driving and braking (per-axle
    traction with load transfer when combined slip is on: for a rear-drive car well below mu g)."""
    lo, hi = grip_limits(0.0, params.to_array(), NUMPY)
    return min(-float(lo), float(hi))


#: the grip parameters whose uncertainty sets a fitted car's grip margin, and the margin's ceiling
GRIP_NAMES = ("D_f", "D_r", "mu")
GRIP_MARGIN_MAX = 0.3


def grip_margin(names, values, std_errors, not_identified: dict, data: ro.Data,
                params: VehicleParams) -> float | None:
    """A fitted car's ``grip_margin`` [-]: the share of its tyre grip this fit cannot vouch for, the largest over
    ``D_f``, ``D_r`` and ``mu`` of

    * fitted (in ``names``): twice its bootstrap relative standard error (the half-width of a 95 % interval);
    * asked for but not identified (in ``not_identified``: kept at the base value): the share of it above what the
      log used, ``1 - a_y,peak / (g D)`` for a tyre peak and ``1 - a_x,peak / a_grip`` for mu (the 99.5th
      percentiles of the measured lateral and longitudinal accelerations; ``a_grip`` the lesser of the model's
      driving and braking grip);

    capped at :data:`GRIP_MARGIN_MAX`. A grip parameter the fit was not asked for is taken as known (0). None (not
    computed) when a fitted grip parameter has no finite standard error (a fit without bootstrap replicates)."""
    m = 0.0
    names = list(names)
    for n in GRIP_NAMES:
        if n in names:
            k = names.index(n)
            v, se = float(values[k]), float(std_errors[k])
            if not np.isfinite(se):
                return None
            if v > 0:
                m = max(m, 2.0 * se / v)
        elif n in not_identified:
            if n == "mu":
                m = max(m, 1.0 - longitudinal_peak(data) / longitudinal_grip(params))
            else:
                m = max(m, 1.0 - lateral_peak(data) / (G * getattr(params, n)))
    return float(min(max(m, 0.0), GRIP_MARGIN_MAX))


#: the dynamic index ``I_z / (m l_f l_r)`` [-] a car can have (the squared yaw radius of gyration over the product of
#: the axle distances; Milliken and Milliken 1995, "Race Car Vehicle Dynamics", ch. 5): near 1 for road cars
#: (CommonRoad's vehicles 1-3: 0.94-1.21), lower for mid-engined race cars and small models (the AV-21's and
#: gt_car's data sheets: 0.59, F1TENTH's: 0.46), with room on both sides
DYNAMIC_INDEX_RANGE = (0.3, 1.5)


def dynamic_index(params: VehicleParams) -> float:
    """``I_z / (m l_f l_r)`` [-]: 1 for a car whose mass sits at its two axles."""
    return float(params.inertia_z / (params.mass * params.l_f * params.l_r))


def implausible(fitted: VehicleParams, base: VehicleParams) -> dict:
    """``{"inertia_z": {...}}`` when the fitted yaw inertia puts the car's dynamic index outside
    :data:`DYNAMIC_INDEX_RANGE` (a prior, not data: the bootstrap and the split fits cannot see a bias that every
    part of the log shares, e.g. I_z traded against the front cornering stiffness behind a servo the model does
    not have), else ``{}``."""
    di = dynamic_index(fitted)
    lo, hi = DYNAMIC_INDEX_RANGE
    if lo <= di <= hi:
        return {}
    return {"inertia_z": {"value": float(fitted.inertia_z), "dynamic_index": di, "range": [lo, hi],
                          "base_dynamic_index": dynamic_index(base)}}


def fit(logs: list[DriveLog] | ro.Data, base: VehicleParams, model: str = "dynamic", names=None,
        horizon_s: float = 0.5, stride: int = 5, prior_rel: float | None = 1.0, h_max: float = 0.005,
        max_nfev: int = 60, verbose: int = 0, name: str | None = None, weights=None, min_speed: float = 0.0,
        n_boot: int = 200, block_s: float = 4.0, identify: bool = True, seed: int = 0,
        fit_limits: bool = True, lever_arm: bool = False, actuator: str = "auto") -> FitResult:
    """Fit ``names`` (default :data:`DEFAULT_FIT` of ``model``, plus the pedal map for pedal logs) to the logs.

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
    weights : channel weights (:func:`parse_weights`); min_speed : windows start at v_x >= min_speed [m/s]
    n_boot : block-bootstrap replicates; block_s : bootstrap block length [s]
    identify : drop what the log does not excite / identify (module doc); False fits ``names`` as given
    fit_limits : raise drive limits the log exceeds (:func:`drive_limits`)
    lever_arm : also fit ``ref_x`` [m], where along the body x axis the log's velocities are measured relative to
        the CoG (``v_y,cog = v_y,log - r ref_x`` in the initial states and the targets); confounded with the tyres'
        balance by nature (the report shows the correlation)
    actuator : the steering actuator's structure, for logs with a steering command: ``"lag"`` (the first-order
        servo with rate limit of :mod:`racing.models.actuators`), ``"lag+delay"`` (the same after a dead time
        ``steer_delay`` [s], 0..:data:`STEER_DELAY_MAX`, fitted) or ``"auto"``: each fitted on the first 70 % of the
        windows in time, the one with the lower prediction cost on the last 30 % chosen (:func:`choose_actuator`;
        the result's ``actuator`` says which and why)

    Raises
    ------
    LogError : a log shorter than the horizon (no complete window), or an empty set of logs
    ValueError : unknown parameter names or channel weights
    """
    t_start = time.perf_counter()
    data = _prepared(logs, min_speed)
    names, pedal_names = _fit_names(data, model, names)
    prob = _Problem(data, base, model, parse_weights(weights), horizon_s=horizon_s, stride=stride,
                    prior_rel=prior_rel, h_max=h_max, max_nfev=max_nfev, verbose=verbose, pedals=bool(pedal_names),
                    n_boot=n_boot, block_s=block_s, seed=seed)
    not_identified: dict = {}
    if identify:
        names = _drop_not_excited(data, base, names, not_identified)
    if lever_arm:
        pedal_names = tuple(pedal_names) + ("ref_x",)
    if actuator not in ACTUATORS + ("auto",):
        raise ValueError(f"actuator {actuator!r}: expected one of {', '.join(ACTUATORS + ('auto',))}")
    structure = {"chosen": "lag", "why": "the log's steering input is the measured angle: no servo in the loop"} \
        if data.steer_input else {"chosen": actuator, "why": "as asked"}
    if actuator == "auto" and not data.steer_input:
        structure = choose_actuator(prob, names, pedal_names)
    if structure["chosen"] == "lag+delay":
        pedal_names = tuple(pedal_names) + ("steer_delay",)
    sol, lay, resid, all_names, reps, cost0, nfev = _solve_identified(prob, names, pedal_names, not_identified,
                                                                      identify)
    if "steer_delay" in not_identified:  # the log does not pin the dead time: the plain servo, and why
        structure = {**structure, "chosen": "lag",
                     "why": f"{structure['chosen']} was asked for or won on held-out windows, but the dead time is not "
                            f"identified ({not_identified.pop('steer_delay')})"}
    theta = sol.x
    se, iv, corr = _bootstrap_stats(theta, reps)
    disagree = split_agreement(prob, lay, theta, se, iv) if identify and theta.size and reps is not None else {}
    confounded = {}
    if identify and theta.size > 1 and reps is not None:
        confounded = _confounded_pairs(resid, theta, all_names, corr, se, iv, lay, float(sol.cost))
    p_fit, q_fit = prob.split(theta, lay)
    limits = {}
    if identify:
        limits, new = drive_limits(data, base)
        if fit_limits:
            for k, v in new.items():
                p_fit[PARAM_NAMES.index(k)] = v
    rmse_initial, rmse_final = prob.rmse(lay, theta, p_fit, q_fit)
    structure = _misfit(structure, rmse_final, prob.sigma)
    at_bound = [nm for nm, v, a, b, s in zip(all_names, theta, lay.lo, lay.hi, lay.sc)
                if v <= a + 1e-6 * s or v >= b - 1e-6 * s]
    rel = np.where(theta != 0, np.abs(se / np.where(theta == 0, 1, theta)), np.abs(se / lay.sc))
    poor = [nm for nm, r_ in zip(all_names, rel) if r_ > 0.2 or nm in at_bound]
    margin = grip_margin(all_names, theta, se, not_identified, data, base)
    delay = prob.steer_delay(theta, lay)
    fitted = VehicleParams.from_array(p_fit, name=name or fitted_name(base.name, p_fit), tuning=base.tuning,
                                      grip_margin=margin or 0.0, drive_interface=fitted_interface(data, base),
                                      steer_delay=base.steer_delay if delay is None else delay)
    odd = implausible(fitted, base) if "inertia_z" in all_names else {}
    fitted, speed_loop = _speed_loop_stage(data, fitted, all_names)
    return FitResult(params=fitted, base=base, model=model, names=all_names, values=theta, std_errors=se,
                     initial=lay.th0, cost=float(sol.cost), cost_initial=cost0, rmse_initial=rmse_initial,
                     rmse_final=rmse_final, sigma=prob.sigma, n_windows=int(prob.starts.size), n_samples=data.n,
                     horizon_s=prob.H / data.rate_hz, seconds=time.perf_counter() - t_start, nfev=nfev,
                     message=str(sol.message), poorly_identified=poor, at_bound=at_bound, interval95=iv,
                     correlation=corr, not_identified=not_identified, confounded=confounded, limits=limits,
                     pedal_map=None if q_fit is None else pm.PedalMap.from_array(q_fit), weights=prob.wmul,
                     n_boot=n_boot, reference_x=prob.reference_x(theta, lay), grip_margin=margin,
                     disagree=disagree, actuator=structure, implausible=odd, speed_loop=speed_loop)


def _speed_loop_stage(data: ro.Data, fitted: VehicleParams, names) -> tuple[VehicleParams, dict]:
    """The fitted car with its speed loop's structure (:func:`racing.sysid.speedloop.identify_speed_loop`: a PI
    loop's ``speed_kp`` and ``speed_ki`` replace the P loop's gain), and the stage's report ({} when the log has no
    speed loop to identify: a pedal log, a speed gain not fitted)."""
    if data.pedals is not None or "speed_kp" not in names:
        return fitted, {}
    rep = identify_speed_loop(data, fitted)
    if rep["chosen"] == "PI":
        fitted = fitted.replace(speed_kp=rep["speed_kp"], speed_ki=rep["speed_ki"])
    return fitted, rep


def fitted_interface(data: ro.Data, base: VehicleParams) -> str:
    """The fitted car's ``drive_interface``: the base car's, but never more than the log can show the car takes.
    A log whose acceleration command is zero throughout (or absent: pedal logs, logs without the column) cannot
    show that the car applies a feed-forward acceleration, so such a fit is ``speed`` (a speed set-point only),
    the interface every car honours."""
    sent = data.pedals is None and bool(np.any(data.cmd[:, 2] != 0.0))
    return base.drive_interface if sent else "speed"


def _prepared(logs: list[DriveLog] | ro.Data, min_speed: float) -> ro.Data:
    """The logs as prepared :class:`racing.sysid.rollout.Data`, windows starting at v_x >= ``min_speed`` [m/s]."""
    data = logs if isinstance(logs, ro.Data) else ro.prepare(list(logs), min_speed=min_speed)
    if min_speed and data.min_speed != min_speed:
        data = dataclasses.replace(data, min_speed=float(min_speed))
    return data


def _fit_names(data: ro.Data, model: str, names) -> tuple[tuple, tuple]:
    """(vehicle parameter names, pedal-map parameter names) to fit: ``names`` as asked, else :data:`DEFAULT_FIT` of
    ``model`` (without the servo's parameters when the log's angle is the command) and the whole pedal map of a
    pedal log. Raises ValueError for a pedal log with a kinematic model, pedal-map names without a pedal log and
    unknown names."""
    pedal_names = pm.NAMES if (data.pedals is not None and model == "dynamic") else ()
    if data.pedals is not None and model != "dynamic":
        raise ValueError("pedal logs need model='dynamic'")
    if names:
        names = tuple(names)
        ped = tuple(n for n in names if n in pm.NAMES)
        if ped and data.pedals is None:
            raise ValueError(f"{', '.join(ped)}: pedal-map parameters need a pedal log")
        names = tuple(n for n in names if n not in pm.NAMES)
        pedal_names = ped if ped else pedal_names
    else:
        names = DEFAULT_FIT[model]
        if data.steer_input:
            names = tuple(n for n in names if n not in ("steer_gain", "steer_tau", "steer_offset"))
        if data.pedals is not None:  # the pedal map replaces the speed loop
            names = tuple(n for n in names if n != "speed_kp")
    unknown = [n for n in names if n not in PARAM_NAMES]
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAM_NAMES + pm.NAMES)}")
    return names, pedal_names


def _drop_not_excited(data: ro.Data, base: VehicleParams, names: tuple, not_identified: dict) -> tuple:
    """``names`` less what the log does not excite (module doc: the tyres' C and D below 0.6 D g of lateral
    acceleration, mu below 0.8 of the longitudinal grip), each entered in ``not_identified`` with the reason."""
    if any(n in names for n in ("C_f", "D_f", "C_r", "D_r")):
        ay_peak = lateral_peak(data)
        ay_cap = min(base.D_f, base.D_r) * G
        if ay_peak < 0.6 * ay_cap:
            for n in ("C_f", "D_f", "C_r", "D_r"):
                if n in names:
                    not_identified[n] = (f"not excited: the log's peak lateral acceleration {ay_peak:.2f} m/s^2 stays "
                                         f"below 0.6 of the tyres' {ay_cap:.2f} m/s^2 (linear range): only the "
                                         f"cornering stiffness B C D is identified, through B")
            names = tuple(n for n in names if n not in not_identified)
    if "mu" in names:
        a_peak, a_grip = longitudinal_peak(data), longitudinal_grip(base)
        if a_peak < 0.8 * a_grip:
            not_identified["mu"] = (f"not excited: the log's peak longitudinal acceleration {a_peak:.2f} m/s^2 stays "
                                    f"below 0.8 of the tyres' longitudinal grip {a_grip:.2f} m/s^2 (mu only caps "
                                    f"|F_x| and sets the friction ellipse)")
            names = tuple(n for n in names if n != "mu")
    if "speed_kp" in names:
        err = np.abs(data.cmd[:, 1] - data.meas[:, 3])
        share = float(np.mean(err > SPEED_ERR_MIN)) if err.size else 0.0
        if share < SPEED_ERR_SHARE:
            not_identified["speed_kp"] = (f"not excited: the speed command differs from the measured speed by more "
                                          f"than {SPEED_ERR_MIN:g} m/s in {100 * share:.1f} % of the log (the speed "
                                          f"loop's gain needs {100 * SPEED_ERR_SHARE:g} %)")
            names = tuple(n for n in names if n != "speed_kp")
    return names


#: the speed loop's gain is identified only where the speed command leads the measured speed by more than
#: SPEED_ERR_MIN [m/s] in at least SPEED_ERR_SHARE of the samples (a car holding its set-point shows no gain)
SPEED_ERR_MIN = 0.5
SPEED_ERR_SHARE = 0.05


#: the steering actuator structures :func:`fit` knows (``actuator``)
ACTUATORS = ("lag", "lag+delay")
#: the share of the windows (the first, in time) the structures are fitted on; the rest judges them
CHOICE_FIT_SHARE = 0.7
#: a fit that predicts its held-out windows this much worse per window than those it was fitted on is
#: structure-limited (a model that fits the car predicts both alike, up to the noise)
HELD_OUT_FACTOR = 1.5
#: a channel whose multi-step RMSE after the fit exceeds this many times the log's noise level in it is not explained
#: by the model (a right model with noisy start states stays within about 3.5x over 0.5 s windows: f1tenth, 40 s of
#: excitation; a servo saturating at a quarter of the model's rate limit gave 23x in the yaw rate)
MISFIT_FACTOR = 8.0


def choose_actuator(prob: "_Problem", names: tuple, extra: tuple) -> dict:
    """Fit each of :data:`ACTUATORS` on the first :data:`CHOICE_FIT_SHARE` of the windows in time and return the one
    whose multi-step prediction cost (weighted squared errors, no prior) on the remaining windows is lower:
    ``{"chosen", "why", "held_out_cost": {structure: cost}, "windows": [fit, held out]}``. A structure is judged on
    data it was not fitted to, so a dead time that only absorbs noise does not win."""
    n_w = prob.starts.size
    cut = int(round(CHOICE_FIT_SHARE * n_w))
    if cut < 2 or n_w - cut < 2:
        return {"chosen": "lag", "why": f"too few windows ({n_w}) to judge a structure on held-out data"}
    train, test = prob.subset(slice(0, cut)), prob.subset(slice(cut, n_w))
    costs, inside = {}, {}
    for structure in ACTUATORS:
        names_p = tuple(extra) + (("steer_delay",) if structure == "lag+delay" else ())
        sol, lay, _, _ = train.solve(names, names_p)
        costs[structure] = _data_cost(test, sol.x, lay)
        inside[structure] = _data_cost(train, sol.x, lay)
    chosen = min(costs, key=costs.get)
    ratio = (costs[chosen] / (n_w - cut)) / max(inside[chosen] / cut, 1e-300)
    return {"chosen": chosen, "why": "the lower prediction cost on held-out windows", "held_out_cost": costs,
            "windows": [cut, n_w - cut], "held_out_over_in_sample": ratio,
            "structure_limited": bool(ratio > HELD_OUT_FACTOR)}


def _misfit(structure: dict, rmse: dict, sigma: np.ndarray) -> dict:
    """``structure`` with ``misfit`` (channel -> fitted RMSE / noise level, for v_x, v_y, r beyond
    :data:`MISFIT_FACTOR`) and ``structure_limited`` set when there is any."""
    bad = {c: round(float(rmse[c] / sigma[j]), 2) for j, c in enumerate(ro.CHANNEL_NAMES[:3])
           if np.isfinite(rmse[c]) and sigma[j] > 0 and rmse[c] > MISFIT_FACTOR * sigma[j]}
    return {**structure, "misfit": bad,
            "structure_limited": bool(structure.get("structure_limited")) or bool(bad)}


def _data_cost(prob: "_Problem", theta: np.ndarray, lay: _Layout) -> float:
    """0.5 x the sum of the squared weighted prediction errors of theta on ``prob``'s windows (no prior)."""
    r = prob.weighted_errors(theta, lay)
    return 0.5 * float(r @ r)


#: the steering dead time's search range [s] and start: a transport delay between the logged command and the servo
STEER_DELAY_MAX = 0.25
STEER_DELAY_START = 0.0


class _Layout(NamedTuple):
    """Where the fitted parameters sit in theta: first the vehicle parameters at indices ``idx`` (int[n_v]) of the
    VehicleParams array, then the extra ones named ``jp`` (pedal map, ``ref_x``); ``th0`` (start: base values),
    ``sc`` (scale), ``lo``, ``hi`` (search range): float64[n_v + n_p] in SI units."""

    idx: np.ndarray
    jp: list
    th0: np.ndarray
    sc: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


class _Problem:
    """The multi-step prediction-error problem of one fit (module doc).

    Windows of ``H`` samples start at ``starts`` (int[n_windows]); ``tgt`` and ``wts`` are float64[n_windows, H, 4]
    over the channels v_x [m/s], v_y [m/s], r [rad/s], delta [rad]: the logged targets and the residual weights
    (channel weight / sigma_c [1/unit], 0 where the steering angle is not measured, ``steer_ok``). A parameter vector
    theta (:class:`_Layout`) maps onto the car's array, the pedal map (``ped0``: its start, None without pedals) and
    the lever arm ``ref_x`` [m]."""

    def __init__(self, data: ro.Data, base: VehicleParams, model: str, wmul: dict, *, horizon_s: float, stride: int,
                 prior_rel: float | None, h_max: float, max_nfev: int, verbose: int, pedals: bool, n_boot: int,
                 block_s: float, seed: int):
        self.data, self.base, self.model, self.wmul = data, base, model, wmul
        self.prior_rel, self.h_max, self.max_nfev, self.verbose = prior_rel, h_max, max_nfev, verbose
        self.n_boot, self.seed = n_boot, seed
        self.H = H = max(1, int(round(horizon_s * data.rate_hz)))
        self.starts = ro.starts_or_raise(data, H, stride, horizon_s)
        self.tgt = ro.targets(data, H, self.starts)[..., list(ro.CHANNELS)]
        self.sigma = ro.noise_scale(data)
        self.steer_ok = data.steer_ok[self.starts][:, None].repeat(H, axis=1) & (not data.steer_input)
        self.wts = np.broadcast_to(np.array([wmul[c] for c in ro.CHANNEL_NAMES]) / self.sigma, self.tgt.shape).copy()
        self.wts[..., 3] *= self.steer_ok
        self.p_base = base.to_array()
        self.ped0 = pm.initial_map(data.pedals, data.meas[:, 3], data.t, data.seg).to_array() if pedals else None
        self.x_start = dict(zip(pm.NAMES, self.ped0)) if self.ped0 is not None else {}
        self.x_start["ref_x"] = 0.0
        self.x_start["steer_delay"] = STEER_DELAY_START
        self.x_scale = {**pm.SCALES, "ref_x": 0.3, "steer_delay": 0.02}
        self.x_bounds = {**pm.BOUNDS, "ref_x": (-base.wheelbase, base.wheelbase), "steer_delay": (0.0, STEER_DELAY_MAX)}
        self.init0 = data.init.copy()
        self.blk = max(1, int(round(block_s * data.rate_hz / max(stride, 1))))  # bootstrap block [windows]

    def subset(self, windows) -> "_Problem":
        """The same problem on the windows ``windows`` (a slice or sorted index array into ``starts``)."""
        sub = copy.copy(self)
        sub.starts, sub.tgt, sub.wts = self.starts[windows], self.tgt[windows], self.wts[windows]
        sub.steer_ok = self.steer_ok[windows]
        return sub

    def setup(self, names_v, names_p) -> _Layout:
        """The layout of theta for vehicle parameters ``names_v`` and extra parameters ``names_p``."""
        idx = np.array([PARAM_NAMES.index(n) for n in names_v], dtype=int)
        th0 = np.concatenate([self.p_base[idx], [self.x_start[n] for n in names_p]])
        sc = np.concatenate([_scales(self.base, names_v), [self.x_scale[n] for n in names_p]])
        lo_v, hi_v = _bounds(self.base, names_v)
        lo = np.concatenate([lo_v, [self.x_bounds[n][0] for n in names_p]])
        hi = np.concatenate([hi_v, [self.x_bounds[n][1] for n in names_p]])
        th0 = np.clip(th0, lo + 1e-9 * sc, hi - 1e-9 * sc)
        return _Layout(idx, list(names_p), th0, sc, lo, hi)

    def split(self, theta: np.ndarray, lay: _Layout) -> tuple[np.ndarray, np.ndarray | None]:
        """(the car's parameter array, the pedal map's array or None) of theta."""
        p = self.p_base.copy()
        p[lay.idx] = theta[:lay.idx.size]
        q = None
        extra = dict(zip(lay.jp, theta[lay.idx.size:]))
        if self.ped0 is not None:
            q = np.array([extra.get(n, v) for n, v in zip(pm.NAMES, self.ped0)])
        return p, q

    def reference_x(self, theta: np.ndarray, lay: _Layout) -> float | None:
        """The fitted ``ref_x`` [m], None when it is not fitted."""
        return float(theta[lay.idx.size + lay.jp.index("ref_x")]) if "ref_x" in lay.jp else None

    def steer_delay(self, theta: np.ndarray, lay: _Layout) -> float | None:
        """The fitted steering dead time [s], None when the structure has none."""
        return float(theta[lay.idx.size + lay.jp.index("steer_delay")]) if "steer_delay" in lay.jp else None

    def moved(self, theta: np.ndarray, lay: _Layout) -> tuple[ro.Data, np.ndarray]:
        """(data, targets) with the velocities moved to the CoG by theta's ref_x and the steering command delayed by
        its steer_delay."""
        dx, delay = self.reference_x(theta, lay), self.steer_delay(theta, lay)
        data, tg = self.data, self.tgt
        if delay is not None:
            data = dataclasses.replace(data, cmd=ro.delayed_steer(data, delay))
        if dx is None:
            return data, tg
        ini = self.init0.copy()
        ini[:, 4] -= ini[:, 5] * dx
        tg = tg.copy()
        tg[..., 1] -= tg[..., 2] * dx
        return dataclasses.replace(data, init=ini), tg

    def errors(self, theta: np.ndarray, lay: _Layout, p: np.ndarray, q: np.ndarray | None) -> np.ndarray:
        """Prediction errors float64[n_windows, H, 4] of the car ``p`` with pedal map ``q`` on the data moved by
        theta's ref_x [SI units of the channels]."""
        dat, tgt = self.moved(theta, lay)
        pred = ro.predict(dat, p, self.H, self.starts, self.model, h_max=self.h_max, pedal_theta=q)
        return pred[..., list(ro.CHANNELS)] - tgt

    def weighted_errors(self, theta: np.ndarray, lay: _Layout) -> np.ndarray:
        """The prediction errors of theta times their weights, flat (a non-finite one counts as 1e3)."""
        p, q = self.split(theta, lay)
        r = (self.errors(theta, lay, p, q) * self.wts).ravel()
        return np.where(np.isfinite(r), r, 1e3)

    def residual(self, lay: _Layout):
        """The residual function theta -> float64[n_windows * H * 4 (+ n prior rows)] of the layout."""
        def resid(theta):
            r = self.weighted_errors(theta, lay)
            if self.prior_rel:
                r = np.concatenate([r, (theta - lay.th0) / (self.prior_rel * lay.sc)])
            return r
        return resid

    def solve(self, names_v, names_p, x_init=None):
        """least_squares over ``names_v`` + ``names_p`` from the base values (``x_init``: from there, a refit) ->
        (solution, layout, cost at the base values, residual function)."""
        from scipy.optimize import least_squares

        lay = self.setup(names_v, names_p)
        resid = self.residual(lay)
        r0 = resid(lay.th0)
        c0 = 0.5 * float(r0 @ r0)
        lo, hi, sc = lay.lo, lay.hi, lay.sc
        x0 = lay.th0.copy() if x_init is None else np.clip(x_init, lo + 1e-9 * sc, hi - 1e-9 * sc)
        if x_init is None and "mu" in names_v:
            x0 = _mu_scan(resid, lay, list(names_v).index("mu"), c0, x0)
        # a refit after dropping unidentified parameters starts at the previous optimum: a few iterations do
        cap = self.max_nfev if x_init is None else max(5, self.max_nfev // 4)
        sol = least_squares(resid, x0, bounds=(lo, hi), x_scale=sc, method="trf", jac="2-point",
                            diff_step=1e-4, max_nfev=cap, verbose=self.verbose, xtol=1e-6, ftol=1e-7)
        return sol, lay, c0, resid

    def bootstrap(self, sol, n_free: int) -> np.ndarray | None:
        """Block-bootstrap replicates float64[n_boot, n_free] of the parameter step at ``sol`` (None: n_boot 0)."""
        if self.n_boot <= 0:
            return None
        return _block_bootstrap(sol.jac, sol.fun, self.H * 4, self.starts.size, n_free if self.prior_rel else 0,
                                self.blk, self.n_boot, self.seed)

    def rmse(self, lay: _Layout, theta: np.ndarray, p_fit: np.ndarray, q_fit) -> tuple[dict, dict]:
        """Per-channel horizon RMSE [SI] at the base values and of the fitted car (``p_fit``, ``q_fit``)."""
        p0, q0 = self.split(lay.th0, lay)
        return (_channel_rmse(self.errors(lay.th0, lay, p0, q0), self.steer_ok),
                _channel_rmse(self.errors(theta, lay, p_fit, q_fit), self.steer_ok))


def _mu_scan(resid, lay: _Layout, j: int, c0: float, x0: np.ndarray) -> np.ndarray:
    """The start of the fit with ``mu`` (theta[j]) scanned over :data:`MU_SCAN` times its base value: mu only acts
    when |F_x| reaches mu m g, so its gradient is zero where the base value never saturates."""
    best = c0
    for f in MU_SCAN:
        th = lay.th0.copy()
        th[j] = np.clip(lay.th0[j] * f, lay.lo[j], lay.hi[j])
        r = resid(th)
        c = 0.5 * float(r @ r)
        if c < best:
            best, x0 = c, th
    return x0


def _unpinned(all_names: tuple, theta: np.ndarray, reps: np.ndarray | None, lay: _Layout) -> list:
    """[(name, reason)] of the fitted parameters the log does not pin (module doc): at the edge of the search range
    or with a bootstrap relative standard error above :data:`REL_SE_MAX`."""
    se = reps.std(axis=0) if reps is not None else np.zeros(theta.size)
    sc, lo, hi = lay.sc, lay.lo, lay.hi
    drop = []
    for k, n in enumerate(all_names):
        tol_b = max(1e-6 * sc[k], 0.01 * (hi[k] - lo[k]))  # within 1 % of the search range of a bound
        # a positive range over decades (speed_kp 0.1..100): 1 % of it is 10x the lower bound; there, within 5 %
        tol_lo = 0.05 * lo[k] if 0.0 < lo[k] and hi[k] > 100.0 * lo[k] else tol_b
        at_b = theta[k] <= lo[k] + tol_lo or theta[k] >= hi[k] - tol_b
        rel = se[k] / abs(theta[k]) if abs(theta[k]) > sc[k] * 0.5 else se[k] / sc[k]
        lim = REL_SE_MAX if abs(theta[k]) > sc[k] * 0.5 else 2 * REL_SE_MAX
        if at_b:
            drop.append((n, f"went to {theta[k]:.4g}, at the edge of its search range [{lo[k]:.4g}, {hi[k]:.4g}]: "
                            f"the log does not pin it"))
        elif rel > lim:
            drop.append((n, f"bootstrap relative standard error {rel * 100:.0f} % (fitted {theta[k]:.4g}): the "
                            f"log does not pin it"))
    # a tyre's stiffness factor B carries the cornering stiffness B C D that any lateral log pins: when its
    # shape or peak (C, D) goes unpinned in the same round (linear tyres, a log below the peak), drop those
    # first and test B again with them fixed (dropping all three would keep a wrong base stiffness, and the
    # yaw inertia would absorb it)
    flagged = {n for n, _ in drop}
    return [(n, why) for n, why in drop if not (n in ("B_f", "B_r") and ({f"C_{n[-1]}", f"D_{n[-1]}"} & flagged))]


def _solve_identified(prob: _Problem, names: tuple, pedal_names: tuple, not_identified: dict, identify: bool):
    """Fit, then (``identify``) up to 3 rounds of sending what the log does not pin (:func:`_unpinned`) back to its
    base value (entered in ``not_identified``) and refitting the rest from the previous optimum.

    Returns (solution, layout, residual function, fitted names, bootstrap replicates float64[n_boot, n] or None,
    cost at the base values, function evaluations)."""
    sol, lay, cost0, resid = prob.solve(names, pedal_names)
    nfev = int(sol.nfev)
    all_names = tuple(names) + tuple(pedal_names)
    reps = prob.bootstrap(sol, len(all_names))
    for _round in range(3 if identify else 0):
        drop = _unpinned(all_names, sol.x, reps, lay)
        if not drop:
            break
        for n, why in drop:
            not_identified[n] = why
        keep = [k for k, n in enumerate(all_names) if n not in not_identified]
        names = tuple(n for n in names if n not in not_identified)
        pedal_names = tuple(n for n in pedal_names if n not in not_identified)
        all_names = tuple(names) + tuple(pedal_names)
        if all_names:
            sol, lay, _, resid = prob.solve(names, pedal_names, x_init=sol.x[keep])
            nfev += int(sol.nfev)
            reps = prob.bootstrap(sol, len(all_names))
        else:  # nothing this log identifies: the base car, reported as such
            lay = prob.setup((), ())
            sol = SimpleNamespace(x=np.zeros(0), cost=cost0, message="no parameter is identified by this log")
            reps = None
            break
    return sol, lay, resid, all_names, reps, cost0, nfev


#: halves whose estimates differ by more than this many combined standard errors, and by more than
#: :data:`SPLIT_REL` of the value, disagree
SPLIT_SIGMAS = 3.0
SPLIT_REL = 0.05


def split_agreement(prob: "_Problem", lay: _Layout, theta: np.ndarray, se: np.ndarray, iv: np.ndarray) -> dict:
    """Refit theta's parameters on two partitions of the windows, each part from the full fit's optimum with its own
    block bootstrap: the first and the second half in time (for a programme of manoeuvres run one after another,
    different manoeuvres), and the windows below and above the median speed (the same manoeuvres at another speed:
    the yaw mode's frequency moves with speed, an actuator's does not, so a structure the model lacks biases the two
    differently). A parameter whose parts differ by more than :data:`SPLIT_SIGMAS` combined standard errors and more
    than :data:`SPLIT_REL` of its value is not vouched for: a model that fits the car would give one value
    throughout, so the spread is a bias (an actuator, a tyre, a load path the model lacks), which the bootstrap over
    windows of the whole log cannot see. Such parameters get ``se`` and ``iv`` (in place) widened to cover both
    parts. Returns name -> {"halves": the two parts' values, "std_errors", "widened_se", "split": "time" or
    "speed"} (empty when the parts agree or are too short)."""
    n_w = prob.starts.size
    if n_w < 4 * max(prob.blk, 1):
        return {}
    order = np.argsort(prob.tgt[:, :, 0].mean(axis=1), kind="stable")  # windows by their mean v_x [m/s]
    slow, fast = np.sort(order[:n_w // 2]), np.sort(order[n_w // 2:])
    out = {}
    for split, parts in (("time", (slice(0, n_w // 2), slice(n_w // 2, n_w))), ("speed", (slow, fast))):
        for name, entry in _split_fits(prob, lay, theta, parts).items():
            if name not in out:
                out[name] = {**entry, "split": split}
    all_names = tuple(PARAM_NAMES[i] for i in lay.idx) + tuple(lay.jp)
    for name, entry in out.items():
        k = all_names.index(name)
        a, b = entry["halves"]
        se[k] = entry["widened_se"] = max(float(se[k]), 0.5 * abs(a - b))
        iv[k] = [min(iv[k][0], a, b), max(iv[k][1], a, b)]
    return out


def _split_fits(prob: "_Problem", lay: _Layout, theta: np.ndarray, parts) -> dict:
    """name -> {"halves", "std_errors"} of the parameters whose fits on the two ``parts`` of the windows (slices or
    index arrays into ``prob.starts``) disagree (:func:`split_agreement`)."""
    names_v = tuple(PARAM_NAMES[i] for i in lay.idx)
    vals, ses = [], []
    for part in parts:
        sub = prob.subset(part)
        sol, _, _, _ = sub.solve(names_v, tuple(lay.jp), x_init=theta)
        vals.append(sol.x)
        ses.append(_bootstrap_stats(sol.x, sub.bootstrap(sol, theta.size))[0])
    (a, b), (sa, sb) = vals, ses
    out = {}
    for k, name in enumerate(names_v + tuple(lay.jp)):
        gap = abs(a[k] - b[k])
        comb = math.hypot(sa[k], sb[k])
        if np.isfinite(comb) and gap > SPLIT_SIGMAS * comb and gap > SPLIT_REL * max(abs(theta[k]), 1e-12):
            out[name] = {"halves": [float(a[k]), float(b[k])], "std_errors": [float(sa[k]), float(sb[k])]}
    return out


def _bootstrap_stats(theta: np.ndarray, reps: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(standard errors float64[n], 95 % intervals float64[n, 2], correlation float64[n, n]) of theta from the
    bootstrap replicates float64[n_boot, n] of its step; NaN (identity correlation) without replicates."""
    n = theta.size
    if reps is not None and n:
        se = reps.std(axis=0)
        iv = np.column_stack([theta + np.percentile(reps, 2.5, axis=0), theta + np.percentile(reps, 97.5, axis=0)])
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num(np.corrcoef(reps.T).reshape(n, n)) if n > 1 else np.ones((1, 1))
        np.fill_diagonal(corr, 1.0)
    else:
        se, iv, corr = np.full(n, np.nan), np.full((n, 2), np.nan), np.eye(n)
    return se, iv, corr


def _confounded_pairs(resid, theta: np.ndarray, all_names: tuple, corr: np.ndarray, se: np.ndarray, iv: np.ndarray,
                      lay: _Layout, cost_opt: float) -> dict:
    """{name: {partner, correlation, interval}} of the fitted parameters whose strongest bootstrap correlation
    reaches :data:`CORR_MAX`; the interval joins the bootstrap one with the valley's (:func:`valley_interval`)."""
    n = theta.size
    confounded, done = {}, {}
    for a in range(n):
        b = int(np.argmax(np.where(np.arange(n) == a, 0.0, np.abs(corr[a]))))
        if abs(corr[a, b]) >= CORR_MAX:
            key = (min(a, b), max(a, b))
            if key not in done:  # one walk along the valley serves both parameters of the pair
                done[key] = valley_interval(resid, theta, key[0], key[1], corr[a, b], se, lay.sc, lay.lo, lay.hi,
                                            cost_opt, iv[key[0]], iv[key[1]])
            ia, ib = done[key]
            confounded[all_names[a]] = {"partner": all_names[b], "correlation": float(corr[a, b]),
                                        "interval": list(ia if a == key[0] else ib)}
    return confounded


def valley_interval(resid, theta, a, b, rho, se, scale, lo, hi, cost_opt, boot_a, boot_b, rise: float = 0.01,
                    n_steps: int = 8) -> tuple[tuple, tuple]:
    """Intervals of parameters ``a`` and ``b`` along the valley they share: moving both along their bootstrap
    correlation direction (``d_b = rho se_b / se_a d_a``), the range where the cost stays within ``rise``
    (relative) of the optimum (the predictions are then indistinguishable within the noise), joined with the
    bootstrap 95 % intervals ``boot_a``, ``boot_b``. Steps grow quadratically up to 60 % of ``|theta_a|`` (or 3
    scales) each way."""
    ia, ib = [float(boot_a[0]), float(boot_a[1])], [float(boot_b[0]), float(boot_b[1])]
    span = max(0.6 * abs(theta[a]), 3 * scale[a] if theta[a] == 0 else 0.0)
    ratio = rho * se[b] / se[a] if se[a] > 0 else 0.0
    for sgn in (-1, 1):
        for k in range(1, n_steps + 1):
            d = sgn * span * (k / n_steps) ** 2
            th = theta.copy()
            th[a] += d
            th[b] += ratio * d
            if not (lo[a] <= th[a] <= hi[a] and lo[b] <= th[b] <= hi[b]):
                break
            r = resid(th)
            if 0.5 * float(r @ r) > (1.0 + rise) * cost_opt:
                break
            ia = [min(ia[0], th[a]), max(ia[1], th[a])]
            ib = [min(ib[0], th[b]), max(ib[1], th[b])]
    return (ia[0], ia[1]), (ib[0], ib[1])
