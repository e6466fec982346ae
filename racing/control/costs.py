r"""Racing cost terms as code (shared by MPPI and the gradient controllers); weights come from the controller
config (:class:`~racing.control.mppi.config.CostWeights`).

Kernels get two flat arrays: ``cp = cost_params(...)`` (weights and constants, indexed by the
``C_*`` constants) and the track table ``tab = track_table(...)`` ``float64[N, 8]`` with columns
``TAB_X, TAB_Y`` (centre-line sample [m]), ``TAB_TX, TAB_TY`` (unit chord direction to the next
sample), ``TAB_WL, TAB_WR`` (widths [m]), ``TAB_VCAP`` (speed cap [m/s]), ``TAB_NREF`` (raceline
lateral offset [m]).

Racing cost of one rollout (after each model step t = 1..T, state x_t, input u_{t-1})::

    d_t      = min(w_left - n_t, w_right + n_t)                     distance of the CoG to the nearer edge [m]
    crash    : d_t < crash_margin or |v_y| > tan(beta_max) max(v_x, 1)  (off the track, or spun)
               ->  + crash * (T - t + 1) / T, once; progress is frozen from then on
    boundary : + boundary * max(0, soft_margin - d_t)^2
    line     : + line * (n_t - n_ref(s_t))^2
    (also a crash: |r| max(v_x, 1) > rv_max, a yaw rate beyond the friction-limited one)
    speed    : + speed_cap * max(0, v_t - v_cap(s_t))^2 + speed_track * (v_t - v_cap(s_t))^2
    slip     : + slip * (v_y / max(v_x, 1))^2
    tyre     : + tyre_slip * sum_axles max(0, |alpha_axle| / alpha_peak_axle - 1)^2     slip angle past the force peak
               (alpha_f = delta - atan((v_y + l_f r) / max(v_x, 1)), alpha_r = -atan((v_y - l_r r) / max(v_x, 1));
               beyond the peak more steering only costs force: without this term the noise drifts the
               steering to full lock in long fast corners, where the cost is flat past the peak)
    smooth   : + steer_rate_change * (u0_t - u0_{t-1})^2 + accel_change * (u1_t - u1_{t-1})^2
    terminal : - progress * (s_T - s_0) + terminal_speed * max(0, v_T - v_cap(s_T))^2

with (s_t, n_t) from a local Frenet projection onto the centre-line polyline that starts at the
rollout's previous index (hill climbing on the distance to the samples, then projection onto the
chord), so a rollout step costs O(steps moved), not O(N). ``v_cap = cap_scale *`` the
friction-limited speed profile (:mod:`racing.geometry.speed_profile`) of the raceline (or the
centre line), mapped onto the centre-line samples; it acts as the value function beyond the
horizon (the car must be able to brake for what it cannot see).

**One source.** Each term is written once, elementwise, against an array namespace ``ops``
(:func:`boundary_cost`, :func:`line_cost`, :func:`speed_cost`, :func:`slip_cost`, :func:`tyre_slip_cost`,
:func:`input_change_cost`, :func:`crash_condition`, summed by :func:`stage_terms`). The compiled stage
(:func:`racing_stage_s`, ``ops = racing.models.sops``, numba CPU and CUDA) and the numpy reference
(:func:`racing_stage_np`) differ only in the Frenet projection (:func:`project_local` scalar hill climbing,
:func:`project_local_np` its vectorised twin). The crash flag and the hinges are not differentiable; gradient
methods use :func:`smooth_stage` (softplus hinges and barrier, smooth |.|), which tends to the same cost.

Adding a term: write ``my_term(..., cp, ops)`` here, add its weight to ``CostWeights`` and a ``C_*`` slot to
:func:`cost_params`, and add it in :func:`stage_terms` (and :func:`smooth_stage`) - every consumer picks it up.
"""
from __future__ import annotations

import math

import numpy as np

from racing.geometry.path import ClosedPath
from racing.geometry.speed_profile import speed_profile
from racing.models import sops
from racing.models.fastmath import fmax, fmin, scalar
from racing.models.ops import NUMPY

