"""iLQR settings: a frozen dataclass read strictly from YAML (:mod:`racing.config`).

The cost weights are the racing cost's (:class:`~racing.control.mppi.config.CostWeights`, the same named terms of
:mod:`racing.control.costs`), used through their smooth variant (:func:`racing.control.costs.smooth_stage`).
Fields left ``None`` are derived from the car (:func:`resolve_margins`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from racing import config as cfg
from racing.control.horizon import CostWeights, margins, planning_horizon_s

MAX_HORIZON = 400


@dataclass(frozen=True)
class ILQRConfig:
    """iLQR solver, model and cost settings."""

    horizon: int = field(default=50, metadata={"min": 1, "max": MAX_HORIZON, "doc": "T, steps of the plan"})
    dt: float = field(default=0.04, metadata={"unit": "s", "gt": 0.0, "doc": "plan step"})
    substeps: int = field(default=1, metadata={"min": 1, "max": 20, "doc": "model sub-steps per plan step"})
    model: str = field(default="dynamic", metadata={"choices": ("kinematic", "dynamic")})
    iterations: int = field(default=10, metadata={"min": 1, "max": 100,
                                                  "doc": "most iLQR iterations per control step (the real-time budget; "
                                                         "fewer when the plan converges, `tolerance`). One was not "
                                                         "enough from a noisy state: on the gt_car under --noise 1 "
                                                         "--delay 0.02 one a tick left ridge_ring on 3 of 3 seeds, "
                                                         "ten had 1 excursion in 4 (docs/results.md, 2026-12-07)"})
    first_iterations: int = field(default=30, metadata={"min": 1, "max": 500,
                                                        "doc": "iterations of the first (cold) solve after reset"})
    tolerance: float = field(default=1e-6, metadata={"unit": "-", "gt": 0.0,
                                                     "doc": "stop when the relative cost decrease is below this"})
    reg_init: float = field(default=1e-3, metadata={"unit": "-", "gt": 0.0,
                                                    "doc": "initial Levenberg-Marquardt regularisation mu (on V_xx)"})
    reg_min: float = field(default=1e-6, metadata={"unit": "-", "gt": 0.0})
    reg_max: float = field(default=1e8, metadata={"unit": "-", "gt": 0.0})
    reg_factor: float = field(default=4.0, metadata={"unit": "-", "gt": 1.0,
                                                     "doc": "mu grows by this factor on failure, shrinks on success"})
    max_retries: int = field(default=16, metadata={"min": 1, "max": 100,
                                                  "doc": "regularisation increases allowed per iteration (bounds the "
                                                         "work of one control step)"})
    line_search: tuple[float, ...] = field(default=(1.0, 0.5, 0.25, 0.1, 0.03),
                                           metadata={"doc": "step sizes tried by the forward pass, in order"})
    hessian: str = field(default="gauss_newton", metadata={
        "choices": ("gauss_newton", "exact"),
        "doc": "cost Hessian: Gauss-Newton 2 J_r'J_r of the cost's residuals (positive semi-definite) or exact"})
    sharpness: float = field(default=4.0, metadata={"unit": "1/unit", "gt": 0.0,
                                                    "doc": "k of the softplus hinges and barrier (-> hinge as k grows)"})
    codegen: str = field(default="auto", metadata={
        "choices": ("auto", "on", "off"),
        "doc": "compile the casadi derivatives to C (cached); auto = when a C compiler exists, off = casadi VM"})
    grip_scale: float = field(default=0.95, metadata={"unit": "-", "gt": 0.0, "max": 1.5,
                                                      "doc": "grip of the friction-limited speed profile (the "
                                                             "speed reference without a raceline speed)"})
    cap_scale: float = field(default=1.0, metadata={"unit": "-", "gt": 0.0, "max": 3.0,
                                                    "doc": "v_cap = cap_scale * friction-limited profile"})
    soft_margin: float | None = field(default=None, metadata={"unit": "m", "min": 0.0,
                                                              "doc": "edge distance where the boundary term starts; "
                                                                     "default crash_margin + 0.5 width"})
    crash_margin: float | None = field(default=None, metadata={"unit": "m", "min": 0.0,
                                                               "doc": "CoG-to-edge distance of the barrier; "
                                                                      "default 0.6 width"})
    use_raceline: bool = field(default=True, metadata={"doc": "speed cap and line term from the raceline (the "
                                                              "car's cached min-time line when the track has none)"})
    compute_raceline: bool = field(default=True, metadata={
        "doc": "without a cached minimum-time line, follow the car's minimum-curvature line (cached, or computed "
               "at construction: a QP of about 1-2 s on a 5 km circuit) instead of the centre line"})
    raceline_frame: bool = field(default=True, metadata={
        "doc": "measure progress and lateral offset along the raceline (its own Frenet frame, widths to the same "
               "edges) instead of the centre line: driving the line then gains progress at the car's speed"})
    raceline_speed: bool = field(default=True, metadata={"doc": "v_cap from the raceline's own speed profile"})
    profile_cap: bool = field(default=False, metadata={
        "doc": "cap the raceline's speeds with the friction-limited profile at grip_scale (a margin); off: the "
               "raceline's own speeds (a minimum-time line's use the full model)"})
    beta_max: float = field(default=0.15, metadata={"unit": "rad", "min": 0.0, "max": 1.5,
                                                    "doc": "sideslip |atan(v_y / v_x)| beyond which the crash "
                                                           "barrier acts (a spin); 0 = off"})
    yaw_limit: float = field(default=1.6, metadata={"unit": "-", "min": 0.0,
                                                    "doc": "|r| v_x beyond yaw_limit * g * min(D_f, D_r) is "
                                                           "penalised by the crash barrier; 0 = off"})
    rear_slip_limit: float = field(default=1.0, metadata={
        "unit": "-", "gt": 0.0, "max": 3.0,
        "doc": "the tyre-slip term acts on the rear axle's slip angle beyond this share of its Pacejka peak (the "
               "front's: beyond its peak); below 1, a margin of yaw stability. 0.5 kept the gt_car clean on the "
               "tracks it was tried on under --noise 1 --delay 0.02 but not on the circuits never tuned on, and "
               "cost lab_loop 3 points there: not the default (docs/results.md 2026-12-07)"})
    online_steer: bool = field(default=False, metadata={
        "doc": "identify the car's steering chain (dead time, lag, gain, rate limit) from the commanded and the "
               "measured steering angle while racing (racing.control.steering) and lead, scale and limit the "
               "steering with it where it differs from the car file (off by default for iLQR: on lab_loop under "
               "--noise 1 --delay 0.02 it led the 20 ms delay and had 5 excursions in 3 races against 1 without, "
               "docs/results.md 2026-12-07; on for MPPI)"})
    accel_feedback: bool = field(default=True, metadata={
        "doc": "observe what the car's own speed loop adds to the planned acceleration (a PI integrator, a gain "
               "error, drag) from the measured speed and take it off the command (racing.control.speedloop)"})
    steer_lead: float | None = field(default=None, metadata={"unit": "s", "min": 0.0,
                                                             "doc": "steering command = plan at t + lead; "
                                                                    "default steer_tau + steer_delay + half a period"})
    online_grip: bool = field(default=True, metadata={
        "doc": "estimate the grip while racing (racing.control.grip: a bank of the model at grip scales replays "
               "the measured run) and plan with it: the model's D_f, D_r, mu times the estimate, the speed cap at the "
               "lower end of its band (never above the car file's usable grip: the line it tracks was made for that) "
               "instead of the car file's grip_margin once it is informed (a plant with 10 % less grip: clean on the "
               "four project tracks with it, off the track on two without)"})
    state_filter: bool = field(default=True, metadata={
        "doc": "plan from a filtered state (racing.control.observer: the model's prediction from the last estimate "
               "under the command sent, corrected by gains that follow the measurement noise it measures: near 1 "
               "without noise); the online estimators still replay the raw measurements"})
    dead_time: bool = field(default=True, metadata={
        "doc": "plan from the state carried over the car's actuation dead time with the commands already sent "
               "(racing.control.latency: the dead time identified from the commanded and the measured steering "
               "angle, the car file's steer_delay until then); the steering lead less what is compensated. On "
               "lab_loop a 20 ms delay the car file does not state cost iLQR 3 points of lap time without it "
               "(docs/results.md 2026-12-07)"})
    warmup: bool = field(default=True, metadata={"doc": "compile/load the kernels at construction"})
    cost: CostWeights = CostWeights(progress=3.0, line=100.0, speed_cap=2.0, speed_track=5.0, terminal_speed=20.0,
                                    boundary=50.0, crash=200.0, slip=10.0, tyre_slip=30.0, steer_rate_change=3.0,
                                    accel_change=2.0)
    # steer_rate_change and accel_change (the plan's smoothness) are what makes iLQR hold on a plant with lags it does
    # not model (docs/controllers.md, "iLQR on a plant it does not model"): at 0.01 and 0.001 the plan steered
    # bang-bang into a 2.5 Hz yaw limit cycle behind tyre relaxation and stepped the acceleration past an 80 ms
    # drivetrain lag, and it left the track on two of the four project tracks

    def __post_init__(self):
        import dataclasses

        for f in dataclasses.fields(self):  # the YAML checks hold for a config built in Python as well
            v = getattr(self, f.name)
            meta = f.metadata
            if isinstance(v, str) and "choices" in meta and v not in meta["choices"]:
                raise ValueError(f"ILQRConfig.{f.name}: expected one of {list(meta['choices'])}, got {v!r}")
            if isinstance(v, (int, float)) and not isinstance(v, bool) and any(k in meta for k in ("min", "max", "gt")):
                cfg._check_number(v, f"ILQRConfig.{f.name}", meta, want_int=isinstance(v, int))
        if not math.isfinite(self.dt):
            raise ValueError(f"dt must be a finite number of seconds > 0, got {self.dt}")
        if self.reg_min > self.reg_max:
            raise ValueError(f"reg_min ({self.reg_min}) must be <= reg_max ({self.reg_max})")
        if not self.line_search or any(not (0.0 < a <= 1.0) for a in self.line_search):
            raise ValueError(f"line_search must be a non-empty list of step sizes in (0, 1], got "
                             f"{list(self.line_search)}")

    def replace(self, **changes) -> "ILQRConfig":
        return cfg.replace_from(self, changes, source="ILQRConfig overrides")


def derived_config(params) -> ILQRConfig:
    """Settings for a car without an iLQR file: a horizon of 50 steps covering
    :func:`~racing.control.mppi.config.planning_horizon_s` (as MPPI's derived settings), the documented
    defaults else."""
    return ILQRConfig(horizon=50, dt=round(planning_horizon_s(params) / 50, 4))


def config_for(params, config_path: str | Path | None = None) -> tuple[ILQRConfig, str]:
    """``(config, source)``: ``config_path`` when given, else :func:`derived_config` of the car."""
    if isinstance(config_path, ILQRConfig):  # settings resolved already (the race assembly): nothing to read
        return config_path, "given"
    if config_path is not None:
        return cfg.load(ILQRConfig, config_path), str(Path(config_path))
    return derived_config(params), f"derived from the parameters of {params.name}"


def resolve_margins(conf: ILQRConfig, params) -> tuple[float, float]:
    """``(soft_margin, crash_margin)`` [m] with the ``None`` defaults filled from the car's width (as MPPI's)."""
    return margins(conf.soft_margin, conf.crash_margin, params)


__all__ = ["ILQRConfig", "config_for", "derived_config", "resolve_margins"]
