r"""Dynamic single-track model with Pacejka lateral tyre forces, numpy/torch/casadi from one source.

State ``x[..., 7]`` (indices ``X, Y, YAW, VX, VY, YAW_RATE, STEER``):
    x, y [m] CoG position (world); yaw psi [rad]; v_x, v_y [m/s] body-frame CoG velocity
    (x forward, y left); yaw rate r [rad/s]; delta [rad] front road-wheel steering angle.
Input ``u[..., 2]`` (indices ``U_STEER_RATE, U_ACCEL``):
    steering rate [rad/s]; longitudinal acceleration command a [m/s^2] (drive > 0, brake < 0).

Forces (g = 9.81 m/s^2, L = l_f + l_r, static axle loads F_z0f = m g l_r / L, F_z0r = m g l_f / L)::

    alpha_f = delta - atan2(v_y + l_f r, v_x~),   alpha_r = -atan2(v_y - l_r r, v_x~),  v_x~ = max(v_x, v_blend_low/2)
    a_t     = clip(a, a_lo(v_x), a_hi(v_x))        tyre acceleration: motor power P / (m max(v_x, 1)), grip (below)
    F_zf    = F_z0f - m a_t h_cg / L + s_d c_down v_x^2,   F_zr = F_z0r + m a_t h_cg / L + (1 - s_d) c_down v_x^2
    F_xf    = s m a_t,   F_xr = (1 - s) m a_t          s = drive_front (a_t > 0) or brake_front (a_t < 0)
    k_i     = 1 - c + c sqrt(max(1 - 0.9 (F_xi / (mu F_zi))^2, 0.01))         (friction ellipse, c = combined_slip)
    F_yi    = F_zi D'_i sin(C_i atan(B'_i alpha_i - E_i (B'_i alpha_i - atan(B'_i alpha_i))))     (Pacejka)
              with D'_i = k_i D_i, B'_i = B_i / k_i    (similarity: the peak shrinks, the cornering stiffness stays)
    F_x     = m a_t - c_roll m g tanh(v_x / v_blend_low) - c_drag v_x |v_x|

The grip limit on a_t is ``mu (g + c_down v_x^2 / m)`` for the plain model (``combined_slip = 0``) and, with
``combined_slip = 1``, each axle's ``|F_xi| <= mu F_zi`` at its transferred load (closed form,
:func:`accel_limits`). **The plain model** (static loads, no ellipse, one grip limit) is ``h_cg = 0``,
``combined_slip = 0``, ``c_down = 0``. (The front axle's longitudinal force acts along the car's x axis, not the
steered wheel's: its ``sin delta`` share is neglected.)

Dynamic equations (body frame)::

    v_x' = (F_x - F_yf sin delta) / m + v_y r
    v_y' = (F_yr + F_yf cos delta) / m - v_x r
    r'   = (l_f F_yf cos delta - l_r F_yr) / I_z

At low speed the slip angles are ill-conditioned, so v_y' and r' are blended with the
kinematic bicycle expressed in body velocities (v_y = l_r r, r = v_x tan(delta) / L)::

    v_x'_kin = F_x / m,   v_y'_kin = l_r / L (delta' v_x / cos^2 delta + v_x' tan delta),   r'_kin = v_y'_kin / l_r
    w = smoothstep((v_x - v_blend_low) / (v_blend_high - v_blend_low))    (0 below v_blend_low, 1 above v_blend_high, C1)
    f = w f_dyn + (1 - w) f_kin     for v_x', v_y', r'

Kinematics: x' = v_x cos psi - v_y sin psi, y' = v_x sin psi + v_y cos psi, psi' = r, delta' = u_steer_rate.
The function is pure and smooth apart from the min/clip force limits; command limits are the caller's job.

**One source.** The equations are written once, elementwise, as the component functions below
(:func:`pacejka`, :func:`slip_angles`, :func:`axle_forces`, :func:`tyre_force_set`,
:func:`blend_weight`, :func:`body_derivatives`) against an array namespace ``ops``. They run vectorised on
numpy (the reference), torch and casadi (:mod:`racing.models.ops`), and compile into scalar numba CPU and
CUDA code with ``ops = racing.models.sops`` (they are registered with numba's generic target,
``register_jitable``). :func:`dynamic_rhs` (vectorised) and :func:`dynamic_rhs_s` (scalar, writes into a
buffer) are thin wrappers; the discrete step the controllers use is in :mod:`racing.models.discrete`.
"""
from __future__ import annotations

