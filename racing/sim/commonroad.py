r"""CommonRoad's vehicle models (TUM; PyPI ``commonroad-vehicle-models``, the ``[commonroad]`` extra) as plants:
a simulator the project did not write, to check a controller and a fitted model against.

``--plant commonroad:MODEL[:VEHICLE]``: ``MODEL`` is ``st`` (single track, linear tyres, load transfer),
``std`` (single track with Pacejka combined-slip tyres, wheel spin and brake/drive distribution) or ``mb``
(multi-body: 29 states, suspension, four Pacejka combined-slip tyres); ``VEHICLE`` is a CommonRoad vehicle id
(:data:`VEHICLES`, default 2 = BMW 320i).

**The car's actuators.** The project's one actuator model (:func:`racing.models.actuators.actuator_inputs`:
steering servo with lag and rate limit, speed loop) turns the Ackermann commands into CommonRoad's inputs
(steering velocity [rad/s], longitudinal acceleration [m/s^2]); CommonRoad then applies its own limits (steering
angle and rate, acceleration ``a_max`` below ``v_switch`` and ``a_max v_switch / v`` above it, nothing above
``v_max``). The actuator parameters are the CommonRoad car's, not the controller's (:func:`actuator_params`):
steering limits from the vehicle (angle capped at :data:`STEER_MAX_CAP`), servo lag :data:`SERVO_TAU`, speed
loop gain :data:`SPEED_KP`, acceleration and braking within :data:`TRACTION` of the tyres' traction (a traction
control and ABS, as a road car has: without them MB's wheels spin up or lock and its state diverges); per wheel,
the ABS and traction control keep each wheel's slip ratio within +-:data:`SLIP_MAX` (a wheel that locks in
CommonRoad's MB equations never turns again).

**State mapping** (CommonRoad -> the project's layout ``x, y, yaw, v_x, v_y, r, delta``): ST/STD
``v_x = v cos beta``, ``v_y = v sin beta``; MB ``v_x = x[3]``, ``v_y = x[10]`` (the sprung mass).

:func:`nominal_params` translates a CommonRoad car into the project's parameters (a starting point for
``racing learn``, not the truth: CommonRoad's tyres, suspension and wheel dynamics are not the project's model).
The CommonRoad functions read their parameters through attribute lookups; the plant integrates them with RK4 at
``plant_hz`` (MB needs 1 kHz): about 40 us (ST) to 250 us (MB) per millisecond of simulated time.
"""
from __future__ import annotations

import math

import numpy as np

from racing.models.actuators import actuator_inputs_pi
from racing.models.dynamic import grip_limits
from racing.models.ops import NUMPY
from racing.models.params import VehicleParams

#: CommonRoad's passenger cars (vehicle 4 is a truck with a trailer: not a plant here)
VEHICLES = {1: "Ford Escort", 2: "BMW 320i", 3: "VW Vanagon"}
#: CommonRoad's models behind ``commonroad:MODEL``
MODELS = ("st", "std", "mb")
#: the commanded steering angle is capped here [rad] (CommonRoad's cars allow 1.066 rad at the road wheel)
STEER_MAX_CAP = 0.6
#: steering servo lag of the CommonRoad cars' actuators [s] and their speed-loop gain [1/s]
SERVO_TAU = 0.08
SPEED_KP = 1.5
#: the largest longitudinal slip ratio the ABS and traction control allow a wheel (CommonRoad MB, STD)
SLIP_MAX = 0.15
#: share of the tyres' traction the actuators ask for at most (traction control and ABS, :func:`nominal_params`)
TRACTION = 0.85
#: the speed a race on each model starts at [m/s] (MB's and STD's wheel slip divides by the wheel speed: from
#: standstill their wheels spin up and the car yaws at walking pace)
START_SPEED = {"st": 0.0, "std": 10.0, "mb": 10.0}
#: the slowest integration rate per model [Hz] (MB's suspension and wheel dynamics need 1 kHz)
MIN_PLANT_HZ = {"st": 200.0, "std": 1000.0, "mb": 1000.0}


