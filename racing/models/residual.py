r"""Semi-parametric model f = f_p + f_np: a small MLP residual on top of the dynamic bicycle.

After Georgiev et al. 2020 ("Iterative Semi-parametric Dynamics Model Learning For Autonomous
Racing"). The physics model ``f_p`` is :func:`racing.models.dynamic.dynamic_rhs`; the network
``g`` corrects the velocity derivatives. One control step of ``dt`` [s] from ``x_k`` with model
input ``u_k`` (steering rate [rad/s], acceleration [m/s^2]) and the residual's own augmented
state ``z_k`` (``n_aug`` filter states, may be empty)::

    fp      = f_p(x_k, u_k, p)                                 (continuous derivative, float[7])
    x_{k+1} = Phi_p(x_k, u_k, dt)                              (any integrator of f_p: RK4, sub-steps)
    x_{k+1}[VX, VY, YAW_RATE] += dt * g(x_k, u_k, fp, z_k)     [m/s^2, m/s^2, rad/s^2] * [s]
    z_{k+1}[i] = z_k[i] + (1 - exp(-dt / tau_i)) (u_k[ACCEL] - z_k[i])     i = 0 .. n_aug-1

**Augmented state (filtered acceleration command).** A bicycle model driven by (state, input)
cannot see effects with memory, e.g. a drivetrain whose delivered acceleration lags the
command: the same (x, u) then leads to different futures. ``z`` carries first-order low-pass
filters [m/s^2] of the acceleration input with time constants ``tau_i`` [s] (stored in the
weights), so the network can learn the lag and the load transfer that follows the *delivered*
acceleration. ``z`` is part of the predictor's state: it is advanced with the input actually
applied at every control step (:func:`aug_update_nb`), and at the start of a prediction it is
taken from the filter run over the recent command history (a controller keeps it up to date
from the commands it sent; a log predictor runs it over the log, see
:func:`racing.sysid.rollout.aug_history`). With no history, ``z = u[ACCEL]`` (steady state) is
the fallback. Weights with ``n_aug = 0`` are the plain (version 1) residual.

Features of ``g`` (``n_in = N_IN + n_aug``, in this order)::

    v_x, v_y, r, delta, u_steer_rate, u_accel, fp[VX], fp[VY], fp[YAW_RATE], z[0], ..., z[n_aug-1]
    then, when ``products`` (header [7] = 1), per filter q:  z[q] a_y,  z[q] fp[YAW_RATE]
    with a_y = fp[VY] + v_x r [m/s^2] the model's lateral acceleration from the tyre forces

The products let the network express **load transfer** directly: the longitudinal acceleration
(``z``, the delivered one) shifts normal load between the axles and so scales the lateral tyre
forces, whose sum and moment are (a_y, fp[YAW_RATE]); a tanh MLP needs many units for a product.

**Input clipping (version 3).** Each raw feature is clipped to ``[in_lo, in_hi]`` (by default the
0.5-99.5 percentile range of the training data) *before* normalisation, in training and in every
evaluation (numpy, numba, torch alike): outside the data the network saw, the correction is held
at its value on the boundary of the training range instead of extrapolating a tanh MLP. Weights
without bounds (versions 1 and 2, ``in_lo = in_hi = None``) are evaluated unclipped.

``g`` = clip -> normalise -> (Linear -> tanh) x n_layers -> Linear -> de-normalise. The correction is a
derivative, so it is applied once per control step (it was trained at ``dt_train``; use the same
step where possible, other steps scale the correction with ``dt``).

Flat weight layout (``ResidualWeights.flat``, float64), for numba / CUDA kernels::

    [0] version (3 with clip bounds, else 1 if n_aug == 0 else 2)   [1] n_in (= 9 + n_aug (1 + 2 products))   [2] n_hidden
    [3] n_layers (hidden layers, >= 1)     [4] n_out (=3)           [5] dt_train [s]
    [6] n_aug (filter states, 0 in version 1 files)                 [7] products (0 | 1; 0 in version 1)
    [8 : 8+n_in]                 in_mean     feature means
    [.. : +n_in]                 in_std      feature standard deviations
    [.. : +n_out]                out_mean    correction means
    [.. : +n_out]                out_std     correction standard deviations
    [.. : +n_aug]                taus        filter time constants [s] (absent when n_aug = 0)
    [.. : +n_in]                 in_lo       raw feature lower clip bounds  } version 3 only
    [.. : +n_in]                 in_hi       raw feature upper clip bounds  } (absent in versions 1, 2)
    then per layer l = 0..n_layers (the last one is the output layer):
        W_l transposed, row-major [n_in_l, n_out_l] (W_l[j, i] at i n_out_l + j), then b_l [n_out_l]
    (n_in_0 = n_in, n_out_l = n_hidden for hidden layers, n_out for the last)

Calls from a numba kernel (``work`` is scratch of at least ``2 * n_hidden + n_in`` floats; ``z`` holds
``n_aug = int(w[6])`` floats owned by the caller, one set per rolled-out trajectory)::

    aug_init_nb(u[1], w, z)                        # no history: steady state
    residual_z_nb(x, u, fp, z, w, out3, work)      # correction at the step start
    aug_update_nb(z, u[1], w, dt)                  # after the step, with the same u
    residual_nb(x, u, fp, w, out3, work)           # only for n_aug == 0 weights (version 1)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from racing.models.fastmath import fmax, fmin, scalar_exact, tanh_bf, tanh_f32, tanh_fast

N_IN = 9  # base features (without the augmented filter states)
N_OUT = 3
HEADER = 8
BASE_FEATURE_NAMES = ("vx", "vy", "yaw_rate", "steer", "u_steer_rate", "u_accel", "fp_vx", "fp_vy", "fp_yaw_rate")
FEATURE_NAMES = BASE_FEATURE_NAMES
OUTPUT_NAMES = ("d_vx", "d_vy", "d_yaw_rate")
FORMAT = "racing-residual-v1"
FORMAT_V2 = "racing-residual-v2"
FORMAT_V3 = "racing-residual-v3"


def feature_names(n_aug: int = 0, products: bool = False) -> tuple:
    """Names of the ``N_IN + n_aug (1 + 2 products)`` features."""
    names = BASE_FEATURE_NAMES + tuple(f"a_filt{i}" for i in range(n_aug))
    if products:
        for i in range(n_aug):
            names += (f"a_filt{i}*a_y", f"a_filt{i}*fp_yaw_rate")
    return names


def n_features(n_aug: int, products: bool) -> int:
    return N_IN + n_aug * (3 if products else 1)


@dataclass
class ResidualWeights:
    """MLP residual weights as plain numpy arrays.

    weights : list of W_l float64[n_out_l, n_in_l]; biases : list of b_l float64[n_out_l]
    in_mean, in_std : float64[n_in]; out_mean, out_std : float64[N_OUT]
    dt : training step [s]; meta : free-form strings (base parameters, training figures)
    taus : float64[n_aug] time constants [s] of the augmented acceleration filters (empty: none)
    products : add the load-transfer product features (module docstring); needs n_aug > 0
    in_lo, in_hi : float64[n_in] raw feature clip bounds (None: no clipping, a version 1/2 file)
    """

    weights: list
    biases: list
    in_mean: np.ndarray
    in_std: np.ndarray
    out_mean: np.ndarray
    out_std: np.ndarray
    dt: float
    meta: dict = field(default_factory=dict)
    taus: np.ndarray = field(default_factory=lambda: np.zeros(0))
    products: bool = False
    in_lo: np.ndarray | None = None
    in_hi: np.ndarray | None = None

    def __post_init__(self):
        self.taus = np.atleast_1d(np.asarray(self.taus, dtype=float))
        self.products = bool(self.products) and self.taus.size > 0
        if np.any(self.taus <= 0):
            raise ValueError(f"filter time constants must be > 0 s, got {self.taus}")
        if (self.in_lo is None) != (self.in_hi is None):
            raise ValueError("give both clip bounds in_lo and in_hi, or neither")
        if self.in_lo is not None:
            self.in_lo = np.asarray(self.in_lo, dtype=float).ravel()
            self.in_hi = np.asarray(self.in_hi, dtype=float).ravel()
            if self.in_lo.size != self.n_in or self.in_hi.size != self.n_in:
                raise ValueError(f"clip bounds need {self.n_in} values each, got {self.in_lo.size} and {self.in_hi.size}")
            if np.any(np.isnan(self.in_lo)) or np.any(np.isnan(self.in_hi)) or np.any(self.in_lo > self.in_hi):
                raise ValueError("clip bounds must be ordered numbers (in_lo <= in_hi)")

    @property
    def clipped(self) -> bool:
        """True when the features are clipped to ``[in_lo, in_hi]`` (a version 3 layout)."""
        return self.in_lo is not None

    @property
    def version(self) -> int:
        return 3 if self.clipped else (1 if self.n_aug == 0 else 2)

    @property
    def n_aug(self) -> int:
        return int(self.taus.size)

    @property
    def n_in(self) -> int:
        return n_features(self.n_aug, self.products)

    @property
    def n_hidden(self) -> int:
        return int(self.weights[0].shape[0])

    @property
    def n_layers(self) -> int:
        return len(self.weights) - 1

    @property
    def flat(self) -> np.ndarray:
        """The flat float64 layout described in the module docstring."""
        head = np.zeros(HEADER)
        head[:] = (self.version, self.n_in, self.n_hidden, self.n_layers, N_OUT, self.dt, self.n_aug,
                   float(self.products))
        parts = [head, self.in_mean, self.in_std, self.out_mean, self.out_std, self.taus]
        if self.clipped:
            parts += [self.in_lo, self.in_hi]
        for W, b in zip(self.weights, self.biases):
            parts += [np.ravel(np.transpose(W)), np.ravel(b)]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float64)

    def work_size(self) -> int:
        """Scratch floats ``residual_z_nb`` needs: two hidden layers and the feature vector."""
        return 2 * self.n_hidden + self.n_in

    def features(self, x, u, fp, z=None) -> np.ndarray:
        """Raw features ``[..., n_in]`` from ``x[..., 7]``, ``u[..., 2]``, ``fp[..., 7]`` and ``z[..., n_aug]``."""
        x, u, fp = np.asarray(x, float), np.asarray(u, float), np.asarray(fp, float)
        parts = [x[..., 3:7], u[..., 0:2], fp[..., 3:6]]
        if self.n_aug:
            if z is None:
                raise ValueError(f"these residual weights carry {self.n_aug} filter state(s); pass z[..., {self.n_aug}]")
            zz = np.asarray(z, float)[..., :self.n_aug]
            parts.append(zz)
            if self.products:
                ay = fp[..., 4:5] + x[..., 3:4] * x[..., 5:6]
                parts.append(np.stack([zz * ay, zz * fp[..., 5:6]], axis=-1).reshape(*zz.shape[:-1], 2 * self.n_aug))
        return np.concatenate(parts, axis=-1)

    def __call__(self, x, u, fp, z=None) -> np.ndarray:
        """numpy evaluation: corrections ``[..., 3]`` [m/s^2, m/s^2, rad/s^2]."""
        f = self.features(x, u, fp, z)
        if self.clipped:
            f = np.clip(f, self.in_lo, self.in_hi)
        h = (f - self.in_mean) / self.in_std
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.tanh(h @ W.T + b)
        y = h @ self.weights[-1].T + self.biases[-1]
        return y * self.out_std + self.out_mean

    def aug_init(self, u) -> np.ndarray:
        """Steady-state filter states ``[..., n_aug]`` for inputs ``u[..., 2]`` (no command history)."""
        u = np.asarray(u, float)
        return np.repeat(u[..., 1:2], self.n_aug, axis=-1)

    def aug_update(self, z, u, dt: float) -> np.ndarray:
        """Filter states after one step of ``dt`` [s] with inputs ``u[..., 2]`` (numpy twin of :func:`aug_update_nb`)."""
        alpha = 1.0 - np.exp(-dt / self.taus)
        z = np.asarray(z, float)
        return z + alpha * (np.asarray(u, float)[..., 1:2] - z)

    def save(self, path) -> Path:
        """Write a ``.npz`` of plain arrays (``W0, b0, W1, ...``, normalisation, ``taus``, ``flat``, meta)."""
        path = Path(path)
        arrays = {f"W{i}": W for i, W in enumerate(self.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        meta = {**{k: str(v) for k, v in self.meta.items()},
                "format": {1: FORMAT, 2: FORMAT_V2, 3: FORMAT_V3}[self.version]}
        if self.clipped:
            arrays.update(in_lo=self.in_lo, in_hi=self.in_hi)
        np.savez(path, in_mean=self.in_mean, in_std=self.in_std, out_mean=self.out_mean, out_std=self.out_std,
                 dt=np.float64(self.dt), taus=self.taus, products=np.bool_(self.products), flat=self.flat,
                 feature_names=np.array(feature_names(self.n_aug, self.products)),
                 meta_keys=np.array(list(meta.keys())), meta_values=np.array(list(meta.values())), **arrays)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def load_residual(path) -> ResidualWeights:
    """Read residual weights written by :meth:`ResidualWeights.save` (``racing fit --residual``).

    Reads version 1 (no filter states), version 2 (``taus``) and version 3 (``in_lo``/``in_hi`` clip
    bounds) files. Raises ValueError naming
    the file when it is missing or not a residual weights file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: residual weights file not found")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # not an npz
        raise ValueError(f"{path}: not a residual weights .npz file: {exc}") from exc
    with z:
        keys = set(z.files)
        if not {"in_mean", "in_std", "out_mean", "out_std", "W0", "b0", "dt"} <= keys:
            raise ValueError(f"{path}: not a residual weights file (keys: {', '.join(sorted(keys))})")
        meta = dict(zip([str(k) for k in z["meta_keys"]], [str(v) for v in z["meta_values"]])) \
            if "meta_keys" in keys else {}
        if meta.get("format", FORMAT) not in (FORMAT, FORMAT_V2, FORMAT_V3):
            raise ValueError(f"{path}: format {meta.get('format')!r}; expected {FORMAT!r}, {FORMAT_V2!r} or "
                             f"{FORMAT_V3!r}")
        n = sum(1 for k in keys if k.startswith("W"))
        taus = np.array(z["taus"], dtype=float) if "taus" in keys else np.zeros(0)
        products = bool(z["products"]) if "products" in keys else False
        try:
            rw = ResidualWeights(weights=[np.array(z[f"W{i}"], dtype=float) for i in range(n)],
                                 biases=[np.array(z[f"b{i}"], dtype=float) for i in range(n)],
                                 in_mean=np.array(z["in_mean"], dtype=float),
                                 in_std=np.array(z["in_std"], dtype=float),
                                 out_mean=np.array(z["out_mean"], dtype=float),
                                 out_std=np.array(z["out_std"], dtype=float), dt=float(z["dt"]), meta=meta, taus=taus,
                                 products=products,
                                 in_lo=np.array(z["in_lo"], dtype=float) if "in_lo" in keys else None,
                                 in_hi=np.array(z["in_hi"], dtype=float) if "in_hi" in keys else None)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    if rw.weights[0].shape[1] != rw.n_in or rw.weights[-1].shape[0] != N_OUT or rw.in_mean.size != rw.n_in:
        raise ValueError(f"{path}: network maps {rw.weights[0].shape[1]} -> {rw.weights[-1].shape[0]}; "
                         f"expected {rw.n_in} -> {N_OUT} ({rw.n_aug} filter state(s))")
    return rw


