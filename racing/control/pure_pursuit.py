"""Pure pursuit on the centre line (or the track's raceline) with a friction-limited speed profile.

Steering (Coulter 1992), from the rear axle towards a target point a look-ahead distance
``l_d = lookahead_min + lookahead_time * v`` [m] ahead along the path::

    delta = atan(2 L sin(alpha) / d)

with alpha the bearing of the target in the car frame and d its distance. Speed: the
quasi-steady-state profile of :mod:`racing.geometry.speed_profile` (at ``grip_scale`` of the
tyre limit), taking the minimum over the next ``brake_lookahead_time`` seconds of travel, but never more than
``a / speed_kp`` away from the present speed, ``a`` being the drive or braking the profile allows at the present
lateral demand (the car's speed loop accelerates at ``speed_kp (v_cmd - v)``: a speed step in a corner drives or
brakes past the friction ellipse).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from racing import config as cfg
from racing.control.base import Command, Controller, Observation, register
from racing.geometry.path import ClosedPath
from racing.geometry.speed_profile import AccelAvailable, speed_profile
from racing.models.params import VehicleParams


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


class PurePursuit(Controller):
    name = "pure_pursuit"

    def __init__(self, track, params: VehicleParams, config: PurePursuitConfig = PurePursuitConfig()):
        self.track = track
        self.params = params
        self.config = config
        self.path = ClosedPath.from_track(track, config.use_raceline)
        prof = speed_profile(self.path.kappa, self.path.ds, params, grip_scale=config.grip_scale)
        self.v_profile = prof.v * config.speed_scale
        self.accel_avail = AccelAvailable(params, config.grip_scale)
        self.profile_lap_s = prof.lap_time / config.speed_scale
        self.L = params.wheelbase
        self.ld_min = config.lookahead_min if config.lookahead_min is not None else 2.5 * self.L
        self._hint = None

    def reset(self, observation: Observation | None = None) -> None:
        self._hint = None

    def act(self, observation: Observation, t: float) -> Command:
        x, y, yaw, vx = observation.state[0], observation.state[1], observation.state[2], observation.state[3]
        v = max(vx, 0.0)
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
        delta = math.atan2(2.0 * self.L * math.sin(alpha), d)
        delta = min(max(delta, -self.params.steer_max), self.params.steer_max)
        # speed: min of the profile over the braking look-ahead window
        nwin = 1 + int((v * self.config.brake_lookahead_time) / self.path.ds)
        idx = (i + np.arange(nwin + 1)) % self.path.n
        v_ref = float(self.v_profile[idx].min())
        # the car's speed loop accelerates at speed_kp (v_cmd - v): never ask it for more than the profile allows
        # at the present lateral demand (a speed step in a corner drives or brakes past the friction ellipse, and a
        # rear axle that drives or unloads under braking slides)
        k = float(self.path.kappa[i])
        kp = self.params.speed_kp
        v_ref = min(max(v_ref, v - self.accel_avail(v, k, True) / kp), v + max(self.accel_avail(v, k, False), 0.0) / kp)
        return Command(steering_angle=float(delta), speed=v_ref, acceleration=0.0)


def config_for(params, config_path=None) -> tuple[PurePursuitConfig, str]:
    """``(config, source)``: ``config_path`` when given, else the defaults (the same for every car)."""
    if config_path is not None:
        return cfg.load(PurePursuitConfig, config_path), str(config_path)
    return PurePursuitConfig(), "defaults"


@register("pure_pursuit", "geometric path follower with a friction-limited speed profile (baseline)",
          config_for=config_for)
def make_pure_pursuit(track, params, config_path=None, **options) -> PurePursuit:
    conf, _ = config_for(params, config_path)
    if options:
        conf = cfg.replace_from(conf, options, source="pure_pursuit options")
    return PurePursuit(track, params, conf)
