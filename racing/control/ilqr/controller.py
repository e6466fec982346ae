"""The receding-horizon iLQR controller: warm start, real-time iteration budget, safe fallback, commands."""
from __future__ import annotations

import math
import time

import numpy as np

from racing import config as cfg
from racing.control import costs as C
from racing.control.base import Controller, merged_summaries, present
from racing.control.grip import OnlineGrip
from racing.control.horizon import cost_params_for, project_state
from racing.control.ilqr.config import ILQRConfig, resolve_margins
from racing.control.ilqr.problem import RacingProblem
from racing.control.ilqr.solver import ILQR as Solver
from racing.control.latency import DeadTime, record_sent, start_state, steering_lead
from racing.control.observer import StateObserver
from racing.control.plan import command_from_plan, shift_inputs
from racing.control.speedloop import speed_observer
from racing.control.steering import OnlineSteer
from racing.interfaces import Command, Observation, drive_interface
from racing.models.kinematic import body_velocities
from racing.models.ops import NUMPY
from racing.models.params import VehicleParams, usable_grip


def guided_from(T: int, elapsed: float, dt: float) -> int:
    """The first of ``T`` plan steps (of ``dt`` [s]) that a shift by ``elapsed`` [s] brings in from beyond the old
    plan (:func:`racing.control.plan.shift_inputs`: source time > T - 1 steps)."""
    if elapsed <= 0:
        return T
    return int(min(max(math.floor(T - 1 - elapsed / dt) + 1, 0), T))


