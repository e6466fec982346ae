"""Foreign CSV logs through a column map (YAML with units): real-car logs read as they are.

A column map names, for each channel of :class:`racing.logs.DriveLog`, the column of the foreign
file and its unit; the reader converts to SI (and to the project's units of the pedal channels).
Example (the AV-21 log of ``../shared/data/logs/av21``; shipped as ``racing/sysid/columns/av21.yaml``,
so ``--columns av21`` finds it)::

    delimiter: ","
    header_prefix: "# "          # the header line starts with this (stripped before splitting)
    car: av21                    # optional: the base car (as a log's '# car:' header)
    reference_point: [0.0, 0.0]  # optional: where the velocities are measured, from the CoG [m] (x fwd, y left)
    columns:
      t:        {column: "time(s)", unit: s}
      x:        {column: "x(m)", unit: m}
      ...
      steer:    {column: "delta(rad)", unit: rad}          # measured road-wheel angle (optional)
      throttle: {column: "throttle_ped_cmd(%)", unit: "%"}
      brake:    {column: "brake_ped_cmd(kPa)", unit: kPa}
      wheel_fl: {column: "wheel_fl(kmph)", unit: km/h}
      imu_ax:   {column: "ax(m/s^2)", unit: m/s^2}

Channels: ``t, x, y, yaw, vx, vy, yaw_rate`` are required; ``steer`` (measured angle; without it
the commanded angle stands in and the log says ``steer_source: command``), ``cmd_steer``,
``cmd_speed``, ``cmd_accel`` (speed-loop cars) or ``throttle`` + ``brake`` (pedal cars: one of the
two longitudinal interfaces is required), ``imu_ax, imu_ay, imu_wz`` (all three, or ``imu_wz`` alone
standing in for a missing ``yaw_rate``), ``wheel_fl, wheel_fr, wheel_rl, wheel_rr``. Units (each
converted to SI): time s, ms, us, ns; length m, cm, mm, km; angle rad, deg; speed m/s, km/h, mph;
angular rate rad/s, deg/s; acceleration m/s^2, g; pedal %, fraction (0-1); pressure kPa, Pa, bar,
MPa, psi. A time column in epoch seconds is shifted to start at 0 (the epoch goes to the meta).

**Reference point.** Many estimators report the velocity of a point away from the CoG (the IMU or
the rear axle). With ``reference_point: [d_x, d_y]`` [m] (that point relative to the CoG, body
frame) the reader moves position and velocities to the CoG, ``v_cog = v_ref - r x d``:
``v_x += r d_y``, ``v_y -= r d_x``, ``p_cog = p_ref - R(yaw) d``.

**Velocity-frame misalignment.** ``velocity_yaw_offset: RAD`` (or ``auto``) rotates the logged body
velocities by ``-RAD`` before anything else: an estimator whose body frame is yawed against the car's
axis reports ``v_y = v_x sin(eps)`` on a straight (0.58 deg gives 0.3 m/s at 30 m/s, which the model
cannot explain). ``auto`` estimates ``eps = atan(median(v_y / v_x))`` over straight-line samples
(``v_x > 5 m/s``, ``|r| < 0.02 rad/s``, and ``|delta| < 0.005 rad`` when the angle is measured), where a
car's CoG has ``v_y ~ 0``; the value used goes to the log's meta.

Errors name the file, the line and the column (missing columns list the columns present).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from racing.config import ConfigError, load_yaml
from racing.logs import DriveLog, LogError, time_step_problem

UNITS = {
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
    "length": {"m": 1.0, "cm": 0.01, "mm": 1e-3, "km": 1e3},
    "angle": {"rad": 1.0, "deg": math.pi / 180.0},
    "speed": {"m/s": 1.0, "km/h": 1.0 / 3.6, "kmph": 1.0 / 3.6, "mph": 0.44704},
    "rate": {"rad/s": 1.0, "deg/s": math.pi / 180.0},
    "accel": {"m/s^2": 1.0, "m/s2": 1.0, "g": 9.81},
    "pedal": {"%": 1.0, "fraction": 100.0},
    "pressure": {"kPa": 1.0, "Pa": 1e-3, "bar": 100.0, "MPa": 1e3, "psi": 6.894757},
}
#: channel -> unit kind
CHANNELS = {
    "t": "time", "x": "length", "y": "length", "yaw": "angle", "vx": "speed", "vy": "speed", "yaw_rate": "rate",
    "steer": "angle", "cmd_steer": "angle", "cmd_speed": "speed", "cmd_accel": "accel",
    "throttle": "pedal", "brake": "pressure",
    "imu_ax": "accel", "imu_ay": "accel", "imu_wz": "rate",
    "wheel_fl": "speed", "wheel_fr": "speed", "wheel_rl": "speed", "wheel_rr": "speed",
}
REQUIRED = ("t", "x", "y", "yaw", "vx", "vy")
KEYS = ("delimiter", "header_prefix", "car", "reference_point", "velocity_yaw_offset", "columns", "description")


@dataclass(frozen=True)
class ColumnMap:
    """channel -> (column name, SI factor); see the module doc."""

    columns: dict
    delimiter: str = ","
    header_prefix: str = ""
    car: str | None = None
    reference_point: tuple = (0.0, 0.0)
    velocity_yaw_offset: float | str = 0.0
    source: str = "<column map>"
    units: dict = field(default_factory=dict)

    def has(self, channel: str) -> bool:
        return channel in self.columns


def builtin_maps() -> list[str]:
    d = Path(__file__).parent / "columns"
    return sorted(p.stem for p in d.glob("*.yaml"))


def load_column_map(name_or_path) -> ColumnMap:
    """Read a column map YAML (a path, or the name of one shipped in ``racing/sysid/columns/``).

    Raises
    ------
    ConfigError : unknown keys or channels, unknown units (the known ones are listed), a missing required channel.
    """
    s = str(name_or_path)
    path = Path(s)
    if not path.is_file():
        cand = Path(__file__).parent / "columns" / f"{s}.yaml"
        if not cand.is_file():
            raise ConfigError(f"{s}: column map not found (a YAML path, or one of {', '.join(builtin_maps())})")
        path = cand
    raw = load_yaml(path)
    bad = [k for k in raw if k not in KEYS]
    if bad:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(bad)}; known: {', '.join(KEYS)}")
    cols = raw.get("columns")
    if not isinstance(cols, dict) or not cols:
        raise ConfigError(f"{path}: 'columns' must map channels to {{column: NAME, unit: UNIT}}")
    out, units = {}, {}
    for ch, spec in cols.items():
        where = f"{path}: columns.{ch}"
        if ch not in CHANNELS:
            raise ConfigError(f"{where}: unknown channel; known: {', '.join(CHANNELS)}")
        if not isinstance(spec, dict) or set(spec) - {"column", "unit"} or "column" not in spec:
            raise ConfigError(f"{where}: expected {{column: NAME, unit: UNIT}}, got {spec!r}")
        kind = CHANNELS[ch]
        unit = str(spec.get("unit", next(iter(UNITS[kind]))))
        if unit not in UNITS[kind]:
            raise ConfigError(f"{where}: unit {unit!r} is not a {kind} unit; expected one of {', '.join(UNITS[kind])}")
        out[ch] = (str(spec["column"]), UNITS[kind][unit])
        units[ch] = unit
    missing = [c for c in REQUIRED if c not in out]
    if "yaw_rate" not in out and "imu_wz" not in out:
        missing.append("yaw_rate (or imu_wz)")
    if missing:
        raise ConfigError(f"{path}: columns: missing required channel(s) {', '.join(missing)}")
    speed = all(c in out for c in ("cmd_speed",))
    pedals = all(c in out for c in ("throttle", "brake"))
    if not (speed or pedals):
        raise ConfigError(f"{path}: columns: need a longitudinal input: cmd_speed (and optionally cmd_accel) or "
                          f"throttle and brake")
    if "steer" not in out and "cmd_steer" not in out:
        raise ConfigError(f"{path}: columns: need steer (measured angle) or cmd_steer (commanded angle)")
    ref = raw.get("reference_point", [0.0, 0.0])
    if not (isinstance(ref, (list, tuple)) and len(ref) == 2 and all(isinstance(v, (int, float)) for v in ref)):
        raise ConfigError(f"{path}: reference_point: expected [d_x, d_y] in m, got {ref!r}")
    yo = raw.get("velocity_yaw_offset", 0.0)
    if not (yo == "auto" or (isinstance(yo, (int, float)) and not isinstance(yo, bool) and abs(yo) < 0.5)):
        raise ConfigError(f"{path}: velocity_yaw_offset: expected 'auto' or an angle in rad (|angle| < 0.5), got {yo!r}")
    return ColumnMap(columns=out, delimiter=str(raw.get("delimiter", ",")), header_prefix=str(raw.get("header_prefix", "")),
                     car=raw.get("car"), reference_point=(float(ref[0]), float(ref[1])),
                     velocity_yaw_offset=yo if yo == "auto" else float(yo), source=str(path), units=units)


def velocity_yaw_offset(state: np.ndarray, measured_steer: bool) -> float:
    """``atan(median(v_y / v_x))`` over straight-line samples (module doc); 0 with fewer than 50 of them."""
    ok = (state[:, 3] > 5.0) & (np.abs(state[:, 5]) < 0.02)
    if measured_steer:
        ok &= np.abs(state[:, 6]) < 0.005
    if ok.sum() < 50:
        return 0.0
    return float(np.arctan(np.median(state[ok, 4] / state[ok, 3])))


def rotate_velocities(state: np.ndarray, eps: float) -> np.ndarray:
    """Body velocities rotated by ``-eps`` [rad] (a copy)."""
    out = state.copy()
    c, s = math.cos(eps), math.sin(eps)
    out[:, 3] = c * state[:, 3] + s * state[:, 4]
    out[:, 4] = -s * state[:, 3] + c * state[:, 4]
    return out


def move_to_cog(state: np.ndarray, d: tuple) -> np.ndarray:
    """States ``[N, 7]`` measured at the reference point ``d = (d_x, d_y)`` [m] (body frame, from the CoG) moved to
    the CoG (module doc); a copy."""
    dx, dy = d
    out = state.copy()
    if dx == 0.0 and dy == 0.0:
        return out
    c, s, r = np.cos(state[:, 2]), np.sin(state[:, 2]), state[:, 5]
    out[:, 0] -= c * dx - s * dy
    out[:, 1] -= s * dx + c * dy
    out[:, 3] += r * dy
    out[:, 4] -= r * dx
    return out


def read_mapped_csv(path, cmap: ColumnMap, reference_point: tuple | None = None) -> DriveLog:
    """Read a foreign CSV with ``cmap`` into a validated :class:`DriveLog` (SI units, CoG velocities).

    Raises
    ------
    LogError : file not found, no header, a mapped column missing (the columns present are listed), a row with the
        wrong number of values or a non-number (file line named), NaN, time not increasing (file line named).
    """
    path = Path(path)
    if not path.is_file():
        raise LogError(f"{path}: file not found")
    lines = path.read_text(encoding="utf-8").splitlines()
    hp = cmap.header_prefix
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines):
        raise LogError(f"{path}: empty file")
    head = lines[i]
    if hp and not head.startswith(hp):
        raise LogError(f"{path}: line {i + 1}: expected a header line starting with {hp!r} (column map {cmap.source})")
    header = [c.strip() for c in head[len(hp):].split(cmap.delimiter)]
    missing = [f"{ch} -> {col!r}" for ch, (col, _) in cmap.columns.items() if col not in header]
    if missing:
        raise LogError(f"{path}: line {i + 1}: column(s) of the map {cmap.source} not in the file: "
                       f"{', '.join(missing)}; columns present: {', '.join(header)}")
    want = {ch: header.index(col) for ch, (col, _) in cmap.columns.items()}
    body = [ln for ln in lines[i + 1:]]
    n = len(body)
    while n and not body[n - 1].strip():
        n -= 1
    if n < 2:
        raise LogError(f"{path}: {n} data row(s); need at least 2")
    data = np.empty((n, len(want)))
    idx = list(want.values())
    for r in range(n):
        vals = body[r].split(cmap.delimiter)
        if len(vals) != len(header):
            raise LogError(f"{path}: line {i + 2 + r}: {len(vals)} values but the header names {len(header)} columns")
        for j, k in enumerate(idx):
            try:
                data[r, j] = float(vals[k])
            except ValueError:
                raise LogError(f"{path}: line {i + 2 + r}: column {header[k]!r}: {vals[k].strip()!r} is not a "
                               f"number") from None
    col = {ch: data[:, j] * cmap.columns[ch][1] for j, ch in enumerate(want)}
    line0 = i + 2
    # NaN and time order with file lines, before any conversion mixes rows
    bad = ~np.isfinite(data)
    if bad.any():
        r, j = np.argwhere(bad)[0]
        ch = list(want)[j]
        raise LogError(f"{path}: line {line0 + r}: column {cmap.columns[ch][0]!r} ({ch}) is {data[r, j]}; expected a "
                       f"finite number")
    t = col["t"]
    bad = time_step_problem(t)
    if bad is not None:
        r, kind = bad
        raise LogError(f"{path}: line {line0 + r}: {kind} timestamp {t[r]!r} after {t[r - 1]!r}; expected "
                       f"strictly increasing time")
    meta = {"source": "column map", "column_map": cmap.source, "t0": f"{t[0]:.9f}"}
    if cmap.car:
        meta["car"] = str(cmap.car)
    r_col = col["yaw_rate"] if "yaw_rate" in col else col["imu_wz"]
    measured = "steer" in col
    steer = col["steer"] if measured else col["cmd_steer"]
    meta["steer_source"] = "measured" if measured else "command"
    if "cmd_steer" not in col:
        meta["steer_command"] = "none"
    cmd_steer = col.get("cmd_steer", steer)
    yaw = (col["yaw"] + np.pi) % (2 * np.pi) - np.pi
    state = np.column_stack([col["x"], col["y"], yaw, col["vx"], col["vy"], r_col, steer])
    eps = cmap.velocity_yaw_offset
    if eps == "auto":
        eps = velocity_yaw_offset(state, measured)
    if eps:
        state = rotate_velocities(state, eps)
        meta["velocity_yaw_offset"] = f"{eps:.6g}"
    ref = cmap.reference_point if reference_point is None else tuple(reference_point)
    state = move_to_cog(state, ref)
    if ref != (0.0, 0.0):
        meta["reference_point"] = f"{ref[0]:g},{ref[1]:g}"
    pedals = None
    if "throttle" in col and "brake" in col:
        pedals = np.column_stack([col["throttle"], col["brake"]])
    if "cmd_speed" in col:
        cmd = np.column_stack([cmd_steer, col["cmd_speed"], col.get("cmd_accel", np.zeros(n))])
    else:
        cmd = np.column_stack([cmd_steer, np.zeros(n), np.zeros(n)])
        meta["longitudinal"] = "pedals"
    imu = None
    if all(c in col for c in ("imu_ax", "imu_ay", "imu_wz")):
        imu = np.column_stack([col["imu_ax"], col["imu_ay"], col["imu_wz"]])
    wheels = None
    if all(c in col for c in ("wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr")):
        wheels = np.column_stack([col[c] for c in ("wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr")])
    return DriveLog(t - t[0], state, cmd, imu, meta=meta, source=str(path), pedals=pedals, wheels=wheels,
                    line0=line0).validate()
