"""racing.models.fastmath's float32 tanh: its stated error over the whole line, float32 in and out when compiled."""
from __future__ import annotations

import numpy as np
from numba import njit

from racing.models.fastmath import TANH32_CLAMP, tanh_f32


@njit(cache=True)
def _tanh32(xs, out):
    for i in range(xs.shape[0]):
        out[i] = tanh_f32(xs[i])


def test_tanh_f32_is_within_its_stated_error_everywhere():
    xs = np.concatenate([np.linspace(-30.0, 30.0, 600001), np.linspace(-1e-3, 1e-3, 2001),
                         [-np.inf, np.inf]]).astype(np.float32)
    out = np.empty_like(xs)
    _tanh32(xs, out)
    assert out.dtype == np.float32
    ref = np.tanh(xs.astype(np.float64))
    err = np.abs(out.astype(np.float64) - ref)
    assert err.max() < 4e-7  # the docstring's 3.8e-7 (float32 rounding; the fit itself is 1.4e-9)
    small = np.abs(xs) < 1e-3
    np.testing.assert_allclose(out[small], ref[small], rtol=2e-7, atol=1e-12)  # odd, and x near 0
    assert np.all(np.abs(out) <= 1.0) and np.diff(out[:600001]).min() > -8e-7  # monotone to 2x its error
    assert abs(float(tanh_f32(np.float32(TANH32_CLAMP))) - np.tanh(TANH32_CLAMP)) < 4e-7  # plain Python as well
