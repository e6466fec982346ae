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

Rollout models (the state is always carried as 7 scalars; the kinematic model keeps v in the
v_x slot and zeros in v_y, r):

* ``kinematic``: kinematic bicycle, midpoint rule for the heading of the position update.
* ``dynamic``: dynamic single-track with Pacejka tyres (the same forces and C1 low-speed blend as
  :mod:`racing.models.dynamic`; arctan and tanh by libm-free approximations accurate to 4e-16,
  :func:`atan_fast`, :func:`tanh_fast`, which cut the rollout time by a quarter). The stiff lateral
  states (v_y, r) take a linearly-implicit trapezoidal step (a W-method with the secant tyre
  stiffness, ``THETA = 1/2``), v_x an explicit Euler step, the pose a trapezoidal update; the
  tyre forces see the steering angle at mid-step. Stable at dt = 0.02-0.1 s where explicit
  Euler/RK4 of the tyre dynamics is not, and second order: at dt = 0.05 s one step follows a
  1 kHz RK4 solution of a steering ramp at 50-65 m/s to 1-2 % in yaw rate, as closely as the
  linearly-implicit Euler step with four substeps (which lags it by 10-20 % with one).

Residual (``rw``: flat weights of :mod:`racing.models.residual`, length 0 = none; dynamic model
only): each rollout step from (x, u) first evaluates ``fp = dynamic_rhs_nb(x, u, p)`` and the
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

import numpy as np
from numba import njit, prange

from racing.control.mppi import costs as C
from racing.control.mppi.fastmath import FM, atan_fast, tanh_fast
from racing.models.numba_backend import dynamic_rhs_nb
from racing.models.residual import aug_update_nb, residual_z_nb
from racing.models.params import (G, P_ACCEL_MAX, P_BF, P_BR, P_CDRAG, P_CF, P_CR, P_CROLL, P_DECEL_MAX, P_DF, P_DR,
                                  P_EF, P_ER, P_IZ, P_LF, P_LR, P_MASS, P_MU, P_POWER_MAX, P_STEER_MAX,
                                  P_STEER_RATE_MAX, P_VBLEND_HIGH, P_VBLEND_LOW)

MODEL_KINEMATIC = 0
MODEL_DYNAMIC = 1
NOISE_GIVEN = 0
NOISE_GENERATE = 1
#: noise parameters (sigma_0, sigma_1, rho_0, rho_1) of a noise-free rollout
NO_NOISE = np.zeros(4)
NSTATE = 7
#: implicitness of the linearly-implicit lateral step: 1/2 = trapezoidal (second order, A-stable)
THETA = 0.5
N_NORMAL_CELLS = 4096
#: per-sample residual row after the nz = max(n_aug, 1) filter states: x[7], u[2], fp[7], corr[3], then the
#: MLP's work (2 n_hidden + n_in)
RES_X, RES_U, RES_FP, RES_CORR, RES_WORK = 0, 7, 9, 16, 19


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
@njit(cache=True, inline="always")
def _splitmix(seed, k):
    z = np.uint64(seed) + np.uint64(k + 1) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    if z == np.uint64(0):
        z = np.uint64(0x2545F4914F6CDD1D)
    return z


@njit(cache=True, inline="always", fastmath=FM)
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
# models (scalar, inlined)
# ------------------------------------------------------------------------------------------------
@njit(cache=True, inline="always", fastmath=FM)
def _pacejka(alpha, B, Cc, D, E):
    ba = B * alpha
    if E != 0.0:
        ba = ba - E * (ba - atan_fast(ba))
    return D * math.sin(Cc * atan_fast(ba))


@njit(cache=True, inline="always", fastmath=FM)
def sincos(a):
    """(sin a, cos a): Taylor polynomials for |a| < 0.8 rad (error < 3e-14), libm otherwise."""
    if abs(a) < 0.8:
        a2 = a * a
        sn = a * (1.0 + a2 * (-1.0 / 6.0 + a2 * (1.0 / 120.0 + a2 * (-1.0 / 5040.0 + a2 * (1.0 / 362880.0 + a2 * (
            -1.0 / 39916800.0 + a2 * (1.0 / 6227020800.0)))))))
        cs = 1.0 + a2 * (-0.5 + a2 * (1.0 / 24.0 + a2 * (-1.0 / 720.0 + a2 * (1.0 / 40320.0 + a2 * (
            -1.0 / 3628800.0 + a2 * (1.0 / 479001600.0 + a2 * (-1.0 / 87178291200.0)))))))
        return sn, cs
    return math.sin(a), math.cos(a)


