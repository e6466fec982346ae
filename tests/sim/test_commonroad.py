"""The CommonRoad plants (racing.sim.commonroad): the spec and its errors, the state mapping, and a closed loop
on CommonRoad's single-track model with parameters fitted to its own excitation log (a simulator the project
did not write, a fitted car, a short track: the lap completes without leaving the track)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("vehiclemodels")

from racing.interfaces import Command  # noqa: E402
from racing.sim.commonroad import CommonRoadPlant, nominal_params, parse_spec  # noqa: E402
from racing.sim.plant import make_plant  # noqa: E402


def test_spec_and_its_errors():
    assert parse_spec("mb") == ("mb", 2)
    assert parse_spec("st:1") == ("st", 1)
    with pytest.raises(ValueError, match="known: st, std, mb"):
        make_plant("commonroad:xyz", None)
    with pytest.raises(ValueError, match=r"unknown CommonRoad vehicle id 7; known: 1 \(Ford Escort\), 2 \(BMW 320i\)"):
        make_plant("commonroad:mb:7", None)
    with pytest.raises(ValueError, match="integer"):
        make_plant("commonroad:st:two", None)
    with pytest.raises(ValueError, match="1000"):
        CommonRoadPlant("mb", plant_hz=500.0)


@pytest.mark.parametrize("model", ["st", "std", "mb"])
def test_state_mapping_and_a_straight_run(model):
    plant = make_plant(f"commonroad:{model}", None)
    x0 = np.array([3.0, -2.0, 0.4, 15.0, 0.0, 0.0, 0.0])
    plant.reset(x0)
    np.testing.assert_allclose(plant.state, x0, atol=1e-12)
    for _ in range(50):
        x = plant.step(Command(0.0, 15.0), 0.02)
    # one second straight on at 15 m/s along the heading 0.4 rad
    assert x[0] - 3.0 == pytest.approx(15.0 * np.cos(0.4), rel=0.02)
    assert x[1] + 2.0 == pytest.approx(15.0 * np.sin(0.4), rel=0.02)
    assert abs(x[5]) < 1e-3 and x[3] == pytest.approx(15.0, abs=0.2)
    assert plant.params.name == f"commonroad2_{model}" and plant.params.v_max == pytest.approx(50.8)


def _oval(tmp_path, straight=120.0, radius=40.0, half_width=6.0, ds=2.0):
    """A TUM centre-line csv of an oval: two straights joined by half circles (counter-clockwise)."""
    pts = []
    n_s, n_c = int(straight / ds), int(np.pi * radius / ds)
    for i in range(n_s):
        pts.append((i * ds, -radius))
    for i in range(n_c):
        a = -np.pi / 2 + np.pi * i / n_c
        pts.append((straight + radius * np.cos(a), radius * np.sin(a)))
    for i in range(n_s):
        pts.append((straight - i * ds, radius))
    for i in range(n_c):
        a = np.pi / 2 + np.pi * i / n_c
        pts.append((radius * np.cos(a), radius * np.sin(a)))
    path = tmp_path / "oval.csv"
    path.write_text("# x_m,y_m,w_tr_right_m,w_tr_left_m\n"
                    + "".join(f"{x:.4f},{y:.4f},{half_width},{half_width}\n" for x, y in pts))
    return path


def test_fitted_car_laps_the_commonroad_single_track_plant(tmp_path):
    import racing
    from racing.sysid.excite import ExcitationDriver, drive_session, excitation_for
    from racing.sysid.parametric import fit

    nominal = nominal_params(2, "st")
    base = nominal.replace(D_f=0.9 * nominal.D_f, D_r=0.9 * nominal.D_r, inertia_z=1.3 * nominal.inertia_z,
                           B_f=0.75 * nominal.B_f, B_r=1.25 * nominal.B_r, steer_tau=0.04, name="bmw_base")
    cfg = excitation_for(base)
    x0 = np.zeros(7)
    x0[3] = cfg.v_min
    log, _ = drive_session(make_plant("commonroad:st", None), ExcitationDriver(base, cfg, seed=3), 60.0, 50.0,
                           seed=3, x0=x0, noise={"pos": 0.02, "yaw": 0.005, "vel": 0.03, "yaw_rate": 0.01,
                                                 "steer": 0.002})
    car = fit([log], base, names=("inertia_z", "B_f", "B_r", "steer_tau"), name="bmw_fit").params
    assert abs(car.inertia_z / 1791.6 - 1.0) < 0.15  # the log identifies the yaw inertia (base 30 % off)
    track = racing.load_track(str(_oval(tmp_path)))
    r = racing.race(track, car, controller="mppi", plant="commonroad:st", laps=1, seed=0, max_time_s=120.0)
    assert r.status == "completed" and len(r.laps) == 1, r.summary()
    assert r.off_track == 0
    assert r.summary()["max_speed_mps"] > 15.0  # it raced: the corners alone allow ~19 m/s at the cautious grip


def test_pure_pursuit_holds_commonroad_single_track_at_top_speed(tmp_path):
    """CommonRoad ST's linear tyres carry the 2.5 g a fit of its logs finds (D 3.4): fast sweepers at its top speed
    (51 m/s) and braking into them, where its yaw mode is barely damped and, with the load off the rear axle under
    braking, unstable. Pure pursuit with its yaw-rate feedback completes two laps (without it, a weave grows until
    the car leaves the track); its speed loop is led by the profile's deceleration."""
    import racing

    car = nominal_params(2, "st")
    car = car.replace(D_f=3.4, D_r=3.4, name="bmw_st_linear")
    track = racing.load_track(str(_oval(tmp_path, straight=300.0, radius=100.0)))
    r = racing.race(track, car, controller="pure_pursuit", plant="commonroad:st", laps=2, seed=0, max_time_s=120.0)
    assert r.status == "completed" and len(r.laps) == 2 and r.off_track == 0, r.summary()
    assert r.summary()["max_speed_mps"] > 50.0
