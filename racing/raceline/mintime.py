r"""Minimum-lap-time optimal control problem in curvilinear coordinates (casadi + IPOPT).

The car is the dynamic single-track model of :mod:`racing.models.dynamic` -- the very same equations,
evaluated by :func:`racing.models.dynamic.dynamic_rhs` with casadi ops -- transformed to the spatial
domain along the track's centre line (arc length s is the independent variable).

States ``z = (n, xi, v_x, v_y, r, delta)``: lateral offset n [m] (left +) from the centre line, heading
error xi = yaw - psi_track(s) [rad], body velocities v_x, v_y [m/s], yaw rate r [rad/s], steering angle
delta [rad]. Controls ``u = (delta_dot, a)``: steering rate [rad/s] and acceleration command [m/s^2]
(the plant's actuator inputs), piecewise constant per interval. With ``kappa(s)`` the centre-line
curvature::

    dt/ds  = (1 - n kappa) / (v_x cos xi - v_y sin xi)
    dn/ds  = (v_x sin xi + v_y cos xi) dt/ds
    dxi/ds = r dt/ds - kappa
    d(v_x, v_y, r, delta)/ds = dynamic_rhs(x, u, p)[3:7] dt/ds

Transcription: direct multiple shooting on a uniform s grid (``N = length / spacing`` intervals), one
RK4 step per interval (kappa linear between nodes), lap time = sum of the RK4 quadratures of dt/ds.
Periodicity: the state after the last interval equals the first node's state. Objective::

    min  sum_k T_k / T_qss  +  w_reg sum_k ((u_{k+1} - u_k) / u_scale)^2

Constraints at every node: ``lb_k <= n_k <= ub_k`` (track widths minus half the car width and the
margin, as in :mod:`racing.raceline.mincurv`), |delta| <= steer_max, |delta_dot| <= steer_rate_max,
-min(decel_max, mu g) <= a <= min(accel_max, mu g) (so the model's longitudinal friction clip is never
active), motor power m a v_x <= (1 - power_margin) power_max at both ends of each interval (so the model's
min(m a, power / v) is the drive force and the RK4 stages stay off its kink), v_x <= v_max and v_x above
min(v_blend_high, 0.7 x the slowest QSS speed), and the front / rear slip angles within +-slip_limit x the
slip angle of their Pacejka peak (default 1: never beyond the top of the tyre curve). Tyre friction is the
model's own: Pacejka lateral saturation per axle and the longitudinal mu clip. The model has no
combined-slip coupling (full braking and full cornering force at once), so neither has the OCP: its lap is
a lower bound for a plant that runs the same model, up to the small power margin and slip limit (the
slip limit costs ~0.1-0.2% lap time against slip_limit = 2-3).

Warm start: the minimum-curvature line (n, heading) with its QSS speed profile and the steady-state
cornering states of the model (slip angles from the inverse Pacejka curve at the required lateral
acceleration, steering, side slip and yaw rate = v kappa).

Solver: IPOPT (MUMPS, adaptive barrier) with exact derivatives: the Lagrangian is separable per interval,
so the constraint Jacobian and the Hessian are assembled from dense per-interval blocks (small SX functions
mapped over the intervals, JIT-compiled with the system C compiler when available), ``max_iter`` and a
wall-time limit; the IPOPT ``return_status`` is always reported and anything but ``Solve_Succeeded`` /
``Solved_To_Acceptable_Level`` -- or an accepted point whose defects or limit violations exceed 1e-3 --
raises :class:`RacelineError` (no line is returned or saved).
"""
from __future__ import annotations

import math
import time
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np

from racing.models.dynamic import VX, YAW_RATE, dynamic_rhs, grip_limits, pacejka, peak_slip_angle, tyre_forces
from racing.models.ops import NUMPY, casadi_ops
from racing.models.params import G, VehicleParams
from racing.raceline import RacelineError
from racing.raceline.mincurv import _to_casadi, default_margin, default_spacing, min_curvature_line, raceline_geometry
from racing.track import Raceline

NZ, NU = 6, 2
Z_N, Z_XI, Z_VX, Z_VY, Z_R, Z_DELTA = range(6)
U_DDELTA, U_ACCEL = 0, 1
STATE_NAMES = ("n", "xi", "vx", "vy", "r", "delta")
OK_STATUS = ("Solve_Succeeded", "Solved_To_Acceptable_Level")