@njit(cache=True, inline="always", fastmath=FM)
def kinematic_step(x, y, psi, v, d, rate, a, p, h):
    """Kinematic bicycle, one step of ``h`` [s]: returns (x, y, psi, v, delta)."""
    c, s = math.cos(psi), math.sin(psi)
    x, y, psi, v, d, c, s = kinematic_step_cs(x, y, psi, v, d, c, s, rate, a, p, h)
    return x, y, psi, v, d


@njit(cache=True, inline="always", fastmath=FM)
def kinematic_step_cs(x, y, psi, v, d, c, s, rate, a, p, h):
    """As :func:`kinematic_step`, carrying (c, s) = (cos psi, sin psi) to avoid trigonometric calls."""
    L = p[P_LF] + p[P_LR]
    sd, cd = sincos(d)
    td = sd / cd
    tb = p[P_LR] * td / L
    cb = 1.0 / math.sqrt(1.0 + tb * tb)
    sb = tb * cb
    om = v * cb * td / L
    v_n = v + h * a
    s1, c1 = sincos(0.5 * h * om)
    cm = c * c1 - s * s1
    sm = s * c1 + c * s1
    vm = 0.5 * (v + v_n)
    return (x + h * vm * (cm * cb - sm * sb), y + h * vm * (sm * cb + cm * sb), psi + h * om, v_n, d + h * rate,
            cm * c1 - sm * s1, sm * c1 + cm * s1)


@njit(cache=True, inline="always", fastmath=FM)
def dynamic_step(x, y, psi, vx, vy, r, d, rate, a, p, h):
    """Dynamic single-track, one step of ``h`` [s]: returns (x, y, psi, vx, vy, r, delta)."""
    c, s = math.cos(psi), math.sin(psi)
    x, y, psi, vx, vy, r, d, c, s = dynamic_step_cs(x, y, psi, vx, vy, r, d, c, s, rate, a, p, h)
    return x, y, psi, vx, vy, r, d


