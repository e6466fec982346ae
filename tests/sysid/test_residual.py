"""Residual: numpy/numba evaluation equals torch; training reduces error on an unmodelled term."""
from __future__ import annotations

import numpy as np
import pytest

from racing.models.params import load_params
from racing.models.residual import (ResidualWeights, aug_init_nb, aug_update_nb, load_residual, n_features,
                                    residual_batch, residual_nb)
from racing.sysid.evaluate import evaluate
from racing.sysid.excite import MODERATE, excitation_log

torch = pytest.importorskip("torch")


def _random_weights(layers=2, hidden=8, seed=0, n_aug=0, products=False):
    rng = np.random.default_rng(seed)
    n_in = n_features(n_aug, products)
    sizes = [n_in] + [hidden] * layers + [3]
    return ResidualWeights(weights=[rng.normal(size=(b, a)) * 0.5 for a, b in zip(sizes[:-1], sizes[1:])],
                           biases=[rng.normal(size=b) * 0.1 for b in sizes[1:]],
                           in_mean=rng.normal(size=n_in), in_std=rng.uniform(0.5, 2, n_in), out_mean=rng.normal(size=3),
                           out_std=rng.uniform(0.5, 2, 3), dt=0.02, meta={"note": "test"},
                           taus=rng.uniform(0.03, 0.3, n_aug), products=products)


@pytest.mark.parametrize("layers,n_aug,products", [(1, 0, False), (3, 0, False), (2, 1, False), (2, 2, True)])
def test_numpy_numba_torch_equal(tmp_path, layers, n_aug, products):
    from racing.sysid.residual import torch_residual

    rw = _random_weights(layers, n_aug=n_aug, products=products)
    rng = np.random.default_rng(1)
    x, u, fp, z = rng.normal(size=(64, 7)), rng.normal(size=(64, 2)), rng.normal(size=(64, 7)), rng.normal(size=(64, n_aug))
    ref = torch_residual(rw)(*(torch.from_numpy(a) for a in (x, u, fp, z))).numpy()
    zz = z if n_aug else None
    np.testing.assert_allclose(rw(x, u, fp, zz), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(residual_batch(x, u, fp, rw, zz), ref, rtol=1e-10, atol=1e-12)
    back = load_residual(rw.save(tmp_path / "w.npz"))
    assert back.n_aug == n_aug and back.products == products
    np.testing.assert_allclose(back.flat, rw.flat)
    np.testing.assert_allclose(residual_batch(x, u, fp, back, zz), ref, rtol=1e-10, atol=1e-12)
    assert back.meta["note"] == "test"
    if n_aug == 0:  # the version-1 call
        out, work = np.empty(3), np.empty(rw.work_size())
        residual_nb(x[0], u[0], fp[0], rw.flat, out, work)
        np.testing.assert_allclose(out, ref[0], rtol=1e-10, atol=1e-12)


def test_filter_state_numpy_equals_numba():
    rw = _random_weights(n_aug=2, products=True)
    w = rw.flat
    assert w[0] == 2 and w[6] == 2 and w[7] == 1 and w[1] == rw.n_in == 9 + 2 * 3
    u = np.array([0.1, 2.5])
    z = np.empty(2)
    aug_init_nb(-1.0, w, z)
    np.testing.assert_array_equal(z, [-1.0, -1.0])
    ref = rw.aug_update(z.copy(), u, 0.02)
    aug_update_nb(z, u[1], w, 0.02)
    np.testing.assert_allclose(z, ref, rtol=1e-14)
    np.testing.assert_allclose(ref, -1.0 + (1 - np.exp(-0.02 / rw.taus)) * 3.5)


def test_load_residual_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_residual(tmp_path / "nope.npz")
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a residual weights file"):
        load_residual(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="pass z"):
        _random_weights(n_aug=1)(np.zeros(7), np.zeros(2), np.zeros(7))


@pytest.mark.slow
def test_residual_training_reduces_error():
    """A plant with load transfer + drivetrain lag; the residual on top of the nominal model.

    Held-out noise-free session; 0.5 s open-loop RMSE. The full-size run (60 s, fitted model, 1 s)
    is ``python tools/sysid_report.py residual``.
    """
    from racing.sysid.residual import train_residual

    p = load_params("f1tenth")
    tr, _ = excitation_log(p, 40.0, seed=1, plant="dynamic_ext", config=MODERATE)
    te, _ = excitation_log(p, 20.0, seed=3, plant="dynamic_ext", config=MODERATE, noise={})
    res = train_residual([tr], p, epochs=8, horizon_s=0.5, stride=3)
    assert res.info["val_loss_best"] < 0.8 * res.info["val_loss_initial"]
    ev = evaluate([te], p, res.weights, horizons_s=(0.5,))
    print(ev.table())
    for k, f in (("vx", 0.7), ("vy", 0.8), ("yaw_rate", 0.8)):  # measured: -53%, -61%, -58%
        assert ev.rmse["semi-parametric"]["0.5 s"][k] < f * ev.rmse["parametric"]["0.5 s"][k], k
