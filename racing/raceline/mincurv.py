r"""Minimum-curvature racing line (QPs over lateral offsets) and its quasi-steady-state speed profile.

Formulation (after Heilmeier et al., "Minimum curvature trajectory planning and control for an
autonomous race car", Vehicle System Dynamics 2020). The track is resampled at a uniform spacing
``h`` [m] (``N`` nodes, centre line ``p_i``, unit left normals ``n_i``). The line is

    P_i(alpha) = p_i + alpha_i n_i,      lb_i <= alpha_i <= ub_i,
    lb_i = -w_right_i + c,  ub_i = w_left_i - c,   c = car width / 2 + margin.

Its curvature with derivatives taken with respect to the node index (periodic central differences,
``P' = (P_{i+1} - P_{i-1}) / 2``, ``P'' = P_{i+1} - 2 P_i + P_{i-1}``) is

    kappa_i = (x'_i y''_i - y'_i x''_i) / (x'^2_i + y'^2_i)^{3/2}.

(the exact curvature of the polygon; a parametrisation-invariant measure, so that on a circle the
sum N / rho^2 falls with the radius rho). The problem

    min_alpha  sum_i kappa_i(alpha)^2    s.t.  lb <= alpha <= ub

is solved by Gauss-Newton: linearise ``kappa(alpha_k + d) ~ kappa_k + J_k d`` (J tridiagonal, analytic),
solve the box-constrained QP ``min ||kappa_k + J_k d||^2 + eps ||alpha||^2`` with IPOPT (casadi ``conic``
via ``nlpsol``; sparse, ~30 ms for 2000 offsets), backtrack until the exact objective decreases, and
repeat until the offsets change by less than 1 mm (at most ``iterations`` QPs). The resulting points
are fitted with a periodic cubic spline and resampled uniformly along the line's own arc length (psi, kappa from the spline); the
speed profile is :func:`racing.geometry.speed_profile.speed_profile` at full grip (friction ellipse
with lateral limit g * min(D_f, D_r), drive limit min(accel_max, power / (m v), mu g) less drag,
braking min(decel_max, mu g) plus drag, top speed v_max).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from racing.geometry.path import ClosedPath
from racing.geometry.speed_profile import speed_profile
from racing.models.params import VehicleParams
from racing.raceline import RacelineError
from racing.track import Raceline, Track


@dataclass(frozen=True, eq=False)
class MinCurvResult:
    """Minimum-curvature line with its QSS speed profile.

    raceline : racing.track.Raceline, the line resampled at ~``spacing`` along its own arc length,
        with vx [m/s] / ax [m/s^2] of the QSS profile
    lap_time : QSS lap time [s] on the line
    grid : racing.track.Track, the track resampled at the QP spacing (nodes the offsets refer to)
    alpha : float64[N] lateral offsets n [m] of the line at the grid nodes (positive left)
    lb, ub : float64[N] the offset bounds [m] used
    s_line : float64[N] arc length [m] along the line of each grid node's line point
    status : QP solver status of the last QP
    qp_iterations : number of QPs solved
    solve_time : wall time [s] of the whole computation (QPs, spline, speed profile)
    margin, spacing : the settings used [m]
    """

    raceline: object
    lap_time: float
    grid: object
    alpha: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    s_line: np.ndarray
    status: str
    qp_iterations: int
    solve_time: float
    margin: float
    spacing: float

    @property
    def v_max(self) -> float:
        return float(np.max(self.raceline.vx))


def default_margin(params: VehicleParams) -> float:
    """Default safety margin [m] between the car's side and the track edge: 10% of the car width."""
    return 0.1 * params.width


def default_spacing(track, params: VehicleParams) -> float:
    """Default optimisation grid spacing [m]: the wheelbase, at most 3 m and at most the track's own spacing
    times 2, at least length / 4000."""
    h = min(3.0, params.wheelbase, 2.0 * track.ds)
    return max(h, track.length / 4000.0)


def resample_track(track, spacing: float):
    """The track re-splined through its own samples at uniform ``spacing`` [m] (the track itself if equal)."""
    if not (math.isfinite(spacing) and spacing > 0):
        raise RacelineError(f"track {track.name}: spacing = {spacing}; expected a number > 0 [m]")
    n = max(8, int(round(track.length / spacing)))
    if n == track.n_samples:
        return track
    return Track.from_centerline(track.xy, track.w_right, track.w_left, name=track.name, ds=track.length / n,
                                 source=track.source, description=track.description, scale=track.scale)