@dataclass(frozen=True, eq=False)
class MinTimeResult:
    """Solution of the minimum-lap-time OCP.

    raceline : racing.track.Raceline of the optimal lap (path points resampled at ~spacing along the
        line; vx = path speed hypot(v_x, v_y) [m/s], ax = dv/dt [m/s^2])
    lap_time : optimal lap time [s]
    status : IPOPT return_status; success : it is one of ``OK_STATUS``
    iterations : IPOPT iterations
    solve_time : total wall time [s] (min-curvature warm start + NLP build + IPOPT)
    build_time, ipopt_time : wall time [s] of the NLP construction and of IPOPT
    grid : racing.track.Track resampled at the OCP spacing; s : float64[N] node arc lengths [m]
    z : float64[N, 6] states at the nodes (n, xi, v_x, v_y, r, delta); u : float64[N, 2] controls of
        interval k (delta_dot [rad/s], a [m/s^2]); dt : float64[N] duration of interval k [s]
    lb, ub : float64[N] lateral bounds [m]
    qss_lap_time : QSS lap time [s] on the min-curvature line (the warm start)
    mincurv : the :class:`racing.raceline.mincurv.MinCurvResult` used as warm start
    violations : largest violation of each limit at the nodes (0 = respected), and the largest
        dynamics defect (``defect``, state units)
    """

    raceline: object
    lap_time: float
    status: str
    success: bool
    iterations: int
    solve_time: float
    build_time: float
    ipopt_time: float
    grid: object
    s: np.ndarray
    z: np.ndarray
    u: np.ndarray
    dt: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    qss_lap_time: float
    mincurv: object
    margin: float
    spacing: float
    violations: dict = field(default_factory=dict)

    @property
    def v_max(self) -> float:
        return float(np.max(np.hypot(self.z[:, Z_VX], self.z[:, Z_VY])))


def accel_bounds(params: VehicleParams) -> tuple[float, float]:
    """(a_min, a_max) [m/s^2] of the acceleration command: the actuator limits within the model's grip
    (:func:`racing.models.dynamic.grip_limits`: load transfer and brake balance) at standstill, where the model
    clips nothing (exact without downforce; with downforce it leaves the extra grip at speed unused)."""
    lo, hi = grip_limits(0.0, params.to_array(), NUMPY)
    return -min(params.decel_max, 0.999 * -float(lo)), min(params.accel_max, 0.999 * float(hi))


def spatial_rhs(z, u, kappa, p, ops=None):
    """Spatial derivative dz/ds [6] and dt/ds of the single-track model along a curve of curvature ``kappa``.

    ``z``, ``u`` are casadi column vectors (6 and 2), ``p = VehicleParams.to_array()``.
    """
    import casadi as ca

    ops = ops or casadi_ops()
    n, xi, vx, vy, r, delta = (z[i] for i in range(NZ))
    x = ca.vertcat(0.0, 0.0, 0.0, vx, vy, r, delta)
    xdot = dynamic_rhs(x, u, p, ops)
    dtds = (1.0 - n * kappa) / (vx * ca.cos(xi) - vy * ca.sin(xi))
    dz = ca.vertcat((vx * ca.sin(xi) + vy * ca.cos(xi)) * dtds,
                    r * dtds - kappa,
                    xdot[VX] * dtds, xdot[VX + 1] * dtds, xdot[YAW_RATE] * dtds, xdot[YAW_RATE + 1] * dtds)
    return dz, dtds


def rk4_interval(params: VehicleParams):
    """casadi Function ``F(z[6], u[2], kappa0, kappa1, h) -> (z_next[6], T)``: one RK4 step of length h [m]
    with kappa linear from kappa0 to kappa1; T [s] is the RK4 quadrature of dt/ds."""
    import casadi as ca

    p = params.to_array()
    z = ca.SX.sym("z", NZ)
    u = ca.SX.sym("u", NU)
    k0, k1, h = ca.SX.sym("k0"), ca.SX.sym("k1"), ca.SX.sym("h")
    km = 0.5 * (k0 + k1)
    f1, t1 = spatial_rhs(z, u, k0, p)
    f2, t2 = spatial_rhs(z + 0.5 * h * f1, u, km, p)
    f3, t3 = spatial_rhs(z + 0.5 * h * f2, u, km, p)
    f4, t4 = spatial_rhs(z + h * f3, u, k1, p)
    zn = z + h / 6.0 * (f1 + 2 * f2 + 2 * f3 + f4)
    T = h / 6.0 * (t1 + 2 * t2 + 2 * t3 + t4)
    return ca.Function("rk4_interval", [z, u, k0, k1, h], [zn, T])


def _wrap(a):
    return np.pi - np.mod(np.pi - np.asarray(a, dtype=float), 2 * np.pi)


def _pacejka_inverse(mu_req: np.ndarray, B: float, C: float, D: float, E: float) -> np.ndarray:
    """Slip angle [rad] (same sign as mu_req) whose normalised Pacejka force is mu_req, clipped to the peak."""
    a_pk = peak_slip_angle(B, C, E)
    target = np.minimum(np.abs(mu_req), 0.999 * float(pacejka(a_pk, B, C, D, E)))
    lo, hi = np.zeros_like(target), np.full_like(target, a_pk)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        below = pacejka(mid, B, C, D, E) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return np.sign(mu_req) * 0.5 * (lo + hi)


