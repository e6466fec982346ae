r"""Pedal map of pedal-driven cars: throttle [%] and brake pressure [kPa] -> the acceleration command.

Real race cars are driven by pedals, not by a speed set-point. The fit identifies a map from the
pedal commands to the model's acceleration input with a first-order lag (engine/brake build-up)::

    a_target = k_throttle * throttle - k_brake * brake + a_0          [m/s^2]
    a' = (a_target - a) / tau_pedal        (exact zero-order-hold update per log step; a starts at a_target)

The result feeds the vehicle model's acceleration input (whose motor-power, grip and resistance
terms stay the model's) with the speed loop switched off (``speed_kp = 0`` in the prediction).
The map is linear in the gains, so start values come from a least-squares regression of the
logged longitudinal acceleration ``dv_x/dt`` (central differences) on the pedals over the moving
samples (:func:`initial_map`).

The identified map is written beside the fitted car (``<out>.pedals.yaml``) and in the JSON: it
is a property of the car's interface, not of its dynamics (the car YAML has no pedal fields).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from racing.models.params import yaml_float

#: names, units and bounds of the pedal-map parameters
NAMES = ("pedal_throttle_gain", "pedal_brake_gain", "pedal_offset", "pedal_tau")
UNITS = {"pedal_throttle_gain": "m/s^2/%", "pedal_brake_gain": "m/s^2/kPa", "pedal_offset": "m/s^2",
         "pedal_tau": "s"}
BOUNDS = {"pedal_throttle_gain": (0.0, 5.0), "pedal_brake_gain": (0.0, 0.1), "pedal_offset": (-5.0, 5.0),
          "pedal_tau": (0.0, 1.0)}
SCALES = {"pedal_throttle_gain": 0.05, "pedal_brake_gain": 0.002, "pedal_offset": 0.3, "pedal_tau": 0.1}


@dataclass(frozen=True)
class PedalMap:
    """The identified pedal map (module doc); SI units, brake in kPa, throttle in %."""

    pedal_throttle_gain: float
    pedal_brake_gain: float
    pedal_offset: float
    pedal_tau: float

    def to_array(self) -> np.ndarray:
        return np.array([getattr(self, n) for n in NAMES])

    @classmethod
    def from_array(cls, a) -> "PedalMap":
        return cls(*(float(v) for v in a))

    def to_dict(self) -> dict:
        return {n: float(getattr(self, n)) for n in NAMES}

    def to_yaml(self, path, header: str = "") -> None:
        lines = [f"# {h}" for h in header.splitlines()]
        lines += [f"{n}: {yaml_float(getattr(self, n))}  # [{UNITS[n]}]" for n in NAMES]
        from pathlib import Path

        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def pedal_accel(pedals: np.ndarray, dt: np.ndarray, theta) -> np.ndarray:
    """Acceleration commands ``[N]`` [m/s^2] from ``pedals[N, 2]`` (throttle %, brake kPa) with the map ``theta``
    (:data:`NAMES` order); ``dt[N]`` [s] is the step to the next sample, 0 at a segment end (the lag restarts at
    every segment start in steady state)."""
    from scipy.signal import lfilter

    kt, kb, a0, tau = (float(v) for v in theta)
    target = kt * pedals[:, 0] - kb * pedals[:, 1] + a0
    if tau <= 1e-6:
        return target
    out = np.empty_like(target)
    ends = np.flatnonzero(dt <= 0)
    start = 0
    for e in np.append(ends, target.size - 1):
        if e < start:
            continue
        seg = target[start:e + 1]
        step = float(np.median(dt[start:e])) if e > start else 1.0
        alpha = 1.0 - np.exp(-step / tau)
        # a_{k+1} = a_k + alpha (target_k - a_k): the value at k is the lag's state entering step k
        y, _ = lfilter([0.0, alpha], [1.0, -(1.0 - alpha)], seg, zi=[seg[0]])
        out[start:e + 1] = y
        start = e + 1
    return out


def initial_map(pedals: np.ndarray, vx: np.ndarray, t: np.ndarray, seg: np.ndarray, v_min: float = 2.0) -> PedalMap:
    """Start values: least squares of ``dv_x/dt`` on (throttle, -brake, 1) over samples with ``v_x > v_min``."""
    a = np.zeros_like(vx)
    ok = np.zeros(vx.size, bool)
    for s in np.unique(seg):
        i = np.flatnonzero(seg == s)
        if i.size >= 3:
            a[i[1:-1]] = (vx[i[2:]] - vx[i[:-2]]) / (t[i[2:]] - t[i[:-2]])
            ok[i[1:-1]] = True
    ok &= vx > v_min
    if ok.sum() < 10:
        return PedalMap(0.1, 0.005, 0.0, 0.1)
    A = np.column_stack([pedals[ok, 0], -pedals[ok, 1], np.ones(ok.sum())])
    coef, *_ = np.linalg.lstsq(A, a[ok], rcond=None)
    kt = float(np.clip(coef[0], 1e-3, BOUNDS["pedal_throttle_gain"][1]))
    kb = float(np.clip(coef[1], 1e-5, BOUNDS["pedal_brake_gain"][1])) if np.any(pedals[ok, 1] > 0) else 0.005
    return PedalMap(kt, kb, float(np.clip(coef[2], -4.9, 4.9)), 0.1)
