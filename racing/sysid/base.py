"""The base car of a fit: which car the log is from, and whether the log is possible for it.

``racing fit`` starts from a base car (start values of the fitted parameters, fixed values of the
rest). :func:`resolve_base` takes ``--car`` when given, else the ``# car:`` header of the logs (the
project's CSV logs carry it; a column map may name it); with neither it is an error, because a
silent default (f1tenth, 3.74 kg) fitted to a full-size car's log returns nonsense. A ``--car`` that is
another car than the one the header names (a known car whose wheelbase differs by more than 1.5x or
whose mass by more than 3x) is an error too; a variant of it (a fitted car, another name) is taken.

:func:`check_scale` refuses a base car whose scale does not match the log: the figures it checks
are ones no tuning of the fitted parameters can fix (the fit never changes mass, wheelbase or the
limits), each with a generous margin so that a car driven at its limits passes:

* speed: the 99.5th percentile of ``|v|`` above ``1.3 v_max + 1 m/s``;
* longitudinal acceleration: the 99th percentile of ``|dv_x/dt|`` (over 0.2 s) above
  ``2 max(accel_max, decel_max, mu g) + 2 m/s^2``;
* lateral acceleration: the 99th percentile of the true lateral acceleration ``|dv_y/dt + v_x r|`` (both
  over 0.2 s) above ``2.5 max(D_f, D_r) g + 2 m/s^2`` (``v_x r`` alone is not the lateral acceleration
  when the car slides: its yaw rate then swings while the path does not);
* path curvature vs steering (wheelbase): the tyres can only make the path wider than the kinematic
  one (``r / v_x = tan(delta) / L``: understeer, a saturated front axle), so the *tightest* curvature per
  steering, the 95th percentile of ``r / (v_x tan delta)``, estimates ``1 / L``; it is taken over the
  stretches without sliding (``|beta| = |atan(v_y / v_x)| < 0.05 rad``), rolling (``v_x > 1 m/s``), steering
  (``|delta| > 0.02 rad``) and with the steering steady (within 0.02 rad of its 0.2 s mean), from at least
  20 samples (measured angle, else the commanded one). The check fails when ``L_log / L`` is outside
  ``[1/3, 3]`` (a sliding, understeering car stays within 1.5x: MPPI on f1tenth gives 1.3).
"""
from __future__ import annotations

import math

import numpy as np

from racing.config import ConfigError
from racing.logs import DriveLog
from racing.models.params import G, VehicleParams, load_params


def resolve_base(car: str | None, logs: list[DriveLog]) -> tuple[VehicleParams, str]:
    """(base car, where it came from): ``car`` (name or YAML path) if given, else the logs' ``car`` header.

    Raises
    ------
    ConfigError : no ``car`` and no header, logs naming different cars, or an unknown car name.
    """
    named = sorted({lg.meta.get("car", "").strip() for lg in logs} - {""})
    if car:
        base = load_params(car)
        for other in named:
            _check_same_car(base, other, logs)
        return base, "--car"
    if not named:
        srcs = ", ".join(lg.source for lg in logs)
        raise ConfigError(f"{srcs}: no '# car:' header in the log(s) and no --car given; name the base car "
                          f"with --car NAME|PATH (start values and fixed values of the fit)")
    if len(named) > 1:
        raise ConfigError(f"the logs name different cars ({', '.join(named)}); pass --car to choose the base car")
    try:
        return load_params(named[0]), "log header '# car: " + named[0] + "'"
    except ConfigError as exc:
        raise ConfigError(f"{logs[0].source}: header '# car: {named[0]}': {exc}; pass --car") from exc


def _check_same_car(base: VehicleParams, header: str, logs: list[DriveLog]) -> None:
    """ConfigError when the log header names a known car that is plainly not ``base`` (wheelbase off by more than
    1.5x or mass by more than 3x); a header naming no known car (a fitted car, a column map's name) passes."""
    if header == base.name:
        return
    try:
        raced = load_params(header)
    except (ConfigError, OSError):
        return
    wb, m = base.wheelbase / raced.wheelbase, base.mass / raced.mass
    if not (1 / 1.5 <= wb <= 1.5 and 1 / 3 <= m <= 3):
        src = ", ".join(lg.source for lg in logs if lg.meta.get("car", "").strip() == header)
        raise ConfigError(f"{src}: the log header says it was driven by car {header!r} (wheelbase "
                          f"{raced.wheelbase:.2f} m, mass {raced.mass:g} kg), but --car {base.name!r} is another car "
                          f"(wheelbase {base.wheelbase:.2f} m, mass {base.mass:g} kg); expected --car {header} or a "
                          f"variant of it (wheelbase within 1.5x, mass within 3x)")


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else 0.0


#: the largest body slip angle |beta| [rad] of the samples the wheelbase check reads (no sliding)
BETA_MAX = 0.05