def steady_cornering(v: np.ndarray, kappa: np.ndarray, params: VehicleParams):
    """Steady-state cornering states (v_x, v_y [m/s], r [rad/s], delta [rad]) at speed v [m/s] on curvature
    kappa [1/m] for the single-track model with static axle loads (slip angles clipped to the peak)."""
    a_lat = v * v * kappa / G  # required lateral force / weight, shared by both axles in proportion to load
    af = _pacejka_inverse(a_lat, params.B_f, params.C_f, params.D_f, params.E_f)
    ar = _pacejka_inverse(a_lat, params.B_r, params.C_r, params.D_r, params.E_r)
    r = v * kappa
    vx = v.copy()
    vy = params.l_r * r - vx * np.tan(ar)  # alpha_r = -atan((v_y - l_r r) / v_x)
    delta = af + np.arctan((vy + params.l_f * r) / vx)
    delta = np.clip(delta, -0.95 * params.steer_max, 0.95 * params.steer_max)
    return vx, vy, r, delta


def warm_start(mc, params: VehicleParams) -> tuple[np.ndarray, np.ndarray]:
    """Initial guess (z[N, 6], u[N, 2]) from a :class:`MinCurvResult` on its grid."""
    grid = mc.grid
    rl = mc.raceline
    sp = np.append(rl.s, rl.length)
    v = np.interp(mc.s_line, sp, np.append(rl.vx, rl.vx[0]))
    k_line = np.interp(mc.s_line, sp, np.append(rl.kappa, rl.kappa[0]))
    pts = np.asarray(grid.xy) + mc.alpha[:, None] * np.asarray(grid.normals)
    d = np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)
    psi_line = np.arctan2(d[:, 1], d[:, 0])
    vx, vy, r, delta = steady_cornering(v, k_line, params)
    beta = np.arctan2(vy, vx)
    xi = _wrap(psi_line - np.asarray(grid.psi) - beta)
    z = np.column_stack([mc.alpha, xi, vx, vy, r, delta])
    ds_line = np.diff(np.append(mc.s_line, rl.length))
    dt = ds_line / np.maximum(0.5 * (v + np.roll(v, -1)), 1e-3)
    amin, amax = accel_bounds(params)
    resist = (params.c_drag * v * v) / params.mass + params.c_roll * G  # the command also overcomes drag
    a = np.clip((np.roll(v, -1) - v) / dt + resist, amin, amax)
    a = np.minimum(a, 0.995 * params.power_max / (params.mass * np.maximum(v, np.roll(v, -1))))
    ddelta = np.clip((np.roll(delta, -1) - delta) / dt, -params.steer_rate_max, params.steer_rate_max)
    return z, np.column_stack([ddelta, a])


#: the grids a solve falls back to when IPOPT fails on the default one (spacing factors): another grid is another
#: NLP, and a restoration failure on one is often a clean solve on the next (CommonRoad ST's fitted car on
#: Norisring: Restoration_Failed after 213 s at 2.58 m, solved in 11 s at 3.0 m)
FALLBACK_SPACING = (1.16, 0.86)


def min_time_lap(track, params: VehicleParams, spacing: float | None = None, margin: float | None = None,
                 max_iter: int = 3000, time_limit: float = 600.0, reg: float = 1e-4, verbose: bool = False,
                 mincurv=None, tol: float = 1e-6, jit: bool | None = None,
                 power_margin: float = 1e-3, slip_limit: float = 1.0) -> MinTimeResult:
    """Solve the minimum-lap-time OCP for ``params`` on ``track``: on the default grid, and when IPOPT fails there
    (and neither ``spacing`` nor ``mincurv`` pins the grid) on the grids of :data:`FALLBACK_SPACING`; the error
    of a failure names every attempt. Parameters as :func:`solve_on_grid`."""
    kw = dict(margin=margin, max_iter=max_iter, time_limit=time_limit, reg=reg, verbose=verbose, tol=tol, jit=jit,
              power_margin=power_margin, slip_limit=slip_limit)
    if spacing is not None or mincurv is not None:
        return solve_on_grid(track, params, spacing=spacing, mincurv=mincurv, **kw)
    base = default_spacing(track, params)
    failures = []
    for f in (1.0,) + FALLBACK_SPACING:
        try:
            return solve_on_grid(track, params, spacing=base * f, **kw)
        except RacelineError as exc:
            if exc.status is None:  # not a solver failure (a track too narrow): another grid does not help
                raise
            failures.append(exc)
    raise RacelineError("; then ".join(str(e) for e in failures) + f" (grids of {base:.3f} m x "
                        f"{', '.join(f'{f:g}' for f in (1.0,) + FALLBACK_SPACING)} tried)", status=failures[-1].status)


