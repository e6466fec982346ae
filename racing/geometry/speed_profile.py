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
loop is closed by running each pass over two laps. The passes are compiled (:func:`_passes`, the model's
scalar form ``ops = sops``): about 0.1 ms for a 2 km circuit at 5 m spacing, so a controller can rebuild its
speed cap for a new grip estimate inside a control period (:class:`racing.control.costs.ProfileCap`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from racing.models import sops
from racing.models.dynamic import accel_limits
from racing.models.fastmath import scalar
from racing.models.params import (G, P_ACCEL_MAX, P_CDRAG, P_CROLL, P_DECEL_MAX, P_MASS, P_MU,
                                  VehicleParams)


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


@scalar
def accel_available(v, k, braking, p, a_lat0, k_down, ops):
    """The longitudinal acceleration [m/s^2] the profile allows at speed ``v`` [m/s] on curvature ``k`` [1/m]
    (module doc: the friction ellipse between the lateral demand ``v^2 |k|`` and the model's longitudinal limits,
    drag included), ``p`` the flat parameters with the grip scaled, ``a_lat0`` [m/s^2] and ``k_down`` [1/m] from
    :func:`_limits`; ``braking`` (a Python bool) gives the deceleration (positive)."""
    ay = v * v * abs(k)
    q = ay / (a_lat0 + k_down * v * v)
    rem = math.sqrt(max(0.0, 1.0 - q * q))
    lo, hi = accel_limits(v, p, ops)  # grip (load transfer, brake balance, downforce) and power
    drag = p[P_CDRAG] * v * v / p[P_MASS]
    if braking:
        return min(p[P_DECEL_MAX], -lo) * rem + drag  # drag helps braking
    return min(p[P_ACCEL_MAX], hi) * rem - drag - p[P_CROLL] * G


class AccelAvailable:
    """:func:`accel_available` for ``params`` at ``grip_scale``: ``avail(v, k, braking)`` [m/s^2]."""

    def __init__(self, params: VehicleParams, grip_scale: float = 1.0):
        self.params = params
        self.a_lat0, self.k_down, self.p = _limits(params, grip_scale)

    def __call__(self, v: float, k: float, braking: bool) -> float:
        return float(accel_available(float(v), float(k), bool(braking), self.p, self.a_lat0, self.k_down, sops))


@njit(cache=True, error_model="numpy")
def _passes(kappa, ds, p, a_lat0, k_down, closed, v):
    """The forward (acceleration) and backward (braking) passes over ``v[N]`` [m/s] in place, which holds the
    lateral limit on entry; over two laps when ``closed``."""
    n = kappa.shape[0]
    reps = 2 if closed else 1
    for j in range(1, reps * n):
        i, k = (j - 1) % n, j % n
        if not closed and k == 0:
            continue
        a = max(accel_available(v[i], kappa[i], False, p, a_lat0, k_down, sops), 0.0)
        v[k] = min(v[k], math.sqrt(v[i] * v[i] + 2.0 * a * ds))
    for j in range(reps * n - 1, 0, -1):
        i, k = j % n, (j - 1) % n  # from i back to k = i - 1
        if not closed and i == 0:
            continue
        a = max(accel_available(v[i], kappa[i], True, p, a_lat0, k_down, sops), 0.0)
        v[k] = min(v[k], math.sqrt(v[i] * v[i] + 2.0 * a * ds))


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
    kappa = np.ascontiguousarray(kappa, dtype=float)
    if kappa.ndim != 1 or kappa.size < 2 or not np.all(np.isfinite(kappa)):
        raise ValueError("speed_profile: kappa must be a finite 1-D array with at least 2 samples")
    if not ds > 0:
        raise ValueError(f"speed_profile: ds must be > 0, got {ds}")
    vcap = params.v_max if v_max is None else v_max
    a_lat0, k_down, p = _limits(params, grip_scale)
    # v^2 |kappa| <= a_lat0 + k_down v^2 (downforce): v^2 <= a_lat0 / (|kappa| - k_down)
    room = np.abs(kappa) - k_down
    v = np.minimum(np.sqrt(a_lat0 / np.maximum(room, 1e-9)), vcap)
    _passes(kappa, float(ds), p, float(a_lat0), float(k_down), bool(closed), v)
    v = np.maximum(v, 0.0)
    vn = np.roll(v, -1)
    ax = (vn ** 2 - v ** 2) / (2.0 * ds)
    vmean = 0.5 * (v + vn)
    seg = ds / np.maximum(vmean, 1e-3)
    lap_time = float(np.sum(seg if closed else seg[:-1]))
    return SpeedProfile(v=v, ax=ax, lap_time=lap_time)