@scalar_exact
def residual_z(x, u, fp, z, w, out, work):
    """MLP residual: ``out[3] = g(x[7], u[2], fp[7], z[n_aug])`` from the flat weights ``w`` (module docstring).

    ``z`` : the augmented filter states (``n_aug = int(w[6])`` values read; any array when 0);
    ``w[7] == 1`` adds the product features ``z[q] (fp[4] + x[3] x[5])``, ``z[q] fp[5]``;
    ``w[0] == 3`` clips every raw feature to ``[in_lo, in_hi]`` before normalising.
    ``work`` : float64 scratch of at least ``2 * n_hidden + n_in``. Allocation-free; inlined into numba's CPU and
    CUDA kernels (:func:`racing.models.fastmath.scalar_exact`); compiled on its own: :func:`residual_z_nb`.
    """
    n_in = int(w[1])
    nh = int(w[2])
    nl = int(w[3])
    n_out = int(w[4])
    n_aug = int(w[6])
    prod = w[7] > 0.5
    ay = fp[4] + x[3] * x[5]
    o_im = HEADER
    o_is = o_im + n_in
    o_om = o_is + n_in
    o_os = o_om + n_out
    clip = w[0] > 2.5
    o_lo = o_os + n_out + n_aug
    o_hi = o_lo + n_in
    off = o_lo + (2 * n_in if clip else 0)
    a = work[0:nh]
    b = work[nh:2 * nh]
    feat = work[2 * nh:2 * nh + n_in]
    # the normalised (and clipped) features, once
    for i in range(n_in):
        if i < 4:
            f = x[3 + i]
        elif i < 6:
            f = u[i - 4]
        elif i < 9:
            f = fp[i - 3]
        elif i < 9 + n_aug:
            f = z[i - 9]
        elif prod:
            q = (i - 9 - n_aug) // 2
            f = z[q] * (ay if (i - 9 - n_aug) % 2 == 0 else fp[5])
        else:
            f = 0.0
        if clip:
            f = fmin(fmax(f, w[o_lo + i]), w[o_hi + i])
        feat[i] = (f - w[o_im + i]) / w[o_is + i]
    # layer 0
    layer(w, off, feat, n_in, a, nh)
    for j in range(nh):
        a[j] = tanh_fast(a[j])
    off += nh * n_in + nh
    for _ in range(nl - 1):
        layer(w, off, a, nh, b, nh)
        for j in range(nh):
            a[j] = tanh_fast(b[j])
        off += nh * nh + nh
    layer(w, off, a, nh, out, n_out)
    for j in range(n_out):
        out[j] = out[j] * w[o_os + j] + w[o_om + j]