def _window_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Centred moving mean of ``x`` over ``k`` samples (shorter at the ends)."""
    if k <= 1 or x.size == 0:
        return x
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(x.size)
    lo, hi = np.maximum(0, i - k // 2), np.minimum(x.size, i + k - k // 2)
    return (c[hi] - c[lo]) / (hi - lo)


def _figures_of(lg: DriveLog) -> tuple:
    """(speed, |a_x| over 0.2 s, |a_y| true over 0.2 s, curvature per tan steer of the no-slide samples) of one log."""
    st = lg.state
    dt = float(np.median(np.diff(lg.t))) if lg.t.size > 1 else 1.0
    k = max(1, int(round(0.2 / dt)))
    ax, ay = np.zeros(0), np.zeros(0)
    if st.shape[0] > k:
        span = lg.t[k:] - lg.t[:-k]
        ax = np.abs(st[k:, 3] - st[:-k, 3]) / span
        c = np.concatenate([[0.0], np.cumsum(st[:, 3] * st[:, 5])])
        vxr = (c[k + 1:] - c[:-k - 1]) / (k + 1)  # mean of v_x r over the same samples i .. i + k
        ay = np.abs((st[k:, 4] - st[:-k, 4]) / span + vxr)
    steer = st[:, 6] if lg.meta.get("steer_source", "measured") != "command" else lg.command[:, 0]
    vx = st[:, 3]
    beta = np.arctan2(st[:, 4], np.maximum(vx, 1e-6))
    steady = np.abs(steer - _window_mean(steer, k)) < 0.02
    ok = (vx > 1.0) & (np.abs(steer) > 0.02) & (np.abs(beta) < BETA_MAX) & steady
    return np.hypot(st[:, 3], st[:, 4]), ax, ay, st[ok, 5] / (vx[ok] * np.tan(steer[ok]))


def scale_figures(logs: list[DriveLog]) -> dict:
    """The log's peak figures that :func:`check_scale` compares with the car (SI units; module doc):
    ``speed_p995`` [m/s], ``accel_p99`` and ``lat_accel_p99`` [m/s^2], ``curvature_per_tan_steer`` [1/m] (the 95th
    percentile over the no-slide samples, NaN with fewer than 20) and ``n_steer_samples``."""
    parts = [_figures_of(lg) for lg in logs]
    cat = lambda j: np.concatenate([p[j] for p in parts]) if parts else np.zeros(0)  # noqa: E731
    r = cat(3)
    return {"speed_p995": _pct(cat(0), 99.5), "accel_p99": _pct(cat(1), 99.0), "lat_accel_p99": _pct(cat(2), 99.0),
            "curvature_per_tan_steer": _pct(r, 95.0) if r.size >= 20 else float("nan"),
            "n_steer_samples": int(r.size)}


def check_scale(logs: list[DriveLog], car: VehicleParams, origin: str = "") -> dict:
    """Raise :class:`ConfigError` when the logs are impossible for ``car`` (module doc); return the figures."""
    f = scale_figures(logs)
    src = ", ".join(lg.source for lg in logs)
    who = f"base car {car.name!r}" + (f" ({origin})" if origin else "")
    problems = []
    if f["speed_p995"] > 1.3 * car.v_max + 1.0:
        problems.append(f"the log reaches {f['speed_p995']:.1f} m/s; the car's top speed v_max is {car.v_max:g} m/s")
    a_lim = max(car.accel_max, car.decel_max, car.mu * G)
    if f["accel_p99"] > 2.0 * a_lim + 2.0:
        problems.append(f"the log's longitudinal acceleration reaches {f['accel_p99']:.1f} m/s^2; the car's limit is "
                        f"{a_lim:.1f} m/s^2")
    ay_lim = max(car.D_f, car.D_r) * G
    if f["lat_accel_p99"] > 2.5 * ay_lim + 2.0:
        problems.append(f"the log's lateral acceleration dv_y/dt + v_x r reaches {f['lat_accel_p99']:.1f} m/s^2; the "
                        f"car's tyres "
                        f"hold about {ay_lim:.1f} m/s^2")
    ratio = f["curvature_per_tan_steer"] * car.wheelbase
    if math.isfinite(ratio) and not (1.0 / 3.0 <= ratio <= 3.0):
        problems.append(f"the log's tightest path curvature per steering angle without sliding, r / (v_x tan "
                        f"delta) = {f['curvature_per_tan_steer']:.3g} 1/m, fits a wheelbase of about "
                        f"{1.0 / f['curvature_per_tan_steer']:.2f} m; the car's is {car.wheelbase:.2f} m")
    if problems:
        raise ConfigError(f"{src}: the log does not fit the scale of the {who}: " + "; ".join(problems) +
                          ". Pass the right car with --car NAME|PATH")
    return f
