"""racing.models.precision: float32 forms of the one-source model compute in float32 and stay near the numpy
reference; what has no float32 form, or promotes, is an error naming it."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from racing.control.horizon import _substep_dynamic, _substep_kinematic
from racing.models import lops32
from racing.models.discrete import dynamic_step_c, kinematic_step_c
from racing.models.fastmath import scalar
from racing.models.ops import NUMPY
from racing.models.params import load_params
from racing.models.precision import check_float32, float32_form


@scalar
def _promotes(x):
    return x * 2  # an int literal: float32 * int64 is float64 in numba


@scalar
def _with_constant(x):
    return 0.1 * x + G


G = 9.81


def _steps(substep):
    form = float32_form(substep)

    @njit
    def steps(X, U, p, h):
        out = np.empty((X.shape[0], 9), dtype=X.dtype)
        for i in range(X.shape[0]):
            st = (X[i, 0], X[i, 1], X[i, 2], X[i, 3], X[i, 4], X[i, 5], X[i, 6], np.cos(X[i, 2]), np.sin(X[i, 2]))
            r = form(st, U[i, 0], U[i, 1], p, h, lops32)
            for k in range(9):
                out[i, k] = r[k]
        return out, form(st, U[0, 0], U[0, 1], p, h, lops32)

    return steps


def _states(n, rng):
    """Racing states: v_x 1-70 m/s, |v_y| and |r| within what a car at the limit shows, steering +-0.35 rad."""
    vx = rng.uniform(1.0, 70.0, n)
    return np.column_stack([rng.uniform(-50, 50, n), rng.uniform(-50, 50, n), rng.uniform(-3, 3, n), vx,
                            rng.uniform(-0.08, 0.08, n) * vx, rng.uniform(-1.0, 1.0, n), rng.uniform(-0.35, 0.35, n)])


@pytest.mark.parametrize("car", ["f1tenth", "gt_car"])
def test_float32_dynamic_substep_computes_in_float32_near_the_reference(car):
    """One sub-step of 0.05 s from 4000 random racing states (some past the limit): float32 throughout, within 1e-5
    of the state's scale (|value|, at least 1) of the float64 one-source step evaluated by numpy (2.6e-6 measured,
    in v_y and r: the implicit step's 2 x 2 solve; positions relative to the start, as the kernel steps them)."""
    rng = np.random.default_rng(0)
    X = _states(4000, rng)
    X[:, :2] = 0.0
    U = np.column_stack([rng.uniform(-3, 3, 4000), rng.uniform(-10, 8, 4000)])
    p = load_params(car).to_array()
    steps = _steps(_substep_dynamic)
    out, last = steps(X.astype(np.float32), U.astype(np.float32), p.astype(np.float32), np.float32(0.05))
    assert out.dtype == np.float32 and len(last) == 9
    check_float32(steps, "the dynamic sub-step")  # the compiled step returns float32 only
    ref = np.column_stack(dynamic_step_c(*X.T, np.cos(X[:, 2]), np.sin(X[:, 2]), U[:, 0], U[:, 1], p, 0.05, NUMPY))
    err = np.abs(out - ref) / np.maximum(np.abs(ref), 1.0)
    assert err.max() < 1e-5, err.max(axis=0)


def test_float32_kinematic_substep_is_near_the_reference():
    rng = np.random.default_rng(1)
    X = _states(2000, rng)
    X[:, :2] = 0.0
    U = np.column_stack([rng.uniform(-1, 1, 2000), rng.uniform(-8, 5, 2000)])
    p = load_params("gt_car").to_array()
    out, _ = _steps(_substep_kinematic)(X.astype(np.float32), U.astype(np.float32), p.astype(np.float32),
                                        np.float32(0.05))
    ref = kinematic_step_c(X[:, 0], X[:, 1], X[:, 2], X[:, 3], X[:, 6], np.cos(X[:, 2]), np.sin(X[:, 2]), U[:, 0],
                           U[:, 1], p, 0.05, NUMPY)
    for k, col in zip((0, 1, 2, 3, 6, 7, 8), ref):
        np.testing.assert_allclose(out[:, k], col, rtol=2e-6, atol=2e-6)


def test_constants_and_globals_become_float32_and_the_form_is_made_once():
    form = float32_form(_with_constant)
    assert float32_form(_with_constant) is form
    assert isinstance(form(np.float32(2.0)), np.float32)  # plain Python: the constants are numpy float32
    assert form(np.float32(2.0)) == np.float32(0.1) * np.float32(2.0) + np.float32(G)


def test_what_has_no_float32_form_is_an_error_naming_it():
    with pytest.raises(ValueError, match="np.cos.*|is not a compiled scalar function"):
        float32_form(np.cos)

    def local(x):
        return x * y

    y = 2.0
    scalar(local)
    with pytest.raises(ValueError, match="local is a closure"):
        float32_form(local)
    form = float32_form(_promotes)

    @njit
    def call(x):
        return form(x)

    call(np.float32(1.0))
    with pytest.raises(ValueError, match="the test function: the float32 form computes in float64"):
        check_float32(call, "the test function")