@scalar_exact
def layer(w, off, v, n, y, m):
    """``y[j] = sum_i W[j, i] v[i] + bias[j]`` for ``j < m``, ``i < n``, with ``W`` stored transposed at ``w[off:]``
    (``W[j, i]`` at ``off + i m + j``) and the bias after it: a sum of scaled columns, the inner loop over ``j``
    contiguous and free of a dependency chain, so that LLVM vectorises it without reassociating any sum (one
    chain per output took 2.5 us per rollout step for a 2 x 32 network)."""
    for j in range(m):
        y[j] = 0.0
    for i in range(n):
        vi = v[i]
        col = off + i * m
        for j in range(m):
            y[j] += w[col + j] * vi
    bias = off + n * m
    for j in range(m):
        y[j] += w[bias + j]


#: :func:`residual_z` compiled on its own, for callers in Python
residual_z_nb = njit(cache=True, fastmath=False)(residual_z)


@njit(cache=True, fastmath=False)
def residual_nb(x, u, fp, w, out, work):
    """Version-1 call ``out[3] = g(x[7], u[2], fp[7])`` for weights without filter states (``w[6] == 0``).

    For ``n_aug > 0`` weights use :func:`residual_z_nb` (this call would read ``u`` as the filter states).
    """
    residual_z_nb(x, u, fp, u, w, out, work)


