"""The closed-loop race simulator: ``simulate(track, controller, plant, plant_params, SimConfig(...)) -> SimResult``."""
from racing.sim.plant import known_plants, make_plant, register_plant
from racing.sim.result import SimResult
from racing.sim.simulator import NoiseConfig, SimConfig, simulate

__all__ = ["NoiseConfig", "SimConfig", "SimResult", "known_plants", "make_plant", "register_plant", "simulate"]
