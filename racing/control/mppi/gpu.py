"""MPPI on a CUDA GPU, compiled by numba-cuda from the CPU kernels' own source (the ``[cuda]`` extra).

:func:`rollout_kernel` wraps the one-sample rollout of :func:`racing.control.mppi.step.make_kernels` (a function
registered for numba's CPU and CUDA targets: the rollout model's step, the cost's stage and terminal terms, the noise
generator, the input clamp) in a ``cuda.jit`` kernel with one thread per sample. No model or cost math is written
here: the discrete models of :mod:`racing.models.discrete` and the cost terms of :mod:`racing.control.costs`
compile into device code as they are (``racing.models.fastmath.scalar`` registers each of them for the CUDA target
as a plain device function, which NVVM inlines).

:class:`DeviceIteration` is the whole MPPI iteration on the device, the CPU iteration's algorithm step for step
(:func:`racing.control.mppi.step.make_kernels`): the rollouts with their noise, the weights (one block, tree
reductions), the weighted update (a block per horizon step), the Savitzky-Golay smoothing and the nominal rollout
of the result (one block). The model's parameters, the residual's weights, the track table, the normal table and
every buffer live in device memory, made once; per iteration one copy in (state, warm-started inputs, noise scales,
residual filter states: a few hundred bytes) and one copy out (the plan: inputs, states, the costs' minimum, the
normaliser, the effective sample size). The samples, costs and weights stay on the device unless diagnostics ask
for them. ``MPPI(device="cuda")`` (``racing race --device cuda``) uses it.

Checked without a GPU: every kernel compiles into PTX, and the device iteration gives the CPU iteration's plan for
the same seed in numba's CUDA simulator, with and without a residual (``tests/control/test_mppi_gpu.py``); on a GPU
the same comparison and a closed-loop race run as the tests marked ``gpu``. Timed on an H200 (an earlier session,
rollouts only): 0.59 ms at K = 2048, 2.0 ms at K = 131072, T = 50 (``tools/gpu_check.py``).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64  # this module is the CUDA backend: imported only where a GPU is used

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



# ------------------------------------------------------------------------------------------------
# the rest of the iteration: weights, update, smoothing + nominal rollout
# ------------------------------------------------------------------------------------------------
#: most threads of the reduction blocks (the size of their shared arrays); a block has a power of two up to this
RED = 256
#: the scalars of the output pack: min cost, nominal cost, eta, sum of the squared weights
O_SMIN, O_CNOM, O_ETA, O_W2 = 0, 1, 2, 3
N_OUT = 4


def block_threads(n: int, top: int = RED) -> int:
    """The power of two threads of a reduction block over ``n`` items (at least 1, at most ``top``)."""
    b = 1
    while b < n and b < top:
        b *= 2
    return b


@cuda.jit(device=True)
def _tree(red, tid, nt, op_min):
    """Reduce ``red[:nt]`` into ``red[0]`` (min when ``op_min``, else sum); every thread of the block calls it."""
    h = nt // 2
    while h > 0:
        if tid < h:
            if op_min:
                if red[tid + h] < red[tid]:
                    red[tid] = red[tid + h]
            else:
                red[tid] += red[tid + h]
        cuda.syncthreads()
        h //= 2


@cuda.jit
def weights_kernel(S, lam, w, out):
    """One block: ``w[K] = exp(-(S - min S) / lam) / eta`` with the rules of
    :func:`racing.control.mppi.step.compute_weights` (non-finite S -> 0; none finite -> uniform);
    ``out[O_SMIN]`` the least finite cost (inf if none), ``out[O_ETA]`` eta, ``out[O_W2]`` sum w^2."""
    red = cuda.shared.array(RED, float64)
    tid, nt, K = cuda.threadIdx.x, cuda.blockDim.x, S.shape[0]
    m = math.inf
    for k in range(tid, K, nt):
        if math.isfinite(S[k]) and S[k] < m:
            m = S[k]
    red[tid] = m
    cuda.syncthreads()
    _tree(red, tid, nt, True)
    m = red[0]
    cuda.syncthreads()
    acc = 0.0
    for k in range(tid, K, nt):
        wk = math.exp(-(S[k] - m) / lam) if (math.isfinite(m) and math.isfinite(S[k])) else 0.0
        w[k] = wk
        acc += wk
    red[tid] = acc
    cuda.syncthreads()
    _tree(red, tid, nt, False)
    eta = red[0]
    cuda.syncthreads()
    ok = eta > 0.0 and math.isfinite(eta)
    inv = 1.0 / eta if ok else 0.0
    acc = 0.0
    for k in range(tid, K, nt):
        wk = w[k] * inv if ok else 1.0 / K
        w[k] = wk
        acc += wk * wk
    red[tid] = acc
    cuda.syncthreads()
    _tree(red, tid, nt, False)
    if tid == 0:
        out[O_SMIN] = m
        out[O_ETA] = eta if ok else float(K)
        out[O_W2] = red[0]


@cuda.jit
def update_kernel(V, w, Vn):
    """Block t of T: ``Vn[t, :] = sum_k w[k] V[k, t, :]`` (a tree reduction over the samples)."""
    r0 = cuda.shared.array(RED, float64)
    r1 = cuda.shared.array(RED, float64)
    t, tid, nt, K = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x, V.shape[0]
    a0 = 0.0
    a1 = 0.0
    for k in range(tid, K, nt):
        a0 += w[k] * V[k, t, 0]
        a1 += w[k] * V[k, t, 1]
    r0[tid] = a0
    r1[tid] = a1
    cuda.syncthreads()
    h = nt // 2
    while h > 0:
        if tid < h:
            r0[tid] += r0[tid + h]
            r1[tid] += r1[tid + h]
        cuda.syncthreads()
        h //= 2
    if tid == 0:
        Vn[t, 0] = r0[0]
        Vn[t, 1] = r1[0]


_NOMINAL: dict = {}


def nominal_kernel(model: S.RolloutModel, cost: S.RolloutCost):
    """The kernel ``nominal[1, threads](x0, m, ca, qtab, no_noise, i0, s0, u_prev, M, Vn, U_new, X, eps_dummy,
    traj_dummy, ZR, out)`` (one block, a thread per horizon step): ``U_new = M @ Vn`` (Savitzky-Golay), then thread
    0 rolls the smoothed inputs out without noise (clamped inputs into ``Vn``, states into ``X[T+1, 7]``, its cost
    into ``out[O_CNOM]``), then ``U_new = Vn``: the CPU iteration's last steps."""
    key = (model.name, cost.name, model.step, cost.stage)
    if key in _NOMINAL:
        return _NOMINAL[key]
    rollout = S.make_kernels(model, cost).rollout

    @cuda.jit
    def nominal(x0, m, ca, qtab, no_noise, i0, s0, u_prev, M, Vn, U_new, X, eps_dummy, traj_dummy, ZR, out):
        tid, nt, T = cuda.threadIdx.x, cuda.blockDim.x, Vn.shape[0]
        for t in range(tid, T, nt):
            a0 = 0.0
            a1 = 0.0
            for j in range(T):
                a0 += M[t, j] * Vn[j, 0]
                a1 += M[t, j] * Vn[j, 1]
            U_new[t, 0] = a0
            U_new[t, 1] = a1
        cuda.syncthreads()
        if tid == 0:
            out[O_CNOM] = rollout(0, x0, U_new, eps_dummy[0], Vn, no_noise, 0.0, m, ca, i0, s0, u_prev, False, 0,
                                  qtab, False, traj_dummy[0], False, X, True, ZR[0])
        cuda.syncthreads()
        for t in range(tid, T, nt):
            U_new[t, 0] = Vn[t, 0]
            U_new[t, 1] = Vn[t, 1]

    _NOMINAL[key] = nominal
    return nominal