@njit(cache=True, inline="always", fastmath=FM)
def dynamic_step_cs(x, y, psi, vx, vy, r, d, c, s, rate, a, p, h):
    """As :func:`dynamic_step`, carrying (c, s) = (cos psi, sin psi)."""
    m, iz, lf, lr = p[P_MASS], p[P_IZ], p[P_LF], p[P_LR]
    L = lf + lr
    vlo, vhi = p[P_VBLEND_LOW], p[P_VBLEND_HIGH]
    vxs = max(vx, 0.5 * vlo)
    dm = d + 0.5 * h * rate  # the steering angle at mid-step (it moves linearly over the step)
    qf = vy + lf * r
    qr = vy - lr * r
    af = dm - atan_fast(qf / vxs)  # = atan2(qf, vxs): vxs > 0
    ar = -atan_fast(qr / vxs)
    fzf = m * G * lr / L
    fzr = m * G * lf / L
    muf = _pacejka(af, p[P_BF], p[P_CF], p[P_DF], p[P_EF])
    mur = _pacejka(ar, p[P_BR], p[P_CR], p[P_DR], p[P_ER])
    fyf = fzf * muf
    fyr = fzr * mur
    f_drive = min(m * a, p[P_POWER_MAX] / max(vx, 1.0))
    f_grip = p[P_MU] * m * G
    fx = (max(min(f_drive, f_grip), -f_grip) - p[P_CROLL] * m * G * tanh_fast(vx / vlo)
          - p[P_CDRAG] * vx * abs(vx))
    sd, cd = sincos(dm)
    dvx = (fx - fyf * sd) / m + vy * r
    dvy_dyn = (fyr + fyf * cd) / m - vx * r
    dr_dyn = (lf * fyf * cd - lr * fyr) / iz
    tb = min(max((vx - vlo) / (vhi - vlo), 0.0), 1.0)
    w = tb * tb * (3.0 - 2.0 * tb)  # the plant's C1 smooth step (racing.models.dynamic)
    if w < 1.0:
        dvx = w * dvx + (1.0 - w) * fx / m
        dr_kin = (rate * vx / (cd * cd) + dvx * sd / cd) / L
        dvy_kin = lr * dr_kin
        fvy = w * dvy_dyn + (1.0 - w) * dvy_kin
        fr = w * dr_dyn + (1.0 - w) * dr_kin
    else:
        fvy = dvy_dyn
        fr = dr_dyn
    # secant tyre stiffness [N/rad] and slip-angle sensitivities
    kf = fzf * (muf / af if abs(af) > 1e-6 else p[P_BF] * p[P_CF] * p[P_DF])
    kr = fzr * (mur / ar if abs(ar) > 1e-6 else p[P_BR] * p[P_CR] * p[P_DR])
    cf = vxs / (vxs * vxs + qf * qf)
    cr = vxs / (vxs * vxs + qr * qr)
    j11 = w * (-kr * cr - kf * cd * cf) / m
    j12 = w * ((kr * lr * cr - kf * cd * lf * cf) / m - vx)
    j21 = w * (-lf * kf * cd * cf + lr * kr * cr) / iz
    j22 = w * (-lf * lf * kf * cd * cf - lr * lr * kr * cr) / iz
    a11 = 1.0 - THETA * h * j11
    a12 = -THETA * h * j12
    a21 = -THETA * h * j21
    a22 = 1.0 - THETA * h * j22
    det = max(a11 * a22 - a12 * a21, 1e-6)
    b1 = h * fvy
    b2 = h * fr
    vy_n = vy + (a22 * b1 - a12 * b2) / det
    r_n = r + (a11 * b2 - a21 * b1) / det
    vx_n = vx + h * dvx
    dpsi = 0.5 * h * (r + r_n)
    s1, c1 = sincos(0.5 * dpsi)
    cm = c * c1 - s * s1
    sm = s * c1 + c * s1
    vxm = 0.5 * (vx + vx_n)
    vym = 0.5 * (vy + vy_n)
    return (x + h * (vxm * cm - vym * sm), y + h * (vxm * sm + vym * cm), psi + dpsi, vx_n, vy_n, r_n, d + h * rate,
            cm * c1 - sm * s1, sm * c1 + cm * s1)


@njit(cache=True, inline="always", fastmath=FM)
def clamp_inputs(d, u0, u1, p, dt):
    """Clamp (steer rate, accel) so that |rate| <= max, the angle stays within +-steer_max after dt."""
    smax = p[P_STEER_MAX]
    rmax = p[P_STEER_RATE_MAX]
    lo = (-smax - d) / dt
    hi = (smax - d) / dt
    u0 = min(max(u0, lo), hi)
    u0 = min(max(u0, -rmax), rmax)
    u1 = min(max(u1, -p[P_DECEL_MAX]), p[P_ACCEL_MAX])
    return u0, u1


@njit(cache=True, fastmath=False)
def residual_correction(xs, us, p, fp, z, rw, corr, work):
    """``corr[3] = g(x, u, f_p(x, u), z)``: the residual's correction at a step start (``fp[7]`` written too)."""
    dynamic_rhs_nb(xs, us, p, fp)
    residual_z_nb(xs, us, fp, z, rw, corr, work)