def _import():
    try:
        import vehiclemodels.vehicle_parameters  # noqa: F401 (the extra's presence)
    except ImportError as exc:
        raise ImportError("the CommonRoad plants need the 'commonroad' extra: pip install 'racing[commonroad]' "
                          f"(commonroad-vehicle-models): {exc}") from None


def vehicle_parameters(vehicle: int = 2):
    """CommonRoad's parameter object of vehicle ``vehicle`` (:data:`VEHICLES`)."""
    if vehicle not in VEHICLES:
        raise ValueError(f"unknown CommonRoad vehicle id {vehicle!r}; known: "
                         + ", ".join(f"{k} ({v})" for k, v in VEHICLES.items()))
    _import()
    from vehiclemodels.vehicle_parameters import setup_vehicle_parameters

    return setup_vehicle_parameters(vehicle_id=vehicle)


def parse_spec(spec: str) -> tuple[str, int]:
    """``'mb'`` / ``'mb:2'`` -> (model, vehicle id); errors list what is known."""
    model, _, vid = spec.partition(":")
    if model not in MODELS:
        raise ValueError(f"unknown CommonRoad model {model!r} in plant 'commonroad:{spec}'; known: "
                         f"{', '.join(MODELS)} (e.g. commonroad:mb or commonroad:mb:2)")
    if not vid:
        return model, 2
    try:
        vehicle = int(vid)
    except ValueError:
        raise ValueError(f"plant 'commonroad:{spec}': the vehicle id must be an integer, got {vid!r}; known: "
                         + ", ".join(f"{k} ({v})" for k, v in VEHICLES.items())) from None
    vehicle_parameters(vehicle)  # checks the id
    return model, vehicle


def nominal_params(vehicle: int = 2, model: str = "mb", name: str | None = None) -> VehicleParams:
    """The CommonRoad car in the project's terms (SI): geometry, mass and drive limits as CommonRoad states them;
    tyres from its lateral Pacejka coefficients (``C = p_cy1``, ``D = p_dy1``, ``B = -p_ky1 / (C D)``, so the
    cornering stiffness per unit load is CommonRoad's ``-p_ky1``); ``mu = p_dx1``; no drag or rolling resistance
    (CommonRoad has none); the drive and brake shares ``T_se``, ``T_sb``; power from the acceleration limit above ``v_switch``; the actuators of
    :func:`actuator_params`. MB's yaw inertia is the rigid-body equivalent ``I_z + m_uf a^2 + m_ur b^2`` (the
    unsprung masses sit at the axles)."""
    p = vehicle_parameters(vehicle)
    t = p.tire
    C, D = float(t.p_cy1), float(t.p_dy1)
    B = -float(t.p_ky1) / (C * D)
    E = float(max(min(t.p_ey1, 0.9), -5.0))
    iz = p.I_z + (p.m_uf * p.a ** 2 + p.m_ur * p.b ** 2 if model == "mb" else 0.0)
    lon, steer = p.longitudinal, p.steering
    q = VehicleParams(
        name=name or f"commonroad{vehicle}_{model}", mass=float(p.m), inertia_z=float(iz), l_f=float(p.a),
        l_r=float(p.b), h_cg=float(p.h_s if model == "mb" else p.h_cg), width=float(p.w),
        B_f=B, C_f=C, D_f=D, E_f=E, B_r=B, C_r=C, D_r=D, E_r=E, mu=float(t.p_dx1), c_roll=0.0, c_drag=0.0,
        steer_max=min(float(steer.max), STEER_MAX_CAP), steer_rate_max=float(steer.v_max),
        accel_max=float(lon.a_max), decel_max=float(lon.a_max),
        power_max=float(p.m * lon.a_max * lon.v_switch), v_max=float(lon.v_max),
        steer_tau=SERVO_TAU, steer_gain=1.0, steer_offset=0.0, speed_kp=SPEED_KP, v_blend_low=2.0, v_blend_high=5.0,
        combined_slip=1.0, drive_front=float(p.T_se), brake_front=float(p.T_sb), c_down=0.0, down_front=0.5,
        tuning=None)
    # traction control and ABS: the actuators ask for at most TRACTION of what the tyres carry (the model's
    # grip_limits at standstill); CommonRoad's demand is otherwise ideal, and MB's wheels spin up or lock without
    # bound and its state diverges (BMW 320i MB: at +7 m/s^2 from 10 m/s, at -9 m/s^2 from 20 m/s)
    lo, hi = grip_limits(0.0, q.to_array(), NUMPY)
    return q.replace(accel_max=min(float(lon.a_max), TRACTION * float(hi)),
                     decel_max=min(float(lon.a_max), TRACTION * -float(lo)))


