"""Driving logs for system identification: the project's CSV logs and ROS bags (without ROS).

ROS bags are read with the ``rosbags`` library: ROS 1 ``.bag`` files, ROS 2 bags (a folder with
``metadata.yaml``, or a single ``.db3`` (sqlite) / ``.mcap`` file). Topics (configurable):

* odometry ``nav_msgs/msg/Odometry`` (default ``/odom``): position, yaw from the quaternion,
  body-frame velocities ``twist.twist.linear.{x,y}`` and yaw rate ``twist.twist.angular.z``
  (REP 105: the twist is in the child, i.e. body, frame). ``twist_frame="world"`` rotates a
  world-frame twist into the body frame; ``twist_frame="pose"`` ignores the twist and
  differentiates the pose instead.
* drive ``ackermann_msgs/msg/AckermannDriveStamped`` (default ``/drive``): ``steering_angle``
  [rad], ``speed`` [m/s], ``acceleration`` [m/s^2]; the message definition is registered with
  the typestore here, so bags without embedded definitions read too.
* optional IMU ``sensor_msgs/msg/Imu``: ``linear_acceleration.{x,y}``, ``angular_velocity.z``.

Time stamps are the message header stamps (the bag receive time where a header stamp is zero).
Everything is resampled onto one uniform time base at ``rate_hz`` over the span where odometry
and commands overlap: odometry and IMU linearly (yaw unwrapped, then wrapped again), commands
by zero-order hold (the last command received, as the car applies it). Bags carry no measured
steering angle, so the ``steer`` column holds the commanded angle and the log's meta says
``steer_source: command`` (the fit then ignores the steer channel).
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from racing.logs import LOG_MAGIC, DriveLog, LogError, read_log, time_step_problem
from racing.sysid.columns import load_column_map, move_to_cog, read_mapped_csv

ACKERMANN_DRIVE_MSG = """\
float32 steering_angle
float32 steering_angle_velocity
float32 speed
float32 acceleration
float32 jerk
"""
ACKERMANN_DRIVE_STAMPED_MSG = """\
std_msgs/Header header
ackermann_msgs/AckermannDrive drive
"""
ACKERMANN_TYPES = {
    "ackermann_msgs/msg/AckermannDrive": ACKERMANN_DRIVE_MSG,
    "ackermann_msgs/msg/AckermannDriveStamped": ACKERMANN_DRIVE_STAMPED_MSG,
}
ODOM_TYPE = "nav_msgs/msg/Odometry"
DRIVE_TYPE = "ackermann_msgs/msg/AckermannDriveStamped"
IMU_TYPE = "sensor_msgs/msg/Imu"
BAG_SUFFIXES = (".bag", ".db3", ".mcap")
LOG_SUFFIXES = (".csv",) + BAG_SUFFIXES


def typestore(ros1: bool = False):
    """A ``rosbags`` typestore (ROS 1 Noetic or ROS 2 Humble) with the ackermann_msgs types registered."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    types = {}
    for name, text in ACKERMANN_TYPES.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def _stamp(msg, bag_ns: int) -> float:
    st = msg.header.stamp
    sec = getattr(st, "sec", None)
    if sec is None:  # ROS 1 style
        sec, nsec = st.secs, st.nsecs
    else:
        nsec = st.nanosec
    t = float(sec) + 1e-9 * float(nsec)
    return t if t > 0 else 1e-9 * bag_ns


