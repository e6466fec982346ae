r"""The MPPI iteration with the samples stepped in lockstep: the model's arithmetic vectorised across samples.

The scalar kernel (:mod:`racing.control.mppi.step`) rolls each sample out on its own: one dependency chain per
sample, about 150 ns per sample-step on this project's 2-core VM, most of it the tyres' atan/sin polynomials and the
slip angles, scalar. Samples are independent, so a chunk of :data:`LANES` samples is stepped together here, in
three passes per chunk:

1. **noise** (per sample, scalar): the sample's inputs before the clamp, ``U_t + sigma e_t``, with the very noise of
   the scalar kernel (the same stream per sample, :func:`racing.control.mppi.step.draw`), into the chunk's scratch;
2. **physics** (per time step, a loop over the chunk's samples that LLVM vectorises: structure of arrays, no branch,
   no libm call): the clamp and the model's sub-steps (``RolloutModel.substep``) with ``ops = lops``
   (:mod:`racing.models.lops`, the branch-free forms of the same elementary functions) on a live block stepped in
   place, the states then copied into the chunk's trajectory (``[T+1, 9, LANES]`` in the scratch);
3. **cost** (per sample, scalar: the track projection searches, the crash bookkeeping branches): the cost's
   stages along the stored trajectory, the control cost, the clamped inputs into ``V[K, T, 2]``.

The result equals the scalar kernel's up to the last bits of the elementary functions (``lops.tanh`` uses a
polynomial exp, libm's exp in ``sops``), and so the numpy reference in the same way. The nominal rollout of the
update stays the scalar one. The semi-parametric model's network runs for the chunk's 16 samples at once
(:func:`racing.models.residual.make_block_residual`) in float64, equal to the scalar evaluation, or in float32
(``precision``; ``residual_precision`` in the controller's settings), the correction within 2e-6 of its scale. The
physics itself may run in float32 (``physics``; ``physics_precision``, without a residual: :func:`_make_physics32`),
eight lanes per AVX2 register, with float32 forms derived from the same model source
(:func:`racing.models.precision.float32_form`). A model without a ``substep`` has no lockstep form; the controller
falls back to the scalar kernel for it.

The scratch is one row per numba thread (``numba.get_thread_id``), made once with the buffers
(:func:`scratch`): ``LIVE + (T+1) 9 LANES + 2 T LANES`` floats, 73 kB at T = 50.

Measured (``racing bench``, K = 2048, T = 50, 2 threads, this project's 2-core AMD EPYC (Zen 1) VM, whose AVX2
units are 128 bits wide): the physics 137 ns per sample-step against about 260 scalar, the iteration 11.6 ms
against 21.1 ms with the scalar kernel in the same session (docs/results.md, 2026-12-06).
"""
from __future__ import annotations

import numba
import numpy as np
from numba.extending import register_jitable
from numba.np.unsafe.ndarray import to_fixed_tuple

from racing.control.horizon import clamp_inputs, model_in_registers
from racing.control.mppi import step as S
from racing.models import lops, lops32
from racing.models.dynamic import body_derivatives
from racing.models.fastmath import FM, scalar
from racing.models.params import N_PARAMS
from racing.models.precision import float32_form
from racing.models.residual import PRECISIONS, make_block_residual

#: samples stepped in lockstep: one chunk of the parallel loop (four AVX2 vectors of float64)
LANES = S.CHUNK
#: the state's fields in the scratch (the rollout state's 9-tuple)
NV = 9
#: the live block at the start of a scratch row: the chunk's state (NV rows of LANES), then its two input rows
U0 = NV * LANES
LIVE = U0 + 2 * LANES
_KERNELS: dict = {}
#: the residual network for a block of LANES samples (racing.models.residual), per precision of its arithmetic
_BLOCKS = {p: make_block_residual(LANES, p) for p in PRECISIONS}