def actuator_params(vehicle: int = 2) -> VehicleParams:
    """The CommonRoad car's actuators as a VehicleParams (only the steering and speed-loop fields are used):
    :func:`nominal_params`' limits, servo lag :data:`SERVO_TAU`, speed-loop gain :data:`SPEED_KP`."""
    return nominal_params(vehicle, "st")


class CommonRoadPlant:
    """A CommonRoad model behind the car's actuators: ``reset(x0[7])``, ``step(command, dt) -> x[7]``, ``state``
    (the project's plant interface, :mod:`racing.sim.numba_plant`); RK4 with sub-steps of at most
    ``1 / plant_hz`` [s]. ``params`` is the car in the project's terms (:func:`nominal_params`); ``actuators``
    replaces the car's actuators: a VehicleParams for the project's actuator model with other values
    (:func:`actuator_params`; e.g. a gentler speed loop for an excitation session), or an object of the car's own
    (``inputs(delta, v_x, cmd_steer, cmd_speed, cmd_accel, h) -> (rate, accel)`` and ``reset()``, e.g.
    :class:`racing.sim.foreign.ForeignActuators`: structure the fit does not assume)."""

    def __init__(self, model: str = "mb", vehicle: int = 2, plant_hz: float = 1000.0,
                 actuators=None):
        if model not in MODELS:
            raise ValueError(f"unknown CommonRoad model {model!r}; known: {', '.join(MODELS)}")
        if plant_hz < MIN_PLANT_HZ[model]:
            raise ValueError(f"plant_hz must be >= {MIN_PLANT_HZ[model]:g} Hz for CommonRoad {model}, got {plant_hz}")
        _import()
        from vehiclemodels import init_mb, init_std, vehicle_dynamics_mb, vehicle_dynamics_st, vehicle_dynamics_std

        self.model, self.vehicle = model, vehicle
        self.min_start_speed = START_SPEED[model]  # the simulator starts races no slower [m/s]
        self.cr = vehicle_parameters(vehicle)
        self.params = nominal_params(vehicle, model)
        self.actuators = actuators or actuator_params(vehicle)
        if isinstance(self.actuators, VehicleParams):  # the project's actuator model with the car's values
            self.pa = self.actuators.to_array()
            self._inputs = self._project_inputs
        else:  # the car's own actuators, e.g. racing.sim.foreign.ForeignActuators: inputs(...) and reset()
            self.pa = None
            self._inputs = self.actuators.inputs
        self.h_max = 1.0 / plant_hz
        self._dyn = {"st": vehicle_dynamics_st.vehicle_dynamics_st, "std": vehicle_dynamics_std.vehicle_dynamics_std,
                     "mb": vehicle_dynamics_mb.vehicle_dynamics_mb}[model]
        self._init = {"st": list, "std": lambda s: init_std.init_std(s, self.cr),
                      "mb": lambda s: init_mb.init_mb(s, self.cr)}[model]
        self.x = None
        self._integ = 0.0  # the project's speed loop's integral [m] (speed_ki > 0)

    def _project_inputs(self, d, v, cs, cv, ca, h):
        """The project's actuator model with the car's values; the speed loop's integral advanced by ``h`` [s]."""
        rate, a, self._integ = actuator_inputs_pi(d, v, cs, cv, ca, self.pa, h, True, self.actuators.speed_ki,
                                                  self._integ, NUMPY)
        return rate, a

    def __repr__(self):
        return f"CommonRoadPlant({self.model!r}, vehicle {self.vehicle} = {VEHICLES[self.vehicle]})"

    def reset(self, x0) -> None:
        x0 = np.asarray(x0, dtype=float)
        if x0.shape != (7,) or not np.all(np.isfinite(x0)):
            raise ValueError(f"x0 must be 7 finite values (x, y, yaw, v_x, v_y, r, delta), got {x0!r}")
        v = math.hypot(x0[3], x0[4])
        core = [x0[0], x0[1], x0[6], v, x0[2], x0[5], math.atan2(x0[4], x0[3]) if v > 0 else 0.0]
        self.x = np.array(self._init(core), dtype=float)
        self._integ = 0.0
        if self.pa is None:
            self.actuators.reset()

    @property
    def state(self) -> np.ndarray:
        """True state in the project's dynamic layout, float64[7]."""
        s = self.x
        yaw = (s[4] + math.pi) % (2 * math.pi) - math.pi
        if self.model == "mb":
            return np.array([s[0], s[1], yaw, s[3], s[10], s[5], s[2]])
        return np.array([s[0], s[1], yaw, s[3] * math.cos(s[6]), s[3] * math.sin(s[6]), s[5], s[2]])

    def _slip_control(self) -> None:
        """ABS and traction control, per wheel: each wheel's speed stays within ``1 +- SLIP_MAX`` of its ground
        speed at the contact point (MB, STD; the wheels of a road car's brake and drive controllers). Without it
        a wheel that locks under braking in a turn stays at zero speed in CommonRoad's equations, and a spinning
        one runs away, until the state diverges."""
        x, cr = self.x, self.cr
        if self.model == "mb":
            vx, vy, r, d = x[3], x[10], x[5], x[2]
            cd, sd = math.cos(d), math.sin(d)
            lat_f = (vy + cr.a * r) * sd
            ground = ((vx - 0.5 * cr.T_f * r) * cd + lat_f, (vx + 0.5 * cr.T_f * r) * cd + lat_f,
                      vx - 0.5 * cr.T_r * r, vx + 0.5 * cr.T_r * r)
            idx = (23, 24, 25, 26)
        elif self.model == "std":
            v, r, d, beta = x[3], x[5], x[2], x[6]
            ground = (v * math.cos(beta) * math.cos(d) + (v * math.sin(beta) + cr.a * r) * math.sin(d),
                      v * math.cos(beta))
            idx = (7, 8)
        else:
            return
        for i, u in zip(idx, ground):
            w = max(u, 0.0) / cr.R_w
            x[i] = min(max(x[i], (1.0 - SLIP_MAX) * w), (1.0 + SLIP_MAX) * w)

    def _f(self, x, u):
        try:
            return np.asarray(self._dyn(list(x), u, self.cr), dtype=float)
        except (ValueError, OverflowError, ZeroDivisionError) as exc:  # math domain errors of a diverging state
            raise FloatingPointError(f"{self!r}: the model failed at state {np.round(x, 4).tolist()}: {exc}") from None

    def step(self, command, dt: float) -> np.ndarray:
        if self.x is None:
            raise RuntimeError("CommonRoadPlant.step before reset")
        if dt <= 0:
            return self.state
        n = max(1, int(math.ceil(dt / self.h_max - 1e-9)))
        h = dt / n
        cs, cv, ca = float(command.steering_angle), float(command.speed), float(command.acceleration)
        for _ in range(n):
            s = self.state
            rate, acc = self._inputs(s[6], s[3], cs, cv, ca, h)
            u = [float(rate), float(acc)]
            x = self.x
            k1 = self._f(x, u)
            k2 = self._f(x + 0.5 * h * k1, u)
            k3 = self._f(x + 0.5 * h * k2, u)
            k4 = self._f(x + h * k3, u)
            self.x = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            self._slip_control()
            if not np.all(np.isfinite(self.x)):
                raise FloatingPointError(f"{self!r}: the state became non-finite")
        return self.state


def make_commonroad_plant(spec: str, params: VehicleParams | None = None, plant_hz: float = 1000.0):
    """``spec`` = ``'MODEL[:VEHICLE]'`` (module doc). ``params`` (the race's car) is not used: the plant is the
    CommonRoad car, actuators included."""
    model, vehicle = parse_spec(spec)
    return CommonRoadPlant(model, vehicle, plant_hz=plant_hz)


__all__ = ["CommonRoadPlant", "MODELS", "VEHICLES", "actuator_params", "make_commonroad_plant", "nominal_params",
           "parse_spec", "vehicle_parameters"]

