"""racing learn's loop (racing.sysid.learn): excite, fit, race, refit, on the project's own plant."""
from __future__ import annotations

from racing.models.params import load_params
from racing.sysid.learn import learn
from racing.sysid.parametric import GRIP_MARGIN_MAX


def test_learn_races_fitted_cars_with_the_grip_their_fits_vouch_for():
    car = load_params("f1tenth")
    start = car.replace(D_f=0.85 * car.D_f, D_r=0.85 * car.D_r, inertia_z=1.3 * car.inertia_z, B_f=0.8 * car.B_f,
                        name="f1_start")
    r = learn("lab_loop", car, start, iterations=1, controller="pure_pursuit", plant="dynamic", laps=1,
              excite_s=12.0)
    assert [it.iteration for it in r.iterations] == [0, 1]
    for it in r.iterations:
        assert it.status == "completed" and it.off_track == 0 and len(it.laps) == 1
        # every fit runs its identification checks and carries its margin (a 20 s excitation vouches for little)
        assert 0.0 < it.grip_margin <= GRIP_MARGIN_MAX
    # iteration 0 already races a car fitted to the excitation log, not the start car
    assert r.iterations[0].params["inertia_z"] != start.inertia_z
    assert r.final_params.grip_margin == r.iterations[-1].grip_margin
    assert "margin" in r.table() and r.to_dict()["iterations"][1]["grip_margin"] == r.iterations[1].grip_margin
