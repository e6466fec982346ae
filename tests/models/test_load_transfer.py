"""Load transfer, combined slip, drive/brake distribution and downforce (racing.models.dynamic) against
hand-computed cases; the plain model when h_cg = 0, combined_slip = 0 and c_down = 0; the car-file checks."""
from __future__ import annotations

import math

import numpy as np
import pytest

from racing.config import ConfigError
from racing.models.dynamic import (ELLIPSE, accel_limits, axle_forces, axle_loads, body_derivatives,
                                   ellipse_factor, grip_limits, pacejka)
from racing.models.ops import NUMPY
from racing.models.params import G, load_params

GT = load_params("gt_car").replace(brake_front=0.65)  # 1200 kg, l_f 1.40, l_r 1.50, h_cg 0.35, mu 1.45, rear drive


def test_axle_loads_by_hand():
    p = GT.to_array()
    # braking at 10 m/s^2: m (g l_r + 10 h) / L to the front, m (g l_f - 10 h) / L at the rear
    fzf, fzr = axle_loads(-10.0, 0.0, p, NUMPY)
    assert fzf == pytest.approx(1200 * (9.81 * 1.5 + 3.5) / 2.9, rel=1e-12)  # 7537.2 N
    assert fzr == pytest.approx(1200 * (9.81 * 1.4 - 3.5) / 2.9, rel=1e-12)  # 4234.8 N
    assert fzf + fzr == pytest.approx(1200 * G)
    # downforce 2 kg/m at 50 m/s = 5000 N, 40 % on the front axle
    q = GT.replace(c_down=2.0, down_front=0.4).to_array()
    f0, r0 = axle_loads(0.0, 0.0, q, NUMPY)
    f1, r1 = axle_loads(0.0, 50.0, q, NUMPY)
    assert (f1 - f0, r1 - r0) == (pytest.approx(2000.0), pytest.approx(3000.0))
    # an axle never unloads below 5 % of its static load
    assert axle_loads(60.0, 0.0, p, NUMPY)[0] == pytest.approx(0.05 * 1200 * G * 1.5 / 2.9)


def test_traction_limits_by_hand():
    p = GT.to_array()
    mu, hl, m = 1.45, 0.35 / 2.9, 1200.0
    fzf0, fzr0 = m * G * 1.5 / 2.9, m * G * 1.4 / 2.9
    lo, hi = grip_limits(0.0, p, NUMPY)
    # rear drive: m a <= mu (F_zr0 + m a h / L)
    assert hi == pytest.approx(mu * fzr0 / (m * (1 - mu * hl)), rel=1e-12)  # 8.32 m/s^2, not mu g = 14.2
    # braking 65/35: front 0.65 m b <= mu (F_zf0 + m b h / L), rear 0.35 m b <= mu (F_zr0 - m b h / L)
    b = min(mu * fzf0 / (m * (0.65 - mu * hl)), mu * fzr0 / (m * (0.35 + mu * hl)))
    assert -lo == pytest.approx(b, rel=1e-12)
    # at that limit the limiting axle uses exactly mu F_z (the closed form is self-consistent)
    fzf, fzr, ft, kf, kr = axle_forces(0.0, -50.0, p, NUMPY)
    assert ft == pytest.approx(-m * b)
    assert max(abs(0.65 * ft) / (mu * fzf), abs(0.35 * ft) / (mu * fzr)) == pytest.approx(1.0, rel=1e-9)
    # the plain model: one limit mu g; power above it at speed
    plain = GT.replace(combined_slip=0.0).to_array()
    assert grip_limits(0.0, plain, NUMPY) == (pytest.approx(-mu * G), pytest.approx(mu * G))
    assert accel_limits(60.0, p, NUMPY)[1] == pytest.approx(GT.power_max / (m * 60.0))


def test_combined_slip_keeps_the_cornering_stiffness_and_lowers_the_peak():
    from racing.models.dynamic import tyre_force_set

    p = GT.to_array()
    # at 20 m/s: a small slip angle (linear range) and a large one (past the peak), coasting vs braking 8 m/s^2
    # (the front's share of the transfer is left out by comparing F_y / F_zf)
    for vy, r, d in ((0.0, 0.0, 0.004), (0.0, 0.0, 0.2)):
        out = {}
        for a in (0.0, -8.0):
            fzf, fzr, ft, kf, kr = axle_forces(20.0, a, p, NUMPY)
            fyf, _, _ = tyre_force_set(20.0, vy, r, d, a, p, NUMPY)
            out[a] = (fyf / fzf, kf)
        if d < 0.01:
            assert out[-8.0][0] == pytest.approx(out[0.0][0], rel=2e-3)  # stiffness kept
        else:
            assert out[-8.0][0] < 0.95 * out[0.0][0]  # saturated: the peak shrank with k_f
            assert out[-8.0][1] < 1.0


