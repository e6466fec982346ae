r"""The MPPI step: a pure function with explicit randomness, in numba (fast) and numpy (reference).

One iteration from the state ``x0`` with the warm-started nominal inputs ``U[T, 2]``
(u = (steering rate [rad/s], acceleration [m/s^2])) and standard-normal noise ``eps[K, T, 2]``::

    v_{k,t}  = clamp(U_t + sigma * eps_{k,t})                  clamped samples (limits below)
    S_k      = cost(rollout(x0, v_k)) + gamma sum_t U_t^T Sigma^-1 (v_{k,t} - U_t),   gamma = lambda (1 - alpha)
    w_k      = exp(-(S_k - min S) / lambda) / eta,   eta = sum_k exp(-(S_k - min S) / lambda)
    U'       = SG(sum_k w_k v_k)                                 Savitzky-Golay smoothing over the horizon

Limits are respected exactly: |u0| <= steer_rate_max and the rate is cut so that the steering
angle stays in [-steer_max, steer_max] at the end of each step; u1 in [-decel_max, accel_max].
The clamped samples are what the rollouts, the control cost and the update use (so U' is a
convex combination of feasible sequences). Non-finite costs get zero weight; if no cost is
finite the weights are uniform.

**Kernels are assembled, not switched.** :func:`make_kernels` builds the compiled iteration from a
*rollout model* (:class:`RolloutModel`: start, step) and a *cost* (:class:`RolloutCost`: start, stage,
terminal), chosen at construction: the per-sample, per-step loop has no branch on a model or cost id. Arguments
travel in small typed containers (:class:`ModelArgs`, :class:`NoiseArgs`, :class:`Buffers`; the cost's own
tuple). The rollout state is the 9-tuple (x, y, psi, v_x, v_y, r, delta, cos psi, sin psi).

Rollout models (:data:`KINEMATIC`, :data:`DYNAMIC`, :data:`SEMI_PARAMETRIC`) are the discrete steps of
:mod:`racing.models.discrete` (the one source of the model math, shared with the numpy reference below,
iLQR and the tests that hold it to RK4 of the continuous model); the kinematic model keeps v in the v_x slot
and zeros in v_y, r. The racing cost (:data:`RACING`) is :func:`racing.control.costs.racing_stage`; the
benchmark's circle cost is defined in :mod:`racing.bench` the same way.

Residual (``rw``: flat weights of :mod:`racing.models.residual`; the semi-parametric rollout model):
each rollout step from (x, u) first evaluates ``fp = dynamic_rhs_s(x, u, p)`` and the
correction ``g(x, u, fp, z)`` at the step start, integrates the physics step as above, adds
``dt * g`` to (v_x, v_y, r), then advances the sample's own filter states ``z`` with ``u[1]``
(:func:`racing.models.residual.aug_update_nb`). Every rollout starts from the controller's
running ``z0``.

Noise: either given (``noise_mode = NOISE_GIVEN``) or generated inside the kernel
(``NOISE_GENERATE``) by a per-sample xorshift64* stream seeded with splitmix64(seed, k) and a
table inverse CDF of the normal distribution (4096 equal-probability cells, linear inside a
cell, truncated at +-3.5 sigma, variance 1). Generated noise may be correlated in time, per
input j an AR(1) sequence ``e_0 = n_0, e_t = rho_j e_{t-1} + sqrt(1 - rho_j^2) n_t`` (variance 1;
``rho = 0``: white), so that a sample's first inputs are tied to its whole sequence and hence to
its cost. Sample 0 of generated noise is the noise-free nominal. ``store_noise`` writes the
generated (correlated) noise into ``eps`` so that the numpy reference can be fed the very same
numbers. The control-cost term keeps the white-noise form (``Sigma = diag(sigma^2)``).

Noise parameters reach the kernels as ``sigma[4] = (sigma_0, sigma_1, rho_0, rho_1)`` (the numpy
reference uses the first two).
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable
from numba.np.unsafe.ndarray import to_fixed_tuple

from racing.control import costs as C
from racing.control.costs import N_COST_PARAMS
from racing.control.horizon import (  # noqa: F401
    DYNAMIC,
    KINEMATIC,
    RES_CORR,
    RES_FP,
    RES_U,
    RES_WORK,
    RES_X,
    SEMI_PARAMETRIC,
    ModelArgs,
    RolloutModel,
    clamp_inputs,
    model_in_registers,
    project_state,
)
from racing.models import sops
from racing.models.discrete import dynamic_step_c, kinematic_step_c
from racing.models.dynamic import dynamic_rhs
from racing.models.fastmath import FM, scalar
from racing.models.ops import NUMPY

NOISE_GIVEN = 0
NOISE_GENERATE = 1
#: noise parameters (sigma_0, sigma_1, rho_0, rho_1) of a noise-free rollout
NO_NOISE = np.zeros(4)
NSTATE = 7
N_NORMAL_CELLS = 4096
#: samples per parallel task of the rollout loop
CHUNK = 16
#: noise: sigma[4] = (sigma_0, sigma_1, rho_0, rho_1), the normal table qtab[4097]
NoiseArgs = namedtuple("NoiseArgs", "sigma qtab")
#: the iteration's buffers (made once): samples V[K, T, 2], costs S[K], weights w[K], update U_new[T, 2],
#: nominal states X[T+1, 7] and inputs Vn[T, 2], smoothing matrix M[T, T], recorded xy traj[n, T+1, 2],
#: noise eps[K or 1, T, 2], residual rows ZR[K or 1, ...], dummies for the nominal rollout, and the lockstep
#: kernel's per-thread scratch LX[threads, n] (:func:`racing.control.mppi.lockstep.scratch`; [1, 1] otherwise)
Buffers = namedtuple("Buffers", "V S w U_new X Vn M traj eps ZR eps_dummy traj_dummy LX")


@scalar
def same(ca):
    """The cost arguments as they are (a :class:`RolloutCost` without small parameter arrays to hoist)."""
    return ca


#: a cost: ``start(ca, i0, s0)``, ``stage(...)``, ``terminal(...)`` (below) and ``in_registers(ca)``, the arguments
#: with their small parameter arrays as tuples (once per chunk of samples: values that live in registers, so that
#: the compiler hoists what depends on them alone out of the step loop; default: :func:`same`)
RolloutCost = namedtuple("RolloutCost", "name start stage terminal in_registers", defaults=(same,))


def residual_buffers(K: int, rw_flat: np.ndarray) -> np.ndarray:
    """Per-sample residual buffer ``ZR[K, nz + 19 + 2 n_hidden + n_in]`` (filter states ``z``, then scratch) for the
    flat weights ``rw_flat``; with no residual (``rw_flat.size == 0``) a ``[1, 1]`` dummy (never written)."""
    if rw_flat.size == 0:
        return np.zeros((1, 1))
    n_aug, nh = int(rw_flat[6]), int(rw_flat[2])
    return np.zeros((K, max(n_aug, 1) + RES_WORK + 2 * nh + int(rw_flat[1])))


def normal_table() -> np.ndarray:
    """Cell edges ``q[4097]`` of the table inverse CDF (variance exactly 1)."""
    from scipy.special import ndtri

    j = np.arange(N_NORMAL_CELLS + 1)
    q = ndtri((j + 0.5) / (N_NORMAL_CELLS + 1))
    a, b = q[:-1], q[1:]
    var = np.mean((a * a + a * b + b * b) / 3.0)
    return np.ascontiguousarray(q / math.sqrt(var))


def smoothing_matrix(T: int, window: int, order: int) -> np.ndarray:
    """Savitzky-Golay smoother as a matrix ``M[T, T]`` (``U_s = M @ U``); windows shift inwards at the ends."""
    if window <= 1 or T < 2:
        return np.eye(T)
    w = min(window, T if T % 2 == 1 else T - 1)
    if w <= order:
        return np.eye(T)
    h = w // 2
    M = np.zeros((T, T))
    for t in range(T):
        lo = min(max(t - h, 0), T - w)
        idx = np.arange(lo, lo + w)
        A = np.vander(idx - t, order + 1, increasing=True).astype(float)
        coef = np.linalg.pinv(A)[0]  # value of the fitted polynomial at t
        M[t, idx] = coef
    return M


# ------------------------------------------------------------------------------------------------
# random numbers
# ------------------------------------------------------------------------------------------------
@scalar
def _splitmix(seed, k):
    z = np.uint64(seed) + np.uint64(k + 1) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    if z == np.uint64(0):
        z = np.uint64(0x2545F4914F6CDD1D)
    return z


@scalar
def _normal(s, qtab):
    """One draw: (new state, standard normal) from xorshift64* and the table inverse CDF."""
    s ^= s >> np.uint64(12)
    s ^= s << np.uint64(25)
    s ^= s >> np.uint64(27)
    r = s * np.uint64(0x2545F4914F6CDD1D)
    j = np.int64(r >> np.uint64(52))
    f = np.float64((r >> np.uint64(20)) & np.uint64(0xFFFFFFFF)) * 2.3283064365386963e-10
    a = qtab[j]
    return s, a + f * (qtab[j + 1] - a)


@scalar
def noise_constants(sg):
    """``(1/sigma_0^2, 1/sigma_1^2, sqrt(1 - rho_0^2), sqrt(1 - rho_1^2))`` of the noise parameters ``sg[4]`` (the
    inverse variances 0 for a zero sigma)."""
    sig0, sig1 = sg[0], sg[1]
    inv0 = 1.0 / (sig0 * sig0) if sig0 > 0.0 else 0.0
    inv1 = 1.0 / (sig1 * sig1) if sig1 > 0.0 else 0.0
    return inv0, inv1, math.sqrt(1.0 - sg[2] * sg[2]), math.sqrt(1.0 - sg[3] * sg[3])


@scalar
def draw(s, t, k, e0, e1, sg, cr0, cr1, qtab):
    """Step ``t`` of sample ``k``'s generated noise: ``(stream state, e_0, e_1)`` from the stream state ``s`` and the
    previous step's ``(e0, e1)``: AR(1) with stationary variance 1 and correlation ``sg[2], sg[3]`` between steps
    (``cr = sqrt(1 - rho^2)``); sample 0 is the noise-free nominal."""
    s, n0 = _normal(s, qtab)
    s, n1 = _normal(s, qtab)
    if t == 0:
        e0 = n0
        e1 = n1
    else:
        e0 = sg[2] * e0 + cr0 * n0
        e1 = sg[3] * e1 + cr1 * n1
    if k == 0:
        e0 = 0.0
        e1 = 0.0
    return s, e0, e1


@scalar
def control_term(U, t, u0, u1, inv0, inv1):
    """Step ``t``'s control-cost term ``U_t^T Sigma^-1 (v_t - U_t)`` of a sample with clamped inputs ``(u0, u1)``."""
    return U[t, 0] * (u0 - U[t, 0]) * inv0 + U[t, 1] * (u1 - U[t, 1]) * inv1


