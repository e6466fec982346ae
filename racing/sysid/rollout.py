"""Open-loop prediction over log windows (numba), shared by the fit, the residual and the evaluation.

**Model inputs.** Logs hold *commands* (``cmd_steer`` [rad], ``cmd_speed`` [m/s], ``cmd_accel``
[m/s^2]); the models take (steering rate [rad/s], acceleration [m/s^2]). The prediction drives the
model through the car's actuator model, :func:`racing.models.actuators.actuator_inputs` (steering
servo with gain, offset, lag ``steer_tau`` and rate limit; speed loop ``a = cmd_accel +
speed_kp (cmd_speed - v_x)`` clipped to the car's limits), recomputed at every RK4 sub-step of
``h <= h_max`` (default 2.5 ms), commands held over each log step (zero-order hold). This is how
the car turns commands into motion, so steering gain/offset and the servo lag are fitted from the
same windows.

**Windows.** A window starts at log sample ``i`` from an estimate of the state at ``i`` and runs
``H`` steps with the logged commands; its predictions are compared with the raw logged states at
``i+1 .. i+H``. Windows never cross a log boundary or a time gap, and (``min_speed``) start only
where the car moves.

**Initial states** (:func:`prepare`, ``init``): ``"causal"`` (the default of the evaluation): v_x, v_y,
r and delta from a straight-line least-squares fit over the last 5 samples ``i-4 .. i`` evaluated at
``i`` (uses no future sample; unbiased on linear trends, noise variance x0.6); ``"raw"``: the logged
sample itself; ``"centred"`` (the default of the *fit*, which may look at the whole log): a centred
Savitzky-Golay smoothing (order 2, 7 samples), which uses 3 future samples and so flatters one-step
errors; never used for an evaluation unless asked for. Positions and yaw are always the raw samples.

**Inputs of pedal cars / cars without a steering command.** A log with pedal channels and no speed
command (``longitudinal: pedals``) drives the model through the pedal map of
:mod:`racing.sysid.pedals` (its output replaces ``cmd_accel``; the speed loop is off, ``speed_kp = 0``
in the prediction). A log without a steering command (``steer_command: none``) drives the model with
the measured steering angle held over each step (ideal servo: ``steer_tau = 0``, gain 1, offset 0
in the prediction; fitting a gain on the AV-21 log only traded it against B_f, correlation -1).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from racing.logs import DriveLog, LogError
from racing.models import numba_backend as nbm
from racing.models import sops
from racing.models.actuators import actuator_inputs as _actuators
from racing.models.dynamic import dynamic_rhs_s
from racing.models.kinematic import body_velocities
from racing.models.params import P_SPEED_KP, P_STEER_GAIN, P_STEER_OFFSET, P_STEER_TAU
from racing.models.residual import aug_offset, aug_update_nb, residual_z_nb
from racing.sysid.pedals import pedal_accel

VX, VY, R, STEER = 3, 4, 5, 6
CHANNELS = (VX, VY, R, STEER)
CHANNEL_NAMES = ("vx", "vy", "yaw_rate", "steer")
NOISE_FLOOR = np.array([0.01, 0.01, 0.01, 0.002])  # smallest per-channel noise scale [m/s, m/s, rad/s, rad]
EMPTY_W = np.zeros(0)


@dataclass
class Data:
    """Logs concatenated for window predictions.

    meas : float64[N, 7] logged (raw) states; init : float64[N, 7] initial-state estimates (window starts)
    cmd : float64[N, 3] commands; dt : float64[N] step to the next sample [s] (0 at a segment end)
    seg : int64[N] segment id; steer_ok : bool[N] the steer column is a measured angle
    rate_hz : nominal sample rate [Hz]; sources : list of log sources
    pedals : float64[N, 2] (throttle %, brake kPa) for pedal logs, else None
    steer_input : the steering input is the measured angle (logs without a steering command)
    min_speed : windows start only where the initial v_x >= min_speed [m/s]
    init_mode : how ``init`` was estimated (module doc)
    """

    meas: np.ndarray
    init: np.ndarray
    cmd: np.ndarray
    dt: np.ndarray
    seg: np.ndarray
    steer_ok: np.ndarray
    rate_hz: float
    sources: list
    t: np.ndarray
    pedals: np.ndarray | None = None
    steer_input: bool = False
    min_speed: float = 0.0
    init_mode: str = "centred"

    @property
    def longitudinal(self) -> str:
        return "pedals" if self.pedals is not None else "speed"

    def effective(self, p: np.ndarray, pedal_theta=None) -> tuple["Data", np.ndarray]:
        """(data, parameter array) the predictions use: for pedal logs the pedal map's acceleration
        (``pedal_theta`` in :data:`racing.sysid.pedals.NAMES` order) replaces ``cmd_accel`` and the speed loop is
        off; for logs whose steering input is the measured angle the servo is ideal. The returned data has plain
        commands (no pedals, no steering-input flag), so every consumer treats it like a speed-command log."""
        import dataclasses

        if self.pedals is None and not self.steer_input:
            return self, np.ascontiguousarray(p, dtype=np.float64)
        p2, cmd = self.model_params(p, pedal_theta)
        return dataclasses.replace(self, cmd=cmd, pedals=None, steer_input=False), p2

    def model_params(self, p: np.ndarray, pedal_theta=None) -> tuple[np.ndarray, np.ndarray]:
        """(parameter array, commands[N, 3]) of :meth:`effective`."""
        p = np.array(p, dtype=np.float64)
        cmd = self.cmd
        if self.pedals is not None:
            if pedal_theta is None:
                raise ValueError("pedal logs need the pedal map (pedal_theta)")
            cmd = cmd.copy()
            cmd[:, 1] = 0.0
            cmd[:, 2] = pedal_accel(self.pedals, self.dt, pedal_theta)
            p[P_SPEED_KP] = 0.0
        if self.steer_input:
            p[P_STEER_TAU], p[P_STEER_GAIN], p[P_STEER_OFFSET] = 0.0, 1.0, 0.0
        return p, cmd

    @property
    def n(self) -> int:
        return int(self.meas.shape[0])

    def starts(self, H: int, stride: int = 1) -> np.ndarray:
        """Window start indices whose ``H`` following samples lie in the same segment."""
        end = np.zeros(self.n, dtype=np.int64)
        # index of the last sample of each sample's segment
        bounds = np.flatnonzero(np.diff(self.seg) != 0)
        last = np.append(bounds, self.n - 1)
        seg_of = np.searchsorted(last, np.arange(self.n))
        end[:] = last[seg_of]
        ok = np.arange(self.n) + H <= end
        if self.min_speed > 0:
            ok &= self.init[:, VX] >= self.min_speed
        idx = np.flatnonzero(ok)
        return idx[::max(1, int(stride))]

    def subset(self, mask: np.ndarray) -> "Data":
        """Samples where ``mask`` (bool[N]) holds; contiguous runs become separate segments."""
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            raise LogError("empty data subset")
        brk = np.concatenate([[True], (np.diff(idx) != 1) | (np.diff(self.seg[idx]) != 0)])
        seg = np.cumsum(brk) - 1
        dt = self.dt[idx].copy()
        last = np.append(np.flatnonzero(np.diff(seg) != 0), idx.size - 1)
        dt[last] = 0.0
        return Data(self.meas[idx], self.init[idx], self.cmd[idx], dt, seg, self.steer_ok[idx], self.rate_hz,
                    self.sources, self.t[idx], None if self.pedals is None else self.pedals[idx], self.steer_input,
                    self.min_speed, self.init_mode)

    def split(self, fraction: float) -> tuple["Data", "Data"]:
        """(first ``fraction`` of the samples in time, the rest): a time-block split for validation."""
        k = int(round(fraction * self.n))
        mask = np.zeros(self.n, bool)
        mask[:k] = True
        return self.subset(mask), self.subset(~mask)


def delayed_steer(data: Data, delay: float) -> np.ndarray:
    """The commands float64[N, 3] with the steering command (column 0) as the servo sees it after a dead time of
    ``delay`` [s]: the logged command at ``t - delay``, linear between samples, within each segment (its first value
    before the segment's start)."""
    cmd = data.cmd.copy()
    if delay <= 0.0:
        return cmd
    for sg in np.unique(data.seg):
        i = np.flatnonzero(data.seg == sg)
        cmd[i, 0] = np.interp(data.t[i] - delay, data.t[i], data.cmd[i, 0])
    return cmd


@njit(cache=True)
def actuator_inputs(x, steer_idx, p, cmd_steer, cmd_speed, cmd_accel, h, u):
    """Model inputs ``u[2]`` = (steering rate [rad/s], acceleration [m/s^2]) held over a sub-step ``h`` [s]: the
    actuator model of :mod:`racing.models.actuators` with the servo lag discretised exactly over the sub-step
    (accurate with sub-steps of several milliseconds)."""
    u[0], u[1] = _actuators(x[steer_idx], x[3], cmd_steer, cmd_speed, cmd_accel, p, h, True, sops)


def smooth(state: np.ndarray, window: int = 7) -> np.ndarray:
    """Centred Savitzky-Golay smoothing (order 2) of v_x, v_y, r, steer (uses future samples: fit only)."""
    from scipy.signal import savgol_filter

    out = state.copy()
    n = state.shape[0]
    w = min(window, n if n % 2 == 1 else n - 1)
    if w >= 5:
        for c in CHANNELS:
            out[:, c] = savgol_filter(state[:, c], w, 2)
    return out


CAUSAL_WINDOW = 5


def causal_smooth(state: np.ndarray, window: int = CAUSAL_WINDOW) -> np.ndarray:
    """Causal estimate of v_x, v_y, r, steer: a straight line fitted to samples ``i-window+1 .. i`` evaluated at
    ``i`` (the first ``window - 1`` samples of a segment: the raw sample). Uses no future sample."""
    from scipy.signal import savgol_coeffs

    out = state.copy()
    n = state.shape[0]
    if n < window:
        return out
    c = savgol_coeffs(window, 1, pos=window - 1, use="dot")
    for ch in CHANNELS:
        x = state[:, ch]
        out[window - 1:, ch] = np.convolve(x, c[::-1], mode="valid")
    return out


INIT_MODES = ("causal", "raw", "centred")


def prepare(logs: list[DriveLog], smooth_window: int = 7, init: str = "centred", min_speed: float = 0.0) -> Data:
    """Concatenate validated logs; a time gap over 1.5 median steps starts a new segment.

    init : initial-state estimate of the windows, "causal" | "raw" | "centred" (module doc)
    min_speed : windows start only where the initial v_x >= min_speed [m/s]

    Raises
    ------
    LogError : no logs, NaN / time order (file lines named), a mix of pedal and speed-command logs
    """
    if not logs:
        raise LogError("no logs given")
    if init not in INIT_MODES:
        raise ValueError(f"init must be one of {', '.join(INIT_MODES)}, got {init!r}")
    kinds = {lg.meta.get("longitudinal", "speed") for lg in logs}
    if len(kinds) > 1:
        raise LogError(f"{', '.join(lg.source for lg in logs)}: a mix of pedal logs and speed-command logs; fit them "
                       f"separately")
    use_pedals = kinds == {"pedals"}
    for lg in logs:
        if use_pedals and lg.pedals is None:
            raise LogError(f"{lg.source}: 'longitudinal: pedals' but no throttle/brake channels")
    steer_in = {lg.meta.get("steer_command", "") == "none" for lg in logs}
    if len(steer_in) > 1:
        raise LogError("a mix of logs with and without a steering command; fit them separately")
    meas, init_, cmd, dt, seg, sok, ts, ped = [], [], [], [], [], [], [], []
    sid = 0
    steps = []
    for log in logs:
        log.validate()
        if log.t.size < 2:
            raise LogError(f"{log.source}: only {log.t.size} sample(s)")
        d = np.diff(log.t)
        med = float(np.median(d))
        steps.append(med)
        cuts = np.flatnonzero(d > 1.5 * med) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, log.t.size]):
            if b - a < 2:
                continue
            st = log.state[a:b]
            meas.append(st)
            init_.append(smooth(st, smooth_window) if init == "centred" else
                         causal_smooth(st) if init == "causal" else st.copy())
            if use_pedals:
                ped.append(log.pedals[a:b])
            cmd.append(log.command[a:b])
            dd = np.append(np.diff(log.t[a:b]), 0.0)
            dt.append(dd)
            seg.append(np.full(b - a, sid))
            sok.append(np.full(b - a, log.meta.get("steer_source", "measured") != "command"))
            ts.append(log.t[a:b])
            sid += 1
    if not meas:
        raise LogError("logs hold no usable samples")
    return Data(np.vstack(meas), np.vstack(init_), np.vstack(cmd), np.concatenate(dt),
                np.concatenate(seg).astype(np.int64), np.concatenate(sok), 1.0 / float(np.median(steps)),
                [lg.source for lg in logs], np.concatenate(ts), np.vstack(ped) if use_pedals else None,
                steer_in == {True}, float(min_speed), init)