@scalar_exact
def aug_offset(w):
    """Index of ``taus`` in the flat weights."""
    return HEADER + 2 * int(w[1]) + 2 * int(w[4])


@njit(cache=True, fastmath=False)
def aug_init_nb(a, w, z):
    """Steady-state filter states ``z[n_aug] = a`` (acceleration input [m/s^2]) when no history is known."""
    for i in range(int(w[6])):
        z[i] = a


@scalar_exact
def aug_update(z, a, w, dt):
    """Advance the filter states ``z[n_aug]`` by one step ``dt`` [s] with acceleration input ``a`` [m/s^2] (exact ZOH);
    inlined into the kernels (compiled on its own: :func:`aug_update_nb`)."""
    o = aug_offset(w)
    for i in range(int(w[6])):
        z[i] += (1.0 - math.exp(-dt / w[o + i])) * (a - z[i])


#: :func:`aug_update` compiled on its own, for callers in Python
aug_update_nb = njit(cache=True, fastmath=False)(aug_update)


#: the block's activation per precision of its arithmetic (make_block_residual; the arrays' dtype is the caller's)
BLOCK_ACTIVATIONS = {"float64": tanh_bf, "float32": tanh_f32}
PRECISIONS = tuple(BLOCK_ACTIVATIONS)


def _block_parts(L: int, act):
    """The pieces of :func:`make_block_residual` for ``L`` lanes and the activation ``act``: ``(rows, features,
    layer_block)``."""

    @scalar_exact
    def rows(R, r0, n):
        """Rows ``r0 .. r0 + n`` of the block as a 2-D view ``[n, lanes]`` (indices from ``range`` into a 2-D view are
        provably non-negative: a runtime offset added to the lane would leave numba's negative-index select in
        every address, and LLVM would not vectorise the loop)."""
        return R[r0:r0 + n * L].reshape((n, L))

    @scalar_exact
    def features(w, R, f0, L1):
        """Products, clip and normalisation of the features in rows ``f0 ..`` (in place)."""
        n_in, n_aug = int(w[1]), int(w[6])
        F = rows(R, f0, n_in)
        if w[7] > 0.5:
            for q in range(n_aug):
                for lane in range(L1):
                    F[9 + n_aug + 2 * q, lane] = F[9 + q, lane] * (F[7, lane] + F[0, lane] * F[2, lane])
                    F[10 + n_aug + 2 * q, lane] = F[9 + q, lane] * F[8, lane]
        o_im = HEADER
        o_is = o_im + n_in
        o_lo = o_is + n_in + 2 * int(w[4]) + n_aug
        for i in range(n_in):
            mean, std = w[o_im + i], w[o_is + i]
            if w[0] > 2.5:
                lo, hi = w[o_lo + i], w[o_lo + n_in + i]
                for lane in range(L1):
                    F[i, lane] = (fmin(fmax(F[i, lane], lo), hi) - mean) / std
            else:
                for lane in range(L1):
                    F[i, lane] = (F[i, lane] - mean) / std

    @scalar_exact
    def layer_block(w, off, R, v0, n, y0, m, squash, L1):
        """Rows ``y0 + j = sum_i W[j, i] rows(v0 + i) + bias[j]`` (j < m, i < n; ``W`` transposed at ``w[off:]`` as in
        :func:`layer`, each sum in the same order: four terms added in one pass are the same four IEEE additions),
        then tanh when ``squash``; the lane loops are vectorised."""
        V = rows(R, v0, n)
        Y = rows(R, y0, m)
        for j in range(m):
            for lane in range(L1):
                Y[j, lane] = 0.0
        i = 0
        while i + 4 <= n:  # four inputs per pass over a row: a quarter of the loads and stores of Y
            col = off + i * m
            for j in range(m):
                c0, c1, c2, c3 = w[col + j], w[col + m + j], w[col + 2 * m + j], w[col + 3 * m + j]
                for lane in range(L1):
                    Y[j, lane] = (((Y[j, lane] + c0 * V[i, lane]) + c1 * V[i + 1, lane]) + c2 * V[i + 2, lane]) \
                        + c3 * V[i + 3, lane]
            i += 4
        for i in range(i, n):
            col = off + i * m
            for j in range(m):
                c = w[col + j]
                for lane in range(L1):
                    Y[j, lane] += c * V[i, lane]
        for j in range(m):
            bj = w[off + n * m + j]
            if squash:
                for lane in range(L1):
                    Y[j, lane] = act(Y[j, lane] + bj)
            else:
                for lane in range(L1):
                    Y[j, lane] += bj

    return rows, features, layer_block