def solve_on_grid(track, params: VehicleParams, spacing: float | None = None, margin: float | None = None,
                  max_iter: int = 3000, time_limit: float = 600.0, reg: float = 1e-4, verbose: bool = False,
                  mincurv=None, tol: float = 1e-6, jit: bool | None = None,
                  power_margin: float = 1e-3, slip_limit: float = 1.0) -> MinTimeResult:
    """Solve the minimum-lap-time OCP for ``params`` on ``track`` on one grid.

    Parameters
    ----------
    track : racing.track.Track
    params : the car
    spacing : s-grid spacing [m] (default :func:`racing.raceline.mincurv.default_spacing`)
    margin : safety margin [m] between the car's side and the track edge (default 10% of the car width)
    max_iter, time_limit : IPOPT iteration and wall-time [s] limits
    reg : weight of the squared, scaled input-rate regularisation (relative to the normalised lap time)
    verbose : print IPOPT's iteration log
    mincurv : a precomputed :class:`MinCurvResult` on the same spacing/margin (else computed here)
    tol : IPOPT tolerance
    jit : compile the interval functions with the C compiler (default: when gcc/cc is on PATH; ~10x faster
        derivative evaluation for a few seconds of compilation)
    power_margin : the power constraint at the nodes is m a v_x <= (1 - power_margin) power_max, which keeps the
        RK4 stages off the kink of the model's min(m a, power / v) (a smooth NLP); costs well below 0.1% lap time
    slip_limit : |alpha_f|, |alpha_r| <= slip_limit x the slip angle of the Pacejka peak at every node (1 = never
        beyond the peak of the tyre curve, which keeps the NLP well conditioned)

    Raises
    ------
    RacelineError : track too narrow (track and s named), or IPOPT did not solve the problem (status named).
    """
    t_start = time.perf_counter()
    spacing = default_spacing(track, params) if spacing is None else float(spacing)
    margin = default_margin(params) if margin is None else float(margin)
    mc = mincurv if mincurv is not None else min_curvature_line(track, params, spacing=spacing, margin=margin)
    grid = mc.grid
    N = grid.n_samples
    h = grid.ds
    kap = np.asarray(grid.kappa, dtype=float)
    z0, u0 = warm_start(mc, params)
    box = _box_and_scaling(params, mc.lb, mc.ub, kap, z0, u0)
    T_ref = float(mc.lap_time)

    # ---------------------------------------------------------------- NLP
    tb = time.perf_counter()
    if jit is None:
        jit = jit_available()
    opts = _ipopt_options(max_iter, time_limit, tol, verbose)
    args = (params, kap, h, box.zs, box.us, T_ref, reg, params.power_max / params.mass, opts)
    try:
        solver, nlp_eval = _build_nlp(*args, jit=jit)
    except RuntimeError:
        if not jit:
            raise
        solver, nlp_eval = _build_nlp(*args, jit=False)
    lbg, ubg = nlp_eval.bounds(power_margin, slip_limit)
    # decision vector: per node k the scaled (z_k, u_k), 8 values -> row-major ravel of [N, 8]
    lbw = np.column_stack([box.zlo / box.zs, box.ulo / box.us]).ravel()
    ubw = np.column_stack([box.zhi / box.zs, box.uhi / box.us]).ravel()
    w0 = np.column_stack([box.z0 / box.zs, box.u0 / box.us]).ravel()
    build_time = time.perf_counter() - tb
    ti = time.perf_counter()
    sol = solver(x0=w0, lbx=lbw, ubx=ubw, lbg=lbg, ubg=ubg)
    ipopt_time = time.perf_counter() - ti
    st = solver.stats()
    status = str(st.get("return_status", "unknown"))
    iters = int(st.get("iter_count", -1))
    what = f"track {track.name}, car {params.name}:"
    if status not in OK_STATUS:
        raise RacelineError(f"{what} minimum-time OCP not solved: IPOPT status {status!r} after {iters} iterations "
                            f"({ipopt_time:.1f} s; N = {N} intervals of {h:.3f} m)", status=status)
    wopt = np.asarray(sol["x"]).ravel().reshape(N, NZ + NU)
    z = wopt[:, :NZ] * box.zs
    u = wopt[:, NZ:] * box.us
    lap, dt, violations = _checked_solution(nlp_eval, z, u, box.zs, mc.lb, mc.ub, params, slip_limit, status, what)
    rl = _raceline_from_solution(grid, z, u, dt, params, track.name)
    return MinTimeResult(raceline=rl, lap_time=lap, status=status, success=True, iterations=iters,
                         solve_time=time.perf_counter() - t_start, build_time=build_time, ipopt_time=ipopt_time,
                         grid=grid, s=np.asarray(grid.s).copy(), z=z, u=u, dt=dt, lb=mc.lb, ub=mc.ub,
                         qss_lap_time=float(mc.lap_time), mincurv=mc, margin=mc.margin, spacing=h,
                         violations=violations)


#: the OCP's box bounds zlo, zhi [N, 6], ulo, uhi [N, 2] (state / input units), the scales zs [6], us [2] of the
#: decision variables, and the warm start z0 [N, 6], u0 [N, 2] clipped into the box
_Box = namedtuple("_Box", "zlo zhi ulo uhi zs us z0 u0")


