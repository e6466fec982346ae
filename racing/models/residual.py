r"""Semi-parametric model f = f_p + f_np: a small MLP residual on top of the dynamic bicycle.

After Georgiev et al. 2020 ("Iterative Semi-parametric Dynamics Model Learning For Autonomous
Racing"). The physics model ``f_p`` is :func:`racing.models.dynamic.dynamic_rhs`; the network
``g`` corrects the velocity derivatives. One control step of ``dt`` [s] from ``x_k`` with model
input ``u_k`` (steering rate [rad/s], acceleration [m/s^2])::

    fp      = f_p(x_k, u_k, p)                                 (continuous derivative, float[7])
    x_{k+1} = Phi_p(x_k, u_k, dt)                              (any integrator of f_p: RK4, sub-steps)
    x_{k+1}[VX, VY, YAW_RATE] += dt * g(x_k, u_k, fp)          [m/s^2, m/s^2, rad/s^2] * [s]

Features of ``g`` (``N_IN = 9``, in this order)::

    v_x, v_y, r, delta, u_steer_rate, u_accel, fp[VX], fp[VY], fp[YAW_RATE]

``g`` = normalise -> (Linear -> tanh) x n_layers -> Linear -> de-normalise. The correction is a
derivative, so it is applied once per control step (it was trained at ``dt_train``; use the same
step where possible, other steps scale the correction with ``dt``).

Flat weight layout (``ResidualWeights.flat``, float64), for numba / CUDA kernels::

    [0] version (=1)   [1] n_in (=9)   [2] n_hidden   [3] n_layers (hidden layers, >= 1)
    [4] n_out (=3)     [5] dt_train [s]   [6], [7] reserved (0)
    [8 : 8+n_in]                 in_mean     feature means
    [.. : +n_in]                 in_std      feature standard deviations
    [.. : +n_out]                out_mean    correction means
    [.. : +n_out]                out_std     correction standard deviations
    then per layer l = 0..n_layers (the last one is the output layer):
        W_l row-major [n_out_l, n_in_l], then b_l [n_out_l]
    (n_in_0 = n_in, n_out_l = n_hidden for hidden layers, n_out for the last)

Call from a numba kernel (``work`` is scratch of at least ``2 * n_hidden`` floats)::

    residual_nb(x, u, fp, w_flat, out3, work)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

N_IN = 9
N_OUT = 3
HEADER = 8
FEATURE_NAMES = ("vx", "vy", "yaw_rate", "steer", "u_steer_rate", "u_accel", "fp_vx", "fp_vy", "fp_yaw_rate")
OUTPUT_NAMES = ("d_vx", "d_vy", "d_yaw_rate")
FORMAT = "racing-residual-v1"


@dataclass
class ResidualWeights:
    """MLP residual weights as plain numpy arrays.

    weights : list of W_l float64[n_out_l, n_in_l]; biases : list of b_l float64[n_out_l]
    in_mean, in_std : float64[N_IN]; out_mean, out_std : float64[N_OUT]
    dt : training step [s]; meta : free-form strings (base parameters, training figures)
    """

    weights: list
    biases: list
    in_mean: np.ndarray
    in_std: np.ndarray
    out_mean: np.ndarray
    out_std: np.ndarray
    dt: float
    meta: dict = field(default_factory=dict)

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
        head[:6] = (1, N_IN, self.n_hidden, self.n_layers, N_OUT, self.dt)
        parts = [head, self.in_mean, self.in_std, self.out_mean, self.out_std]
        for W, b in zip(self.weights, self.biases):
            parts += [np.ravel(W), np.ravel(b)]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float64)

    def work_size(self) -> int:
        return 2 * self.n_hidden

    def features(self, x, u, fp) -> np.ndarray:
        """Raw features ``[..., N_IN]`` from states ``x[..., 7]``, inputs ``u[..., 2]``, derivatives ``fp[..., 7]``."""
        x, u, fp = np.asarray(x, float), np.asarray(u, float), np.asarray(fp, float)
        return np.concatenate([x[..., 3:7], u[..., 0:2], fp[..., 3:6]], axis=-1)

    def __call__(self, x, u, fp) -> np.ndarray:
        """numpy evaluation: corrections ``[..., 3]`` [m/s^2, m/s^2, rad/s^2]."""
        h = (self.features(x, u, fp) - self.in_mean) / self.in_std
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.tanh(h @ W.T + b)
        y = h @ self.weights[-1].T + self.biases[-1]
        return y * self.out_std + self.out_mean

    def save(self, path) -> Path:
        """Write a ``.npz`` of plain arrays (``W0, b0, W1, ...``, normalisation, ``flat``, meta)."""
        path = Path(path)
        arrays = {f"W{i}": W for i, W in enumerate(self.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        meta = {"format": FORMAT, **{k: str(v) for k, v in self.meta.items()}}
        np.savez(path, in_mean=self.in_mean, in_std=self.in_std, out_mean=self.out_mean, out_std=self.out_std,
                 dt=np.float64(self.dt), flat=self.flat, feature_names=np.array(FEATURE_NAMES),
                 meta_keys=np.array(list(meta.keys())), meta_values=np.array(list(meta.values())), **arrays)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def load_residual(path) -> ResidualWeights:
    """Read residual weights written by :meth:`ResidualWeights.save` (``racing fit --residual``).

    Raises ValueError naming the file when it is missing or not a residual weights file.
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
        if meta.get("format", FORMAT) != FORMAT:
            raise ValueError(f"{path}: format {meta.get('format')!r}; expected {FORMAT!r}")
        n = sum(1 for k in keys if k.startswith("W"))
        rw = ResidualWeights(weights=[np.array(z[f"W{i}"], dtype=float) for i in range(n)],
                             biases=[np.array(z[f"b{i}"], dtype=float) for i in range(n)],
                             in_mean=np.array(z["in_mean"], dtype=float), in_std=np.array(z["in_std"], dtype=float),
                             out_mean=np.array(z["out_mean"], dtype=float),
                             out_std=np.array(z["out_std"], dtype=float), dt=float(z["dt"]), meta=meta)
    if rw.weights[0].shape[1] != N_IN or rw.weights[-1].shape[0] != N_OUT:
        raise ValueError(f"{path}: network maps {rw.weights[0].shape[1]} -> {rw.weights[-1].shape[0]}; "
                         f"expected {N_IN} -> {N_OUT}")
    return rw