def make_block_residual(lanes: int, precision: str = "float64"):
    # (the block functions take the lane count ``n`` as an argument, equal to ``lanes``, which the caller makes
    # opaque to LLVM: with a constant count LLVM unrolls the small lane loops fully instead of vectorising them,
    # and the unrolled code cannot be vectorised, since a layer's input and output rows may alias for all it knows)
    """The residual for a block of ``lanes`` samples at once (the lockstep MPPI kernel,
    :mod:`racing.control.mppi.lockstep`): the network's layers as small matrix products whose inner loops run over
    the samples, so that LLVM vectorises them. Returns ``(residual_block, aug_update_block, block_rows)``.

    The block lives in one flat array ``R`` as rows of ``lanes`` values (sample l of row q at ``q lanes + l``).
    ``residual_block(w, R, f0, h0, o0)``: the caller puts the raw features into rows ``f0 + i``, i < 9 + n_aug (v_x,
    v_y, r, delta, u_steer_rate, u_accel, fp[VX], fp[VY], fp[YAW_RATE], then z); the product features, the clip and
    the normalisation are done here in place, the hidden layers use rows ``h0 .. h0 + 2 n_hidden``, and the
    correction lands in rows ``o0 .. o0 + 3`` [m/s^2, m/s^2, rad/s^2]. ``precision``:

    * ``"float64"`` (``R`` and the weights ``w`` float64): what :func:`residual_z` gives sample by sample, in the same
      order of operations, with :func:`tanh_bf` (a polynomial exp) where it uses libm's exp (the tests hold the two
      within 1e-12);
    * ``"float32"`` (``R`` and a float32 copy of ``w``): the same operations in float32 with
      :func:`~racing.models.fastmath.tanh_f32`, eight lanes to an AVX2 register where float64 has four, and a
      rational tanh where float64 needs an exp and a division: twice as fast here; the correction within 2e-6 of its
      scale ``out_std`` (3.5e-7 measured, tests/models/test_residual_block.py).

    ``aug_update_block(w, R, z0, a0, dt)``: :func:`aug_update` for the filter states in rows ``z0 + i`` with the
    accelerations in row ``a0`` (float64 rows and weights in both precisions). ``block_rows(w)``: rows the block
    needs past ``f0`` (features and hidden layers; 0 without a network)."""
    L = lanes
    rows, features, layer_block = _block_parts(L, BLOCK_ACTIVATIONS[precision])

    @scalar_exact
    def residual_block(w, R, f0, h0, o0, L1):
        n_in, nh, nl, n_out = int(w[1]), int(w[2]), int(w[3]), int(w[4])
        features(w, R, f0, L1)
        off = HEADER + 2 * n_in + 2 * n_out + int(w[6]) + (2 * n_in if w[0] > 2.5 else 0)
        layer_block(w, off, R, f0, n_in, h0, nh, True, L1)
        off += nh * n_in + nh
        a, b = h0, h0 + nh * L
        for _ in range(nl - 1):
            layer_block(w, off, R, a, nh, b, nh, True, L1)
            a, b = b, a
            off += nh * nh + nh
        layer_block(w, off, R, a, nh, o0, n_out, False, L1)
        o_om = HEADER + 2 * n_in
        out = rows(R, o0, n_out)
        for j in range(n_out):
            mean, std = w[o_om + j], w[o_om + n_out + j]
            for lane in range(L1):
                out[j, lane] = out[j, lane] * std + mean

    @scalar_exact
    def aug_update_block(w, R, z0, a0, dt, L1):
        o = aug_offset(w)
        Z = rows(R, z0, int(w[6]))
        A = rows(R, a0, 1)
        for i in range(int(w[6])):
            k = 1.0 - math.exp(-dt / w[o + i])
            for lane in range(L1):
                Z[i, lane] += k * (A[0, lane] - Z[i, lane])

    def block_rows(w) -> int:
        return int(w[1]) + 2 * int(w[2]) if w.size else 0

    return residual_block, aug_update_block, block_rows


def residual_batch(x, u, fp, rw: ResidualWeights, z=None) -> np.ndarray:
    """numba evaluation over a batch: ``[B, 3]`` from ``x[B, 7]``, ``u[B, 2]``, ``fp[B, 7]``, ``z[B, n_aug]`` (tests)."""
    x = np.ascontiguousarray(x, dtype=float)
    if rw.n_aug and z is None:
        raise ValueError(f"these residual weights carry {rw.n_aug} filter state(s); pass z[B, {rw.n_aug}]")
    zz = np.zeros((x.shape[0], 0)) if z is None else np.ascontiguousarray(z, dtype=float)
    return _residual_batch(x, np.ascontiguousarray(u, dtype=float), np.ascontiguousarray(fp, dtype=float), zz,
                           rw.flat)


@njit(cache=True)
def _residual_batch(x, u, fp, z, w):
    out = np.empty((x.shape[0], 3))
    work = np.empty(2 * int(w[2]) + int(w[1]))
    for b in range(x.shape[0]):
        residual_z_nb(x[b], u[b], fp[b], z[b], w, out[b], work)
    return out