@register_jitable
def _rows64(T):
    """The float64 rows of a scratch row before the residual's: the live block, the trajectory and the inputs."""
    return LIVE + (T + 1) * NV * LANES + 2 * T * LANES


def scratch(T: int, rw: np.ndarray | None = None, threads: int | None = None,
            precision: str = "float64", physics: str = "float64") -> np.ndarray:
    """The per-thread scratch ``LX[threads, LIVE + (T+1) NV LANES + 2 T LANES (+ residual rows)]``: the live block,
    the chunk's trajectory, its inputs, then with residual weights ``rw`` (flat) the block's filter states and the
    network's rows (:func:`residual_offsets`), and for a float32 network (``precision``) a float32 region with the
    weights (copied here, once) and the network's rows (:func:`_net32`); for float32 physics (``physics``, without a
    residual) a float32 region with the live block and the car's parameters (:func:`_make_physics32`)
    (``threads``: numba's largest thread count by default, so that any ``set_num_threads`` fits)."""
    n = numba.config.NUMBA_NUM_THREADS if threads is None else threads
    net = 0 if rw is None or rw.size == 0 else _BLOCKS[precision][2](rw) + 3  # features, hidden, correction
    n64 = _rows64(T) + (max(int(rw[6]), 1) + net if net else 0) * LANES
    if net == 0 and physics == "float32":
        return np.zeros((n, n64 + (LIVE + N_PARAMS + 1) // 2))
    if net == 0 or precision == "float64":
        return np.zeros((n, n64))
    LX = np.zeros((n, n64 + (_aligned(rw.size) + net * LANES + 1) // 2))
    for row in LX:
        row[n64:].view(np.float32)[:rw.size] = rw
    return LX


@register_jitable
def _aligned(n):
    """``n`` rounded up to whole rows of LANES values."""
    return (n + LANES - 1) // LANES * LANES


@register_jitable
def residual_offsets(T, w):
    """Offsets in a scratch row of the filter states ``z0`` (max(n_aug, 1) rows), the network's features ``f0``
    (n_in rows), hidden layers ``h0`` (2 n_hidden rows) and its correction ``o0`` (3 rows)."""
    z0 = _rows64(T)
    f0 = z0 + max(int(w[6]), 1) * LANES
    h0 = f0 + int(w[1]) * LANES
    return z0, f0, h0, h0 + 2 * int(w[2]) * LANES


@register_jitable
def _net64(W, T, w):
    """The float64 network's weights and rows: ``(weights, rows array, f0, h0, o0)`` (:func:`residual_offsets`)."""
    _, f0, h0, o0 = residual_offsets(T, w)
    return w, W, f0, h0, o0


@register_jitable
def _net32(W, T, w):
    """The float32 network's weights and rows in the float32 region past the float64 rows (:func:`scratch`): the
    weights' copy ``N[:w.size]``, then the features' (``f0``), hidden (``h0``) and correction (``o0``) rows."""
    _, _, _, o0 = residual_offsets(T, w)
    N = W[o0 + 3 * LANES:].view(np.float32)
    f0 = _aligned(w.shape[0])
    h0 = f0 + int(w[1]) * LANES
    return N[:w.shape[0]], N, f0, h0, h0 + 2 * int(w[2]) * LANES


_NETS = {"float64": _net64, "float32": _net32}


def supported(model: S.RolloutModel) -> bool:
    """Whether ``model`` has a lockstep form (a single sub-step written against ``ops``)."""
    return model.substep is not None


def make_kernels(model: S.RolloutModel, cost: S.RolloutCost, precision: str = "float64",
                 physics: str = "float64") -> S.Kernels:
    """The compiled MPPI iteration with lockstep rollouts for one (rollout model, cost) pair: the same arguments
    and results as :func:`racing.control.mppi.step.make_kernels`'s (its buffers must carry :func:`scratch` as
    ``LX``, made with the same ``precision`` and ``physics``); ``rollout`` is the scalar one-sample rollout (the
    nominal). ``precision``: the residual network's arithmetic (:data:`PRECISIONS`); ``physics``: the model's
    (:data:`PRECISIONS`; float32 without a residual only, :func:`_make_physics32`)."""
    if not supported(model):
        raise ValueError(f"the {model.name} rollout model has no lockstep form (no single sub-step); "
                         "use the scalar kernel (kernel: scalar)")
    for name, value in (("residual precision", precision), ("physics precision", physics)):
        if value not in PRECISIONS:
            raise ValueError(f"{name} must be one of {PRECISIONS}, got {value!r}")
    if model.residual and physics != "float64":
        raise ValueError("physics precision float32 runs without a residual (the semi-parametric model's physics "
                         "is float64; its network may be float32)")
    key = (model.name, cost.name, model.substep, cost.stage, precision if model.residual else "float64", physics)
    if key in _KERNELS:
        return _KERNELS[key]
    rollout = S._make_rollout(model, cost)
    variant = f"lockstep_{model.name}_{cost.name}_{key[4]}_{physics}"
    if model.residual:
        steps = _make_physics_semi(model, precision)
    else:
        steps = _make_physics32(model) if physics == "float32" else _make_physics(model)
    chunk = _make_chunk(_make_noise(), steps, _make_cost(cost), cost.in_registers)
    ker = S.Kernels(S._make_iteration(chunk, S._make_nominal(rollout, cost.in_registers), variant), rollout)
    _KERNELS[key] = ker
    return ker


def _make_chunk(noise, physics, costs, in_registers):
    """The rollouts of the samples ``[k0, k1)`` (at most :data:`LANES`) in the three passes of the module doc."""
    @register_jitable(fastmath=FM, error_model="numpy")
    def rollout_chunk(k0, k1, x0, U, m, ca, nz, b, i0, s0, u_prev, seed, gamma, gen, store_noise, n_rec):
        W = b.LX[numba.get_thread_id()]
        m = model_in_registers(m)
        ca = in_registers(ca)
        noise(k0, k1, U, nz, b, W, seed, gen, store_noise)
        physics(x0, U.shape[0], m, b, W)
        costs(k0, k1, U, nz, b, W, ca, i0, s0, u_prev, gamma, n_rec)

    return rollout_chunk


def _make_noise():
    """Pass 1: the chunk's inputs before the clamp, ``U_t + sigma e_t``, into the input rows of ``W``."""
    @register_jitable(fastmath=FM, error_model="numpy")
    def noise(k0, k1, U, nz, b, W, seed, gen, store):
        T = U.shape[0]
        base = LIVE + (T + 1) * NV * LANES
        sg = nz.sigma
        _, _, cr0, cr1 = S.noise_constants(sg)
        for k in range(k0, k1):
            j = k - k0
            s = S._splitmix(seed, k)
            e0 = 0.0
            e1 = 0.0
            for t in range(T):
                if gen:
                    s, e0, e1 = S.draw(s, t, k, e0, e1, sg, cr0, cr1, nz.qtab)
                    if store:
                        b.eps[k, t, 0] = e0
                        b.eps[k, t, 1] = e1
                else:
                    e0 = b.eps[k, t, 0]
                    e1 = b.eps[k, t, 1]
                W[base + (2 * t) * LANES + j] = U[t, 0] + sg[0] * e0
                W[base + (2 * t + 1) * LANES + j] = U[t, 1] + sg[1] * e1

    return noise


def _make_physics(model):
    """Pass 2: the clamp and the sub-steps of all the chunk's lanes, time step by time step, on the live block
    ``W[:LIVE]`` in place, whose loop over the lanes LLVM vectorises (every access is the one array at a constant
    offset plus the lane, over a constant trip count, so no runtime alias check; nothing in it takes an array
    argument, which would keep numba's reference counting in the loop); the states are then copied out to the
    trajectory ``W[LIVE:]``. Lanes past the chunk's samples (the last chunk) step stale data that nothing reads."""
    start, lane_step = model.start, _make_lane_step(model.substep)

    @register_jitable(fastmath=FM, error_model="numpy")
    def physics(x0, T, m, b, W):
        lv = W[0:LIVE]
        _start_block(start(x0, m, b.ZR[0]), lv)
        _copy(lv, 0, W, LIVE, NV * LANES)
        h = m.dt / m.nsub
        inputs = LIVE + (T + 1) * NV * LANES
        for t in range(T):
            _copy(W, inputs + 2 * t * LANES, lv, U0, 2 * LANES)
            _clamp_lanes(lv, m.p, m.dt)
            for _ in range(m.nsub):
                for j in range(LANES):
                    lane_step(lv, j, lv[U0 + j], lv[U0 + LANES + j], m.p, h)
            _copy(lv, U0, W, inputs + 2 * t * LANES, 2 * LANES)
            _copy(lv, 0, W, LIVE + (t + 1) * NV * LANES, NV * LANES)

    return physics


def _make_lane_step(substep, ops=lops):
    """``lane_step(lv, j, u0, u1, p, h)``: lane ``j`` of the live block one sub-step on, in place (``substep`` with
    the namespace ``ops``)."""
    @scalar
    def lane_step(lv, j, u0, u1, p, h):
        x, y, psi, vx, vy, r, d, c, sn = substep((lv[j], lv[LANES + j], lv[2 * LANES + j], lv[3 * LANES + j],
                                                  lv[4 * LANES + j], lv[5 * LANES + j], lv[6 * LANES + j],
                                                  lv[7 * LANES + j], lv[8 * LANES + j]), u0, u1, p, h, ops)
        lv[j] = x
        lv[LANES + j] = y
        lv[2 * LANES + j] = psi
        lv[3 * LANES + j] = vx
        lv[4 * LANES + j] = vy
        lv[5 * LANES + j] = r
        lv[6 * LANES + j] = d
        lv[7 * LANES + j] = c
        lv[8 * LANES + j] = sn

    return lane_step


def _make_physics32(model):
    """Pass 2 in float32 (``physics_precision: float32``): :func:`_make_physics`'s steps on a float32 live block in
    the float32 region past the row's float64 rows (:func:`scratch`), with the float32 forms of the model's sub-step
    and of the clamp (:func:`racing.models.precision.float32_form`, ``ops = lops32``) and the car's parameters as a
    float32 tuple (converted there once per chunk); eight lanes per AVX2 register where float64 has four. The block
    steps the position and heading relative to the start state's (the model is invariant to them), so float32's
    resolution does not depend on where the map's origin lies (a UTM frame puts a car 500 km from it, where a
    float32 resolves 3 cm); the states and clamped inputs go out to the float64 rows, converted and made absolute,
    so the noise and cost passes are those of the float64 kernel."""
    start = model.start
    lane_step = _make_lane_step(float32_form(model.substep), lops32)
    clamp_lanes = _make_clamp_lanes(float32_form(clamp_inputs), lops32)

    @register_jitable(fastmath=FM, error_model="numpy")
    def physics(x0, T, m, b, W):
        F = W[_rows64(T):].view(np.float32)
        lv = F[0:LIVE]
        for i in range(N_PARAMS):
            F[LIVE + i] = m.p[i]
        p = to_fixed_tuple(F[LIVE:LIVE + N_PARAMS], N_PARAMS)
        dt = np.float32(m.dt)
        h = np.float32(m.dt / m.nsub)
        st = start(x0, m, b.ZR[0])
        ox, oy, opsi = st[0], st[1], st[2]
        _start_block((0.0, 0.0, 0.0, st[3], st[4], st[5], st[6], st[7], st[8]), lv)
        _copy_out(lv, W, LIVE, ox, oy, opsi)
        inputs = LIVE + (T + 1) * NV * LANES
        for t in range(T):
            _copy(W, inputs + 2 * t * LANES, lv, U0, 2 * LANES)
            clamp_lanes(lv, p, dt)
            for _ in range(m.nsub):
                for j in range(LANES):
                    lane_step(lv, j, lv[U0 + j], lv[U0 + LANES + j], p, h)
            _copy(lv, U0, W, inputs + 2 * t * LANES, 2 * LANES)
            _copy_out(lv, W, LIVE + (t + 1) * NV * LANES, ox, oy, opsi)

    return physics


@register_jitable(fastmath=FM, error_model="numpy")
def _copy_out(lv, W, z, ox, oy, opsi):
    """The float32 live block's states into the float64 rows ``W[z:z + NV LANES]``, its position and heading
    (relative to the start's, ``ox, oy`` [m], ``opsi`` [rad]) made absolute again."""
    for j in range(LANES):
        W[z + j] = ox + lv[j]
        W[z + LANES + j] = oy + lv[LANES + j]
        W[z + 2 * LANES + j] = opsi + lv[2 * LANES + j]
    _copy(lv, 3 * LANES, W, z + 3 * LANES, (NV - 3) * LANES)


def _make_physics_semi(model, precision):
    """Pass 2 for the semi-parametric model: per time step, the clamp, the network's features at the step start
    (the physics' body derivatives with ``lops``), the network for the block (:func:`make_block_residual`, in
    ``precision``), the physics' sub-steps, ``dt`` x the correction on (v_x, v_y, r), and the filter states' update:
    the scalar kernel's step (:func:`racing.control.horizon._step_semi`) for 16 samples at once. Every lane loop
    works on one array: the scratch row ``W``, or for a float32 network its float32 region ``N``."""
    start, lane_step = model.start, _make_lane_step(model.substep)
    block, aug_block, _ = _BLOCKS[precision]
    net = _NETS[precision]

    @register_jitable(fastmath=FM, error_model="numpy")
    def physics(x0, T, m, b, W):
        w = m.rw
        z0 = residual_offsets(T, w)[0]
        wn, N, f0, h0, o0 = net(W, T, w)
        nl = min(LANES, W.shape[0])  # = LANES, opaque to LLVM (make_block_residual)
        F = N[f0:f0 + 9 * LANES].reshape((9, LANES))  # the raw features (2-D views: make_block_residual)
        G = N[o0:o0 + 3 * LANES].reshape((3, LANES))  # the correction
        _start_block(start(x0, m, b.ZR[0]), W)
        _copy(W, 0, W, LIVE, NV * LANES)
        for q in range(int(w[6])):
            for j in range(LANES):
                W[z0 + q * LANES + j] = m.z0[q]
        h = m.dt / m.nsub
        inputs = LIVE + (T + 1) * NV * LANES
        for t in range(T):
            _copy(W, inputs + 2 * t * LANES, W, U0, 2 * LANES)
            _clamp_lanes(W, m.p, m.dt)
            for j in range(LANES):
                u0, u1 = W[U0 + j], W[U0 + LANES + j]
                vx, vy, r, d = W[3 * LANES + j], W[4 * LANES + j], W[5 * LANES + j], W[6 * LANES + j]
                F[0, j], F[1, j], F[2, j], F[3, j], F[4, j], F[5, j] = vx, vy, r, d, u0, u1
                F[6, j], F[7, j], F[8, j] = body_derivatives(vx, vy, r, d, u0, u1, m.p, lops)
            _copy(W, z0, N, f0 + 9 * LANES, int(w[6]) * LANES)
            block(wn, N, f0, h0, o0, nl)
            for _ in range(m.nsub):
                for j in range(LANES):
                    lane_step(W, j, W[U0 + j], W[U0 + LANES + j], m.p, h)
            for j in range(LANES):
                W[3 * LANES + j] += m.dt * G[0, j]
                W[4 * LANES + j] += m.dt * G[1, j]
                W[5 * LANES + j] += m.dt * G[2, j]
            aug_block(w, W, z0, U0 + LANES, m.dt, nl)
            _copy(W, U0, W, inputs + 2 * t * LANES, 2 * LANES)
            _copy(W, 0, W, LIVE + (t + 1) * NV * LANES, NV * LANES)

    return physics


def _make_clamp_lanes(clamp, ops):
    """``clamp_lanes(lv, p, dt)``: the live block's input rows clamped in place by ``clamp`` (a form of
    :func:`racing.control.horizon.clamp_inputs`) with the namespace ``ops``, at each lane's steering angle."""
    @register_jitable(fastmath=FM, error_model="numpy")
    def clamp_lanes(lv, p, dt):
        for j in range(LANES):
            lv[U0 + j], lv[U0 + LANES + j] = clamp(lv[6 * LANES + j], lv[U0 + j], lv[U0 + LANES + j], p, dt, ops)

    return clamp_lanes


_clamp_lanes = _make_clamp_lanes(clamp_inputs, lops)


@register_jitable(fastmath=FM, error_model="numpy")
def _start_block(st, W):
    """Every lane of the live block's state rows at the 9-tuple ``st``."""
    for v in range(NV):
        for j in range(LANES):
            W[v * LANES + j] = _field(st, v)


@register_jitable(fastmath=FM, error_model="numpy")
def _copy(src, a, dst, z, n):
    """``dst[z:z+n] = src[a:a+n]``."""
    for i in range(n):
        dst[z + i] = src[a + i]


def _make_cost(cost):
    """Pass 3: per sample, the cost's stages along its stored trajectory, the terminal and the control cost into
    ``b.S``; the clamped inputs into ``b.V``, x, y [m] into ``b.traj`` for the first ``n_rec`` samples."""
    c_start, stage, terminal = cost.start, cost.stage, cost.terminal

    @register_jitable(fastmath=FM, error_model="numpy")
    def costs(k0, k1, U, nz, b, W, ca, i0, s0, u_prev, gamma, n_rec):
        T = U.shape[0]
        base = LIVE + (T + 1) * NV * LANES
        inv0, inv1, _, _ = S.noise_constants(nz.sigma)
        for k in range(k0, k1):
            j = k - k0
            rec = k < n_rec
            if rec:
                b.traj[k, 0, 0] = W[LIVE + j]
                b.traj[k, 0, 1] = W[LIVE + LANES + j]
            cs = c_start(ca, i0, s0)
            up0 = u_prev[0]
            up1 = u_prev[1]
            total = 0.0
            ctrl = 0.0
            for t in range(T):
                u0 = W[base + 2 * t * LANES + j]
                u1 = W[base + (2 * t + 1) * LANES + j]
                b.V[k, t, 0] = u0
                b.V[k, t, 1] = u1
                ctrl += S.control_term(U, t, u0, u1, inv0, inv1)
                st = _load(W, LIVE + (t + 1) * NV * LANES, j)
                c, cs = stage(st, u0, u1, up0, up1, t + 1, T, ca, cs)
                total += c
                up0 = u0
                up1 = u1
                if rec:
                    b.traj[k, t + 1, 0] = st[0]
                    b.traj[k, t + 1, 1] = st[1]
            b.S[k] = total + terminal(ca, cs, s0) + gamma * ctrl

    return costs


@scalar
def _load(W, a, j):
    """The 9-tuple state of lane ``j`` from the fields at offset ``a`` of the scratch row ``W``."""
    return (W[a + j], W[a + LANES + j], W[a + 2 * LANES + j], W[a + 3 * LANES + j], W[a + 4 * LANES + j],
            W[a + 5 * LANES + j], W[a + 6 * LANES + j], W[a + 7 * LANES + j], W[a + 8 * LANES + j])


@scalar
def _field(st, v):
    """Field ``v`` of the 9-tuple ``st`` (a runtime index into a homogeneous tuple)."""
    return st[v]