def _yaw(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def _check_times(t: np.ndarray, topic: str, source: str) -> None:
    bad = time_step_problem(t)
    if bad is not None:
        i, kind = bad
        raise LogError(f"{source}: topic {topic}: message {i}: {kind} timestamp {t[i]:.9f} s after "
                       f"{t[i - 1]:.9f} s; expected strictly increasing header stamps")


def _check_finite(arr: np.ndarray, names, topic: str, source: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise LogError(f"{source}: topic {topic}: message {r}: field {names[c]} is {arr[r, c]}; "
                       f"expected a finite number")


def read_bag(path, odom_topic: str = "/odom", drive_topic: str = "/drive", imu_topic: str | None = None,
             rate_hz: float = 50.0, twist_frame: str = "body") -> DriveLog:
    """Read a ROS 1 or ROS 2 bag into a :class:`racing.logs.DriveLog` on a uniform time base.

    Parameters
    ----------
    path : ``.bag`` (ROS 1), ``.db3`` / ``.mcap`` file or ROS 2 bag folder
    odom_topic, drive_topic : topic names (nav_msgs/Odometry, ackermann_msgs/AckermannDriveStamped)
    imu_topic : optional sensor_msgs/Imu topic (None: no IMU columns)
    rate_hz : resampling rate [Hz]
    twist_frame : "body" (REP 105), "world" (rotate into the body frame) or "pose" (differentiate the pose)

    Raises
    ------
    LogError : missing topic (the topics present are listed), wrong message type, non-monotonic or
        duplicate stamps, NaN fields, no overlap between odometry and commands.
    """
    if twist_frame not in ("body", "world", "pose"):
        raise ValueError(f"twist_frame must be 'body', 'world' or 'pose', got {twist_frame!r}")
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise LogError(f"{source}: file not found")
    rows = _read_topics(path, odom_topic, drive_topic, imu_topic)
    arrays = _topic_arrays(rows, odom_topic, drive_topic, imu_topic, source)
    odom, drive = arrays[odom_topic], arrays[drive_topic]
    t0 = max(odom[0, 0], drive[0, 0])
    t1 = odom[-1, 0]
    if imu_topic:
        t0, t1 = max(t0, arrays[imu_topic][0, 0]), min(t1, arrays[imu_topic][-1, 0])
    if t1 <= t0:
        raise LogError(f"{source}: odometry ({odom[0, 0]:.3f}..{odom[-1, 0]:.3f} s) and commands "
                       f"(from {drive[0, 0]:.3f} s) do not overlap in time")
    n = int(math.floor((t1 - t0) * rate_hz + 1e-9)) + 1
    t = t0 + np.arange(n) / rate_hz
    x, y, yaw, vx, vy, r = _resample_odometry(odom, t, twist_frame)
    # zero-order hold of the commands: the last message at or before t
    k = np.searchsorted(drive[:, 0], t + 1e-12, side="right") - 1
    k = np.clip(k, 0, drive.shape[0] - 1)
    cmd = drive[k, 1:4]
    state = np.column_stack([x, y, (yaw + np.pi) % (2 * np.pi) - np.pi, vx, vy, r, cmd[:, 0]])
    imu = None
    if imu_topic:
        im = arrays[imu_topic]
        imu = np.column_stack([np.interp(t, im[:, 0], im[:, j]) for j in (1, 2, 3)])
    meta = {"source": "rosbag", "bag": path.name, "odom_topic": odom_topic, "drive_topic": drive_topic,
            "steer_source": "command", "rate_hz": f"{rate_hz:g}", "t0_stamp": f"{t0:.9f}"}
    return DriveLog(t - t0, state, cmd, imu, meta=meta, source=source).validate()


def _read_topics(path: Path, odom_topic: str, drive_topic: str, imu_topic: str | None) -> dict[str, list]:
    """The raw rows of the bag at ``path`` per topic (after checking that every topic is there with its type):
    odometry ``(stamp [s], x, y [m], yaw [rad], v_x, v_y [m/s], yaw rate [rad/s])``, drive ``(stamp,
    steering_angle [rad], speed [m/s], acceleration [m/s^2])``, IMU ``(stamp, a_x, a_y [m/s^2], w_z [rad/s])``."""
    from rosbags.highlevel import AnyReader

    source = str(path)
    wanted = {odom_topic: ODOM_TYPE, drive_topic: DRIVE_TYPE}
    if imu_topic:
        wanted[imu_topic] = IMU_TYPE
    rows: dict[str, list] = {k: [] for k in wanted}
    try:
        reader_ctx = AnyReader([path], default_typestore=typestore(path.suffix == ".bag"))
        reader_ctx.open()  # reads the file: a file that is not a bag fails here, not in the with below
    except Exception as exc:  # rosbags raises its own error types
        raise LogError(f"{source}: cannot open as a ROS bag: {str(exc).rstrip('.')}; expected a ROS 1 .bag, a ROS 2 .db3/.mcap "
                       f"or bag folder, or a racing log CSV") from None
    with contextlib.closing(reader_ctx) as reader:
        present = {c.topic: c.msgtype for c in reader.connections}
        for topic, typ in wanted.items():
            if topic not in present:
                listing = ", ".join(f"{k} ({v})" for k, v in sorted(present.items())) or "(none)"
                raise LogError(f"{source}: topic {topic!r} not in the bag; topics present: {listing}")
            if present[topic] != typ:
                raise LogError(f"{source}: topic {topic!r} has type {present[topic]}; expected {typ}")
        conns = [c for c in reader.connections if c.topic in wanted]
        for conn, bag_ns, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            t = _stamp(msg, bag_ns)
            if conn.topic == odom_topic:
                p, tw = msg.pose.pose, msg.twist.twist
                rows[odom_topic].append((t, p.position.x, p.position.y, _yaw(p.orientation), tw.linear.x,
                                         tw.linear.y, tw.angular.z))
            elif conn.topic == drive_topic:
                d = msg.drive
                rows[drive_topic].append((t, d.steering_angle, d.speed, d.acceleration))
            else:
                a, w = msg.linear_acceleration, msg.angular_velocity
                rows[imu_topic].append((t, a.x, a.y, w.z))
    return rows


def _topic_arrays(rows: dict[str, list], odom_topic: str, drive_topic: str, imu_topic: str | None,
                  source: str) -> dict[str, np.ndarray]:
    """The rows of :func:`_read_topics` as float arrays ``[n, columns]`` per topic, each checked: at least 2
    messages, finite fields, strictly increasing stamps (else :class:`LogError` naming ``source`` and the topic)."""
    arrays = {}
    for topic, names in ((odom_topic, ("stamp", "x", "y", "yaw", "vx", "vy", "yaw_rate")),
                         (drive_topic, ("stamp", "steering_angle", "speed", "acceleration")),
                         (imu_topic, ("stamp", "ax", "ay", "wz"))):
        if topic is None or not topic:
            continue
        arr = np.asarray(rows[topic], dtype=float).reshape(-1, len(names))
        if arr.shape[0] < 2:
            raise LogError(f"{source}: topic {topic!r} has {arr.shape[0]} message(s); need at least 2")
        _check_finite(arr, names, topic, source)
        _check_times(arr[:, 0], topic, source)
        arrays[topic] = arr
    return arrays


def _resample_odometry(odom: np.ndarray, t: np.ndarray, twist_frame: str):
    """Odometry rows ``odom[m, 7]`` (see :func:`_read_topics`) linearly resampled at the times ``t[n]`` [s]:
    ``(x, y [m], yaw [rad] unwrapped, v_x, v_y [m/s] in the body frame, yaw rate [rad/s])``, each ``[n]``; the
    twist rotated from the world frame (``twist_frame="world"``) or replaced by the pose's derivative
    (``"pose"``)."""
    n = t.size
    yaw_u = np.unwrap(odom[:, 3])
    x = np.interp(t, odom[:, 0], odom[:, 1])
    y = np.interp(t, odom[:, 0], odom[:, 2])
    yaw = np.interp(t, odom[:, 0], yaw_u)
    if twist_frame == "pose":
        vxw = np.gradient(x, t) if n > 1 else np.zeros(n)
        vyw = np.gradient(y, t) if n > 1 else np.zeros(n)
        r = np.gradient(yaw, t) if n > 1 else np.zeros(n)
        vx = np.cos(yaw) * vxw + np.sin(yaw) * vyw
        vy = -np.sin(yaw) * vxw + np.cos(yaw) * vyw
    else:
        vx = np.interp(t, odom[:, 0], odom[:, 4])
        vy = np.interp(t, odom[:, 0], odom[:, 5])
        r = np.interp(t, odom[:, 0], odom[:, 6])
        if twist_frame == "world":
            vx, vy = np.cos(yaw) * vx + np.sin(yaw) * vy, -np.sin(yaw) * vx + np.cos(yaw) * vy
    return x, y, yaw, vx, vy, r


def resample(log: DriveLog, rate_hz: float) -> DriveLog:
    """``log`` on a uniform time base at ``rate_hz`` [Hz] (states linear, yaw unwrapped, commands held)."""
    log.validate()
    n = int(math.floor(log.duration * rate_hz + 1e-9)) + 1
    t = log.t[0] + np.arange(n) / rate_hz
    st = log.state.copy()
    st[:, 2] = np.unwrap(st[:, 2])
    state = np.column_stack([np.interp(t, log.t, st[:, j]) for j in range(7)])
    state[:, 2] = (state[:, 2] + np.pi) % (2 * np.pi) - np.pi
    k = np.clip(np.searchsorted(log.t, t + 1e-12, side="right") - 1, 0, log.t.size - 1)
    lin = lambda a: None if a is None else np.column_stack([np.interp(t, log.t, a[:, j])  # noqa: E731
                                                             for j in range(a.shape[1])])
    return DriveLog(t, state, log.command[k], lin(log.imu), dict(log.meta), log.source,
                    None if log.pedals is None else log.pedals[k], lin(log.wheels))


def is_uniform(log: DriveLog, tol: float = 0.02) -> bool:
    """True when all time steps are within ``tol`` (relative) of the median step."""
    d = np.diff(log.t)
    if d.size == 0:
        return True
    med = float(np.median(d))
    return bool(np.all(np.abs(d - med) <= tol * med))


#: the opening bytes of files that are not logs (named in the error when one is given as a log)
NOT_LOG_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
                 b"%PDF": "a PDF document", b"PK\x03\x04": "a zip archive (e.g. a result.npz)",
                 b"\x93NUMPY": "a numpy .npy array", b"\x1f\x8b": "a gzip archive"}


def _not_a_log(path: Path) -> str | None:
    """What ``path`` is when it is a known non-log type or a binary file, else None."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    for magic, what in NOT_LOG_MAGIC.items():
        if head.startswith(magic):
            return what
    if path.suffix == ".csv":
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # not just a character cut at the end of the block
                return f"not UTF-8 text (byte {exc.start}: {head[exc.start:exc.start + 1]!r})"
        if b"\0" in head:
            return "a binary file (NUL bytes)"
    return None


def _csv(path: Path, rate_hz: float, columns, reference_point) -> DriveLog:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        first = fh.readline().strip()
    if first == LOG_MAGIC:
        log = read_log(path)
        if reference_point is not None and tuple(reference_point) != (0.0, 0.0):
            log.state = move_to_cog(log.state, tuple(reference_point))
            log.meta["reference_point"] = ",".join(f"{v:g}" for v in reference_point)
    elif columns is not None:
        log = read_mapped_csv(path, columns if not isinstance(columns, (str, Path)) else load_column_map(columns),
                              reference_point)
    else:
        raise LogError(f"{path}: line 1: expected the header {LOG_MAGIC!r}; not a racing log (for a foreign CSV "
                       f"give a column map: --columns MAP.yaml)")
    return log if is_uniform(log) else resample(log, rate_hz)


def load_log(path, rate_hz: float = 50.0, columns=None, reference_point=None, **bag_options) -> list[DriveLog]:
    """One path -> logs: ``.csv`` (project format, or a foreign CSV read with the column map ``columns``,
    :mod:`racing.sysid.columns`), ``.bag``/``.db3``/``.mcap`` (ROS), or a folder (a ROS 2 bag folder with
    ``metadata.yaml``, otherwise every log file inside, sorted). ``reference_point`` (d_x, d_y) [m]: where the
    velocities are measured relative to the CoG (moved to the CoG; overrides the column map's)."""
    path = Path(path)
    if path.is_dir():
        if (path / "metadata.yaml").is_file():
            return [read_bag(path, rate_hz=rate_hz, **bag_options)]
        files = sorted(p for p in path.iterdir() if p.suffix in LOG_SUFFIXES or
                       (p.is_dir() and (p / "metadata.yaml").is_file()))
        if not files:
            raise LogError(f"{path}: folder holds no logs (*.csv, *.bag, *.db3, *.mcap or ROS 2 bag folders)")
        out = []
        for f in files:
            out.extend(load_log(f, rate_hz, columns, reference_point, **bag_options))
        return out
    if not path.exists():
        raise LogError(f"{path}: file not found")
    what = _not_a_log(path)
    if what is not None:
        raise LogError(f"{path}: {what}, not a log; expected a racing CSV log, a foreign CSV (with a column map), a "
                       f"ROS bag ({', '.join(BAG_SUFFIXES)}) or a folder of them")
    if path.suffix in BAG_SUFFIXES:
        log = read_bag(path, rate_hz=rate_hz, **bag_options)
        if reference_point is not None and tuple(reference_point) != (0.0, 0.0):
            log.state = move_to_cog(log.state, tuple(reference_point))
            log.meta["reference_point"] = ",".join(f"{v:g}" for v in reference_point)
        return [log]
    if path.suffix == ".csv":
        return [_csv(path, rate_hz, columns, reference_point)]
    raise LogError(f"{path}: unknown log type {path.suffix!r}; expected one of {', '.join(LOG_SUFFIXES)} or a folder")


def load_logs(paths, rate_hz: float = 50.0, columns=None, reference_point=None, **bag_options) -> list[DriveLog]:
    """Load several logs (see :func:`load_log`); each is validated (NaN, time order)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out = []
    for p in paths:
        out.extend(load_log(p, rate_hz, columns, reference_point, **bag_options))
    if not out:
        raise LogError("no logs given")
    if columns is not None and not any(lg.meta.get("source") == "column map" for lg in out):
        raise LogError(f"{', '.join(lg.source for lg in out)}: the column map (--columns) applies to foreign CSV "
                       f"logs only, and none of these is one (a racing log names its own columns; a bag its "
                       f"topics); expected no column map for these logs")
    return out


def write_bag(path, log: DriveLog, odom_topic: str = "/odom", drive_topic: str = "/drive",
              imu_topic: str | None = None, storage: str = "mcap", frame_id: str = "odom") -> Path:
    """Write ``log`` as a ROS bag (``storage`` = "mcap" | "sqlite3" for ROS 2 folders, "ros1" for a
    ``.bag`` file); the inverse of :func:`read_bag` (used by tests and for exporting simulated data)."""
    path = Path(path)
    ros1 = storage == "ros1"
    store = typestore(ros1)
    T = store.types
    Header, Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
    Odom, Pose, PoseCov, Twist, TwistCov = (T["nav_msgs/msg/Odometry"], T["geometry_msgs/msg/Pose"],
                                            T["geometry_msgs/msg/PoseWithCovariance"], T["geometry_msgs/msg/Twist"],
                                            T["geometry_msgs/msg/TwistWithCovariance"])
    Point, Quat, Vec3 = T["geometry_msgs/msg/Point"], T["geometry_msgs/msg/Quaternion"], T["geometry_msgs/msg/Vector3"]
    Drive, DriveS = T["ackermann_msgs/msg/AckermannDrive"], T["ackermann_msgs/msg/AckermannDriveStamped"]
    Imu = T["sensor_msgs/msg/Imu"]
    cov = np.zeros(36)
    cov9 = np.zeros(9)

    def header(t, seq):
        sec = int(math.floor(t))
        st = Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)
        if ros1:
            return Header(seq=seq, stamp=st, frame_id=frame_id)
        return Header(stamp=st, frame_id=frame_id)

    t_base = 1000.0  # header stamps must be positive
    msgs = []
    last_ns = 0
    for i in range(log.t.size):
        t = t_base + float(log.t[i])
        s, c = log.state[i], log.command[i]
        q = Quat(x=0.0, y=0.0, z=math.sin(0.5 * s[2]), w=math.cos(0.5 * s[2]))
        odom = Odom(header=header(t, i), child_frame_id="base_link",
                    pose=PoseCov(pose=Pose(position=Point(x=s[0], y=s[1], z=0.0), orientation=q), covariance=cov),
                    twist=TwistCov(twist=Twist(linear=Vec3(x=s[3], y=s[4], z=0.0),
                                               angular=Vec3(x=0.0, y=0.0, z=s[5])), covariance=cov))
        drive = DriveS(header=header(t, i), drive=Drive(steering_angle=c[0], steering_angle_velocity=0.0,
                                                         speed=c[1], acceleration=c[2], jerk=0.0))
        ns = last_ns = max(int(round(t * 1e9)), last_ns + 1)  # receive time: monotonic, stamps as logged
        msgs.append((odom_topic, ODOM_TYPE, ns, odom))
        msgs.append((drive_topic, DRIVE_TYPE, ns, drive))
        if imu_topic and log.imu is not None:
            a = log.imu[i]
            imu = Imu(header=header(t, i), orientation=q, orientation_covariance=cov9,
                      angular_velocity=Vec3(x=0.0, y=0.0, z=a[2]), angular_velocity_covariance=cov9,
                      linear_acceleration=Vec3(x=a[0], y=a[1], z=0.0), linear_acceleration_covariance=cov9)
            msgs.append((imu_topic, IMU_TYPE, ns, imu))
    if ros1:
        from rosbags.rosbag1 import Writer

        ser = store.serialize_ros1
        if path.exists():
            path.unlink()
        writer = Writer(path)
    else:
        from rosbags.rosbag2 import StoragePlugin, Writer

        ser = store.serialize_cdr
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        writer = Writer(path, version=9, storage_plugin=plugin)
    with writer:
        conns = {}
        for topic, typ, _, _ in msgs:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, typ, typestore=store)
        for topic, typ, ns, msg in msgs:
            writer.write(conns[topic], ns, ser(msg, typ))
    return path