def noise_scale(data: Data) -> np.ndarray:
    """Per-channel measurement-noise estimate [vx, vy, r, steer]: robust std of second differences / sqrt(6)."""
    out = np.empty(len(CHANNELS))
    for j, c in enumerate(CHANNELS):
        vals = []
        for s in np.unique(data.seg):
            x = data.meas[data.seg == s, c]
            if x.size > 3:
                vals.append(np.diff(x, 2))
        d2 = np.concatenate(vals) if vals else np.zeros(1)
        mad = 1.4826 * np.median(np.abs(d2 - np.median(d2)))
        out[j] = max(mad / math.sqrt(6.0), NOISE_FLOOR[j])
    return out


@njit(cache=True)
def _to_model(model, x7, p, xm):
    if model == nbm.MODEL_KINEMATIC:
        xm[0], xm[1], xm[2] = x7[0], x7[1], x7[2]
        xm[3] = math.hypot(x7[3], x7[4])
        xm[4] = x7[6]
    else:
        for i in range(7):
            xm[i] = x7[i]


@njit(cache=True)
def _to_dyn(model, xm, p, x7):
    if model == nbm.MODEL_KINEMATIC:
        x7[0], x7[1], x7[2] = xm[0], xm[1], xm[2]
        x7[3], x7[4], x7[5] = body_velocities(xm[3], xm[4], p, sops)
        x7[6] = xm[4]
    else:
        for i in range(7):
            x7[i] = xm[i]


