"""Residual: numpy/numba evaluation equals torch; training reduces error on an unmodelled term."""
from __future__ import annotations

import numpy as np
import pytest

from racing.models.params import load_params
from racing.models.residual import ResidualWeights, load_residual, residual_batch
from racing.sysid.evaluate import evaluate
from racing.sysid.excite import MODERATE, excitation_log

torch = pytest.importorskip("torch")


def _random_weights(layers=2, hidden=8, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [9] + [hidden] * layers + [3]
    return ResidualWeights(weights=[rng.normal(size=(b, a)) * 0.5 for a, b in zip(sizes[:-1], sizes[1:])],
                           biases=[rng.normal(size=b) * 0.1 for b in sizes[1:]],
                           in_mean=rng.normal(size=9), in_std=rng.uniform(0.5, 2, 9), out_mean=rng.normal(size=3),
                           out_std=rng.uniform(0.5, 2, 3), dt=0.02, meta={"note": "test"})


@pytest.mark.parametrize("layers", [1, 3])
def test_numpy_numba_torch_equal(tmp_path, layers):
    from racing.sysid.residual import torch_residual

    rw = _random_weights(layers)
    rng = np.random.default_rng(1)
    x, u, fp = rng.normal(size=(64, 7)), rng.normal(size=(64, 2)), rng.normal(size=(64, 7))
    ref = torch_residual(rw)(torch.from_numpy(x), torch.from_numpy(u), torch.from_numpy(fp)).numpy()
    np.testing.assert_allclose(rw(x, u, fp), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(residual_batch(x, u, fp, rw), ref, rtol=1e-10, atol=1e-12)
    back = load_residual(rw.save(tmp_path / "w.npz"))
    np.testing.assert_allclose(residual_batch(x, u, fp, back), ref, rtol=1e-10, atol=1e-12)
    assert back.meta["note"] == "test"


def test_load_residual_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_residual(tmp_path / "nope.npz")
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a residual weights file"):
        load_residual(tmp_path / "x.npz")


@pytest.mark.slow
def test_residual_training_reduces_error():
    """A plant with load transfer + drivetrain lag; the residual on top of the nominal model."""
    from racing.sysid.residual import train_residual

    p = load_params("f1tenth")
    tr, _ = excitation_log(p, 40.0, seed=1, plant="dynamic_ext", config=MODERATE)
    te, _ = excitation_log(p, 20.0, seed=2, plant="dynamic_ext", config=MODERATE, noise={})
    res = train_residual([tr], p, epochs=8, stride=3)
    assert res.info["val_loss_best"] < 0.9 * res.info["val_loss_initial"]
    ev = evaluate([te], p, res.weights, horizons_s=(0.5,))
    assert ev.rmse["semi-parametric"]["0.5 s"]["yaw_rate"] < 0.97 * ev.rmse["parametric"]["0.5 s"]["yaw_rate"]
