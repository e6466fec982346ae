"""Simulated vehicles ("plants") for the closed-loop simulator.

A plant is any object with::

    reset(x0: float64[7]) -> None                 # true state, dynamic layout (racing.models.dynamic)
    step(command: Command, dt: float) -> float64[7]  # hold the command for dt [s], return the new true state

Built-in plants (``make_plant(name, params)``): ``dynamic`` (default; the dynamic single-track
model) and ``kinematic`` (kinematic bicycle, reported in the dynamic layout). Both integrate
with RK4 at ``plant_hz`` (>= 500 Hz) sub-steps and model the actuators:

* steering: target ``steer_gain * cmd + steer_offset`` clipped to ``steer_max``, reached by a
  first-order servo with time constant ``steer_tau`` and rate limit ``steer_rate_max``;
* speed: ``a = cmd.acceleration + speed_kp (cmd.speed - v_x)`` (+ ``speed_ki`` x the integral of the speed
  error, for a car with a PI loop) clipped to ``[-decel_max, accel_max]`` (motor power and tyre grip are limited
  inside the model).

(the actuator model of :mod:`racing.models.actuators`, Euler-discretised servo lag). The registry
(``make_plant``, ``register_plant``, ``known_plants``) is :mod:`racing.sim.plant`.

Users race their own simulator with ``--plant module:attr`` where ``attr(params, plant_hz=...)``
returns such an object (see README).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from racing.interfaces import Command
from racing.models import numba_backend as nbm
from racing.models import sops
from racing.models.actuators import actuator_inputs_pi
from racing.models.dynamic import dynamic_state_from_kinematic, kinematic_state_from_dynamic
from racing.models.params import VehicleParams


@njit(cache=True)
def advance(model, x, p, cmd_steer, cmd_speed, cmd_accel, h, nsub, work, u, ki, integ):
    """Advance ``x`` in place by ``nsub`` RK4 sub-steps of ``h`` [s], the speed loop's integral ``integ[0]`` [m]
    with them (integral gain ``ki`` [1/s^2]); False if the state became non-finite."""
    steer_idx = 4 if model == nbm.MODEL_KINEMATIC else 6
    nx = x.shape[0]
    for _ in range(nsub):
        u[0], u[1], integ[0] = actuator_inputs_pi(x[steer_idx], x[3], cmd_steer, cmd_speed, cmd_accel, p, h, False,
                                                  ki, integ[0], sops)
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
        self._integ = np.zeros(1)  # the speed loop's integral [m] (a car with speed_ki > 0)

    def reset(self, x0: np.ndarray) -> None:
        x0 = np.asarray(x0, dtype=float)
        self.x[:] = kinematic_state_from_dynamic(x0) if self.model == nbm.MODEL_KINEMATIC else x0
        self._integ[0] = 0.0

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
                     float(command.acceleration), dt / nsub, nsub, self._work, self._u, self.params.speed_ki,
                     self._integ)
        if not ok:
            raise FloatingPointError("plant state became non-finite")
        return self.state


