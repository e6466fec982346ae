"""The receding-horizon pieces MPPI and iLQR share: the racing cost's weights and their assembly into the
kernels' flat parameters, the margins and the planning horizon derived from a car, the input clamp, the rollout
models (the discrete steps of :mod:`racing.models.discrete` as ``start``/``step`` pairs over a 9-tuple state) and
the local projection of the car onto the track table. Written once; the MPPI kernels
(:mod:`racing.control.mppi.step`), MPPI's CUDA kernel and iLQR's forward pass (:mod:`racing.control.ilqr.problem`)
all use these.
"""
from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass, field

from numba import njit
from numba.np.unsafe.ndarray import to_fixed_tuple

from racing.control import costs as C
from racing.models import sops
from racing.models.discrete import dynamic_step_c, kinematic_step_c
from racing.models.dynamic import dynamic_rhs_s, peak_slip_angle
from racing.models.fastmath import FM, fmax, scalar
from racing.models.params import (G, N_PARAMS, P_ACCEL_MAX, P_DECEL_MAX, P_STEER_MAX, P_STEER_RATE_MAX,
                                  VehicleParams)
from racing.models.residual import aug_update, residual_z

@dataclass(frozen=True)
class CostWeights:
    """Weights of the racing cost terms (see :mod:`racing.control.mppi.costs` for the formulas)."""

    progress: float = field(default=1.0, metadata={"unit": "1/m", "min": 0.0,
                                                   "doc": "reward per metre of arc-length progress over the horizon"})
    line: float = field(default=0.0, metadata={"unit": "1/m^2", "min": 0.0,
                                               "doc": "(n - n_raceline)^2 per step"})
    speed_cap: float = field(default=2.0, metadata={"unit": "s^2/m^2", "min": 0.0,
                                                    "doc": "max(0, v - v_cap(s))^2 per step"})
    speed_track: float = field(default=0.0, metadata={"unit": "s^2/m^2", "min": 0.0,
                                                      "doc": "(v - v_cap(s))^2 per step (track the reference speed "
                                                             "profile: a speed reward below it)"})
    terminal_speed: float = field(default=20.0, metadata={"unit": "s^2/m^2", "min": 0.0,
                                                          "doc": "max(0, v_T - v_cap(s_T))^2 at the horizon end"})
    boundary: float = field(default=50.0, metadata={"unit": "1/m^2", "min": 0.0,
                                                    "doc": "(soft_margin - d_edge)^2 when closer than soft_margin"})
    crash: float = field(default=1.0e4, metadata={"unit": "-", "min": 0.0,
                                                  "doc": "cost of leaving the crash margin (scaled by time left)"})
    slip: float = field(default=10.0, metadata={"unit": "-", "min": 0.0, "doc": "(v_y / v_x)^2 per step"})
    tyre_slip: float = field(default=0.0, metadata={"unit": "-", "min": 0.0,
                                                    "doc": "max(0, |alpha| / alpha_peak - 1)^2 per axle and step: "
                                                           "slip angles past the Pacejka force peak"})
    steer_rate_change: float = field(default=0.01, metadata={"unit": "s^2/rad^2", "min": 0.0,
                                                             "doc": "(steer rate_t - rate_{t-1})^2 per step"})
    accel_change: float = field(default=0.001, metadata={"unit": "s^4/m^2", "min": 0.0,
                                                         "doc": "(a_t - a_{t-1})^2 per step"})


def planning_horizon_s(params) -> float:
    """``clip(0.45 v_max / (mu g), 1.5 s, 2.5 s)`` [s]: long enough to brake from the car's top speed to a stop
    at about twice its grip (a planner's horizon for a car without a tuning)."""
    return min(max(0.45 * params.v_max / (params.mu * G), 1.5), 2.5)