@njit(cache=True)
def _step(model, p, xm, x7, c, dt, h_max, w, work, u, fp, corr, rwork, z):
    """Advance the model state ``xm`` by one log step ``dt`` with command ``c[3]`` (+ residual if len(w) > 0).

    ``z`` : the residual's filter states (advanced in place with the step-start acceleration input).
    """
    steer_idx = 4 if model == nbm.MODEL_KINEMATIC else 6
    nsub = max(1, int(math.ceil(dt / h_max - 1e-9)))
    h = dt / nsub
    use_res = w.shape[0] > 0
    a0 = 0.0
    if use_res:
        actuator_inputs(xm, steer_idx, p, c[0], c[1], c[2], h, u)
        dynamic_rhs_s(xm, u, p, fp)
        residual_z_nb(xm, u, fp, z, w, corr, rwork)
        a0 = u[1]
    for _ in range(nsub):
        actuator_inputs(xm, steer_idx, p, c[0], c[1], c[2], h, u)
        nbm.rk4_step_nb(model, xm, u, p, h, xm, work)
    if use_res:
        xm[3] += dt * corr[0]
        xm[4] += dt * corr[1]
        xm[5] += dt * corr[2]
        aug_update_nb(z, a0, w, dt)


@njit(cache=True, parallel=True)
def rollout_windows(model, p, X0, cmd, dt, starts, H, h_max, w, out, Z0):
    """Open-loop predictions ``out[W, H, 7]`` (dynamic layout) of windows starting at ``starts[W]``.

    X0 : float64[N, 7] initial states (indexed by start); cmd : float64[N, 3]; dt : float64[N] [s]
    w : flat residual weights (length 0: parametric model only, see racing.models.residual)
    Z0 : float64[N, n_aug] initial residual filter states (indexed by start; see :func:`aug_history`)
    """
    nh = int(w[2]) if w.shape[0] > 0 else 1
    n_aug = int(w[6]) if w.shape[0] > 0 else 0
    for j in prange(starts.shape[0]):
        i0 = starts[j]
        work = np.empty((5, 7))
        u = np.empty(2)
        fp = np.empty(7)
        corr = np.empty(3)
        rwork = np.empty(2 * nh + (int(w[1]) if w.shape[0] > 0 else 0))
        z = np.empty(max(n_aug, 1))
        for q in range(n_aug):
            z[q] = Z0[i0, q]
        xm = np.empty(7 if model == nbm.MODEL_DYNAMIC else 5)
        x7 = np.empty(7)
        _to_model(model, X0[i0], p, xm)
        for k in range(H):
            i = i0 + k
            _step(model, p, xm, x7, cmd[i], dt[i], h_max, w, work, u, fp, corr, rwork, z)
            _to_dyn(model, xm, p, out[j, k])


