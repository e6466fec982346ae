"""The ROS 2 bridge's translation and vehicle-side logic, without ROS (rclpy is never imported)."""
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from racing.runtime import protocol as proto
from racing.runtime.auth import LinkSecurity, Sender

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(40, 72))


@pytest.fixture(scope="module")
def bridge():
    spec = importlib.util.spec_from_file_location("ros2_bridge", ROOT / "tools" / "ros2_bridge.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ros2_bridge"] = mod  # dataclasses look their module up
    before = "rclpy" in sys.modules  # another test may have imported it
    spec.loader.exec_module(mod)
    assert ("rclpy" in sys.modules) == before  # imported only when the bridge runs
    return mod


@pytest.mark.parametrize("yaw", [0.0, 0.3, -1.2, math.pi / 2, 3.0, -3.0, math.pi - 1e-9])
def test_quaternion_to_yaw_round_trip(bridge, yaw):
    q = bridge.yaw_to_quaternion(yaw)
    assert bridge.quaternion_to_yaw(*q) == pytest.approx(yaw, abs=1e-12)
    assert bridge.quaternion_to_yaw(*(2.5 * v for v in q)) == pytest.approx(yaw, abs=1e-12)  # not normalised
    assert bridge.quaternion_to_yaw(*(-v for v in q)) == pytest.approx(yaw, abs=1e-12)  # q and -q


def test_yaw_ignores_roll_and_pitch_and_wraps(bridge):
    # roll 0.2, pitch -0.1, yaw 1.0 (ZYX): the yaw comes back
    r, p, y = 0.2, -0.1, 1.0
    cr, sr, cp, sp, cy, sy = (math.cos(r / 2), math.sin(r / 2), math.cos(p / 2), math.sin(p / 2), math.cos(y / 2),
                              math.sin(y / 2))
    q = (sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
         cr * cp * cy + sr * sp * sy)
    assert bridge.quaternion_to_yaw(*q) == pytest.approx(1.0, abs=1e-12)
    assert bridge.quaternion_to_yaw(0.0, 0.0, 1.0, 0.0) == pytest.approx(math.pi)  # (-pi, pi]
    assert bridge.wrap_angle(-math.pi) == math.pi
    with pytest.raises(ValueError, match="no orientation"):
        bridge.quaternion_to_yaw(0.0, 0.0, 0.0, 0.0)


def test_body_and_world_velocities(bridge):
    vx, vy = bridge.world_to_body(0.0, 2.0, math.pi / 2)  # moving +y in the world while facing +y
    assert vx == pytest.approx(2.0) and vy == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b, yaw = rng.normal(size=3) * 3
        assert bridge.body_to_world(*bridge.world_to_body(a, b, yaw), yaw) == pytest.approx((a, b), abs=1e-12)


def test_odometry_to_state(bridge):
    q = bridge.yaw_to_quaternion(0.7)
    body = bridge.odometry_to_state(1.0, 2.0, *q, 3.0, 0.1, 0.4, 0.05)
    assert body == pytest.approx((1.0, 2.0, 0.7, 3.0, 0.1, 0.4, 0.05))
    vxw, vyw = bridge.body_to_world(3.0, 0.1, 0.7)
    world = bridge.odometry_to_state(1.0, 2.0, *q, vxw, vyw, 0.4, 0.05, twist_frame="world")
    assert world == pytest.approx(body)
    with pytest.raises(ValueError, match="vx"):
        bridge.odometry_to_state(0, 0, *q, math.nan, 0, 0, 0)
    with pytest.raises(ValueError, match="twist frame"):
        bridge.odometry_to_state(0, 0, *q, 0, 0, 0, 0, twist_frame="map")


def test_stamps(bridge):
    assert bridge.stamp_to_seconds(12, 500_000_000) == 12.5
    assert bridge.seconds_to_stamp(12.5) == (12, 500_000_000)
    assert bridge.seconds_to_stamp(3.9999999999) == (4, 0)
    sec, nsec = bridge.seconds_to_stamp(1_700_000_000.123456789)
    assert sec == 1_700_000_000 and abs(nsec - 123_456_789) < 500
    # an odometry message 15 ms old in ROS time is 15 ms old on the link clock
    assert bridge.ros_to_link_time(1000.000, 1000.015, 55.0) == pytest.approx(54.985)


