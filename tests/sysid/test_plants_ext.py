"""The richer ``dynamic_ext`` plant (the simulator's default): without its extra effects it is the base plant;
each effect (load transfer, tyre relaxation, drivetrain lag, dead time) changes the response."""
from __future__ import annotations

import numpy as np
import pytest

from racing.control.base import Command
from racing.models.params import load_params
from racing.sim.plant import known_plants, make_plant
from racing.sim.plants_ext import DynamicExtPlant


def _run(plant, steps=120):
    plant.reset(np.array([0, 0, 0, 2.0, 0, 0, 0.0]))
    out = []
    for k in range(steps):
        out.append(plant.step(Command(0.25 if k > 30 else 0.0, 6.0 if k < 80 else 2.0), 0.02))
    return np.array(out)


def test_registered_and_reduces_to_dynamic():
    assert "dynamic_ext" in known_plants()
    p = load_params("f1tenth")
    ref = _run(make_plant("dynamic", p, plant_hz=1e4))
    # relaxation length and drivetrain lag shrinking by 10x, no dead time: converges to the base plant (same loads
    # and combined slip), the difference shrinking with the lags (the manoeuvre ends braking hard in a turn)
    diffs = []
    for hz, tau, sigma in ((1e4, 1e-3, 2e-3), (1e5, 1e-4, 2e-4)):
        bare = _run(DynamicExtPlant(p, hz, tau_drive=tau, sigma=sigma, dead_time=0.0))
        diffs.append(np.abs(bare[:, 3:] - ref[:, 3:]).max())
    assert diffs[1] < 0.1 and diffs[1] < 0.2 * diffs[0], diffs
    full = _run(make_plant("dynamic_ext", p))
    assert full.shape == (120, 7) and np.all(np.isfinite(full))
    assert np.abs(full[:, 5] - ref[:, 5]).max() > 0.05
    no_lt = _run(DynamicExtPlant(p, 1e5, tau_drive=1e-4, sigma=2e-4, dead_time=0.0, load_transfer=0.0))
    assert np.abs(no_lt[:, 5] - bare[:, 5]).max() > 0.01  # h_cg matters in the base model itself


def test_dead_time_delays_the_command_exactly():
    p = load_params("f1tenth")
    a = DynamicExtPlant(p, dead_time=0.0)
    b = DynamicExtPlant(p, dead_time=0.06)
    x0 = np.array([0, 0, 0, 3.0, 0, 0, 0.0])
    a.reset(x0)
    b.reset(x0)
    cmds = [Command(0.2 * np.sin(0.3 * k), 3.0 + 0.5 * np.cos(0.2 * k)) for k in range(40)]
    xa, xb = [], []
    for c in cmds:
        xa.append(a.step(c, 0.02))
    # b gets the same commands; its first 3 steps hold the start (steering 0, speed 3 m/s), then lag by 3 steps
    a2 = DynamicExtPlant(p, dead_time=0.0)
    a2.reset(x0)
    for c in [Command(0.0, 3.0)] * 3 + cmds[:-3]:
        xa.append(a2.step(c, 0.02))
    for c in cmds:
        xb.append(b.step(c, 0.02))
    np.testing.assert_allclose(np.array(xb), np.array(xa[40:]), atol=1e-9)


@pytest.mark.parametrize("bad", [{"sigma": 0.0}, {"dead_time": -0.01}, {"tau_drive": 0.0}, {"plant_hz": 100.0}])
def test_bad_options_are_errors(bad):
    with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
        DynamicExtPlant(load_params("f1tenth"), **bad)
