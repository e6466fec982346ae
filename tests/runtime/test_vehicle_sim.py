"""The simulated twin's vehicle side: commands, STOP (hold steering, brake, latched), failsafe, garbage."""
import json
import math

import numpy as np
import pytest

from racing.models.params import load_params
from racing.runtime import protocol as proto
from racing.runtime.vehicle_sim import SimTwinConfig, VehicleCore, _make_core, main

PARAMS = load_params("f1tenth")


@pytest.fixture
def core():
    return _make_core(PARAMS, np.zeros(7), SimTwinConfig(command_timeout_s=0.3))


class Link:
    """Encodes computer -> vehicle messages with increasing sequence numbers."""

    def __init__(self):
        self.seq = 0

    def command(self, steer, speed, t=0.0, seq=None):
        s = self.seq if seq is None else seq
        self.seq += 1
        return proto.encode(proto.CommandMsg(s, 0.0, t, steer, speed, 0.0))

    def stop(self, reason=proto.StopReason.NORMAL):
        return proto.encode(proto.StopMsg(0, 0.0, 0.0, reason))


def run(core, t_end, dt=0.01, record=None):
    t = core.t
    while t < t_end - 1e-12:
        t = min(t + dt, t_end)
        core.advance(t)
        if record is not None:
            record.append(core.x.copy())


def test_commands_drive_the_car_and_stop_brakes_to_standstill_holding_steering(core):
    link = Link()
    assert core.mode == "idle"
    for k in range(100):  # 1 s of commands at 100 Hz
        core.receive(link.command(0.1, 3.0, t=core.t), core.t)
        run(core, core.t + 0.01)
    assert core.mode == "driving" and core.x[3] == pytest.approx(3.0, abs=0.3)
    assert core.x[6] == pytest.approx(0.1, abs=0.01)
    core.receive(link.stop(proto.StopReason.DEADLINE_MISSES), core.t)
    t_stop = core.t
    assert core.mode == "stopped" and core.stats["stop_reason"] == "deadline_misses"
    trace = []
    run(core, t_stop + 1.0, record=trace)
    vx = np.array([x[3] for x in trace])
    steer = np.array([x[6] for x in trace])
    assert abs(vx[-1]) < 0.05 and vx.min() > -0.05  # stopped, never reversed
    np.testing.assert_allclose(steer, 0.1, atol=0.01)  # held
    dt_stop = core.stats["standstill_t"] - t_stop
    assert dt_stop < 3.0 / PARAMS.decel_max + 0.25  # braked hard, not coasting
    core.receive(link.command(0.0, 5.0), core.t)  # STOP is latched
    run(core, core.t + 0.5)
    assert core.stats["commands_ignored"] == 1 and abs(core.x[3]) < 0.05 and core.mode == "stopped"


def test_failsafe_brakes_without_commands_and_a_new_command_resumes(core):
    link = Link()
    core.receive(link.command(0.0, 2.0), 0.0)
    run(core, 0.25)
    assert core.mode == "driving"
    for t in (0.3, 0.4, 0.5):  # heartbeats say "alive" but do not extend the command
        core.receive(proto.encode(proto.HeartbeatMsg(int(t * 10), 0.0, 0.0)), t)
    run(core, 1.0)
    assert core.mode == "failsafe" and core.stats["failsafe_events"] == 1 and abs(core.x[3]) < 0.05
    core.receive(link.command(0.0, 2.0), core.t)
    run(core, core.t + 0.2)
    assert core.mode == "driving" and core.x[3] > 0.5


def test_stale_and_garbled_datagrams_are_dropped(core):
    link = Link()
    core.receive(link.command(0.0, 2.0, seq=10), 0.0)
    core.receive(link.command(0.0, 9.0, seq=9), 0.01)
    assert core.command.speed == 2.0 and core.stats["stale_commands"] == 1
    assert core.receive(b"\x00" * 56, 0.02) is None
    bad = bytearray(link.command(0.0, 1.0, seq=11))
    bad[30] ^= 0x10
    assert core.receive(bytes(bad), 0.03) is None
    assert core.stats["dropped"] == 2 and "crc32" in core.stats["last_error"]
    core.receive(proto.encode(proto.StateMsg(0, 0.0, 0.0, (0,) * 7)), 0.04)
    assert core.stats["unexpected"] == 1


def test_latency_from_the_echoed_state_time(core):
    link = Link()
    run(core, 1.0)
    core.receive(link.command(0.0, 1.0, t=0.97), 1.0)
    assert core.stats["latency_ms_max"] == pytest.approx(30.0, abs=1e-6)


def test_state_datagrams_decode_and_count(core):
    run(core, 0.1)
    msg = proto.decode(core.state_datagram(stamp=0.1))
    assert isinstance(msg, proto.StateMsg) and msg.t == pytest.approx(0.1) and msg.seq == 0
    assert proto.decode(core.state_datagram(stamp=0.1)).seq == 1 and core.stats["states_sent"] == 2


def test_diverged_plant_publishes_nothing():
    class Boom:
        def reset(self, x0):
            pass

        def step(self, command, dt):
            raise FloatingPointError("plant state became non-finite")

    core = VehicleCore(Boom(), PARAMS, np.zeros(7))
    core.advance(0.1)
    assert core.mode == "diverged" and core.state_datagram(0.1) is None and "diverged" in core.stats["last_error"]


def test_standalone_twin_entry_point(capsys):
    assert main(["--port", "0", "--duration", "0.3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "idle" and math.isfinite(report["t"])