import math

from racing.models import sops
from racing.models.fastmath import scalar
from racing.models.kinematic import body_velocities
from racing.models.ops import NUMPY
from racing.models.params import (
    P_BF,
    P_BR,
    P_BRAKE_FRONT,
    P_CDOWN,
    P_CDRAG,
    P_CF,
    P_COMBINED,
    P_CR,
    P_CROLL,
    P_DF,
    P_DOWN_FRONT,
    P_DR,
    P_DRIVE_FRONT,
    P_EF,
    P_ER,
    P_HCG,
    P_IZ,
    P_LF,
    P_LR,
    P_MASS,
    P_MU,
    P_POWER_MAX,
    P_VBLEND_HIGH,
    P_VBLEND_LOW,
    G,
)

#: the physics' version, part of every cached line's fingerprint (racing.raceline.cache): change it with the
#: equations (the parameters alone do not say which equations a cached minimum-time line was solved with)
MODEL_VERSION = "2026-11-27 load transfer, combined slip by similarity"

X, Y, YAW, VX, VY, YAW_RATE, STEER = 0, 1, 2, 3, 4, 5, 6
NX = 7
U_STEER_RATE, U_ACCEL = 0, 1
NU = 2
STATE_NAMES = ("x", "y", "yaw", "vx", "vy", "yaw_rate", "steer")
STATE_UNITS = ("m", "m", "rad", "m/s", "m/s", "rad/s", "rad")
INPUT_NAMES = ("steer_rate", "accel")


# ------------------------------------------------------------------------------------------------
# components (elementwise; ``ops`` = numpy / torch / casadi namespace or the scalar module sops)
# ------------------------------------------------------------------------------------------------
@scalar
def pacejka(alpha, B, C, D, E, ops=NUMPY):
    """Normalised lateral force F_y / F_z [-] of the magic formula at slip angle ``alpha`` [rad].

    """
    ba = B * alpha
    return D * ops.sin(C * ops.atan(ba - E * (ba - ops.atan(ba))))


@scalar
def pacejka_slope(alpha, B, C, D, E, ops):
    """(F_y / F_z [-], d(F_y / F_z)/d alpha [1/rad]) of :func:`pacejka` at ``alpha`` [rad]: the force and the
    tangent cornering stiffness per unit load from one evaluation (one arctangent pair, one sin/cos)."""
    ba = B * alpha
    q = 1.0 + ba * ba
    phi = ba - E * (ba - ops.atan(ba))
    sn, cs = ops.sincos(C * ops.atan(phi))  # compiled: polynomials, no libm call (|C atan| < pi for C < 2)
    # d phi / d alpha = B - E (B - B / q) = B (q (1 - E) + E) / q: one division for the whole slope
    return D * sn, D * cs * C * B * (q * (1.0 - E) + E) / (q * (1.0 + phi * phi))