@njit(cache=True)
def generate_noise(seed, qtab, out):
    """Fill ``out[K, T, 2]`` with the kernel's noise stream (sample 0 = zeros), serially."""
    for k in range(out.shape[0]):
        s = _splitmix(seed, k)
        for t in range(out.shape[1]):
            for j in range(2):
                s, z = _normal(s, qtab)
                out[k, t, j] = 0.0 if k == 0 else z


# ------------------------------------------------------------------------------------------------
# the racing cost: start(ca, i0, s0) -> cost state, stage(st, u0, u1, up0, up1, t, T, ca, cs) -> (c, cs),
# terminal(ca, cs, s0) -> c; ca = (cp[N_COST_PARAMS], tab[N, 8])
# ------------------------------------------------------------------------------------------------
@scalar
def _racing_start(ca, i0, s0):
    return i0, i0, 0.0, s0


@scalar
def _racing_stage(st, u0, u1, up0, up1, t, T, ca, cs):
    i, iu, crashed, prog = cs
    c, i, iu, crashed, prog = C.racing_stage(ca[1], ca[0], t, T, st[0], st[1], st[6], st[3], st[4], st[5],
                                             u0 - up0, u1 - up1, i, iu, crashed, prog)
    return c, (i, iu, crashed, prog)


@scalar
def _racing_terminal(ca, cs, s0):
    return -ca[0][C.C_PROGRESS] * (cs[3] - s0)


