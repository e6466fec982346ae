"""The iLQR problem's derivatives from casadi, built once per model from the one source.

The model step is :func:`racing.models.discrete.dynamic_step` / :func:`~racing.models.discrete.kinematic_step`
and the stage cost :func:`racing.control.costs.smooth_stage` (its residuals :func:`~racing.control.costs.smooth_residuals`
for the Gauss-Newton Hessian), both evaluated with the casadi namespace
(:func:`racing.models.ops.casadi_ops`): nothing here restates model or cost math. casadi differentiates them
(``jacobian``, ``hessian``) and one mapped function evaluates the whole horizon in one call.

**State.** iLQR's state is the model state with the previous input appended (``xa = (x, u_prev)``,
``n = nx + 2``), so that the input-change term is a stage cost of ``(xa_t, u_t)``: ``u_prev' = u``.

**Track.** The racing cost needs the Frenet coordinates of the position. Around the nominal plan they are
linearised per step: ``row_t = (p_x, p_y, t_x, t_y, s, w_left, w_right, n_ref, v_cap, and the slopes of the
last four per metre)`` holds the nominal position's projection onto the reference line (point, unit tangent,
arc length [m]) and the track values there, so that ``n = t x (p - p_ref)``, ``s = s_ref + t . (p - p_ref)`` and
the track values (e.g. ``v_cap + v_cap' (s - s_ref)``) are exact at the nominal and first-order around it. The
forward pass evaluates the cost with the exact projection (:mod:`.problem`).

Functions (casadi, on packed rows, :class:`Layout`): ``stage(z[z_size], q) -> out[size]`` with
``z = (xa[n], u[2], row[NROW], w)`` (``w`` the weight of the state terms: 0 at t = 0, whose state is given) and
``out = (xa_next, A, B, l, l_x, l_u, l_xx, l_uu, l_ux)``; ``terminal(zt, q) -> (l_f, l_fx, l_fxx)`` (the terminal
speed term minus the progress reward ``progress * s``); ``q = (p, cp, k, h)``. ``stage`` is mapped over the
horizon, so one call evaluates all ``T`` rows ``OUT[T, size]``.

With a C compiler (``codegen: auto|on``) the mapped functions are generated as C, compiled once with ``cc -O2``
and cached under ``$RACING_CACHE/ilqr`` (default ``~/.cache/racing/ilqr``), keyed by a hash of the source;
without one they run on the casadi virtual machine (``codegen: off``, or ``auto`` without a compiler: the
controller's ``derivatives_backend`` says which).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from racing.control import costs as C
from racing.models.discrete import dynamic_step, kinematic_step
from racing.models.fastmath import scalar
from racing.models.kinematic import body_velocities
from racing.models.ops import casadi_ops
from racing.models.params import N_PARAMS

#: columns of a track row (see the module doc)
(ROW_PX, ROW_PY, ROW_TX, ROW_TY, ROW_S, ROW_WL, ROW_WR, ROW_NREF, ROW_VCAP,
 ROW_DWL, ROW_DWR, ROW_DNREF, ROW_DVCAP) = range(13)
NROW = 13


def _dynamic_view(xm, p, ops):
    return xm[0], xm[1], xm[6], xm[3], xm[4], xm[5]


def _kinematic_view(xm, p, ops):
    vx, vy, r = body_velocities(xm[3], xm[4], p, ops)
    return xm[0], xm[1], xm[4], vx, vy, r


def _model_forms(name: str):
    """``(step, nx, view)`` of a planning model: its vectorised discrete step, state size, and the map of its
    state to ``(p_x, p_y, delta, v_x, v_y, r)`` (the kinematic one through its state map)."""
    return {"dynamic": (dynamic_step, 7, _dynamic_view), "kinematic": (kinematic_step, 5, _kinematic_view)}[name]


@scalar
def row_frenet(row, px, py):
    """``(n, ds)``: lateral offset [m] and arc length past the row's point [m] of the position (first order)."""
    dx, dy = px - row[ROW_PX], py - row[ROW_PY]
    return row[ROW_TX] * dy - row[ROW_TY] * dx, row[ROW_TX] * dx + row[ROW_TY] * dy


