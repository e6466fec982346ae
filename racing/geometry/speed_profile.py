"""Quasi-steady-state speed profile over a closed path (forward-backward pass).

Given curvature ``kappa[N]`` [1/m] at uniform spacing ``ds`` [m] along a closed path, the
profile is the fastest speed ``v[N]`` [m/s] such that

* lateral acceleration v^2 |kappa| <= a_lat_max = min(D_f, D_r) (g + c_down v^2 / m) * grip_scale,
* longitudinal acceleration lies inside the friction ellipse
  (a_x / a_x_max)^2 + (a_y / a_lat_max)^2 <= 1, where a_x_max is, when speeding up, the least of
  accel_max and the model's drive limit (power and grip, :func:`racing.models.dynamic.accel_limits`, less drag),
  and when braking the least of decel_max and the model's braking limit (load transfer and brake balance),
* v <= v_max.

The forward pass applies the acceleration limit, the backward pass the braking limit; the
loop is closed by running each pass over two laps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from racing.models.dynamic import accel_limits
from racing.models.ops import NUMPY
from racing.models.params import G, P_MU, VehicleParams


@dataclass(frozen=True)
class SpeedProfile:
    """v[N] [m/s], ax[N] [m/s^2] along the path; lap_time [s] of driving it exactly."""

    v: np.ndarray
    ax: np.ndarray
    lap_time: float


def _limits(params: VehicleParams, grip_scale: float):
    """(peak lateral acceleration [m/s^2] at v = 0, downforce per unit speed^2 [1/m], the flat parameters with the
    grip scaled): the tyre limits the model states (:func:`racing.models.dynamic.accel_limits` for the
    longitudinal ones)."""
    d = min(params.D_f, params.D_r) * grip_scale
    p = params.to_array()
    p[P_MU] *= grip_scale
    return G * d, d * params.c_down / params.mass, p


class AccelAvailable:
    """The longitudinal acceleration [m/s^2] the profile allows at speed ``v`` [m/s] on curvature ``k`` [1/m]
    (module doc: the friction ellipse between the lateral demand and the model's longitudinal limits, drag
    included); ``braking=True`` gives the deceleration (positive)."""

    def __init__(self, params: VehicleParams, grip_scale: float = 1.0):
        self.params = params
        self.a_lat0, self.k_down, self.p = _limits(params, grip_scale)

    def __call__(self, v: float, k: float, braking: bool) -> float:
        params, m = self.params, self.params.mass
        ay = v * v * abs(k)
        rem = max(0.0, 1.0 - (ay / (self.a_lat0 + self.k_down * v * v)) ** 2)
        lo, hi = accel_limits(v, self.p, NUMPY)  # grip (load transfer, brake balance, downforce) and power
        if braking:
            # drag helps braking
            return min(params.decel_max, -float(lo)) * np.sqrt(rem) + params.c_drag * v * v / m
        return min(params.accel_max, float(hi)) * np.sqrt(rem) - params.c_drag * v * v / m - params.c_roll * G


def speed_profile(kappa: np.ndarray, ds: float, params: VehicleParams, grip_scale: float = 1.0,
                  v_max: float | None = None, closed: bool = True) -> SpeedProfile:
    """Friction-limited speed profile.

    Parameters
    ----------
    kappa : float[N] curvature [1/m] at uniform spacing ``ds`` [m]
    params : car parameters
    grip_scale : fraction of the tyre grip to use (1 = the limit)
    v_max : speed cap [m/s] (default ``params.v_max``)
    closed : the path is a closed loop (sample N-1 connects to sample 0)
    """
    kappa = np.asarray(kappa, dtype=float)
    if kappa.ndim != 1 or kappa.size < 2 or not np.all(np.isfinite(kappa)):
        raise ValueError("speed_profile: kappa must be a finite 1-D array with at least 2 samples")
    if not ds > 0:
        raise ValueError(f"speed_profile: ds must be > 0, got {ds}")
    n = kappa.size
    vcap = params.v_max if v_max is None else v_max
    ax_avail = AccelAvailable(params, grip_scale)
    # v^2 |kappa| <= a_lat0 + k_down v^2 (downforce): v^2 <= a_lat0 / (|kappa| - k_down)
    room = np.abs(kappa) - ax_avail.k_down
    v_lat = np.minimum(np.sqrt(ax_avail.a_lat0 / np.maximum(room, 1e-9)), vcap)

    reps = 2 if closed else 1
    v = v_lat.copy()
    # forward pass (acceleration)
    idx = [i % n for i in range(reps * n)]
    for j in range(1, len(idx)):
        i, k = idx[j - 1], idx[j]
        if not closed and k == 0:
            continue
        a = max(ax_avail(v[i], kappa[i], False), 0.0)
        v[k] = min(v[k], np.sqrt(v[i] ** 2 + 2.0 * a * ds))
    # backward pass (braking)
    for j in range(len(idx) - 1, 0, -1):
        i, k = idx[j], idx[j - 1]  # from i back to k = i - 1
        if not closed and i == 0:
            continue
        a = max(ax_avail(v[i], kappa[i], True), 0.0)
        v[k] = min(v[k], np.sqrt(v[i] ** 2 + 2.0 * a * ds))
    v = np.maximum(v, 0.0)
    vn = np.roll(v, -1)
    ax = (vn ** 2 - v ** 2) / (2.0 * ds)
    vmean = 0.5 * (v + vn)
    seg = ds / np.maximum(vmean, 1e-3)
    lap_time = float(np.sum(seg if closed else seg[:-1]))
    return SpeedProfile(v=v, ax=ax, lap_time=lap_time)
