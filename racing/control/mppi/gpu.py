"""MPPI rollouts on a CUDA GPU, compiled by numba-cuda from the CPU kernels' own source (the ``[cuda]`` extra).

:func:`rollout_kernel` wraps the one-sample rollout of :func:`racing.control.mppi.step.make_kernels` (a function
registered for numba's CPU and CUDA targets: the rollout model's step, the cost's stage and terminal terms, the noise
generator, the input clamp) in a ``cuda.jit`` kernel with one thread per sample. No model or cost math is written
here: the discrete models of :mod:`racing.models.discrete` and the cost terms of :mod:`racing.control.costs`
compile into device code as they are (``racing.models.fastmath.scalar`` registers each of them for the CUDA target
as a plain device function, which NVVM inlines). Known limit (numba-cuda 0.30): compile the CUDA kernel in a
process before the CPU kernels (``racing.models.fastmath._cuda_overload``).

What runs on the device is the rollouts (K samples x T steps, the bulk of an iteration); the weights, the update
and the smoothing are the host's (:func:`racing.control.mppi.step.compute_weights`,
:func:`racing.control.mppi.step.mppi_step_numpy`). Checked: the kernel compiles into PTX on a machine without a
GPU (``tests/control/test_mppi_gpu.py``), and it gives the CPU kernel's costs and inputs in numba's CUDA simulator;
on a GPU the same comparison runs as the test marked ``gpu`` (passed on an H200: S to 1.5e-15, V to 5.8e-16, the
noise bit for bit; ``tools/gpu_check.py`` times it: 0.59 ms at K = 2048, 2.0 ms at K = 131072, T = 50).
"""
from __future__ import annotations

import numpy as np
from numba import cuda  # this module is the CUDA backend: imported only where a GPU is used

from racing.control.mppi import step as S

_KERNELS: dict = {}


def rollout_kernel(model: S.RolloutModel, cost: S.RolloutCost):
    """The CUDA kernel ``rollouts[blocks, threads](x0, U, m, ca, nz, i0, s0, u_prev, seed, gamma, gen, store_noise,
    n_rec, V, S, eps, traj, X, ZR)`` for one (rollout model, cost) pair (built once per process).

    Arguments as the CPU iteration's (:func:`racing.control.mppi.step.make_kernels`): the start state ``x0[7]``,
    the nominal inputs ``U[T, 2]``, :class:`~racing.control.mppi.step.ModelArgs` ``m``, the cost's arguments ``ca``,
    :class:`~racing.control.mppi.step.NoiseArgs` ``nz``; thread k writes sample k's clamped inputs ``V[k]``, its
    cost ``S[k]`` (control cost included), its xy track ``traj[k]`` when ``k < n_rec`` and, generating with
    ``store_noise``, its noise ``eps[k]``. ``eps[K, T, 2]`` is read when ``gen`` is false; ``X`` is a dummy
    ``[T+1, 7]`` (the nominal rollout stays on the host); ``ZR[K, ...]`` the residual rows (``[1, 1]`` without a
    residual).
    """
    key = (model.name, cost.name, model.step, cost.stage)
    if key in _KERNELS:
        return _KERNELS[key]
    rollout = S.make_kernels(model, cost).rollout

    @cuda.jit
    def rollouts(x0, U, m, ca, nz, i0, s0, u_prev, seed, gamma, gen, store_noise, n_rec, V, S_out, eps, traj, X,
                 ZR):
        k = cuda.grid(1)
        K = V.shape[0]
        if k < K:
            rec = k < n_rec
            kr = k if rec else 0
            ke = k if (store_noise or not gen) else 0
            kz = k if ZR.shape[0] == K else 0
            S_out[k] = rollout(k, x0, U, eps[ke], V[k], nz.sigma, gamma, m, ca, i0, s0, u_prev, gen, seed, nz.qtab,
                               store_noise, traj[kr], rec, X, False, ZR[kz])

    _KERNELS[key] = rollouts
    return rollouts


def to_device(args):
    """``args`` (an array, or a tuple or namedtuple of them, nested) with every numpy array copied to the device once:
    a launch given host arrays copies each of them there and back (the model's and the cost's parameters, the track
    table, the noise scales), which made a launch take 1.7 ms at K = 2048 and K = 32768 alike (H200)."""
    if isinstance(args, np.ndarray):
        return cuda.to_device(args)
    if isinstance(args, tuple):
        vals = [to_device(a) for a in args]
        return type(args)(*vals) if hasattr(args, "_fields") else tuple(vals)
    return args


def launch(kernel, K: int, *args, threads_per_block: int = 128) -> None:
    """Run ``kernel`` over ``K`` samples (``ceil(K / threads_per_block)`` blocks)."""
    kernel[(K + threads_per_block - 1) // threads_per_block, threads_per_block](*args)


__all__ = ["launch", "rollout_kernel", "to_device"]