(C_PROGRESS, C_LINE, C_SPEED_CAP, C_TERMINAL_SPEED, C_BOUNDARY, C_CRASH, C_SLIP, C_DSTEER, C_DACCEL,
 C_SOFT_MARGIN, C_CRASH_MARGIN, C_DS, C_BETA_MAX, C_SPEED_TRACK, C_RV_MAX,
 C_TYRE_SLIP, C_LF, C_LR, C_INV_AF_PEAK, C_INV_AR_PEAK) = range(20)
N_COST_PARAMS = 20

TAB_X, TAB_Y, TAB_TX, TAB_TY, TAB_WL, TAB_WR, TAB_VCAP, TAB_NREF = range(8)
TAB_COLS = 8
MAX_SEARCH = 256


def cost_params(weights, soft_margin: float, crash_margin: float, ds: float = 1.0, beta_max: float = math.inf,
                rv_max: float = math.inf, l_f: float = 0.0, l_r: float = 0.0,
                alpha_peak_f: float = math.inf, alpha_peak_r: float = math.inf) -> np.ndarray:
    """Flat ``cp[N_COST_PARAMS]`` from :class:`CostWeights`, the margins [m], track spacing ``ds`` [m], the
    sideslip angle [rad] and the yaw-rate * speed [m/s^2] beyond which a rollout counts as crashed (spun), and
    the axle positions [m] and peak-force slip angles [rad] of the tyre-slip term (:func:`peak_slip_angle`)."""
    cp = np.zeros(N_COST_PARAMS)
    cp[C_PROGRESS] = weights.progress
    cp[C_LINE] = weights.line
    cp[C_SPEED_CAP] = weights.speed_cap
    cp[C_TERMINAL_SPEED] = weights.terminal_speed
    cp[C_BOUNDARY] = weights.boundary
    cp[C_CRASH] = weights.crash
    cp[C_SLIP] = weights.slip
    cp[C_DSTEER] = weights.steer_rate_change
    cp[C_DACCEL] = weights.accel_change
    cp[C_SOFT_MARGIN] = soft_margin
    cp[C_CRASH_MARGIN] = crash_margin
    cp[C_DS] = ds
    cp[C_RV_MAX] = rv_max if rv_max > 0.0 else math.inf
    cp[C_SPEED_TRACK] = getattr(weights, "speed_track", 0.0)
    cp[C_BETA_MAX] = math.tan(beta_max) if 0.0 < beta_max < 0.5 * math.pi else math.inf
    cp[C_TYRE_SLIP] = weights.tyre_slip
    cp[C_LF], cp[C_LR] = l_f, l_r
    cp[C_INV_AF_PEAK] = 1.0 / alpha_peak_f if alpha_peak_f > 0.0 else 0.0
    cp[C_INV_AR_PEAK] = 1.0 / alpha_peak_r if alpha_peak_r > 0.0 else 0.0
    return cp


