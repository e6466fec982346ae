"""MPPI settings: frozen dataclasses read strictly from YAML (:mod:`racing.config`).

:class:`MPPIConfig` holds the sampler settings, :class:`CostWeights` the weights of the named
cost terms of :mod:`racing.control.costs`. Fields left ``None`` are derived from the car's
parameters by :func:`resolve` (e.g. the noise standard deviations from the input limits).

Which settings a run uses is chosen explicitly (:func:`config_for`): ``--controller-config FILE``, else the
tuning the car's YAML names (``tuning: gt_car`` -> ``gt_car.yaml`` next to this file, or a path), else
settings derived from the car's parameters (:func:`derived_config`) - never another car's tuning by a name
match. Machine settings (numba threads) are not part of the algorithm's configuration: the caller passes them
(``racing race --threads``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from racing import config as cfg
from racing.control.horizon import CostWeights, margins, planning_horizon_s  # noqa: F401 (MPPI's settings use them)

#: Longest horizon the kernels' buffers are sized for (T * substeps stays small enough for the stack).
MAX_HORIZON = 400
MAX_SAMPLES = 1 << 20


@dataclass(frozen=True)
class MPPIConfig:
    """MPPI sampler, model and cost settings (per-car defaults in ``racing/control/mppi/<car>.yaml``)."""

    num_samples: int = field(default=1024, metadata={"doc": "K, sampled control sequences"})
    horizon: int = field(default=40, metadata={"doc": "T, steps per rollout"})
    dt: float = field(default=0.04, metadata={"unit": "s", "doc": "rollout step (may differ from the control period)"})
    substeps: int = field(default=1, metadata={"doc": "model sub-steps per rollout step"})
    model: str = field(default="dynamic", metadata={"choices": ("kinematic", "dynamic")})
    kernel: str = field(default="lockstep", metadata={
        "choices": ("scalar", "lockstep"),
        "doc": "CPU rollouts: each sample on its own, or a chunk of 16 samples stepped in lockstep (the model "
               "vectorised across them, racing.control.mppi.lockstep: 1.7x faster here; equal to the scalar "
               "kernel to rounding, not bit for bit)"})
    residual_precision: str = field(default="float64", metadata={
        "choices": ("float64", "float32"),
        "doc": "the residual network's arithmetic in the lockstep kernel (with --residual): float32 steps eight "
               "samples per AVX2 register where float64 steps four, with a rational tanh, about twice as fast "
               "here; its correction within 2e-6 of its scale of float64's (racing.models.residual."
               "make_block_residual). The physics stays float64 (physics_precision); the scalar and CUDA kernels "
               "run float64 only"})
    physics_precision: str = field(default="float64", metadata={
        "choices": ("float64", "float32"),
        "doc": "the model's arithmetic in the lockstep kernel's rollouts (without a residual): float32 steps eight "
               "samples per AVX2 register with float32 forms of the same model source (racing.models.precision), "
               "about 1.6x faster here; the noise, the costs, the update and the nominal rollout stay float64 "
               "(racing.control.mppi.lockstep). The scalar and CUDA kernels run float64 only"})
    lambda_: float = field(default=1.0, metadata={"unit": "-", "doc": "temperature lambda > 0 (the start value "
                                                                     "when ess_target > 0)"})
    ess_target: float = field(default=0.0, metadata={"unit": "-", "min": 0.0,
                                                      "doc": "adapt lambda after every iteration so that the "
                                                             "effective sample size 1/sum w^2 tends to this "
                                                             "(0 = fixed lambda)"})
    alpha: float = field(default=0.0, metadata={"unit": "-", "min": 0.0, "max": 1.0,
                                                "doc": "control-cost factor: gamma = lambda (1 - alpha)"})
    sigma_steer_rate: float | None = field(default=None, metadata={"unit": "rad/s",
                                                                   "doc": "noise std; default 0.5 steer_rate_max"})
    sigma_accel: float | None = field(default=None, metadata={"unit": "m/s^2",
                                                              "doc": "noise std; default 0.4 accel_max"})
    noise_correlation: float = field(default=0.0, metadata={
        "unit": "-", "min": 0.0, "max": 0.999,
        "doc": "correlation rho of the generated noise between rollout steps (AR(1), variance kept 1): "
               "rho > 0 explores smooth input changes, so a sample's first inputs and its cost are related"})
    steer_noise_speed: float = field(default=0.0, metadata={
        "unit": "m/s", "min": 0.0,
        "doc": "above this speed the steering-rate noise shrinks as (steer_noise_speed / v_x)^2, so that it "
               "perturbs the lateral acceleration (~ v^2 delta / L) by the same amount at every speed; 0 = off"})
    guide: str = field(default="none", metadata={
        "choices": ("none", "ilqr"),
        "doc": "an ancillary controller whose plan a share of the samples is drawn around (Biased-MPPI, Trevisan "
               "and Alonso-Mora 2024): ilqr = the car's iLQR on the same track, solved every tick (the raceline "
               "extra); its plan is sample 0, unperturbed, and the weights judge its samples by MPPI's own cost "
               "beside MPPI's (the CPU kernels)"})
    guide_share: float = field(default=0.5, metadata={
        "unit": "-", "gt": 0.0, "max": 0.9, "doc": "share of the K samples drawn around the guide's plan"})
    guide_sigma: float = field(default=0.3, metadata={
        "unit": "-", "gt": 0.0, "max": 1.0, "doc": "the guide's samples' noise std as a share of MPPI's"})
    smoothing_window: int = field(default=7, metadata={"min": 0, "doc": "Savitzky-Golay window (odd, 0/1 = off)"})
    smoothing_order: int = field(default=2, metadata={"min": 0, "max": 5})
    grip_scale: float = field(default=1.0, metadata={"unit": "-", "gt": 0.0, "max": 1.5,
                                                     "doc": "grip of the speed-cap profile"})
    cap_scale: float = field(default=1.05, metadata={"unit": "-", "gt": 0.0, "max": 3.0,
                                                     "doc": "v_cap = cap_scale * friction-limited profile"})
    soft_margin: float | None = field(default=None, metadata={"unit": "m", "min": 0.0,
                                                              "doc": "edge distance where the boundary term starts; "
                                                                     "default crash_margin + 0.5 width"})
    crash_margin: float | None = field(default=None, metadata={"unit": "m", "min": 0.0,
                                                               "doc": "CoG-to-edge distance counted as a crash; "
                                                                      "default 0.5 width + 0.1 width"})
    use_raceline: bool = field(default=True, metadata={"doc": "speed cap and line term from the track's raceline; "
                                                              "the factory attaches the cached min-time line of "
                                                              "the car when the track has none"})
    raceline_speed: bool = field(default=False, metadata={"doc": "v_cap = cap_scale * the raceline's own speed "
                                                                 "profile (vx) when it has one, instead of the "
                                                                 "friction-limited profile of its curvature"})
    beta_max: float = field(default=0.0, metadata={"unit": "rad", "min": 0.0, "max": 1.5,
                                                   "doc": "sideslip |atan(v_y / v_x)| counted as a crash (a spin); "
                                                          "0 = off"})
    yaw_limit: float = field(default=0.0, metadata={"unit": "-", "min": 0.0,
                                                    "doc": "|r| v_x beyond yaw_limit * g * min(D_f, D_r) counts as "
                                                           "a crash (a yaw rate the tyres cannot hold); 0 = off"})
    online_grip: bool = field(default=True, metadata={
        "doc": "estimate the grip while racing (racing.control.grip: a bank of the model at grip scales replays "
               "the measured run) and plan with it: the model's D_f, D_r, mu times the estimate, the speed cap at "
               "the lower end of its band instead of the car file's grip_margin once it is informed (on by "
               "default: on the default plant it kept MPPI on the track in 3 of 8 perturbed races that left it "
               "without, docs/results.md 2026-12-06)"})
    state_filter: bool = field(default=True, metadata={
        "doc": "plan from a filtered state (racing.control.observer: the model's prediction from the last estimate "
               "under the command sent, corrected by gains that follow the measurement noise it measures: near 1 "
               "without noise); the online estimators still replay the raw measurements"})
    online_steer: bool = field(default=True, metadata={
        "doc": "identify the car's steering chain (dead time, lag, gain, rate limit) from the commanded and the "
               "measured steering angle while racing (racing.control.steering) and lead, scale and limit the "
               "steering with it where it differs from the car file; off for a car that does not measure its "
               "steering angle"})
    accel_feedback: bool = field(default=True, metadata={
        "doc": "observe what the car's own speed loop adds to the planned acceleration (a PI integrator, a gain "
               "error, drag) from the measured speed and take it off the command (racing.control.speedloop)"})
    dead_time: bool = field(default=False, metadata={
        "doc": "plan from the state carried over the car's actuation dead time with the commands already sent "
               "(racing.control.latency: the dead time online_steer identifies, the car file's steer_delay until "
               "then, or without online_steer); the steering lead then counts from the instant the command acts. "
               "Off by default for MPPI: on the foreign-car bench it took two fitted cars that race clean without "
               "it off the track (cells 2 and 3, their models' I_z 88 and 110 % off; docs/results.md 2026-12-07); "
               "under --noise 1 --delay 0.02 it gained lab_loop 2.4 points (one seed)"})
    warmup: bool = field(default=True, metadata={"doc": "run solves on a dummy state at construction (numba "
                                                        "cache load, thread pool) so the first act() is fast"})
    steer_lead: float | None = field(default=None, metadata={"unit": "s", "min": 0.0,
                                                             "doc": "steering command = plan at t + lead; "
                                                                    "default steer_tau + steer_delay + half a period"})
    seed: int = 0
    record_samples: int = field(default=256, metadata={"min": 0, "doc": "rollouts kept for diagnostics"})
    cost: CostWeights = CostWeights()

    def __post_init__(self):
        cfg.validate(self)  # types, ranges and choices, as a YAML file is checked
        if self.num_samples <= 0:
            raise ValueError(f"num_samples (K) must be > 0, got {self.num_samples}")
        if self.num_samples > MAX_SAMPLES:
            raise ValueError(f"num_samples (K) = {self.num_samples} exceeds the maximum {MAX_SAMPLES}")
        if self.horizon <= 0:
            raise ValueError(f"horizon (T) must be > 0, got {self.horizon}")
        if self.horizon > MAX_HORIZON:
            raise ValueError(f"horizon (T) = {self.horizon} is too long for the buffers (max {MAX_HORIZON})")
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be > 0 s, got {self.dt}")
        if self.substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {self.substeps}")
        if not (math.isfinite(self.lambda_) and self.lambda_ > 0):
            raise ValueError(f"lambda_ (temperature) must be > 0, got {self.lambda_}")
        for name in ("sigma_steer_rate", "sigma_accel"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be >= 0, got {v}")
        if self.smoothing_window > 1:
            if self.smoothing_window % 2 == 0:
                raise ValueError(f"smoothing_window must be odd, got {self.smoothing_window}")
            if self.smoothing_order >= self.smoothing_window:
                raise ValueError(f"smoothing_order ({self.smoothing_order}) must be < smoothing_window "
                                  f"({self.smoothing_window})")
        if not (math.isfinite(self.ess_target) and 0.0 <= self.ess_target <= self.num_samples):
            raise ValueError(f"ess_target must be in [0, num_samples], got {self.ess_target}")

    def replace(self, **changes) -> "MPPIConfig":
        return cfg.replace_from(self, changes, source="MPPIConfig overrides")


def config_dir() -> Path:
    return Path(__file__).resolve().parent


def tuning_path(tuning: str) -> Path:
    """The MPPI YAML a car's ``tuning`` names: a path (``*.yaml``) as given, else ``<tuning>.yaml`` here.
    ConfigError naming the known tunings when it does not exist."""
    p = Path(tuning)
    if not tuning.endswith((".yaml", ".yml")):
        p = config_dir() / f"{tuning}.yaml"
    if not p.is_file():
        known = sorted(q.stem for q in config_dir().glob("*.yaml"))
        raise cfg.ConfigError(f"tuning {tuning!r}: no MPPI settings file {p} (known tunings: {', '.join(known)}; "
                              f"or give a path to a YAML file)")
    return p


def derived_config(params) -> MPPIConfig:
    """Settings derived from a car's parameters, for a car that names no tuning (a fitted car, a new one): the
    full-size tuning's choices (``gt_car.yaml``) in the car's own scale.

    Horizon: T = 50 steps covering ``H = clip(0.45 v_max / (mu g), 1.5 s, 2.5 s)`` (long enough to brake from
    the car's top speed to a stop at about twice its grip - the speed cap is the value function beyond it), so
    ``dt = H / T``. Noise: AR(1)-correlated (0.95), ``sigma = (0.05 steer_rate_max, 0.19 accel_max)``. The
    car's min-time line when one is cached, its speed profile as the reference speed (``raceline_speed``), 95 %
    of the grip in the speed cap; a sideslip beyond 0.13 rad or a yaw rate beyond 1.6 g D / v counts as a spin;
    slip angles past the tyre's force peak are penalised (``tyre_slip`` 30: the fitted tyre is known only up to
    the slip the logs reached). Margins from the car's width (:func:`resolve`).
    """
    T = 50
    return MPPIConfig(horizon=T, dt=round(planning_horizon_s(params) / T, 4), alpha=0.98, noise_correlation=0.95,
                      sigma_steer_rate=0.05 * params.steer_rate_max, sigma_accel=0.19 * params.accel_max,
                      grip_scale=0.95, cap_scale=1.0, use_raceline=True, raceline_speed=True, beta_max=0.13,
                      yaw_limit=1.6, cost=CostWeights(progress=3.0, line=0.5, speed_track=1.0, tyre_slip=30.0))


def config_for(params, config_path: str | Path | None = None) -> tuple[MPPIConfig, str]:
    """``(config, source)``: ``config_path`` when given, else the car's ``tuning``, else :func:`derived_config`;
    ``source`` says which (a file path, or ``derived from the parameters of <car>``)."""
    if isinstance(config_path, MPPIConfig):  # settings resolved already (the race assembly): nothing to read
        return config_path, "given"
    if config_path is not None:
        return cfg.load(MPPIConfig, config_path), str(Path(config_path))
    tuning = getattr(params, "tuning", None)
    if tuning:
        p = tuning_path(tuning)
        return cfg.load(MPPIConfig, p), str(p)
    return derived_config(params), f"derived from the parameters of {params.name}"


def load_config(path: str | Path) -> MPPIConfig:
    """Read an MPPI config YAML strictly."""
    return cfg.load(MPPIConfig, path)


@dataclass(frozen=True)
class Resolved:
    """Derived numbers of a config for one car (no None left)."""

    sigma: tuple[float, float]
    soft_margin: float
    crash_margin: float
    steer_lead: float | None


def resolve(conf: MPPIConfig, params) -> Resolved:
    """Fill the ``None`` fields from the car parameters (scale-aware defaults)."""
    s_rate = conf.sigma_steer_rate if conf.sigma_steer_rate is not None else 0.5 * params.steer_rate_max
    s_acc = conf.sigma_accel if conf.sigma_accel is not None else 0.4 * params.accel_max
    soft, crash = margins(conf.soft_margin, conf.crash_margin, params)
    return Resolved(sigma=(float(s_rate), float(s_acc)), soft_margin=soft, crash_margin=crash,
                    steer_lead=conf.steer_lead)


def as_dict(conf: MPPIConfig) -> dict:
    return cfg.to_dict(conf)


__all__ = ["CostWeights", "MPPIConfig", "MAX_HORIZON", "Resolved", "as_dict", "config_for", "derived_config",
           "load_config", "resolve", "tuning_path"]
