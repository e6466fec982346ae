"""The shared vocabulary of the stack, on the ground floor: every layer (models, simulator, controllers,
runtime, system identification) may import this module, and it imports nothing of the package except the
state names.

* :class:`Command` what a controller sends to the car (Ackermann convention, REP 103 signs);
* :class:`DriveInterface` which of a command's fields the car's drive-by-wire applies (a car file's
  ``drive_interface``; :data:`DRIVE_INTERFACES`), and :meth:`DriveInterface.command`, which turns a
  planned (steering, speed, acceleration) into the command that interface takes;
* :class:`Observation` what a controller sees at one control instant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from racing.models.dynamic import STATE_NAMES


@dataclass(frozen=True)
class Command:
    """An Ackermann drive command (REP 103 signs).

    steering_angle : float  road-wheel angle [rad], positive = left
    speed          : float  target longitudinal speed [m/s]
    acceleration   : float  feed-forward acceleration [m/s^2] for the speed loop (0 = none)
    """

    steering_angle: float
    speed: float
    acceleration: float = 0.0

    def __post_init__(self):
        for name in ("steering_angle", "speed", "acceleration"):
            v = getattr(self, name)
            if not math.isfinite(v):
                raise ValueError(f"Command.{name} is {v}; expected a finite number")


@dataclass
class Observation:
    """What a controller sees at one control instant.

    t     : float       time [s]
    state : float64[7]  (x [m], y [m], yaw [rad], v_x [m/s], v_y [m/s], yaw rate [rad/s], steer [rad]),
                        see :mod:`racing.models.dynamic` (measured, i.e. possibly noisy)
    """

    t: float
    state: np.ndarray

    def __post_init__(self):
        s = np.asarray(self.state, dtype=np.float64)
        if s.shape != (7,):
            raise ValueError(f"Observation.state must have shape (7,), got {s.shape}")
        if not np.all(np.isfinite(s)):
            bad = [i for i in range(7) if not np.isfinite(s[i])]
            raise ValueError(f"Observation.state has non-finite {', '.join(STATE_NAMES[i] for i in bad)}: {s}")
        self.state = s


class InterfaceError(ValueError):
    """A command with a field the car's drive interface does not take (a controller built for another car)."""


@dataclass(frozen=True)
class DriveInterface:
    """What a car's drive-by-wire applies of a :class:`Command`.

    name         : str   the car file's ``drive_interface`` value
    acceleration : bool  the feed-forward acceleration is applied (``speed_accel``: the speed loop computes
                         ``a = acceleration + k (speed - v_x)``); False: a speed set-point only (ackermann_msgs
                         ``AckermannDrive.speed`` with the acceleration field ignored, e.g. F1TENTH's VESC driver
                         and most ROS drive-by-wire nodes), and a command must carry ``acceleration = 0``
    doc          : str   one line for listings and errors
    """

    name: str
    acceleration: bool
    doc: str

    def command(self, steering_angle: float, speed: float, acceleration: float, v_x: float, speed_kp: float,
                v_max: float) -> Command:
        """The command that makes this car do what a plan asks: steer ``steering_angle`` [rad], hold ``speed``
        [m/s] and accelerate at ``acceleration`` [m/s^2] now, at the measured ``v_x`` [m/s]. With the feed-forward
        applied it is sent as it is; on a speed-only car the set-point leads by what the speed loop
        ``a = speed_kp (v_cmd - v_x)`` [1/s] needs to give that acceleration:
        ``v_cmd = speed + acceleration / speed_kp`` clipped to [0, ``v_max``], so the car brakes where the plan
        brakes (a set-point that only followed the plan's speed would lag a braking ramp by
        ``acceleration / speed_kp``: 1.2 m/s at 10 m/s^2 and 8 1/s)."""
        if self.acceleration:
            return Command(steering_angle, speed, acceleration)
        return Command(steering_angle, min(max(speed + acceleration / speed_kp, 0.0), v_max), 0.0)

    def problem(self, command: Command) -> str:
        """'' if this car takes every field ``command`` uses, else what is wrong."""
        if not self.acceleration and command.acceleration != 0.0:
            return (f"the car's drive interface is {self.name!r} ({self.doc}): it does not take an acceleration, "
                    f"and the controller sent acceleration = {command.acceleration:.4g} m/s^2; build the controller "
                    f"for this car (its car file's drive_interface) or give the car drive_interface: speed_accel")
        return ""

    def check(self, command: Command) -> None:
        """Raise :class:`InterfaceError` if ``command`` uses a field this car does not take."""
        bad = self.problem(command)
        if bad:
            raise InterfaceError(bad)


#: the drive interfaces a car file may state (``drive_interface``)
DRIVE_INTERFACES = {
    "speed_accel": DriveInterface("speed_accel", True, "speed set-point and feed-forward acceleration"),
    "speed": DriveInterface("speed", False, "speed set-point only; the acceleration field is ignored"),
}


def drive_interface(name: str) -> DriveInterface:
    """The :class:`DriveInterface` a car file names (a key of :data:`DRIVE_INTERFACES`)."""
    try:
        return DRIVE_INTERFACES[name]
    except (KeyError, TypeError):
        raise InterfaceError(f"drive_interface: expected one of {sorted(DRIVE_INTERFACES)}, got {name!r}") from None
