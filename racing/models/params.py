"""Vehicle parameters: one YAML per car -> a frozen dataclass in SI units -> a flat array.

Kernels (numba, CUDA, torch, casadi) never see this dataclass: they get ``p = params.to_array()``
(``float64[N_PARAMS]``) and index it with the ``P_*`` constants below, which follow the field
order of :class:`VehicleParams` (checked at import time).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from racing import config
from racing.config import ConfigError
from racing.resources import data_dir

G = 9.81  # gravitational acceleration [m/s^2]
#: why the physical fields have the bounds they have (named in the error of a value outside them)
PLAUSIBLE = "a plausible range for cars from an F1TENTH model car to a full-size race car or a truck"


def _f(unit: str, doc: str, **bounds):
    return field(metadata={"unit": unit, "doc": doc, **bounds})


@dataclass(frozen=True)
class VehicleParams:
    """Physical parameters of one car, SI units (see each field's ``unit`` metadata)."""

    name: str = field(metadata={"doc": "car name"})
    # chassis
    mass: float = _f("kg", "total mass", min=0.05, max=2.0e5, range=PLAUSIBLE)
    inertia_z: float = _f("kg m^2", "yaw moment of inertia about the CoG", min=1.0e-5, max=2.0e6, range=PLAUSIBLE)
    l_f: float = _f("m", "CoG to front axle", min=0.01, max=10.0, range=PLAUSIBLE)
    l_r: float = _f("m", "CoG to rear axle", min=0.01, max=10.0, range=PLAUSIBLE)
    h_cg: float = _f("m", "CoG height above ground", min=0.0, max=5.0, range=PLAUSIBLE)
    width: float = _f("m", "track width of the car body (for clearance checks)", min=0.05, max=5.0, range=PLAUSIBLE)
    # tyres: lateral force per axle F_y = F_z * D * sin(C * atan(B*a - E*(B*a - atan(B*a))))
    B_f: float = _f("1/rad", "Pacejka stiffness factor, front", gt=0.0, max=100.0, range=PLAUSIBLE)
    C_f: float = _f("-", "Pacejka shape factor, front", gt=0.0, max=3.0)
    D_f: float = _f("-", "Pacejka peak factor (peak lateral force / normal load), front", gt=0.0, max=5.0)
    E_f: float = _f("-", "Pacejka curvature factor, front", max=1.0)
    B_r: float = _f("1/rad", "Pacejka stiffness factor, rear", gt=0.0, max=100.0, range=PLAUSIBLE)
    C_r: float = _f("-", "Pacejka shape factor, rear", gt=0.0, max=3.0)
    D_r: float = _f("-", "Pacejka peak factor, rear", gt=0.0, max=5.0)
    E_r: float = _f("-", "Pacejka curvature factor, rear", max=1.0)
    mu: float = _f("-", "longitudinal tyre-road friction: |F_x| <= mu * m * g", gt=0.0, max=5.0)
    # resistance
    c_roll: float = _f("-", "rolling resistance coefficient: F = c_roll * m * g", min=0.0, max=0.5)
    c_drag: float = _f("kg/m", "aerodynamic drag: F = c_drag * v^2 (= 0.5 rho Cd A)", min=0.0, max=50.0,
                     range=PLAUSIBLE)
    # limits
    steer_max: float = _f("rad", "road-wheel steering angle limit |delta|", gt=0.0, lt=1.5)
    steer_rate_max: float = _f("rad/s", "steering rate limit |d delta/dt|", gt=0.0, max=50.0, range=PLAUSIBLE)
    accel_max: float = _f("m/s^2", "largest drive acceleration command", gt=0.0, max=50.0, range=PLAUSIBLE)
    decel_max: float = _f("m/s^2", "largest braking deceleration command (positive)", gt=0.0, max=100.0,
                           range=PLAUSIBLE)
    power_max: float = _f("W", "motor power limit: F_drive <= power_max / v", gt=0.0, max=1.0e7, range=PLAUSIBLE)
    v_max: float = _f("m/s", "top speed the speed loop will command", gt=0.0, max=150.0, range=PLAUSIBLE)
    # actuators
    steer_tau: float = _f("s", "steering servo first-order lag time constant", min=0.0, max=2.0, range=PLAUSIBLE)
    steer_gain: float = _f("-", "actual / commanded steering angle", gt=0.0, max=5.0, range=PLAUSIBLE)
    steer_offset: float = _f("rad", "steering angle at zero command", min=-0.2, max=0.2)
    speed_kp: float = _f("1/s", "speed loop gain: a_cmd = speed_kp * (v_ref - v_x)", gt=0.0, max=1000.0,
                         range=PLAUSIBLE)
    # low-speed blend between the dynamic and kinematic models
    v_blend_low: float = _f("m/s", "below this speed the model is purely kinematic", gt=0.0, max=20.0,
                            range=PLAUSIBLE)
    v_blend_high: float = _f("m/s", "above this speed the model is purely dynamic", gt=0.0, max=30.0,
                             range=PLAUSIBLE)
    # combined slip, drive/brake distribution, downforce (racing.models.dynamic: axle_forces); the plain model is
    # h_cg = 0, combined_slip = 0, c_down = 0
    combined_slip: float = _f("-", "friction-ellipse weight: 1 = each axle's lateral force shrinks with its "
                              "longitudinal force and each axle's traction is limited (mu F_z); 0 = off (plain "
                              "model: one total grip limit mu (m g + downforce))", min=0.0, max=1.0)
    drive_front: float = _f("-", "share of the drive force on the front axle (0 = rear-wheel drive)", min=0.0, max=1.0)
    brake_front: float = _f("-", "share of the braking force on the front axle (brake balance)", min=0.0, max=1.0)
    c_down: float = _f("kg/m", "aerodynamic downforce: F_z,aero = c_down * v_x^2 (= 0.5 rho C_L A)", min=0.0, max=50.0,
                     range=PLAUSIBLE)
    down_front: float = _f("-", "share of the downforce on the front axle", min=0.0, max=1.0)
    # not a physical parameter: which controller tuning this car races with
    tuning: str | None = field(default=None, metadata={
        "doc": "controller tuning of this car: a tuning name (e.g. 'gt_car': racing/control/mppi/gt_car.yaml) or "
               "a path to a controller YAML (relative to this car file); none = settings derived from the "
               "parameters"})
    # not a physical parameter: how far the car's identification vouches for its grip
    grip_margin: float = field(default=0.0, metadata={
        "unit": "-", "min": 0.0, "max": 0.5,
        "doc": "share of the tyre grip (D_f, D_r, mu) the identification cannot vouch for: controllers plan their "
               "speeds with (1 - grip_margin) of it; racing fit sets it from the fit's uncertainty "
               "(racing.sysid.parametric.grip_margin); 0 for a car whose data sheet is trusted"})
    # an actuator property outside the models' arrays: the steering command's dead time
    steer_delay: float = field(default=0.0, metadata={
        "unit": "s", "min": 0.0, "max": 0.25,
        "doc": "dead time between a steering command and the servo (a transport delay: bus, firmware): racing fit "
               "identifies it (--actuator); controllers plan over it (their dead_time setting; else they lead "
               "their steering by it) until they identify it themselves; 0 = none"})
    # an actuator property outside the models' arrays: the speed loop's integrator (the plans' model is the P loop)
    speed_ki: float = field(default=0.0, metadata={
        "unit": "1/s^2", "min": 0.0, "max": 1000.0,
        "doc": "integral gain of the car's speed loop: a = a_ff + speed_kp (v_cmd - v_x) + speed_ki * integral of "
               "(v_cmd - v_x) dt, the integral held while the output sits at accel_max or -decel_max and the error "
               "would drive it further (anti-windup); 0 = a P loop. racing fit identifies it (P or PI, by held-out "
               "error: racing.sysid.speedloop), the simulator's plants apply it, controllers take the integral "
               "off the acceleration they ask for (racing.control.speedloop)"})
    # not a physical parameter: what the car's drive-by-wire applies of a command (racing.interfaces)
    drive_interface: str = field(default="speed", metadata={
        "choices": ("speed_accel", "speed"),
        "doc": "what the car's drive-by-wire applies of a command: 'speed_accel' (speed set-point and feed-forward "
               "acceleration) or 'speed' (a speed set-point only, the acceleration field ignored: F1TENTH's VESC "
               "driver, most ROS drive-by-wire nodes); default 'speed', the one every car honours"})

    def __post_init__(self):
        config.validate(self, source=f"VehicleParams {self.name!r}" if isinstance(self.name, str) else None)
        if self.v_blend_high <= self.v_blend_low:
            raise ConfigError(
                f"v_blend_high ({self.v_blend_high}) must be greater than v_blend_low ({self.v_blend_low})"
            )

    @property
    def wheelbase(self) -> float:
        """L = l_f + l_r [m]."""
        return self.l_f + self.l_r

    def to_array(self) -> np.ndarray:
        """Flat parameter vector ``p[N_PARAMS]`` (float64) in ``PARAM_NAMES`` order."""
        return np.array([getattr(self, n) for n in PARAM_NAMES], dtype=np.float64)

    @classmethod
    def from_array(cls, p: np.ndarray, name: str = "fitted", tuning: str | None = None,
                   grip_margin: float = 0.0, drive_interface: str = "speed",
                   steer_delay: float = 0.0, speed_ki: float = 0.0) -> "VehicleParams":
        """Inverse of :meth:`to_array` (``tuning``: the controller tuning the car keeps, e.g. its base car's;
        ``grip_margin``: what its identification vouches for; ``drive_interface``: what its drive-by-wire
        applies; ``steer_delay``: its steering dead time [s]; ``speed_ki``: its speed loop's integral gain
        [1/s^2])."""
        p = np.asarray(p, dtype=float)
        if p.shape != (N_PARAMS,):
            raise ValueError(f"expected a parameter array of shape ({N_PARAMS},), got {p.shape}")
        return config.from_mapping(cls, {"name": name, "tuning": tuning, "grip_margin": grip_margin,
                                         "drive_interface": drive_interface, "steer_delay": steer_delay,
                                         "speed_ki": speed_ki,
                                         **{n: float(v) for n, v in zip(PARAM_NAMES, p)}},
                                   source="<parameter array>")

    def replace(self, **changes) -> "VehicleParams":
        """A validated copy with some fields changed."""
        return config.replace_from(self, changes)

    def to_yaml(self, path: str | Path, header: str = "") -> None:
        """Write the parameters as a YAML file that :func:`load_params` reads back."""
        lines = [f"# {h}" for h in header.splitlines()] if header else []
        lines.append(f"name: {self.name}")
        for f in dataclasses.fields(self):
            if f.name in NOT_PHYSICAL:
                continue
            lines.append(f"{f.name}: {yaml_float(getattr(self, f.name))}  # [{f.metadata['unit']}] {f.metadata['doc']}")
        docs = {f.name: f.metadata["doc"] for f in dataclasses.fields(self)}
        if self.grip_margin:
            lines.append(f"grip_margin: {yaml_float(self.grip_margin)}  # [-] {docs['grip_margin']}")
        if self.steer_delay:
            lines.append(f"steer_delay: {yaml_float(self.steer_delay)}  # [s] {docs['steer_delay']}")
        if self.speed_ki:
            lines.append(f"speed_ki: {yaml_float(self.speed_ki)}  # [1/s^2] {docs['speed_ki']}")
        if self.tuning is not None:
            lines.append(f"tuning: {self.tuning}  # {docs['tuning']}")
        lines.append(f"drive_interface: {self.drive_interface}  # {docs['drive_interface']}")
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def usable_grip(params: VehicleParams) -> float:
    """``1 - grip_margin``: the share of the car's tyre grip its controllers plan speeds with [-]."""
    return 1.0 - params.grip_margin


def perturbed(params: VehicleParams, friction: float = 1.0, mass: float = 1.0) -> VehicleParams:
    """The car with its grip and mass scaled (a perturbed plant for robustness studies; the name is kept, so the
    car's cached references still apply): ``friction`` scales the tyres' peak factors ``D_f``, ``D_r`` and the
    longitudinal friction ``mu``; ``mass`` scales ``mass`` and ``inertia_z`` (load spread as the car's own).
    Both factors > 0; 1 = the car itself (returned unchanged)."""
    for name, v in (("friction", friction), ("mass", mass)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and v < float("inf")):
            raise ConfigError(f"{name} scale = {v!r}; expected a number > 0 (1 = the car's own value)")
    if friction == 1.0 and mass == 1.0:
        return params
    return params.replace(D_f=params.D_f * friction, D_r=params.D_r * friction, mu=params.mu * friction,
                          mass=params.mass * mass, inertia_z=params.inertia_z * mass)


def yaml_float(v: float) -> str:
    """``repr(v)`` written so that YAML 1.1 (PyYAML) reads it back as the same float: a mantissa without a dot
    (``1e-06``) is a *string* to PyYAML, so it becomes ``1.0e-06``."""
    s = repr(float(v))
    if "e" in s and "." not in s.split("e")[0]:
        m, e = s.split("e")
        s = f"{m}.0e{e}"
    return s


#: the fields that are not in the flat parameter array
NOT_PHYSICAL = ("name", "tuning", "grip_margin", "drive_interface", "steer_delay", "speed_ki")
PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(VehicleParams) if f.name not in NOT_PHYSICAL)
N_PARAMS = len(PARAM_NAMES)