@scalar
def _racing_in_registers(ca):
    return to_fixed_tuple(ca[0], N_COST_PARAMS), ca[1]


RACING = RolloutCost("racing", _racing_start, _racing_stage, _racing_terminal, _racing_in_registers)


# ------------------------------------------------------------------------------------------------
# the kernel factory
# ------------------------------------------------------------------------------------------------
#: the compiled iteration, and the one-sample rollout it is built from (the CUDA kernels call the same function)
Kernels = namedtuple("Kernels", "iteration rollout")
_KERNELS: dict = {}


def make_kernels(model: RolloutModel, cost: RolloutCost) -> Kernels:
    """The compiled MPPI iteration for one (rollout model, cost) pair, built once per process and cached on disk.

    ``iteration(x0, U, m, ca, nz, b, i0, s0, u_prev, seed, lam, gamma, generate, store_noise, n_rec, k0, k1,
    n_use)`` runs the iteration without allocating: the rollouts of samples ``[k0, k1)`` in parallel (writing
    ``b.V``, ``b.S``, ``b.traj`` and, when generating with ``store_noise``, ``b.eps``), then, when ``n_use > 0``,
    the weights ``b.w`` of samples ``[0, n_use)`` (the rest 0), the weighted update, the Savitzky-Golay smoothing
    ``b.M``, and the nominal rollout of the result (clamped inputs into ``b.U_new``, states into ``b.X``). Returns
    ``(min cost, nominal cost, eta)`` (NaN without ``n_use``). The whole iteration: ``k0, k1, n_use = 0, K, K``; an
    anytime iteration calls it for successive blocks of samples and finishes with the samples it had time for
    (sample k's noise depends on ``seed`` and k only, so the blocks give the whole iteration's samples).

    The factory's functions are closures over the model's and the cost's functions (plain Python functions
    registered for numba's generic target), so numba's on-disk cache keys them by those functions: each pair
    compiles once per machine.
    """
    key = (model.name, cost.name, model.step, cost.stage)
    if key in _KERNELS:
        return _KERNELS[key]
    rollout = _make_rollout(model, cost)
    iteration = _make_iteration(_make_rollout_chunk(rollout, cost.in_registers),
                                _make_nominal(rollout, cost.in_registers), f"scalar_{model.name}_{cost.name}")
    ker = Kernels(iteration, rollout)
    _KERNELS[key] = ker
    return ker


