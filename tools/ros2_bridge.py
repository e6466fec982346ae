"""ROS 2 bridge: a car's ROS stack on one side, the `racing drive` vehicle link on the other.

    /odom  (nav_msgs/Odometry)                      -> STATE datagrams  -> racing drive
    racing drive -> COMMAND / HEARTBEAT / STOP      -> /drive (--drive-msg: ackermann_msgs/AckermannDriveStamped,
                                                               or geometry_msgs/Twist)

**The car's drive interface** (``--interface``, the car file's ``drive_interface``): ``speed`` (default: what every
drive-by-wire honours) publishes the speed set-point and steering angle only, the acceleration field 0, and counts
the commands that carried a non-zero one (``acceleration_dropped``: a computer that plans with a feed-forward the car
ignores, see docs/protocol.md); ``speed_accel`` publishes the acceleration too. **The command message**
(``--drive-msg``): ``ackermann`` (AckermannDriveStamped: steering_angle [rad], speed [m/s], acceleration [m/s^2]),
``twist`` (geometry_msgs/Twist in the steering-angle convention of Ackermann base drivers: ``linear.x`` = speed
[m/s], ``angular.z`` = steering angle [rad]; it has no acceleration, so only with ``--interface speed``), or ``auto``
(ackermann when ackermann_msgs is importable, else twist, said at start). ackermann_msgs has no PyPI wheel; rclpy,
nav_msgs and geometry_msgs do (the ``ros2`` extra).

It is the *vehicle* end of the link (:mod:`racing.runtime.protocol`): it listens on ``--port``,
authenticates every datagram with the shared key (protocol v2, ``--key``), sends STATE from the
port it listens on to the computer's address (``--peer``, or the source of the last accepted
datagram), and carries out the vehicle-side rules: a COMMAND holds until the next one; STOP is
latched (steering held, speed 0, published at ``--rate`` until the bridge is restarted, i.e.
re-armed); with no COMMAND for ``--command-timeout`` it publishes speed 0 (not latched).

    python tools/ros2_bridge.py --key car.key --port 5600 --odom-topic /odom --drive-topic /drive
    racing drive --vehicle udp://CAR_IP:5600 --key car.key --allow-remote --clock estimate   # on the computer

Conventions (REP 103/105): the odometry pose gives x, y and yaw (from the quaternion); its twist is
in the child (body) frame by default (``--twist-frame world`` when a driver publishes it in the
odom frame); the road-wheel angle is not in Odometry, so STATE carries the last commanded steering
angle (``steer``), as the project's bag reader does. Times: STATE ``t`` is the odometry's
measurement instant on the bridge's CLOCK_MONOTONIC (the link clock), found as
``monotonic_now - (ros_now - header.stamp)``; on two machines run the computer with
``--clock estimate`` (offset estimated) or synchronise the clocks (PTP/chrony) and keep ``shared``.

The translation functions and :class:`BridgeCore` are plain Python (tested without ROS); rclpy
and the message packages are imported only by :func:`main` when the bridge runs.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from racing.interfaces import DRIVE_INTERFACES  # noqa: E402
from racing.runtime import protocol as proto  # noqa: E402
from racing.runtime.auth import LinkSecurity, Receiver, Rejected, Sender  # noqa: E402


# --- translation (no ROS) ------------------------------------------------------------------------------
def quaternion_to_yaw(x: float, y: float, z: float, w: float) -> float:
    """Yaw [rad] in (-pi, pi] of a quaternion (x, y, z, w) (ZYX Euler angles; need not be normalised).
    ValueError for a zero or non-finite quaternion."""
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion ({x}, {y}, {z}, {w}) has no orientation (norm {n})")
    x, y, z, w = x / n, y / n, z / n, w / n
    return wrap_angle(math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def wrap_angle(a: float) -> float:
    """``a`` [rad] wrapped to (-pi, pi]."""
    a = math.remainder(a, 2.0 * math.pi)
    return math.pi if a == -math.pi else a


def yaw_to_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation by ``yaw`` [rad] about z."""
    return 0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw)


