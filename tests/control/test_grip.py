"""The online grip estimate (racing.control.grip): the compiled replay equals the numpy one, the bank finds the
grip of data its own model made, and a controller that uses it finds the grip of a perturbed plant in a lap."""
import numpy as np
import pytest

import racing
from racing.control.grip import SCALES, GripEstimator, replay_nb, replay_np
from racing.models.discrete import dynamic_step
from racing.models.params import P_DF, P_DR, P_IZ, P_MU, load_params


def _drive(car, g, seconds=12.0, h=0.02, nsub=10, inertia=1.0, v0=6.0, amp=0.25):
    """The model at grip scale ``g`` (and yaw inertia times ``inertia``) driven from ``v0`` [m/s] by a steering sine
    (amplitude ``amp`` [rad]) and an acceleration sine, measured every ``h``."""
    p = car.to_array()
    p[[P_DF, P_DR, P_MU]] *= g
    p[P_IZ] *= inertia
    x = np.array([0.0, 0.0, 0.0, v0, 0.0, 0.0, 0.0])
    T, X = [0.0], [x.copy()]
    for k in range(int(seconds / h)):
        t = k * h
        target = amp * np.sin(np.pi * t) * (1.0 + 0.5 * np.sin(0.3 * t))
        u = np.array([np.clip((target - x[6]) / 0.05, -3.2, 3.2), np.sin(0.7 * t)])
        for _ in range(nsub):
            x = dynamic_step(x, u, p, h / nsub)
        T.append(t + h)
        X.append(x.copy())
    return np.array(T), np.array(X)


def test_the_compiled_replay_equals_the_numpy_reference():
    car = load_params("f1tenth")
    T, X = _drive(car, 0.9, seconds=0.6)
    est = GripEstimator(car)
    G = est.PT.shape[0]  # every (inertia, grip) of the bank
    e = np.zeros(G)
    Z = X + 0.01 * np.random.default_rng(0).standard_normal(X.shape)  # measured with noise
    Xs = X[5:26].copy()  # a smoothed copy: any other driving copy
    info = replay_nb(T[5:26], Z[5:26], Xs, est.PT, est.p, est.s_vy, est.s_r, e, np.zeros(21), est.pair,
                     np.zeros((2, 21, 2)))
    e_ref, info_ref = replay_np(T[5:26], Z[5:26], Xs, est.P, est.p, est.s_vy, est.s_r, est.pair)
    np.testing.assert_allclose(e, e_ref, rtol=1e-9, atol=1e-9)
    assert info == pytest.approx(info_ref, rel=1e-9) and info > 0.0


@pytest.mark.parametrize("g", [0.85, 1.0, 1.1])
def test_the_bank_finds_the_grip_of_its_own_model(g):
    car = load_params("f1tenth")
    T, X = _drive(car, g)
    est = GripEstimator(car)
    for t, x in zip(T, X):
        est.observe(t, x)
    assert est.informed and est.scale == pytest.approx(g, abs=0.01) and est.lower <= est.scale


@pytest.mark.parametrize("inertia", [0.6, 1.0])
def test_the_bank_finds_the_inertia_of_its_own_model(inertia):
    """The model's own data with its yaw inertia at 0.6 of the car file's (a fit that put a slow servo into I_z)
    and at the car file's: the inertia axis reads it, the grip is still found, and the controller's model takes
    the lower inertia (never a higher one)."""
    from racing.control import costs as C
    from racing.control.grip import OnlineGrip

    car = load_params("f1tenth")
    T, X = _drive(car, 0.9, inertia=inertia)
    p, tab = car.to_array(), np.zeros((4, C.TAB_COLS))
    og = OnlineGrip(car, p, tab)
    for t, x in zip(T, X):
        og.observe(t, x)
    est = og.estimator
    assert est.informed and est.inertia == inertia and est.scale == pytest.approx(0.9, abs=0.02)
    assert p[P_IZ] == pytest.approx(inertia * car.inertia_z)


@pytest.mark.parametrize("carname, channels, tol", [("f1tenth", [3], 0.02), ("gt_car", [3], 0.02),
                                                    ("f1tenth", slice(None), 0.05)])
