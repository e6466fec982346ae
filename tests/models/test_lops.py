"""The lockstep namespace (racing.models.lops): branch-free, libm-free forms equal libm and the sops forms."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from racing.models import lops
from racing.models.fastmath import sincos


@njit(cache=True)
def _eval(xs, out):
    for i in range(xs.shape[0]):
        out[i, 0] = lops.exp(xs[i])
        out[i, 1] = lops.tanh(xs[i])
        out[i, 2], out[i, 3] = lops.sincos(xs[i])
        out[i, 4], out[i, 5] = sincos(xs[i])


def _compiled(xs):
    out = np.zeros((xs.size, 6))
    _eval(xs, out)
    return out


def test_exp_and_tanh_match_libm_to_a_few_ulp():
    xs = np.concatenate([np.linspace(-700.0, 700.0, 20001), np.linspace(-3.0, 3.0, 20001)])
    out = _compiled(xs)
    np.testing.assert_allclose(out[:, 0], np.exp(xs), rtol=4e-16, atol=0)
    np.testing.assert_allclose(out[:, 1], np.tanh(xs), rtol=0, atol=4e-16)
    assert math.isclose(lops.exp(-1000.0), math.exp(-708.0), rel_tol=1e-15)  # clamped: finite, never 0 or inf
    assert math.isclose(lops.exp(1000.0), math.exp(709.0), rel_tol=1e-15)


def test_sincos_equals_the_scalar_form_within_pi_and_libm_beyond():
    xs = np.linspace(-math.pi, math.pi, 40001)
    out = _compiled(xs)
    np.testing.assert_array_equal(out[:, 2:4], out[:, 4:6])  # bit for bit where the scalar form has no libm call
    far = np.linspace(-40.0, 40.0, 8001)
    out = _compiled(far)
    # the reduced angle carries |a| ulp of 2 pi; the polynomial below 0.8 rad is good to 3e-14
    np.testing.assert_allclose(out[:, 2], np.sin(far), rtol=0, atol=5e-14)
    np.testing.assert_allclose(out[:, 3], np.cos(far), rtol=0, atol=5e-14)


def test_python_calls_agree_with_the_compiled_forms():
    for x in (-2.5, -0.3, 0.0, 0.7, 3.0):
        out = _compiled(np.array([x]))[0]
        assert abs(lops.exp(x) - out[0]) <= 1e-15 * out[0]
        assert abs(lops.tanh(x) - out[1]) <= 1e-15
        s, c = lops.sincos(x)
        assert abs(s - out[2]) <= 1e-15 and abs(c - out[3]) <= 1e-15