def _make_rollout(model: RolloutModel, cost: RolloutCost):
    """The one-sample rollout, a closure over the model's ``start``, ``step`` and the cost's ``start``, ``stage``,
    ``terminal`` (always-inline functions in the CPU kernels, a device function for CUDA).

    ``rollout(k, x0[7], U[T, 2], eps_k[T, 2], V_k[T, 2], sg[4], gamma, m, ca, i0, s0, u_prev[2], gen, seed, qtab,
    store, traj_k[T+1, 2], rec, X_k[T+1, 7], recx, zr_k)`` -> cost of sample ``k``: its noise (generated
    (``gen``, stream ``k`` of ``seed``; written to ``eps_k`` when ``store``) or read from ``eps_k``), the clamped
    inputs into ``V_k``, the stage and terminal costs plus ``gamma`` x the control cost; x, y [m] into ``traj_k``
    when ``rec``, the 7 states into ``X_k`` when ``recx``; ``zr_k`` the sample's residual row."""
    start, step = model.start, model.step
    c_start, stage, terminal = cost.start, cost.stage, cost.terminal

    @scalar  # inlined by LLVM into the CPU kernels; a plain device function for CUDA (racing.control.mppi.gpu)
    def rollout(k, x0, U, eps_k, V_k, sg, gamma, m, ca, i0, s0, u_prev, gen, seed, qtab, store, traj_k, rec, X_k,
                recx, zr_k):
        T = U.shape[0]
        sig0, sig1 = sg[0], sg[1]
        inv0, inv1, cr0, cr1 = noise_constants(sg)
        e0 = 0.0
        e1 = 0.0
        up0 = u_prev[0]
        up1 = u_prev[1]
        st = start(x0, m, zr_k)
        if rec:
            traj_k[0, 0] = st[0]
            traj_k[0, 1] = st[1]
        if recx:
            for j in range(7):
                X_k[0, j] = st[j]
        s = _splitmix(seed, k)
        cs = c_start(ca, i0, s0)
        cost = 0.0
        ctrl = 0.0
        for t in range(T):
            if gen:
                s, e0, e1 = draw(s, t, k, e0, e1, sg, cr0, cr1, qtab)
                if store:
                    eps_k[t, 0] = e0
                    eps_k[t, 1] = e1
            else:
                e0 = eps_k[t, 0]
                e1 = eps_k[t, 1]
            u0, u1 = clamp_inputs(st[6], U[t, 0] + sig0 * e0, U[t, 1] + sig1 * e1, m.p, m.dt, sops)
            V_k[t, 0] = u0
            V_k[t, 1] = u1
            ctrl += control_term(U, t, u0, u1, inv0, inv1)
            st = step(st, u0, u1, m, zr_k)
            c, cs = stage(st, u0, u1, up0, up1, t + 1, T, ca, cs)
            cost += c
            up0 = u0
            up1 = u1
            if rec:
                traj_k[t + 1, 0] = st[0]
                traj_k[t + 1, 1] = st[1]
            if recx:
                for j in range(7):
                    X_k[t + 1, j] = st[j]
        return cost + terminal(ca, cs, s0) + gamma * ctrl

    return rollout