@scalar
def row_state_cost(row, px, py, d, vx, vy, r, terminal, k, cp, ops):
    """The smooth stage cost (:func:`racing.control.costs.smooth_stage`, no input change) of a position and
    body state against a track row, the track values extrapolated along the arc; returns ``(cost, s)``."""
    n, ds = row_frenet(row, px, py)
    return C.smooth_stage(n, row[ROW_WL] + row[ROW_DWL] * ds, row[ROW_WR] + row[ROW_DWR] * ds,
                          row[ROW_NREF] + row[ROW_DNREF] * ds, row[ROW_VCAP] + row[ROW_DVCAP] * ds, d, vx, vy, r,
                          0.0, 0.0, terminal, k, cp, ops), row[ROW_S] + ds


def _state_residuals(name, xm, row, terminal, p, cp, k, ops):
    """The residuals of :func:`row_state_cost` (:func:`racing.control.costs.smooth_residuals`) and ``s``."""
    px, py, d, vx, vy, r = _model_forms(name)[2](xm, p, ops)
    n, ds = row_frenet(row, px, py)
    res = C.smooth_residuals(n, row[ROW_WL] + row[ROW_DWL] * ds, row[ROW_WR] + row[ROW_DWR] * ds,
                             row[ROW_NREF] + row[ROW_DNREF] * ds, row[ROW_VCAP] + row[ROW_DVCAP] * ds, d, vx, vy, r,
                             0.0, 0.0, terminal, k, cp, ops)
    return ops.stack(list(res)), row[ROW_S] + ds


def _state_cost(name, xm, row, terminal, p, cp, k, ops):
    px, py, d, vx, vy, r = _model_forms(name)[2](xm, p, ops)
    return row_state_cost(row, px, py, d, vx, vy, r, terminal, k, cp, ops)


class Layout(NamedTuple):
    """Offsets of the packed rows (all float64) for a state of ``n`` and ``m`` inputs.

    Stage input row ``Z[t]``: ``xa[n], u[m], row[9], w``; parameters ``q = (p[N_PARAMS], cp[N_COST_PARAMS], k, h)``.
    Stage output row ``OUT[t]``: ``xa_next[n], A[n*n], B[n*m], l, l_x[n], l_u[m], l_xx[n*n], l_uu[m*m],
    l_ux[m*n]`` with the matrices row-major (``A[i, j]`` at ``A + i n + j``). Terminal input ``xa[n], row[9]``,
    output ``l_f, l_fx[n], l_fxx[n*n]``.
    """

    n: int
    m: int
    z_u: int
    z_row: int
    z_w: int
    z_size: int
    xn: int
    a: int
    b: int
    l: int
    lx: int
    lu: int
    lxx: int
    luu: int
    lux: int
    size: int
    t_size: int
    f_size: int


def layout(n: int, m: int = 2) -> Layout:
    z_u = n
    z_row = n + m
    z_w = z_row + NROW
    o = [0]

    def nxt(k):
        o[0] += k
        return o[0] - k

    xn, a, b, l, lx, lu = nxt(n), nxt(n * n), nxt(n * m), nxt(1), nxt(n), nxt(m)
    lxx, luu, lux = nxt(n * n), nxt(m * m), nxt(m * n)
    return Layout(n, m, z_u, z_row, z_w, z_w + 1, xn, a, b, l, lx, lu, lxx, luu, lux, o[0], n + NROW,
                  1 + n + n * n)


def _pack(ca, mats):
    """One dense column of the matrices, each row-major (``vec`` of the transpose)."""
    return ca.densify(ca.vertcat(*[ca.vec(ca.densify(M).T) for M in mats]))