def _box_and_scaling(params: VehicleParams, lb: np.ndarray, ub: np.ndarray, kap: np.ndarray, z0: np.ndarray,
                     u0: np.ndarray) -> _Box:
    """Box bounds and scaling of the OCP on ``N`` nodes: lateral offset within ``lb[N], ub[N]`` [m], heading error
    within +-1.2 rad, v_x in [v_lo, v_max] (v_lo = min(v_blend_high, 0.7 x the slowest warm-start speed)), v_y
    within +-v_max / 2, yaw rate within +-3 peak-friction yaw rates at v_lo, the steering, steering-rate and
    acceleration limits; the warm start ``z0[N, 6], u0[N, 2]`` clipped into it; ``kap[N]`` [1/m] sets the yaw-rate
    scale."""
    N = lb.size
    amin, amax = accel_bounds(params)
    vmean = float(np.mean(z0[:, Z_VX]))
    v_lo = min(params.v_blend_high, 0.7 * float(np.min(z0[:, Z_VX])))
    r_big = 3.0 * max(params.D_f, params.D_r) * G / max(v_lo, 0.1)
    zlo = np.column_stack([lb, np.full(N, -1.2), np.full(N, v_lo), np.full(N, -0.5 * params.v_max),
                           np.full(N, -r_big), np.full(N, -params.steer_max)])
    zhi = np.column_stack([ub, np.full(N, 1.2), np.full(N, params.v_max), np.full(N, 0.5 * params.v_max),
                           np.full(N, r_big), np.full(N, params.steer_max)])
    ulo = np.tile([-params.steer_rate_max, amin], (N, 1))
    uhi = np.tile([params.steer_rate_max, amax], (N, 1))
    half_w = max(float(np.max(np.abs(np.concatenate([lb, ub])))), 1e-3)
    zs = np.array([half_w, 0.1, vmean, 0.05 * vmean, max(vmean * float(np.max(np.abs(kap))), 0.1),
                   params.steer_max])
    us = np.array([params.steer_rate_max, max(amax, -amin)])
    return _Box(zlo, zhi, ulo, uhi, zs, us, np.clip(z0, zlo, zhi), np.clip(u0, ulo, uhi))


def _ipopt_options(max_iter: int, time_limit: float, tol: float, verbose: bool) -> dict:
    """casadi ``nlpsol`` options for IPOPT (MUMPS, adaptive barrier; ``time_limit`` [s] of wall time); a failed solve
    returns its status instead of raising."""
    return {
        "ipopt.max_iter": int(max_iter),
        "ipopt.max_wall_time": float(time_limit),
        "ipopt.tol": tol,
        "ipopt.acceptable_tol": 1e-4,
        "ipopt.acceptable_iter": 10,
        "ipopt.linear_solver": "mumps",
        "ipopt.mu_strategy": "adaptive",
        "ipopt.print_level": 5 if verbose else 0,
        "ipopt.sb": "yes",
        "print_time": bool(verbose),
        "error_on_fail": False,
    }


def _checked_solution(nlp_eval, z: np.ndarray, u: np.ndarray, zs: np.ndarray, lb: np.ndarray, ub: np.ndarray,
                      params: VehicleParams, slip_limit: float, status: str, what: str):
    """Evaluate the intervals at IPOPT's solution ``z[N, 6], u[N, 2]`` and check it: a positive, finite lap time,
    scaled defects and limit violations within 1e-3 (else :class:`RacelineError`, ``what`` naming track and car).
    Returns (lap time [s], interval times dt[N] [s], violations dict)."""
    zn_num, dt, node_c = nlp_eval(z, u)
    lap = float(dt.sum())
    if not (math.isfinite(lap) and lap > 0 and np.all(dt > 0)):
        raise RacelineError(f"{what} IPOPT status {status!r} but the lap time {lap} is not positive and finite",
                            status=status)
    violations = check_limits(z, u, zn_num, lb, ub, params)
    violations["slip_front"] = float(max(0.0, np.max(np.abs(node_c[:, 1]) - slip_limit)))
    violations["slip_rear"] = float(max(0.0, np.max(np.abs(node_c[:, 2]) - slip_limit)))
    scaled_defect = float(np.max(np.abs(zn_num - np.roll(z, -1, axis=0)) / zs))
    worst = max(v for k, v in violations.items() if k != "defect")
    if scaled_defect > 1e-3 or worst > 1e-3:
        raise RacelineError(
            f"{what} IPOPT status {status!r} but the solution violates the model "
            f"(scaled defect {scaled_defect:.2e}) or a limit ({worst:.2e}): {violations}", status=status)
    return lap, dt, violations


def check_limits(z: np.ndarray, u: np.ndarray, z_next: np.ndarray, lb: np.ndarray, ub: np.ndarray,
                 params: VehicleParams) -> dict:
    """Largest violation (>= 0, in each limit's unit) of every OCP limit at the nodes, and the largest
    dynamics defect |F(z_k, u_k) - z_{k+1}| (state units)."""
    amin, amax = accel_bounds(params)
    vx = z[:, Z_VX]
    a = u[:, U_ACCEL]
    p_lim = params.power_max / params.mass
    pos = lambda x: float(max(0.0, np.max(x)))  # noqa: E731
    return {
        "n_m": pos(np.maximum(z[:, Z_N] - ub, lb - z[:, Z_N])),
        "steer_rad": pos(np.abs(z[:, Z_DELTA]) - params.steer_max),
        "steer_rate_radps": pos(np.abs(u[:, U_DDELTA]) - params.steer_rate_max),
        "accel_mps2": pos(np.maximum(a - amax, amin - a)),
        "power_W": pos(params.mass * a * np.maximum(vx, np.roll(vx, -1)) - params.power_max) if p_lim else 0.0,
        "v_max_mps": pos(vx - params.v_max),
        "defect": float(np.max(np.abs(z_next - np.roll(z, -1, axis=0)))),
    }