def _make_rollout_chunk(rollout, in_registers):
    """The rollouts of the samples ``[k0, k1)`` (into ``b.S``, ``b.V``, ``b.traj``, ``b.eps``), with the model's and
    the cost's small arrays hoisted into registers (``in_registers``: the cost's)."""
    # the samples [k0, k1): a function of its own (the kernels' fast-math flags, the rollout and everything below it
    # inlined) called once per chunk from the parallel loop, so that numba's parfor pass never analyses the
    # model and cost code (its array analysis fails on it) and the call costs nothing per sample
    @register_jitable(fastmath=FM)
    def rollout_chunk(k0, k1, x0, U, m, ca, nz, b, i0, s0, u_prev, seed, gamma, gen, store_noise, n_rec):
        K = b.V.shape[0]
        per_sample = b.ZR.shape[0] == K and m.rw.shape[0] > 0
        m = model_in_registers(m)
        ca = in_registers(ca)
        for k in range(k0, k1):
            kk = np.int64(k)
            rec = kk < n_rec
            kr = kk if rec else np.int64(0)
            ke = kk if (store_noise or not gen) else np.int64(0)
            kz = kk if per_sample else np.int64(0)
            b.S[k] = rollout(kk, x0, U, b.eps[ke], b.V[k], nz.sigma, gamma, m, ca, i0, s0, u_prev, gen, seed,
                             nz.qtab, store_noise, b.traj[kr], rec, b.X, False, b.ZR[kz])

    return rollout_chunk


