"""Excitation driving for system identification (simulated "skid-pad" sessions on open ground).

B, C, D and mu are only identifiable from data that drives the tyres towards their limits: the
lateral force curve must be sampled beyond its linear part, and ``mu`` (in this model it only
limits the longitudinal force, ``|F_x| <= mu m g``) only shows during hard braking or
acceleration. :class:`ExcitationDriver` is a :class:`racing.control.base.Controller` that, on
an open area (no track), holds random speed targets (with full-brake and full-throttle
phases) and random lateral-acceleration targets between 0.8 and 2.5 times the tyre limit, switched every
0.1-0.5 s (quick reversals drive the rear axle to large slip angles too)
(converted to a steering angle with the kinematic relation ``delta = atan(L a_y / v^2)``), plus a
small steering dither and a counter-steer guard against spins.

:func:`drive_session` runs a controller on a plant for ``duration`` seconds with Gaussian
measurement noise and returns the log of what the car's sensors saw (a :class:`DriveLog` of
the *measured* states and the commands) plus the true states.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from racing.control.base import Command, Controller, Observation
from racing.logs import DriveLog
from racing.models.params import G, VehicleParams
from racing.sim import plant as plant_mod

#: "realistic" sensor noise standard deviations used by the targets and tests
DEFAULT_NOISE = {"pos": 0.02, "yaw": 0.01, "vel": 0.05, "yaw_rate": 0.03, "steer": 0.005}


@dataclass(frozen=True)
class ExcitationConfig:
    """Excitation settings (speeds [m/s], times [s], lateral levels as fractions of the grip limit)."""

    v_min: float = 1.5
    v_max: float = 9.0
    speed_hold: tuple = (0.8, 2.5)
    steer_hold: tuple = (0.1, 0.5)
    lat_level: tuple = (0.8, 2.5)
    p_brake: float = 0.35
    dither_amp: float = 0.03
    dither_hz: float = 3.0
    beta_guard: float = 0.45
    brake_lat_scale: float = 1.0
    #: the speed command moves towards the target at most this fast [m/s^2] (inf: steps; a finite ramp keeps a
    #: stiff speed loop from locking the wheels of a plant that models them)
    speed_ramp: float = math.inf


#: gentler excitation (below the lateral limit, straight-ish braking) for cars that spin easily,
#: e.g. the ``dynamic_ext`` plant with load transfer; used for the residual experiments
MODERATE = ExcitationConfig(v_max=7.0, steer_hold=(0.3, 1.2), lat_level=(0.2, 0.85), beta_guard=0.15,
                            brake_lat_scale=0.3)
#: harder than :data:`MODERATE` (lateral levels up to 0.9 of the limit, counter-steer only past 0.18 rad):
#: on ``dynamic_ext`` it spends ~10-15% of the time beyond |beta| = 0.15 rad with slides to ~0.3-0.35 rad
#: and no spins (seeds 11-14 checked), so residual training data covers the slides MODERATE
#: sessions occasionally contain
SPIRITED = ExcitationConfig(v_max=7.0, steer_hold=(0.3, 1.2), lat_level=(0.3, 0.9), beta_guard=0.18,
                            brake_lat_scale=0.3)


def excitation_for(params: VehicleParams) -> ExcitationConfig:
    """An excitation for racing fits in the car's own scale: speeds 0.12-0.6 of its top speed, lateral targets
    0.3-0.95 of its (model's) grip (a cautious model's grip: the tyres' peak gets into the log), braking phases,
    the speed command ramped at 0.13 of the braking limit (1.5 m/s^2 for a road car: faster ramps spun a rear-drive CommonRoad MB car
    accelerating out of its turns)."""
    vh = 0.6 * params.v_max
    return ExcitationConfig(v_min=0.2 * vh, v_max=vh, speed_hold=(1.5, 4.0), steer_hold=(0.4, 1.5),
                            lat_level=(0.3, 0.95), p_brake=0.25, dither_amp=0.004, dither_hz=1.0, beta_guard=0.08,
                            brake_lat_scale=0.3, speed_ramp=0.13 * params.decel_max)


class ExcitationDriver(Controller):
    """Random speed / lateral-acceleration targets for sysid data (see module docstring)."""

    name = "excitation"

    def __init__(self, params: VehicleParams, config: ExcitationConfig = ExcitationConfig(), seed: int = 0):
        self.params = params
        self.config = config
        self.seed = seed
        self.reset()

    def reset(self, observation: Observation | None = None) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.t_speed = -1.0
        self.t_steer = -1.0
        self.v_ref = self.config.v_min
        self.v_cmd = None
        self.t_last = None
        self.lat = 0.0

    def act(self, observation: Observation, t: float) -> Command:
        c, p, rng = self.config, self.params, self.rng
        vx, vy = float(observation.state[3]), float(observation.state[4])
        if t >= self.t_speed:
            if self.v_ref > 0.6 * c.v_max and rng.random() < c.p_brake:
                self.v_ref = c.v_min  # full braking
                self.t_speed = t + rng.uniform(0.6, 1.2)
            else:
                self.v_ref = rng.uniform(c.v_min, c.v_max)
                self.t_speed = t + rng.uniform(*c.speed_hold)
        if t >= self.t_steer:
            lvl = rng.uniform(*c.lat_level) * (1 if rng.random() < 0.5 else -1)
            if rng.random() < 0.15:
                lvl = 0.0
            self.lat = lvl
            self.t_steer = t + rng.uniform(*c.steer_hold)
        v = max(vx, 1.0)
        braking = self.v_ref < vx - 1.0
        a_y = self.lat * G * min(p.D_f, p.D_r) * (c.brake_lat_scale if braking else 1.0)
        delta = math.atan(p.wheelbase * a_y / (v * v))
        delta += c.dither_amp * math.sin(2 * math.pi * c.dither_hz * t)
        beta = math.atan2(vy, max(vx, 0.5))
        if abs(beta) > c.beta_guard:  # counter-steer against a spin
            delta = 1.5 * beta
        delta = min(max(delta, -p.steer_max), p.steer_max)
        if not math.isfinite(c.speed_ramp):
            self.v_cmd = self.v_ref
        elif self.v_cmd is None:
            self.v_cmd = vx
        else:
            step = c.speed_ramp * max(t - self.t_last, 0.0)
            self.v_cmd += min(max(self.v_ref - self.v_cmd, -step), step)
        self.t_last = t
        return Command(steering_angle=delta, speed=self.v_cmd, acceleration=0.0)


class ManoeuvreDriver(Controller):
    """A second excitation programme, written apart from :class:`ExcitationDriver` (which holds random speed and
    lateral-acceleration targets): the classic open-loop test manoeuvres of vehicle-dynamics testing, in a seeded
    order, each at a seeded speed between 0.25 and 0.55 of the car's top speed (``params.v_max``):

    * ``circle`` (steady-state circular driving, ISO 4138): a steering angle for a constant lateral acceleration of
      0.2-0.6 of the car's grip, held while the speed set-point climbs by 15 % over 6 s;
    * ``sweep`` (frequency response, ISO 7401): a sinusoidal steering sweep from 0.2 to 2 Hz over 8 s at constant
      speed, amplitude for 0.15-0.4 of the grip at the low end;
    * ``step`` (step steer, ISO 7401): a steering step to 0.2-0.5 of the grip, held 2 s, then back to straight 1 s;
    * ``straight`` (longitudinal): straight ahead, the speed set-point moved up 30 % and down to 70 % of the
      manoeuvre's speed, 3 s each, at 0.4 of the braking limit per second.

    Between manoeuvres the speed set-point ramps to the next one's speed at 0.1 of the braking limit per second. No counter-steer
    guard: the levels stay in the tyres' near-linear range and a wide margin below the limit (the plant should not
    spin; a session that does is a finding). The command's acceleration field is always 0."""

    name = "manoeuvres"
    KINDS = ("circle", "sweep", "step", "straight")
    DURATION = {"circle": 6.0, "sweep": 8.0, "step": 3.0, "straight": 6.0}

    def __init__(self, params: VehicleParams, seed: int = 0):
        self.params = params
        self.seed = seed
        self.reset()

    def reset(self, observation: Observation | None = None) -> None:
        self.rng = np.random.default_rng(self.seed + 7919)
        self.kind, self.t0, self.t_end = "straight", 0.0, 0.0
        self.v0, self.level, self.sign = 0.0, 0.0, 1.0
        self.v_cmd, self.t_last = None, None

    def _next(self, t: float, vx: float) -> None:
        rng, p = self.rng, self.params
        self.kind = self.KINDS[int(rng.integers(len(self.KINDS)))]
        self.v0 = rng.uniform(0.25, 0.55) * p.v_max
        self.level = {"circle": rng.uniform(0.2, 0.6), "sweep": rng.uniform(0.15, 0.4),
                      "step": rng.uniform(0.2, 0.5), "straight": 0.0}[self.kind]
        self.sign = 1.0 if rng.random() < 0.5 else -1.0
        ramp = abs(self.v0 - vx) / (0.1 * p.decel_max)  # reach the speed first
        self.t0, self.t_end = t + ramp, t + ramp + self.DURATION[self.kind]

    def _targets(self, t: float) -> tuple[float, float]:
        """(lateral level as a signed share of the grip, speed set-point [m/s]) at ``t``."""
        tau, v0, k = t - self.t0, self.v0, self.kind
        if tau < 0.0:
            return 0.0, v0
        if k == "circle":
            return self.sign * self.level, v0 * (1.0 + 0.15 * tau / self.DURATION[k])
        if k == "sweep":  # instantaneous frequency 0.2 -> 2 Hz, linear chirp
            f0, f1, d = 0.2, 2.0, self.DURATION[k]
            phase = 2 * math.pi * (f0 * tau + 0.5 * (f1 - f0) / d * tau * tau)
            return self.sign * self.level * math.sin(phase), v0
        if k == "step":
            return (self.sign * self.level if tau < 2.0 else 0.0), v0
        return 0.0, (1.3 * v0 if tau < 3.0 else 0.7 * v0)

    def act(self, observation: Observation, t: float) -> Command:
        p = self.params
        vx = float(observation.state[3])
        if t >= self.t_end:
            self._next(t, vx)
        lat, v_ref = self._targets(t)
        v = max(vx, 1.0)
        delta = math.atan(p.wheelbase * lat * G * min(p.D_f, p.D_r) / (v * v))
        delta = min(max(delta, -p.steer_max), p.steer_max)
        if self.v_cmd is None:
            self.v_cmd = vx
        else:
            ramp = 0.4 if (self.kind == "straight" and t >= self.t0) else 0.1  # of the braking limit [1/s]
            step = ramp * p.decel_max * max(t - self.t_last, 0.0)
            self.v_cmd += min(max(v_ref - self.v_cmd, -step), step)
        self.t_last = t
        return Command(steering_angle=delta, speed=self.v_cmd, acceleration=0.0)