class ProfileCap:
    """The friction-limited speed profile (:func:`racing.geometry.speed_profile.speed_profile`) of the raceline (or
    the centre line) on the track table's rows, at any grip: ``cap(grip_scale)`` -> ``float[N]`` [m/s], times
    ``cap_scale`` and at most ``v_max``. The path and its mapping onto the centre line's samples are made once; a
    call costs a compiled forward-backward pass (about 0.1-0.3 ms), so a controller re-makes its speed cap for a new
    grip estimate inside a control period (:class:`racing.control.grip.OnlineGrip`) with the braking and power
    limits kept: a cap scaled by ``sqrt(grip)`` moves the braking points too, where the car's brakes
    (``decel_max``), not its tyres, set them."""

    def __init__(self, track, params, use_raceline: bool = True, cap_scale: float = 1.0):
        self.params, self.cap_scale = params, float(cap_scale)
        self.s_rows = track.arrays()[:, 0]
        rl = track.raceline if use_raceline else None
        self.path = ClosedPath.from_track(track, rl is not None)
        self.raceline = rl
        if rl is not None:  # the path's samples in the centre line's frame, by arc length, over three laps
            s_p, n_p, _ = track.frenet_path(np.column_stack([self.path.x, self.path.y]))
            self.order = np.argsort(s_p)
            s_p = s_p[self.order]
            self.s_path = np.concatenate([s_p - track.length, s_p, s_p + track.length])
            self.n_ref = np.interp(self.s_rows, self.s_path, np.tile(n_p[self.order], 3))
        else:
            self.order, self.s_path, self.n_ref = None, self.path.s, None

    def profile(self, grip_scale: float):
        """The speed profile along the path (:class:`~racing.geometry.speed_profile.SpeedProfile`)."""
        return speed_profile(self.path.kappa, self.path.ds, self.params, grip_scale=grip_scale)

    def rows(self, v_path: np.ndarray) -> np.ndarray:
        """Speeds ``v_path[M]`` along the path [m/s] on the table's rows ``float[N]`` [m/s] (no scale, no cap)."""
        if self.order is None:
            return np.interp(self.s_rows, self.s_path, v_path)
        return np.interp(self.s_rows, self.s_path, np.tile(v_path[self.order], 3))

    def __call__(self, grip_scale: float) -> np.ndarray:
        return np.minimum(self.rows(self.profile(grip_scale).v) * self.cap_scale, self.params.v_max)


def track_table(track, params, grip_scale: float = 1.0, cap_scale: float = 1.05, use_raceline: bool = True,
                raceline_speed: bool = False, profile_cap: bool = True, margin: float = 1.0):
    """The kernel's track table ``float64[N, 8]`` (see module doc) and the profile lap time [s].

    ``v_cap`` is ``cap_scale`` times the friction-limited profile (``grip_scale``) of the raceline (or the
    centre line), or, with ``raceline_speed`` and a raceline that carries a speed profile (``vx > 0``, e.g.
    the cached minimum-time line), ``cap_scale`` times the lesser of that profile and the friction-limited one
    (so ``grip_scale < 1`` leaves a margin in the corners and none on the straights); with ``profile_cap=False``
    ``cap_scale`` times the raceline's own profile (a minimum-time line's speeds use the full model, e.g.
    braking while cornering, which the quasi-steady-state profile does not allow), lowered where the car's grip
    margin binds: ``margin`` (:func:`racing.models.params.usable_grip`, the share of the grip the car's
    identification vouches for, already in ``grip_scale``) < 1 multiplies the line's speeds by the friction-limited
    profile at ``grip_scale`` over the same at ``grip_scale / margin`` (about sqrt(margin) in the corners and their
    braking zones, close to 1 where the power sets the speed). The line was made for the car's full grip.
    """
    a = track.arrays()  # s, x, y, psi, kappa, w_left, w_right
    n = a.shape[0]
    xy = a[:, 1:3]
    d = np.roll(xy, -1, axis=0) - xy
    dn = np.linalg.norm(d, axis=1)
    tab = np.zeros((n, TAB_COLS))
    tab[:, TAB_X], tab[:, TAB_Y] = xy[:, 0], xy[:, 1]
    tab[:, TAB_TX], tab[:, TAB_TY] = d[:, 0] / dn, d[:, 1] / dn
    tab[:, TAB_WL], tab[:, TAB_WR] = a[:, 5], a[:, 6]
    cap = ProfileCap(track, params, use_raceline)
    path, rl = cap.path, cap.raceline
    prof = cap.profile(grip_scale)
    lap, v_p = prof.lap_time, prof.v
    if rl is not None:
        if raceline_speed and np.all(np.asarray(rl.vx) > 0.0):
            v_rl = np.interp(path.s, np.append(rl.s, rl.length), np.append(rl.vx, rl.vx[0]))
            if profile_cap:
                v_rl = np.minimum(v_rl, prof.v)  # the friction-limited profile (grip_scale) caps it: a margin
            elif margin < 1.0:  # what the grip margin takes off the friction-limited profile, off the line's speeds
                v_rl = v_rl * (prof.v / cap.profile(grip_scale / margin).v)
            v_p = v_rl
            vm = 0.5 * (v_rl + np.roll(v_rl, -1))
            lap = float(np.sum(path.ds / np.maximum(vm, 1e-3)))
        tab[:, TAB_NREF] = cap.n_ref
    tab[:, TAB_VCAP] = np.minimum(cap.rows(v_p) * cap_scale, params.v_max)
    return np.ascontiguousarray(tab), lap