def _raceline_from_solution(grid, z, u, dt, params: VehicleParams, name: str):
    pts = grid.to_cartesian(grid.s, z[:, Z_N])
    v = np.hypot(z[:, Z_VX], z[:, Z_VY])
    line, s_pts = raceline_geometry(pts, grid.ds, name=f"{name} min-time line")
    # dv/dt at the nodes from the neighbouring intervals
    ax = 0.5 * ((np.roll(v, -1) - v) / dt + (v - np.roll(v, 1)) / np.roll(dt, 1))
    sp = np.append(s_pts, line.length)
    s = np.asarray(line.s)
    vx = np.interp(s, sp, np.append(v, v[0]))
    axl = np.interp(s, sp, np.append(ax, ax[0]))
    return Raceline.from_arrays(s, line.xy[:, 0], line.xy[:, 1], line.psi, line.kappa, vx, axl,
                                length=line.length, source=f"<mintime {name}>")


def _assemble(nrow: int, ncol: int, rows: np.ndarray, cols: np.ndarray):
    """Sparsity [nrow, ncol] of the (row, col) entries (duplicates summed) and the constant 0/1 matrix
    A [nnz, len(rows)] with nonzeros = A @ values (column-major nonzero order)."""
    import casadi as ca
    import scipy.sparse as sp


    m = rows.size
    lin = cols.astype(np.int64) * nrow + rows.astype(np.int64)  # column-major linear index
    uniq, inv = np.unique(lin, return_inverse=True)
    r, c = uniq % nrow, uniq // nrow
    colind = np.searchsorted(c, np.arange(ncol + 1))
    spars = ca.Sparsity(nrow, ncol, colind.tolist(), r.tolist())
    A = sp.csc_matrix((np.ones(m), (inv, np.arange(m))), shape=(uniq.size, m))
    return spars, _to_casadi(A)


def jit_available() -> bool:
    """True when a C compiler is on PATH for casadi's just-in-time compilation of the interval functions."""
    import shutil

    return shutil.which("gcc") is not None or shutil.which("cc") is not None


def _jit_options() -> dict:
    import shutil
    import tempfile

    cc = "gcc" if shutil.which("gcc") else "cc"
    return {"jit": True, "compiler": "shell", "jit_temp_suffix": True, "jit_cleanup": True,
            "jit_options": {"compiler": cc, "flags": ["-O1"], "verbose": False,
                            "directory": tempfile.gettempdir() + "/"}}


#: the per-interval casadi functions mapped over the N intervals (on scaled variables zu = (z / zs, u / us)):
#: ``f_map(W[8, N], K0, K1) -> (out[NG, N], T_s[1, N])`` (scaled next states and node constraints, lap-time
#: quadrature / T_ref), ``jac_map`` (vec of d out / d zu per interval, [NG * 8, N]), ``hess_map`` (upper
#: triangle (``iu``, ``ju``) of the interval Lagrangian's Hessian, [36, N]); the curvatures ``K0, K1`` [1, N] at
#: the interval ends [1/m]; ``c_pow`` (power constraint scale), ``NG`` (outputs per interval)
_Intervals = namedtuple("_Intervals", "f_map jac_map hess_map K0 K1 c_pow NG iu ju")