def margins(soft_margin, crash_margin, params) -> tuple[float, float]:
    """``(soft_margin, crash_margin)`` [m] with ``None`` filled from the car's width: crash 0.6 width (the
    half-width and 10 %), soft = crash + 0.5 width."""
    crash = crash_margin if crash_margin is not None else 0.6 * params.width
    soft = soft_margin if soft_margin is not None else crash + 0.5 * params.width
    return float(max(soft, crash)), float(crash)


def cost_params_for(weights: "CostWeights", soft_margin: float, crash_margin: float, ds: float, beta_max: float,
                    yaw_limit: float, params: VehicleParams, rear_slip_limit: float = 1.0):
    """The racing cost's flat parameters ``cp[N_COST_PARAMS]`` (:func:`racing.control.costs.cost_params`) for a
    car: ``beta_max`` [rad] (<= 0: no sideslip limit) and ``yaw_limit`` (share of the grip-limited yaw rate
    ``g min(D_f, D_r)``; <= 0: none); the tyre-slip term's slip angles from the car's Pacejka curves: the front's
    peak, and the rear's peak times ``rear_slip_limit`` (1: the peak; 0.5 keeps the rear tyres at about 88 % of
    their peak force on a Pacejka curve with C = 1.5-1.6, a margin of yaw stability)."""
    return C.cost_params(weights, soft_margin, crash_margin, ds,
                         beta_max=beta_max if beta_max > 0 else math.inf,
                         rv_max=yaw_limit * G * min(params.D_f, params.D_r) if yaw_limit > 0 else math.inf,
                         l_f=params.l_f, l_r=params.l_r,
                         alpha_peak_f=peak_slip_angle(params.B_f, params.C_f, params.E_f),
                         alpha_peak_r=rear_slip_limit * peak_slip_angle(params.B_r, params.C_r, params.E_r))


#: per-sample residual row after the nz = max(n_aug, 1) filter states: x[7], u[2], fp[7], corr[3], then the
#: MLP's work (2 n_hidden + n_in)
RES_X, RES_U, RES_FP, RES_CORR, RES_WORK = 0, 7, 9, 16, 19

#: the rollout model's arguments: parameters p[N_PARAMS], step dt [s], sub-steps, residual weights rw (length 0:
#: none) and the running filter states z0[nz]
ModelArgs = namedtuple("ModelArgs", "p dt nsub rw z0")
#: a rollout model: ``start(x0[7], m, zr_k)`` -> the 9-tuple state, ``step(state, u0, u1, m, zr_k)`` -> the state
#: one rollout step later (its ``m.nsub`` sub-steps), and ``substep(state, u0, u1, p, h, ops)``, one sub-step of ``h``
#: [s] written against ``ops`` (``step`` runs it with ``sops``; the lockstep kernel with ``lops``), or None where the
#: model has none; ``residual``: whether the rollouts add the learned residual network's correction once per step
#: (the semi-parametric model: ``substep`` is then its physics)
RolloutModel = namedtuple("RolloutModel", "name start step substep residual", defaults=(None, False))


@scalar
def model_in_registers(m):
    """``m`` with the car's parameters as a tuple: the model's parameter-only subexpressions (static loads, the
    traction limits' factors, reciprocals of mass and inertia) are then loop invariants that the compiler hoists out
    of the rollout's step loop (read from the array, they are recomputed each step: 25 % of the dynamic step)."""
    return ModelArgs(to_fixed_tuple(m.p, N_PARAMS), m.dt, m.nsub, m.rw, m.z0)


@scalar
def clamp_inputs(d, u0, u1, p, dt, ops):
    """Clamp (steer rate, accel) so that |rate| <= max, the angle stays within +-steer_max after dt."""
    smax = p[P_STEER_MAX]
    rmax = p[P_STEER_RATE_MAX]
    u0 = ops.minimum(ops.maximum(u0, (-smax - d) / dt), (smax - d) / dt)
    u0 = ops.minimum(ops.maximum(u0, -rmax), rmax)
    return u0, ops.minimum(ops.maximum(u1, -p[P_DECEL_MAX]), p[P_ACCEL_MAX])