class ILQRController(Controller):
    """iLQR (box-constrained DDP) on the racing cost's smooth variant, receding horizon.

    ``reset(observation)`` solves the first plan (``first_iterations``, from the guide policy's rollout). Each
    ``act``: shift the previous plan (inputs, states and feedback gains) by the elapsed time and roll it out from the
    observed state with its feedback policy and with its open loop (the steps shifted in take the guide policy's
    inputs), and roll out the guide policy alone (:meth:`RacingProblem.warm_start`), keeping the cheapest (warm
    start, ``last['warm_start']``); run ``config.iterations`` iterations; command
    the plan like MPPI does (:func:`racing.control.plan.command_from_plan`). When a solve fails (no descent within
    ``max_retries`` regularisation steps, or non-finite values), the previous plan is kept, time-indexed: its
    shifted inputs rolled out from the new state (or, when even that is not finite, its shifted states) are
    commanded, and ``last['fallback']`` and ``last['reason']`` say so.

    ``solve(x0[7], t)`` returns the plan's states ``X[T+1, 7]`` in the observation layout.
    """

    name = "ilqr"

    def __init__(self, track, params: VehicleParams, config: ILQRConfig = ILQRConfig(),
                 config_source: str = "<ILQRConfig>"):
        if track is None:
            raise ValueError("iLQR with the racing cost needs a track")
        self.track = track
        self.params = params
        self.config = config
        self.config_source = config_source
        self.T = config.horizon
        soft, crash = resolve_margins(config, params)
        grip = config.grip_scale * usable_grip(params)  # less what the car's identification cannot vouch for
        self.tab, self.profile_lap_s = C.track_table(track, params, grip, config.cap_scale, config.use_raceline,
                                                     config.raceline_speed, config.profile_cap, usable_grip(params))
        self.ds = track.ds
        # without a raceline the line term would pull the car to the centre line: off
        weights = config.cost if (config.use_raceline and track.raceline is not None) else \
            cfg.replace_from(config.cost, {"line": 0.0}, source="iLQR without a raceline")
        self.cp = cost_params_for(weights, soft, crash, track.ds, config.beta_max, config.yaw_limit, params,
                                  config.rear_slip_limit)
        self.p = params.to_array()
        self.interface = drive_interface(params.drive_interface)
        self.speed_obs = speed_observer(params, config.accel_feedback)
        self.pb = RacingProblem(config.model, self.T, config.substeps, config.dt, self.p, self.cp, self.tab,
                                config.sharpness, config.codegen, config.hessian)
        self.derivatives_backend = self.pb.D.backend
        # the speed cap never above the car file's grip: the line it tracks was made for that grip
        self.grip = OnlineGrip(params, self.p, self.tab, self.pb.set_params, max_scale=1.0) \
            if config.online_grip else None
        self.steer = OnlineSteer(params, self.p, bases=() if self.grip is None else (self.grip.p0,),
                                 on_params=self.pb.set_params) if config.online_steer else None
        self.observer = StateObserver(self.p) if config.state_filter else None
        self.dead_time = DeadTime(params, self.p, None if self.steer is None else self.steer.estimator) \
            if config.dead_time else None
        self.solver = Solver(self.pb, config)
        self.X = np.zeros((self.T + 1, 7))
        self._Uw = np.zeros((self.T, 2))
        self._Xw = np.zeros((self.T + 1, self.pb.lay.n))
        self._Kw = np.zeros((self.T, 2, self.pb.lay.n))
        self._tail = np.array([0.0, np.nan])  # steps shifted in: steering rate 0, acceleration held
        self._Xprev = np.zeros((self.T + 1, 7))
        if config.warmup:
            self.warm_up()
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self, observation: Observation | None = None) -> None:
        """Forget the plan; with an ``observation`` (the start state), solve the first plan from it now
        (``first_iterations``), so that the first ``act`` is a warm-started real-time step."""
        self.solver.reset()
        self.pb.U[:] = 0.0
        self._have_plan = False
        self._hint = None
        self._t_prev = None
        self.period = 0.02
        self.last = {}
        self.last_solve_s = 0.0
        self.fallbacks = 0
        for est in present(self.grip, self.speed_obs, self.steer, self.observer, self.dead_time):
            est.reset()
        if observation is not None:
            self.solve(observation.state, observation.t)

    def warm_up(self) -> None:
        """One solve on the track's start line (loads/compiles the kernels), then ``reset``."""
        x = np.zeros(7)
        x[0], x[1], x[2] = self.track.xy[0, 0], self.track.xy[0, 1], self.track.psi[0]
        x[3] = 0.5 * float(self.tab[0, C.TAB_VCAP])
        self.reset()
        self.solve(x, 0.0)
        self.solve(x, 0.02)
        for est in present(self.grip, self.steer, self.observer, self.dead_time):
            est.warm_up()
        self.reset()

    def _index(self, x: float, y: float) -> int:
        if self._hint is None:
            s, _, _ = self.track.frenet(np.array([[x, y]]))
            self._hint = int(s[0] / self.ds) % self.tab.shape[0]
        i, _ = project_state(self.tab, self._hint, x, y, self.ds)
        self._hint = int(i)
        return int(i)

    def _to_observation_layout(self) -> None:
        """The nominal plan's states in the observation layout ``X[T+1, 7]``."""
        Xa = self.pb.X
        if self.pb.nx == 7:
            self.X[:] = Xa[:, :7]
        else:  # kinematic (x, y, psi, v, delta) -> dynamic layout through the state map
            vx, vy, r = body_velocities(Xa[:, 3], Xa[:, 4], self.p, NUMPY)
            self.X[:, :3] = Xa[:, :3]
            self.X[:, 3], self.X[:, 4], self.X[:, 5], self.X[:, 6] = vx, vy, r, Xa[:, 4]

    def solve(self, x0: np.ndarray, t: float | None = None) -> np.ndarray:
        """One receding-horizon solve from ``x0[7]`` at time ``t`` [s]; returns the plan ``X[T+1, 7]``."""
        c0 = time.perf_counter()
        conf = self.config
        pb = self.pb
        elapsed = 0.0
        if t is not None:
            if self._t_prev is not None and t - self._t_prev > 0:
                elapsed = t - self._t_prev
                self.period = elapsed
            self._t_prev = t
        # warm start: the previous plan (inputs, states, feedback gains) shifted by the elapsed time
        self._Uw[:] = pb.U
        shift_inputs(self._Uw, elapsed, conf.dt, tail=self._tail)
        self._Xw[:] = pb.X
        shift_inputs(self._Xw, elapsed, conf.dt)
        self._Kw[:] = self.solver.K
        shift_inputs(self._Kw.reshape(self.T, -1), elapsed, conf.dt)
        pb.u_prev[:] = pb.U[0] if self._have_plan else 0.0
        pb.x0[:] = x0
        pb.i0 = self._index(float(x0[0]), float(x0[1]))
        self._Xprev[:] = self.X
        # the steps shifted in from beyond the old plan take the guide policy's inputs (cold start: all of them)
        t_guide = guided_from(self.T, elapsed, conf.dt) if self._have_plan else 0
        cost = pb.warm_start(self._Xw, self._Uw, self._Kw, t_guide) if self._have_plan else pb.rollout(self._Uw, 0)
        iters = conf.iterations if self._have_plan else conf.first_iterations
        info = self.solver.solve(iters, cost)
        fallback = False
        if info.failed or not math.isfinite(info.cost):
            fallback = True
            self.fallbacks += 1
            # the previous plan, time-indexed: its inputs shifted by the elapsed time, rolled out from the new
            # state; when even that is not finite, its states shifted by the elapsed time
            if not math.isfinite(pb.rollout(self._Uw)):
                pb.U[:] = self._Uw
                self.X[:] = self._Xprev
                shift_inputs(self.X, elapsed, conf.dt)
                self.last = {"iterations": info.iterations, "accepted": info.accepted, "failed": True,
                             "fallback": True, "reason": info.reason or "the model returned non-finite states",
                             "i0": pb.i0}
                self.last_solve_s = time.perf_counter() - c0
                return self.X
        self._to_observation_layout()
        self._have_plan = self._have_plan or not fallback
        self.last = {"iterations": info.iterations, "accepted": info.accepted, "cost": info.cost,
                     "cost_start": info.cost_start, "decrease": info.decrease,
                     "expected_decrease": info.expected_decrease, "mu": info.mu, "alpha": info.alpha,
                     "converged": info.converged, "failed": info.failed, "reason": info.reason,
                     "fallback": fallback, "i0": pb.i0, "warm_start": pb.source}
        self.last_solve_s = time.perf_counter() - c0
        return self.X

    def plan_inputs(self) -> tuple[np.ndarray, float]:
        """The last plan's inputs ``U[T, 2]`` (steering rate [rad/s], acceleration [m/s^2]) and their step [s]: what
        a controller guided by this one samples around (MPPI's ``guide: ilqr``)."""
        return self.pb.U, self.config.dt

    def act(self, observation: Observation, t: float) -> Command:
        if self.grip is not None:
            self.grip.observe(t, observation.state)
        if self.speed_obs is not None:
            self.speed_obs.update(float(observation.state[3]), t)
        st = self.steer
        if st is not None:
            st.observe(t, float(observation.state[6]))
        self.solve(start_state(t, observation.state, self.observer, self.dead_time), t)
        lead = steering_lead(self.dead_time, st, self.params, self.period, self.config.steer_lead)
        cmd = command_from_plan(self.X, self.pb.U, self.config.dt, self.params, self.period, lead,
                                self.p, self.interface, self.speed_obs, st)
        record_sent(t, cmd, self.observer, self.dead_time)
        return cmd

    def estimates(self) -> dict:
        return merged_summaries(self.grip, self.steer, self.observer, self.dead_time)

    def diagnostics(self) -> dict:
        return {"nominal": self.X[:, :2].copy(), "plan": self.X.copy(), "U": self.pb.U.copy(),
                "dt": self.config.dt, "T": self.T, "solve_ms": self.last_solve_s * 1e3,
                "derivatives": self.derivatives_backend, **{k: v for k, v in self.last.items()},
                **({} if self.grip is None else self.grip.summary())}

    def config_dict(self) -> dict:
        return cfg.to_dict(self.config)


__all__ = ["ILQRController"]
