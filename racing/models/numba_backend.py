"""numba kernels of the vehicle models: batched derivatives and RK4 over the one-source scalar forms.

Every kernel takes flat arrays only (state ``x[nx]``, input ``u[2]``, parameters ``p[N_PARAMS]``) and writes
into caller-owned buffers, so hot loops allocate nothing. ``model`` selects the equations:
``MODEL_KINEMATIC`` (nx = 5) or ``MODEL_DYNAMIC`` (nx = 7). The right-hand sides are
:func:`racing.models.kinematic.kinematic_rhs_s` and :func:`racing.models.dynamic.dynamic_rhs_s`, the scalar
wrappers of the same component functions the numpy/torch/casadi forms use (no second copy of the physics).
Compiled functions are cached on disk.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from racing.models.fastmath import scalar
from racing.models.dynamic import dynamic_rhs_s
from racing.models.kinematic import kinematic_rhs_s

MODEL_KINEMATIC = 0
MODEL_DYNAMIC = 1
MODEL_NX = (5, 7)
MODEL_NAMES = ("kinematic", "dynamic")
MAX_NX = 7


def model_id(name: str) -> int:
    """'kinematic' -> 0, 'dynamic' -> 1 (ValueError naming the choices otherwise)."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; expected one of {list(MODEL_NAMES)}")
    return MODEL_NAMES.index(name)


@njit(cache=True, inline="always")
def rhs_nb(model, x, u, p, out):
    """Dispatch on ``model`` (MODEL_KINEMATIC | MODEL_DYNAMIC)."""
    if model == MODEL_KINEMATIC:
        kinematic_rhs_s(x, u, p, out)
    else:
        dynamic_rhs_s(x, u, p, out)


def make_rk4(rhs):
    """A compiled RK4 step over the scalar right-hand side ``rhs(x, u, p, out)``:
    ``rk4(x, u, p, dt, out, work)`` writes ``out[nx] = x + dt/6 (k1 + 2k2 + 2k3 + k4)``; ``work[5, >= nx]`` is
    scratch (k1..k4, stage state); ``out`` may alias ``x``. Generic target (CPU and CUDA)."""

    @scalar
    def rk4(x, u, p, dt, out, work):
        nx = x.shape[0]
        k1, k2, k3, k4, xs = work[0], work[1], work[2], work[3], work[4]
        rhs(x, u, p, k1)
        for i in range(nx):
            xs[i] = x[i] + 0.5 * dt * k1[i]
        rhs(xs[:nx], u, p, k2)
        for i in range(nx):
            xs[i] = x[i] + 0.5 * dt * k2[i]
        rhs(xs[:nx], u, p, k3)
        for i in range(nx):
            xs[i] = x[i] + dt * k3[i]
        rhs(xs[:nx], u, p, k4)
        for i in range(nx):
            out[i] = x[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])

    return rk4


rk4_kinematic = make_rk4(kinematic_rhs_s)
rk4_dynamic = make_rk4(dynamic_rhs_s)


@njit(cache=True)
def rk4_step_nb(model, x, u, p, dt, out, work):
    """One RK4 step of ``dt`` [s] of ``model`` (see :func:`make_rk4`)."""
    if model == MODEL_KINEMATIC:
        rk4_kinematic(x, u, p, dt, out, work)
    else:
        rk4_dynamic(x, u, p, dt, out, work)


@njit(cache=True, parallel=True)
def rhs_batch(model, X, U, p, out):
    """Batched derivative: ``out[B, nx] = f(X[B, nx], U[B, 2], p)``, parallel over B."""
    for b in prange(X.shape[0]):
        rhs_nb(model, X[b], U[b], p, out[b])


@njit(cache=True, parallel=True)
def rk4_batch(model, X, U, p, dt, substeps, out):
    """Batched RK4 step of ``dt`` [s] in ``substeps`` sub-steps: ``out[B, nx]`` from ``X[B, nx]``, ``U[B, 2]``."""
    h = dt / substeps
    nx = X.shape[1]
    for b in prange(X.shape[0]):
        work = np.empty((5, nx))
        xb = out[b]
        for i in range(nx):
            xb[i] = X[b, i]
        for _ in range(substeps):
            rk4_step_nb(model, xb, U[b], p, h, xb, work)


def rhs(model: str, X: np.ndarray, U: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Convenience wrapper: batched derivative ``[B, nx]`` (allocates the output)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    U = np.ascontiguousarray(U, dtype=np.float64)
    out = np.empty_like(X)
    rhs_batch(model_id(model), X, U, np.ascontiguousarray(p, dtype=np.float64), out)
    return out