@njit(cache=True)
def _aug_history(p, X, cmd, dt, taus, out):
    n, m = out.shape
    u = np.empty(2)
    for i in range(n):
        actuator_inputs(X[i], 6, p, cmd[i, 0], cmd[i, 1], cmd[i, 2], 0.01, u)
        if i == 0 or dt[i - 1] <= 0.0:  # segment start: steady state
            for q in range(m):
                out[i, q] = u[1]
        if dt[i] > 0.0 and i + 1 < n:
            for q in range(m):
                out[i + 1, q] = out[i, q] + (1.0 - math.exp(-dt[i] / taus[q])) * (u[1] - out[i, q])


def aug_history(data: Data, p: np.ndarray, taus) -> np.ndarray:
    """Residual filter states ``[N, n_aug]`` [m/s^2] at every sample, from the log's command history.

    The acceleration input at sample i is the actuator model's (speed loop on the smoothed v_x,
    clipped), the filters start in steady state at every segment start and are advanced with the
    exact zero-order-hold update of :func:`racing.models.residual.aug_update_nb`. Causal: the value
    at ``i`` uses samples ``<= i - 1`` (and the state at ``i`` only at a segment start).
    """
    taus = np.ascontiguousarray(np.atleast_1d(taus), dtype=np.float64)
    out = np.zeros((data.n, taus.size))
    if taus.size:
        _aug_history(np.ascontiguousarray(p, dtype=np.float64), data.init, data.cmd, data.dt, taus, out)
    return out