def peak_slip_angle(B: float, C: float, E: float) -> float:
    """Slip angle [rad] of the peak of :func:`pacejka`: where ``C atan(B a - E (B a - atan(B a))) = pi / 2``;
    a curve without a peak (``C <= 1``) gets the slip angle where it reaches 99 % of ``D``; ``inf`` when the
    curve never gets there (``E >= 1``, ``B <= 0``).

    The one peak-slip function: the MPPI tyre-slip term, the min-time OCP's slip limit and its QSS inverse use
    it. Bisection to 1e-15 rad on the increasing left-hand side (plain Python floats)."""
    if B <= 0.0 or E >= 1.0 or C <= 0.0:
        return math.inf
    angle = 0.5 * math.pi / C if C > 1.0 else math.asin(0.99) / C
    if angle >= 0.5 * math.pi:  # C < 0.91: the curve never reaches 99 % of D
        return math.inf
    target = math.tan(angle)

    def f(a):
        return B * a - E * (B * a - math.atan(B * a)) - target

    lo, hi = 0.0, 1.0 / B
    while f(hi) < 0.0:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return 0.5 * (lo + hi)


@scalar
def static_axle_loads(p):
    """Static vertical loads (F_zf, F_zr) [N] = m g (l_r, l_f) / L."""
    L = p[P_LF] + p[P_LR]
    return p[P_MASS] * G * p[P_LR] / L, p[P_MASS] * G * p[P_LF] / L


@scalar
def axle_loads(ax, vx, p, ops):
    """Axle loads (F_zf, F_zr) [N] with longitudinal load transfer at the tyres' acceleration ``ax`` [m/s^2] and
    downforce at ``vx`` [m/s]: ``F_zf = m (g l_r - a_x h_cg) / L + s_d c_down v_x^2``,
    ``F_zr = m (g l_f + a_x h_cg) / L + (1 - s_d) c_down v_x^2`` (``s_d = down_front``), each kept above 5 % of its
    static value."""
    fzf0, fzr0 = static_axle_loads(p)
    dz = ax * (p[P_MASS] * p[P_HCG] / (p[P_LF] + p[P_LR]))  # the factor of the car alone (hoisted in loops)
    down = p[P_CDOWN] * vx * vx
    return (ops.maximum(fzf0 - dz + p[P_DOWN_FRONT] * down, 0.05 * fzf0),
            ops.maximum(fzr0 + dz + (1.0 - p[P_DOWN_FRONT]) * down, 0.05 * fzr0))


@scalar
def slip_angles(vx, vy, r, delta, p, ops):
    """Slip angles (alpha_f, alpha_r) [rad] with ``v_x~ = max(v_x, v_blend_low / 2)`` (> 0, so atan of the ratio
    equals atan2); ``delta`` [rad] is the steering angle the front tyres see."""
    ivx = 1.0 / ops.maximum(vx, 0.5 * p[P_VBLEND_LOW])
    return delta - ops.atan((vy + p[P_LF] * r) * ivx), -ops.atan((vy - p[P_LR] * r) * ivx)


@scalar
def lateral_forces_at(alpha_f, alpha_r, fzf, fzr, kf, kr, p, ops):
    """Lateral axle forces (F_yf, F_yr) [N] (:func:`pacejka`) at axle loads ``fzf, fzr`` [N] with each axle's
    combined-slip factor ``kf, kr`` [-] (:func:`ellipse_factor`, 1 = pure lateral slip) applied by similarity:
    the peak ``D`` scales by k and the stiffness factor ``B`` by 1/k, so the cornering stiffness ``B C D`` is
    kept and only the force the tyre can reach shrinks (a tyre that drives or brakes saturates sooner; it does not
    go soft at small slip angles)."""
    return (fzf * pacejka(alpha_f, p[P_BF] / kf, p[P_CF], p[P_DF] * kf, p[P_EF], ops),
            fzr * pacejka(alpha_r, p[P_BR] / kr, p[P_CR], p[P_DR] * kr, p[P_ER], ops))


#: "no limit" in :func:`traction_limit` [m/s^2] (finite: the blend with weight 0 must not make 0 * inf)
NO_LIMIT = 1.0e4