def offset_bounds(grid, params: VehicleParams, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Lateral offset bounds (lb[N], ub[N]) [m] of the car's centre; RacelineError if the track is too narrow."""
    if not (math.isfinite(margin) and margin >= 0):
        raise RacelineError(f"track {grid.name}: margin = {margin}; expected a number >= 0 [m]")
    c = 0.5 * params.width + margin
    lb = -np.asarray(grid.w_right) + c
    ub = np.asarray(grid.w_left) - c
    # the curvilinear frame is singular where n reaches the centre line's radius of curvature on the inside of
    # a bend: keep 1 - n kappa >= 0.1
    k = np.asarray(grid.kappa)
    with np.errstate(divide="ignore"):
        ub = np.where(k > 0, np.minimum(ub, 0.9 / np.where(k > 0, k, 1.0)), ub)
        lb = np.where(k < 0, np.maximum(lb, 0.9 / np.where(k < 0, k, -1.0)), lb)
    room = ub - lb
    if np.any(room <= 0.0):
        i = int(np.argmin(room))
        w = float(grid.w_left[i] + grid.w_right[i])
        if w <= params.width + 2.0 * margin:
            raise RacelineError(
                f"track {grid.name} is too narrow for car {params.name} at s = {grid.s[i]:.2f} m: width {w:.3f} m "
                f"<= car width {params.width:.3f} m + 2 x margin {margin:.3f} m")
        raise RacelineError(
            f"track {grid.name}: no room for car {params.name} at s = {grid.s[i]:.2f} m: the bend radius "
            f"{1 / abs(k[i]):.3f} m of the centre line is too tight for its width {w:.3f} m")
    return lb, ub


def _periodic_d2(n: int):
    """Sparse periodic second-difference matrix [n, n] (csr)."""
    import scipy.sparse as sp

    i = np.arange(n)
    rows = np.concatenate([i, i, i])
    cols = np.concatenate([(i - 1) % n, i, (i + 1) % n])
    vals = np.concatenate([np.ones(n), -2.0 * np.ones(n), np.ones(n)])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def _to_casadi(a):
    import casadi as ca
    import scipy.sparse as sp

    a = sp.csc_matrix(a)
    a.sort_indices()
    return ca.DM(ca.Sparsity(a.shape[0], a.shape[1], a.indptr.tolist(), a.indices.tolist()), a.data)


def curvature_and_jacobian(p: np.ndarray, nrm: np.ndarray, alpha: np.ndarray):
    """Discrete curvature kappa[N] [1/m] of the closed polygon P = p + alpha * nrm (periodic central
    differences in the node index) and its sparse Jacobian d kappa / d alpha [N, N] (three diagonals)."""
    import scipy.sparse as sp

    n = p.shape[0]
    P = p + alpha[:, None] * nrm
    Pn, Pp = np.roll(P, -1, axis=0), np.roll(P, 1, axis=0)
    d1 = 0.5 * (Pn - Pp)
    d2 = Pn - 2.0 * P + Pp
    cr = lambda a, b: a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]  # noqa: E731
    q = np.maximum(np.hypot(d1[:, 0], d1[:, 1]), 1e-12)
    c = cr(d1, d2)
    kappa = c / q ** 3

    def dk(dd1, dd2):
        return (cr(dd1, d2) + cr(d1, dd2)) / q ** 3 - 3.0 * c * np.sum(d1 * dd1, axis=1) / q ** 5

    nn, npv = np.roll(nrm, -1, axis=0), np.roll(nrm, 1, axis=0)
    d_next = dk(0.5 * nn, nn)            # d kappa_i / d alpha_{i+1}
    d_prev = dk(-0.5 * npv, npv)         # d kappa_i / d alpha_{i-1}
    d_self = dk(np.zeros_like(nrm), -2.0 * nrm)
    i = np.arange(n)
    J = sp.csc_matrix((np.concatenate([d_self, d_next, d_prev]),
                       (np.concatenate([i, i, i]), np.concatenate([i, (i + 1) % n, (i - 1) % n]))), shape=(n, n))
    return kappa, J


def min_curvature_offsets(grid, lb: np.ndarray, ub: np.ndarray, iterations: int = 30, eps: float = 1e-6,
                          tol: float = 1e-3) -> tuple[np.ndarray, str, int]:
    """Minimise sum_i kappa_i(alpha)^2 subject to lb <= alpha <= ub by Gauss-Newton: each iteration solves the
    box-constrained QP of the linearised curvature (IPOPT), then backtracks until the exact objective decreases.

    Returns (alpha[N] [m], last QP status, QPs solved). Raises RacelineError when IPOPT does not solve a QP.
    """
    import casadi as ca
    import scipy.sparse as sp

    p = np.asarray(grid.xy, dtype=float)
    nrm = np.asarray(grid.normals, dtype=float)
    n = p.shape[0]
    alpha = np.clip(np.zeros(n), lb, ub)
    status, used = "not solved", 0
    solver = None
    kappa, J = curvature_and_jacobian(p, nrm, alpha)
    obj = float(kappa @ kappa)
    for it in range(iterations):
        H = (J.T @ J).tocsc()
        scale = 1.0 / max(float(H.diagonal().max()), 1e-300)
        H = 2.0 * scale * (H + eps * float(H.diagonal().mean()) * sp.identity(n, format="csc"))
        g = 2.0 * scale * (J.T @ (kappa - J @ alpha))
        Hc = _to_casadi(H)
        if solver is None:
            A = _to_casadi(sp.csc_matrix((0, n)))
            solver = ca.conic("mincurv", "nlpsol", {"h": Hc.sparsity(), "a": A.sparsity()},
                              {"nlpsol": "ipopt", "error_on_fail": False,
                               "nlpsol_options": {"ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": False,
                                                  "ipopt.tol": 1e-10, "ipopt.max_iter": 500}})
        res = solver(h=Hc, g=g, lbx=lb, ubx=ub, x0=alpha)
        st = solver.stats()
        status = str(st.get("solver_stats", {}).get("return_status", st.get("return_status", "unknown")))
        used = it + 1
        if status not in ("Solve_Succeeded", "Solved_To_Acceptable_Level"):
            raise RacelineError(f"track {grid.name}: min-curvature QP failed: IPOPT status {status!r}", status=status)
        d = np.clip(np.asarray(res["x"]).ravel(), lb, ub) - alpha
        t = 1.0
        while True:  # backtracking on the exact objective (the box is convex, so alpha + t d stays inside)
            cand = alpha + t * d
            k_c, J_c = curvature_and_jacobian(p, nrm, cand)
            o_c = float(k_c @ k_c)
            if o_c <= obj or t < 1e-3:
                break
            t *= 0.5
        step = float(np.max(np.abs(t * d)))
        alpha, kappa, J, obj = cand, k_c, J_c, o_c
        if step < tol:
            break
    return alpha, status, used