def test_measurement_noise_on_the_speed_does_not_read_as_grip(carname, channels, tol):
    """The model's own data at grip 1 with the measurement noise of a typical localisation stack (``racing race
    --noise 1``: v_x and v_y to 1 % of v_max) on v_x, and on everything for the f1tenth: the estimate stays within
    ``tol`` of 1. Before the replay was driven by a fit of the measured speed whose width follows its measured noise
    (``smooth_nb``), the noisy speed's differences, fed to the model as its drive input, took the tyres into
    combined slip and read as more grip: 22-32 % on an f1tenth log, 1.38 in a gt_car race on ridge_ring
    (docs/results.md, 2026-12-07). What is left with noise on v_y (the window's noisy start: the grippiest tyres
    forget it fastest) is not asserted: -2 % to +15 % on the gt_car over four noise seeds (a burn-in before each
    window took it to -5 % to +2 % but read the f1tenth's grip 3-8 % low in noisy races: not kept, 2026-12-08)."""
    from racing.assembly import noise_preset

    car = load_params(carname)
    T, X = _drive(car, 1.0, seconds=30.0, **({"v0": 30.0, "amp": 0.035} if carname == "gt_car" else {}))
    Z = X.copy()
    noise = np.random.default_rng(0).normal(0.0, 1.0, X.shape) * noise_preset(car, 1.0).std()
    Z[:, channels] += noise[:, channels]
    est = GripEstimator(car)
    for t, z in zip(T, Z):
        est.observe(t, z)
    assert est.informed and est.scale == pytest.approx(1.0, abs=tol), (est.summary(), est.vx_noise, est.vx_half)


def test_straight_driving_says_nothing():
    car = load_params("f1tenth")
    est = GripEstimator(car)
    for k in range(500):
        est.observe(0.02 * k, np.array([0.12 * k, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0]))
    assert est.windows == 0 and not est.informed and est.scale == 1.0


def _jitter(car, seconds=20.0, h=0.02, v0=70.0, steer_std=0.0025, seed=1):
    """The model at its own grip on a straight at ``v0`` [m/s], its steering jittered as a controller planning from
    noisy states does (white noise of ``steer_std`` [rad] through a 0.1 s first-order servo), measured every ``h``
    with the measurement noise of ``racing race --noise 1``: ``(T, Z)``."""
    from racing.assembly import noise_preset

    rng = np.random.default_rng(seed)
    p = car.to_array()
    x = np.array([0.0, 0.0, 0.0, v0, 0.0, 0.0, 0.0])
    T, X = [0.0], [x.copy()]
    for k in range(int(seconds / h)):
        target = steer_std * rng.standard_normal()
        u = np.array([np.clip((target - x[6]) / 0.1, -1.0, 1.0), 0.0])
        for _ in range(10):
            x = dynamic_step(x, u, p, h / 10)
        T.append((k + 1) * h)
        X.append(x.copy())
    X = np.array(X)
    return np.array(T), X + rng.normal(0.0, 1.0, X.shape) * noise_preset(car, 1.0).std()


def test_a_noisy_jittering_straight_says_nothing_of_the_grip():
    """The gt_car on a straight at 70 m/s, its steering jittered by a controller planning from noisy states, measured
    at ``--noise 1``: the windows do not tell grip 0.9 from 1.1 (INFO_MIN), so the estimate stays uninformed. Until
    2026-12-08 a window counted when the bank's far ends parted, and on Monza's straight the estimate climbed to the
    bank's edge (1.5) in such driving; iLQR planned with it and spun under braking."""
    car = load_params("gt_car")
    T, Z = _jitter(car)
    est = GripEstimator(car)
    for t, z in zip(T, Z):
        est.observe(t, z)
    assert not est.informed and abs(est.scale - 1.0) <= 0.1, est.summary()


def test_the_grip_planned_with_follows_the_estimate_at_a_bounded_rate():
    """The model's own data at 0.85 of the grip: the controller's model and speed cap move towards the estimate by
    at most RATE per second (an estimate first informed mid-braking, applied at once, spun the gt_car on Monza) and
    reach it."""
    from racing.control import costs as C
    from racing.control.grip import RATE, OnlineGrip

    car = load_params("f1tenth")
    T, X = _drive(car, 0.85)
    p, tab = car.to_array(), np.zeros((4, C.TAB_COLS))
    og = OnlineGrip(car, p, tab)
    seen = []
    for t, x in zip(T, X):
        og.observe(t, x)
        seen.append(p[P_DF] / car.D_f)
    steps = np.abs(np.diff(seen))
    assert steps.max() <= RATE * og.estimator.update_s + 1e-9 and steps.max() > 0.0
    assert seen[-1] == pytest.approx(0.85, abs=0.01)


@pytest.mark.parametrize("friction", [0.85, 1.1])
def test_the_grip_of_a_perturbed_plant_is_found_within_a_lap(friction):
    """lab_loop on the model's own plant (``dynamic``) with its grip scaled, pure pursuit driving (smooth steering,
    tyres short of their peak): after one lap the estimate is within 1.5 % of the plant's grip."""
    track, car = racing.load_track("lab_loop"), load_params("f1tenth")
    res = racing.race(track=track, car=car, controller="pure_pursuit", plant="dynamic", laps=1, seed=0,
                      friction_scale=friction)
    est = GripEstimator(car)
    for t, x in zip(res.t[res.t <= res.lap_end_t[0]], res.measured):
        est.observe(t, x)
    assert est.informed and est.scale == pytest.approx(friction, rel=0.015), est.summary()