def test_bridge_core_state_out_commands_in(bridge):
    now = {"t": 100.0}
    sec = LinkSecurity(key=KEY)
    core = bridge.BridgeCore(sec, command_timeout_s=0.5, clock=lambda: now["t"], interface="speed_accel")
    computer = Sender(sec, clock=lambda: now["t"])
    q = bridge.yaw_to_quaternion(0.2)
    data = core.state_datagram(99.99, bridge.odometry_to_state(1, 2, *q, 3, 0, 0.1, core.steer))
    msg = proto.decode(data, KEY)
    assert isinstance(msg, proto.StateMsg) and msg.t == 99.99 and msg.state[2] == pytest.approx(0.2)
    assert core.drive() is None  # nothing before the first command

    def command(steer, speed):
        return computer.datagram(proto.MsgType.COMMAND, lambda s, stamp, ses: proto.CommandMsg(
            s, stamp, 99.99, steer, speed, 0.5, ses))

    assert core.receive(command(0.1, 4.0), ("127.0.0.1", 40000)) is not None
    assert core.computer == ("127.0.0.1", 40000)
    d = core.drive()
    assert (d.steering_angle, d.speed, d.acceleration, d.reason) == (0.1, 4.0, 0.5, "command")
    assert core.steer == 0.1
    forged = Sender(LinkSecurity(key=bytes(32)), clock=lambda: now["t"])
    assert core.receive(forged.datagram(proto.MsgType.STOP, lambda s, stamp, ses: proto.StopMsg(
        s, stamp, 0.0, 0, ses))) is None and core.stopped is None and core.rx.counts["forged"] == 1
    now["t"] += 0.6  # no command for 0.6 s: failsafe, speed 0, steering held
    d = core.drive()
    assert d.reason == "failsafe" and d.speed == 0.0 and d.steering_angle == 0.1
    core.receive(command(-0.05, 5.0))
    assert core.drive().reason == "command"
    core.receive(computer.datagram(proto.MsgType.STOP, lambda s, stamp, ses: proto.StopMsg(
        s, stamp, 0.0, int(proto.StopReason.STATE_TIMEOUT), ses)))
    core.receive(command(0.3, 9.0))  # STOP is latched
    d = core.drive()
    assert core.stopped == "state_timeout" and d.reason == "stop" and d.speed == 0.0 and d.steering_angle == -0.05


def test_a_speed_only_car_gets_no_acceleration(bridge):
    """--interface speed (the default): the acceleration field goes out as 0, and a non-zero one is counted."""
    sec = LinkSecurity(key=KEY)
    core = bridge.BridgeCore(sec, clock=lambda: 100.0)
    assert core.interface == "speed" and not core.takes_acceleration
    computer = Sender(sec, clock=lambda: 100.0)
    for accel in (-6.0, 0.0):
        core.receive(computer.datagram(proto.MsgType.COMMAND, lambda s, stamp, ses: proto.CommandMsg(
            s, stamp, 99.99, 0.05, 3.0, accel, ses)), ("127.0.0.1", 40000))
        d = core.drive()
        assert (d.steering_angle, d.speed, d.acceleration) == (0.05, 3.0, 0.0)
    assert core.counts["acceleration_dropped"] == 1
    with pytest.raises(ValueError, match="interface 'pedals'"):
        bridge.BridgeCore(sec, interface="pedals")


def test_drive_message_choice_and_fields(bridge):
    cmd = bridge.DriveCommand(0.1, 4.0, -2.0, "command")
    assert bridge.drive_fields(cmd, "ackermann") == {"drive.steering_angle": 0.1, "drive.speed": 4.0,
                                                     "drive.acceleration": -2.0}
    assert bridge.drive_fields(cmd, "twist") == {"linear.x": 4.0, "angular.z": 0.1}
    assert bridge.resolve_drive_msg("auto", "speed", True) == "ackermann"
    assert bridge.resolve_drive_msg("auto", "speed", False) == "twist"
    with pytest.raises(ValueError, match="no acceleration"):
        bridge.resolve_drive_msg("twist", "speed_accel", True)
    with pytest.raises(ValueError, match="no acceleration"):
        bridge.resolve_drive_msg("auto", "speed_accel", False)
    with pytest.raises(ValueError, match="not importable"):
        bridge.resolve_drive_msg("ackermann", "speed", False)