# ------------------------------------------------------------------------------------------------
# one rollout (inlined into the kernels)
# ------------------------------------------------------------------------------------------------
@njit(cache=True, inline="always", fastmath=FM)
def _rollout(k, x0, U, eps_k, V_k, sg, gamma, p, model, dt, nsub, cost_id, cp, tab, i0, s0,
             u_prev, gen, seed, qtab, store, traj_k, rec, X_k, recx, rw, zr_k):
    # (at most 29 arguments: a longer call compiles to CALL_FUNCTION_EX, which numba cannot inline)
    # residual: zr_k = this sample's filter states z[nz] (set by the caller), then scratch
    T = U.shape[0]
    h = dt / nsub
    sig0, sig1 = sg[0], sg[1]
    inv0 = 1.0 / (sig0 * sig0) if sig0 > 0.0 else 0.0
    inv1 = 1.0 / (sig1 * sig1) if sig1 > 0.0 else 0.0
    rho0, rho1 = sg[2], sg[3]
    cr0 = math.sqrt(1.0 - rho0 * rho0)
    cr1 = math.sqrt(1.0 - rho1 * rho1)
    e0 = 0.0
    e1 = 0.0
    up0 = u_prev[0]
    up1 = u_prev[1]
    use_res = rw.shape[0] > 0 and model == MODEL_DYNAMIC
    nz = max(int(rw[6]), 1) if use_res else 0
    z_k = zr_k[0:nz]
    xs = zr_k[nz + RES_X:nz + RES_U]
    us = zr_k[nz + RES_U:nz + RES_FP]
    fp = zr_k[nz + RES_FP:nz + RES_CORR]
    corr = zr_k[nz + RES_CORR:nz + RES_WORK]
    work = zr_k[nz + RES_WORK:]
    x, y, psi, vx, vy, r, d = x0[0], x0[1], x0[2], x0[3], x0[4], x0[5], x0[6]
    cps = math.cos(psi)
    sps = math.sin(psi)
    if model == MODEL_KINEMATIC:
        vx = math.sqrt(x0[3] * x0[3] + x0[4] * x0[4])
        vy = 0.0
        r = 0.0
    if rec:
        traj_k[0, 0] = x
        traj_k[0, 1] = y
    if recx:
        X_k[0, 0], X_k[0, 1], X_k[0, 2], X_k[0, 3] = x, y, psi, vx
        X_k[0, 4], X_k[0, 5], X_k[0, 6] = vy, r, d
    s = _splitmix(seed, k)
    cost = 0.0
    ctrl = 0.0
    i = i0
    iu = i0
    crashed = False
    prog = s0
    for t in range(T):
        if gen:
            s, n0 = _normal(s, qtab)
            s, n1 = _normal(s, qtab)
            if t == 0:
                e0 = n0
                e1 = n1
            else:  # AR(1): stationary variance 1, correlation rho between steps
                e0 = rho0 * e0 + cr0 * n0
                e1 = rho1 * e1 + cr1 * n1
            if k == 0:
                e0 = 0.0
                e1 = 0.0
            if store:
                eps_k[t, 0] = e0
                eps_k[t, 1] = e1
        else:
            e0 = eps_k[t, 0]
            e1 = eps_k[t, 1]
        u0, u1 = clamp_inputs(d, U[t, 0] + sig0 * e0, U[t, 1] + sig1 * e1, p, dt)
        V_k[t, 0] = u0
        V_k[t, 1] = u1
        ctrl += U[t, 0] * (u0 - U[t, 0]) * inv0 + U[t, 1] * (u1 - U[t, 1]) * inv1
        if model == MODEL_KINEMATIC:
            for _ in range(nsub):
                x, y, psi, vx, d, cps, sps = kinematic_step_cs(x, y, psi, vx, d, cps, sps, u0, u1, p, h)
        elif use_res:
            xs[0], xs[1], xs[2], xs[3], xs[4], xs[5], xs[6] = x, y, psi, vx, vy, r, d
            us[0], us[1] = u0, u1
            residual_correction(xs, us, p, fp, z_k, rw, corr, work)
            for _ in range(nsub):
                x, y, psi, vx, vy, r, d, cps, sps = dynamic_step_cs(x, y, psi, vx, vy, r, d, cps, sps, u0, u1, p,
                                                                    h)
            vx += dt * corr[0]
            vy += dt * corr[1]
            r += dt * corr[2]
            aug_update_nb(z_k, u1, rw, dt)
        else:
            for _ in range(nsub):
                x, y, psi, vx, vy, r, d, cps, sps = dynamic_step_cs(x, y, psi, vx, vy, r, d, cps, sps, u0, u1, p,
                                                                    h)
        if cost_id == C.COST_RACING:
            c, i, iu, crashed, prog = C.racing_stage(tab, cp, t + 1, T, x, y, d, vx, vy, r, u0 - up0, u1 - up1,
                                                     i, iu, crashed, prog)
            cost += c
        else:
            cost += C.circle_stage(cp, x, y, vx)
        up0 = u0
        up1 = u1
        if rec:
            traj_k[t + 1, 0] = x
            traj_k[t + 1, 1] = y
        if recx:
            X_k[t + 1, 0], X_k[t + 1, 1], X_k[t + 1, 2], X_k[t + 1, 3] = x, y, psi, vx
            X_k[t + 1, 4], X_k[t + 1, 5], X_k[t + 1, 6] = vy, r, d
    if cost_id == C.COST_RACING:
        cost -= cp[C.C_PROGRESS] * (prog - s0)
    return cost + gamma * ctrl


