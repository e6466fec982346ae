"""racing.models.fastmath's float32 forms (tanh, atan, sincos): their stated errors, float32 in and out when
compiled."""
from __future__ import annotations

import numpy as np
from numba import njit

from racing.models.fastmath import TANH32_CLAMP, atan_f32, sincos_f32, tanh_f32


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


@njit(cache=True)
def _atan32(xs, out):
    for i in range(xs.shape[0]):
        out[i] = atan_f32(xs[i])


@njit(cache=True)
def _sincos32(xs, s, c):
    for i in range(xs.shape[0]):
        s[i], c[i] = sincos_f32(xs[i])


def test_atan_f32_is_within_its_stated_error_everywhere():
    xs = np.concatenate([np.linspace(-60.0, 60.0, 400001), np.logspace(-12, 30, 2001), -np.logspace(-12, 30, 2001),
                         [0.0, -np.inf, np.inf]]).astype(np.float32)
    out = np.empty_like(xs)
    _atan32(xs, out)
    assert out.dtype == np.float32
    err = np.abs(out.astype(np.float64) - np.arctan(xs.astype(np.float64)))
    assert err.max() < 3e-7  # the docstring's bound (1.7e-7 measured)
    near = np.abs(xs) < 1e-3
    np.testing.assert_allclose(out[near], np.arctan(xs[near].astype(np.float64)), rtol=2e-7)  # relative near 0
    assert abs(float(atan_f32(np.float32(0.5))) - np.arctan(0.5)) < 3e-7  # plain Python as well


def test_sincos_f32_is_within_its_stated_error():
    xs = np.concatenate([np.linspace(-100.0, 100.0, 400001), np.linspace(-1e-3, 1e-3, 2001),
                         np.pi / 2 * np.arange(-60, 61)]).astype(np.float32)
    s, c = np.empty_like(xs), np.empty_like(xs)
    _sincos32(xs, s, c)
    assert s.dtype == np.float32 and c.dtype == np.float32
    x64 = xs.astype(np.float64)
    assert np.abs(s - np.sin(x64)).max() < 2e-7 and np.abs(c - np.cos(x64)).max() < 2e-7  # 7.6e-8 measured
    sn, cs = sincos_f32(np.float32(2.5))
    assert abs(sn - np.sin(2.5)) < 2e-7 and abs(cs - np.cos(2.5)) < 2e-7
