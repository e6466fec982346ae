"""Simulated vehicles ("plants") for the closed-loop simulator.

A plant is any object with::

    reset(x0: float64[7]) -> None                 # true state, dynamic layout (racing.models.dynamic)
    step(command: Command, dt: float) -> float64[7]  # hold the command for dt [s], return the new true state

Built-in plants (``make_plant(name, params)``): ``dynamic`` (default; the dynamic single-track
model) and ``kinematic`` (kinematic bicycle, reported in the dynamic layout). Both integrate
with RK4 at ``plant_hz`` (>= 500 Hz) sub-steps and model the actuators:

* steering: target ``steer_gain * cmd + steer_offset`` clipped to ``steer_max``, reached by a
  first-order servo with time constant ``steer_tau`` and rate limit ``steer_rate_max``;
* speed: ``a = cmd.acceleration + speed_kp (cmd.speed - v_x)`` clipped to
  ``[-decel_max, accel_max]`` (motor power and tyre grip are limited inside the model).

Users race their own simulator with ``--plant module:attr`` where ``attr(params, plant_hz=...)``
returns such an object (see README).
"""
from __future__ import annotations

import importlib
import math

import numpy as np
from numba import njit

from racing.control.base import Command
from racing.models import numba_backend as nbm
from racing.models.dynamic import dynamic_state_from_kinematic, kinematic_state_from_dynamic
from racing.models.params import (P_ACCEL_MAX, P_DECEL_MAX, P_SPEED_KP, P_STEER_GAIN, P_STEER_MAX, P_STEER_OFFSET,
                                  P_STEER_RATE_MAX, P_STEER_TAU, VehicleParams)


@njit(cache=True)
def actuator_inputs(x, steer_idx, p, cmd_steer, cmd_speed, cmd_accel, h, u):
    """Model inputs ``u[2]`` = (steering rate [rad/s], acceleration [m/s^2]) from the actuators."""
    smax = p[P_STEER_MAX]
    target = p[P_STEER_GAIN] * cmd_steer + p[P_STEER_OFFSET]
    target = min(max(target, -smax), smax)
    tau = p[P_STEER_TAU]
    err = target - x[steer_idx]
    rate = err / tau if tau > 0.0 else err / h
    rmax = p[P_STEER_RATE_MAX]
    rate = min(max(rate, -rmax), rmax)
    # never integrate past the target within one sub-step
    if abs(rate * h) > abs(err):
        rate = err / h
    a = cmd_accel + p[P_SPEED_KP] * (cmd_speed - x[3])
    u[0] = rate
    u[1] = min(max(a, -p[P_DECEL_MAX]), p[P_ACCEL_MAX])


@njit(cache=True)
def advance(model, x, p, cmd_steer, cmd_speed, cmd_accel, h, nsub, work, u):
    """Advance ``x`` in place by ``nsub`` RK4 sub-steps of ``h`` [s]; False if the state became non-finite."""
    steer_idx = 4 if model == nbm.MODEL_KINEMATIC else 6
    nx = x.shape[0]
    for _ in range(nsub):
        actuator_inputs(x, steer_idx, p, cmd_steer, cmd_speed, cmd_accel, h, u)
        nbm.rk4_step_nb(model, x, u, p, h, x, work)
        for i in range(nx):
            if not math.isfinite(x[i]):
                return False
    return True


class NumbaPlant:
    """RK4 + actuators around a numba model (``model`` = 'dynamic' | 'kinematic')."""

    def __init__(self, params: VehicleParams, model: str = "dynamic", plant_hz: float = 1000.0):
        if plant_hz < 500:
            raise ValueError(f"plant_hz must be >= 500 Hz, got {plant_hz}")
        self.params = params
        self.model_name = model
        self.model = nbm.model_id(model)
        self.p = params.to_array()
        self.h_max = 1.0 / plant_hz
        self.x = np.zeros(nbm.MODEL_NX[self.model])
        self._work = np.zeros((5, nbm.MAX_NX))
        self._u = np.zeros(2)

    def reset(self, x0: np.ndarray) -> None:
        x0 = np.asarray(x0, dtype=float)
        self.x[:] = kinematic_state_from_dynamic(x0) if self.model == nbm.MODEL_KINEMATIC else x0

    @property
    def state(self) -> np.ndarray:
        """True state in the dynamic layout, float64[7]."""
        if self.model == nbm.MODEL_KINEMATIC:
            return dynamic_state_from_kinematic(self.x, self.p)
        return self.x.copy()

    def step(self, command: Command, dt: float) -> np.ndarray:
        if dt <= 0:
            return self.state
        nsub = max(1, int(math.ceil(dt / self.h_max - 1e-9)))
        ok = advance(self.model, self.x, self.p, float(command.steering_angle), float(command.speed),
                     float(command.acceleration), dt / nsub, nsub, self._work, self._u)
        if not ok:
            raise FloatingPointError("plant state became non-finite")
        return self.state


def _dynamic(params: VehicleParams, plant_hz: float = 1000.0):
    return NumbaPlant(params, "dynamic", plant_hz)


def _kinematic(params: VehicleParams, plant_hz: float = 1000.0):
    return NumbaPlant(params, "kinematic", plant_hz)


PLANTS = {"dynamic": _dynamic, "kinematic": _kinematic}


def register_plant(name: str, factory) -> None:
    """Add a plant factory ``factory(params, plant_hz=...)`` under ``name``."""
    PLANTS[name] = factory


def _load_builtin() -> None:
    try:
        importlib.import_module("racing.sim.plants_ext")
    except ModuleNotFoundError as exc:
        if exc.name != "racing.sim.plants_ext":
            raise


def known_plants() -> list[str]:
    _load_builtin()
    return sorted(PLANTS)


def make_plant(spec: str, params: VehicleParams, plant_hz: float = 1000.0):
    """A plant by registry name or by import path ``'package.module:factory'``."""
    _load_builtin()
    if ":" in spec:
        mod_name, _, attr = spec.partition(":")
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as exc:
            raise ValueError(f"--plant {spec!r}: cannot import module {mod_name!r}: {exc}") from exc
        factory = getattr(mod, attr, None)
        if factory is None:
            raise ValueError(f"--plant {spec!r}: module {mod_name!r} has no attribute {attr!r}")
    else:
        if spec not in PLANTS:
            raise ValueError(f"unknown plant {spec!r}; known plants: {', '.join(known_plants())} "
                             f"(or an import path 'module:factory')")
        factory = PLANTS[spec]
    plant = factory(params, plant_hz=plant_hz)
    for meth in ("reset", "step"):
        if not callable(getattr(plant, meth, None)):
            raise ValueError(f"plant {spec!r} has no {meth}() method; see racing.sim.plant for the interface")
    return plant