# ------------------------------------------------------------------------------------------------
# rollout models: start(x0[7], m, zr_k) -> state 9-tuple, step(state, u0, u1, m, zr_k) -> state
# ------------------------------------------------------------------------------------------------
@scalar
def _start_dynamic(x0, m, zr_k):
    return x0[0], x0[1], x0[2], x0[3], x0[4], x0[5], x0[6], math.cos(x0[2]), math.sin(x0[2])


@scalar
def _start_kinematic(x0, m, zr_k):
    return (x0[0], x0[1], x0[2], math.sqrt(x0[3] * x0[3] + x0[4] * x0[4]), 0.0, 0.0, x0[6], math.cos(x0[2]),
            math.sin(x0[2]))


@scalar
def _substep_kinematic(st, u0, u1, p, h, ops):
    x, y, psi, v, vy, r, d, c, s = st
    x, y, psi, v, d, c, s = kinematic_step_c(x, y, psi, v, d, c, s, u0, u1, p, h, ops)
    return x, y, psi, v, vy, r, d, c, s


@scalar
def _step_kinematic(st, u0, u1, m, zr_k):
    h = m.dt / m.nsub
    for _ in range(m.nsub):
        st = _substep_kinematic(st, u0, u1, m.p, h, sops)
    return st


@scalar
def _substep_dynamic(st, u0, u1, p, h, ops):
    x, y, psi, vx, vy, r, d, c, s = st
    return dynamic_step_c(x, y, psi, vx, vy, r, d, c, s, u0, u1, p, h, ops)


@scalar
def _step_dynamic(st, u0, u1, m, zr_k):
    h = m.dt / m.nsub
    for _ in range(m.nsub):
        st = _substep_dynamic(st, u0, u1, m.p, h, sops)
    return st


@scalar
def _start_semi(x0, m, zr_k):
    for j in range(m.z0.shape[0]):
        zr_k[j] = m.z0[j]
    return _start_dynamic(x0, m, zr_k)


@scalar
def _step_semi(st, u0, u1, m, zr_k):
    """Physics step + dt * g(x, u, f_p(x, u), z) on (v_x, v_y, r), then the sample's filter states advance."""
    nz = fmax(int(m.rw[6]), 1)
    z_k = zr_k[0:nz]
    xs = zr_k[nz + RES_X:nz + RES_U]
    us = zr_k[nz + RES_U:nz + RES_FP]
    fp = zr_k[nz + RES_FP:nz + RES_CORR]
    corr = zr_k[nz + RES_CORR:nz + RES_WORK]
    work = zr_k[nz + RES_WORK:]
    for j in range(7):
        xs[j] = st[j]
    us[0] = u0
    us[1] = u1
    dynamic_rhs_s(xs, us, m.p, fp)
    residual_z(xs, us, fp, z_k, m.rw, corr, work)
    x, y, psi, vx, vy, r, d, c, s = _step_dynamic(st, u0, u1, m, zr_k)
    aug_update(z_k, u1, m.rw, m.dt)
    return x, y, psi, vx + m.dt * corr[0], vy + m.dt * corr[1], r + m.dt * corr[2], d, c, s


KINEMATIC = RolloutModel("kinematic", _start_kinematic, _step_kinematic, _substep_kinematic)
DYNAMIC = RolloutModel("dynamic", _start_dynamic, _step_dynamic, _substep_dynamic)
SEMI_PARAMETRIC = RolloutModel("semi_parametric", _start_semi, _step_semi, _substep_dynamic, True)


@njit(cache=True, fastmath=FM)
def project_state(tab, i, px, py, ds):
    """Local projection of the current position from index hint ``i``: returns ``(i, s)``."""
    i, iu, frac, nn = C.project_local(tab, i, i, px, py)
    return i, (i + frac) * ds


__all__ = ["DYNAMIC", "KINEMATIC", "SEMI_PARAMETRIC", "CostWeights", "ModelArgs", "RolloutModel", "clamp_inputs",
           "cost_params_for", "margins", "model_in_registers", "planning_horizon_s", "project_state"]
