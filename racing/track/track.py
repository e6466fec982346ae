"""Track geometry: a closed centre line with widths, Frenet projection and an optional raceline.

Conventions (ROS REP 103): SI units, x forward / y left, counter-clockwise angles positive,
angles wrapped to (-pi, pi]. The driving direction is the order of the centre-line points.
Positive curvature turns left; the lateral Frenet offset ``n`` is positive to the left of the
centre line.

The centre line is fitted with a periodic cubic spline ``x(u), y(u)`` (interpolating, or
smoothing when asked), resampled at a uniform arc-length spacing ``ds``; ``psi`` and ``kappa``
come from the spline derivatives. Between two samples the track is the straight chord, and
the normal direction is the normalised linear blend of the two sample normals. This makes the
map ``(s, n) -> xy`` continuous and exactly invertible by :meth:`Track.frenet` for
``|n| < 1/|kappa|`` (no dead zones at the vertices of the polyline).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from . import checks
from .checks import Crossover, polyline_self_intersections, polylines_intersect
from .errors import TrackError, TrackWarning
from .tables import RACELINE_COLUMNS, read_table

__all__ = [
    "TrackWarning",
    "Crossover",
    "TrackError",
    "Raceline",
    "Track",
    "wrap_angle",
    "polyline_self_intersections",
    "polylines_intersect",
]

TWO_PI = 2.0 * math.pi


def wrap_angle(a):
    """Wrap angles [rad] to (-pi, pi]. Array-like in, float64 array (or float) out, same shape."""
    a = np.asarray(a, dtype=np.float64)
    out = np.pi - np.mod(np.pi - a, TWO_PI)
    return out if out.ndim else float(out)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a


# --------------------------------------------------------------------------------------------
# Raceline
# --------------------------------------------------------------------------------------------
_RACELINE_COLS = ("s_m", "x_m", "y_m", "psi_rad", "kappa_radpm", "vx_mps", "ax_mps2")


@dataclass(frozen=True, eq=False)
class Raceline:
    """A racing line in the TUM 7-column format (closed loop, first point not repeated).

    Attributes (each float64[M], SI units)
    ------------------------------------------
    s : arc length along the raceline [m], s[0] is usually 0, strictly increasing
    x, y : position [m]
    psi : heading [rad] (0 = +x, counter-clockwise positive), wrapped to (-pi, pi]
    kappa : curvature [1/m], positive = turning left
    vx : target speed [m/s]
    ax : target longitudinal acceleration [m/s^2]
    length : total closed length [m] (s of the repeated first point)
    source : file it came from, or ``"<array>"``
    """

    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    psi: np.ndarray
    kappa: np.ndarray
    vx: np.ndarray
    ax: np.ndarray
    length: float
    source: str = "<array>"

    def __post_init__(self):
        m = None
        for name in _RACELINE_FIELDS:
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.ndim != 1:
                raise TrackError(f"{self.source}: raceline field {name} must be 1-D, got shape {arr.shape}")
            if m is None:
                m = arr.shape[0]
            elif arr.shape[0] != m:
                raise TrackError(f"{self.source}: raceline field {name} has {arr.shape[0]} values, expected {m}")
            if not np.all(np.isfinite(arr)):
                i = int(np.flatnonzero(~np.isfinite(arr))[0])
                raise TrackError(f"{self.source}: raceline row {i}: {name} is {arr[i]}; expected a finite number")
            if name == "psi":
                arr = np.asarray(wrap_angle(arr), dtype=np.float64)
            object.__setattr__(self, name, _readonly(arr))
        if m is None or m < 2:
            raise TrackError(f"{self.source}: a raceline needs at least 2 points, got {m}")
        if not (math.isfinite(self.length) and self.length > float(self.s[-1])):
            raise TrackError(
                f"{self.source}: raceline length {self.length} must be finite and > last s {float(self.s[-1])}"
            )
        object.__setattr__(self, "length", float(self.length))

    @classmethod
    def load(cls, path) -> "Raceline":
        """Read a TUM 7-column raceline file (``s_m; x_m; y_m; psi_rad; kappa_radpm; vx_mps; ax_mps2``).

        Semicolon separated, '#' comment lines ignored. A last point that repeats the first one
        (as in the F1TENTH files) is dropped and its ``s`` becomes :attr:`length`; otherwise the
        length is a ``# closed_length_m: <value>`` comment line when present (written by :meth:`save`),
        else ``s[-1]`` plus the closing chord. Raises :class:`TrackError` naming the file,
        the row (line number in the file, 1-based) and the column.
        """
        path = Path(path)
        data, lines, comments = read_table(path, RACELINE_COLUMNS, ";")
        if data.shape[0] < 3:
            raise TrackError(f"{path}: only {data.shape[0]} points; a raceline needs at least 3")
        s = data[:, 0]
        bad = np.flatnonzero(np.diff(s) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise TrackError(f"{path}: row {lines[i]}: s_m = {s[i]} after {s[i - 1]}; expected strictly increasing s_m")
        xy = data[:, 1:3]
        span = float(np.ptp(xy, axis=0).max()) or 1.0
        if np.linalg.norm(xy[-1] - xy[0]) <= 1e-6 * span:
            data = data[:-1]
            length = float(s[-1])
        else:
            length = float(s[-1] + np.linalg.norm(xy[-1] - xy[0]))
            for c in comments:  # exact closed length written by Raceline.save / the raceline cache
                key, _, val = c.partition(":")
                if key.strip() == "closed_length_m":
                    try:
                        v = float(val)
                    except ValueError:
                        raise TrackError(f"{path}: closed_length_m = {val.strip()!r} is not a number") from None
                    if not (math.isfinite(v) and v > s[-1]):
                        raise TrackError(f"{path}: closed_length_m = {v}; expected a number > last s_m {s[-1]}")
                    length = v
        return cls(s=data[:, 0], x=data[:, 1], y=data[:, 2], psi=wrap_angle(data[:, 3]), kappa=data[:, 4],
                   vx=data[:, 5], ax=data[:, 6], length=length, source=str(path))

    @classmethod
    def from_arrays(cls, s, x, y, psi, kappa, vx, ax, length=None, source="<array>") -> "Raceline":
        """Build from arrays [M]; ``length`` defaults to s[-1] + closing chord [m]."""
        s = np.asarray(s, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if length is None:
            length = float(s[-1] + math.hypot(x[0] - x[-1], y[0] - y[-1]))
        return cls(s=s, x=x, y=y, psi=wrap_angle(psi), kappa=kappa, vx=vx, ax=ax, length=length, source=source)

    def save(self, path) -> None:
        """Write the TUM 7-column format, semicolon separated, with a ``# s_m; x_m; ...`` header."""
        path = Path(path)
        data = np.column_stack([self.s, self.x, self.y, self.psi, self.kappa, self.vx, self.ax])
        with path.open("w", encoding="utf-8") as fh:
            fh.write(f"# closed_length_m: {self.length:.9f}\n")
            fh.write("# " + "; ".join(_RACELINE_COLS) + "\n")
            for row in data:
                fh.write(";".join(f"{v:.7f}" for v in row) + "\n")

    def without_speeds(self) -> "Raceline":
        """The same path with no speed profile (``vx``, ``ax`` zero): its geometry only, for a car the line's
        speeds were not made for (controllers then put the car's own friction-limited profile along it)."""
        zero = np.zeros_like(self.s)
        return replace(self, vx=zero, ax=zero)

    def xy(self) -> np.ndarray:
        """Positions [M, 2] [m]."""
        return np.column_stack([self.x, self.y])

    def __len__(self) -> int:
        return int(self.s.shape[0])

    def interp(self, s) -> dict:
        """Linear periodic interpolation at arc length(s) ``s`` [m] (any shape) of the raceline's own ``s``.

        Returns a dict with keys ``x, y, psi, kappa, vx, ax`` (arrays shaped like ``s``).
        """
        s = np.mod(np.asarray(s, dtype=np.float64), self.length)
        sp = np.append(self.s, self.length)
        out = {}
        for name in ("x", "y", "kappa", "vx", "ax"):
            v = getattr(self, name)
            out[name] = np.interp(s, sp, np.append(v, v[0]))
        c, sn = np.cos(self.psi), np.sin(self.psi)
        out["psi"] = np.arctan2(np.interp(s, sp, np.append(sn, sn[0])), np.interp(s, sp, np.append(c, c[0])))
        return out


