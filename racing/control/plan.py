"""What receding-horizon controllers share: the warm-start shift of a plan's inputs and the command taken from a
plan (MPPI and iLQR alike)."""
from __future__ import annotations

import numpy as np

from racing.control.speedloop import AccelObserver
from racing.interfaces import Command, DriveInterface, drive_interface
from racing.models import sops
from racing.models.dynamic import accel_limits


def shift_inputs(U: np.ndarray, elapsed: float, dt: float, tail=None) -> None:
    """Warm start in place: ``U(tau) <- U(tau + elapsed)`` for ``U[T, m]`` on steps of ``dt`` [s] (linear
    interpolation, the last input held; with ``tail[m]``, steps that shift in from beyond the plan take ``tail``
    where it is not NaN instead, e.g. a steering rate of 0 rather than a held rate that ramps the angle)."""
    if elapsed <= 0:
        return
    T = U.shape[0]
    src = np.arange(T) + elapsed / dt
    i = np.minimum(src.astype(np.int64), T - 1)
    j = np.minimum(i + 1, T - 1)
    a = (src - np.floor(src))[:, None]
    a = np.where(src[:, None] >= T - 1, 0.0, a)
    U[:] = (1.0 - a) * U[i] + a * U[j]
    if tail is not None:
        beyond = src > T - 1
        for c, v in enumerate(tail):
            if not np.isnan(v):
                U[beyond, c] = v


def resample_index(T: int, dt: float, T_src: int, dt_src: float) -> np.ndarray:
    """For a plan of ``T`` steps of ``dt`` [s], the step of a plan of ``T_src`` steps of ``dt_src`` [s] that each of
    its steps starts in (zero-order hold), -1 past the source's horizon (made once: :func:`resample_inputs`)."""
    src = np.floor(np.arange(T) * (dt / dt_src) + 1e-9).astype(np.int64)
    return np.where(src < T_src, src, -1)


def resample_inputs(U_src: np.ndarray, index: np.ndarray, U: np.ndarray) -> None:
    """``U[k] = U_src[index[k]]`` (:func:`resample_index`); past the source's horizon (``index < 0``) a steering
    rate of 0 and the source's last acceleration (a held rate would ramp the angle), in place."""
    for k in range(U.shape[0]):
        i = index[k]
        if i >= 0:
            U[k, 0], U[k, 1] = U_src[i, 0], U_src[i, 1]
        else:
            U[k, 0], U[k, 1] = 0.0, U_src[-1, 1]


def plan_at(X: np.ndarray, col: int, tau: float, dt: float) -> float:
    """Column ``col`` of the plan ``X[T+1, nx]`` (steps of ``dt`` [s]) at time ``tau`` [s] ahead (linear)."""
    T = X.shape[0] - 1
    f = min(max(tau / dt, 0.0), T)
    i = min(int(f), T - 1)
    a = f - i
    return float((1.0 - a) * X[i, col] + a * X[i + 1, col])


def command_from_plan(X: np.ndarray, U: np.ndarray, dt: float, params, period: float,
                      steer_lead: float | None = None, p: np.ndarray | None = None,
                      interface: DriveInterface | None = None, observer: AccelObserver | None = None,
                      steer=None) -> Command:
    """The command of a plan ``X[T+1, 7]`` (observation layout), ``U[T, 2]`` (steer rate, acceleration):
    steering = planned angle ``steer_lead`` ahead (default the servo lag + half a period), mapped through the
    car's steering gain and offset; speed = planned v_x half a period ahead (so that the plant's speed loop
    ``a = a_ff + k (v_cmd - v_x)`` adds no bias on average), clipped to [0, v_max]; acceleration = the first
    planned input within what the model says the tyres deliver at the current speed
    (:func:`racing.models.dynamic.accel_limits`: an input past the grip or power limit plans like the limit
    itself, but a car whose actuators apply what they are told -- a speed loop, a brake-by-wire -- would brake past
    the grip the plan counted on). ``p``: the flat parameters (``params.to_array()``, made once by the caller).
    The command is the one the car's drive interface takes (``interface``, default the car file's
    ``drive_interface``; :meth:`racing.interfaces.DriveInterface.command`: on a speed-only car the speed set-point
    leads by ``acceleration / speed_kp`` and no acceleration is sent). ``observer``: the car's speed-loop bias is
    taken off the acceleration (:class:`racing.control.speedloop.AccelObserver`, updated by the caller).
    ``steer``: the steering chain identified online (:class:`racing.control.steering.OnlineSteer`): its lead
    (unless ``steer_lead`` is given) and gain replace the car file's, and it is told the command sent."""
    if steer_lead is not None:
        lead = steer_lead
    else:
        lead = steer.lead(period) if steer is not None else params.steer_tau + params.steer_delay + 0.5 * period
    delta = plan_at(X, 6, lead, dt)
    steer_cmd = (delta - params.steer_offset) / (params.steer_gain if steer is None else steer.gain)
    speed = min(max(plan_at(X, 3, 0.5 * period, dt), 0.0), params.v_max)
    lo, hi = accel_limits(float(X[0, 3]), params.to_array() if p is None else p, sops)
    accel = float(min(max(float(U[0, 1]), lo), hi))
    iface = drive_interface(params.drive_interface) if interface is None else interface
    if observer is not None:
        cmd = observer.command(iface, float(steer_cmd), float(speed), accel, X[0], float(hi))
    else:
        cmd = iface.command(float(steer_cmd), float(speed), accel, float(X[0, 3]), params.speed_kp, params.v_max)
    if steer is not None:
        steer.sent(cmd.steering_angle)
    return cmd


__all__ = ["command_from_plan", "plan_at", "shift_inputs"]