def _interval_functions(params: VehicleParams, kap: np.ndarray, h: float, zs: np.ndarray, us: np.ndarray,
                        T_ref: float, a_pow: float, jit: bool) -> _Intervals:
    """The interval functions of the NLP (see :class:`_Intervals`) for curvatures ``kap[N]`` [1/m], the step
    ``h`` [m], scales ``zs[6], us[2]``, reference lap time ``T_ref`` [s] and power per mass ``a_pow`` [W/kg];
    small SX functions, JIT-compiled with ``jit``."""
    import casadi as ca

    N = kap.size
    NW = NZ + NU
    p = params.to_array()
    a_pf = peak_slip_angle(params.B_f, params.C_f, params.E_f)
    a_pr = peak_slip_angle(params.B_r, params.C_r, params.E_r)
    F = rk4_interval(params)
    zu = ca.SX.sym("zu", NW)
    k0s, k1s = ca.SX.sym("k0"), ca.SX.sym("k1")
    z_un, u_un = zs * zu[:NZ], us * zu[NZ:]
    zn, T = F(z_un, u_un, k0s, k1s, h)
    x7 = ca.vertcat(0.0, 0.0, 0.0, z_un[Z_VX], z_un[Z_VY], z_un[Z_R], z_un[Z_DELTA])
    alpha_f, alpha_r, _, _, _ = tyre_forces(x7, u_un, p, casadi_ops())
    c_pow = us[U_ACCEL] * zs[Z_VX] / a_pow
    node_c = ca.vertcat(c_pow * zu[NZ + U_ACCEL] * zu[Z_VX], alpha_f / a_pf, alpha_r / a_pr)
    NG = NZ + node_c.shape[0]
    out = ca.vertcat(zn / zs, node_c)
    T_s = T / T_ref
    fopts = _jit_options() if jit else {}
    f_int = ca.Function("interval", [zu, k0s, k1s], [out, T_s], fopts)
    jac_int = ca.Function("interval_jac", [zu, k0s, k1s], [ca.vec(ca.jacobian(out, zu))], fopts)
    lam = ca.SX.sym("lam", NG)
    sig = ca.SX.sym("sig")
    Hk, _ = ca.hessian(sig * T_s + ca.dot(lam, out), zu)
    iu, ju = np.triu_indices(NW)  # row i <= col j
    hess_int = ca.Function("interval_hess", [zu, k0s, k1s, lam, sig],
                           [ca.vertcat(*[Hk[int(i), int(j)] for i, j in zip(iu, ju)])], fopts)
    return _Intervals(f_int.map(N), jac_int.map(N), hess_int.map(N), ca.DM(kap).T, ca.DM(np.roll(kap, -1)).T,
                      c_pow, NG, iu, ju)


def _build_nlp(params: VehicleParams, kap: np.ndarray, h: float, zs: np.ndarray, us: np.ndarray, T_ref: float,
               reg: float, a_pow: float, opts: dict, jit: bool = False):
    """The multiple-shooting NLP with hand-assembled sparse Jacobian and Hessian of the Lagrangian.

    Decision vector w[8 N]: scaled (z_k / zs, u_k / us) per node k. Constraints g: per node k the 6 scaled
    dynamics defects and the NC node constraints (power at the interval start, front and rear slip angle
    over their peak-force slip angle), then the N power constraints at the interval ends. The Lagrangian is
    separable per interval apart from linear terms, the products a_k v_x,k+1 and the input-rate regulariser,
    so its Hessian is assembled from N dense 8 x 8 interval Hessians (a small SX function mapped over the
    intervals, optionally JIT-compiled) plus those few terms.

    Returns (solver, evaluate) with evaluate(z[N,6], u[N,2]) -> (z_next[N,6], dt[N] [s], node constraints [N,NC]).
    """
    import casadi as ca

    N = kap.size
    iv = _interval_functions(params, kap, h, zs, us, T_ref, a_pow, jit)
    # ----- objective and constraints (MX)
    w = ca.MX.sym("w", (NZ + NU) * N)
    W = ca.reshape(w, NZ + NU, N)
    Out, TS = iv.f_map(W, iv.K0, iv.K1)
    Wz = W[:NZ, :]
    Wz_next = ca.horzcat(Wz[:, 1:], Wz[:, :1])
    G_node = ca.vertcat(Out[:NZ, :] - Wz_next, Out[NZ:, :])  # [NG, N]
    A_ = W[NZ + U_ACCEL, :]
    V_ = W[Z_VX, :]
    V_next = ca.horzcat(V_[:, 1:], V_[:, :1])
    pow1 = iv.c_pow * A_ * V_next
    Uw = W[NZ:, :]
    dU = ca.horzcat(Uw[:, 1:], Uw[:, :1]) - Uw
    f = ca.sum2(TS) + reg / N * ca.sumsqr(dU)
    g = ca.vertcat(ca.vec(G_node), pow1.T)
    jac_g = _jacobian_g(iv, w, W, g, A_, V_next)
    hess_lag = _hessian_lagrangian(iv, w, W, g.shape[0], reg)
    opts = dict(opts)
    opts["jac_g"] = jac_g
    opts["hess_lag"] = hess_lag
    solver = ca.nlpsol("mintime", "ipopt", {"x": w, "f": f, "g": g}, opts)
    evaluate = _interval_evaluator(iv, zs, us, T_ref)
    evaluate.jac_g = jac_g
    evaluate.hess_lag = hess_lag
    evaluate.g = ca.Function("g", [w], [g])
    evaluate.f = ca.Function("f", [w], [f])
    return solver, evaluate