class DeviceIteration:
    """MPPI's iteration on the GPU for one controller (:class:`racing.control.mppi.controller.MPPI`), its buffers and
    parameters in device memory (module doc). ``run(...)`` is the CPU iteration's call (same arguments, same
    results): it writes the plan into the controller's ``U`` and ``X`` and returns ``(min cost, nominal cost, eta,
    ESS)``. ``params_changed()`` marks the model parameters and the track table for upload before the next
    iteration (the online grip estimate rewrites them); ``fetch_samples(n)`` copies the costs, weights and the first
    ``n`` recorded trajectories into the controller's host buffers (diagnostics)."""

    def __init__(self, ctrl, threads_per_block: int = 128):
        K, T, n_z = ctrl.K, ctrl.T, ctrl.z.size
        self.ctrl, self.K, self.T, self.tpb = ctrl, K, T, threads_per_block
        self.rollouts = rollout_kernel(ctrl.model, ctrl.cost)
        self.nominal = nominal_kernel(ctrl.model, ctrl.cost)
        self.stream = cuda.stream()
        b = ctrl.buf
        # input pack: x0[7], u_prev[2], noise (sigma_0, sigma_1, rho_0, rho_1), z0[n_z], U[T, 2]
        self.i_u, self.i_s, self.i_z, self.i_U = 7, 9, 13, 13 + n_z
        self.h_in = _pinned(self.i_U + 2 * T)
        self.d_in = cuda.device_array(self.h_in.size)
        # output pack: the scalars, U_new[T, 2], X[T+1, 7]
        self.o_U, self.o_X = N_OUT, N_OUT + 2 * T
        self.h_out = _pinned(self.o_X + (T + 1) * S.NSTATE)
        self.d_out = cuda.device_array(self.h_out.size)
        d_in, d_out = self.d_in, self.d_out
        self.x0, self.u_prev, self.sigma = d_in[:7], d_in[7:9], d_in[9:13]
        self.z0, self.U = d_in[13:13 + n_z], d_in[self.i_U:].reshape((T, 2))
        self.U_new, self.X = d_out[self.o_U:self.o_X].reshape((T, 2)), d_out[self.o_X:].reshape((T + 1, S.NSTATE))
        self.V, self.S, self.w = cuda.device_array((K, T, 2)), cuda.device_array(K), cuda.device_array(K)
        self.Vn, self.M = cuda.device_array((T, 2)), cuda.to_device(b.M)
        self.traj, self.ZR = cuda.device_array(b.traj.shape), cuda.to_device(b.ZR)
        self.eps_dummy, self.traj_dummy = cuda.to_device(b.eps_dummy), cuda.to_device(b.traj_dummy)
        self.eps = cuda.device_array((1, T, 2))
        self.no_noise, self.qtab = cuda.to_device(S.NO_NOISE), cuda.to_device(ctrl.qtab)
        self.p, self.rw = cuda.to_device(ctrl.p), cuda.to_device(ctrl.rw if ctrl.rw.size else np.zeros(1))
        self.margs = S.ModelArgs(p=self.p, dt=ctrl.margs.dt, nsub=ctrl.margs.nsub, rw=self.rw, z0=self.z0)
        self.nargs = S.NoiseArgs(sigma=self.sigma, qtab=self.qtab)
        self.cargs = to_device(ctrl.cost_args)
        self.tab = self.cargs[1] if ctrl.racing else None  # the racing cost's track table (the grip rewrites it)
        self.ntw, self.ntu, self.ntn = block_threads(K), block_threads(K, 128), block_threads(T, 512)
        self._dirty = False

    def params_changed(self) -> None:
        self._dirty = True

    def _upload_params(self) -> None:
        c = self.ctrl
        self.p.copy_to_device(c.p, stream=self.stream)
        if self.tab is not None:
            self.tab.copy_to_device(c.tab, stream=self.stream)
        self._dirty = False

    def _pack_in(self, x0, U, u_prev, noise, z) -> None:
        h = self.h_in
        h[:7] = x0
        h[7:9] = u_prev
        h[9:13] = noise
        h[13:13 + z.size] = z
        h[self.i_U:] = U.reshape(-1)

    def run(self, x0, U, u_prev, noise, z, i0, s0, seed, lam, gamma, gen, store_noise, n_rec, eps=None):
        """One iteration (arguments as :func:`racing.control.mppi.step.make_kernels`' ``iteration``; ``noise[4]`` the
        noise scales, ``z`` the residual's running filter states, ``eps[K, T, 2]`` the noise when not generated).
        Writes ``U`` (the plan's inputs, in place) and the controller's ``X``; returns ``(smin, cnom, eta, ess)``."""
        st, K, c = self.stream, self.K, self.ctrl
        if self._dirty:
            self._upload_params()
        self._pack_in(x0, U, u_prev, noise, z)
        self.d_in.copy_to_device(self.h_in, stream=st)
        d_eps = self.eps
        if not gen or store_noise:
            if d_eps.shape[0] != K:
                self.eps = d_eps = cuda.device_array((K, self.T, 2))
            if not gen:
                d_eps.copy_to_device(eps, stream=st)
        self.rollouts[(K + self.tpb - 1) // self.tpb, self.tpb, st](
            self.x0, self.U, self.margs, self.cargs, self.nargs, i0, s0, self.u_prev, seed, gamma, gen, store_noise,
            n_rec, self.V, self.S, d_eps, self.traj, self.X, self.ZR)
        weights_kernel[1, self.ntw, st](self.S, lam, self.w, self.d_out)
        update_kernel[self.T, self.ntu, st](self.V, self.w, self.Vn)
        self.nominal[1, self.ntn, st](self.x0, self.margs, self.cargs, self.qtab, self.no_noise, i0, s0, self.u_prev,
                                      self.M, self.Vn, self.U_new, self.X, self.eps_dummy, self.traj_dummy, self.ZR,
                                      self.d_out)
        self.d_out.copy_to_host(self.h_out, stream=st)
        if store_noise and eps is not None:
            d_eps.copy_to_host(eps, stream=st)
        st.synchronize()
        h = self.h_out
        U.reshape(-1)[:] = h[self.o_U:self.o_X]
        c.X.reshape(-1)[:] = h[self.o_X:]
        w2 = h[O_W2]
        return float(h[O_SMIN]), float(h[O_CNOM]), float(h[O_ETA]), 1.0 / max(float(w2), 1e-300)

    def fetch_samples(self, n: int) -> None:
        """Copy the costs ``S[K]``, weights ``w[K]``, clamped inputs ``V[K, T, 2]`` and the first ``n`` recorded xy
        trajectories into the controller's host buffers (``Sk``, ``w``, ``V``, ``traj``)."""
        c = self.ctrl
        self.S.copy_to_host(c.Sk, stream=self.stream)
        self.w.copy_to_host(c.w, stream=self.stream)
        self.V.copy_to_host(c.V, stream=self.stream)
        if n > 0:
            self.traj.copy_to_host(c.traj, stream=self.stream)
        self.stream.synchronize()


def _pinned(n: int) -> np.ndarray:
    """A page-locked host buffer of ``n`` doubles (faster, asynchronous copies), or a plain one in the simulator."""
    try:
        return cuda.pinned_array(n, dtype=np.float64)
    except (AttributeError, NotImplementedError, TypeError):
        return np.zeros(n)


__all__ = ["DeviceIteration", "block_threads", "launch", "nominal_kernel", "rollout_kernel", "to_device",
           "update_kernel", "weights_kernel"]