def noise_std(noise: dict | None) -> np.ndarray:
    n = dict(DEFAULT_NOISE if noise is None else noise)
    return np.array([n.get("pos", 0), n.get("pos", 0), n.get("yaw", 0), n.get("vel", 0), n.get("vel", 0),
                     n.get("yaw_rate", 0), n.get("steer", 0)], dtype=float)


def drive_session(plant, controller: Controller, duration: float = 60.0, rate_hz: float = 50.0,
                  noise: dict | None = None, seed: int = 0, x0: np.ndarray | None = None,
                  meta: dict | None = None) -> tuple[DriveLog, np.ndarray]:
    """Drive ``controller`` on ``plant`` (no track) and log what the sensors saw.

    Parameters
    ----------
    plant : object with reset(x0[7]) and step(command, dt) -> x[7]
    duration : [s]; rate_hz : control and log rate [Hz]
    noise : std devs {"pos" [m], "yaw" [rad], "vel" [m/s], "yaw_rate" [rad/s], "steer" [rad]}
        (None: :data:`DEFAULT_NOISE`; {} for none)
    Returns
    -------
    (log of measured states float64[N, 7] + commands, true states float64[N, 7])
    """
    n = int(round(duration * rate_hz))
    dt = 1.0 / rate_hz
    rng = np.random.default_rng(seed + 1000)
    std = noise_std(noise)
    x = np.zeros(7) if x0 is None else np.asarray(x0, dtype=float).copy()
    if x0 is None:
        x[3] = 1.5
    plant.reset(x)
    controller.reset()
    T, S, M, C = np.zeros(n), np.zeros((n, 7)), np.zeros((n, 7)), np.zeros((n, 3))
    for k in range(n):
        t = k * dt
        meas = x + rng.normal(size=7) * std
        meas[2] = (meas[2] + np.pi) % (2 * np.pi) - np.pi
        cmd = controller.act(Observation(t, meas), t)
        T[k], S[k], M[k] = t, x, meas
        C[k] = (cmd.steering_angle, cmd.speed, cmd.acceleration)
        x = np.asarray(plant.step(cmd, dt), dtype=float)
    m = {"source": "racing.sysid.excite", "rate_hz": f"{rate_hz:g}",
         "noise": ",".join(f"{v:g}" for v in std), **(meta or {})}
    return DriveLog(T, M, C, meta=m, source="<excitation session>"), S


def excitation_log(plant_params: VehicleParams, duration: float = 60.0, seed: int = 0, plant: str = "dynamic",
                   noise: dict | None = None, rate_hz: float = 50.0, config: ExcitationConfig = ExcitationConfig(),
                   driver_params: VehicleParams | None = None, **plant_options) -> tuple[DriveLog, np.ndarray]:
    """An excitation session on a registered plant with ``plant_params`` (the true car).

    ``driver_params`` : what the driver believes (wheelbase, grip for the lateral levels); default the
    plant's. ``plant_options`` go to the plant factory (e.g. ``tau_drive`` for ``dynamic_ext``).
    """
    factory = plant_mod.PLANTS[plant] if plant in plant_mod.PLANTS else None
    if factory is None:
        pl = plant_mod.make_plant(plant, plant_params)
    else:
        pl = factory(plant_params, **plant_options)
    driver = ExcitationDriver(driver_params or plant_params, config, seed)
    return drive_session(pl, driver, duration, rate_hz, noise, seed,
                         meta={"car": plant_params.name, "plant": plant})
