"""The state filter (racing.control.observer): it measures the noise it is given, passes a noise-free measurement
through, takes the noise off a noisy one, and follows a jump at once."""
import numpy as np
import pytest

import racing
from racing.control.observer import StateObserver
from racing.models.params import load_params


@pytest.fixture(scope="module")
def lap():
    """One lap of lab_loop by pure pursuit on the controllers' own model (plant ``dynamic``): the true states
    ``X[N, 7]`` at the ticks ``t[N]`` and the commands ``C[N, 3]`` sent at them."""
    car = load_params("f1tenth")
    res = racing.race(track="lab_loop", car=car, controller="pure_pursuit", plant="dynamic", laps=1, seed=0)
    return car, res.t, res.state, res.command


def _err(est, X):
    """est - X with the yaw difference wrapped."""
    d = est - X
    d[:, 2] = np.remainder(d[:, 2] + np.pi, 2.0 * np.pi) - np.pi
    return d


def _filter(car, t, Z, C, **kw):
    obs = StateObserver(car.to_array(), **kw)
    out = np.zeros_like(Z)
    for k in range(t.size):
        out[k] = obs.update(t[k], Z[k])
        obs.record(*C[k])
    return obs, out


def test_a_noise_free_measurement_passes_through(lap):
    car, t, X, C = lap
    obs, est = _filter(car, t, X, C)
    half = t.size // 2
    err = np.max(np.abs(_err(est[half:], X[half:])), axis=0)
    # a tenth of the noise of a typical localisation stack (racing.assembly.noise_preset) at most
    assert np.all(err < [2e-3, 2e-3, 1e-3, 0.012, 0.012, 0.01, 1e-3]), err


def test_the_noise_is_measured_and_taken_off(lap):
    car, t, X, C = lap
    std = np.array([0.02, 0.02, 0.01, 0.12, 0.12, 0.02, 0.005])
    Z = X + np.random.default_rng(3).normal(0.0, 1.0, X.shape) * std
    obs, est = _filter(car, t, Z, C)
    measured = np.sqrt(obs.R)
    np.testing.assert_allclose(measured[3:6], std[3:6], rtol=0.3)  # v_x, v_y, r: the noise the filter weighs
    half = t.size // 2
    rms_meas = np.sqrt(np.mean(_err(Z[half:], X[half:]) ** 2, axis=0))
    rms_est = np.sqrt(np.mean(_err(est[half:], X[half:]) ** 2, axis=0))
    assert np.all(rms_est[3:5] < 0.7 * rms_meas[3:5]), (rms_est, rms_meas)  # the speeds' noise at least 30 % down
    assert np.all(rms_est <= 1.05 * rms_meas), (rms_est, rms_meas)  # and no state made worse


def test_a_jump_is_followed_at_once_and_a_bad_measurement_passes_through(lap):
    car, t, X, C = lap
    std = np.array([0.02, 0.02, 0.01, 0.12, 0.12, 0.02, 0.005])
    Z = X + np.random.default_rng(4).normal(0.0, 1.0, X.shape) * std
    k = t.size // 2
    Z[k:, 1] += 1.0  # the car pushed 1 m sideways (in y) from tick k on
    obs, est = _filter(car, t[: k + 1], Z[: k + 1], C[: k + 1])
    assert abs(est[k, 1] - Z[k, 1]) < 1e-9
    z = Z[k + 1].copy()
    z[4] = np.nan
    assert np.isnan(obs.update(t[k + 1], z)[4])  # a non-finite measurement is not hidden from the controller