# ------------------------------------------------------------------------------------------------
# numba (scalar) versions
# ------------------------------------------------------------------------------------------------
@scalar
def _d2(tab, i, px, py):
    dx = px - tab[i, TAB_X]
    dy = py - tab[i, TAB_Y]
    return dx * dx + dy * dy


@scalar
def project_local(tab, i, iu, px, py):
    """Local Frenet projection from sample index ``i`` (``iu`` = unwrapped index).

    Returns ``(i, iu, frac, n)``: segment start, unwrapped start, fraction along the chord in
    [0, 1], signed lateral offset [m] (left +).
    """
    npts = tab.shape[0]
    d = _d2(tab, i, px, py)
    for _ in range(MAX_SEARCH):
        j = i + 1
        if j == npts:
            j = 0
        e = _d2(tab, j, px, py)
        if e < d:
            i = j
            iu += 1
            d = e
        else:
            break
    for _ in range(MAX_SEARCH):
        j = i - 1
        if j < 0:
            j = npts - 1
        e = _d2(tab, j, px, py)
        if e < d:
            i = j
            iu -= 1
            d = e
        else:
            break
    # project onto the chord i -> i+1, or i-1 -> i when behind sample i
    tx, ty = tab[i, TAB_TX], tab[i, TAB_TY]
    rx, ry = px - tab[i, TAB_X], py - tab[i, TAB_Y]
    along = rx * tx + ry * ty
    if along < 0.0:
        i = i - 1
        if i < 0:
            i = npts - 1
        iu -= 1
        tx, ty = tab[i, TAB_TX], tab[i, TAB_TY]
        rx, ry = px - tab[i, TAB_X], py - tab[i, TAB_Y]
        along = rx * tx + ry * ty
    j = i + 1
    if j == npts:
        j = 0
    seg = math.sqrt(_d2(tab, j, tab[i, TAB_X], tab[i, TAB_Y]))
    frac = along / seg
    frac = fmin(fmax(frac, 0.0), 1.0)
    nn = tx * ry - ty * rx
    return i, iu, frac, nn


@scalar
def lerp_col(tab, i, frac, col, ops):
    """Column ``col`` of the track table interpolated at segment ``i`` + ``frac`` (scalar or arrays)."""
    j = i + 1
    j = ops.where(j == tab.shape[0], 0, j)
    return tab[i, col] + frac * (tab[j, col] - tab[i, col])


# ------------------------------------------------------------------------------------------------
# the terms (elementwise, written once; ops = numpy / torch / casadi namespace or racing.models.sops)
# ------------------------------------------------------------------------------------------------
@scalar
def hinge_sq(e, ops):
    """max(0, e)^2."""
    e = ops.maximum(e, 0.0)
    return e * e


@scalar
def boundary_cost(dmin, cp, ops):
    """boundary * max(0, soft_margin - d)^2, ``d`` [m] = distance of the CoG to the nearer edge."""
    return cp[C_BOUNDARY] * hinge_sq(cp[C_SOFT_MARGIN] - dmin, ops)


@scalar
def line_cost(n, n_ref, cp):
    """line * (n - n_ref)^2 [m]."""
    e = n - n_ref
    return cp[C_LINE] * e * e


