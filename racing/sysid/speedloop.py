r"""The car's speed loop identified from a log: a P or a PI loop, chosen by held-out prediction error.

The vehicle fit (:mod:`racing.sysid.parametric`) predicts a log through the project's P loop,
``a = a_ff + speed_kp (v_cmd - v_x)``. Most drive-by-wire speed controllers integrate their error too (a PI loop),
and a fit through a P loop gives a ``speed_kp`` that absorbs some of the integral (on the foreign-car bench 1.02
for a loop of 0.75 1/s and 0.36 1/s^2). A controller that believes the P loop leads its set-point on a
power-limited straight by what a P loop needs, the car's integral winds up, and at the end of the straight it holds
back the braking: -0.9 m/s^2 of a planned -7 in the first 0.2 s, and the car left the track at the first hairpin.

This stage takes the fitted car's longitudinal model as known and identifies the loop alone, from the measured
speed: for every hypothesis ``(kp, ki)`` of a grid around the fitted ``speed_kp`` (:func:`hypotheses`),

* the loop's integral along the whole log, from the measured speeds (zero at each segment's start), held where
  that hypothesis' output sits at the car file's limits (:func:`racing.models.actuators.speed_integral_rate`);
* windows of :data:`WINDOW_S` every :data:`STRIDE_S`, each replayed from its measured start speed (an output
  error: white noise on the measured speed does not bias it): ``v' = v_x'`` of the model
  (:func:`racing.models.dynamic.body_derivatives`: drag, power, grip, the front tyre's cornering drag, at the
  measured v_y, r and steering) under ``a = f a_cmd + kp (v_cmd - v) + ki I`` clipped to the car's limits, the
  integral advancing with the replayed speed; ``f`` = 1 where the fitted car applies the feed-forward
  (``drive_interface: speed_accel``), else 0. The error is the sum of squared speed errors [m^2/s^2].

**The choice** (two folds: the windows of the first and of the second half of the log): each structure's best
hypothesis on one half predicts the other; PI is chosen when its held-out error is below P's by more than
:data:`PI_GAIN`, and its best hypothesis on the whole log gives ``speed_kp`` and ``speed_ki``. Otherwise the loop
is a P loop and the vehicle fit's ``speed_kp`` is kept (the car is what the fit made it). Pedal logs (no speed
loop in the car) and logs whose speed command the fit found not excited have no speed loop to identify.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from racing.models import sops
from racing.models.actuators import speed_integral_rate
from racing.models.dynamic import body_derivatives
from racing.models.params import P_ACCEL_MAX, P_DECEL_MAX, VehicleParams

#: replayed window [s] and the stride between window starts [s]
WINDOW_S, STRIDE_S = 1.5, 0.5
#: PI is chosen when its held-out error is below P's by more than this share
PI_GAIN = 0.1
#: the grid: speed_kp x the fitted one; the integral's rate ki / kp [1/s] (0: the P loop)
KP_SCALES = np.geomspace(0.4, 2.5, 21)
KI_RATIOS = np.concatenate([[0.0], np.geomspace(0.04, 2.0, 12)])
#: sub-steps of the replay per log sample
SUBSTEPS = 4
#: windows start at no less than this measured speed [m/s]
V_MIN = 2.0


def hypotheses(speed_kp: float) -> np.ndarray:
    """The grid ``H[J, 2]``: (kp [1/s], ki [1/s^2]) for every scale of :data:`KP_SCALES` and ratio of
    :data:`KI_RATIOS`; the P loops (ki = 0) first."""
    kp, ratio = np.meshgrid(speed_kp * KP_SCALES, KI_RATIOS, indexing="ij")
    h = np.stack([kp.ravel(), (kp * ratio).ravel()], axis=1)
    return np.ascontiguousarray(h[np.argsort(h[:, 1] > 0, kind="stable")])


@njit(cache=True)
def _loop(kp, ki, integ, err, a_ff, p):
    """The loop's clipped output [m/s^2]."""
    a = a_ff + kp * err + ki * integ
    return min(max(a, -p[P_DECEL_MAX]), p[P_ACCEL_MAX])