def test_friction_ellipse_by_hand():
    p = GT.to_array()
    assert ellipse_factor(0.5 * 1.45 * 4000.0, 4000.0, p, NUMPY) == pytest.approx(math.sqrt(1 - ELLIPSE * 0.25))
    assert ellipse_factor(0.0, 4000.0, p, NUMPY) == 1.0
    assert ellipse_factor(1.45 * 4000.0, 4000.0, p, NUMPY) == pytest.approx(math.sqrt(1 - ELLIPSE))
    assert ellipse_factor(1.45 * 4000.0, 4000.0, GT.replace(combined_slip=0.0).to_array(), NUMPY) == 1.0
    # braking 6 m/s^2 at 30 m/s: each axle's factor from its share of m a at its transferred load
    fzf, fzr, ft, kf, kr = axle_forces(30.0, -6.0, p, NUMPY)
    assert ft == pytest.approx(-7200.0)
    assert kf == pytest.approx(math.sqrt(1 - ELLIPSE * (0.65 * 7200 / (1.45 * fzf)) ** 2))
    assert kr == pytest.approx(math.sqrt(1 - ELLIPSE * (0.35 * 7200 / (1.45 * fzr)) ** 2))


def _plain_reference(vx, vy, r, d, rate, a, q):
    """The plain single-track model written out by hand (static loads, one grip limit, no ellipse), v_x above
    v_blend_high (purely dynamic)."""
    L = q.l_f + q.l_r
    fzf, fzr = q.mass * G * q.l_r / L, q.mass * G * q.l_f / L
    af = d - np.arctan((vy + q.l_f * r) / vx)
    ar = -np.arctan((vy - q.l_r * r) / vx)
    fyf = fzf * pacejka(af, q.B_f, q.C_f, q.D_f, q.E_f)
    fyr = fzr * pacejka(ar, q.B_r, q.C_r, q.D_r, q.E_r)
    drive = np.minimum(q.mass * a, q.power_max / vx)
    fx = np.clip(drive, -q.mu * q.mass * G, q.mu * q.mass * G) - q.c_roll * q.mass * G * np.tanh(
        vx / q.v_blend_low) - q.c_drag * vx * np.abs(vx)
    return ((fx - fyf * np.sin(d)) / q.mass + vy * r, (fyr + fyf * np.cos(d)) / q.mass - vx * r,
            (q.l_f * fyf * np.cos(d) - q.l_r * fyr) / q.inertia_z)


def test_plain_model_is_recovered():
    rng = np.random.default_rng(3)
    n = 500
    vx = rng.uniform(6.0, 70.0, n)
    vy, r = rng.normal(0, 1.0, n), rng.normal(0, 0.4, n)
    d, rate, a = rng.uniform(-0.3, 0.3, n), rng.uniform(-1, 1, n), rng.uniform(-16, 16, n)
    plain = GT.replace(h_cg=0.0, combined_slip=0.0, c_down=0.0)
    got = body_derivatives(vx, vy, r, d, rate, a, plain.to_array(), NUMPY)
    ref = _plain_reference(vx, vy, r, d, rate, a, plain)
    for g_, r_ in zip(got, ref):
        np.testing.assert_allclose(g_, r_, rtol=1e-12, atol=1e-9)
    # and the full car differs from it where it should: braking in a turn unloads the rear
    full = body_derivatives(vx, vy, r, d, rate, a, GT.to_array(), NUMPY)
    assert np.abs(full[2] - got[2]).max() > 0.1


def test_braking_in_a_turn_turns_the_car_in():
    """Trail braking: the front gains load and grip, the rear loses both, so the yaw acceleration towards the
    turn grows with the braking -- the effect that spun the controllers on a load-transferring plant."""
    p = GT.to_array()
    vx, vy, r, d = 30.0, -0.3, 0.25, 0.05  # a left turn, steady-ish
    r_dot = [body_derivatives(vx, vy, r, d, 0.0, a, p, NUMPY)[2] for a in (0.0, -4.0, -8.0)]
    assert r_dot[0] < r_dot[1] < r_dot[2]


def test_car_file_without_the_new_keys_names_them(tmp_path):
    src = (tmp_path / "old.yaml")
    from racing.models.params import params_dir

    text = (params_dir() / "gt_car.yaml").read_text()
    keep = [ln for ln in text.splitlines()
            if not ln.startswith(("combined_slip", "drive_front", "brake_front", "c_down", "down_front"))]
    src.write_text("\n".join(keep) + "\n")
    with pytest.raises(ConfigError) as exc:
        load_params(str(src))
    msg = str(exc.value)
    for key in ("combined_slip", "drive_front", "brake_front", "c_down", "down_front"):
        assert key in msg
    assert "old.yaml" in msg
    with pytest.raises(ConfigError, match="drive_front"):
        GT.replace(drive_front=1.5)
