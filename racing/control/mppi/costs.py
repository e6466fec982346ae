r"""MPPI cost terms as code; their weights come from :class:`~racing.control.mppi.config.CostWeights`.

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
friction-limited speed profile (:mod:`racing.control.speed_profile`) of the raceline (or the
centre line), mapped onto the centre-line samples; it acts as the value function beyond the
horizon (the car must be able to brake for what it cannot see).

Standard bench cost (``COST_CIRCLE``): ``w_r (sqrt(x^2 + y^2) - R)^2 + w_v (v - v_ref)^2`` per step.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from racing.control.mppi.fastmath import FM, atan_fast

COST_RACING = 0
COST_CIRCLE = 1

(C_PROGRESS, C_LINE, C_SPEED_CAP, C_TERMINAL_SPEED, C_BOUNDARY, C_CRASH, C_SLIP, C_DSTEER, C_DACCEL,
 C_SOFT_MARGIN, C_CRASH_MARGIN, C_DS, C_CIRCLE_R, C_CIRCLE_V, C_W_CIRCLE_R, C_W_CIRCLE_V, C_BETA_MAX, C_SPEED_TRACK, C_RV_MAX,
 C_TYRE_SLIP, C_LF, C_LR, C_INV_AF_PEAK, C_INV_AR_PEAK) = range(24)
N_COST_PARAMS = 24

TAB_X, TAB_Y, TAB_TX, TAB_TY, TAB_WL, TAB_WR, TAB_VCAP, TAB_NREF = range(8)
TAB_COLS = 8
MAX_SEARCH = 256


def cost_params(weights, soft_margin: float, crash_margin: float, ds: float = 1.0, circle_radius: float = 50.0,
                circle_speed: float = 15.0, w_circle_r: float = 1.0, w_circle_v: float = 1.0,
                beta_max: float = math.inf, rv_max: float = math.inf, l_f: float = 0.0, l_r: float = 0.0,
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
    cp[C_CIRCLE_R] = circle_radius
    cp[C_CIRCLE_V] = circle_speed
    cp[C_W_CIRCLE_R] = w_circle_r
    cp[C_W_CIRCLE_V] = w_circle_v
    cp[C_RV_MAX] = rv_max if rv_max > 0.0 else math.inf
    cp[C_SPEED_TRACK] = getattr(weights, "speed_track", 0.0)
    cp[C_BETA_MAX] = math.tan(beta_max) if 0.0 < beta_max < 0.5 * math.pi else math.inf
    cp[C_TYRE_SLIP] = weights.tyre_slip
    cp[C_LF], cp[C_LR] = l_f, l_r
    cp[C_INV_AF_PEAK] = 1.0 / alpha_peak_f if alpha_peak_f > 0.0 else 0.0
    cp[C_INV_AR_PEAK] = 1.0 / alpha_peak_r if alpha_peak_r > 0.0 else 0.0
    return cp


def peak_slip_angle(B: float, C: float, E: float) -> float:
    """Slip angle [rad] of the Pacejka curve's peak ``D sin(C atan(B a - E (B a - atan(B a))))``: where
    ``B a - E (B a - atan(B a)) = tan(pi / (2 C))``; ``inf`` for ``C <= 1`` (no peak) or ``E >= 1``."""
    if C <= 1.0 or E >= 1.0 or B <= 0.0:
        return math.inf
    from scipy.optimize import brentq

    target = math.tan(0.5 * math.pi / C)
    f = lambda a: B * a - E * (B * a - math.atan(B * a)) - target  # noqa: E731 (increasing for E < 1)
    hi = 1.0
    while f(hi) < 0.0:
        hi *= 2.0
    return float(brentq(f, 0.0, hi, xtol=1e-14))


def track_table(track, params, grip_scale: float = 1.0, cap_scale: float = 1.05, use_raceline: bool = True,
                raceline_speed: bool = False):
    """The kernel's track table ``float64[N, 8]`` (see module doc) and the profile lap time [s].

    ``v_cap`` is ``cap_scale`` times the friction-limited profile (``grip_scale``) of the raceline (or the
    centre line), or, with ``raceline_speed`` and a raceline that carries a speed profile (``vx > 0``, e.g.
    the cached minimum-time line), ``cap_scale`` times the lesser of that profile and the friction-limited one
    (so ``grip_scale < 1`` leaves a margin in the corners and none on the straights).
    """
    from racing.control.path import ClosedPath
    from racing.control.speed_profile import speed_profile

    a = track.arrays()  # s, x, y, psi, kappa, w_left, w_right
    n = a.shape[0]
    xy = a[:, 1:3]
    d = np.roll(xy, -1, axis=0) - xy
    dn = np.linalg.norm(d, axis=1)
    tab = np.zeros((n, TAB_COLS))
    tab[:, TAB_X], tab[:, TAB_Y] = xy[:, 0], xy[:, 1]
    tab[:, TAB_TX], tab[:, TAB_TY] = d[:, 0] / dn, d[:, 1] / dn
    tab[:, TAB_WL], tab[:, TAB_WR] = a[:, 5], a[:, 6]
    rl = track.raceline if use_raceline else None
    path = ClosedPath.from_track(track, rl is not None)
    prof = speed_profile(path.kappa, path.ds, params, grip_scale=grip_scale)
    lap = prof.lap_time
    if rl is not None:
        s_p, n_p, _ = track.frenet(np.column_stack([path.x, path.y]))
        order = np.argsort(s_p)
        s_p, n_p, v_p = s_p[order], n_p[order], prof.v[order]
        if raceline_speed and np.all(np.asarray(rl.vx) > 0.0):
            v_rl = np.interp(path.s, np.append(rl.s, rl.length), np.append(rl.vx, rl.vx[0]))
            v_rl = np.minimum(v_rl, prof.v)  # the friction-limited profile (grip_scale) caps it: a margin
            v_p = v_rl[order]
            vm = 0.5 * (v_rl + np.roll(v_rl, -1))
            lap = float(np.sum(path.ds / np.maximum(vm, 1e-3)))
        sp = np.concatenate([s_p - track.length, s_p, s_p + track.length])
        tab[:, TAB_VCAP] = np.interp(a[:, 0], sp, np.tile(v_p, 3))
        tab[:, TAB_NREF] = np.interp(a[:, 0], sp, np.tile(n_p, 3))
    else:
        tab[:, TAB_VCAP] = np.interp(a[:, 0], path.s, prof.v)
    tab[:, TAB_VCAP] = np.minimum(tab[:, TAB_VCAP] * cap_scale, params.v_max)
    return np.ascontiguousarray(tab), lap


# ------------------------------------------------------------------------------------------------
# numba (scalar) versions
# ------------------------------------------------------------------------------------------------
@njit(cache=True, inline="always", fastmath=FM)
def _d2(tab, i, px, py):
    dx = px - tab[i, TAB_X]
    dy = py - tab[i, TAB_Y]
    return dx * dx + dy * dy


@njit(cache=True, inline="always", fastmath=FM)
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
    frac = min(max(frac, 0.0), 1.0)
    nn = tx * ry - ty * rx
    return i, iu, frac, nn


@njit(cache=True, inline="always", fastmath=FM)
def _lerp_col(tab, i, frac, col):
    j = i + 1
    if j == tab.shape[0]:
        j = 0
    return tab[i, col] + frac * (tab[j, col] - tab[i, col])


@njit(cache=True, inline="always", fastmath=FM)
def racing_stage(tab, cp, t, T, px, py, d, vx, vy, r, du0, du1, i, iu, crashed, prog):
    """Stage cost after step ``t`` (1-based) at position ``(px, py)`` [m], steering ``d`` [rad], body velocities
    ``vx, vy`` [m/s], yaw rate ``r`` [rad/s]. Returns ``(cost, i, iu, crashed, prog)``; ``prog`` [m] unwrapped s."""
    i, iu, frac, nn = project_local(tab, i, iu, px, py)
    c = 0.0
    wl = _lerp_col(tab, i, frac, TAB_WL)
    wr = _lerp_col(tab, i, frac, TAB_WR)
    dmin = min(wl - nn, wr + nn)
    if not crashed:
        if (dmin < cp[C_CRASH_MARGIN] or abs(vy) > cp[C_BETA_MAX] * max(vx, 1.0)
                or abs(r) * max(vx, 1.0) > cp[C_RV_MAX]):
            crashed = True
            c += cp[C_CRASH] * (T - t + 1) / T
        else:
            prog = (iu + frac) * cp[C_DS]
    e = cp[C_SOFT_MARGIN] - dmin
    if e > 0.0:
        c += cp[C_BOUNDARY] * e * e
    e = nn - _lerp_col(tab, i, frac, TAB_NREF)
    c += cp[C_LINE] * e * e
    e = vx - _lerp_col(tab, i, frac, TAB_VCAP)
    c += cp[C_SPEED_TRACK] * e * e
    if e > 0.0:
        c += cp[C_SPEED_CAP] * e * e
        if t == T:
            c += cp[C_TERMINAL_SPEED] * e * e
    vxs = max(vx, 1.0)
    e = vy / vxs
    c += cp[C_SLIP] * e * e
    if cp[C_TYRE_SLIP] > 0.0:
        e = abs(d - atan_fast((vy + cp[C_LF] * r) / vxs)) * cp[C_INV_AF_PEAK] - 1.0
        if e > 0.0:
            c += cp[C_TYRE_SLIP] * e * e
        e = abs(atan_fast((vy - cp[C_LR] * r) / vxs)) * cp[C_INV_AR_PEAK] - 1.0
        if e > 0.0:
            c += cp[C_TYRE_SLIP] * e * e
    c += cp[C_DSTEER] * du0 * du0 + cp[C_DACCEL] * du1 * du1
    return c, i, iu, crashed, prog


@njit(cache=True, inline="always", fastmath=FM)
def circle_stage(cp, px, py, v):
    """Standard bench cost of one step."""
    e = math.sqrt(px * px + py * py) - cp[C_CIRCLE_R]
    f = v - cp[C_CIRCLE_V]
    return cp[C_W_CIRCLE_R] * e * e + cp[C_W_CIRCLE_V] * f * f


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


def _lerp_np(tab, i, frac, col):
    j = (i + 1) % tab.shape[0]
    return tab[i, col] + frac * (tab[j, col] - tab[i, col])


def racing_stage_np(tab, cp, t, T, px, py, d, vx, vy, r, du0, du1, i, iu, crashed, prog):
    """numpy twin of :func:`racing_stage` (arrays [K])."""
    i, iu, frac, nn = project_local_np(tab, i, iu, px, py)
    wl, wr = _lerp_np(tab, i, frac, TAB_WL), _lerp_np(tab, i, frac, TAB_WR)
    dmin = np.minimum(wl - nn, wr + nn)
    new_crash = ~crashed & ((dmin < cp[C_CRASH_MARGIN]) | (np.abs(vy) > cp[C_BETA_MAX] * np.maximum(vx, 1.0))
                            | (np.abs(r) * np.maximum(vx, 1.0) > cp[C_RV_MAX]))
    c = np.where(new_crash, cp[C_CRASH] * (T - t + 1) / T, 0.0)
    prog = np.where(~crashed & ~new_crash, (iu + frac) * cp[C_DS], prog)
    crashed = crashed | new_crash
    e = np.maximum(cp[C_SOFT_MARGIN] - dmin, 0.0)
    c = c + cp[C_BOUNDARY] * e * e
    e = nn - _lerp_np(tab, i, frac, TAB_NREF)
    c = c + cp[C_LINE] * e * e
    e = vx - _lerp_np(tab, i, frac, TAB_VCAP)
    c = c + cp[C_SPEED_TRACK] * e * e
    e = np.maximum(e, 0.0)
    c = c + cp[C_SPEED_CAP] * e * e
    if t == T:
        c = c + cp[C_TERMINAL_SPEED] * e * e
    vxs = np.maximum(vx, 1.0)
    e = vy / vxs
    c = c + cp[C_SLIP] * e * e
    if cp[C_TYRE_SLIP] > 0.0:
        e = np.maximum(np.abs(d - np.arctan((vy + cp[C_LF] * r) / vxs)) * cp[C_INV_AF_PEAK] - 1.0, 0.0)
        c = c + cp[C_TYRE_SLIP] * e * e
        e = np.maximum(np.abs(np.arctan((vy - cp[C_LR] * r) / vxs)) * cp[C_INV_AR_PEAK] - 1.0, 0.0)
        c = c + cp[C_TYRE_SLIP] * e * e
    c = c + cp[C_DSTEER] * du0 * du0 + cp[C_DACCEL] * du1 * du1
    return c, i, iu, crashed, prog


def circle_stage_np(cp, px, py, v):
    e = np.sqrt(px * px + py * py) - cp[C_CIRCLE_R]
    f = v - cp[C_CIRCLE_V]
    return cp[C_W_CIRCLE_R] * e * e + cp[C_W_CIRCLE_V] * f * f