def build(model: str, nsub: int, hessian: str = "gauss_newton"):
    """casadi ``(stage, terminal, nx)`` of ``model`` (``dynamic``|``kinematic``) with ``nsub`` model sub-steps of
    ``h`` per plan step, on packed rows (:class:`Layout`): ``stage(z, q) -> out``, ``terminal(zt, q) -> out``.

    ``hessian``: ``gauss_newton`` (``2 J_r' J_r`` of the cost's residuals, :func:`racing.control.costs.smooth_residuals`:
    positive semi-definite, so the backward pass's value function stays convex) or ``exact`` (casadi's Hessian of
    the cost)."""
    import casadi as ca


    ops = casadi_ops()
    step, nx, _ = _model_forms(model)
    n, m = nx + 2, 2
    xa = ca.SX.sym("xa", n)
    u = ca.SX.sym("u", m)
    row = ca.SX.sym("row", NROW)
    w = ca.SX.sym("w")
    p = ca.SX.sym("p", N_PARAMS)
    cp = ca.SX.sym("cp", C.N_COST_PARAMS)
    k = ca.SX.sym("k")
    h = ca.SX.sym("h")
    q = ca.vertcat(p, cp, k, h)
    xm = xa[:nx]
    xn = xm
    for _ in range(nsub):
        xn = step(xn, u, p, h, ops)
    fa = ca.vertcat(xn, u)
    lstate, _ = _state_cost(model, xm, row, 0.0, p, cp, k, ops)
    du = u - xa[nx:]
    l = w * lstate + C.input_change_cost(du[0], du[1], cp)
    z = ca.vertcat(xa, u)
    H, g = ca.hessian(l, z)
    if hessian == "gauss_newton":
        rs, _ = _state_residuals(model, xm, row, 0.0, p, cp, k, ops)
        ru = ca.vertcat(ca.sqrt(cp[C.C_DSTEER]) * du[0], ca.sqrt(cp[C.C_DACCEL]) * du[1])
        J = ca.jacobian(ca.vertcat(ca.sqrt(w) * rs, ru), z)
        H = 2.0 * ca.mtimes(J.T, J)
    out = _pack(ca, [fa, ca.jacobian(fa, xa), ca.jacobian(fa, u), l, g[:n], g[n:], H[:n, :n], H[n:, n:],
                     H[n:, :n]])
    stage = ca.Function("ilqr_stage", [ca.vertcat(xa, u, row, w), q], [out], ["z", "q"], ["out"])
    lf_state, s = _state_cost(model, xm, row, 1.0, p, cp, k, ops)
    lf = lf_state - cp[C.C_PROGRESS] * s
    Hf, gf = ca.hessian(lf, xa)
    if hessian == "gauss_newton":
        rf, _ = _state_residuals(model, xm, row, 1.0, p, cp, k, ops)
        Jf = ca.jacobian(rf, xa)
        Hf = 2.0 * ca.mtimes(Jf.T, Jf)
    terminal = ca.Function("ilqr_terminal", [ca.vertcat(xa, row), q], [_pack(ca, [lf, gf, Hf])], ["zt", "q"],
                           ["out"])
    return stage, terminal, nx


def cache_dir() -> Path:
    env = os.environ.get("RACING_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "racing"
    return base / "ilqr"


def compiler() -> str | None:
    """The C compiler used for code generation (``$CC``, else ``cc``/``gcc``/``clang`` on the PATH), or None."""
    for c in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if c and shutil.which(c):
            return shutil.which(c)
    return None


def _compile(funcs, tag: str):
    """Generate C for ``funcs``, compile it once (cached by the hash of the source); returns the library's path."""
    import casadi as ca

    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set $CC or install cc/gcc)")
    name = f"racing_ilqr_{tag}"
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            cg = ca.CodeGenerator(f"{name}.c", {"with_header": False})
            for f in funcs:
                cg.add(f)
            cg.generate()
            src = Path(tmp, f"{name}.c").read_text()
        finally:
            os.chdir(cwd)
    digest = hashlib.sha1((src + ca.__version__).encode()).hexdigest()[:16]
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    lib = d / f"{name}_{digest}.so"
    if not lib.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            c_file = Path(tmp) / f"{name}.c"
            c_file.write_text(src)
            out = Path(tmp) / lib.name
            res = subprocess.run([cc, "-O2", "-fPIC", "-shared", str(c_file), "-o", str(out), "-lm"],
                                 capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"compiling the iLQR derivatives failed ({cc}): {res.stderr[-2000:]}")
            tmp_lib = lib.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(out, tmp_lib)
            os.replace(tmp_lib, lib)  # atomic: a concurrent process never loads a half-written library
    return str(lib)


