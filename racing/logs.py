"""The project's own driving-log format: a CSV written line by line and flushed as it goes.

Both the simulator (``racing race --out``) and the vehicle runtime (``racing drive``) write it;
system identification (``racing fit``) reads it. Layout::

    # racing-log v1
    # car: f1tenth            (free "# key: value" metadata lines)
    t,x,y,yaw,vx,vy,yaw_rate,steer,cmd_steer,cmd_speed,cmd_accel[,imu_ax,imu_ay,imu_wz]
    0.000000,0.0,...

Columns (SI): ``t`` [s] monotonic time; state (see :mod:`racing.models.dynamic`): ``x, y`` [m],
``yaw`` [rad], ``vx, vy`` [m/s] body frame, ``yaw_rate`` [rad/s], ``steer`` [rad] measured road-wheel
angle; command: ``cmd_steer`` [rad], ``cmd_speed`` [m/s], ``cmd_accel`` [m/s^2] (feed-forward);
optional IMU: ``imu_ax, imu_ay`` [m/s^2] body frame, ``imu_wz`` [rad/s].

Optional channels of real cars: pedals ``throttle`` [%] (0-100 accelerator pedal command) and ``brake``
[kPa] (brake pressure command); with both present the speed command columns ``cmd_speed, cmd_accel``
may be left out (a pedal-driven car has none; they read as 0 and the meta says ``longitudinal:
pedals``). Wheel speeds ``wheel_fl, wheel_fr, wheel_rl, wheel_rr`` [m/s]. A log whose car has no
steering command may leave out ``cmd_steer`` when it measures ``steer`` (it reads as the measured
angle and the meta says ``steer_command: none``). Errors name the file line of a bad row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOG_MAGIC = "# racing-log v1"
STATE_COLUMNS = ("x", "y", "yaw", "vx", "vy", "yaw_rate", "steer")
COMMAND_COLUMNS = ("cmd_steer", "cmd_speed", "cmd_accel")
IMU_COLUMNS = ("imu_ax", "imu_ay", "imu_wz")
PEDAL_COLUMNS = ("throttle", "brake")
WHEEL_COLUMNS = ("wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr")
COLUMNS = ("t",) + STATE_COLUMNS + COMMAND_COLUMNS


class LogError(ValueError):
    """A log file is malformed; the message names the file, row/column and what was expected."""


def time_step_problem(t: np.ndarray) -> tuple[int, str] | None:
    """The first sample ``i`` whose time ``t[i]`` does not come after ``t[i - 1]``, with its kind
    (``"duplicate"`` or ``"non-monotonic"``), or None when ``t`` is strictly increasing."""
    d = np.diff(t)
    if not np.any(d <= 0):
        return None
    i = int(np.argmax(d <= 0))
    return i + 1, ("duplicate" if d[i] == 0 else "non-monotonic")


@dataclass
class DriveLog:
    """A driving log in memory.

    t : float64[N] [s], strictly increasing
    state : float64[N, 7]  (x, y, yaw, vx, vy, yaw_rate, steer)
    command : float64[N, 3] (cmd_steer [rad], cmd_speed [m/s], cmd_accel [m/s^2])
    imu : float64[N, 3] or None (imu_ax, imu_ay [m/s^2], imu_wz [rad/s])
    meta : dict of str -> str
    source : where it came from (for error messages)
    pedals : float64[N, 2] or None (throttle [%], brake pressure [kPa])
    wheels : float64[N, 4] or None (wheel speeds fl, fr, rl, rr [m/s])
    line0 : file line number of row 0 (errors then name file lines), None for logs not read from a file
    """

    t: np.ndarray
    state: np.ndarray
    command: np.ndarray
    imu: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    source: str = "<memory>"
    pedals: np.ndarray | None = None
    wheels: np.ndarray | None = None
    line0: int | None = None

    def _where(self, r: int) -> str:
        return f"line {self.line0 + r}" if self.line0 is not None else f"row {r}"

    def __post_init__(self):
        self.t = np.asarray(self.t, dtype=float)
        self.state = np.asarray(self.state, dtype=float)
        self.command = np.asarray(self.command, dtype=float)
        n = self.t.shape[0]
        if self.state.shape != (n, 7):
            raise LogError(f"{self.source}: state must have shape ({n}, 7), got {self.state.shape}")
        if self.command.shape != (n, 3):
            raise LogError(f"{self.source}: command must have shape ({n}, 3), got {self.command.shape}")
        if self.imu is not None:
            self.imu = np.asarray(self.imu, dtype=float)
            if self.imu.shape != (n, 3):
                raise LogError(f"{self.source}: imu must have shape ({n}, 3), got {self.imu.shape}")
        for name, k in (("pedals", 2), ("wheels", 4)):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v, dtype=float)
                if v.shape != (n, k):
                    raise LogError(f"{self.source}: {name} must have shape ({n}, {k}), got {v.shape}")
                setattr(self, name, v)

    @property
    def columns(self) -> tuple:
        """Column names of this log's CSV form."""
        return (COLUMNS + (IMU_COLUMNS if self.imu is not None else ()) + (PEDAL_COLUMNS if self.pedals is not None
                else ()) + (WHEEL_COLUMNS if self.wheels is not None else ()))

    def row_values(self, i: int) -> list:
        """The values of row ``i`` in :attr:`columns` order."""
        vals = [self.t[i], *self.state[i], *self.command[i]]
        for a in (self.imu, self.pedals, self.wheels):
            if a is not None:
                vals.extend(a[i])
        return vals
    @property
    def duration(self) -> float:
        return float(self.t[-1] - self.t[0]) if self.t.size else 0.0

    def validate(self) -> "DriveLog":
        """Raise :class:`LogError` on NaN values or non-increasing / duplicate timestamps."""
        cols = list(self.columns)
        data = [self.t[:, None], self.state, self.command] + [a for a in (self.imu, self.pedals, self.wheels)
                                                               if a is not None]
        arr = np.hstack(data)
        bad = ~np.isfinite(arr)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise LogError(f"{self.source}: {self._where(r)}: column {cols[c]} is {arr[r, c]}; expected a finite number")
        bad = time_step_problem(self.t)
        if bad is not None:
            i, kind = bad
            raise LogError(f"{self.source}: {self._where(i)}: {kind} timestamp t = {self.t[i]} after "
                           f"{self.t[i - 1]}; expected strictly increasing time")
        return self

    def slice(self, t0: float, t1: float) -> "DriveLog":
        """The part with t0 <= t < t1 [s]."""
        k = (self.t >= t0) & (self.t < t1)
        sub = lambda a: None if a is None else a[k]  # noqa: E731
        return DriveLog(self.t[k], self.state[k], self.command[k], sub(self.imu), dict(self.meta),
                        f"{self.source}[{t0}:{t1}]", sub(self.pedals), sub(self.wheels))

    def save(self, path: str | Path) -> None:
        """Write the log as CSV (see module docstring)."""
        with LogWriter(path, imu=self.imu is not None, meta=self.meta, pedals=self.pedals is not None,
                       wheels=self.wheels is not None) as w:
            for i in range(self.t.size):
                w.write_values(self.row_values(i))


