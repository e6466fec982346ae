"""The plant registry: ``make_plant(name | 'module:factory', params, plant_hz)``.

Built in: ``dynamic`` (default), ``kinematic`` (:class:`racing.sim.plant.NumbaPlant`) and ``dynamic_ext``
(:mod:`racing.sim.plants_ext`); CommonRoad's models as ``commonroad:st|std|mb[:vehicle]`` (:mod:`racing.sim.commonroad`). A plant is any object with ``reset(x0[7])`` and ``step(command, dt) -> x[7]``
(see :mod:`racing.sim.numba_plant`).
"""
from __future__ import annotations

import importlib

from racing.models.params import VehicleParams
from racing.sim.commonroad import make_commonroad_plant
from racing.sim.numba_plant import NumbaPlant
from racing.sim.plants_ext import make_dynamic_ext


def _dynamic(params: VehicleParams, plant_hz: float = 1000.0):
    return NumbaPlant(params, "dynamic", plant_hz)


def _kinematic(params: VehicleParams, plant_hz: float = 1000.0):
    return NumbaPlant(params, "kinematic", plant_hz)


PLANTS = {"dynamic": _dynamic, "kinematic": _kinematic, "dynamic_ext": make_dynamic_ext}
#: what ``racing race`` simulates unless told otherwise: richer than any controller's model
DEFAULT_PLANT = "dynamic_ext"


def register_plant(name: str, factory) -> None:
    """Add a plant factory ``factory(params, plant_hz=...)`` under ``name``."""
    PLANTS[name] = factory


def own_car(plant, car: VehicleParams | None) -> VehicleParams | None:
    """The plant's own car when it is a car of its own (a CommonRoad plant: its ``params`` are not the ``car`` it
    was built with), else None (the project's plants simulate the car they were given)."""
    p = getattr(plant, "params", None)
    return p if p is not None and p is not car else None


def known_plants() -> list[str]:
    return sorted(PLANTS) + ["commonroad:st|std|mb[:vehicle id]"]


def _commonroad(spec: str, params: VehicleParams, plant_hz: float = 1000.0):
    return make_commonroad_plant(spec, params, plant_hz=plant_hz)


#: plant families ``family:variant`` (``commonroad:mb:2``): ``factory(variant, params, plant_hz=...)``
FAMILIES = {"commonroad": _commonroad}


def make_plant(spec: str, params: VehicleParams, plant_hz: float = 1000.0):
    """A plant by registry name, by family and variant (``commonroad:st|std|mb[:vehicle id]``,
    :mod:`racing.sim.commonroad`) or by import path ``'package.module:factory'``."""
    family, _, variant = spec.partition(":")
    if family in FAMILIES:
        return FAMILIES[family](variant, params, plant_hz=plant_hz)
    if ":" in spec:
        mod_name, _, attr = spec.partition(":")
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as exc:
            raise ValueError(f"--plant {spec!r}: cannot import module {mod_name!r}: {exc}") from exc
        factory = getattr(mod, attr, None)
        if factory is None:
            raise ValueError(f"--plant {spec!r}: module {mod_name!r} has no attribute {attr!r}")
    else:
        if spec not in PLANTS:
            raise ValueError(f"unknown plant {spec!r}; known plants: {', '.join(known_plants())} "
                             f"(or an import path 'module:factory')")
        factory = PLANTS[spec]
    if not callable(factory):
        raise ValueError(f"--plant {spec!r}: {spec.partition(':')[2] or spec} is a {type(factory).__name__}, not a "
                         f"factory; expected a callable factory(params, plant_hz=...) returning a plant")
    try:
        plant = factory(params, plant_hz=plant_hz)
    except TypeError as exc:
        raise ValueError(f"--plant {spec!r}: calling factory(params, plant_hz={plant_hz:g}) failed: {exc}; expected "
                         f"a factory(params, plant_hz=...) returning an object with reset(x0) and step(command, dt)"
                         ) from None
    for meth in ("reset", "step"):
        if not callable(getattr(plant, meth, None)):
            raise ValueError(f"plant {spec!r} has no {meth}() method; see racing.sim.plant for the interface")
    return plant
