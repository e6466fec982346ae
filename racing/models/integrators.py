"""Discretisation as wrappers around a continuous model ``f(x, u, p) -> xdot``.

``rk4(f, dt)`` and ``euler(f, dt)`` return ``step(x, u, p) -> x_next`` with the same array
conventions as ``f`` (any batch shape ``x[..., nx]``, ``u[..., nu]``); ``substeps`` splits
``dt`` [s] into equal sub-steps with the input held (zero-order hold).
``linearize(f)`` returns ``jac(x, u, p) -> (A[nx, nx], B[nx, nu])`` by central differences.
"""
from __future__ import annotations

import numpy as np


def euler(f, dt: float, substeps: int = 1):
    """Explicit Euler discretisation of ``f`` over ``dt`` [s]."""
    h = dt / substeps

    def step(x, u, p):
        for _ in range(substeps):
            x = x + h * f(x, u, p)
        return x

    return step


def rk4(f, dt: float, substeps: int = 1):
    """Classic 4th-order Runge-Kutta discretisation of ``f`` over ``dt`` [s]."""
    h = dt / substeps

    def step(x, u, p):
        for _ in range(substeps):
            k1 = f(x, u, p)
            k2 = f(x + 0.5 * h * k1, u, p)
            k3 = f(x + 0.5 * h * k2, u, p)
            k4 = f(x + h * k3, u, p)
            x = x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return x

    return step


def linearize(f, eps: float = 1e-6):
    """Jacobians of ``f`` by central differences: ``jac(x[nx], u[nu], p) -> (A[nx,nx], B[nx,nu])``."""

    def jac(x, u, p):
        x = np.asarray(x, dtype=float)
        u = np.asarray(u, dtype=float)
        nx, nu = x.shape[-1], u.shape[-1]
        A = np.empty((nx, nx))
        B = np.empty((nx, nu))
        for i in range(nx):
            d = np.zeros(nx)
            d[i] = eps
            A[:, i] = (f(x + d, u, p) - f(x - d, u, p)) / (2 * eps)
        for j in range(nu):
            d = np.zeros(nu)
            d[j] = eps
            B[:, j] = (f(x, u + d, p) - f(x, u - d, p)) / (2 * eps)
        return A, B

    return jac