def world_to_body(vx_w: float, vy_w: float, yaw: float) -> tuple[float, float]:
    """Velocity [m/s] in the world (odom) frame -> body frame (x forward, y left)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return c * vx_w + s * vy_w, -s * vx_w + c * vy_w


def body_to_world(vx_b: float, vy_b: float, yaw: float) -> tuple[float, float]:
    """Velocity [m/s] in the body frame -> world (odom) frame."""
    c, s = math.cos(yaw), math.sin(yaw)
    return c * vx_b - s * vy_b, s * vx_b + c * vy_b


def stamp_to_seconds(sec: int, nanosec: int) -> float:
    """builtin_interfaces/Time -> seconds [s]."""
    return float(sec) + 1e-9 * float(nanosec)


def seconds_to_stamp(t: float) -> tuple[int, int]:
    """seconds [s] -> (sec, nanosec) of builtin_interfaces/Time (nanosec in [0, 1e9))."""
    sec = math.floor(t)
    nsec = int(round((t - sec) * 1e9))
    if nsec >= 1_000_000_000:
        sec, nsec = sec + 1, nsec - 1_000_000_000
    return int(sec), nsec


def ros_to_link_time(stamp_s: float, ros_now_s: float, link_now_s: float) -> float:
    """A ROS time ``stamp_s`` [s] on the link clock [s]: ``link_now - (ros_now - stamp)`` (its age kept)."""
    return link_now_s - (ros_now_s - stamp_s)


def odometry_to_state(px: float, py: float, qx: float, qy: float, qz: float, qw: float, vx: float, vy: float,
                      wz: float, steer: float, twist_frame: str = "body") -> tuple[float, ...]:
    """nav_msgs/Odometry fields -> the link's state (x [m], y [m], yaw [rad], vx, vy [m/s] body frame,
    yaw_rate [rad/s], steer [rad]). ``twist_frame`` = ``body`` (REP 105: child frame) or ``world``."""
    yaw = quaternion_to_yaw(qx, qy, qz, qw)
    if twist_frame == "world":
        vx, vy = world_to_body(vx, vy, yaw)
    elif twist_frame != "body":
        raise ValueError(f"twist frame {twist_frame!r}: expected 'body' or 'world'")
    state = (float(px), float(py), yaw, float(vx), float(vy), float(wz), float(steer))
    bad = [n for n, v in zip(proto.STATE_FIELDS[1:], state) if not math.isfinite(v)]
    if bad:
        raise ValueError(f"odometry field(s) {', '.join(bad)} not finite")
    return state


DRIVE_MSGS = ("auto", "ackermann", "twist")


def drive_fields(cmd: "DriveCommand", msg: str) -> dict:
    """The fields of the /drive message ``msg`` (``ackermann`` | ``twist``) for ``cmd``: dotted attribute -> value."""
    if msg == "ackermann":
        return {"drive.steering_angle": float(cmd.steering_angle), "drive.speed": float(cmd.speed),
                "drive.acceleration": float(cmd.acceleration)}
    if msg == "twist":
        return {"linear.x": float(cmd.speed), "angular.z": float(cmd.steering_angle)}
    raise ValueError(f"drive message {msg!r}: expected 'ackermann' or 'twist'")


def resolve_drive_msg(msg: str, interface: str, ackermann_available: bool) -> str:
    """``ackermann`` or ``twist`` for ``--drive-msg msg`` and ``--interface interface``; ValueError naming the option
    when they cannot go together (a Twist has no acceleration; ackermann_msgs not installed)."""
    if interface not in DRIVE_INTERFACES:
        raise ValueError(f"--interface {interface!r}: expected one of {', '.join(DRIVE_INTERFACES)}")
    if msg not in DRIVE_MSGS:
        raise ValueError(f"--drive-msg {msg!r}: expected one of {', '.join(DRIVE_MSGS)}")
    if msg == "auto":
        msg = "ackermann" if ackermann_available else "twist"
    if msg == "ackermann" and not ackermann_available:
        raise ValueError("--drive-msg ackermann: ackermann_msgs is not importable (it has no PyPI wheel: source a ROS "
                         "2 installation that has it, or use --drive-msg twist)")
    if msg == "twist" and DRIVE_INTERFACES[interface].acceleration:
        raise ValueError(f"--drive-msg twist with --interface {interface}: a Twist carries no acceleration; use "
                         f"--interface speed or an AckermannDriveStamped")
    return msg


@dataclass(frozen=True)
class DriveCommand:
    """What to publish on /drive (AckermannDrive fields, SI)."""

    steering_angle: float
    speed: float
    acceleration: float
    reason: str  # command | stop | failsafe


# --- the vehicle side of the link (no ROS) -------------------------------------------------------------
class BridgeCore:
    """Transport-free vehicle end of the link for the bridge.

    ``state_datagram(...)`` signs a STATE from odometry; ``receive(data, source, now)`` checks a
    datagram from the computer; ``drive(now)`` is what /drive should carry now (None before the
    first command). Times are link-clock seconds (CLOCK_MONOTONIC of the bridge).
    """

    def __init__(self, security: LinkSecurity, peer: tuple[str, int] | None = None, command_timeout_s: float = 0.5,
                 clock=time.monotonic, interface: str = "speed"):
        if interface not in DRIVE_INTERFACES:
            raise ValueError(f"interface {interface!r}: expected one of {', '.join(DRIVE_INTERFACES)}")
        self.interface, self.takes_acceleration = interface, DRIVE_INTERFACES[interface].acceleration
        self.security = security
        self.clock = clock
        self.rx = Receiver(security, accept=(proto.MsgType.COMMAND, proto.MsgType.HEARTBEAT, proto.MsgType.STOP),
                           peer=peer, clock=clock)
        self.tx = Sender(security, clock=clock)
        self.command_timeout_s = float(command_timeout_s)
        self.command: DriveCommand | None = None
        self.last_command_t: float | None = None
        self.stopped: str | None = None  # latched STOP reason
        self.computer: tuple[str, int] | None = peer
        self._last_cmd = (None, None)  # (session, seq)
        self.counts = {"states": 0, "commands": 0, "stops": 0, "heartbeats": 0, "stale_commands": 0,
                       "acceleration_dropped": 0}

    def state_datagram(self, t_meas: float, state) -> bytes:
        """Signed STATE of ``state`` (7 values) measured at link time ``t_meas`` [s]."""
        x = tuple(float(v) for v in state)
        self.counts["states"] += 1
        return self.tx.datagram(proto.MsgType.STATE, lambda seq, stamp, ses: proto.StateMsg(
            seq, stamp, float(t_meas), x, ses))

    def receive(self, data: bytes, source=None, now: float | None = None):
        """Check and apply a datagram; returns the message, or None when refused (counted in ``rx.counts``)."""
        now = self.clock() if now is None else now
        try:
            msg = self.rx.accept_datagram(data, source, now)
        except Rejected:
            return None
        if source is not None and self.rx.peer is None:
            self.computer = (source[0], int(source[1]))
        if isinstance(msg, proto.CommandMsg):
            ses, seq = self._last_cmd
            if ses == msg.session and seq is not None and not proto.seq_newer(msg.seq, seq):
                self.counts["stale_commands"] += 1
                return msg
            self._last_cmd = (msg.session, msg.seq)
            self.counts["commands"] += 1
            accel = msg.acceleration
            if accel != 0.0 and not self.takes_acceleration:  # the car would ignore it: it is not sent on
                self.counts["acceleration_dropped"] += 1
                accel = 0.0
            if self.stopped is None:
                self.command = DriveCommand(msg.steering_angle, msg.speed, accel, "command")
                self.last_command_t = now
        elif isinstance(msg, proto.StopMsg):
            self.counts["stops"] += 1
            if self.stopped is None:
                self.stopped = msg.reason_name
        else:
            self.counts["heartbeats"] += 1
        return msg

    @property
    def steer(self) -> float:
        """The last commanded steering angle [rad] (Odometry has no road-wheel angle)."""
        return 0.0 if self.command is None else self.command.steering_angle

    def drive(self, now: float | None = None) -> DriveCommand | None:
        """The /drive command to publish at link time ``now``: the held command, or speed 0 with the
        steering held after STOP (latched) or without a COMMAND for ``command_timeout_s``."""
        now = self.clock() if now is None else now
        if self.stopped is not None:
            return DriveCommand(self.steer, 0.0, 0.0, "stop")
        if self.command is None:
            return None
        if now - self.last_command_t > self.command_timeout_s:
            return DriveCommand(self.steer, 0.0, 0.0, "failsafe")
        return self.command


# --- the ROS node (imports rclpy here only) ---------------------------------------------------------------
def main(argv=None) -> int:
    import socket

    from racing.runtime.auth import load_key
    from racing.runtime.vehicle import check_address

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--key", required=True, help="shared HMAC key file (chmod 600)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (the car-facing interface)")
    p.add_argument("--port", type=int, default=5600)
    p.add_argument("--peer", default=None, help="HOST:PORT of the computer (default: who sent the last datagram)")
    p.add_argument("--allow-remote", action="store_true", help="permit a non-loopback --host / --peer")
    p.add_argument("--odom-topic", default="/odom")
    p.add_argument("--drive-topic", default="/drive")
    p.add_argument("--twist-frame", choices=("body", "world"), default="body")
    p.add_argument("--rate", type=float, default=100.0, help="/drive publication and link polling rate [Hz]")
    p.add_argument("--command-timeout", type=float, default=0.5, help="speed 0 without COMMAND for this long [s]")
    p.add_argument("--max-age", type=float, default=0.25, help="freshness window of the computer's datagrams [s]")
    p.add_argument("--clock", choices=("shared", "estimate"), default="shared")
    p.add_argument("--interface", choices=tuple(DRIVE_INTERFACES), default="speed",
                   help="the car's drive interface (its car file's drive_interface): speed publishes no acceleration")
    p.add_argument("--drive-msg", choices=DRIVE_MSGS, default="auto",
                   help="/drive message: ackermann (AckermannDriveStamped), twist (linear.x speed, angular.z steering "
                        "angle) or auto (ackermann when importable)")
    args = p.parse_args(argv)
    check_address(args.host, "--host", args.allow_remote)
    peer = None
    if args.peer:
        host, _, port = args.peer.rpartition(":")
        peer = (host, int(port))
        check_address(host, "--peer", args.allow_remote)
    security = LinkSecurity(key=load_key(args.key), max_age_s=args.max_age, clock=args.clock)
    core = BridgeCore(security, peer, args.command_timeout, interface=args.interface)

    import rclpy  # only here: the functions above need no ROS
    from nav_msgs.msg import Odometry

    try:
        from ackermann_msgs.msg import AckermannDriveStamped
    except ImportError:
        AckermannDriveStamped = None
    try:
        msg_kind = resolve_drive_msg(args.drive_msg, args.interface, AckermannDriveStamped is not None)
    except ValueError as exc:
        print(f"ros2_bridge: error: {exc}", file=sys.stderr)
        return 2
    if msg_kind == "twist":
        from geometry_msgs.msg import Twist as DriveMsg
    else:
        DriveMsg = AckermannDriveStamped

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.host, args.port))
    sock.setblocking(False)

    rclpy.init()
    node = rclpy.create_node("racing_link_bridge")
    pub = node.create_publisher(DriveMsg, args.drive_topic, 1)

    def on_odom(msg):
        if core.computer is None:
            return
        ros_now = node.get_clock().now().nanoseconds * 1e-9
        t_meas = ros_to_link_time(stamp_to_seconds(msg.header.stamp.sec, msg.header.stamp.nanosec), ros_now,
                                  time.monotonic())
        pose, tw = msg.pose.pose, msg.twist.twist
        try:
            state = odometry_to_state(pose.position.x, pose.position.y, pose.orientation.x, pose.orientation.y,
                                      pose.orientation.z, pose.orientation.w, tw.linear.x, tw.linear.y, tw.angular.z,
                                      core.steer, args.twist_frame)
        except ValueError as exc:
            node.get_logger().warn(f"odometry not sent: {exc}", throttle_duration_sec=1.0)
            return
        try:
            sock.sendto(core.state_datagram(t_meas, state), core.computer)
        except OSError as exc:
            node.get_logger().warn(f"send STATE: {exc}", throttle_duration_sec=1.0)

    def on_timer():
        for _ in range(64):
            try:
                data, addr = sock.recvfrom(proto.MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            core.receive(data, addr[:2])
        cmd = core.drive()
        if cmd is None:
            return
        out = DriveMsg()
        if msg_kind == "ackermann":
            out.header.stamp = node.get_clock().now().to_msg()
            out.header.frame_id = "base_link"
        for name, value in drive_fields(cmd, msg_kind).items():
            part, field_name = name.split(".")
            setattr(getattr(out, part), field_name, value)
        pub.publish(out)

    node.create_subscription(Odometry, args.odom_topic, on_odom, 10)
    node.create_timer(1.0 / args.rate, on_timer)
    node.get_logger().info(f"bridging {args.odom_topic} / {args.drive_topic} ({msg_kind}, interface {args.interface}) "
                           f"<-> udp://{args.host}:{args.port} (protocol v2, {args.clock} clock)")
    from rclpy.executors import ExternalShutdownException

    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        print(json.dumps({"counts": core.counts, "rejected": dict(core.rx.counts), "drive_msg": msg_kind,
                          "interface": args.interface}), flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