@scalar
def speed_cost(vx, v_cap, terminal, cp, ops):
    """speed_track * (v - v_cap)^2 + (speed_cap + terminal * terminal_speed) * max(0, v - v_cap)^2;
    ``terminal`` = 1.0 at the horizon's last step, else 0.0."""
    e = vx - v_cap
    return cp[C_SPEED_TRACK] * e * e + (cp[C_SPEED_CAP] + terminal * cp[C_TERMINAL_SPEED]) * hinge_sq(e, ops)


@scalar
def slip_cost(vx, vy, cp, ops):
    """slip * (v_y / max(v_x, 1))^2."""
    e = vy / ops.maximum(vx, 1.0)
    return cp[C_SLIP] * e * e


@scalar
def tyre_slip_cost(d, vx, vy, r, cp, ops):
    """tyre_slip * sum_axles max(0, |alpha| / alpha_peak - 1)^2 (slip angles past the Pacejka force peak)."""
    vxs = ops.maximum(vx, 1.0)
    ef = ops.abs(d - ops.atan((vy + cp[C_LF] * r) / vxs)) * cp[C_INV_AF_PEAK] - 1.0
    er = ops.abs(ops.atan((vy - cp[C_LR] * r) / vxs)) * cp[C_INV_AR_PEAK] - 1.0
    return cp[C_TYRE_SLIP] * (hinge_sq(ef, ops) + hinge_sq(er, ops))


@scalar
def input_change_cost(du0, du1, cp):
    """steer_rate_change * du0^2 + accel_change * du1^2 (input changes between steps)."""
    return cp[C_DSTEER] * du0 * du0 + cp[C_DACCEL] * du1 * du1


@scalar
def crash_condition(dmin, vx, vy, r, cp, ops):
    """1.0 where the state counts as crashed (closer to the edge than crash_margin, sideslip beyond beta_max,
    yaw rate * speed beyond rv_max), else 0.0."""
    vxs = ops.maximum(vx, 1.0)
    off = ops.where(dmin < cp[C_CRASH_MARGIN], 1.0, 0.0)
    spin = ops.where(ops.abs(vy) > cp[C_BETA_MAX] * vxs, 1.0, 0.0)
    yaw = ops.where(ops.abs(r) * vxs > cp[C_RV_MAX], 1.0, 0.0)
    return ops.maximum(off, ops.maximum(spin, yaw))


@scalar
def stage_terms(tab, cp, t, T, i, frac, nn, d, vx, vy, r, du0, du1, ops):
    """Sum of the (non-crash) stage terms after step ``t`` (1-based) of ``T`` at the projected position (segment
    ``i`` + fraction ``frac``, lateral offset ``nn`` [m]); returns ``(cost, d_edge)`` with ``d_edge`` [m] the
    distance to the nearer edge (for :func:`crash_condition`)."""
    wl = lerp_col(tab, i, frac, TAB_WL, ops)
    wr = lerp_col(tab, i, frac, TAB_WR, ops)
    dmin = ops.minimum(wl - nn, wr + nn)
    terminal = 1.0 if t == T else 0.0
    c = (boundary_cost(dmin, cp, ops) + line_cost(nn, lerp_col(tab, i, frac, TAB_NREF, ops), cp)
         + speed_cost(vx, lerp_col(tab, i, frac, TAB_VCAP, ops), terminal, cp, ops) + slip_cost(vx, vy, cp, ops)
         + input_change_cost(du0, du1, cp))
    if cp[C_TYRE_SLIP] > 0.0:  # a weight (a number in every consumer), not a state: skip two arctangents
        c = c + tyre_slip_cost(d, vx, vy, r, cp, ops)
    return c, dmin


@scalar
def softplus_hinge(e, k, ops):
    """Smooth max(0, e): softplus(k e) / k, C-infinity; tends to the hinge as k -> inf (k [1/unit of e]); its
    square is the smooth ``max(0, e)^2``."""
    z = k * e
    return (ops.maximum(z, 0.0) + ops.log(1.0 + ops.exp(-ops.abs(z)))) / k


