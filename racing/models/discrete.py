r"""The discrete-time models the controllers plan with (MPPI rollouts, iLQR, the numpy references).

Written once, elementwise, against ``ops`` (numpy / torch / casadi, :mod:`racing.models.ops`; the scalar
module :mod:`racing.models.sops` in compiled kernels), on top of the continuous components of
:mod:`racing.models.dynamic` and :mod:`racing.models.kinematic`: no model math is repeated here, only the
discretisation. The heading is carried as (cos psi, sin psi) beside psi so that the compiled rollouts need no
trigonometric call for it; the vectorised wrappers :func:`dynamic_step` and :func:`kinematic_step` take
``x[..., nx]``, ``u[..., 2]`` like the continuous models.

* **kinematic** (state x, y, psi, v, delta): v and delta by explicit Euler, the heading by its exact rate,
  the position by the midpoint rule (heading and speed at mid-step).
* **dynamic** (state x, y, psi, v_x, v_y, r, delta): the stiff lateral states (v_y, r) take a one-stage
  *linearly-implicit* step with the tangent tyre stiffness, of exponential-Rosenbrock form: with J the Jacobian of
  (v_y', r') in (v_y, r), H = h J and q the forcing of (v_y', r') by what else moves over the step (the steering at
  its rate, v_x at its rate: (df/d delta) delta' + (df/dv_x) v_x'),

      Delta(v_y, r) = D(H)^-1 [ (I - H/6) h f(x_n) + (I - H/3) h^2 q / 2 ],   D(H) = I - 2H/3 + H^2/6,

  i.e. phi_1(H) and phi_2(H) of the exact solution of the linearised system replaced by rational functions with the
  right limits: its amplification (1 + z/3) / (1 - 2z/3 + z^2/6) is the (1, 2) Pade approximant of e^z (third
  order on linear systems, L-stable: a stiff mode at low speed settles at the step's end instead of ringing, as
  the trapezoid's -1 made it, and the quasi-steady state follows the steering's full change over the step).
  v_x takes a linearised trapezoidal step (v_x' moving with the lateral step's change of (v_y, r) and, implicitly,
  with v_x); the pose a trapezoidal update; the tyre forces see the steering angle at mid-step.
  The axle loads, the friction-ellipse factors and the longitudinal force are those of
  :func:`racing.models.dynamic.axle_forces` at the held input (the factors enter the Jacobian as constants).
  Stable at dt = 0.02-0.1 s where explicit Euler/RK4 of the tyre dynamics is not; the tests
  (``tests/models/test_discrete.py``) hold it to RK4 at 1 kHz of the continuous model within 2 % of the peak
  yaw rate and v_y on steering ramps and brake-in-turn manoeuvres (gt_car 20-70 m/s, f1tenth 2-10 m/s) at
  the controllers' step of 0.04-0.05 s (largest error 1.2 %).

The inputs are (steering rate [rad/s], acceleration [m/s^2]) held over the step ``h`` [s]; no input limits
(the controllers clamp).
"""
from __future__ import annotations


from racing.models.fastmath import scalar
from racing.models.dynamic import (axle_forces, blend_weight, body_derivatives_from_forces, pacejka, pacejka_slope,
                                   resistance, slip_angles)
from racing.models.kinematic import slip_and_yaw_rate
from racing.models.ops import NUMPY
from racing.models.params import P_BF, P_BR, P_CF, P_CR, P_DF, P_DR, P_EF, P_ER, P_IZ, P_LF, P_LR, P_MASS, P_VBLEND_LOW

@scalar
def rotate_half(c, s, dpsi, ops):
    """(cos, sin) of the mid-step heading psi + dpsi/2 and of the end heading psi + dpsi from (c, s) of psi."""
    s1, c1 = ops.sincos(0.5 * dpsi)
    cm = c * c1 - s * s1
    sm = s * c1 + c * s1
    return cm, sm, cm * c1 - sm * s1, sm * c1 + cm * s1


