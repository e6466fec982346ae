"""The dynamic_ext plant: equals the base plant without its extra effects; load transfer changes yaw."""
from __future__ import annotations

import numpy as np

from racing.control.base import Command
from racing.models.params import load_params
from racing.sim.plant import known_plants, make_plant


def _run(plant, steps=120):
    plant.reset(np.array([0, 0, 0, 2.0, 0, 0, 0.0]))
    out = []
    for k in range(steps):
        out.append(plant.step(Command(0.25 if k > 30 else 0.0, 6.0 if k < 80 else 2.0), 0.02))
    return np.array(out)


def test_registered_and_reduces_to_dynamic():
    assert "dynamic_ext" in known_plants()
    p = load_params("f1tenth")
    from racing.sim.plants_ext import DynamicExtPlant

    ext = _run(DynamicExtPlant(p, tau_drive=1e-3, load_transfer=0.0))
    ref = _run(make_plant("dynamic", p))
    np.testing.assert_allclose(ext[:, 3:], ref[:, 3:], atol=0.02)
    full = _run(make_plant("dynamic_ext", p))
    assert np.abs(full[:, 5] - ref[:, 5]).max() > 0.05
    assert full.shape == (120, 7) and np.all(np.isfinite(full))
