"""Controllers: one interface (:class:`Controller`), one registry (:func:`make_controller`)."""
from racing.control.base import (CONTROLLERS, Command, Controller, Observation, known_controllers, make_controller,
                                 register)

__all__ = ["CONTROLLERS", "Command", "Controller", "Observation", "known_controllers", "make_controller", "register"]