_RACELINE_FIELDS = ("s", "x", "y", "psi", "kappa", "vx", "ax")


# --------------------------------------------------------------------------------------------
# Spline fit of a closed curve
# --------------------------------------------------------------------------------------------
_GL_X, _GL_W = np.polynomial.legendre.leggauss(5)


class _ClosedSpline:
    """Periodic cubic spline r(u) [m] of a closed curve; u in [0, U) is the chord-length parameter."""

    def __init__(self, xy: np.ndarray, smoothing: float | None):
        closed = np.vstack([xy, xy[:1]])
        u = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
        self.U = float(u[-1])
        self.u_nodes = u[:-1]
        if not smoothing:
            from scipy.interpolate import CubicSpline

            cs = CubicSpline(u, closed, bc_type="periodic", axis=0)
            self._d = [cs, cs.derivative(1), cs.derivative(2)]
            self._kind = "cubic"
        else:
            from scipy.interpolate import splprep

            m = xy.shape[0]
            tck, _ = splprep([closed[:, 0], closed[:, 1]], u=u, k=3, s=m * float(smoothing) ** 2, per=1, quiet=2)
            self._tck = tck
            self._kind = "fitpack"

    def __call__(self, u: np.ndarray, der: int = 0) -> np.ndarray:
        u = np.mod(u, self.U)
        if self._kind == "cubic":
            return self._d[der](u)
        from scipy.interpolate import splev

        return np.column_stack(splev(u, self._tck, der=der))

    def arc_table(self, sub: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """Dense table (u_k, S(u_k)) [K+1] of the arc length from u = 0, with u_K = U."""
        uk = np.concatenate([self.u_nodes, [self.U]])
        uu = (uk[:-1, None] + np.diff(uk)[:, None] * np.arange(sub)[None, :] / sub).ravel()
        uu = np.append(uu, self.U)
        h = np.diff(uu)
        q = 0.5 * (uu[:-1, None] + uu[1:, None]) + 0.5 * h[:, None] * _GL_X[None, :]
        sp = np.linalg.norm(self(q.ravel(), 1), axis=1).reshape(q.shape)
        seg = 0.5 * h * (sp @ _GL_W)
        return uu, np.concatenate([[0.0], np.cumsum(seg)])


# --------------------------------------------------------------------------------------------
# Track
# --------------------------------------------------------------------------------------------
class Track:
    """A closed race track: uniformly resampled centre line with widths and curvature.

    Attributes
    ----------
    name : str
    ds : float, uniform arc-length spacing of the samples [m]; ``N * ds == length``
    s : float64[N], arc length of the samples, s[0] = 0 [m]
    xy : float64[N, 2], centre-line samples [m] (closed; xy[N-1] != xy[0])
    psi : float64[N], centre-line heading [rad], wrapped to (-pi, pi]
    kappa : float64[N], curvature [1/m], positive = turning left
    w_left, w_right : float64[N], distance centre -> left / right edge [m] (> 0)
    length : float, closed length [m]
    raceline : Raceline | None
    source : str, file/folder it came from (``"<array>"`` for arrays)
    description : str, scale : str | None ("1:10" or "full"), from ``track.yaml`` when present

    All arrays are read-only. Build with :meth:`from_centerline` or :func:`racing.track.load_track`.
    """

    def __init__(self, *, name, ds, s, xy, psi, kappa, w_left, w_right, length, raceline=None,
                 source="<array>", description="", scale=None, widths_from="the centre-line data",
                 input_problems=()):
        self.name = str(name)
        #: where the widths come from (the centre-line file, or measured from an occupancy map)
        self.widths_from = str(widths_from)
        self.ds = float(ds)
        self.s = _readonly(s)
        self.xy = _readonly(xy)
        self.psi = _readonly(psi)
        self.kappa = _readonly(kappa)
        self.w_left = _readonly(w_left)
        self.w_right = _readonly(w_right)
        self.length = float(length)
        self.raceline = raceline
        self.source = str(source)
        self.description = str(description)
        self.scale = scale
        #: problems found in the input points before the fit (e.g. an open line closed with a long chord), reported
        #: by :meth:`geometry_problems`
        self.input_problems = tuple(input_problems)
        self._crossovers = None
        n = self.s.shape[0]
        # unit tangents / left normals at the samples, and the chord to the next sample
        self._t = _readonly(np.column_stack([np.cos(self.psi), np.sin(self.psi)]))
        self._nrm = _readonly(np.column_stack([-np.sin(self.psi), np.cos(self.psi)]))
        self._d = _readonly(np.roll(self.xy, -1, axis=0) - self.xy)
        self._n = n
        self._tree = None

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_centerline(cls, xy, w_right, w_left, name: str = "track", ds: float | None = None,
                        source: str = "<array>", smoothing: float | None = None,
                        row_numbers: Sequence[int] | None = None, description: str = "",
                        scale: str | None = None) -> "Track":
        """Build a track from a closed centre line.

        Parameters
        ----------
        xy : array [M, 2] [m], closed centre line in driving order; a last point equal to the first is dropped
        w_right, w_left : array [M] (or scalars) [m], distance centre -> right / left edge, > 0
        name : track name
        ds : resampling spacing [m]; default: the mean input spacing, rounded so that ``N * ds == length``
        source : file name used in error messages and kept in :attr:`source`
        smoothing : None / 0 -> interpolating periodic cubic spline; > 0 -> periodic smoothing spline
            (FITPACK) allowing this RMS deviation [m] from the input points
        row_numbers : labels [M] of the rows in error messages (e.g. file line numbers); default 0..M-1

        Widths are clipped where a bend is tighter than the width on its inside (:func:`checks.clip_widths`, with a
        :class:`TrackWarning`). An open line closed with a long chord is recorded in :attr:`input_problems`.

        Raises
        ------
        TrackError : fewer than 4 points, non-finite values, widths <= 0, duplicate consecutive points, coordinates
            or a lap length not of a circuit in metres, points on a straight line.
        """
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise TrackError(f"{source}: centre line must have shape [M, 2], got {xy.shape}")
        m = xy.shape[0]
        rows = np.arange(m) if row_numbers is None else np.asarray(row_numbers)
        if rows.shape[0] != m:
            raise TrackError(f"{source}: row_numbers has {rows.shape[0]} entries, expected {m}")
        wr = np.broadcast_to(np.asarray(w_right, dtype=np.float64), (m,)).copy()
        wl = np.broadcast_to(np.asarray(w_left, dtype=np.float64), (m,)).copy()
        for col, arr in (("x_m", xy[:, 0]), ("y_m", xy[:, 1]), ("w_tr_right_m", wr), ("w_tr_left_m", wl)):
            bad = ~np.isfinite(arr)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                what = "NaN" if np.isnan(arr[i]) else f"{arr[i]}"
                raise TrackError(f"{source}: row {rows[i]}: {col} is {what}; expected a finite number")
        for col, arr in (("w_tr_right_m", wr), ("w_tr_left_m", wl)):
            bad = arr <= 0
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise TrackError(f"{source}: row {rows[i]}: {col} = {arr[i]}; expected > 0")
        tol = 1e-9 * max(1.0, float(np.abs(xy).max()))
        if m >= 2 and np.linalg.norm(xy[0] - xy[-1]) <= tol:  # closing point repeated: drop it
            xy, wr, wl, rows, m = xy[:-1], wr[:-1], wl[:-1], rows[:-1], m - 1
        if m < 4:
            raise TrackError(f"{source}: only {m} points; a track needs at least 4")
        seg = np.linalg.norm(np.roll(xy, -1, axis=0) - xy, axis=1)
        dup = seg <= tol
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            j = (i + 1) % m
            raise TrackError(
                f"{source}: row {rows[j]}: point ({xy[j, 0]}, {xy[j, 1]}) repeats the previous point "
                f"(row {rows[i]}); expected distinct consecutive points"
            )
        input_problems = checks.check_input_points(xy, wr, wl, rows, source)
        if ds is not None and not (math.isfinite(ds) and ds > 0):
            raise TrackError(f"{source}: ds = {ds}; expected a finite number > 0")
        if smoothing is not None and not (math.isfinite(smoothing) and smoothing >= 0):
            raise TrackError(f"{source}: smoothing = {smoothing}; expected a finite number >= 0")

        spline = _ClosedSpline(xy, smoothing)
        uu, SS = spline.arc_table()
        length = float(SS[-1])
        if not length > 0:
            raise TrackError(f"{source}: centre line has zero length")
        checks.check_length(length, source)
        if ds is None:
            ds = length / m
        n = max(4, int(round(length / ds)))
        ds = length / n
        s = np.arange(n) * ds
        u = np.interp(s, SS, uu)
        r1 = spline(u, 1)
        r2 = spline(u, 2)
        p = spline(u, 0)
        sp = np.linalg.norm(r1, axis=1)
        psi = np.arctan2(r1[:, 1], r1[:, 0])
        kappa = (r1[:, 0] * r2[:, 1] - r1[:, 1] * r2[:, 0]) / sp**3
        # widths: periodic linear interpolation in arc length of the input points
        s_in = np.interp(spline.u_nodes, uu, SS)
        sp_in = np.append(s_in, length)
        w_right = np.interp(s, sp_in, np.append(wr, wr[0]))
        w_left = np.interp(s, sp_in, np.append(wl, wl[0]))
        normals = np.column_stack([-np.sin(psi), np.cos(psi)])
        w_left, w_right, clipped = checks.clip_widths(s, p, normals, kappa, w_left, w_right, ds, source)
        return cls(name=name, ds=ds, s=s, xy=p, psi=wrap_angle(psi), kappa=kappa, w_left=w_left,
                   w_right=w_right, length=length, source=source, description=description, scale=scale,
                   input_problems=input_problems + clipped)

    def with_raceline(self, raceline: Raceline | None) -> "Track":
        """A copy of this track with ``raceline`` attached (or removed with None)."""
        t = Track(name=self.name, ds=self.ds, s=self.s, xy=self.xy, psi=self.psi, kappa=self.kappa,
                  w_left=self.w_left, w_right=self.w_right, length=self.length, raceline=raceline,
                  source=self.source, description=self.description, scale=self.scale, widths_from=self.widths_from,
                  input_problems=self.input_problems)
        t._tree = self._tree
        t._crossovers = self._crossovers
        return t

    def check_raceline(self, raceline: Raceline, tolerance: float = 0.05) -> Raceline:
        """Raise :class:`TrackError` (naming the raceline's file) unless ``raceline`` belongs to this track: every
        point within the edges (``tolerance`` x the local width of slack) and one lap of about the same length
        (0.5-1.5 x the centre line). Returns ``raceline``."""
        s, n, _ = self.frenet_path(np.column_stack([raceline.x, raceline.y]))
        wl, wr = self.widths_at(s)
        excess = np.maximum(n - wl * (1 + tolerance), -wr * (1 + tolerance) - n)
        if np.any(excess > 0):
            i = int(np.argmax(excess))
            raise TrackError(f"{raceline.source}: raceline point {i} ({raceline.x[i]:.2f}, {raceline.y[i]:.2f}) is "
                             f"{excess[i]:.2f} m beyond the edge of track {self.name!r} ({self.source}); expected a "
                             f"raceline of this track, inside its edges")
        ratio = float(raceline.length) / self.length if raceline.length else 1.0
        if not 0.5 <= ratio <= 1.5:
            raise TrackError(f"{raceline.source}: raceline length {raceline.length:.1f} m vs track {self.name!r} "
                             f"length {self.length:.1f} m; expected one lap of this track (0.5-1.5 x its length)")
        return raceline

    def __repr__(self) -> str:
        rl = f", raceline={len(self.raceline)} pts" if self.raceline is not None else ""
        return (f"Track(name={self.name!r}, length={self.length:.2f} m, N={self.n_samples}, ds={self.ds:.4f} m, "
                f"width={self.w_left.mean() + self.w_right.mean():.2f} m{rl}, source={self.source!r})")

    # ---------------------------------------------------------------- basic geometry
    @property
    def n_samples(self) -> int:
        """Number of centre-line samples N."""
        return self._n

    @property
    def normals(self) -> np.ndarray:
        """Unit left normals at the samples [N, 2]."""
        return self._nrm

    @property
    def tangents(self) -> np.ndarray:
        """Unit tangents at the samples [N, 2]."""
        return self._t

    @property
    def min_radius(self) -> float:
        """Smallest radius of curvature 1/max|kappa| [m] (inf for a straight line)."""
        k = float(np.abs(self.kappa).max())
        return math.inf if k == 0 else 1.0 / k

    def left_boundary(self) -> np.ndarray:
        """Left edge [N, 2] [m]: xy + w_left * left normal."""
        return self.xy + self.w_left[:, None] * self._nrm

    def right_boundary(self) -> np.ndarray:
        """Right edge [N, 2] [m]: xy - w_right * left normal."""
        return self.xy - self.w_right[:, None] * self._nrm

    def arrays(self) -> np.ndarray:
        """float64[N, 7] C-contiguous, columns (s, x, y, psi, kappa, w_left, w_right), for numba kernels."""
        return np.ascontiguousarray(
            np.column_stack([self.s, self.xy, self.psi, self.kappa, self.w_left, self.w_right]))

    def wrap_s(self, s):
        """Arc length(s) [m] wrapped to [0, length)."""
        s = np.mod(np.asarray(s, dtype=np.float64), self.length)
        s = np.where(s >= self.length, 0.0, s)
        return s if s.ndim else float(s)

    def s_diff(self, s1, s0):
        """Signed periodic arc-length difference s1 - s0 [m] wrapped to [-length/2, length/2)."""
        L = self.length
        d = np.mod(np.asarray(s1, dtype=np.float64) - np.asarray(s0, dtype=np.float64) + 0.5 * L, L) - 0.5 * L
        return d if d.ndim else float(d)

    # ---------------------------------------------------------------- interpolation
    def _locate(self, s):
        """Segment index i [..] and fraction t in [0, 1) of arc length s (wrapped)."""
        s = np.mod(np.asarray(s, dtype=np.float64), self.length)
        f = s / self.ds
        i = np.floor(f).astype(np.int64)
        t = f - i
        i = np.mod(i, self._n)
        return i, t

    def _frame(self, i, t):
        """Point on the chord and blended unit normal at segment i, fraction t."""
        j = (i + 1) % self._n
        tt = t[..., None]
        p = self.xy[i] + tt * self._d[i]
        nv = (1.0 - tt) * self._nrm[i] + tt * self._nrm[j]
        nv = nv / np.linalg.norm(nv, axis=-1, keepdims=True)
        return p, nv

    def interp(self, s) -> dict:
        """Track properties at arc length(s) ``s`` [m] (any shape, periodic).

        Returns a dict with keys ``x, y`` [m] (on the chord between samples), ``psi`` [rad] (heading of the
        blended normal frame, consistent with :meth:`to_cartesian`), ``kappa`` [1/m], ``w_left, w_right`` [m]
        (linear between samples); every value is an array shaped like ``s``.
        """
        s = np.asarray(s, dtype=np.float64)
        i, t = self._locate(s)
        j = (i + 1) % self._n
        p, nv = self._frame(i, t)
        return {
            "x": p[..., 0],
            "y": p[..., 1],
            "psi": np.arctan2(-nv[..., 0], nv[..., 1]),
            "kappa": (1.0 - t) * self.kappa[i] + t * self.kappa[j],
            "w_left": (1.0 - t) * self.w_left[i] + t * self.w_left[j],
            "w_right": (1.0 - t) * self.w_right[i] + t * self.w_right[j],
        }

    def curvature_at(self, s):
        """Curvature [1/m] at arc length(s) ``s`` [m] (any shape, periodic, linear between samples)."""
        s = np.asarray(s, dtype=np.float64)
        i, t = self._locate(s)
        out = (1.0 - t) * self.kappa[i] + t * self.kappa[(i + 1) % self._n]
        return out if out.ndim else float(out)

    def widths_at(self, s) -> tuple[np.ndarray, np.ndarray]:
        """(w_left, w_right) [m] at arc length(s) ``s`` [m], arrays shaped like ``s``."""
        s = np.asarray(s, dtype=np.float64)
        i, t = self._locate(s)
        j = (i + 1) % self._n
        return ((1.0 - t) * self.w_left[i] + t * self.w_left[j], (1.0 - t) * self.w_right[i] + t * self.w_right[j])

    # ---------------------------------------------------------------- Frenet frame
    def to_cartesian(self, s, n) -> np.ndarray:
        """Frenet (s [m], n [m], positive left) -> xy [..., 2] [m]; ``s`` and ``n`` broadcast together.

        Exact inverse of :meth:`frenet` for |n| below the local radius of curvature.
        """
        s, n = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(n, dtype=np.float64))
        i, t = self._locate(s)
        p, nv = self._frame(i, t)
        return p + n[..., None] * nv

    @property
    def kdtree(self):
        """scipy.spatial.cKDTree of the samples (built on first use)."""
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self.xy)
        return self._tree

    def _project_segment(self, p, i):
        """Solve for the fraction t of segment i whose blended normal passes through p. Returns t, n."""
        j = (i + 1) % self._n
        a = self.xy[i]
        d = self._d[i]
        na = self._nrm[i]
        dn = self._nrm[j] - na
        q = p - a
        cr = lambda u, v: u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]  # noqa: E731
        # cross(q - t d, na + t dn) = 0  ->  A t^2 + B t + C = 0
        A = -cr(d, dn)
        B = cr(q, dn) - cr(d, na)
        C = cr(q, na)
        disc = np.maximum(B * B - 4.0 * A * C, 0.0)
        sgn = np.where(B >= 0.0, 1.0, -1.0)
        den = -B - sgn * np.sqrt(disc)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(np.abs(den) > 0.0, 2.0 * C / den, 0.0)
        t = np.where(np.isfinite(t), t, 0.0)
        tc = np.clip(t, 0.0, 1.0)
        pt, nv = self._frame(i, tc)
        r = p - pt
        nn = np.sum(r * nv, axis=-1)
        resid = np.abs(cr(nv, r))  # > 0 only where t had to be clipped
        return tc, nn, resid + 1e-9 * np.abs(t - tc)

    def frenet(self, xy, psi=None, hint=None, window: float | None = None):
        """Project points onto the centre line.

        Parameters
        ----------
        xy : array [..., 2] [m]
        psi : optional array [...] of headings [rad]
        hint : optional array [...] (or scalar) of previous arc lengths [m]: search only the samples within
            ``window`` [m] (default max(20 ds, 3 * max width), at most length/2) of the hint instead of the
            whole track. Use it for a car that may be far off the track near another part of the circuit.

        Returns
        -------
        s : [...] arc length in [0, length) [m]
        n : [...] lateral offset, positive left of the centre line [m]
        dpsi : [...] wrap(psi - track heading at s) [rad]; NaN where psi is None
        """
        xy = np.asarray(xy, dtype=np.float64)
        if xy.shape[-1] != 2:
            raise ValueError(f"frenet: xy must have shape [..., 2], got {xy.shape}")
        shape = xy.shape[:-1]
        p = xy.reshape(-1, 2)
        if hint is None:
            _, k = self.kdtree.query(p)
            k = np.asarray(k, dtype=np.int64)
        else:
            k = self._nearest_near_hint(p, np.broadcast_to(np.asarray(hint, dtype=np.float64), shape).ravel(),
                                        window)
        if p.shape[0] <= 4:  # small batches (one car per tick): scalar code is ~10x faster than numpy here
            return self._frenet_small(p, k, psi, shape)
        # candidate segments: the two adjacent to the nearest sample (k-1 -> k and k -> k+1)
        i0 = np.mod(k - 1, self._n)
        t0, n0, e0 = self._project_segment(p, i0)
        t1, n1, e1 = self._project_segment(p, k)
        use1 = e1 <= e0
        i = np.where(use1, k, i0)
        t = np.where(use1, t1, t0)
        n = np.where(use1, n1, n0)
        s = (i + t) * self.ds
        s = np.where(s >= self.length, s - self.length, s)
        s = s.reshape(shape)
        n = n.reshape(shape)
        if psi is None:
            dpsi = np.full(shape, np.nan)
        else:
            i2, tt = self._locate(s)
            _, nv = self._frame(i2, tt)
            dpsi = wrap_angle(np.asarray(psi, dtype=np.float64) - np.arctan2(-nv[..., 0], nv[..., 1]))
            dpsi = np.asarray(dpsi, dtype=np.float64).reshape(shape)
        if not shape:
            return float(s), float(n), float(dpsi)
        return s, n, dpsi

    def frenet_path(self, xy, psi=None):
        """Project an ordered closed path (a racing line) ``xy`` [M, 2] [m] onto the centre line: each point near
        the previous one's arc length (:meth:`frenet` with a hint), starting from a point away from every crossover,
        so a path through a bridge stays on its own branch. On a track without crossovers this is
        :meth:`frenet`. Returns (s [M] [m], n [M] [m], dpsi [M] [rad], NaN where ``psi`` is None)."""
        xy = np.asarray(xy, dtype=np.float64)
        s, n, dpsi = self.frenet(xy, psi)
        if not self.crossovers or xy.shape[0] < 2:
            return s, n, dpsi
        away = np.ones(len(s), dtype=bool)
        for c in self.crossovers:
            away &= ~c.near(s, self.length)
        k0 = int(np.flatnonzero(away)[0]) if away.any() else 0
        order = np.roll(np.arange(len(s)), -k0)
        hint = s[k0]
        for k in order:
            s[k], n[k], _ = self.frenet(xy[k], hint=hint)
            hint = s[k]
        if psi is not None:
            _, _, dpsi = self.frenet(xy, psi, hint=s)
        return s, n, dpsi

    def _project_one(self, px: float, py: float, i: int):
        """Scalar version of :meth:`_project_segment` (same formulas). Returns t, n, residual, nx, ny."""
        j = i + 1 if i + 1 < self._n else 0
        ax, ay = self._xy_l[i]
        dx, dy = self._d_l[i]
        nax, nay = self._nrm_l[i]
        nbx, nby = self._nrm_l[j]
        dnx, dny = nbx - nax, nby - nay
        qx, qy = px - ax, py - ay
        A = -(dx * dny - dy * dnx)
        B = (qx * dny - qy * dnx) - (dx * nay - dy * nax)
        C = qx * nay - qy * nax
        disc = max(B * B - 4.0 * A * C, 0.0)
        den = -B - (1.0 if B >= 0.0 else -1.0) * math.sqrt(disc)
        t = 2.0 * C / den if den != 0.0 else 0.0
        if not math.isfinite(t):
            t = 0.0
        tc = min(max(t, 0.0), 1.0)
        nx, ny = (1.0 - tc) * nax + tc * nbx, (1.0 - tc) * nay + tc * nby
        nl = math.hypot(nx, ny)
        nx, ny = nx / nl, ny / nl
        rx, ry = px - (ax + tc * dx), py - (ay + tc * dy)
        return tc, rx * nx + ry * ny, abs(nx * ry - ny * rx) + 1e-9 * abs(t - tc), nx, ny

    def _frenet_small(self, p, k, psi, shape):
        if not hasattr(self, "_xy_l"):
            self._xy_l = self.xy.tolist()
            self._d_l = self._d.tolist()
            self._nrm_l = self._nrm.tolist()
        m = p.shape[0]
        s_out = np.empty(m)
        n_out = np.empty(m)
        hd = np.empty(m)
        for q in range(m):
            px, py = float(p[q, 0]), float(p[q, 1])
            kk = int(k[q])
            i0 = kk - 1 if kk > 0 else self._n - 1
            t0, n0, e0, nx0, ny0 = self._project_one(px, py, i0)
            t1, n1, e1, nx1, ny1 = self._project_one(px, py, kk)
            if e1 <= e0:
                i, t, n, nx, ny = kk, t1, n1, nx1, ny1
            else:
                i, t, n, nx, ny = i0, t0, n0, nx0, ny0
            s = (i + t) * self.ds
            if s >= self.length:
                s -= self.length
            s_out[q], n_out[q], hd[q] = s, n, math.atan2(-nx, ny)
        s_out = s_out.reshape(shape)
        n_out = n_out.reshape(shape)
        if psi is None:
            dpsi = np.full(shape, np.nan)
        else:
            dpsi = np.asarray(wrap_angle(np.asarray(psi, dtype=np.float64) - hd.reshape(shape)),
                              dtype=np.float64).reshape(shape)
        if not shape:
            return float(s_out), float(n_out), float(dpsi)
        return s_out, n_out, dpsi

    def _nearest_near_hint(self, p, hint, window):
        if window is None:
            wmax = float(max(self.w_left.max(), self.w_right.max()))
            window = max(20.0 * self.ds, 3.0 * wmax)
        half = int(min(self._n // 2, max(2, math.ceil(window / self.ds))))
        offs = np.arange(-half, half + 1)
        c = np.round(np.mod(hint, self.length) / self.ds).astype(np.int64)
        idx = np.mod(c[:, None] + offs[None, :], self._n)  # [P, W]
        d2 = np.sum((self.xy[idx] - p[:, None, :]) ** 2, axis=-1)
        return idx[np.arange(p.shape[0]), np.argmin(d2, axis=1)]

    def is_inside(self, xy, margin: float = 0.0, hint=None) -> np.ndarray:
        """bool [...]: -w_right + margin <= n <= w_left - margin for points xy [..., 2] [m]."""
        s, n, _ = self.frenet(xy, hint=hint)
        wl, wr = self.widths_at(s)
        return (n <= wl - margin) & (n >= -wr + margin)

    # ---------------------------------------------------------------- checks
    @property
    def crossovers(self) -> list[Crossover]:
        """Every place where the centre line crosses itself (:class:`Crossover`, computed on first use); on an
        accepted track, bridges (:mod:`racing.track.checks`). Where there is one, project a car with a hint
        (:meth:`frenet`) and a path with :meth:`frenet_path`, never globally."""
        if self._crossovers is None:
            self._crossovers = checks.find_crossovers(self)
        return self._crossovers

    def geometry_problems(self, clearance: float = 0.0) -> list[str]:
        """Sanity checks of the track shape (:func:`racing.track.checks.problems`); returns human-readable problems
        (empty list = fine): the input's problems (an open line closed with a long chord, widths clipped over most
        of the lap), a radius below the inner width (tracks not built by :meth:`from_centerline`), a centre line
        crossing itself other than on a bridge, edges crossing outside a bridge, distinct parts closer than
        ``clearance`` [m] edge to edge."""
        return checks.problems(self, clearance)

    def check_geometry(self, clearance: float = 0.0) -> "Track":
        """Raise :class:`TrackError` naming the track's file and every problem of :meth:`geometry_problems`;
        returns ``self`` when fine (a bridge and clipped tight bends are fine)."""
        probs = self.geometry_problems(clearance)
        if probs:
            raise TrackError(f"{self.source}: track geometry is not a raceable closed track: {'; '.join(probs)} "
                             f"(race it anyway with --allow-bad-geometry / check_geometry=False)")
        return self

    def min_clearance(self) -> float:
        """Smallest edge-to-edge gap [m] between distinct parts of the track (inf if none are close).

        Two samples i, j are 'distinct parts' when their arc-length separation exceeds 2 * r with
        r = 2 * max width + the search radius; the gap is |xy_i - xy_j| - w_i - w_j with w the larger side width.
        """
        from scipy.spatial import cKDTree

        w = np.maximum(self.w_left, self.w_right)
        r = 4.0 * float(w.max()) + 2.0 * self.ds
        tree = cKDTree(self.xy)
        pairs = tree.query_pairs(r=r, output_type="ndarray")
        if pairs.size == 0:
            return math.inf
        i, j = pairs[:, 0], pairs[:, 1]
        sep = np.abs(self.s_diff(self.s[i], self.s[j]))
        far = sep > 2.0 * r
        if not far.any():
            return math.inf
        i, j = i[far], j[far]
        return float(np.min(np.linalg.norm(self.xy[i] - self.xy[j], axis=1) - w[i] - w[j]))
