"""Compile a plant's numba kernels into the on-disk cache, in a process of its own:
``python -m racing.sim.warm PLANT [PLANT_HZ]``.

The race assembly starts this beside the controller's compile on a machine's first run (numba compiles one
function at a time per process, and a second core would otherwise sit idle): the race's own process then loads the
plant from the cache. The kernels' types do not depend on the car, so the default car compiles the same code.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from racing.interfaces import Command
from racing.models.params import DEFAULT_CAR, load_params
from racing.sim.plant import make_plant


def warm_plant(plant, x0: np.ndarray) -> None:
    """One short step of ``plant`` from ``x0[7]`` (its kernels compile, or load from the cache, here and not in a
    race's first tick); whoever races it resets it first."""
    plant.reset(x0)
    plant.step(Command(0.0, float(np.hypot(x0[3], x0[4])), 0.0), 1e-3)


class PlantWarmer:
    """The warm-up process of a plant (``start`` it, then ``wait`` for it before stepping the plant)."""

    def __init__(self, plant: str, plant_hz: float):
        self.argv = [sys.executable, "-m", "racing.sim.warm", plant, f"{plant_hz:g}"]
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def wait(self, timeout_s: float = 900.0) -> None:
        """Wait for the process (if started); past ``timeout_s`` it is stopped (the race compiles the plant itself)."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    plant = make_plant(argv[0], load_params(DEFAULT_CAR), plant_hz=float(argv[1]) if len(argv) > 1 else 1000.0)
    x0 = np.zeros(7)
    x0[3] = 1.0
    warm_plant(plant, x0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
