"""The shared vocabulary of the stack, on the ground floor: every layer (models, simulator, controllers,
runtime, system identification) may import this module, and it imports nothing of the package except the
state names.

* :class:`Command` what a controller sends to the car (Ackermann convention, REP 103 signs);
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