def _jacobian_g(iv: _Intervals, w, W, g, A_, V_next):
    """casadi Function ``nlp_jac_g(x, p) -> (g, jac_g_x)``: the constraints ``g`` and their sparse Jacobian
    [ng, 8 N], assembled from the interval Jacobians, the -1 identity blocks of the next nodes' states and the two
    entries of each end-of-interval power constraint (``A_``, ``V_next`` [1, N]: scaled accelerations and next
    nodes' v_x)."""
    import casadi as ca

    N = W.shape[1]
    NW, NG = NZ + NU, iv.NG
    k = np.arange(N)
    kn = (k + 1) % N
    ia = NZ + U_ACCEL
    # jac_int output is vec() of an [NG, NW] matrix: column-major (column j outer, row i inner)
    jj, ii = np.meshgrid(np.arange(NW), np.arange(NG), indexing="ij")
    blk_r = (NG * k[:, None] + ii.ravel()[None, :]).ravel()
    blk_c = (NW * k[:, None] + jj.ravel()[None, :]).ravel()
    idn_r = (NG * k[:, None] + np.arange(NZ)[None, :]).ravel()
    idn_c = (NW * kn[:, None] + np.arange(NZ)[None, :]).ravel()
    p1_r = np.concatenate([NG * N + k, NG * N + k])
    p1_c = np.concatenate([NW * k + ia, NW * kn + Z_VX])
    spJ, AJ = _assemble(g.shape[0], NW * N, np.concatenate([blk_r, idn_r, p1_r]),
                        np.concatenate([blk_c, idn_c, p1_c]))
    vals = ca.vertcat(ca.vec(iv.jac_map(W, iv.K0, iv.K1)), -ca.DM.ones(NZ * N), (iv.c_pow * V_next).T,
                      (iv.c_pow * A_).T)
    J = ca.MX(spJ, ca.mtimes(AJ, vals))
    return ca.Function("nlp_jac_g", [w, ca.MX.sym("p", 0)], [g, J], ["x", "p"], ["g", "jac_g_x"])


def _hessian_lagrangian(iv: _Intervals, w, W, ng: int, reg: float):
    """casadi Function ``nlp_hess_l(x, p, lam_f, lam_g)``: the upper triangle of the Lagrangian's Hessian
    [8 N, 8 N] from the N interval Hessians, the products a_k v_x,k+1 of the end power constraints and the
    input-rate regulariser (weight ``reg / N``) over ``ng`` constraints."""
    import casadi as ca

    N = W.shape[1]
    NW, NG = NZ + NU, iv.NG
    k = np.arange(N)
    kn = (k + 1) % N
    ia = NZ + U_ACCEL
    lam_f = ca.MX.sym("lam_f")
    lam_g = ca.MX.sym("lam_g", ng)
    LamB = ca.reshape(lam_g[:NG * N], NG, N)
    lam_p1 = lam_g[NG * N:]
    h_r = (NW * k[:, None] + iv.iu[None, :]).ravel()
    h_c = (NW * k[:, None] + iv.ju[None, :]).ravel()
    q1 = np.sort(np.stack([NW * k + ia, NW * kn + Z_VX]), axis=0)
    ud = np.concatenate([NW * k + NZ + c for c in range(NU)])
    uo = np.sort(np.stack([np.concatenate([NW * k + NZ + c for c in range(NU)]),
                           np.concatenate([NW * kn + NZ + c for c in range(NU)])]), axis=0)
    spH, AH = _assemble(NW * N, NW * N, np.concatenate([h_r, q1[0], ud, uo[0]]),
                        np.concatenate([h_c, q1[1], ud, uo[1]]))
    wr = reg / N * lam_f
    vals = ca.vertcat(ca.vec(iv.hess_map(W, iv.K0, iv.K1, LamB, lam_f)), iv.c_pow * lam_p1,
                      ca.repmat(4.0 * wr, NU * N, 1), ca.repmat(-2.0 * wr, NU * N, 1))
    H = ca.MX(spH, ca.mtimes(AH, vals))
    return ca.Function("nlp_hess_l", [w, ca.MX.sym("p", 0), lam_f, lam_g], [H],
                       ["x", "p", "lam_f", "lam_g"], ["triu_hess_gamma_x_x"])


def _interval_evaluator(iv: _Intervals, zs: np.ndarray, us: np.ndarray, T_ref: float):
    """``evaluate(z[N, 6], u[N, 2]) -> (z_next[N, 6], dt[N] [s], node constraints [N, NC])`` (numeric, through the
    mapped interval function), with ``evaluate.bounds(power_margin, slip_limit) -> (lbg, ubg)`` for g."""
    N = iv.K0.shape[1]

    def evaluate(z: np.ndarray, u: np.ndarray):
        Wn = np.column_stack([z / zs, u / us]).T
        out_, t_ = iv.f_map(Wn, iv.K0, iv.K1)
        out_ = np.asarray(out_).T
        return out_[:, :NZ] * zs, np.asarray(t_).ravel() * T_ref, out_[:, NZ:]

    def bounds(power_margin: float, slip_limit: float = 1.0):
        """(lbg, ubg) for g."""
        lo_node = np.array([-np.inf, -slip_limit, -slip_limit])
        hi_node = np.array([1.0 - power_margin, slip_limit, slip_limit])
        lbg = np.concatenate([np.tile(np.concatenate([np.zeros(NZ), lo_node]), N), np.full(N, -np.inf)])
        ubg = np.concatenate([np.tile(np.concatenate([np.zeros(NZ), hi_node]), N), np.full(N, 1.0 - power_margin)])
        return lbg, ubg

    evaluate.bounds = bounds
    return evaluate