def line_points(grid, alpha: np.ndarray) -> np.ndarray:
    """Line positions [N, 2] [m] at the grid nodes: p + alpha * left normal."""
    return np.asarray(grid.xy) + np.asarray(alpha)[:, None] * np.asarray(grid.normals)


def raceline_geometry(points: np.ndarray, spacing: float, name: str = "line"):
    """Fit a periodic cubic spline through ``points`` [N, 2] and resample it uniformly at ~``spacing`` [m].

    Returns (line Track with s, xy, psi, kappa, length; arc length [N] of each input point along the line).
    """
    chord = np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)
    line = Track.from_centerline(points, 1.0, 1.0, name=name, ds=spacing)
    s_pts = np.concatenate([[0.0], np.cumsum(chord)[:-1]]) * (line.length / float(chord.sum()))
    return line, s_pts


def check_steering(kappa: np.ndarray, s: np.ndarray, params: VehicleParams, track_name: str) -> None:
    """RacelineError if the line is tighter than the car's kinematic turning limit tan(steer_max) / L."""
    kmax = math.tan(params.steer_max) / params.wheelbase
    k = np.abs(np.asarray(kappa))
    if np.any(k > kmax):
        i = int(np.argmax(k))
        raise RacelineError(
            f"track {track_name}: the racing line needs a radius of {1 / k[i]:.3f} m at s = {s[i]:.2f} m, "
            f"tighter than car {params.name} can turn (L / tan(steer_max) = {1 / kmax:.3f} m)")


def min_curvature_line(track, params: VehicleParams, spacing: float | None = None, margin: float | None = None,
                       iterations: int = 30) -> MinCurvResult:
    """Minimum-curvature line within the track and its QSS speed profile.

    Parameters
    ----------
    track : racing.track.Track
    params : the car (width for the bounds, limits for the speed profile)
    spacing : QP grid / output spacing [m] (default :func:`default_spacing`)
    margin : safety margin [m] between the car's side and the track edge (default :func:`default_margin`)
    iterations : most Gauss-Newton iterations (QPs)

    Raises
    ------
    RacelineError : the track is too narrow for the car (names the track and s), the QP fails (IPOPT
        status), or the line is tighter than the car can steer.
    """
    t0 = time.perf_counter()
    spacing = default_spacing(track, params) if spacing is None else float(spacing)
    margin = default_margin(params) if margin is None else float(margin)
    grid = resample_track(track, spacing)
    lb, ub = offset_bounds(grid, params, margin)
    alpha, status, used = min_curvature_offsets(grid, lb, ub, iterations=iterations)
    pts = line_points(grid, alpha)
    line, s_pts = raceline_geometry(pts, grid.ds, name=f"{track.name} min-curvature line")
    check_steering(line.kappa, line.s, params, track.name)
    prof = speed_profile(np.asarray(line.kappa), line.ds, params, grip_scale=1.0)
    rl = Raceline.from_arrays(line.s, line.xy[:, 0], line.xy[:, 1], line.psi, line.kappa, prof.v, prof.ax,
                              length=line.length, source=f"<mincurv {track.name}>")
    return MinCurvResult(raceline=rl, lap_time=float(prof.lap_time), grid=grid, alpha=alpha, lb=lb, ub=ub,
                         s_line=s_pts, status=status, qp_iterations=used, solve_time=time.perf_counter() - t0,
                         margin=margin, spacing=grid.ds)


def qss_lap_time(raceline, params: VehicleParams) -> float:
    """QSS lap time [s] of ``params`` on an arbitrary closed line (resampled uniformly at its mean spacing)."""
    path = ClosedPath(raceline.s, raceline.x, raceline.y, raceline.kappa, raceline.length)
    return float(speed_profile(path.kappa, path.ds, params).lap_time)
