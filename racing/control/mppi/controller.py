"""The stateful MPPI controller: warm start (shift), buffers, timing; the math is in :mod:`.step`."""
from __future__ import annotations

import math
import time

import numpy as np

from racing.control import costs as C
from racing.control.base import Controller, merged_summaries, present
from racing.control.grip import OnlineGrip
from racing.control.horizon import cost_params_for
from racing.control.latency import DeadTime, record_sent, start_state, steering_lead
from racing.control.mppi import lockstep as L
from racing.control.mppi import step as S
from racing.control.mppi.config import MPPIConfig, as_dict, resolve
from racing.control.mppi.device import resolve_device
from racing.control.observer import StateObserver
from racing.control.plan import command_from_plan, resample_index, resample_inputs, shift_inputs
from racing.control.speedloop import speed_observer
from racing.control.steering import OnlineSteer
from racing.interfaces import Command, Observation, drive_interface
from racing.models.params import VehicleParams, usable_grip
from racing.models.residual import aug_init_nb, aug_update_nb, load_residual

_MODELS = {"kinematic": S.KINEMATIC, "dynamic": S.DYNAMIC}
#: an anytime iteration rolls its samples out in this many blocks and stops between two when the next would not fit
ANYTIME_BLOCKS = 16


def set_threads(n: int | None) -> int:
    """Set numba's thread count to ``n`` (at most what numba was started with; ``None``: leave the process's
    setting, e.g. ``racing race --threads``); returns the count in effect."""
    import numba

    if n is None:
        return numba.get_num_threads()
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads = {n!r}; expected an integer in 1..{numba.config.NUMBA_NUM_THREADS} (the cores "
                         f"numba was started with)")
    n = int(n)
    numba.set_num_threads(n)
    return n


def _precision(config: MPPIConfig, key: str, lockstep: bool, device, applies: bool = True,
               conflict: str | None = None) -> str:
    """The arithmetic the setting ``key`` asks for (``residual_precision``: the network; ``physics_precision``: the
    model): float32 exists in the CPU lockstep kernel only, and not where ``conflict`` says why (a ValueError naming
    the field, rather than float64 run silently); float64 where the setting does not ``apply`` (no network)."""
    value = getattr(config, key)
    if value == "float64" or not applies:
        return "float64"
    if device.kind == "cuda":
        raise ValueError(f"MPPI: {key}: float32 is the CPU lockstep kernel's; the CUDA kernel runs float64 (set "
                         f"{key}: float64)")
    if not lockstep:
        raise ValueError(f"MPPI: {key}: float32 needs kernel: lockstep (this configuration has kernel: "
                         f"{config.kernel}, whose rollouts run float64)")
    if conflict is not None:
        raise ValueError(f"MPPI: {key}: float32 {conflict}")
    return value