class LogWriter:
    """Appends rows to a log CSV, flushing every row so nothing is lost on a crash."""

    def __init__(self, path: str | Path, imu: bool = False, meta: dict | None = None, pedals: bool = False,
                 wheels: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.imu = imu
        self.columns = (COLUMNS + (IMU_COLUMNS if imu else ()) + (PEDAL_COLUMNS if pedals else ()) +
                        (WHEEL_COLUMNS if wheels else ()))
        self._fh = self.path.open("w", encoding="utf-8", newline="")
        self._fh.write(LOG_MAGIC + "\n")
        for k, v in (meta or {}).items():
            self._fh.write(f"# {k}: {v}\n")
        self._fh.write(",".join(self.columns) + "\n")
        self._fh.flush()
        self.rows = 0

    def write(self, t: float, state, command, imu=None) -> None:
        vals = [t, *state, *command]
        if self.imu:
            if imu is None:
                raise LogError(f"{self.path}: this log has IMU columns; write() needs imu values")
            vals.extend(imu)
        self.write_values(vals)

    def write_values(self, vals) -> None:
        """Append one row of all :attr:`columns` (flushed)."""
        if len(vals) != len(self.columns):
            raise LogError(f"{self.path}: a row needs {len(self.columns)} values ({','.join(self.columns)}), "
                           f"got {len(vals)}")
        self._fh.write(",".join(f"{float(v):.9g}" for v in vals) + "\n")
        self._fh.flush()
        self.rows += 1

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_log(path: str | Path) -> DriveLog:
    """Read a log CSV strictly (header, column names, numbers, NaN, time order)."""
    path = Path(path)
    if not path.is_file():
        raise LogError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or lines[0].strip() != LOG_MAGIC:
        raise LogError(f"{path}: line 1: expected the header {LOG_MAGIC!r}; not a racing log")
    meta = {}
    i = 1
    while i < len(lines) and lines[i].startswith("#"):
        k, _, v = lines[i][1:].partition(":")
        meta[k.strip()] = v.strip()
        i += 1
    if i >= len(lines):
        raise LogError(f"{path}: no column header line")
    header = [c.strip() for c in lines[i].split(",")]
    has_pedals = all(c in header for c in PEDAL_COLUMNS)
    optional = set()
    if has_pedals:
        optional |= {"cmd_speed", "cmd_accel"}
    if "steer" in header:
        optional.add("cmd_steer")
    missing = [c for c in COLUMNS if c not in header and c not in optional]
    if missing:
        raise LogError(f"{path}: line {i + 1}: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}"
                       f" (cmd_speed, cmd_accel may be replaced by {','.join(PEDAL_COLUMNS)})")
    has_imu = all(c in header for c in IMU_COLUMNS)
    has_wheels = all(c in header for c in WHEEL_COLUMNS)
    body = lines[i + 1:]
    if not body:
        raise LogError(f"{path}: no data rows")
    data = np.empty((len(body), len(header)))
    for r, line in enumerate(body):
        vals = line.split(",")
        if len(vals) != len(header):
            raise LogError(f"{path}: line {i + 2 + r}: {len(vals)} values but the header names {len(header)} columns")
        try:
            data[r] = [float(v) for v in vals]
        except ValueError:
            bad = next(v for v in vals if not _is_float(v))
            raise LogError(f"{path}: line {i + 2 + r}: {bad.strip()!r} is not a number") from None
    col = {c: data[:, header.index(c)] for c in header}
    n = data.shape[0]
    if "cmd_steer" not in header:
        col["cmd_steer"] = col["steer"]
        meta.setdefault("steer_command", "none")
    for c in ("cmd_speed", "cmd_accel"):
        if c not in header:
            col[c] = np.zeros(n)
            meta.setdefault("longitudinal", "pedals")
    stack = lambda names: np.stack([col[c] for c in names], axis=1)  # noqa: E731
    log = DriveLog(
        t=col["t"],
        state=stack(STATE_COLUMNS),
        command=stack(COMMAND_COLUMNS),
        imu=stack(IMU_COLUMNS) if has_imu else None,
        meta=meta,
        source=str(path),
        pedals=stack(PEDAL_COLUMNS) if has_pedals else None,
        wheels=stack(WHEEL_COLUMNS) if has_wheels else None,
        line0=i + 2,
    )
    return log.validate()


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False