@njit(cache=True, parallel=True, fastmath=FM)
def rollout_kernel(x0, U, eps, V, S, sigma, gamma, p, model, dt, nsub, cost_id, cp, tab, i0, s0, u_prev,
                   noise_mode, seed, qtab, store_noise, traj, n_rec, X_dummy, rw, z0, ZR):
    """Roll out all K samples in parallel (``sigma[4]``: noise std and AR(1) correlation per input): writes ``V[K, T, 2]`` (clamped samples), ``S[K]`` (costs),
    ``traj[:n_rec, T+1, 2]`` (xy of the first n_rec rollouts) and, when generating with
    ``store_noise``, ``eps[K, T, 2]``.

    Residual: ``rw`` flat weights (length 0: none), ``z0[nz]`` start filter states (``nz = max(n_aug, 1)``),
    ``ZR[K, ...]`` per-sample filter states + scratch (:func:`residual_buffers`; ``[1, 1]`` without)."""
    K = V.shape[0]
    gen = noise_mode == NOISE_GENERATE
    per_sample = rw.shape[0] > 0
    for k in prange(K):
        kk = np.int64(k)
        rec = kk < n_rec
        kr = kk if rec else np.int64(0)
        ke = kk if (store_noise or not gen) else np.int64(0)
        kz = kk if per_sample else np.int64(0)
        if per_sample:
            for j in range(z0.shape[0]):
                ZR[k, j] = z0[j]
        S[k] = _rollout(kk, x0, U, eps[ke], V[k], sigma, gamma, p, model, dt, nsub, cost_id, cp,
                        tab, i0, s0, u_prev, gen, seed, qtab, store_noise, traj[kr], rec,
                        X_dummy, False, rw, ZR[kz])


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


@njit(cache=True, parallel=True, fastmath=FM)
def weighted_update(V, w, out):
    """``out[T, 2] = sum_k w_k V[k]``, parallel over the horizon."""
    K, T = V.shape[0], V.shape[1]
    for t in prange(T):
        a0 = 0.0
        a1 = 0.0
        for k in range(K):
            a0 += w[k] * V[k, t, 0]
            a1 += w[k] * V[k, t, 1]
        out[t, 0] = a0
        out[t, 1] = a1


@njit(cache=True, fastmath=FM)
def nominal_rollout(x0, U, p, model, dt, nsub, cost_id, cp, tab, i0, s0, u_prev, X, Vn, traj_dummy, eps_dummy,
                    qtab, rw, z0, ZR):
    """Roll out ``U`` without noise; writes the clamped inputs into ``Vn[T, 2]`` and states into ``X[T+1, 7]``.

    Uses row 0 of the residual buffer ``ZR`` (after the parallel rollouts)."""
    if rw.shape[0] > 0:
        for j in range(z0.shape[0]):
            ZR[0, j] = z0[j]
    return _rollout(np.int64(0), x0, U, eps_dummy[0], Vn, NO_NOISE, 0.0, p, model, dt, nsub, cost_id, cp,
                    tab, i0, s0, u_prev, False, 0, qtab, False, traj_dummy[0], False, X, True,
                    rw, ZR[0])