@scalar
def traction_limit(share, load, transfer, p, ops):
    """Largest |acceleration| [m/s^2] one axle carries: ``share m a <= mu (load + m a transfer)`` for an axle that
    takes ``share`` [-] of the force, with load ``load`` [N] at a = 0 and ``transfer`` = +-h_cg / L [-] (the load it
    gains per unit of ``m a``); :data:`NO_LIMIT` where the load grows as fast as the force it must carry."""
    den = share - p[P_MU] * transfer
    ok = den > 1e-6
    return ops.where(ok, load * (p[P_MU] / (p[P_MASS] * ops.where(ok, den, 1.0))), NO_LIMIT)


@scalar
def grip_limits(vx, p, ops):
    """``(a_lo, a_hi)`` [m/s^2]: the tyres' longitudinal grip at ``v_x`` [m/s]. Plain model
    (``combined_slip = 0``): ``+-mu (g + c_down v_x^2 / m)``; with ``combined_slip = 1`` each axle carries at most
    ``mu F_zi`` of its share (``drive_front``, ``brake_front``) with the loads of :func:`axle_loads` at that
    acceleration (closed form, :func:`traction_limit`); weights between 0 and 1 blend the two."""
    m, hl = p[P_MASS], p[P_HCG] / (p[P_LF] + p[P_LR])
    fzf0, fzr0 = static_axle_loads(p)
    down = p[P_CDOWN] * vx * vx
    df, dr = p[P_DOWN_FRONT] * down, (1.0 - p[P_DOWN_FRONT]) * down
    plain = p[P_MU] * (G + down * (1.0 / m))
    sd, sb = p[P_DRIVE_FRONT], p[P_BRAKE_FRONT]
    drive = ops.minimum(traction_limit(sd, fzf0 + df, -hl, p, ops), traction_limit(1.0 - sd, fzr0 + dr, hl, p, ops))
    brake = ops.minimum(traction_limit(sb, fzf0 + df, hl, p, ops), traction_limit(1.0 - sb, fzr0 + dr, -hl, p, ops))
    cs = p[P_COMBINED]
    return -((1.0 - cs) * plain + cs * brake), (1.0 - cs) * plain + cs * drive


@scalar
def accel_limits(vx, p, ops):
    """``(a_lo, a_hi)`` [m/s^2]: the range of the commanded acceleration that reaches the tyres at ``v_x`` [m/s]
    (:func:`axle_forces` saturates beyond it): the grip of :func:`grip_limits` and the motor power
    ``P / (m max(v_x, 1))``. The input limits ``accel_max``/``decel_max`` are the controllers' own clamp."""
    lo, hi = grip_limits(vx, p, ops)
    return lo, ops.minimum(p[P_POWER_MAX] / (p[P_MASS] * ops.maximum(vx, 1.0)), hi)


#: share of the friction ellipse's reduction the model applies: at full longitudinal use an axle keeps
#: sqrt(1 - 0.9) = 32 % of its pure lateral force (a real tyre keeps some at its longitudinal peak; the pure
#: ellipse's zero has an infinite slope there, which no gradient method or implicit step handles)
ELLIPSE = 0.9


@scalar
def ellipse_factor(fx, fz, p, ops):
    """Share [-] of an axle's pure lateral force left beside its longitudinal force ``fx`` [N] at load ``fz`` [N]:
    the friction ellipse ``sqrt(1 - ELLIPSE (F_x / (mu F_z))^2)`` (:data:`ELLIPSE`; at least 0.1 where
    ``|F_x| > mu F_z``), with weight ``combined_slip``."""
    u = fx / (p[P_MU] * fz)
    return 1.0 - p[P_COMBINED] + p[P_COMBINED] * ops.sqrt(ops.maximum(1.0 - ELLIPSE * u * u, 0.01))


@scalar
def resistance(vx, p, ops):
    """Rolling resistance and drag [N] (positive against forward motion)."""
    return p[P_CROLL] * p[P_MASS] * G * ops.tanh(vx * (1.0 / p[P_VBLEND_LOW])) + p[P_CDRAG] * vx * ops.abs(vx)


