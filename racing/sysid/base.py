"""The base car of a fit: which car the log is from, and whether the log is possible for it.

``racing fit`` starts from a base car (start values of the fitted parameters, fixed values of the
rest). :func:`resolve_base` takes ``--car`` when given, else the ``# car:`` header of the logs (the
project's CSV logs carry it; a column map may name it); with neither it is an error, because a
silent default (f1tenth, 3.74 kg) fitted to a full-size car's log returns nonsense.

:func:`check_scale` refuses a base car whose scale does not match the log: the figures it checks
are ones no tuning of the fitted parameters can fix (the fit never changes mass, wheelbase or the
limits), each with a generous margin so that a car driven at its limits passes:

* speed: the 99.5th percentile of ``|v|`` above ``1.3 v_max + 1 m/s``;
* longitudinal acceleration: the 99th percentile of ``|dv_x/dt|`` (over 0.2 s) above
  ``2 max(accel_max, decel_max, mu g) + 2 m/s^2``;
* lateral acceleration: the 99th percentile of ``|v_x r|`` above ``2.5 max(D_f, D_r) g + 2 m/s^2``;
* path curvature vs steering (wheelbase): with the car rolling (``v_x > 1 m/s``) and steering
  (``|delta| > 0.02 rad``), the median of ``r L / (v_x tan delta)`` outside ``[1/3, 3]`` (measured angle,
  else the commanded one; understeer makes it somewhat below 1, not a factor of 3).
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
    if car:
        return load_params(car), "--car"
    named = sorted({lg.meta.get("car", "").strip() for lg in logs} - {""})
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


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else 0.0


def scale_figures(logs: list[DriveLog]) -> dict:
    """The log's peak figures that :func:`check_scale` compares with the car (SI units)."""
    sp, ax, ay, ratio_num = [], [], [], []
    for lg in logs:
        st = lg.state
        sp.append(np.hypot(st[:, 3], st[:, 4]))
        dt = float(np.median(np.diff(lg.t))) if lg.t.size > 1 else 1.0
        k = max(1, int(round(0.2 / dt)))
        if st.shape[0] > k:
            ax.append(np.abs(st[k:, 3] - st[:-k, 3]) / (lg.t[k:] - lg.t[:-k]))
        ay.append(np.abs(st[:, 3] * st[:, 5]))
        steer = st[:, 6] if lg.meta.get("steer_source", "measured") != "command" else lg.command[:, 0]
        ok = (st[:, 3] > 1.0) & (np.abs(steer) > 0.02)
        ratio_num.append(st[ok, 5] / (st[ok, 3] * np.tan(steer[ok])))
    cat = lambda a: np.concatenate(a) if a else np.zeros(0)  # noqa: E731
    r = cat(ratio_num)
    return {"speed_p995": _pct(cat(sp), 99.5), "accel_p99": _pct(cat(ax), 99.0), "lat_accel_p99": _pct(cat(ay), 99.0),
            "curvature_per_tan_steer": float(np.median(r)) if r.size >= 20 else float("nan"),
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
        problems.append(f"the log's lateral acceleration v_x r reaches {f['lat_accel_p99']:.1f} m/s^2; the car's tyres "
                        f"hold about {ay_lim:.1f} m/s^2")
    ratio = f["curvature_per_tan_steer"] * car.wheelbase
    if math.isfinite(ratio) and not (1.0 / 3.0 <= ratio <= 3.0):
        problems.append(f"the log's yaw rate per steering angle, r / (v_x tan delta) = "
                        f"{f['curvature_per_tan_steer']:.3g} 1/m, fits a wheelbase of about "
                        f"{1.0 / f['curvature_per_tan_steer']:.2f} m; the car's is {car.wheelbase:.2f} m")
    if problems:
        raise ConfigError(f"{src}: the log does not fit the scale of the {who}: " + "; ".join(problems) +
                          ". Pass the right car with --car NAME|PATH")
    return f