def _make_nominal(rollout, in_registers):
    """``nominal``: the noise-free rollout of the smoothed update ``b.U_new[T, 2]`` (clamped inputs into
    ``b.Vn[T, 2]``, states into ``b.X[T+1, 7]``; returns its cost), built on ``rollout``."""
    @register_jitable(fastmath=FM)
    def nominal(x0, m, ca, nz, b, i0, s0, u_prev):
        """The noise-free rollout of ``b.U_new``: clamped inputs into ``b.Vn``, states into ``b.X``."""
        return rollout(np.int64(0), x0, b.U_new, b.eps_dummy[0], b.Vn, NO_NOISE, 0.0, model_in_registers(m),
                       in_registers(ca), i0, s0, u_prev,
                       False, 0, nz.qtab, False, b.traj_dummy[0], False, b.X, True, b.ZR[0])

    return nominal


def _make_iteration(rollout_chunk, nominal, variant: str):
    """The compiled MPPI iteration (see :func:`make_kernels`) from the chunk of rollouts and the nominal rollout:
    ``njit(cache=True, parallel=True)``, numba's on-disk cache keyed by the closure's functions, in a cache file of
    its own per ``variant`` (a name: kernel, model, cost, precisions). numba keeps one index per function name and
    picks a data file by looking at that index, so two processes saving two variants of one name at once (the
    test workers, sweep workers) could both take the same data file, and the index then named the other kernel's
    code: a float64 kernel ran the float32 one's code on a scratch row without its float32 region (found in this
    project's tests). The same variant saved twice writes the same code."""
    def iteration(x0, U, m, ca, nz, b, i0, s0, u_prev, seed, lam, gamma, gen, store_noise, n_rec, k0, k1, n_use):
        n_chunks = (k1 - k0 + CHUNK - 1) // CHUNK
        for q in prange(n_chunks):  # the rollouts of samples [k0, k1), CHUNK samples per task
            rollout_chunk(k0 + q * CHUNK, min(k1, k0 + (q + 1) * CHUNK), x0, U, m, ca, nz, b, i0, s0, u_prev, seed,
                          gamma, gen, store_noise, n_rec)
        if n_use <= 0:
            return math.nan, math.nan, math.nan
        eta = compute_weights(b.S[:n_use], lam, b.w[:n_use])
        for k in range(n_use, b.w.shape[0]):
            b.w[k] = 0.0
        V, w, Vn = b.V, b.w, b.Vn
        for t in prange(V.shape[1]):  # weighted update, parallel over the horizon
            a0 = 0.0
            a1 = 0.0
            for k in range(n_use):
                a0 += w[k] * V[k, t, 0]
                a1 += w[k] * V[k, t, 1]
            Vn[t, 0] = a0
            Vn[t, 1] = a1
        c_nom = smooth_and_roll(x0, m, ca, nz, b, i0, s0, u_prev)
        smin = math.inf
        for k in range(n_use):
            if b.S[k] < smin:
                smin = b.S[k]
        return smin, c_nom, eta

    @register_jitable(fastmath=FM)
    def smooth_and_roll(x0, m, ca, nz, b, i0, s0, u_prev):
        """Savitzky-Golay smoothing of the update ``b.Vn`` into ``b.U_new``, the nominal rollout of it (residual row 0
        after the parallel rollouts), its clamped inputs into ``b.U_new``; returns its cost."""
        T = b.Vn.shape[0]
        for t in range(T):
            a0 = 0.0
            a1 = 0.0
            for j in range(T):
                a0 += b.M[t, j] * b.Vn[j, 0]
                a1 += b.M[t, j] * b.Vn[j, 1]
            b.U_new[t, 0] = a0
            b.U_new[t, 1] = a1
        c_nom = nominal(x0, m, ca, nz, b, i0, s0, u_prev)
        for t in range(T):
            b.U_new[t, 0] = b.Vn[t, 0]
            b.U_new[t, 1] = b.Vn[t, 1]
        return c_nom

    iteration.__qualname__ = f"iteration_{variant}"  # numba's cache file is named by it (set before njit)
    return njit(cache=True, parallel=True, fastmath=FM)(iteration)