@scalar
def axle_forces(vx, a, p, ops):
    """What the acceleration command ``a`` [m/s^2] does at ``v_x`` [m/s]: ``(F_zf, F_zr, F_t, k_f, k_r)``: axle
    loads [N] (:func:`axle_loads` at the tyres' acceleration), the tyres' total longitudinal force
    ``F_t = m clip(a, a_lo, a_hi)`` [N] (:func:`accel_limits`) and each axle's lateral-force factor [-]
    (:func:`ellipse_factor` of its share of ``F_t``: ``drive_front`` when driving, ``brake_front`` when braking)."""
    lo, hi = accel_limits(vx, p, ops)
    at = ops.minimum(ops.maximum(a, lo), hi)
    fzf, fzr = axle_loads(at, vx, p, ops)
    ft = p[P_MASS] * at
    fxf = ft * ops.where(at > 0.0, p[P_DRIVE_FRONT], p[P_BRAKE_FRONT])
    return fzf, fzr, ft, ellipse_factor(fxf, fzf, p, ops), ellipse_factor(ft - fxf, fzr, p, ops)


@scalar
def longitudinal_force(vx, a, p, ops):
    """F_x [N]: drive/brake ``m a`` limited by motor power and grip (:func:`accel_limits`), minus rolling
    resistance and drag."""
    lo, hi = accel_limits(vx, p, ops)
    return p[P_MASS] * ops.maximum(ops.minimum(a, hi), lo) - resistance(vx, p, ops)


@scalar
def blend_weight(vx, p, ops):
    """C1 smooth step w(v_x): 0 below v_blend_low, 1 above v_blend_high (dynamic vs kinematic equations)."""
    vlo = p[P_VBLEND_LOW]
    tb = ops.minimum(ops.maximum((vx - vlo) * (1.0 / (p[P_VBLEND_HIGH] - vlo)), 0.0), 1.0)
    return tb * tb * (3.0 - 2.0 * tb)


@scalar
def body_derivatives_from_forces(vx, vy, r, sd, cd, ddelta, fyf, fyr, fx, w, p):
    """(v_x', v_y', r') from the axle forces [N], ``(sd, cd) = (sin, cos)`` of the steering angle and the blend
    weight ``w`` (dynamic equations blended with the kinematic bicycle in body velocities at low speed)."""
    m, iz, lf, lr = p[P_MASS], p[P_IZ], p[P_LF], p[P_LR]
    L = lf + lr
    dvx_dyn = (fx - fyf * sd) / m + vy * r
    dvy_dyn = (fyr + fyf * cd) / m - vx * r
    dr_dyn = (lf * fyf * cd - lr * fyr) / iz
    dvx = w * dvx_dyn + (1.0 - w) * fx / m
    icd = 1.0 / cd
    dr_kin = (ddelta * vx * icd + dvx * sd) * icd / L
    return dvx, w * dvy_dyn + (1.0 - w) * lr * dr_kin, w * dr_dyn + (1.0 - w) * dr_kin


@scalar
def tyre_force_set(vx, vy, r, delta, a, p, ops):
    """``(F_yf, F_yr, F_x)`` [N] of the single-track model: Pacejka lateral forces at the axle loads of
    :func:`axle_forces` with each axle's friction-ellipse factor (:func:`lateral_forces_at`), and the longitudinal
    force net of resistances."""
    af, ar = slip_angles(vx, vy, r, delta, p, ops)
    fzf, fzr, ft, kf, kr = axle_forces(vx, a, p, ops)
    fyf, fyr = lateral_forces_at(af, ar, fzf, fzr, kf, kr, p, ops)
    return fyf, fyr, ft - resistance(vx, p, ops)


@scalar
def body_derivatives(vx, vy, r, delta, ddelta, a, p, ops):
    """(v_x' [m/s^2], v_y' [m/s^2], r' [rad/s^2]) of the dynamic single-track model (module doc)."""
    fyf, fyr, fx = tyre_force_set(vx, vy, r, delta, a, p, ops)
    sd, cd = ops.sin(delta), ops.cos(delta)
    return body_derivatives_from_forces(vx, vy, r, sd, cd, ddelta, fyf, fyr, fx, blend_weight(vx, p, ops), p)


