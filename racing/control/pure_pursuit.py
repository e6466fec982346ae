"""Pure pursuit on the centre line (or the track's raceline) with a friction-limited speed profile.

Steering (Coulter 1992), from the rear axle towards a target point a look-ahead distance
``l_d = lookahead_min + lookahead_time * v`` [m] ahead along the path::

    delta = atan(2 L sin(alpha) / d) + yaw_damping * (L / v) * (v kappa - r)

with alpha the bearing of the target in the car frame, d its distance and kappa = 2 sin(alpha) / d the curvature
of the arc to it. The second term is yaw-rate feedback (the yaw damping of Stanford's Stanley controller, Thrun et
al. 2006): the steering a kinematic car needs for the yaw rate it lacks (``L / v`` per rad/s), times
``yaw_damping``. A geometric follower alone does not see the car's yaw mode; a car that oversteers (a rear axle
that unloads under braking, linear tyres at speed) diverges in yaw faster than the target point moves. Speed: the
quasi-steady-state profile of :mod:`racing.geometry.speed_profile` (at ``grip_scale`` of the
tyre limit), taking the minimum over the next ``brake_lookahead_time`` seconds of travel; acceleration: the
profile's own (its minimum over the same window), the feedforward of the car's speed loop ``a = a_ff + speed_kp
(v_cmd - v)`` (without it the loop lags a braking ramp by ``a / speed_kp``); the sum within the drive or braking
the profile allows at the present lateral demand (a speed step in a corner drives or brakes past the friction
ellipse). On a speed-only car (``drive_interface: speed``) the feedforward goes into the set-point instead
(:meth:`racing.interfaces.DriveInterface.command`: ``v_cmd + a_ff / speed_kp``, no acceleration sent).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from racing import config as cfg
from racing.control.base import Command, Controller, Observation, register
from racing.control.speedloop import speed_observer
from racing.geometry.path import ClosedPath
from racing.geometry.speed_profile import AccelAvailable, speed_profile
from racing.interfaces import drive_interface
from racing.models.params import VehicleParams, usable_grip


@dataclass(frozen=True)
class PurePursuitConfig:
    """Pure pursuit settings (lengths default to multiples of the wheelbase)."""

    lookahead_min: float | None = field(default=None, metadata={"unit": "m", "gt": 0.0,
                                                                 "doc": "default 2.5 x wheelbase"})
    lookahead_time: float = field(default=0.2, metadata={"unit": "s", "min": 0.0})
    grip_scale: float = field(default=0.75, metadata={"unit": "-", "gt": 0.0, "max": 1.5, "doc": "share of the tyre grip in the speed profile (0.85 spun the cars once load transfer and combined slip entered the model: a geometric follower has no model of them)"})
    speed_scale: float = field(default=1.0, metadata={"unit": "-", "gt": 0.0, "max": 2.0})
    brake_lookahead_time: float = field(default=0.3, metadata={"unit": "s", "min": 0.0})
    use_raceline: bool = True
    accel_feedback: bool = field(default=True, metadata={"doc": "take the car's speed-loop bias off the "
                                                        "profile's acceleration (racing.control.speedloop)"})
    yaw_damping: float = field(default=1.0, metadata={"unit": "-", "min": 0.0, "max": 5.0, "doc": "yaw-rate feedback gain: steering added per rad of the kinematic steering the missing yaw rate needs (0 = pure pursuit alone)"})


class PurePursuit(Controller):
    name = "pure_pursuit"

    def __init__(self, track, params: VehicleParams, config: PurePursuitConfig = PurePursuitConfig()):
        self.track = track
        self.params = params
        self.interface = drive_interface(params.drive_interface)
        self.config = config
        self.path = ClosedPath.from_track(track, config.use_raceline)
        grip = config.grip_scale * usable_grip(params)  # less what the car's identification cannot vouch for
        prof = speed_profile(self.path.kappa, self.path.ds, params, grip_scale=grip)
        self.v_profile = prof.v * config.speed_scale
        self.a_profile = prof.ax * config.speed_scale ** 2  # d(v^2/2)/ds along the scaled profile [m/s^2]
        self.accel_avail = AccelAvailable(params, grip)
        self.profile_lap_s = prof.lap_time / config.speed_scale
        self.L = params.wheelbase
        self.ld_min = config.lookahead_min if config.lookahead_min is not None else 2.5 * self.L
        self._hint = None
        self.speed_obs = speed_observer(params, config.accel_feedback)

    def reset(self, observation: Observation | None = None) -> None:
        self._hint = None
        if self.speed_obs is not None:
            self.speed_obs.reset()

    def act(self, observation: Observation, t: float) -> Command:
        x, y, yaw, vx = observation.state[0], observation.state[1], observation.state[2], observation.state[3]
        v = max(vx, 0.0)
        if self.speed_obs is not None:
            self.speed_obs.update(vx, t)
        # rear axle
        xr = x - self.params.l_r * math.cos(yaw)
        yr = y - self.params.l_r * math.sin(yaw)
        i, s = self.path.project(x, y, self._hint)
        self._hint = i
        ld = self.ld_min + self.config.lookahead_time * v
        tx, ty = self.path.point_at(s + ld)
        dx, dy = tx - xr, ty - yr
        c, sn = math.cos(yaw), math.sin(yaw)
        lx = c * dx + sn * dy
        ly = -sn * dx + c * dy
        d = math.hypot(lx, ly)
        alpha = math.atan2(ly, lx)
        kappa = 2.0 * math.sin(alpha) / max(d, 1e-6)
        delta = math.atan(self.L * kappa)
        if self.config.yaw_damping > 0.0 and v > self.params.v_blend_high:
            delta += self.config.yaw_damping * self.L / v * (v * kappa - observation.state[5])
        delta = min(max(delta, -self.params.steer_max), self.params.steer_max)
        # speed: min of the profile over the braking look-ahead window
        nwin = 1 + int((v * self.config.brake_lookahead_time) / self.path.ds)
        idx = (i + np.arange(nwin + 1)) % self.path.n
        v_ref = float(self.v_profile[idx].min())
        # the car's speed loop accelerates at a_ff + speed_kp (v_cmd - v): the profile's own acceleration is the
        # feedforward (a P loop alone lags a braking ramp by a / speed_kp: 4.7 m/s at 7 m/s^2 and 1.5 1/s), and
        # the sum stays within what the profile allows at the present lateral demand (a speed step in a corner
        # drives or brakes past the friction ellipse, and a rear axle that drives or unloads under braking slides)
        k = float(self.path.kappa[i])
        kp = self.params.speed_kp
        lo, hi = -self.accel_avail(v, k, True), max(self.accel_avail(v, k, False), 0.0)
        a_ff = min(max(float(self.a_profile[idx].min()), lo), hi)
        v_ref = min(max(v_ref, v + (lo - a_ff) / kp), v + (hi - a_ff) / kp)
        if self.speed_obs is not None:
            return self.speed_obs.command(self.interface, float(delta), v_ref, a_ff, observation.state, hi)
        return self.interface.command(float(delta), v_ref, a_ff, v, kp, self.params.v_max)


def config_for(params, config_path=None) -> tuple[PurePursuitConfig, str]:
    """``(config, source)``: ``config_path`` when given, else the defaults (the same for every car)."""
    if isinstance(config_path, PurePursuitConfig):  # settings resolved already (the race assembly): nothing to read
        return config_path, "given"
    if config_path is not None:
        return cfg.load(PurePursuitConfig, config_path), str(config_path)
    return PurePursuitConfig(), "defaults"


@register("pure_pursuit", "geometric path follower with a friction-limited speed profile (baseline)",
          config_for=config_for)
def make_pure_pursuit(track, params, config_path=None, threads: int | None = None, **options) -> PurePursuit:
    """Pure pursuit on ``track``'s raceline (``use_raceline``) or its centre line; ``threads`` is accepted for a
    uniform interface (it runs on one)."""
    if options.get("residual") is not None:
        raise ValueError("residual: pure pursuit has no model to correct; a residual network is for the model-based "
                         "controllers (mppi)")
    options.pop("residual", None)
    conf, _ = config_for(params, config_path)
    if options:
        conf = cfg.replace_from(conf, options, source="pure_pursuit options")
    return PurePursuit(track, params, conf)