@njit(cache=True, fastmath=False)
def compute_weights(S, lam, w):
    """``w[K] = exp(-(S - min S) / lam) / eta`` (non-finite S -> 0; all non-finite -> uniform). Returns eta."""
    K = S.shape[0]
    m = math.inf
    for k in range(K):
        if math.isfinite(S[k]) and S[k] < m:
            m = S[k]
    eta = 0.0
    if math.isfinite(m):
        for k in range(K):
            if math.isfinite(S[k]):
                w[k] = math.exp(-(S[k] - m) / lam)
            else:
                w[k] = 0.0
            eta += w[k]
    if not (eta > 0.0 and math.isfinite(eta)):
        for k in range(K):
            w[k] = 1.0 / K
        return float(K)
    inv = 1.0 / eta
    for k in range(K):
        w[k] *= inv
    return eta


# ------------------------------------------------------------------------------------------------
# numpy reference (the same discrete models and cost terms, vectorised over samples)
# ------------------------------------------------------------------------------------------------
def rollout_np(x0, Vin, p, model, dt, nsub, cost, ca, i0, s0, u_prev, residual=None, z0=None):
    """numpy reference rollouts of input sequences ``Vin[K, T, 2]`` (clamped on the way).

    ``model`` : :data:`KINEMATIC` | :data:`DYNAMIC` | :data:`SEMI_PARAMETRIC`; ``cost`` : a :class:`RolloutCost`
    with a numpy reference (``RACING``, or one with ``stage_np``/``start``/``terminal`` usable on arrays) and its
    arguments ``ca``. ``residual`` : :class:`racing.models.residual.ResidualWeights` (semi-parametric model)
    with start filter states ``z0[n_aug]`` (default: steady state of ``u_prev``).
    Returns ``(cost[K] without the control cost, V[K, T, 2] clamped, X[K, T+1, 7])``.
    """
    K, T = Vin.shape[0], Vin.shape[1]
    h = dt / nsub
    st = [np.full(K, float(v)) for v in x0]
    if model is KINEMATIC:
        st[3] = np.full(K, math.hypot(x0[3], x0[4]))
        st[4] = np.zeros(K)
        st[5] = np.zeros(K)
    X = np.zeros((K, T + 1, NSTATE))
    X[:, 0] = np.stack(st, axis=-1)
    V = np.zeros_like(Vin)
    total = np.zeros(K)
    cs = _np_cost_start(cost, ca, K, i0, s0)
    up0, up1 = np.full(K, float(u_prev[0])), np.full(K, float(u_prev[1]))
    use_res = residual is not None and model is SEMI_PARAMETRIC
    if use_res:
        z = np.zeros((K, residual.n_aug))
        z[:] = residual.aug_init(np.asarray(u_prev, float)) if z0 is None else np.asarray(z0, float)[:residual.n_aug]
    c, s = np.cos(st[2]), np.sin(st[2])
    for t in range(T):
        x, y, psi, vx, vy, r, d = st
        u0, u1 = clamp_inputs(d, Vin[:, t, 0], Vin[:, t, 1], p, dt, NUMPY)
        V[:, t, 0], V[:, t, 1] = u0, u1
        if use_res:
            xs = np.stack(st, axis=-1)
            us = np.stack([u0, u1], axis=-1)
            corr = residual(xs, us, dynamic_rhs(xs, us, p), z)
        for _ in range(nsub):
            if model is KINEMATIC:
                x, y, psi, vx, d, c, s = kinematic_step_c(x, y, psi, vx, d, c, s, u0, u1, p, h, NUMPY)
            else:
                x, y, psi, vx, vy, r, d, c, s = dynamic_step_c(x, y, psi, vx, vy, r, d, c, s, u0, u1, p, h, NUMPY)
        if use_res:
            vx, vy, r = vx + dt * corr[:, 0], vy + dt * corr[:, 1], r + dt * corr[:, 2]
            z = residual.aug_update(z, us, dt)
        st = [x, y, psi, vx, vy, r, d]
        X[:, t + 1] = np.stack(st, axis=-1)
        cst, cs = _np_cost_stage(cost, (x, y, psi, vx, vy, r, d, c, s), u0, u1, up0, up1, t + 1, T, ca, cs)
        total = total + cst
        up0, up1 = u0, u1
    return total + cost.terminal(ca, cs, s0), V, X