# ------------------------------------------------------------------------------------------------
# wrappers
# ------------------------------------------------------------------------------------------------
def tyre_forces(x, u, p, ops=NUMPY):
    """Slip angles [rad] and forces [N] of the single-track model.

    Returns ``(alpha_f, alpha_r, F_yf, F_yr, F_x)`` each shaped like ``x[..., 0]``.
    """
    vx, vy, r, delta = ops.get(x, VX), ops.get(x, VY), ops.get(x, YAW_RATE), ops.get(x, STEER)
    af, ar = slip_angles(vx, vy, r, delta, p, ops)
    fyf, fyr, fx = tyre_force_set(vx, vy, r, delta, ops.get(u, U_ACCEL), p, ops)
    return af, ar, fyf, fyr, fx


def dynamic_rhs(x, u, p, ops=NUMPY):
    """Time derivative of the dynamic single-track model.

    Parameters
    ----------
    x : array[..., 7]   (x [m], y [m], yaw [rad], v_x [m/s], v_y [m/s], r [rad/s], delta [rad])
    u : array[..., 2]   (steering rate [rad/s], acceleration command [m/s^2])
    p : array[N_PARAMS] ``VehicleParams.to_array()``
    ops : array namespace (numpy default)

    Returns
    -------
    xdot : array[..., 7]
    """
    yaw, vx, vy = ops.get(x, YAW), ops.get(x, VX), ops.get(x, VY)
    ddelta = ops.get(u, U_STEER_RATE)
    dvx, dvy, dr = body_derivatives(vx, vy, ops.get(x, YAW_RATE), ops.get(x, STEER), ddelta, ops.get(u, U_ACCEL),
                                    p, ops)
    return ops.stack([
        vx * ops.cos(yaw) - vy * ops.sin(yaw),
        vx * ops.sin(yaw) + vy * ops.cos(yaw),
        ops.get(x, YAW_RATE) + 0.0 * vx,
        dvx,
        dvy,
        dr,
        ddelta + 0.0 * vx,
    ])


@scalar
def dynamic_rhs_s(x, u, p, out):
    """Scalar form of :func:`dynamic_rhs` for compiled code: ``out[7] = f(x[7], u[2], p)``."""
    yaw, vx, vy = x[YAW], x[VX], x[VY]
    dvx, dvy, dr = body_derivatives(vx, vy, x[YAW_RATE], x[STEER], u[U_STEER_RATE], u[U_ACCEL], p, sops)
    cy, sy = math.cos(yaw), math.sin(yaw)
    out[0] = vx * cy - vy * sy
    out[1] = vx * sy + vy * cy
    out[2] = x[YAW_RATE]
    out[3] = dvx
    out[4] = dvy
    out[5] = dr
    out[6] = u[U_STEER_RATE]


def kinematic_state_from_dynamic(x):
    """Map dynamic states ``x[..., 7]`` to kinematic ones ``[..., 5]`` (speed = |(v_x, v_y)|)."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    return np.stack([x[..., X], x[..., Y], x[..., YAW], np.hypot(x[..., VX], x[..., VY]), x[..., STEER]], axis=-1)


def dynamic_state_from_kinematic(xk, p):
    """Map kinematic states ``[..., 5]`` to dynamic ones ``[..., 7]`` on the kinematic manifold
    (:func:`racing.models.kinematic.body_velocities`)."""
    import numpy as np


    xk = np.asarray(xk, dtype=float)
    vx, vy, r = body_velocities(xk[..., 3], xk[..., 4], p, NUMPY)
    return np.stack([xk[..., 0], xk[..., 1], xk[..., 2], vx, vy, r, xk[..., 4]], axis=-1)