@pytest.mark.parametrize("friction", [0.85, 1.1])
def test_mppi_finds_the_grip_of_a_perturbed_plant_within_a_lap(friction):
    """The same with MPPI driving and planning with its estimate: at the limit, with fast steering the replay's
    discrete step (inputs linear over a period) does not follow exactly, and the estimate lands within 6 % low
    to 4 % high. The closed loop is chaotic: a last-bit change of the compiled replay moved the estimate at 1.1
    from 1.038 to 1.1135; counting only the windows that tell 0.9 from 1.1 (INFO_MIN, 2026-12-08) moved it at 0.85
    from 0.815 to 0.876 (docs/controllers.md)."""
    track, car = racing.load_track("lab_loop"), load_params("f1tenth")
    ctl = racing.make_controller("mppi", track, car, threads=1)
    assert ctl.grip is not None  # on by default
    res = racing.race(track=track, car=car, controller=ctl, plant="dynamic", laps=1, seed=0, friction_scale=friction)
    assert res.outcome == "clean"
    s = ctl.grip.summary()
    assert s["informed"] and 0.94 * friction <= s["grip_scale"] <= 1.04 * friction, s
    est = res.summary()["estimates"]  # what racing race --json and its table report (the steering's too)
    assert {k: est[k] for k in s} == s and est["steer_informed"] in (True, False)


def test_the_controller_plans_with_the_estimate_and_forgets_it_on_reset():
    """OnlineGrip writes the controller's arrays in place: D_f, D_r, mu times the scale, the speed cap times
    sqrt(lower / the car file's usable grip) below it (capped at v_max), not raised above it without a profile to
    re-make it from; reset restores both."""
    from racing.control import costs as C
    from racing.control.grip import OnlineGrip

    car = load_params("f1tenth").replace(grip_margin=0.1)
    p = car.to_array()
    tab = np.zeros((5, C.TAB_COLS))
    tab[:, C.TAB_VCAP] = [2.0, 4.0, 6.0, 8.0, 11.9]
    seen = []
    og = OnlineGrip(car, p, tab, seen.append)
    og._apply(0.8, 0.72)
    assert p[P_DF] == pytest.approx(0.8 * car.D_f) and p[P_MU] == pytest.approx(0.8 * car.mu) and len(seen) == 1
    np.testing.assert_allclose(tab[:, C.TAB_VCAP], np.array([2.0, 4.0, 6.0, 8.0, 11.9]) * np.sqrt(0.72 / 0.9))
    og._apply(1.2, 1.2)
    np.testing.assert_allclose(tab[:, C.TAB_VCAP], [2.0, 4.0, 6.0, 8.0, 11.9])
    og.reset()
    np.testing.assert_allclose(p, car.to_array())
    np.testing.assert_allclose(tab[:, C.TAB_VCAP], [2.0, 4.0, 6.0, 8.0, 11.9])


def test_more_grip_than_the_car_file_does_not_move_the_braking_points():
    """A car whose brakes, not its tyres, limit its braking (decel_max 4 m/s^2 against about 6.9 of usable grip)
    with a 30 % grip margin, its grip estimated at the car file's: the re-made cap rises in the corners and asks no
    more of the brakes than decel_max (and drag) anywhere; a cap scaled by sqrt(1 / 0.7) everywhere asks 40 % more.
    Applied over, the estimate back at the car file's usable grip restores the cap it started from."""
    from racing.control import costs as C
    from racing.control.grip import OnlineGrip

    car = load_params("f1tenth").replace(grip_margin=0.3, decel_max=4.0)
    track = racing.load_track("lab_loop")
    tab, _ = C.track_table(track, car, 0.7, 1.0)
    cap = C.ProfileCap(track, car, True, 1.0)
    og = OnlineGrip(car, car.to_array(), tab, cap_at=cap)
    v0 = tab[:, C.TAB_VCAP].copy()
    og._apply(1.0, 1.0)
    v = tab[:, C.TAB_VCAP]
    ds = np.diff(track.arrays()[:, 0])

    def braking(u):  # the deceleration a cap asks for between consecutive rows [m/s^2], less drag's share
        return (u[:-1] ** 2 - u[1:] ** 2) / (2.0 * ds) - car.c_drag * u[:-1] ** 2 / car.mass

    assert np.all(v >= v0 - 1e-9) and v.max() > 1.1 * v0.min() and np.mean(v > v0 + 0.1) > 0.2
    assert braking(v).max() <= car.decel_max * 1.02
    assert braking(v0 * np.sqrt(1.0 / 0.7)).max() > car.decel_max * 1.3
    og._apply(1.0, 0.7)
    np.testing.assert_allclose(v, v0)


def test_a_grip_beyond_the_bank_is_reported_as_a_bound():
    car = load_params("f1tenth")
    T, X = _drive(car, 1.8)
    est = GripEstimator(car)
    for t, x in zip(T, X):
        est.observe(t, x)
    s = est.summary()
    assert s["informed"] and s["grip_scale"] == SCALES[-1] and s["at_bank_edge"] is True
    assert GripEstimator(car).summary()["at_bank_edge"] is False