@scalar
def kinematic_step_c(x, y, psi, v, d, c, s, rate, a, p, h, ops):
    """One kinematic step of ``h`` [s]: returns (x, y, psi, v, delta, cos psi, sin psi) at the step end."""
    sb, cb, om = slip_and_yaw_rate(v, d, p, ops)
    v_n = v + h * a
    cm, sm, c_n, s_n = rotate_half(c, s, h * om, ops)
    vm = 0.5 * (v + v_n)
    return (x + h * vm * (cm * cb - sm * sb), y + h * vm * (sm * cb + cm * sb), psi + h * om, v_n, d + h * rate,
            c_n, s_n)


@scalar
def dynamic_step_c(x, y, psi, vx, vy, r, d, c, s, rate, a, p, h, ops):
    """One dynamic step of ``h`` [s] (module doc): returns (x, y, psi, v_x, v_y, r, delta, cos psi, sin psi)."""
    m, iz, lf, lr = p[P_MASS], p[P_IZ], p[P_LF], p[P_LR]
    dm = d + 0.5 * h * rate  # the steering angle at mid-step (it moves linearly over the step)
    af, ar = slip_angles(vx, vy, r, dm, p, ops)
    fzf, fzr, ft, ef, er = axle_forces(vx, a, p, ops)
    # the combined-slip factors by similarity (racing.models.dynamic.lateral_forces_at): peak x k, B / k
    muf, dmuf = pacejka_slope(af, p[P_BF] / ef, p[P_CF], p[P_DF] * ef, p[P_EF], ops)
    mur, dmur = pacejka_slope(ar, p[P_BR] / er, p[P_CR], p[P_DR] * er, p[P_ER], ops)
    fyf, fyr = fzf * muf, fzr * mur
    fx = ft - resistance(vx, p, ops)
    w = blend_weight(vx, p, ops)
    sd, cd = ops.sincos(dm)
    dvx, fvy, fr = body_derivatives_from_forces(vx, vy, r, sd, cd, rate, fyf, fyr, fx, w, p)
    # Jacobian of (v_y', r') in (v_y, r) with the tangent tyre stiffness (slip-angle sensitivities of atan)
    kf = fzf * dmuf
    kr = fzr * dmur
    vxs = ops.maximum(vx, 0.5 * p[P_VBLEND_LOW])
    qf = vy + lf * r
    qr = vy - lr * r
    inf = 1.0 / (vxs * vxs + qf * qf)  # d alpha / d(v_y, r, v_x) share these denominators
    inr = 1.0 / (vxs * vxs + qr * qr)
    cf = vxs * inf
    cr = vxs * inr
    j11 = w * (-kr * cr - kf * cd * cf) / m
    j12 = w * ((kr * lr * cr - kf * cd * lf * cf) / m - vx)
    j21 = w * (-lf * kf * cd * cf + lr * kr * cr) / iz
    j22 = w * (-lf * lf * kf * cd * cf - lr * lr * kr * cr) / iz
    # what moves (v_y', r') over the step besides (v_y, r): the steering (its rate) and v_x (braking, drive),
    # q = (df/d delta) delta' + (df/dv_x) v_x' (the non-autonomous term of a Rosenbrock step; df/d delta from the
    # tyres alone, the kinematic blend's steering term enters through f at mid-step)
    dafx = qf * inf  # d alpha_f / d v_x
    darx = qr * inr  # d alpha_r / d v_x
    fdf = kf * cd - fyf * sd  # d(F_yf cos delta) / d delta
    qx1 = w * ((kf * cd * dafx + kr * darx) / m - r) * dvx  # (df/dv_x) v_x'
    qx2 = w * (lf * kf * cd * dafx - lr * kr * darx) / iz * dvx
    qd1 = w * fdf / m * rate  # (df/d delta) delta'
    qd2 = w * lf * fdf / iz * rate
    # Delta = D(H)^-1 [(I - H/6) h f(delta_n) + (I - H/3) h^2 q / 2], H = h J, D(H) = I - 2H/3 + H^2/6 (module doc);
    # f is taken at mid-step, f(delta_n) + h/2 (df/d delta) delta', so the bracket is
    # h (f + h qx / 2) - H g / 6 with g = h (f + h qx + h qd / 2)
    h11, h12, h21, h22 = h * j11, h * j12, h * j21, h * j22
    g1 = h * (fvy + h * (qx1 + 0.5 * qd1))
    g2 = h * (fr + h * (qx2 + 0.5 * qd2))
    b1 = h * (fvy + 0.5 * h * qx1) - (h11 * g1 + h12 * g2) * (1.0 / 6.0)
    b2 = h * (fr + 0.5 * h * qx2) - (h21 * g1 + h22 * g2) * (1.0 / 6.0)
    # v_x' sensitivities (for v_x's step below): to v_y, r and v_x through the front slip angle
    avy = w * (sd * kf * cf / m + r)
    avr = w * (sd * kf * lf * cf / m + vy)
    avx = -w * sd * kf * dafx / m
    # D(H) = alpha I + beta H by Cayley-Hamilton (H^2 = tr H H - det H I); its inverse is adj(D) / det(D) with
    # adj(D) = alpha I + beta adj(H)
    trh = h11 + h22
    deth = h11 * h22 - h12 * h21
    al = 1.0 - deth * (1.0 / 6.0)
    be = trh * (1.0 / 6.0) - 2.0 / 3.0
    detd = ops.maximum(al * al + al * be * trh + be * be * deth, 1e-6)
    # v_x's implicit factor (below) shares the division
    den_x = ops.maximum(1.0 - 0.5 * h * avx, 0.5)
    inv = 1.0 / (detd * den_x)
    idet = inv * den_x
    dvy_s = ((al + be * h22) * b1 - be * h12 * b2) * idet
    dr_s = ((al + be * h11) * b2 - be * h21 * b1) * idet
    vy_n = vy + dvy_s
    r_n = r + dr_s
    # v_x: a linearised trapezoid, v_x' moving with (v_y, r) over the step as the lateral step found and with v_x
    # itself (the slip angles' dependence on v_x), the latter implicitly (guarded where that slope is positive)
    vx_n = vx + h * (dvx + 0.5 * (avy * dvy_s + avr * dr_s)) * (inv * detd)
    dpsi = 0.5 * h * (r + r_n)
    cm, sm, c_n, s_n = rotate_half(c, s, dpsi, ops)
    vxm = 0.5 * (vx + vx_n)
    vym = 0.5 * (vy + vy_n)
    return (x + h * (vxm * cm - vym * sm), y + h * (vxm * sm + vym * cm), psi + dpsi, vx_n, vy_n, r_n, d + h * rate,
            c_n, s_n)


def dynamic_step(x, u, p, h, ops=NUMPY):
    """Vectorised dynamic step: ``x_next[..., 7]`` from ``x[..., 7]``, ``u[..., 2]`` over ``h`` [s]."""
    g = ops.get
    psi = g(x, 2)
    out = dynamic_step_c(g(x, 0), g(x, 1), psi, g(x, 3), g(x, 4), g(x, 5), g(x, 6), ops.cos(psi), ops.sin(psi),
                         g(u, 0), g(u, 1), p, h, ops)
    return ops.stack(list(out[:7]))


def kinematic_step(x, u, p, h, ops=NUMPY):
    """Vectorised kinematic step: ``x_next[..., 5]`` from ``x[..., 5]``, ``u[..., 2]`` over ``h`` [s]."""
    g = ops.get
    psi = g(x, 2)
    out = kinematic_step_c(g(x, 0), g(x, 1), psi, g(x, 3), g(x, 4), ops.cos(psi), ops.sin(psi), g(u, 0), g(u, 1),
                           p, h, ops)
    return ops.stack(list(out[:5]))


__all__ = ["dynamic_step", "dynamic_step_c", "kinematic_step", "kinematic_step_c", "pacejka"]