@njit(cache=True)
def speed_replay_nb(t, meas, cmd, seg, starts, n, H, p, ff, e):
    """Each hypothesis ``H[j]``'s squared speed error over each window (``n`` samples from ``starts[w]``) into
    ``e[J, W]`` (module doc). ``t[N]`` [s], ``meas[N, 7]`` measured states, ``cmd[N, 3]`` commands, ``seg[N]``
    segment ids; ``ff``: 1.0 where the car applies the command's acceleration, else 0.0."""
    N = t.size
    integ = np.zeros(N)
    for j in range(H.shape[0]):
        kp, ki = H[j, 0], H[j, 1]
        for i in range(N - 1):  # the integral along the log, from the measured speeds
            if seg[i + 1] != seg[i]:
                integ[i + 1] = 0.0
                continue
            err = cmd[i, 1] - meas[i, 3]
            a = _loop(kp, ki, integ[i], err, ff * cmd[i, 2], p)
            integ[i + 1] = integ[i] + (t[i + 1] - t[i]) * speed_integral_rate(a, err, p)
        for w in range(starts.size):
            i0 = starts[w]
            v, z, sse = meas[i0, 3], integ[i0], 0.0
            for i in range(i0, i0 + n):
                hs = (t[i + 1] - t[i]) / SUBSTEPS
                for _ in range(SUBSTEPS):
                    err = cmd[i, 1] - v
                    a = _loop(kp, ki, z, err, ff * cmd[i, 2], p)
                    z += hs * speed_integral_rate(a, err, p)
                    v += hs * body_derivatives(v, meas[i, 4], meas[i, 5], meas[i, 6], 0.0, a, p, sops)[0]
                sse += (v - meas[i + 1, 3]) ** 2
            e[j, w] = sse
    return e


def window_starts(t: np.ndarray, meas: np.ndarray, seg: np.ndarray, n: int, stride: int) -> np.ndarray:
    """Start indices of windows of ``n`` steps, ``stride`` samples apart, inside one segment, at a measured speed of
    at least :data:`V_MIN`."""
    starts = []
    i, N = 0, t.size
    while i + n < N:
        if seg[i + n] == seg[i] and meas[i, 3] >= V_MIN:
            starts.append(i)
        i += stride
    return np.asarray(starts, dtype=np.int64)


def identify_speed_loop(data, params: VehicleParams) -> dict:
    """The speed loop of the car that drove ``data`` (:class:`racing.sysid.rollout.Data`, speed-command logs), the
    rest of the car being ``params`` (the fitted car). Returns ``{"chosen": "P" | "PI", "why", "speed_kp",
    "speed_ki", "held_out_sse": {"P", "PI"} [m^2/s^2], "rmse_mps": {"P", "PI"} (per sample, held out),
    "windows"}``: the PI loop's gains [1/s, 1/s^2]; for a P choice ``speed_kp`` None (the vehicle fit's is kept)
    and ``speed_ki`` 0, or both None where too few windows tell the two apart (``why`` says so)."""
    rate = float(data.rate_hz)
    n, stride = int(round(WINDOW_S * rate)), max(1, int(round(STRIDE_S * rate)))
    t = np.ascontiguousarray(data.t, dtype=float)
    meas = np.ascontiguousarray(data.meas, dtype=float)
    cmd = np.ascontiguousarray(data.cmd, dtype=float)
    seg = np.ascontiguousarray(data.seg, dtype=np.int64)
    starts = window_starts(t, meas, seg, n, stride)
    if starts.size < 8:
        return {"chosen": "P", "why": f"{starts.size} windows of {WINDOW_S:g} s above {V_MIN:g} m/s: too few to tell "
                                      f"a PI loop from a P loop", "speed_kp": None, "speed_ki": None,
                "windows": int(starts.size)}
    H = hypotheses(params.speed_kp)
    ff = 1.0 if params.drive_interface == "speed_accel" else 0.0
    e = speed_replay_nb(t, meas, cmd, seg, starts, n, H, params.to_array(), ff, np.zeros((H.shape[0], starts.size)))
    half = starts < starts[starts.size // 2]
    pi = H[:, 1] > 0.0
    held = {}
    for name, rows in (("P", ~pi), ("PI", pi)):
        sub = e[rows]
        a, b = sub[:, half].sum(axis=1), sub[:, ~half].sum(axis=1)
        held[name] = float(b[np.argmin(a)] + a[np.argmin(b)])
    best = np.where(pi)[0][np.argmin(e[pi].sum(axis=1))]
    n_err = starts.size * n
    rmse = {k: float(np.sqrt(v / n_err)) for k, v in held.items()}
    out = {"held_out_sse": held, "rmse_mps": rmse, "windows": int(starts.size)}
    if held["PI"] < (1.0 - PI_GAIN) * held["P"]:
        return {"chosen": "PI", "why": f"the PI loop predicts the held-out half {rmse['PI']:.3g} m/s RMS against the P "
                                       f"loop's {rmse['P']:.3g}", "speed_kp": float(H[best, 0]),
                "speed_ki": float(H[best, 1]), **out}
    return {"chosen": "P", "why": f"a PI loop predicts the held-out half no better than {PI_GAIN:.0%} below the P "
                                  f"loop ({rmse['PI']:.3g} against {rmse['P']:.3g} m/s RMS)", "speed_kp": None,
            "speed_ki": 0.0, **out}


__all__ = ["identify_speed_loop", "hypotheses", "speed_replay_nb", "window_starts"]
