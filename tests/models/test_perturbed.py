"""A perturbed plant's parameters (racing race --friction-scale / --mass-scale, sweep perturbations)."""
from __future__ import annotations

import pytest

from racing.config import ConfigError
from racing.models.params import load_params, perturbed


def test_friction_and_mass_scales():
    car = load_params("gt_car")
    assert perturbed(car) is car
    p = perturbed(car, friction=0.9, mass=1.1)
    assert (p.D_f, p.D_r, p.mu) == pytest.approx((0.9 * car.D_f, 0.9 * car.D_r, 0.9 * car.mu))
    assert (p.mass, p.inertia_z) == pytest.approx((1.1 * car.mass, 1.1 * car.inertia_z))
    assert p.name == car.name and p.l_f == car.l_f and p.B_f == car.B_f


@pytest.mark.parametrize("kw", [{"friction": 0.0}, {"mass": -1.0}, {"friction": float("nan")}, {"mass": True}])
def test_bad_scales_are_errors(kw):
    with pytest.raises(ConfigError, match=r"scale = .*expected a number > 0"):
        perturbed(load_params("f1tenth"), **kw)
