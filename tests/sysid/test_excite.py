"""The second excitation programme (:class:`racing.sysid.excite.ManoeuvreDriver`): the classic test manoeuvres, in a
seeded order, within the tyres' near-linear range."""
from __future__ import annotations

import numpy as np

from racing.models.params import load_params
from racing.sim.plant import make_plant
from racing.sysid.excite import ManoeuvreDriver, drive_session


def test_the_manoeuvre_programme_drives_every_manoeuvre_without_a_slide_and_is_seeded():
    car = load_params("gt_car")
    kinds = []

    class Spy(ManoeuvreDriver):
        def _next(self, t, vx):
            super()._next(t, vx)
            kinds.append(self.kind)

    x0 = np.zeros(7)
    x0[3] = 0.25 * car.v_max
    log, true = drive_session(make_plant("dynamic", car), Spy(car, seed=3), 90.0, 50.0, noise={}, seed=3, x0=x0)
    assert set(kinds) == set(ManoeuvreDriver.KINDS), kinds
    assert np.all(log.command[:, 2] == 0.0)  # no acceleration field: a command-only, speed-only log
    beta = np.arctan2(true[:, 4], np.maximum(true[:, 3], 1.0))
    assert np.abs(beta).max() < 0.1  # no slide: the levels stay well below the grip
    assert 0.15 * car.v_max < true[:, 3].min() and true[:, 3].max() < 0.8 * car.v_max
    lat = np.abs(true[:, 5] * true[:, 3])
    assert np.percentile(lat, 95) > 2.0  # it does corner (m/s^2)
    again, _ = drive_session(make_plant("dynamic", car), ManoeuvreDriver(car, seed=3), 10.0, 50.0, noise={}, seed=3,
                             x0=x0)
    np.testing.assert_array_equal(again.command, log.command[:500])
