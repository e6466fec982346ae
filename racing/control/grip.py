"""The grip the car has, and its yaw inertia, estimated while it races: a bank of the controllers' own model at
grip scales ``g`` (the car file's ``D_f``, ``D_r`` and ``mu`` times ``g``) and yaw-inertia scales ``z`` (``I_z``
times ``z``) predicts the measured lateral velocity and yaw rate over short windows of the measured run, and the
pairs are ranked by their forgetting sum of squared errors.

**The prediction.** Every ``update_s`` a window of the last ``window_s`` of measurements is replayed by the model
(:func:`racing.models.discrete.dynamic_step`, vectorised over the bank): it starts from the measured state at the
window's start and is driven by what the car *did*, not by what it was told -- the steering rate between consecutive measurements
and the drive input that gives the measured change of v_x (the change less what the model's v_x does without
one) (so a servo, speed loop or drive interface the
model does not know does not enter the estimate); the steering angle and v_x are reset to the measured ones at
every sample, and v_y and r run free. What drives the replay and where it starts (v_x, whose differences are
the drive input; the start's v_y and r) is taken from a local quadratic fit of the measurements
(:func:`smooth_nb`), over a width that grows with the measured noise of v_x until the drive input's noise is
below :data:`DRIVE_NOISE` (at ``--noise 1`` the raw differences made 10 m/s^2 of noise on the gt_car's drive, and
the tyres' combined slip read it as more grip: 1.38 in a race on ridge_ring); the window lags the newest sample by the widest fit, so every
fit is centred. The error of a scale is the sum over the window's samples of
``(v_y - v_y,meas)^2 / s_vy^2 + (r - r_meas)^2 / s_r^2`` with ``s_r`` the model's floor (0.05 rad/s) and the
measured noise of r added in quadrature, ``s_vy`` the floor ``s_r * wheelbase`` (a yaw-rate error and the
lateral-velocity error it makes at an axle weigh the same) and the measured noise of v_y. A window whose
predictions for the grip scales :data:`INFO_PAIR` hardly differ in those units (:data:`INFO_MIN`: a straight, or
a wiggle the noise hides) carries no information and is skipped.

**The estimate.** ``C_j <- f C_j + e_j`` with the forgetting factor ``f = exp(-update_s / memory_s)``;
``scale`` is the minimiser of the grip's profile (each grip scale at its best inertia; refined by a parabola
through its neighbours). ``lower`` is the lower end of the
95 % band of a profile likelihood around the minimum, ``n (log C_j - log C_min) <= 3.84`` with ``n`` the
forgetting count of samples. The samples of a window are correlated, so the band is narrower than an honest one:
it is a margin, not a confidence interval, and is never reported as one. ``inertia`` is the car file's (1)
while 1 is inside the same band of the inertia's profile, else its minimiser (:data:`IZ_SCALES`): without the
inertia axis a controller model whose yaw inertia was 50 % too large was read as 3-14 % *more* grip, with a
narrow band (docs/results.md, 2026-12-06); the foreign-car bench's fits from command-only logs have I_z 60-130 %
too large (a slow steering servo traded for inertia) and left the track at the first braking zone. Until
``min_windows`` informative windows have been seen, ``informed`` is False and the controllers keep the car
file's grip and margin.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from racing.control import costs as C
from racing.control.window import SampleWindow
from racing.models import sops
from racing.models.discrete import dynamic_step, dynamic_step_c
from racing.models.fastmath import FM
from racing.models.params import P_GRIP, P_IZ, VehicleParams, usable_grip

#: the grip scales of the bank [-]
SCALES = np.round(np.arange(0.5, 1.5001, 0.025), 4)
#: the yaw-inertia scales of the bank [-] (a fit from a command-only log gets I_z 50-130 % too large where it
#: trades a slow steering servo for inertia: scales down to 0.4)
IZ_SCALES = np.array([0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.15, 1.3])
#: samples each side of the smoother's local fit of v_y and r (:func:`smooth_nb`; 7 samples, 0.14 s at 50 Hz)
SMOOTH_HALF = 3
#: the most samples each side of the local fit of v_x (its differences are the replay's drive input: the fit
#: widens with the measured noise of v_x until the drive input's noise is below :data:`DRIVE_NOISE`)
VX_HALF_MAX = 25
#: the drive input's noise the v_x fit is widened for [m/s^2]
DRIVE_NOISE = 0.25
#: what a window must tell apart to count: the sum over its samples of the squared difference between the
#: predictions of the grip scales :data:`INFO_PAIR` (at the car file's inertia), in units of the error scales
#: (which hold the measured noise of v_y and r). Until 2026-12-08 a window counted when the bank's predictions
#: ended apart by one error scale, which the bank's far ends (0.5, 1.5) do on any wiggle: at ``--noise 1`` the
#: gt_car's estimate climbed to 1.5 on Monza's 1 km straight, fed by the steering jitter the noise makes, and
#: iLQR, planning with 50 % more grip than the car had, spun under braking at 70 m/s (docs/results.md)
INFO_MIN = 1.0
#: the two grip scales whose predictions a window must tell apart (:data:`INFO_MIN`)
INFO_PAIR = (0.9, 1.1)
#: how fast the grip a controller plans with follows the estimate [1/s, grip scale]: an estimate first informed
#: in the middle of a braking zone, applied at once, moved the gt_car's speed cap and model there and spun it
#: at 60 m/s (Monza, ``--noise 1 --delay 0.02``, docs/results.md 2026-12-08)
RATE = 0.1
_CHI2_95 = 3.84


class GripEstimator:
    """Online grip-scale estimate of ``params`` (a :class:`VehicleParams`, the controllers' model) from measured
    states: call :meth:`observe` with every measurement; read ``scale``, ``lower``, ``informed``.

    window_s : replayed window [s]; update_s : time between replays [s]; memory_s : forgetting time [s];
    min_windows : informative windows before ``informed``; rate_hz : the measurement rate the buffers are made
    for (a faster one only shortens the window)."""

    def __init__(self, params: VehicleParams, window_s: float = 0.4, update_s: float = 0.1, memory_s: float = 20.0,
                 min_windows: int = 20, rate_hz: float = 50.0, iz_scales=IZ_SCALES):
        self.params = params
        base = params.to_array()
        self.p = base
        self.iz_scales = np.asarray(iz_scales, dtype=float)
        Z, G = self.iz_scales.size, SCALES.size
        if not np.any(self.iz_scales == 1.0):
            raise ValueError(f"GripEstimator iz_scales {self.iz_scales}: must hold 1 (the car file's inertia)")
        self.PT = np.repeat(base[None, :], Z * G, axis=0)  # p[Z * G, N_PARAMS]: one car per (inertia, grip)
        self.PT[:, P_GRIP] *= np.tile(SCALES, Z)[:, None]
        self.PT[:, P_IZ] *= np.repeat(self.iz_scales, G)
        self.e = np.zeros(Z * G)
        self.window_s, self.update_s = float(window_s), float(update_s)
        self.forget = math.exp(-self.update_s / float(memory_s))
        self.min_windows = int(min_windows)
        # the window, lagging the newest sample by the widest fit: every fit centred
        n = max(math.ceil(self.window_s * rate_hz) + 1, 3) + 2 * VX_HALF_MAX
        self.win = SampleWindow(n, 7)
        self._xs = np.zeros((n, 7))  # the window smoothed (smooth_nb)
        self._drive = np.zeros(n)  # the replay's drive inputs [m/s^2]
        self.s_r = 0.05
        self.s_vy = self.s_r * params.wheelbase
        one = int(np.flatnonzero(self.iz_scales == 1.0)[0])
        self.pair = np.array([one * G + int(np.argmin(np.abs(SCALES - g))) for g in INFO_PAIR])  # rows of PT
        self._tr = np.zeros((2, n, 2))  # their predictions (v_y, r) over a replay
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new race)."""
        self.C = np.zeros(self.PT.shape[0])
        self.n_eff = 0.0
        self.windows = 0
        self.win.reset()
        self.t_next = -np.inf
        self.scale, self.lower, self.inertia = 1.0, 1.0, 1.0
        self.inertia_band = (1.0, 1.0)
        self.noise = np.zeros(3)  # the measured noise of v_x, v_y [m/s] and r [rad/s] (third differences; running)
        self.vx_half = SMOOTH_HALF

    @property
    def P(self) -> np.ndarray:
        """The bank in the vectorised form's layout, ``p[N_PARAMS, G]`` (a view)."""
        return self.PT.T

    @property
    def vx_noise(self) -> float:
        """The measured noise of v_x [m/s] (the width of its fit follows it)."""
        return float(self.noise[0])

    @property
    def informed(self) -> bool:
        return self.windows >= self.min_windows

    def observe(self, t: float, x: np.ndarray) -> bool:
        """Store the measurement ``x[7]`` at ``t`` [s]; replay a window when one is due. True when the estimate
        was updated. Allocates nothing per sample (the window is copied into buffers made once; a replay, every
        ``update_s``, allocates its noise estimate's third differences)."""
        win = self.win
        win.push(t, x)
        if t < self.t_next or not win.full:
            return False
        self.t_next = t + self.update_s
        Tw, Xw = win.ordered()
        i1 = win.size - VX_HALF_MAX
        i0 = int(np.searchsorted(Tw, Tw[i1 - 1] - self.window_s - 1e-9))
        if i1 - i0 < 3:
            return False
        self._smooth(Tw, Xw)
        e, info, m = self._replay(Tw[i0:i1], Xw[i0:i1], self._xs[i0:i1])
        if not (info >= INFO_MIN and math.isfinite(float(e.sum()))):  # a straight, noise, or a time step <= 0
            return False
        self.C *= self.forget
        self.C += e
        self.n_eff = self.forget * self.n_eff + m
        self.windows += 1
        self._estimate()
        return True

    def _smooth(self, T: np.ndarray, X: np.ndarray) -> None:
        """``self._xs``: the buffer ``X`` with v_y and r fitted over :data:`SMOOTH_HALF` samples each side and v_x
        over as many as its measured noise needs (:data:`DRIVE_NOISE`): the local quadratic's slope over ``2 m + 1``
        samples ``h`` apart has the noise ``sigma sqrt(12 / (h^2 n (n^2 - 1)))``, ``n = 2 m + 1``."""
        n = T.size
        h = (T[-1] - T[0]) / (n - 1)
        sd = np.array([third_difference_std(X[:, c]) for c in (3, 4, 5)])
        self.noise = sd if self.windows == 0 else 0.9 * self.noise + 0.1 * sd
        m = SMOOTH_HALF
        while m < VX_HALF_MAX and self.noise[0] * math.sqrt(12.0 / (h * h * (2 * m + 1) * ((2 * m + 1) ** 2 - 1))) \
                > DRIVE_NOISE:
            m += 1
        self.vx_half = m
        self._xs[:] = X
        smooth_nb(T, X, self._xs, SMOOTH_HALF, 4, 6)
        smooth_nb(T, X, self._xs, m, 3, 4)

    def _replay(self, T: np.ndarray, X: np.ndarray, Xs: np.ndarray):
        """The bank's errors over one window ``T[n]``, ``X[n, 7]`` (smoothed: ``Xs[n, 7]``): ``(e[G], info,
        samples)``; ``info``: how far apart the predictions of :data:`INFO_PAIR` are
        (:data:`INFO_MIN`). The error scales hold the measured noise of v_y and r beside the model's own floor."""
        s_vy, s_r = math.hypot(self.s_vy, self.noise[1]), math.hypot(self.s_r, self.noise[2])
        info = replay_nb(T, X, Xs, self.PT, self.p, s_vy, s_r, self.e, self._drive, self.pair, self._tr)
        return self.e, info, float(T.size - 1)

    def _estimate(self) -> None:
        C2 = self.C.reshape(self.iz_scales.size, SCALES.size)
        self._estimate_inertia(C2.min(axis=1))
        C = C2.min(axis=0)  # the grip's profile: each grip at its best inertia
        j = int(np.argmin(C))
        s = float(SCALES[j])
        if 0 < j < C.size - 1:  # the parabola through the minimum and its neighbours
            d = C[j - 1] - 2.0 * C[j] + C[j + 1]
            if d > 0.0:
                s -= 0.5 * (SCALES[1] - SCALES[0]) * (C[j + 1] - C[j - 1]) / d
        log_min = math.log(max(float(C[j]), 1e-300))
        lo = j  # the band's lower end: down from the minimum while n (log C - log C_min) <= 3.84
        while lo > 0 and self.n_eff * (math.log(max(float(C[lo - 1]), 1e-300)) - log_min) <= _CHI2_95:
            lo -= 1
        self.scale = s
        self.lower = float(min(SCALES[lo], s))

    def _estimate_inertia(self, Cz: np.ndarray) -> None:
        """The inertia scale: the car file's (1) while it is inside the 95 % band of the inertia's profile
        ``Cz[Z]`` (each inertia at its best grip), else the profile's minimum. The band is as narrow as the grip's
        (correlated samples): a margin against moving on noise, not a confidence interval."""
        log = np.log(np.maximum(Cz, 1e-300))
        z = int(np.argmin(Cz))
        inside = np.flatnonzero(self.n_eff * (log - log[z]) <= _CHI2_95)
        self.inertia_band = (float(self.iz_scales[inside.min()]), float(self.iz_scales[inside.max()]))
        one = int(np.flatnonzero(self.iz_scales == 1.0)[0])
        self.inertia = 1.0 if one in inside else float(self.iz_scales[z])

    def summary(self) -> dict:
        """``{"grip_scale", "grip_lower", "informed", "windows", "at_bank_edge", "inertia_scale", "inertia_band"}``;
        ``at_bank_edge``: the best scale is the bank's smallest or largest (the grip is at most / at least that: a
        bound, not a value); ``inertia_band``: the inertia scales inside the profile's band (a margin, as
        ``grip_lower``)."""
        return {"grip_scale": round(float(self.scale), 4), "grip_lower": round(float(self.lower), 4),
                "informed": self.informed, "windows": self.windows,
                "at_bank_edge": bool(self.scale <= SCALES[0] or self.scale >= SCALES[-1]),
                "inertia_scale": self.inertia, "inertia_band": list(self.inertia_band)}


class OnlineGrip:
    """What a receding-horizon controller does with the estimate: its model parameters ``p[N_PARAMS]`` (the
    rollouts' array, written in place) get ``D_f``, ``D_r`` and ``mu`` times ``scale`` and ``I_z`` times the
    inertia scale where it is below 1 (a reading above 1 is what noise on the measured steering makes: the replay
    is driven by the measured steering rate, and a noisy input favours a sluggish model -- 1.3, the bank's edge, in
    every race of lab_loop under ``--noise 1 --delay 0.02``; on the default plant tyre relaxation reads as 1.15;
    so the model's inertia is lowered, never raised), and the speed cap of its
    track table ``tab`` (column ``TAB_VCAP``, in place) is re-made from the grip it was made with, the car file's
    ``1 - grip_margin``, for ``lower`` once the estimate is informed. Below the car file's grip the cap is scaled by
    ``sqrt(lower / (1 - grip_margin))`` (exact for a friction-limited point mass, whose speeds on a given path scale
    with the square root of the grip; lower everywhere, so it asks less of the brakes too). Above it the scaled cap
    is held to the friction-limited profile at the new grip, ``cap_at(lower)`` (a
    :class:`racing.control.costs.ProfileCap`: the braking and power limits kept, about 0.3 ms), and never below the
    cap it started from: where the car's brakes (``decel_max``) or its power, not its tyres, set the speeds, more
    grip does not move the braking points (a cap scaled everywhere by ``sqrt`` did: a fitted car with a 30 %
    margin, its grip estimated near the car file's, reached a hairpin 20 % over the speed it could brake to, the
    foreign-car bench's cells 12 and 20, docs/results.md 2026-12-07). Without ``cap_at`` the cap is not raised.
    The applied scale and grip follow the estimate at :data:`RATE` per second (the inertia at once), applied when
    they moved by ``step`` or more; ``on_params(p)`` is called
    when ``p`` and ``tab`` changed, for a solver that keeps a copy of them (iLQR's problem, MPPI's GPU buffers).
    ``max_scale``: the largest grip the speed cap is re-made for, as a multiple of the car file's usable grip (the
    model's ``D_f``, ``D_r``, ``mu`` still take the estimate: a grippier tyre also steers more sharply, and the model
    should know): 1 for a controller that tracks a line made for the car file's grip (iLQR)."""

    step = 0.005

    def __init__(self, params: VehicleParams, p: np.ndarray, tab: np.ndarray, on_params=None,
                 max_scale: float = math.inf, cap_at=None):
        self.params, self.p, self.tab, self.on_params, self.cap_at = params, p, tab, on_params, cap_at
        self.max_scale = float(max_scale)
        self.p0, self.vcap0 = p.copy(), tab[:, C.TAB_VCAP].copy()
        self.grip0 = usable_grip(params)
        self.estimator = GripEstimator(params)
        self.applied = (1.0, self.grip0, 1.0)
        self.rebuilds = 0
        self.t_applied = None

    def warm_up(self) -> None:
        """One replay of a dummy window (the compiled replay loads from numba's cache, or compiles, here and not in
        a race's first informative window); the estimate is untouched."""
        est = self.estimator
        T = np.linspace(0.0, est.window_s, 5)
        X = np.zeros((5, 7))
        X[:, 3] = 5.0
        G = est.PT.shape[0]
        Xs = X.copy()
        smooth_nb(T, X, Xs, 2, 3, 4)
        replay_nb(T, X, Xs, est.PT, est.p, est.s_vy, est.s_r, np.zeros(G), np.zeros(5), est.pair,
                  np.zeros((2, 5, 2)))

    def reset(self) -> None:
        self.estimator.reset()
        self._apply(1.0, self.grip0)
        self.rebuilds = 0
        self.t_applied = None  # when the applied values last moved [s] (None: not informed yet)

    def observe(self, t: float, x: np.ndarray) -> None:
        """Feed the measurement ``x[7]`` at ``t`` [s]; re-plan the model and the cap when the estimate moved."""
        est = self.estimator
        est.observe(t, x)
        if not est.informed:
            return
        if self.t_applied is None:  # informed now: the applied values start moving from here
            self.t_applied = t
        s0, g0, _ = self.applied
        room = RATE * (t - self.t_applied)  # they follow the estimate at RATE (a jump mid-braking: RATE)
        scale = s0 + min(max(est.scale - s0, -room), room)
        lower = g0 + min(max(min(est.lower, self.max_scale * self.grip0) - g0, -room * self.grip0), room * self.grip0)
        inertia = min(est.inertia, 1.0)  # never raised: see the class doc
        if abs(scale - s0) >= self.step or abs(lower - g0) >= self.step or inertia != self.applied[2]:
            self._apply(scale, lower, inertia)
            self.t_applied = t
            self.rebuilds += 1

    def _apply(self, scale: float, grip: float, inertia: float = 1.0) -> None:
        self.p[:] = self.p0
        self.p[P_GRIP] *= scale
        self.p[P_IZ] *= inertia
        col = self.tab[:, C.TAB_VCAP]
        ratio = grip / self.grip0
        np.multiply(self.vcap0, math.sqrt(min(ratio, 1.0) if self.cap_at is None else ratio), out=col)
        if ratio > 1.0 and self.cap_at is not None:
            np.minimum(col, np.maximum(self.vcap0, self.cap_at(grip)), out=col)
        np.minimum(col, self.params.v_max, out=col)
        if self.on_params is not None:
            self.on_params(self.p)
        self.applied = (scale, grip, inertia)

    def summary(self) -> dict:
        return {**self.estimator.summary(), "grip_rebuilds": self.rebuilds}


def replay_np(T: np.ndarray, X: np.ndarray, Xs: np.ndarray, P: np.ndarray, p: np.ndarray, s_vy: float, s_r: float,
              pair=(0, 1)):
    """The reference replay (numpy, vectorised over the bank ``P[N_PARAMS, G]``): ``(e[G], info)`` for the
    window ``T[n]`` [s], ``X[n, 7]`` (module doc), driven by and started from its smoothed copy ``Xs[n, 7]``
    (:func:`smooth_nb`) and compared with ``X``; ``p`` the scale-1 car (the drive input's reconstruction). ``(e[G], info)``: ``info`` the squared difference
    of the predictions of the bank's members ``pair`` over the same samples, in units of the error scales."""
    G = P.shape[1]
    x = np.repeat(Xs[:1], G, axis=0)  # x[G, 7]
    u = np.zeros((G, 2))
    e = np.zeros(G)
    info = 0.0
    u1 = np.zeros(2)
    for k in range(T.size - 1):
        h = T[k + 1] - T[k]
        u1[0], u1[1] = (Xs[k + 1, 6] - Xs[k, 6]) / h, 0.0
        coast = (dynamic_step(Xs[k], u1, p, h)[3] - Xs[k, 3]) / h  # v_x' without a drive input
        u[:, 0], u[:, 1] = u1[0], (Xs[k + 1, 3] - Xs[k, 3]) / h - coast
        x = dynamic_step(x, u, P, h)
        x[:, 3], x[:, 6] = Xs[k + 1, 3], Xs[k + 1, 6]
        e += ((x[:, 4] - X[k + 1, 4]) / s_vy) ** 2 + ((x[:, 5] - X[k + 1, 5]) / s_r) ** 2
        a, b = x[pair[0]], x[pair[1]]
        info += ((a[4] - b[4]) / s_vy) ** 2 + ((a[5] - b[5]) / s_r) ** 2
    return e, info


@njit(cache=True, fastmath=FM, error_model="numpy")
def smooth_nb(T, X, Xs, half, c0, c1):
    """Columns ``c0 <= col < c1`` of ``Xs[n, 7]``: those of ``X[n, 7]`` (sampled at ``T[n]`` [s]) replaced by a
    local quadratic least-squares fit through the ``2 half + 1`` samples around each (fewer in a short window;
    one-sided at its ends): a Savitzky-Golay smoother for uneven sampling. Measurement noise on what drives the
    replay (the speed, whose differences become its drive input, and the window's starting v_y and r) is no
    longer fed through the model's nonlinearity as if the car did it."""
    n = T.shape[0]
    w = min(2 * half + 1, n)
    if w < 3:
        return
    for i in range(n):
        lo = min(max(i - half, 0), n - w)
        span = T[lo + w - 1] - T[lo]
        if not span > 0.0:
            continue
        s1 = s2 = s3 = s4 = 0.0
        for j in range(lo, lo + w):
            tau = (T[j] - T[i]) / span
            s1 += tau
            s2 += tau * tau
            s3 += tau * tau * tau
            s4 += tau * tau * tau * tau
        s0 = float(w)
        det = s0 * (s2 * s4 - s3 * s3) - s1 * (s1 * s4 - s2 * s3) + s2 * (s1 * s3 - s2 * s2)
        if not abs(det) > 1e-12:
            continue
        a0, a1, a2 = (s2 * s4 - s3 * s3) / det, -(s1 * s4 - s2 * s3) / det, (s1 * s3 - s2 * s2) / det
        for col in range(c0, c1):
            y0 = y1 = y2 = 0.0
            for j in range(lo, lo + w):
                tau = (T[j] - T[i]) / span
                y0 += X[j, col]
                y1 += tau * X[j, col]
                y2 += tau * tau * X[j, col]
            Xs[i, col] = a0 * y0 + a1 * y1 + a2 * y2


def third_difference_std(y: np.ndarray) -> float:
    """The standard deviation of white noise on the series ``y[n]`` from its third differences (variance 20 x the
    noise's), robustly: their median square over 0.455 (the median of a chi-square with one degree of freedom),
    so that the motion's own jerk at a few samples (a braking point) does not count."""
    d3 = y[3:] - 3.0 * y[2:-1] + 3.0 * y[1:-2] - y[:-3]
    return math.sqrt(float(np.median(d3 * d3)) / (20.0 * 0.455)) if d3.size else 0.0


@njit(cache=True, fastmath=FM, error_model="numpy")
def drive_nb(T, Xs, p, drive):
    """``drive[n - 1]``: the drive inputs [m/s^2] that give the (smoothed) measured change of v_x of ``Xs[n, 7]``
    (at ``T[n]`` [s]) over each step, less what the model ``p`` does to v_x without one; False when the times do not
    increase."""
    for k in range(T.shape[0] - 1):
        h = T[k + 1] - T[k]
        if not h > 0.0:
            return False
        rate = (Xs[k + 1, 6] - Xs[k, 6]) / h
        nxt = dynamic_step_c(Xs[k, 0], Xs[k, 1], Xs[k, 2], Xs[k, 3], Xs[k, 4], Xs[k, 5], Xs[k, 6], math.cos(Xs[k, 2]),
                             math.sin(Xs[k, 2]), rate, 0.0, p, h, sops)
        drive[k] = (Xs[k + 1, 3] - Xs[k, 3]) / h - (nxt[3] - Xs[k, 3]) / h
    return True


@njit(cache=True, fastmath=FM, error_model="numpy")
def replay_nb(T, X, Xs, PT, p, s_vy, s_r, e, drive, pair, tr):
    """:func:`replay_np` compiled (the scalar form of the same step): ``e[G]`` written, ``drive[>= n-1]`` the drive
    inputs (the same for every scale: made once per window), ``tr[2, >= n, 2]`` the predictions of the members ``pair``; returns
    ``info`` (-1 when the times do not increase)."""
    G = PT.shape[0]
    n = T.shape[0]
    if not drive_nb(T, Xs, p, drive):
        return -1.0
    for j in range(G):
        pj = PT[j]
        slot = 0 if j == pair[0] else (1 if j == pair[1] else -1)
        x0, x1, x2, vx, vy, r, d = Xs[0, 0], Xs[0, 1], Xs[0, 2], Xs[0, 3], Xs[0, 4], Xs[0, 5], Xs[0, 6]
        acc = 0.0
        for k in range(n - 1):
            h = T[k + 1] - T[k]
            rate = (Xs[k + 1, 6] - Xs[k, 6]) / h
            c, s = math.cos(x2), math.sin(x2)
            x0, x1, x2, vx, vy, r, d, c, s = dynamic_step_c(x0, x1, x2, vx, vy, r, d, c, s, rate, drive[k], pj, h,
                                                            sops)
            vx, d = Xs[k + 1, 3], Xs[k + 1, 6]
            acc += ((vy - X[k + 1, 4]) / s_vy) ** 2 + ((r - X[k + 1, 5]) / s_r) ** 2
            if slot >= 0:
                tr[slot, k, 0], tr[slot, k, 1] = vy, r
        e[j] = acc
    info = 0.0
    for k in range(n - 1):
        info += ((tr[1, k, 0] - tr[0, k, 0]) / s_vy) ** 2 + ((tr[1, k, 1] - tr[0, k, 1]) / s_r) ** 2
    return info
