"""The racing problem of iLQR: the nominal plan, its forward pass on the compiled model and the exact cost, and
the linearisation through the casadi derivatives (:mod:`.derivatives`).

The forward pass (numba) steps the same discrete model MPPI rolls out (``racing.control.mppi.step.DYNAMIC`` /
``KINEMATIC``, i.e. :func:`racing.models.discrete.dynamic_step_c`), clamps the inputs with MPPI's
:func:`~racing.control.mppi.step.clamp_inputs` and the acceleration to what the tyres take
(:func:`racing.models.dynamic.accel_limits`: beyond it the input has no gradient), projects every state onto the centre line with
:func:`racing.control.costs.project_local` and sums :func:`racing.control.costs.smooth_stage` (terminal speed
term and ``- progress (s_T - s_0)`` at the end): the cost the backward pass linearises, evaluated exactly.
It also writes the track rows (:data:`~.derivatives.NROW`) and input bounds of the new plan, so that an accepted
plan is linearised without another pass.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.extending import register_jitable

from racing.control import costs as C
from racing.control import horizon as H
from racing.control.ilqr import derivatives as DV
from racing.models import sops
from racing.models.dynamic import accel_limits
from racing.models.kinematic import body_velocities
from racing.models.params import P_LF, P_LR

#: the guide policy's look-ahead (:func:`make_forward`): max(GUIDE_WHEELBASES x wheelbase, GUIDE_TIME x v_x) [m]
GUIDE_WHEELBASES = 2.5
GUIDE_TIME = 0.35


@register_jitable(inline="always")
def _dynamic_view(st, p):
    return st[3], st[4], st[5]


@register_jitable(inline="always")
def _kinematic_view(st, p):
    return body_velocities(st[3], st[6], p, sops)


#: model name -> (rollout model of MPPI, slots of its 9-tuple state that form the iLQR state, cost view)
MODELS = {
    "dynamic": (H.DYNAMIC, (0, 1, 2, 3, 4, 5, 6), _dynamic_view),
    "kinematic": (H.KINEMATIC, (0, 1, 2, 3, 6), _kinematic_view),
}

_FORWARD: dict = {}


@register_jitable(inline="always")
def row_at(tab, R, t, i, iu, frac, cp):
    """Row ``R[t]`` (:data:`~.derivatives.NROW`) of the track at segment ``i`` + ``frac`` (unwrapped ``iu``)."""
    R[t, DV.ROW_PX] = C.lerp_col(tab, i, frac, C.TAB_X, sops)
    R[t, DV.ROW_PY] = C.lerp_col(tab, i, frac, C.TAB_Y, sops)
    R[t, DV.ROW_TX] = tab[i, C.TAB_TX]
    R[t, DV.ROW_TY] = tab[i, C.TAB_TY]
    R[t, DV.ROW_S] = (iu + frac) * cp[C.C_DS]
    R[t, DV.ROW_WL] = C.lerp_col(tab, i, frac, C.TAB_WL, sops)
    R[t, DV.ROW_WR] = C.lerp_col(tab, i, frac, C.TAB_WR, sops)
    R[t, DV.ROW_NREF] = C.lerp_col(tab, i, frac, C.TAB_NREF, sops)
    R[t, DV.ROW_VCAP] = C.lerp_col(tab, i, frac, C.TAB_VCAP, sops)
    j = i + 1
    if j == tab.shape[0]:
        j = 0
    inv = 1.0 / max(math.sqrt((tab[j, C.TAB_X] - tab[i, C.TAB_X]) ** 2 + (tab[j, C.TAB_Y] - tab[i, C.TAB_Y]) ** 2),
                    1e-9)
    R[t, DV.ROW_DWL] = (tab[j, C.TAB_WL] - tab[i, C.TAB_WL]) * inv
    R[t, DV.ROW_DWR] = (tab[j, C.TAB_WR] - tab[i, C.TAB_WR]) * inv
    R[t, DV.ROW_DNREF] = (tab[j, C.TAB_NREF] - tab[i, C.TAB_NREF]) * inv
    R[t, DV.ROW_DVCAP] = (tab[j, C.TAB_VCAP] - tab[i, C.TAB_VCAP]) * inv


def make_guide(view):
    """The guide policy of a model whose cost view is ``view`` (a compiled closure, inlined into the forward pass)."""

    @register_jitable(inline="always")
    def guide(st, tab, i, frac, m, cp):
        """The guide policy's inputs at the rollout state ``st``: a steering rate that reaches, in one step, the
        pure-pursuit angle towards the reference line (offset ``TAB_NREF``) a look-ahead ahead of segment ``i``, and
        the acceleration that reaches, in one step, the speed cap where the car will be after it (clamped later)."""
        vx = view(st, m.p)[0]
        wb = m.p[P_LF] + m.p[P_LR]
        npts = tab.shape[0]
        ds = cp[C.C_DS]
        look = max(GUIDE_WHEELBASES * wb, GUIDE_TIME * vx)
        k = (i + int(look / ds + frac)) % npts
        nref = tab[k, C.TAB_NREF]
        dx = tab[k, C.TAB_X] - tab[k, C.TAB_TY] * nref - st[0]
        dy = tab[k, C.TAB_Y] + tab[k, C.TAB_TX] * nref - st[1]
        lx = st[7] * dx + st[8] * dy
        ly = -st[8] * dx + st[7] * dy
        d_des = math.atan(2.0 * wb * ly / max(lx * lx + ly * ly, 1e-6))
        kv = (i + int(max(vx, 0.0) * m.dt / ds + frac)) % npts
        return (d_des - st[6]) / m.dt, (tab[kv, C.TAB_VCAP] - vx) / m.dt

    return guide


def make_forward(model: str):
    """The compiled forward pass of ``model`` (module doc), built once per process, cached on disk."""
    if model in _FORWARD:
        return _FORWARD[model]
    rm, idx, view = MODELS[model]
    start, step = rm.start, rm.step
    nx = len(idx)

    guide = make_guide(view)

    @register_jitable(inline="always")
    def state_cost(st, R, t, terminal, m, cp, ksharp):
        vx, vy, r = view(st, m.p)
        return DV.row_state_cost(R[t], st[0], st[1], st[6], vx, vy, r, terminal, ksharp, cp, sops)

    def forward(x0, u_prev, Xb, Ub, kff, K, alpha, m, tab, cp, ksharp, i0, zr, X, U, R, lo, hi, t_guide):
        """Forward pass from ``x0[7]`` (observation layout) with ``u_prev[2]``; nominal ``Xb[T+1, n]``,
        ``Ub[T, 2]``, step ``kff[T, 2]``, gains ``K[T, 2, n]``, step size ``alpha``; from step ``t_guide`` on the
        guide policy's inputs instead (``t_guide = T``: none). Writes the candidate ``X``, ``U``, rows
        ``R[T+1, NROW]``, bounds ``lo, hi [T, 2]``; returns the cost (inf when a state is not finite)."""
        T = Ub.shape[0]
        st = start(x0, m, zr)
        i, iu, frac, _ = C.project_local(tab, i0, i0, st[0], st[1])
        row_at(tab, R, 0, i, iu, frac, cp)
        s0 = DV.row_frenet(R[0], st[0], st[1])[1] + R[0, DV.ROW_S]
        up0 = u_prev[0]
        up1 = u_prev[1]
        J = 0.0
        for t in range(T):
            for j in range(nx):
                X[t, j] = st[idx[j]]
            X[t, nx] = up0
            X[t, nx + 1] = up1
            if t > 0:
                J += state_cost(st, R, t, 0.0, m, cp, ksharp)[0]
            if t >= t_guide:
                b0, b1 = guide(st, tab, i, frac, m, cp)
            else:
                b0 = Ub[t, 0] + alpha * kff[t, 0]
                b1 = Ub[t, 1] + alpha * kff[t, 1]
                for j in range(nx + 2):
                    e = X[t, j] - Xb[t, j]
                    b0 += K[t, 0, j] * e
                    b1 += K[t, 1, j] * e
            lo0, lo1 = H.clamp_inputs(st[6], -1e300, -1e300, m.p, m.dt, sops)
            hi0, hi1 = H.clamp_inputs(st[6], 1e300, 1e300, m.p, m.dt, sops)
            # and the acceleration the tyres can take (power, grip): beyond it the model saturates and the input
            # has no gradient, so an input parked there could never be pulled back by the backward pass
            alo, ahi = accel_limits(view(st, m.p)[0], m.p, sops)
            lo1 = min(max(lo1, alo), hi1)
            hi1 = max(min(hi1, ahi), lo1)
            lo[t, 0], lo[t, 1], hi[t, 0], hi[t, 1] = lo0, lo1, hi0, hi1
            u0 = min(max(b0, lo0), hi0)
            u1 = min(max(b1, lo1), hi1)
            U[t, 0] = u0
            U[t, 1] = u1
            J += C.input_change_cost(u0 - up0, u1 - up1, cp)
            st = step(st, u0, u1, m, zr)
            up0 = u0
            up1 = u1
            i, iu, frac, _ = C.project_local(tab, i, iu, st[0], st[1])
            row_at(tab, R, t + 1, i, iu, frac, cp)
            if not math.isfinite(J) or not (math.isfinite(st[0]) and math.isfinite(st[1])
                                            and math.isfinite(st[3])):
                return math.inf
        for j in range(nx):
            X[T, j] = st[idx[j]]
        X[T, nx] = up0
        X[T, nx + 1] = up1
        cT, sT = state_cost(st, R, T, 1.0, m, cp, ksharp)
        J += cT - cp[C.C_PROGRESS] * (sT - s0)
        for t in range(T + 1):
            for j in range(nx + 2):
                if not math.isfinite(X[t, j]):
                    return math.inf
        return J

    # a cache file of its own per model (numba names it by the qualname): two processes saving two models' passes
    # under one name at once could take the same data file (racing.control.mppi.step._make_iteration)
    forward.__qualname__ = f"forward_{model}"
    forward = njit(cache=True)(forward)
    _FORWARD[model] = forward
    return forward


class RacingProblem:
    """The nominal plan and its candidate (double buffers), the linearisation and the forward pass.

    ``x0[7]`` (observation layout) and ``u_prev[2]`` are set by the controller before a solve; ``X[T+1, n]``,
    ``U[T, 2]``, ``R[T+1, NROW]``, ``lo``/``hi[T, 2]`` are the nominal plan, its track rows and input bounds.
    """

    def __init__(self, model: str, T: int, nsub: int, dt: float, p: np.ndarray, cp: np.ndarray, tab: np.ndarray,
                 sharpness: float, codegen: str, hessian: str = "gauss_newton"):
        self.model = model
        self.T = T
        self.D = DV.derivatives(model, T, nsub, codegen, hessian)
        self.lay = self.D.lay
        n = self.lay.n
        self.nx = n - 2
        self.fwd = make_forward(model)
        self.m = H.ModelArgs(p=p, dt=float(dt), nsub=int(nsub), rw=np.zeros(0), z0=np.zeros(1))
        self.zr = np.zeros(1)
        self.cp, self.tab, self.k = cp, tab, float(sharpness)
        self.h = float(dt) / int(nsub)
        q = self.D.q
        q[:p.size] = p
        q[p.size:p.size + cp.size] = cp
        q[-2], q[-1] = self.k, self.h
        self.OUT, self.OUT_T = self.D.OUT, self.D.OUT_T
        z = np.zeros
        self.X, self.U, self.R, self.lo, self.hi = z((T + 1, n)), z((T, 2)), z((T + 1, DV.NROW)), z((T, 2)), z((T, 2))
        self._c = [z((T + 1, n)), z((T, 2)), z((T + 1, DV.NROW)), z((T, 2)), z((T, 2))]
        self.x0 = np.zeros(7)
        self.u_prev = np.zeros(2)
        self.i0 = 0
        self.source = "none"
        self._zero_k = np.zeros((T, 2))
        self._zero_K = np.zeros((T, 2, n))

    def set_params(self, p: np.ndarray) -> None:
        """New model parameters (same size)."""
        self.m.p[:] = p
        self.D.q[:p.size] = p

    def rollout(self, U: np.ndarray, t_guide: int | None = None) -> float:
        """Make the nominal plan the rollout of the inputs ``U[T, 2]`` (clamped) from ``x0``, the guide policy's from
        step ``t_guide`` on (default: none); returns its cost."""
        self.U[:] = U
        J = self.forward(0.0, self._zero_k, self._zero_K, t_guide=t_guide)
        self.accept()
        return J

    def warm_start(self, Xw: np.ndarray, Uw: np.ndarray, Kw: np.ndarray, t_guide: int | None = None) -> float:
        """Make the nominal plan the cheapest of three rollouts from ``x0``: a previous plan's (states
        ``Xw[T+1, n]``, inputs ``Uw[T, 2]``, gains ``Kw[T, 2, n]``, already shifted in time) time-varying feedback
        policy ``u = Uw + Kw (x - Xw)`` (closed loop: a state that drifted from the plan is steered back), its
        open-loop inputs, each with the guide policy's inputs from step ``t_guide`` on (the steps shifted in from
        beyond the old plan: a held input there drives into the next bend), and the guide policy alone (the recovery
        when the car has left the plan). Returns the cost (inf when none is finite); ``self.source`` says which."""
        J, self.source = math.inf, "none"
        for name, K, tg in (("feedback", Kw, t_guide), ("open_loop", self._zero_K, t_guide), ("guide", self._zero_K, 0)):
            Jc = self.forward(0.0, self._zero_k, K, Xb=Xw, Ub=Uw, t_guide=tg)
            if Jc < J:
                self.accept()
                J, self.source = Jc, name
        return J

    def forward(self, alpha: float, kff: np.ndarray, K: np.ndarray, Xb=None, Ub=None, t_guide: int | None = None) \
            -> float:
        """A candidate plan: ``u = Ub + alpha kff + K (x - Xb)`` (default: around the nominal), the guide policy from
        step ``t_guide`` on (default: none); returns its cost."""
        X, U, R, lo, hi = self._c
        return self.fwd(self.x0, self.u_prev, self.X if Xb is None else Xb, self.U if Ub is None else Ub, kff, K,
                        alpha, self.m, self.tab, self.cp, self.k, self.i0, self.zr, X, U, R, lo, hi,
                        self.T if t_guide is None else int(t_guide))

    def accept(self) -> None:
        c = self._c
        self.X, c[0] = c[0], self.X
        self.U, c[1] = c[1], self.U
        self.R, c[2] = c[2], self.R
        self.lo, c[3] = c[3], self.lo
        self.hi, c[4] = c[4], self.hi

    def linearize(self) -> None:
        """Fill the derivative rows at the nominal plan."""
        D, lay, T = self.D, self.lay, self.T
        n = lay.n
        Z = D.Z
        Z[:, :n] = self.X[:T]
        Z[:, lay.z_u:lay.z_u + 2] = self.U
        Z[:, lay.z_row:lay.z_w] = self.R[:T]
        Z[:, lay.z_w] = 1.0
        Z[0, lay.z_w] = 0.0  # the first state is given
        D.ZT[:n] = self.X[T]
        D.ZT[n:] = self.R[T]
        D.stage()
        D.terminal()


__all__ = ["MODELS", "RacingProblem", "make_forward"]