class _CFunction:
    """A compiled casadi function called through ctypes on bound numpy buffers (no conversion per call)."""

    def __init__(self, lib: str, name: str):
        import ctypes

        self._lib = ctypes.CDLL(lib)
        f = getattr(self._lib, name)
        f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        f.restype = ctypes.c_int
        sz = [ctypes.c_int64() for _ in range(4)]
        getattr(self._lib, name + "_work")(*[ctypes.byref(v) for v in sz])
        self._f = f
        self._iw = np.zeros(max(sz[2].value, 1), np.int64)
        self._w = np.zeros(max(sz[3].value, 1))
        self._arg = (ctypes.c_void_p * max(sz[0].value, 2))()
        self._res = (ctypes.c_void_p * max(sz[1].value, 1))()
        self._keep = ()

    def bind(self, inputs, output) -> None:
        """Bind C-contiguous float64 arrays: the inputs in order and the output."""
        for a in (*inputs, output):
            if not (a.dtype == np.float64 and a.flags.c_contiguous):
                raise ValueError("bound buffers must be C-contiguous float64 arrays")
        for i, a in enumerate(inputs):
            self._arg[i] = a.ctypes.data
        self._res[0] = output.ctypes.data
        self._keep = (*inputs, output)

    def __call__(self) -> None:
        if self._f(self._arg, self._res, self._iw.ctypes.data, self._w.ctypes.data, 0) != 0:
            raise FloatingPointError("the compiled iLQR derivatives returned an error")


class _VMFunction:
    """The same interface on the casadi virtual machine (one conversion per input and output)."""

    def __init__(self, f):
        self._f = f
        self._keep = ()

    def bind(self, inputs, output) -> None:
        self._keep = (inputs, output)

    def __call__(self) -> None:
        inputs, output = self._keep
        r = self._f(*[a.T if a.ndim == 2 else a for a in inputs])
        output.reshape(-1, r.shape[0])[:] = r.full().T


@dataclass
class Derivatives:
    """The horizon's derivatives (module doc) on packed buffers: fill ``Z[T, z_size]`` (:class:`Layout`) and
    ``q``, call :meth:`stage` / :meth:`terminal`, read ``OUT[T, size]`` and ``OUT_T[f_size]``. ``backend`` says
    whether compiled C or the casadi VM runs them."""

    model: str
    horizon: int
    nsub: int
    nx: int
    backend: str
    lay: Layout
    Z: np.ndarray
    ZT: np.ndarray
    q: np.ndarray
    OUT: np.ndarray
    OUT_T: np.ndarray
    stage: object
    terminal: object


_built: dict = {}


_built: dict = {}


def derivatives(model: str, horizon: int, nsub: int, codegen: str = "auto",
                hessian: str = "gauss_newton") -> Derivatives:
    """The :class:`Derivatives` of ``model`` over ``horizon`` steps with its own buffers. The casadi functions
    are built (and compiled) once per process and arguments. ``codegen``: ``on`` (compile; an error without a
    compiler), ``off`` (casadi VM), ``auto`` (compile when a C compiler exists, else the VM)."""
    key = (model, horizon, nsub, codegen, hessian)
    if key not in _built:
        stage, terminal, nx = build(model, nsub, hessian)
        stage_map = stage.map(f"ilqr_stage_{model}_T{horizon}", "serial", horizon, [1], [])
        funcs = (lambda: _VMFunction(stage_map), lambda: _VMFunction(terminal))
        backend = "casadi VM"
        if codegen == "on" or (codegen == "auto" and compiler() is not None):
            try:
                lib = _compile([stage_map, terminal], f"{model}_T{horizon}_n{nsub}_{hessian}")
                funcs = (lambda: _CFunction(lib, stage_map.name()), lambda: _CFunction(lib, terminal.name()))
                backend = f"compiled C ({compiler()})"
            except (RuntimeError, OSError) as exc:
                if codegen == "on":
                    raise
                backend = f"casadi VM (code generation failed: {str(exc)[:200]})"
        _built[key] = (nx, funcs, backend)
    nx, funcs, backend = _built[key]
    lay = layout(nx + 2)
    Z = np.zeros((horizon, lay.z_size))
    ZT = np.zeros(lay.t_size)
    q = np.zeros(N_PARAMS + C.N_COST_PARAMS + 2)
    OUT = np.zeros((horizon, lay.size))
    OUT_T = np.zeros(lay.f_size)
    st, te = funcs[0](), funcs[1]()
    st.bind((Z, q), OUT)
    te.bind((ZT, q), OUT_T)
    return Derivatives(model, horizon, nsub, nx, backend, lay, Z, ZT, q, OUT, OUT_T, st, te)


__all__ = ["Derivatives", "Layout", "NROW", "build", "cache_dir", "compiler", "derivatives", "layout"]