def aug_history_of(data: Data, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`aug_history` for the time constants stored in the flat residual weights ``w``."""
    if w.size == 0 or int(w[6]) == 0:
        return np.zeros((data.n, 1))
    o = int(aug_offset(w))
    return aug_history(data, p, w[o:o + int(w[6])])


@njit(cache=True, parallel=True)
def step_with_jacobian(p, S, C, dt, h_max, eps, Z, J):
    """One parametric step of the reduced state ``S[B, 4]`` = (v_x, v_y, r, delta) with commands ``C[B, 3]``.

    Z[B, 9] = (S_next[4], u[2] model inputs at the step start, fp[3] = f_p(x, u)[VX, VY, R]);
    J[B, 9, 4] = dZ/dS by central differences of relative size ``eps``. The velocity dynamics do not
    depend on the position or yaw, which are held at zero here.
    """
    for b in prange(S.shape[0]):
        work = np.empty((5, 7))
        u = np.empty(2)
        fp = np.empty(7)
        xm = np.empty(7)
        zp = np.empty(9)
        zm = np.empty(9)
        _reduced(p, S[b], C[b], dt, h_max, 0, 0.0, xm, work, u, fp, Z[b])
        for k in range(4):
            d = eps * max(1.0, abs(S[b, k]))
            _reduced(p, S[b], C[b], dt, h_max, k, d, xm, work, u, fp, zp)
            _reduced(p, S[b], C[b], dt, h_max, k, -d, xm, work, u, fp, zm)
            for i in range(9):
                J[b, i, k] = (zp[i] - zm[i]) / (2.0 * d)


@njit(cache=True)
def _reduced(p, s, c, dt, h_max, k, d, xm, work, u, fp, z):
    for i in range(3):
        xm[i] = 0.0
    for i in range(4):
        xm[3 + i] = s[i]
    xm[3 + k] += d
    nsub = max(1, int(math.ceil(dt / h_max - 1e-9)))
    h = dt / nsub
    actuator_inputs(xm, 6, p, c[0], c[1], c[2], h, u)
    dynamic_rhs_s(xm, u, p, fp)
    z[4], z[5] = u[0], u[1]
    z[6], z[7], z[8] = fp[3], fp[4], fp[5]
    for _ in range(nsub):
        actuator_inputs(xm, 6, p, c[0], c[1], c[2], h, u)
        nbm.rk4_step_nb(nbm.MODEL_DYNAMIC, xm, u, p, h, xm, work)
    for i in range(4):
        z[i] = xm[3 + i]


def predict(data: Data, p: np.ndarray, H: int, starts: np.ndarray, model: str = "dynamic",
            residual_flat: np.ndarray | None = None, h_max: float = 0.0025,
            aug0: np.ndarray | None = None, pedal_theta=None) -> np.ndarray:
    """Predictions ``[W, H, 7]`` for windows ``starts`` (see :func:`rollout_windows`).

    pedal_theta : the pedal map of pedal logs (:meth:`Data.effective`)

    aug0 : float64[N, n_aug] initial residual filter states per sample; default: :func:`aug_history_of`
    (the filters run over the log's commands up to each window start).
    """
    data, p = data.effective(p, pedal_theta)
    out = np.empty((starts.size, H, 7))
    w = EMPTY_W if residual_flat is None else np.ascontiguousarray(residual_flat, dtype=np.float64)
    if w.size and model != "dynamic":
        raise ValueError("the residual model needs model='dynamic'")
    p = np.ascontiguousarray(p, dtype=np.float64)
    Z0 = aug_history_of(data, p, w) if aug0 is None else np.ascontiguousarray(aug0, dtype=np.float64)
    rollout_windows(nbm.model_id(model), p, data.init, data.cmd, data.dt,
                    np.ascontiguousarray(starts, dtype=np.int64), int(H), float(h_max), w, out, Z0)
    return out


def targets(data: Data, H: int, starts: np.ndarray) -> np.ndarray:
    """Logged states ``[W, H, 7]`` at ``starts + 1 .. starts + H``."""
    idx = starts[:, None] + np.arange(1, H + 1)[None, :]
    return data.meas[idx]


def starts_or_raise(data: Data, H: int, stride: int, horizon_s: float) -> np.ndarray:
    """:meth:`Data.starts`, raising :class:`LogError` when no log is longer than the horizon."""
    starts = data.starts(H, stride)
    if starts.size == 0 and data.min_speed > 0 and data.n and dataclasses.replace(data, min_speed=0.0).starts(H).size:
        top = float(np.max(data.init[:, VX]))
        raise LogError(f"{', '.join(data.sources)}: no fit window starts at v_x >= {data.min_speed:g} m/s "
                       f"(--min-speed, min_speed): the logs' fastest v_x is {top:.3g} m/s; expected a minimum speed "
                       f"below {top:.3g} m/s")
    if starts.size == 0:
        longest = 0.0
        for s in np.unique(data.seg):
            tt = data.t[data.seg == s]
            longest = max(longest, float(tt[-1] - tt[0]))
        raise LogError(f"{', '.join(data.sources)}: the longest log segment lasts {longest:.3f} s, shorter than "
                       f"the fit horizon of {horizon_s:.3f} s ({H} steps); record longer logs or shorten the horizon")
    return starts
