"""The residual network for a block of samples (racing.models.residual.make_block_residual) equals the scalar
evaluation sample by sample, and its filter-state update equals the scalar one."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from racing.models.residual import aug_update_nb, make_block_residual, residual_z_nb

LANES = 16
BLOCK, AUG_BLOCK, BLOCK_ROWS = make_block_residual(LANES)
BLOCK32, _, BLOCK_ROWS32 = make_block_residual(LANES, "float32")


@njit(cache=True)
def _block(w, R, f0, h0, o0, z0, a0, dt):
    BLOCK(w, R, f0, h0, o0, LANES)
    AUG_BLOCK(w, R, z0, a0, dt, LANES)


@njit(cache=True)
def _block32(w, R, f0, h0, o0):
    BLOCK32(w, R, f0, h0, o0, LANES)


NETWORKS = [dict(), dict(taus=(), products=False, clip=False), dict(layers=1, clip=False),
            dict(hidden=32, layers=3, seed=4)]


def _inputs(n_aug):
    """x[LANES, 7], u[LANES, 2], fp[LANES, 7], z[LANES, max(n_aug, 1)] (seeded) and the raw features' rows."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1.0, (LANES, 7)) * np.array([5, 5, 1, 3, 0.5, 1, 0.3])
    u = rng.normal(0, 1.0, (LANES, 2)) * np.array([1.0, 4.0])
    fp = rng.normal(0, 2.0, (LANES, 7))
    z = rng.normal(0, 2.0, (LANES, max(n_aug, 1)))
    return x, u, fp, z, np.column_stack([x[:, 3:7], u, fp[:, 3:6], z[:, :n_aug]]).T.ravel()


@pytest.mark.parametrize("kw", NETWORKS)
def test_float32_block_is_within_its_bound_of_the_scalar_residual(kw, make_residual):
    """The float32 block (a float32 copy of the weights, rows in float32) against the float64 scalar evaluation:
    within 2e-6 of the correction's scale (out_std) per output."""
    rw = make_residual(**kw)
    w = rw.flat
    x, u, fp, z, raw = _inputs(rw.n_aug)
    f0 = 0
    h0 = f0 + rw.n_in * LANES
    o0 = h0 + 2 * int(w[2]) * LANES
    assert BLOCK_ROWS32(w) == BLOCK_ROWS(w)
    R = np.full(o0 + 3 * LANES, np.nan, dtype=np.float32)
    R[f0:f0 + raw.size] = raw
    _block32(w.astype(np.float32), R, f0, h0, o0)
    out, work = np.zeros(3), np.zeros(2 * int(w[2]) + rw.n_in)
    err = np.zeros(3)
    for lane in range(LANES):
        residual_z_nb(x[lane], u[lane], fp[lane], z[lane], w, out, work)
        err = np.maximum(err, np.abs(R[o0 + lane:o0 + 3 * LANES:LANES] - out) / rw.out_std)
    assert np.all(err < 2e-6)  # measured up to 3.5e-7 over these four networks


@pytest.mark.parametrize("kw", NETWORKS)
def test_block_equals_the_scalar_residual_per_sample(kw, make_residual):
    rw = make_residual(**kw)
    w, n_aug = rw.flat, rw.n_aug
    x, u, fp, z, raw = _inputs(n_aug)
    # the block: raw features in rows f0 + i, the filter states in rows z0 + q, the accelerations in row a0
    z0, a0 = 0, max(n_aug, 1) * LANES
    f0 = a0 + LANES
    h0 = f0 + rw.n_in * LANES
    o0 = h0 + 2 * int(w[2]) * LANES
    R = np.full(o0 + 3 * LANES, np.nan)
    R[f0:f0 + raw.size] = raw
    R[z0:z0 + n_aug * LANES] = z[:, :n_aug].T.ravel()
    R[a0:a0 + LANES] = u[:, 1]
    assert BLOCK_ROWS(w) == rw.n_in + 2 * int(w[2])
    _block(w, R, f0, h0, o0, z0, a0, 0.02)
    out = np.zeros(3)
    work = np.zeros(2 * int(w[2]) + rw.n_in)
    for lane in range(LANES):
        residual_z_nb(x[lane], u[lane], fp[lane], z[lane], w, out, work)
        np.testing.assert_allclose(R[o0 + lane:o0 + 3 * LANES:LANES], out, rtol=1e-12, atol=1e-12)
        zl = z[lane].copy()
        aug_update_nb(zl, u[lane, 1], w, 0.02)
        np.testing.assert_allclose(R[z0 + lane:z0 + n_aug * LANES:LANES], zl[:n_aug], rtol=0, atol=1e-15)