# Named indices into p = VehicleParams.to_array(); numba treats module globals as constants.
P_MASS, P_IZ, P_LF, P_LR, P_HCG, P_WIDTH = 0, 1, 2, 3, 4, 5
P_BF, P_CF, P_DF, P_EF, P_BR, P_CR, P_DR, P_ER, P_MU = 6, 7, 8, 9, 10, 11, 12, 13, 14
P_CROLL, P_CDRAG = 15, 16
P_STEER_MAX, P_STEER_RATE_MAX, P_ACCEL_MAX, P_DECEL_MAX, P_POWER_MAX, P_VMAX = 17, 18, 19, 20, 21, 22
P_STEER_TAU, P_STEER_GAIN, P_STEER_OFFSET, P_SPEED_KP = 23, 24, 25, 26
P_VBLEND_LOW, P_VBLEND_HIGH = 27, 28
P_COMBINED, P_DRIVE_FRONT, P_BRAKE_FRONT, P_CDOWN, P_DOWN_FRONT = 29, 30, 31, 32, 33
#: the tyre grip: what :func:`perturbed`'s ``friction`` and the online grip estimate (racing.control.grip) scale
P_GRIP = [P_DF, P_DR, P_MU]

_expected = ("mass", "inertia_z", "l_f", "l_r", "h_cg", "width", "B_f", "C_f", "D_f", "E_f", "B_r", "C_r",
             "D_r", "E_r", "mu", "c_roll", "c_drag", "steer_max", "steer_rate_max", "accel_max", "decel_max",
             "power_max", "v_max", "steer_tau", "steer_gain", "steer_offset", "speed_kp", "v_blend_low",
             "v_blend_high", "combined_slip", "drive_front", "brake_front", "c_down", "down_front")
