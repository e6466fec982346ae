r"""iLQR / DDP with box-constrained inputs (Mayne 1966; Tassa, Erez and Todorov 2012; Tassa, Mansard and
Todorov 2014), on packed derivative rows (:class:`racing.control.ilqr.derivatives.Layout`).

One iteration around the nominal plan ``(X, U)``:

* **backward pass** (:func:`backward_pass`, numba): from the terminal ``V_x, V_xx``, for t = T-1..0::

      Q_x  = l_x + A' V_x            Q_u  = l_u + B' V_x
      Q_xx = l_xx + A' V_xx A        Q_uu = l_uu + B' V_xx B      Q_ux = l_ux + B' V_xx A
      (regularised: V_xx + mu I in Q_uu, Q_ux for the gains; Levenberg-Marquardt on the state, Tassa 2012)

  the input step ``k`` solves the box QP ``min 1/2 du' Q_uu du + Q_u' du`` s.t. ``lo - u <= du <= hi - u``
  exactly (two inputs: the interior or one of the four faces), the gain ``K`` is ``-Q_uu^-1 Q_ux`` on the free
  inputs and 0 on the clamped ones (Tassa 2014), and the value update uses the unregularised Q;
  ``dV = (sum k'Q_u, sum 1/2 k'Q_uu k)`` is the expected change.
* **forward pass** (the problem's): ``u_t = clamp(U_t + alpha k_t + K_t (x_t - X_t))`` on the real model,
  for ``alpha`` in the line-search list; a step is accepted when the cost decreases (by at least ``c1`` of the
  expected decrease), so the cost never increases across accepted iterations.
* **regularisation**: ``mu`` grows by ``reg_factor`` when ``Q_uu`` is not positive definite or no step size
  decreases the cost, shrinks after an accepted step; beyond ``reg_max``, or after ``max_retries`` increases
  within one iteration (a bound on the work of a real-time step), the iteration fails.

:class:`ILQR` runs iterations on a *problem* object that provides ``linearize() -> None`` (fills ``OUT[T, size]``
and ``OUT_T``), ``forward(alpha, k, K) -> cost`` (a candidate plan; ``inf`` when not finite), ``accept()``
(candidate -> nominal), the input bounds ``lo[T, 2]``, ``hi[T, 2]`` at the nominal, the nominal inputs ``U[T, 2]``
and ``lay`` (the :class:`~racing.control.ilqr.derivatives.Layout`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit


@njit(cache=True)
def _box_qp2(H00, H01, H11, g0, g1, lo0, hi0, lo1, hi1):
    """Exact minimiser of 1/2 d'Hd + g'd over the box (H positive definite, 2 variables).
    Returns (d0, d1, free0, free1)."""
    det = H00 * H11 - H01 * H01
    d0 = (-H11 * g0 + H01 * g1) / det
    d1 = (H01 * g0 - H00 * g1) / det
    if lo0 <= d0 <= hi0 and lo1 <= d1 <= hi1:
        return d0, d1, True, True
    best = math.inf
    b0 = 0.0
    b1 = 0.0
    f0 = False
    f1 = False
    for face in range(4):
        if face < 2:  # d0 on a bound, d1 free in its box
            c0 = lo0 if face == 0 else hi0
            c1 = min(max(-(g1 + H01 * c0) / H11, lo1), hi1)
            fr0, fr1 = False, lo1 < c1 < hi1
        else:  # d1 on a bound, d0 free in its box
            c1 = lo1 if face == 2 else hi1
            c0 = min(max(-(g0 + H01 * c1) / H00, lo0), hi0)
            fr0, fr1 = lo0 < c0 < hi0, False
        v = 0.5 * (H00 * c0 * c0 + 2.0 * H01 * c0 * c1 + H11 * c1 * c1) + g0 * c0 + g1 * c1
        if v < best:
            best, b0, b1, f0, f1 = v, c0, c1, fr0, fr1
    return b0, b1, f0, f1


@njit(cache=True, inline="always")
def _bt_times(row, o_b, n, a, M, j):
    """``(B' M)[a, j]`` for ``B[n, 2]`` stored row-major at ``row[o_b:]`` and ``M[n, :]``."""
    acc = 0.0
    for q in range(n):
        acc += row[o_b + q * 2 + a] * M[q, j]
    return acc


def backward_scratch(n: int) -> tuple:
    """The scratch arrays of :func:`backward_pass` for a state of ``n`` (made once per solver)."""
    return np.zeros((3, n, n)), np.zeros((2, n, 2)), np.zeros((2, 2, 2)), np.zeros((5, n)), np.zeros(n), \
        np.zeros((n, n))


@njit(cache=True)
def backward_pass(OUT, OUT_T, n, o_a, o_b, o_lx, o_lu, o_lxx, o_luu, o_lux, U, lo, hi, mu, kff, K, scratch):
    """The backward pass (module doc) for 2 inputs. ``OUT[T, size]`` stage rows, ``OUT_T`` terminal row
    (``l_f, l_fx[n], l_fxx[n*n]``), ``U, lo, hi [T, 2]`` nominal inputs and bounds, ``mu`` regularisation.
    Writes ``kff[T, 2]``, ``K[T, 2, n]``; ``scratch`` from :func:`backward_scratch` (nothing is allocated).
    Returns ``(ok, dV1, dV2)``; ``ok`` is False when a regularised Q_uu is not positive definite or a value
    is not finite."""
    W, WB, HH, Z, Vx, Vxx = scratch
    T = OUT.shape[0]
    for i in range(n):
        Vx[i] = OUT_T[1 + i]
        for j in range(n):
            Vxx[i, j] = OUT_T[1 + n + i * n + j]
    VA, VAr, Qxx = W[0], W[1], W[2]  # V_xx A, (V_xx + mu I) A, Q_xx (n x n)
    VB, VBr = WB[0], WB[1]  # V_xx B, (V_xx + mu I) B (n x 2)
    H, Hr = HH[0], HH[1]  # Q_uu, regularised Q_uu
    Qx, Qux, Quxr = Z[0], Z[1:3], Z[3:5]
    dV1 = 0.0
    dV2 = 0.0
    for t in range(T - 1, -1, -1):
        row = OUT[t]
        # V A, V B (and their regularised versions)
        for i in range(n):
            for j in range(n):
                acc = 0.0
                for q in range(n):
                    acc += Vxx[i, q] * row[o_a + q * n + j]
                VA[i, j] = acc
                VAr[i, j] = acc + mu * row[o_a + i * n + j]
            for j in range(2):
                acc = 0.0
                for q in range(n):
                    acc += Vxx[i, q] * row[o_b + q * 2 + j]
                VB[i, j] = acc
                VBr[i, j] = acc + mu * row[o_b + i * 2 + j]
        for i in range(n):
            acc = row[o_lx + i]
            for q in range(n):
                acc += row[o_a + q * n + i] * Vx[q]
            Qx[i] = acc
            for j in range(i, n):
                acc = row[o_lxx + i * n + j]
                for q in range(n):
                    acc += row[o_a + q * n + i] * VA[q, j]
                Qxx[i, j] = acc
                Qxx[j, i] = acc
        Qu0 = row[o_lu]
        Qu1 = row[o_lu + 1]
        for q in range(n):
            Qu0 += row[o_b + q * 2] * Vx[q]
            Qu1 += row[o_b + q * 2 + 1] * Vx[q]
        for a in range(2):
            for b in range(2):
                H[a, b] = row[o_luu + a * 2 + b] + _bt_times(row, o_b, n, a, VB, b)
                Hr[a, b] = row[o_luu + a * 2 + b] + _bt_times(row, o_b, n, a, VBr, b)
            for j in range(n):
                Qux[a, j] = row[o_lux + a * n + j] + _bt_times(row, o_b, n, a, VA, j)
                Quxr[a, j] = row[o_lux + a * n + j] + _bt_times(row, o_b, n, a, VAr, j)
        h00 = Hr[0, 0]
        h01 = 0.5 * (Hr[0, 1] + Hr[1, 0])
        h11 = Hr[1, 1]
        det = h00 * h11 - h01 * h01
        if not (h00 > 0.0 and det > 0.0 and math.isfinite(det) and math.isfinite(Qu0) and math.isfinite(Qu1)):
            return False, 0.0, 0.0
        d0, d1, f0, f1 = _box_qp2(h00, h01, h11, Qu0, Qu1, lo[t, 0] - U[t, 0], hi[t, 0] - U[t, 0],
                                  lo[t, 1] - U[t, 1], hi[t, 1] - U[t, 1])
        kff[t, 0] = d0
        kff[t, 1] = d1
        for j in range(n):
            if f0 and f1:
                K[t, 0, j] = -(h11 * Quxr[0, j] - h01 * Quxr[1, j]) / det
                K[t, 1, j] = -(-h01 * Quxr[0, j] + h00 * Quxr[1, j]) / det
            else:
                K[t, 0, j] = -Quxr[0, j] / h00 if f0 else 0.0
                K[t, 1, j] = -Quxr[1, j] / h11 if f1 else 0.0
        # value update with the unregularised Q
        Hk0 = H[0, 0] * d0 + H[0, 1] * d1
        Hk1 = H[1, 0] * d0 + H[1, 1] * d1
        dV1 += d0 * Qu0 + d1 * Qu1
        dV2 += 0.5 * (d0 * Hk0 + d1 * Hk1)
        for i in range(n):
            Vx[i] = (Qx[i] + K[t, 0, i] * (Hk0 + Qu0) + K[t, 1, i] * (Hk1 + Qu1)
                     + Qux[0, i] * d0 + Qux[1, i] * d1)
        for i in range(n):
            for j in range(i, n):
                HK0 = H[0, 0] * K[t, 0, j] + H[0, 1] * K[t, 1, j]
                HK1 = H[1, 0] * K[t, 0, j] + H[1, 1] * K[t, 1, j]
                v = (Qxx[i, j] + K[t, 0, i] * HK0 + K[t, 1, i] * HK1
                     + K[t, 0, i] * Qux[0, j] + K[t, 1, i] * Qux[1, j]
                     + Qux[0, i] * K[t, 0, j] + Qux[1, i] * K[t, 1, j])
                Vxx[i, j] = v
                Vxx[j, i] = v
        for i in range(n):
            if not math.isfinite(Vx[i]):
                return False, 0.0, 0.0
    return True, dV1, dV2


@dataclass
class SolveInfo:
    """What one solve did: ``iterations`` run, ``accepted`` steps, ``cost`` before/after, the expected and actual
    decrease of the last accepted step, the final regularisation ``mu``, ``converged`` (relative decrease below the
    tolerance, or no descent direction left), ``failed`` with a ``reason`` (no step accepted and the
    regularisation exhausted, or non-finite values)."""

    iterations: int = 0
    accepted: int = 0
    cost_start: float = math.nan
    cost: float = math.nan
    expected_decrease: float = 0.0
    decrease: float = 0.0
    mu: float = math.nan
    alpha: float = math.nan
    converged: bool = False
    failed: bool = False
    reason: str = ""
    history: list = field(default_factory=list)


class ILQR:
    """The iteration driver on a problem (module doc). ``config`` needs ``reg_init, reg_min, reg_max,
    reg_factor, line_search, tolerance`` (:class:`racing.control.ilqr.config.ILQRConfig`)."""

    #: minimum ratio of actual to expected decrease for a step to be accepted (Armijo-like)
    C1 = 1e-4

    def __init__(self, problem, config):
        self.pb = problem
        self.config = config
        lay = problem.lay
        T = problem.T
        self.kff = np.zeros((T, 2))
        self.K = np.zeros((T, 2, lay.n))
        self._scratch = backward_scratch(lay.n)
        self.alphas = tuple(float(a) for a in config.line_search)
        self.mu = float(config.reg_init)

    def reset(self) -> None:
        self.mu = float(self.config.reg_init)
        self.kff[:] = 0.0
        self.K[:] = 0.0

    def _backward(self) -> tuple[bool, float, float]:
        lay, pb = self.pb.lay, self.pb
        return backward_pass(pb.OUT, pb.OUT_T, lay.n, lay.a, lay.b, lay.lx, lay.lu, lay.lxx, lay.luu, lay.lux,
                             pb.U, pb.lo, pb.hi, self.mu, self.kff, self.K, self._scratch)

    def solve(self, iterations: int, cost: float) -> SolveInfo:
        """Run up to ``iterations`` iterations from the problem's nominal plan of cost ``cost``."""
        c = self.config
        info = SolveInfo(cost_start=cost, cost=cost)
        if not math.isfinite(cost):
            info.failed, info.reason = True, "the nominal plan is not finite"
            info.mu = self.mu
            return info
        for _ in range(iterations):
            info.iterations += 1
            self.pb.linearize()
            accepted = False
            retries = 0
            while not accepted:
                ok, dv1, dv2 = self._backward()
                if not ok:
                    self.mu = max(self.mu * c.reg_factor, c.reg_min)
                    retries += 1
                    if self.mu > c.reg_max or retries > c.max_retries:
                        break
                    continue
                if -(dv1 + dv2) < c.tolerance * max(abs(cost), 1.0):
                    # the full step would gain less than the tolerance: a (local) optimum, to within what the line
                    # search could resolve in rounding noise
                    info.converged = True
                    break
                for alpha in self.alphas:
                    new = self.pb.forward(alpha, self.kff, self.K)
                    expected = -(alpha * dv1 + alpha * alpha * dv2)
                    if math.isfinite(new) and new < cost and (cost - new) >= self.C1 * expected:
                        self.pb.accept()
                        info.decrease = cost - new
                        info.expected_decrease = expected
                        info.alpha = alpha
                        info.history.append(new)
                        rel = (cost - new) / max(abs(cost), 1e-12)
                        cost = new
                        accepted = True
                        self.mu = max(self.mu / c.reg_factor, c.reg_min)
                        info.accepted += 1
                        if rel < c.tolerance:
                            info.converged = True
                        break
                if not accepted:
                    self.mu = self.mu * c.reg_factor
                    retries += 1
                    if self.mu > c.reg_max or retries > c.max_retries:
                        break
            if not accepted:
                if not info.converged:
                    info.failed = info.accepted == 0
                    info.reason = (f"no step size decreased the cost (mu up to {self.mu:g}, "
                                   f"{retries} regularisation steps)" if info.failed else "")
                    self.mu = min(self.mu, c.reg_max)  # the next step starts from the regularisation reached
                break
            if info.converged:
                break
        info.cost = cost
        info.mu = self.mu
        return info


__all__ = ["ILQR", "SolveInfo", "backward_pass", "backward_scratch"]