def _np_cost_start(cost, ca, K, i0, s0):
    if cost is RACING:
        return (np.full(K, i0, dtype=np.int64), np.full(K, i0, dtype=np.int64), np.zeros(K), np.full(K, float(s0)))
    return cost.start(ca, i0, s0)  # a custom cost written with numpy-compatible math (e.g. racing.bench.CIRCLE)


def _np_cost_stage(cost, st, u0, u1, up0, up1, t, T, ca, cs):
    if cost is RACING:
        i, iu, crashed, prog = cs
        c, i, iu, crashed, prog = C.racing_stage_np(ca[1], ca[0], t, T, st[0], st[1], st[6], st[3], st[4], st[5],
                                                    u0 - up0, u1 - up1, i, iu, crashed, prog)
        return c, (i, iu, crashed, prog)
    return cost.stage(st, u0, u1, up0, up1, t, T, ca, cs)


def weights_np(S, lam):
    """Reference weights (same rules as :func:`compute_weights`)."""
    S = np.asarray(S, dtype=float)
    fin = np.isfinite(S)
    if not fin.any():
        return np.full(S.shape, 1.0 / S.size)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        w = np.where(fin, np.exp(-(np.where(fin, S, 0.0) - S[fin].min()) / lam), 0.0)
    if not (w.sum() > 0 and np.isfinite(w.sum())):
        return np.full(S.shape, 1.0 / S.size)
    return w / w.sum()


def mppi_step_numpy(x0, U, eps, sigma, lam, gamma, p, model, dt, nsub, cost, ca, i0, s0, u_prev, M,
                    residual=None, z0=None):
    """numpy reference of one MPPI iteration given the noise ``eps[K, T, 2]`` (``model``, ``cost``, ``ca``,
    ``residual``, ``z0``: see :func:`rollout_np`). ``U[T, 2]`` and ``sigma[2]`` are every sample's nominal and noise
    std, or per sample ``U[K, T, 2]`` and ``sigma[K, 2]`` (a guided iteration: samples drawn around two plans).

    Returns a dict with ``U_new[T, 2]``, ``S[K]``, ``w[K]``, ``V[K, T, 2]``, ``X[T+1, 7]`` (nominal).
    """
    sigma = np.asarray(sigma, dtype=float)
    sigma = sigma[:, None, :2] if sigma.ndim == 2 else sigma[:2]
    inv = np.where(sigma > 0, 1.0 / np.where(sigma > 0, sigma, 1.0) ** 2, 0.0)
    Uk = U if U.ndim == 3 else U[None]
    cost_k, V, _ = rollout_np(x0, Uk + sigma * eps, p, model, dt, nsub, cost, ca, i0, s0, u_prev, residual, z0)
    ctrl = np.sum(Uk * (V - Uk) * inv, axis=(1, 2))
    S = cost_k + gamma * ctrl
    S = np.where(np.isfinite(S), S, np.inf)
    w = weights_np(S, lam)
    U_upd = np.einsum("k,ktj->tj", w, V)
    U_s = M @ U_upd
    c_nom, Vn, Xn = rollout_np(x0, U_s[None], p, model, dt, nsub, cost, ca, i0, s0, u_prev, residual, z0)
    return {"U_new": Vn[0], "S": S, "w": w, "V": V, "X": Xn[0], "nominal_cost": float(c_nom[0])}