@njit(cache=True)
def mppi_iteration(x0, U, eps, V, S, w, U_new, M, X, Vn, sigma, lam, gamma, p, model, dt, nsub, cost_id, cp, tab,
                   i0, s0, u_prev, noise_mode, seed, qtab, store_noise, traj, n_rec, eps_dummy, traj_dummy, rw, z0,
                   ZR):
    """The whole numba MPPI iteration (no allocation): rollouts, weights, update, smoothing, nominal rollout.

    In: ``x0[7]``, ``U[T, 2]`` (warm start), noise per ``noise_mode``. Out (written): ``V, S, w``,
    ``U_new[T, 2]`` (smoothed, then clamped along the nominal rollout), ``X[T+1, 7]`` nominal states,
    ``traj``. Returns ``(min cost, nominal cost, eta)``. Residual ``rw, z0, ZR``: see :func:`rollout_kernel`.
    """
    rollout_kernel(x0, U, eps, V, S, sigma, gamma, p, model, dt, nsub, cost_id, cp, tab, i0, s0, u_prev,
                   noise_mode, seed, qtab, store_noise, traj, n_rec, X, rw, z0, ZR)
    eta = compute_weights(S, lam, w)
    weighted_update(V, w, Vn)
    T = U.shape[0]
    for t in range(T):
        a0 = 0.0
        a1 = 0.0
        for j in range(T):
            a0 += M[t, j] * Vn[j, 0]
            a1 += M[t, j] * Vn[j, 1]
        U_new[t, 0] = a0
        U_new[t, 1] = a1
    c_nom = nominal_rollout(x0, U_new, p, model, dt, nsub, cost_id, cp, tab, i0, s0, u_prev, X, Vn, traj_dummy,
                            eps_dummy, qtab, rw, z0, ZR)
    for t in range(T):
        U_new[t, 0] = Vn[t, 0]
        U_new[t, 1] = Vn[t, 1]
    smin = math.inf
    for k in range(S.shape[0]):
        if S[k] < smin:
            smin = S[k]
    return smin, c_nom, eta


@njit(cache=True, fastmath=FM)
def project_state(tab, i, px, py, ds):
    """Local projection of the current position from index hint ``i``: returns ``(i, s)``."""
    i, iu, frac, nn = C.project_local(tab, i, i, px, py)
    return i, (i + frac) * ds


# ------------------------------------------------------------------------------------------------
# numpy reference
# ------------------------------------------------------------------------------------------------
def _pacejka_np(alpha, B, Cc, D, E):
    ba = B * alpha
    if E != 0.0:
        ba = ba - E * (ba - np.arctan(ba))
    return D * np.sin(Cc * np.arctan(ba))


def kinematic_step_np(x, y, psi, v, d, rate, a, p, h):
    L = p[P_LF] + p[P_LR]
    td = np.tan(d)
    tb = p[P_LR] * td / L
    cb = 1.0 / np.sqrt(1.0 + tb * tb)
    sb = tb * cb
    om = v * cb * td / L
    v_n = v + h * a
    pm = psi + 0.5 * h * om
    vm = 0.5 * (v + v_n)
    c, s = np.cos(pm), np.sin(pm)
    return x + h * vm * (c * cb - s * sb), y + h * vm * (s * cb + c * sb), psi + h * om, v_n, d + h * rate