@scalar
def smooth_residuals(nn, wl, wr, n_ref, v_cap, d, vx, vy, r, du0, du1, terminal, k, cp, ops):
    """The smooth variant of :func:`stage_terms` + the crash term for gradient methods (iLQR through casadi) as
    weighted residuals ``(r_1, ..., r_12)`` whose squares sum to :func:`smooth_stage` (a Gauss-Newton Hessian is
    ``2 J_r' J_r``), given the track row (widths ``wl, wr``, reference offset ``n_ref``, speed cap ``v_cap``): the
    hinges are softplus with sharpness ``k`` (``max(0, e) ~ softplus(k e) / k``), |x| is ``sqrt(x^2 + eps)`` and
    the crash flag (:func:`crash_condition`) becomes three barriers, ``crash * (softplus-hinge)^2`` of
    ``crash_margin - d`` [m] (the edge), ``|v_y| - tan(beta_max) max(v_x, 1)`` [m/s] (a spin) and
    ``|r| max(v_x, 1) - rv_max`` [m/s^2] (a yaw rate beyond the friction-limited one). No progress term (the
    caller rewards progress along the track in its own coordinates)."""
    dmin = ops.minimum(wl - nn, wr + nn)
    e = vx - v_cap
    vxs = ops.maximum(vx, 1.0)
    af = d - ops.atan((vy + cp[C_LF] * r) / vxs)
    ar = ops.atan((vy - cp[C_LR] * r) / vxs)
    ef = ops.sqrt(af * af + 1e-6) * cp[C_INV_AF_PEAK] - 1.0
    er = ops.sqrt(ar * ar + 1e-6) * cp[C_INV_AR_PEAK] - 1.0
    sc = ops.sqrt(cp[C_CRASH])
    return (sc * softplus_hinge(cp[C_CRASH_MARGIN] - dmin, k, ops),
            sc * softplus_hinge(ops.sqrt(vy * vy + 1e-6) - ops.minimum(cp[C_BETA_MAX], 1e6) * vxs, k, ops),
            sc * softplus_hinge(ops.sqrt(r * r + 1e-8) * vxs - ops.minimum(cp[C_RV_MAX], 1e9), k, ops),
            ops.sqrt(cp[C_BOUNDARY]) * softplus_hinge(cp[C_SOFT_MARGIN] - dmin, k, ops),
            ops.sqrt(cp[C_LINE]) * (nn - n_ref),
            ops.sqrt(cp[C_SPEED_TRACK]) * e,
            ops.sqrt(cp[C_SPEED_CAP] + terminal * cp[C_TERMINAL_SPEED]) * softplus_hinge(e, k, ops),
            ops.sqrt(cp[C_SLIP]) * vy / vxs,
            ops.sqrt(cp[C_TYRE_SLIP]) * softplus_hinge(ef, k, ops),
            ops.sqrt(cp[C_TYRE_SLIP]) * softplus_hinge(er, k, ops),
            ops.sqrt(cp[C_DSTEER]) * du0,
            ops.sqrt(cp[C_DACCEL]) * du1)


@scalar
def smooth_stage(nn, wl, wr, n_ref, v_cap, d, vx, vy, r, du0, du1, terminal, k, cp, ops):
    """Smooth variant of :func:`stage_terms` + the crash term: the sum of the squares of
    :func:`smooth_residuals` (which documents the terms); tends to the racing cost as ``k`` grows."""
    r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12 = smooth_residuals(nn, wl, wr, n_ref, v_cap, d, vx, vy, r,
                                                                         du0, du1, terminal, k, cp, ops)
    return (r1 * r1 + r2 * r2 + r3 * r3 + r4 * r4 + r5 * r5 + r6 * r6 + r7 * r7 + r8 * r8 + r9 * r9 + r10 * r10
            + r11 * r11 + r12 * r12)