assert PARAM_NAMES == _expected, "P_* indices out of sync with VehicleParams fields"


def repo_root() -> Path:
    """The folder holding the ``racing`` package: the project root in a source checkout (``site-packages`` in an
    installed wheel). Only for developer conveniences (tools, tests): the project's cars and tracks are found by
    :func:`racing.resources.data_dir` in either layout (:func:`params_dir`, :func:`racing.track.tracks_dir`)."""
    return Path(__file__).resolve().parents[2]


def params_dir() -> Path:
    """The project's cars: ``<repository>/vehicle_params`` in a source checkout, ``racing/vehicle_params`` inside an
    installed wheel (:func:`racing.resources.data_dir`)."""
    return data_dir("vehicle_params")


def known_cars() -> list[str]:
    d = params_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


DEFAULT_CAR = "f1tenth"


def load_params(name_or_path: str | Path | Mapping = DEFAULT_CAR) -> VehicleParams:
    """Load a car by name (a file in :func:`params_dir`), by path to a YAML file, or from a mapping of its
    parameters (the keys and checks of a car YAML: every physical field and ``name``; ``tuning``,
    ``grip_margin``, ``drive_interface``, ``steer_delay`` and ``speed_ki`` optional). A :class:`VehicleParams` is
    returned as it is.

    Raises
    ------
    ConfigError
        Unknown car name (the known ones are listed), unknown/missing keys, bad values, an argument of another type.
    """
    if isinstance(name_or_path, VehicleParams):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return config.from_mapping(VehicleParams, name_or_path, source="car parameters (a mapping)")
    if not isinstance(name_or_path, (str, Path)):
        raise ConfigError(f"car: expected a car name, a path to a car YAML or a mapping of its parameters, got "
                          f"{type(name_or_path).__name__} {name_or_path!r:.60}")
    s = str(name_or_path)
    path = Path(s)
    if not (s.endswith((".yaml", ".yml")) or path.is_file()):
        path = params_dir() / f"{s}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown car {s!r}; known cars: {', '.join(known_cars()) or '(none)'} "
                              f"(or give a path to a YAML file)")
    params = config.load(VehicleParams, path)
    t = params.tuning
    if t is not None and t.endswith((".yaml", ".yml")) and not Path(t).is_absolute():
        params = dataclasses.replace(params, tuning=str((path.parent / t).resolve()))
    return params