def dynamic_step_np(x, y, psi, vx, vy, r, d, rate, a, p, h):
    m, iz, lf, lr = p[P_MASS], p[P_IZ], p[P_LF], p[P_LR]
    L = lf + lr
    vlo, vhi = p[P_VBLEND_LOW], p[P_VBLEND_HIGH]
    vxs = np.maximum(vx, 0.5 * vlo)
    dm = d + 0.5 * h * rate
    qf, qr = vy + lf * r, vy - lr * r
    af = dm - np.arctan2(qf, vxs)
    ar = -np.arctan2(qr, vxs)
    fzf, fzr = m * G * lr / L, m * G * lf / L
    muf = _pacejka_np(af, p[P_BF], p[P_CF], p[P_DF], p[P_EF])
    mur = _pacejka_np(ar, p[P_BR], p[P_CR], p[P_DR], p[P_ER])
    fyf, fyr = fzf * muf, fzr * mur
    f_drive = np.minimum(m * a, p[P_POWER_MAX] / np.maximum(vx, 1.0))
    f_grip = p[P_MU] * m * G
    fx = np.clip(f_drive, -f_grip, f_grip) - p[P_CROLL] * m * G * np.tanh(vx / vlo) - p[P_CDRAG] * vx * np.abs(vx)
    sd, cd = np.sin(dm), np.cos(dm)
    dvx = (fx - fyf * sd) / m + vy * r
    dvy_dyn = (fyr + fyf * cd) / m - vx * r
    dr_dyn = (lf * fyf * cd - lr * fyr) / iz
    tb = np.clip((vx - vlo) / (vhi - vlo), 0.0, 1.0)
    w = tb * tb * (3.0 - 2.0 * tb)
    dvx = w * dvx + (1.0 - w) * fx / m
    dr_kin = (rate * vx / (cd * cd) + dvx * sd / cd) / L
    dvy_kin = lr * dr_kin
    fvy = w * dvy_dyn + (1.0 - w) * dvy_kin
    fr = w * dr_dyn + (1.0 - w) * dr_kin
    with np.errstate(divide="ignore", invalid="ignore"):
        kf = fzf * np.where(np.abs(af) > 1e-6, muf / af, p[P_BF] * p[P_CF] * p[P_DF])
        kr = fzr * np.where(np.abs(ar) > 1e-6, mur / ar, p[P_BR] * p[P_CR] * p[P_DR])
    cf = vxs / (vxs * vxs + qf * qf)
    cr = vxs / (vxs * vxs + qr * qr)
    j11 = w * (-kr * cr - kf * cd * cf) / m
    j12 = w * ((kr * lr * cr - kf * cd * lf * cf) / m - vx)
    j21 = w * (-lf * kf * cd * cf + lr * kr * cr) / iz
    j22 = w * (-lf * lf * kf * cd * cf - lr * lr * kr * cr) / iz
    a11, a12, a21, a22 = 1.0 - THETA * h * j11, -THETA * h * j12, -THETA * h * j21, 1.0 - THETA * h * j22
    det = np.maximum(a11 * a22 - a12 * a21, 1e-6)
    b1, b2 = h * fvy, h * fr
    vy_n = vy + (a22 * b1 - a12 * b2) / det
    r_n = r + (a11 * b2 - a21 * b1) / det
    vx_n = vx + h * dvx
    psi_n = psi + 0.5 * h * (r + r_n)
    pm = 0.5 * (psi + psi_n)
    c, s = np.cos(pm), np.sin(pm)
    vxm, vym = 0.5 * (vx + vx_n), 0.5 * (vy + vy_n)
    return x + h * (vxm * c - vym * s), y + h * (vxm * s + vym * c), psi_n, vx_n, vy_n, r_n, d + h * rate


def clamp_inputs_np(d, u0, u1, p, dt):
    smax, rmax = p[P_STEER_MAX], p[P_STEER_RATE_MAX]
    u0 = np.minimum(np.maximum(u0, (-smax - d) / dt), (smax - d) / dt)
    u0 = np.clip(u0, -rmax, rmax)
    u1 = np.clip(u1, -p[P_DECEL_MAX], p[P_ACCEL_MAX])
    return u0, u1