class MPPI(Controller):
    """Sampling MPC (Williams et al. 2017) on a numba kernel.

    ``solve(x0[7], t)`` runs one iteration and returns the planned states ``X[T+1, 7]``;
    ``act`` turns the plan into a :class:`Command`: steering = planned angle ``steer_lead`` ahead
    (servo lag + half a period), speed = planned speed half a period ahead (so that the plant's
    speed loop ``a = a_ff + k (v_cmd - v_x)`` adds no bias on average), acceleration = planned input.

    Parameters
    ----------
    track : Track (racing cost), or None with a custom ``cost``
    params : the controller's own car model parameters
    config : MPPIConfig
    cost : optional ``(RolloutCost, args)``: a cost other than the racing cost (e.g. the benchmark's circle in
        :mod:`racing.bench`), with its argument tuple for the kernel
    residual : :class:`racing.models.residual.ResidualWeights` (or a path to its ``.npz``): the
        semi-parametric model, physics + MLP correction, in every rollout (``model: dynamic`` only).
        The controller keeps the residual's filter states ``z`` (steady state at ``reset``) and
        advances them once per ``act`` with the acceleration it commanded over the control period.
    threads : numba threads for the rollouts (a machine setting; default: the process's current setting)
    device : ``"cpu"`` (default), ``"cuda"`` (the whole iteration on an NVIDIA GPU, :mod:`racing.control.mppi.gpu`;
        a :class:`~racing.control.mppi.device.DeviceError`, exit 2, naming what is missing where none works) or
        ``"auto"`` (the GPU when one works, else the CPU), or a resolved
        :class:`~racing.control.mppi.device.Device`; ``device_info`` records the choice
    warmup_state : x0[7] of the warm-up solves with a custom cost (default zeros)
    config_source : where ``config`` came from (file path or "derived ..."), kept for the run's record
    guide : the ancillary controller of ``config.guide`` (a controller with ``plan_inputs()``, built by the race
        assembly on its own line); default: built here (``make_ilqr(track, params)``) when ``config.guide`` names one.
        Each ``act`` runs it first; ``guide_share`` of the samples are drawn around its plan (sample 0: the plan
        itself), the rest around MPPI's own, and the weights judge all of them by MPPI's cost (:meth:`_iterate`)
    """

    name = "mppi"

    def __init__(self, track, params: VehicleParams, config: MPPIConfig = MPPIConfig(), cost=None, residual=None,
                 threads: int | None = None, warmup_state=None, config_source: str = "<MPPIConfig>", device="cpu",
                 guide=None):
        self.device = resolve_device(device)  # first: a missing GPU fails before anything is built
        if residual is not None:
            if config.model != "dynamic":
                raise ValueError(f"MPPI: a residual network needs the dynamic rollout model (model: dynamic), "
                                 f"this configuration has model: {config.model}")
            if not hasattr(residual, "flat"):
                residual = load_residual(residual)
        self.residual = residual
        self.rw = residual.flat if residual is not None else np.zeros(0)
        self.track = track
        self.params = params
        self.config = config
        self.config_source = config_source
        self.res = resolve(config, params)
        self.threads = set_threads(threads)
        K, T = config.num_samples, config.horizon
        self.K, self.T = K, T
        model = S.SEMI_PARAMETRIC if residual is not None else _MODELS[config.model]
        self.racing = cost is None
        if self.racing:
            if track is None:
                raise ValueError("MPPI with the racing cost needs a track")
            grip = config.grip_scale * usable_grip(params)  # less what the car's identification cannot vouch for
            self.tab, self.profile_lap_s = C.track_table(track, params, grip, config.cap_scale,
                                                         config.use_raceline, config.raceline_speed)
            ds = track.ds
            self.cp = cost_params_for(config.cost, self.res.soft_margin, self.res.crash_margin, ds,
                                      config.beta_max, config.yaw_limit, params)
            self.cost, self.cost_args = S.RACING, (self.cp, self.tab)
        else:
            self.tab = np.zeros((4, C.TAB_COLS))
            self.profile_lap_s = None
            ds = 1.0
            self.cost, self.cost_args = cost
        self.model = model
        self.lockstep = config.kernel == "lockstep" and L.supported(model)
        precision = _precision(config, "residual_precision", self.lockstep, self.device, applies=residual is not None)
        physics = _precision(config, "physics_precision", self.lockstep, self.device, conflict=None if residual is None
                             else "runs without a residual (the semi-parametric model's physics is float64; "
                                  "residual_precision: float32 puts its network in float32)")
        self.kernels = L.make_kernels(model, self.cost, precision, physics) if self.lockstep \
            else S.make_kernels(model, self.cost)
        self.ds = ds
        self.p = params.to_array()
        self.interface = drive_interface(params.drive_interface)
        self.speed_obs = speed_observer(params, config.accel_feedback)
        self._make_estimators(track, params, config)
        #: the kernel's noise parameters (sigma_steer_rate, sigma_accel, rho, rho); ``sigma`` is a view of the first two
        self.noise = np.array([*self.res.sigma, config.noise_correlation, config.noise_correlation])
        self.sigma = self.noise[:2]
        self.gamma = config.lambda_ * (1.0 - config.alpha)
        self.qtab = S.normal_table()
        # buffers (made once)
        self.U = np.zeros((T, 2))
        self.u_prev = np.zeros(2)
        self._x0 = np.zeros(S.NSTATE)
        self.n_rec = min(config.record_samples, K)
        # residual filter states: the running z (advanced per act) and per-sample buffers
        self.z = np.zeros(max(residual.n_aug, 1) if residual is not None else 1)
        self.buf = S.Buffers(V=np.zeros((K, T, 2)), S=np.zeros(K), w=np.zeros(K), U_new=np.zeros((T, 2)),
                             X=np.zeros((T + 1, S.NSTATE)), Vn=np.zeros((T, 2)),
                             M=np.ascontiguousarray(S.smoothing_matrix(T, config.smoothing_window,
                                                                       config.smoothing_order)),
                             traj=np.zeros((max(self.n_rec, 1), T + 1, 2)), eps=np.zeros((1, T, 2)),
                             ZR=S.residual_buffers(K, self.rw), eps_dummy=np.zeros((1, T, 2)),
                             traj_dummy=np.zeros((1, T + 1, 2)),
                             LX=L.scratch(T, self.rw, precision=precision, physics=physics) if self.lockstep
                             else np.zeros((1, 1)))
        self.margs = S.ModelArgs(p=self.p, dt=float(config.dt), nsub=int(config.substeps), rw=self.rw, z0=self.z)
        self.nargs = S.NoiseArgs(sigma=self.noise, qtab=self.qtab)
        # views kept under their old names (diagnostics, tests)
        self.V, self.Sk, self.w, self.X, self.traj = self.buf.V, self.buf.S, self.buf.w, self.buf.X, self.buf.traj
        self.M, self.ZR = self.buf.M, self.buf.ZR
        self.lam = float(config.lambda_)
        # anytime iterations (set_time_budget): blocks of samples, each a multiple of the kernels' chunk
        self.budget_s: float | None = None
        self._anytime = False
        self._block = max(S.CHUNK, -(-K // (ANYTIME_BLOCKS * S.CHUNK)) * S.CHUNK)
        self._finish_s = 0.0
        self._share = 1.0
        self._act_c0 = None
        self._dev = None
        if self.device.kind == "cuda":
            from racing.control.mppi.gpu import DeviceIteration  # the [cuda] extra, imported where used

            self._dev = DeviceIteration(self)
        self._warmup_state = None if warmup_state is None else np.asarray(warmup_state, float)
        self._make_guide(guide)
        if config.warmup:
            self.warm_up()
        self.reset()

    def _make_estimators(self, track, params: VehicleParams, config: MPPIConfig) -> None:
        """The online grip (above the car file's grip its cap is re-made by a profile), the steering chain and the
        state filter, as the settings ask; each writes ``self.p`` (and the grip ``self.tab``) in place."""
        self.grip = None
        if config.online_grip and self.racing:
            cap = C.ProfileCap(track, params, config.use_raceline, config.cap_scale)
            self.grip = OnlineGrip(params, self.p, self.tab, on_params=self._params_changed,
                                   cap_at=lambda g: cap(config.grip_scale * g))
        self.steer = OnlineSteer(params, self.p, bases=() if self.grip is None else (self.grip.p0,),
                                 on_params=self._params_changed) if config.online_steer else None
        self.observer = StateObserver(self.p) if config.state_filter else None
        self.dead_time = DeadTime(params, self.p, None if self.steer is None else self.steer.estimator) \
            if config.dead_time else None

    def _make_guide(self, guide) -> None:
        """The guide (``config.guide``) and its buffers: its plan resampled onto this plan's steps (``_Ug``), its
        samples' noise parameters (``_nz_g``: ``guide_sigma`` x this iteration's), and the samples ``[0, _kg)`` it
        gets (a whole number of the kernels' chunks)."""
        conf = self.config
        self.guide = None
        self._kg = 0
        self._guided = False
        if conf.guide == "none":
            return
        if self._dev is not None:
            raise ValueError(f"MPPI: guide: {conf.guide} runs on the CPU kernels only (this controller runs on "
                             f"{self.device.kind}; set guide: none)")
        if not self.racing:
            raise ValueError(f"MPPI: guide: {conf.guide} needs the racing cost (a track)")
        if guide is None:
            from racing.control.ilqr import make_ilqr  # the raceline extra, imported where used

            guide = make_ilqr(self.track, self.params)
        self.guide = guide
        self._kg = max(S.CHUNK, int(conf.guide_share * self.K) // S.CHUNK * S.CHUNK)
        if self._kg >= self.K:
            raise ValueError(f"MPPI: guide_share {conf.guide_share} of K = {self.K} leaves no samples of MPPI's own "
                             f"(the guide takes whole chunks of {S.CHUNK}); raise num_samples or lower guide_share")
        U_g, dt_g = guide.plan_inputs()
        self._g_index = resample_index(self.T, conf.dt, U_g.shape[0], dt_g)
        self._Ug = np.zeros((self.T, 2))
        self._noise_g = self.noise.copy()
        self._nz_g = S.NoiseArgs(sigma=self._noise_g, qtab=self.qtab)

    def warm_up(self, n: int = 3) -> None:
        """Run ``n`` solves on a dummy state (numba cache load, thread-pool start, first-touch of the
        buffers) so that the first real ``act`` is as fast as the others; ``reset`` afterwards."""
        x = np.zeros(S.NSTATE)
        if self.racing:
            x[0], x[1], x[2] = self.track.xy[0, 0], self.track.xy[0, 1], self.track.psi[0]
            x[3] = 0.5 * float(self.tab[0, C.TAB_VCAP])
        elif self._warmup_state is not None:
            x[:] = self._warmup_state
        self.reset()
        for j in range(n):
            self.solve(x, 0.02 * j)
        for est in present(self.grip, self.steer, self.observer, self.dead_time):
            est.warm_up()
        self.reset()

    @property
    def device_info(self) -> dict:
        """Where the iteration runs (``{"device", "gpu", "requested"[, "note"]}``, the run record's)."""
        return self.device.record()

    def set_time_budget(self, seconds: float | None) -> None:
        """Anytime iterations: each ``act`` stops sampling when the next block of samples (K / 16) would end
        later than ``seconds`` [s] after the call began, and finishes with the samples it has (at least one block;
        sample 0, the nominal, is in it). After an iteration that overran it (preempted inside a block on a busy
        machine) the iterations plan with a smaller share of it for a while (:meth:`_adapt_share`). ``None``: every
        iteration takes its K samples (an off-line race: the result does not depend on the machine). The CPU
        iteration only: on a GPU the iteration is whole."""
        if seconds is not None and not (math.isfinite(seconds) and seconds > 0.0):
            raise ValueError(f"time budget {seconds!r}: expected a positive number of seconds or None")
        self.budget_s = None if seconds is None else float(seconds)
        self._anytime = self._anytime or self.budget_s is not None

    def _adapt_share(self, elapsed: float) -> None:
        """The share of the budget the next iteration plans with: cut by 30 % after an iteration that overran the
        budget (a busy machine preempted it inside a block), back by 2 % of the budget per iteration that did not
        (additive increase, multiplicative decrease), between 0.3 and 1."""
        if self.budget_s is None:
            return
        if elapsed > self.budget_s:
            self._share = max(0.3, 0.7 * self._share)
        else:
            self._share = min(1.0, self._share + 0.02)
    def compute_report(self) -> dict:
        """Samples per iteration since ``reset``: ``{"samples": {"K", "mean", "min", "cut_iterations",
        "iterations", "anytime", "block"}}`` (fewer than K where an anytime iteration ran out of time); with a guide
        also ``{"guide": {"controller", "samples", "weight_mean"}}`` (its samples' share of the weight)."""
        n = max(self._iters, 1)
        out = {"samples": {"K": self.K, "mean": round(self._samples_sum / n, 1) if self._iters else None,
                           "min": self._samples_min if self._iters else None, "cut_iterations": self._cut,
                           "iterations": self._iters, "anytime": self._anytime,
                           "block": self._block}}
        if self.guide is not None:
            out["guide"] = {"controller": self.guide.name, "samples": self._kg,
                            "weight_mean": round(self._guide_w / n, 3) if self._iters else None}
        return out

    def _iterate(self, b, i0, s0, seed, lam, gen, store_noise, c0, samples):
        """The CPU iteration: whole, or anytime (:meth:`set_time_budget`), or cut after the block that reaches
        ``samples``: ``(smin, cnom, eta, samples used)``."""
        it, K = self.kernels.iteration, self.K
        args = (self._x0, self.U, self.margs, self.cost_args, self.nargs, b, i0, s0, self.u_prev, seed, lam,
                self.gamma, gen, store_noise, self.n_rec)
        k = 0
        if self._guided:  # samples [0, kg) around the guide's plan (sample 0: the plan), no weights yet
            self._noise_g[:] = self.noise
            self._noise_g[:2] *= self.config.guide_sigma
            it(self._x0, self._Ug, self.margs, self.cost_args, self._nz_g, b, i0, s0, self.u_prev, seed, lam,
               self.gamma, gen, store_noise, self.n_rec, 0, self._kg, 0)
            k = self._kg
        if self.budget_s is None and samples is None:
            return (*it(*args, k, K, K), K)
        deadline = c0 + (self.budget_s * self._share if self.budget_s is not None else math.inf)
        worst = 0.0
        while True:
            k1 = min(K, k + self._block)
            if k1 == K:
                return (*it(*args, k, K, K), K)
            ta = time.perf_counter()
            it(*args, k, k1, 0)
            tb = time.perf_counter()
            k, worst = k1, max(worst, tb - ta)  # the next block may be as slow as the slowest so far
            if tb + worst + self._finish_s > deadline or (samples is not None and k >= samples):
                out = it(*args, k, k, k)
                self._finish_s = max(0.5 * self._finish_s, time.perf_counter() - tb)
                return (*out, k)

    def _params_changed(self, p) -> None:
        """The online grip estimate rewrote the model parameters and the track table: the device copies follow."""
        if self._dev is not None:
            self._dev.params_changed()

    # ------------------------------------------------------------------ state
    def reset(self, observation: Observation | None = None) -> None:
        self.U[:] = 0.0
        self.u_prev[:] = 0.0
        self.z[:] = 0.0
        if self.residual is not None:
            aug_init_nb(0.0, self.rw, self.z)  # no history: steady state of the (zero) acceleration input
        self.lam = float(self.config.lambda_)
        self._hint = None
        self._t_prev = None
        self._calls = 0
        self.period = 0.02
        self.last = {}
        self.last_solve_s = 0.0
        self._iters = self._cut = 0
        self._anytime = self.budget_s is not None
        self._share = 1.0
        self._samples_sum, self._samples_min = 0, self.K
        self._guided, self._guide_w = False, 0.0
        if self.guide is not None:
            self.guide.reset(observation)
        for est in present(self.grip, self.speed_obs, self.steer, self.observer, self.dead_time):
            est.reset()

    def _shift(self, elapsed: float) -> None:
        """Warm start: ``U(tau) <- U(tau + elapsed)`` (linear interpolation, last input held)."""
        shift_inputs(self.U, elapsed, self.config.dt)

    def _set_sigma(self, vx: float) -> None:
        """Noise std of this iteration: ``sigma[0] = sigma_steer_rate * min(1, (steer_noise_speed / v_x)^2)``."""
        self.sigma[:] = self.res.sigma
        vn = self.config.steer_noise_speed
        if vn > 0.0 and vx > vn:
            self.sigma[0] *= (vn / vx) ** 2

    def _index(self, x: float, y: float) -> tuple[int, float]:
        if not self.racing:
            return 0, 0.0
        if self._hint is None:
            s, _, _ = self.track.frenet(np.array([[x, y]]))
            self._hint = int(s[0] / self.ds) % self.tab.shape[0]
        i, s0 = S.project_state(self.tab, self._hint, x, y, self.ds)
        self._hint = int(i)
        return int(i), float(s0)

    def solve(self, x0: np.ndarray, t: float | None = None, noise: np.ndarray | None = None,
              store_noise: bool = False, samples: int | None = None) -> np.ndarray:
        """One MPPI iteration from the dynamic-layout state ``x0[7]``; returns the plan ``X[T+1, 7]``.

        ``noise[K, T, 2]`` (standard normal) replaces the in-kernel generator when given;
        ``store_noise`` makes the generator write its draws into ``self.eps``; ``samples``: stop after the block of
        samples that reaches this count, as an anytime iteration that ran out of time does (CPU only).
        """
        c0 = time.perf_counter() if self._act_c0 is None else self._act_c0  # an act's budget counts from its start
        self._act_c0 = None
        if t is not None:
            if self._t_prev is not None:
                el = t - self._t_prev
                if el > 0:
                    self.period = el
                    self._shift(el)
            self._t_prev = t
        self._x0[:] = x0
        self._set_sigma(float(x0[3]))
        i0, s0 = self._index(float(x0[0]), float(x0[1]))
        self.u_prev[:] = self.U[0]
        b = self.buf
        if noise is not None:
            eps = np.ascontiguousarray(noise, dtype=np.float64)
            if eps.shape != (self.K, self.T, 2):
                raise ValueError(f"noise must have shape ({self.K}, {self.T}, 2), got {eps.shape}")
            b, gen = b._replace(eps=eps), False
        elif store_noise:
            if getattr(self, "eps", None) is None:
                self.eps = np.zeros((self.K, self.T, 2))
            b, gen = b._replace(eps=self.eps), True
        else:
            gen = True
        seed = (self.config.seed * 1_000_003 + self._calls * 7919 + 12345) & 0x7FFFFFFFFFFFFFFF
        self.last_seed = seed
        self._calls += 1
        lam = self.lam
        if self._dev is None:
            smin, cnom, eta, used = self._iterate(b, i0, s0, seed, lam, gen, store_noise, c0, samples)
            self.U[:] = b.U_new
            ess = 1.0 / max(float(np.dot(self.w, self.w)), 1e-300)
        else:  # the same iteration on the GPU: the plan into U and X
            smin, cnom, eta, ess = self._dev.run(self._x0, self.U, self.u_prev, self.noise, self.z, i0, s0, seed, lam,
                                                 self.gamma, gen, store_noise, self.n_rec,
                                                 b.eps if (noise is not None or store_noise) else None)
            used = self.K
        self._iters += 1
        self._samples_sum += used
        self._samples_min = min(self._samples_min, used)
        self._cut += used < self.K
        target = self.config.ess_target
        if target > 0.0:
            # multiplicative step on log(lambda) towards the target ESS (ESS grows with lambda)
            f = min(max((target / max(ess, 1e-3)) ** 0.25, 0.8), 1.25)
            self.lam = min(max(self.lam * f, 1e-2 * self.config.lambda_), 1e3 * self.config.lambda_)
        self.last = {"min_cost": smin, "nominal_cost": cnom, "eta": eta, "i0": i0, "s0": s0, "lambda": lam,
                     "ess": ess, "samples": used}
        if self._guided and self._dev is None:
            gw = float(self.w[:self._kg].sum())
            self._guide_w += gw
            self.last["guide_weight"] = gw
        self.last_solve_s = time.perf_counter() - c0
        self._adapt_share(self.last_solve_s)
        return self.X

    def act(self, observation: Observation, t: float) -> Command:
        self._act_c0 = time.perf_counter()  # the estimators' replays (every 5th / 10th tick) count against the budget
        if self.grip is not None:
            self.grip.observe(t, observation.state)
        if self.speed_obs is not None:
            self.speed_obs.update(float(observation.state[3]), t)
        st = self.steer
        if st is not None:
            st.observe(t, float(observation.state[6]))
        if self.guide is not None:
            self._follow_guide(observation, t)
        self.solve(start_state(t, observation.state, self.observer, self.dead_time), t)
        lead = steering_lead(self.dead_time, st, self.params, self.period, self.res.steer_lead)
        cmd = command_from_plan(self.X, self.U, self.config.dt, self.params, self.period, lead, self.p,
                                self.interface, self.speed_obs, st)
        record_sent(t, cmd, self.observer, self.dead_time)
        if self.residual is not None:
            aug_update_nb(self.z, cmd.acceleration, self.rw, self.period)
        return cmd

    def _follow_guide(self, observation: Observation, t: float) -> None:
        """The guide's own ``act`` (its estimators see the car too), its plan resampled onto this plan's steps: the
        next iteration draws ``guide_share`` of its samples around it."""
        self.guide.act(observation, t)
        resample_inputs(self.guide.plan_inputs()[0], self._g_index, self._Ug)
        self._guided = True

    def estimates(self) -> dict:
        return merged_summaries(self.grip, self.steer, self.observer, self.dead_time)

    def diagnostics(self) -> dict:
        n = self.n_rec
        if self._dev is not None:
            self._dev.fetch_samples(n)
        return {
            "samples": self.traj[:n].copy(),
            "weights": self.w[:n].copy(),
            "costs": self.Sk[:n].copy(),
            "nominal": self.X[:, :2].copy(),
            "plan": self.X.copy(),
            "U": self.U.copy(),
            "dt": self.config.dt,
            "K": self.K,
            "T": self.T,
            "ess": float(1.0 / max(np.sum(self.w ** 2), 1e-300)),
            "lambda": float(self.last.get("lambda", self.lam)),
            "min_cost": float(self.last.get("min_cost", math.nan)),
            "solve_ms": self.last_solve_s * 1e3,
            "device": self.device.kind,
            **({} if self.grip is None else self.grip.summary()),
        }

    def config_dict(self) -> dict:
        return as_dict(self.config)