@njit(cache=True, fastmath=False)
def residual_nb(x, u, fp, w, out, work):
    """MLP residual: ``out[3] = g(x[7], u[2], fp[7])`` from the flat weights ``w`` (module docstring).

    ``work`` : float64 scratch of at least ``2 * n_hidden``. Allocation-free; callable from numba kernels.
    """
    n_in = int(w[1])
    nh = int(w[2])
    nl = int(w[3])
    n_out = int(w[4])
    o_im = HEADER
    o_is = o_im + n_in
    o_om = o_is + n_in
    o_os = o_om + n_out
    off = o_os + n_out
    a = work[0:nh]
    b = work[nh:2 * nh]
    # layer 0 from the normalised features (read directly, no feature buffer)
    for j in range(nh):
        s = w[off + nh * n_in + j]
        for i in range(n_in):
            if i < 4:
                f = x[3 + i]
            elif i < 6:
                f = u[i - 4]
            else:
                f = fp[i - 3]
            s += w[off + j * n_in + i] * (f - w[o_im + i]) / w[o_is + i]
        a[j] = math.tanh(s)
    off += nh * n_in + nh
    for _ in range(nl - 1):
        for j in range(nh):
            s = w[off + nh * nh + j]
            for i in range(nh):
                s += w[off + j * nh + i] * a[i]
            b[j] = math.tanh(s)
        for j in range(nh):
            a[j] = b[j]
        off += nh * nh + nh
    for j in range(n_out):
        s = w[off + n_out * nh + j]
        for i in range(nh):
            s += w[off + j * nh + i] * a[i]
        out[j] = s * w[o_os + j] + w[o_om + j]


EMPTY = np.zeros(0)


def residual_batch(x, u, fp, rw: ResidualWeights) -> np.ndarray:
    """numba evaluation over a batch: ``[B, 3]`` from ``x[B, 7]``, ``u[B, 2]``, ``fp[B, 7]`` (for tests)."""
    return _residual_batch(np.ascontiguousarray(x, dtype=float), np.ascontiguousarray(u, dtype=float),
                           np.ascontiguousarray(fp, dtype=float), rw.flat)


@njit(cache=True)
def _residual_batch(x, u, fp, w):
    out = np.empty((x.shape[0], 3))
    work = np.empty(2 * int(w[2]))
    for b in range(x.shape[0]):
        residual_nb(x[b], u[b], fp[b], w, out[b], work)
    return out