def rollout_np(x0, Vin, p, model, dt, nsub, cost_id, cp, tab, i0, s0, u_prev, residual=None, z0=None):
    """numpy reference rollouts of input sequences ``Vin[K, T, 2]`` (clamped on the way).

    ``residual`` : :class:`racing.models.residual.ResidualWeights` (dynamic model only) with start
    filter states ``z0[n_aug]`` (default: steady state of ``u_prev``).
    Returns ``(cost[K] without the control cost, V[K, T, 2] clamped, X[K, T+1, 7])``.
    """
    K, T = Vin.shape[0], Vin.shape[1]
    h = dt / nsub
    st = [np.full(K, float(v)) for v in x0]
    if model == MODEL_KINEMATIC:
        st[3] = np.full(K, math.hypot(x0[3], x0[4]))
        st[4] = np.zeros(K)
        st[5] = np.zeros(K)
    X = np.zeros((K, T + 1, NSTATE))
    X[:, 0] = np.stack(st, axis=-1)
    V = np.zeros_like(Vin)
    cost = np.zeros(K)
    i = np.full(K, i0, dtype=np.int64)
    iu = i.copy()
    crashed = np.zeros(K, bool)
    prog = np.full(K, float(s0))
    up0, up1 = np.full(K, float(u_prev[0])), np.full(K, float(u_prev[1]))
    use_res = residual is not None and model == MODEL_DYNAMIC
    if use_res:
        from racing.models.dynamic import dynamic_rhs

        z = np.zeros((K, residual.n_aug))
        z[:] = residual.aug_init(np.asarray(u_prev, float)) if z0 is None else np.asarray(z0, float)[:residual.n_aug]
    for t in range(T):
        x, y, psi, vx, vy, r, d = st
        u0, u1 = clamp_inputs_np(d, Vin[:, t, 0], Vin[:, t, 1], p, dt)
        V[:, t, 0], V[:, t, 1] = u0, u1
        if use_res:
            xs = np.stack(st, axis=-1)
            us = np.stack([u0, u1], axis=-1)
            corr = residual(xs, us, dynamic_rhs(xs, us, p), z)
        for _ in range(nsub):
            if model == MODEL_KINEMATIC:
                x, y, psi, vx, d = kinematic_step_np(x, y, psi, vx, d, u0, u1, p, h)
            else:
                x, y, psi, vx, vy, r, d = dynamic_step_np(x, y, psi, vx, vy, r, d, u0, u1, p, h)
        if use_res:
            vx, vy, r = vx + dt * corr[:, 0], vy + dt * corr[:, 1], r + dt * corr[:, 2]
            z = residual.aug_update(z, us, dt)
        st = [x, y, psi, vx, vy, r, d]
        X[:, t + 1] = np.stack(st, axis=-1)
        if cost_id == C.COST_RACING:
            c, i, iu, crashed, prog = C.racing_stage_np(tab, cp, t + 1, T, x, y, d, vx, vy, r, u0 - up0, u1 - up1,
                                                        i, iu, crashed, prog)
        else:
            c = C.circle_stage_np(cp, x, y, vx)
        cost = cost + c
        up0, up1 = u0, u1
    if cost_id == C.COST_RACING:
        cost = cost - cp[C.C_PROGRESS] * (prog - s0)
    return cost, V, X


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


def mppi_step_numpy(x0, U, eps, sigma, lam, gamma, p, model, dt, nsub, cost_id, cp, tab, i0, s0, u_prev, M,
                    residual=None, z0=None):
    """numpy reference of one MPPI iteration given the noise ``eps[K, T, 2]`` (``residual``, ``z0``: see
    :func:`rollout_np`).

    Returns a dict with ``U_new[T, 2]``, ``S[K]``, ``w[K]``, ``V[K, T, 2]``, ``X[T+1, 7]`` (nominal).
    """
    sigma = np.asarray(sigma, dtype=float)[:2]
    inv = np.where(sigma > 0, 1.0 / np.where(sigma > 0, sigma, 1.0) ** 2, 0.0)
    cost, V, _ = rollout_np(x0, U[None] + sigma * eps, p, model, dt, nsub, cost_id, cp, tab, i0, s0, u_prev,
                            residual, z0)
    ctrl = np.sum(U[None] * (V - U[None]) * inv, axis=(1, 2))
    S = cost + gamma * ctrl
    S = np.where(np.isfinite(S), S, np.inf)
    w = weights_np(S, lam)
    U_upd = np.einsum("k,ktj->tj", w, V)
    U_s = M @ U_upd
    c_nom, Vn, Xn = rollout_np(x0, U_s[None], p, model, dt, nsub, cost_id, cp, tab, i0, s0, u_prev, residual, z0)
    return {"U_new": Vn[0], "S": S, "w": w, "V": V, "X": Xn[0], "nominal_cost": float(c_nom[0])}
