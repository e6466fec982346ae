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
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOG_MAGIC = "# racing-log v1"
STATE_COLUMNS = ("x", "y", "yaw", "vx", "vy", "yaw_rate", "steer")
COMMAND_COLUMNS = ("cmd_steer", "cmd_speed", "cmd_accel")
IMU_COLUMNS = ("imu_ax", "imu_ay", "imu_wz")
COLUMNS = ("t",) + STATE_COLUMNS + COMMAND_COLUMNS


class LogError(ValueError):
    """A log file is malformed; the message names the file, row/column and what was expected."""


@dataclass
class DriveLog:
    """A driving log in memory.

    t : float64[N] [s], strictly increasing
    state : float64[N, 7]  (x, y, yaw, vx, vy, yaw_rate, steer)
    command : float64[N, 3] (cmd_steer [rad], cmd_speed [m/s], cmd_accel [m/s^2])
    imu : float64[N, 3] or None (imu_ax, imu_ay [m/s^2], imu_wz [rad/s])
    meta : dict of str -> str
    source : where it came from (for error messages)
    """

    t: np.ndarray
    state: np.ndarray
    command: np.ndarray
    imu: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    source: str = "<memory>"

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

    @property
    def duration(self) -> float:
        return float(self.t[-1] - self.t[0]) if self.t.size else 0.0

    def validate(self, line_numbers=None) -> "DriveLog":
        """Raise :class:`LogError` on NaN values or non-increasing / duplicate timestamps.

        ``line_numbers[i]``: the file line (1-based) of row i, named in the error instead of the row index."""
        def where(r):
            return f"line {line_numbers[r]}" if line_numbers is not None else f"row {r}"

        cols = list(COLUMNS) + (list(IMU_COLUMNS) if self.imu is not None else [])
        data = [self.t[:, None], self.state, self.command] + ([self.imu] if self.imu is not None else [])
        arr = np.hstack(data)
        bad = ~np.isfinite(arr)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise LogError(f"{self.source}: {where(r)}: column {cols[c]} is {arr[r, c]}; expected a finite number")
        dt = np.diff(self.t)
        if np.any(dt <= 0):
            i = int(np.argmax(dt <= 0))
            kind = "duplicate" if dt[i] == 0 else "non-monotonic"
            raise LogError(f"{self.source}: {where(i + 1)}: {kind} timestamp t = {self.t[i + 1]} after {self.t[i]}; "
                           f"expected strictly increasing time")
        return self

    def slice(self, t0: float, t1: float) -> "DriveLog":
        """The part with t0 <= t < t1 [s]."""
        k = (self.t >= t0) & (self.t < t1)
        return DriveLog(self.t[k], self.state[k], self.command[k], None if self.imu is None else self.imu[k],
                        dict(self.meta), f"{self.source}[{t0}:{t1}]")

    def save(self, path: str | Path) -> None:
        """Write the log as CSV (see module docstring)."""
        with LogWriter(path, imu=self.imu is not None, meta=self.meta) as w:
            for i in range(self.t.size):
                w.write(self.t[i], self.state[i], self.command[i], None if self.imu is None else self.imu[i])


class LogWriter:
    """Appends rows to a log CSV, flushing every row so nothing is lost on a crash."""

    def __init__(self, path: str | Path, imu: bool = False, meta: dict | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.imu = imu
        self._fh = self.path.open("w", encoding="utf-8", newline="")
        self._fh.write(LOG_MAGIC + "\n")
        for k, v in (meta or {}).items():
            self._fh.write(f"# {k}: {v}\n")
        self._fh.write(",".join(COLUMNS + (IMU_COLUMNS if imu else ())) + "\n")
        self._fh.flush()
        self.rows = 0

    def write(self, t: float, state, command, imu=None) -> None:
        vals = [t, *state, *command]
        if self.imu:
            if imu is None:
                raise LogError(f"{self.path}: this log has IMU columns; write() needs imu values")
            vals.extend(imu)
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
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise LogError(f"{path}: line {i + 1}: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
    has_imu = all(c in header for c in IMU_COLUMNS)
    line_numbers = [k + 1 for k in range(i + 1, len(lines)) if lines[k].strip() and not lines[k].startswith("#")]
    try:
        data = np.loadtxt(io.StringIO("\n".join(lines[i + 1:])), delimiter=",", ndmin=2)
    except ValueError as exc:
        for k in line_numbers:  # name the first bad line of the file
            vals = lines[k - 1].split(",")
            bad = len(vals) != len(header)
            if not bad:
                try:
                    [float(v) for v in vals]
                except ValueError:
                    bad = True
            if bad:
                raise LogError(f"{path}: line {k}: {lines[k - 1][:80]!r}; expected {len(header)} comma-separated "
                               f"numbers ({','.join(header)})") from None
        raise LogError(f"{path}: {exc}") from exc
    if data.shape[0] == 0:
        raise LogError(f"{path}: no data rows")
    if data.shape[1] != len(header):
        raise LogError(f"{path}: rows have {data.shape[1]} values but the header names {len(header)} columns")
    col = {c: data[:, header.index(c)] for c in header}
    log = DriveLog(
        t=col["t"],
        state=np.stack([col[c] for c in STATE_COLUMNS], axis=1),
        command=np.stack([col[c] for c in COMMAND_COLUMNS], axis=1),
        imu=np.stack([col[c] for c in IMU_COLUMNS], axis=1) if has_imu else None,
        meta=meta,
        source=str(path),
    )
    return log.validate(line_numbers)