@scalar
def racing_stage(tab, cp, t, T, px, py, d, vx, vy, r, du0, du1, i, iu, crashed, prog):
    """Compiled stage cost after step ``t`` (1-based) at position ``(px, py)`` [m], steering ``d`` [rad], body
    velocities ``vx, vy`` [m/s], yaw rate ``r`` [rad/s]: the local projection from segment ``i``, the terms
    (:func:`stage_terms`) and the crash bookkeeping: the first crashed step adds ``crash (T - t + 1) / T`` and
    freezes the progress ``prog`` [m] (unwrapped arc length); ``crashed`` is a 0/1 flag. Returns
    ``(cost, i, iu, crashed, prog)``. (The bookkeeping branches here and selects in :func:`racing_stage_np`: a
    select on the flag chains every step to the previous one, a predicted branch does not - 2x faster.)"""
    i, iu, frac, nn = project_local(tab, i, iu, px, py)
    c, dmin = stage_terms(tab, cp, t, T, i, frac, nn, d, vx, vy, r, du0, du1, sops)
    if crashed == 0.0:
        if crash_condition(dmin, vx, vy, r, cp, sops) > 0.5:
            crashed = 1.0
            c += cp[C_CRASH] * (T - t + 1) / T
        else:
            prog = (iu + frac) * cp[C_DS]
    return c, i, iu, crashed, prog


# ------------------------------------------------------------------------------------------------
# numpy reference versions (vectorised over samples)
# ------------------------------------------------------------------------------------------------
def project_local_np(tab, i, iu, px, py):
    """numpy twin of :func:`project_local` over arrays ``i, iu, px, py`` [K]."""
    npts = tab.shape[0]
    i = i.copy()
    iu = iu.copy()

    def d2(idx):
        return (px - tab[idx, TAB_X]) ** 2 + (py - tab[idx, TAB_Y]) ** 2

    d = d2(i)
    active = np.ones(i.shape, bool)
    for _ in range(MAX_SEARCH):
        j = (i + 1) % npts
        e = d2(j)
        mv = active & (e < d)
        if not mv.any():
            break
        i = np.where(mv, j, i)
        iu = np.where(mv, iu + 1, iu)
        d = np.where(mv, e, d)
        active = mv
    active = np.ones(i.shape, bool)
    for _ in range(MAX_SEARCH):
        j = (i - 1) % npts
        e = d2(j)
        mv = active & (e < d)
        if not mv.any():
            break
        i = np.where(mv, j, i)
        iu = np.where(mv, iu - 1, iu)
        d = np.where(mv, e, d)
        active = mv
    along = (px - tab[i, TAB_X]) * tab[i, TAB_TX] + (py - tab[i, TAB_Y]) * tab[i, TAB_TY]
    back = along < 0.0
    i = np.where(back, (i - 1) % npts, i)
    iu = np.where(back, iu - 1, iu)
    tx, ty = tab[i, TAB_TX], tab[i, TAB_TY]
    rx, ry = px - tab[i, TAB_X], py - tab[i, TAB_Y]
    along = rx * tx + ry * ty
    j = (i + 1) % npts
    seg = np.sqrt((tab[j, TAB_X] - tab[i, TAB_X]) ** 2 + (tab[j, TAB_Y] - tab[i, TAB_Y]) ** 2)
    frac = np.clip(along / seg, 0.0, 1.0)
    return i, iu, frac, tx * ry - ty * rx


def racing_stage_np(tab, cp, t, T, px, py, d, vx, vy, r, du0, du1, i, iu, crashed, prog):
    """numpy reference of :func:`racing_stage` (arrays [K]; ``crashed`` float 0/1)."""
    i, iu, frac, nn = project_local_np(tab, i, iu, px, py)
    c, dmin = stage_terms(tab, cp, t, T, i, frac, nn, d, vx, vy, r, du0, du1, NUMPY)
    new = (1.0 - crashed) * crash_condition(dmin, vx, vy, r, cp, NUMPY)
    c = c + new * (cp[C_CRASH] * (T - t + 1) / T)
    crashed = crashed + new
    prog = np.where(crashed > 0.5, prog, (iu + frac) * cp[C_DS])
    return c, i, iu, crashed, prog
