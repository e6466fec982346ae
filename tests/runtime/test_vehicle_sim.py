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
    assert main(["--port", "0", "--duration", "0.3", "--protocol", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "idle" and math.isfinite(report["t"])


# --- actuation delay, authentication, any plant ------------------------------------------------------
KEY = bytes(range(32))


def test_commands_and_stop_act_after_the_actuation_delay():
    core = _make_core(PARAMS, np.zeros(7), SimTwinConfig(delay_s=0.05))
    link = Link()
    core.receive(link.command(0.0, 3.0), 0.0)
    run(core, 0.049)
    assert core.mode == "idle" and abs(core.x[3]) < 1e-9  # not yet
    run(core, 0.3)
    assert core.mode == "driving" and core.x[3] > 0.5
    core.receive(link.stop(), 0.3)
    run(core, 0.34)
    assert core.mode == "driving"
    run(core, 0.36)
    assert core.mode == "stopped" and core.stats["stop_t"] == pytest.approx(0.35)


def test_v2_vehicle_obeys_only_authenticated_fresh_commands():
    from racing.runtime.auth import LinkSecurity, Sender

    sec = LinkSecurity(key=KEY, max_age_s=0.1)
    core = _make_core(PARAMS, np.zeros(7), SimTwinConfig(), security=sec)
    now = {"t": 0.0}
    computer = Sender(sec, clock=lambda: now["t"])

    def cmd(speed, sender=computer):
        return sender.datagram(proto.MsgType.COMMAND, lambda s, stamp, ses: proto.CommandMsg(
            s, stamp, 0.0, 0.0, speed, 0.0, ses))

    forged = Sender(LinkSecurity(key=bytes(32)), clock=lambda: now["t"])
    assert core.receive(cmd(5.0, forged), 0.0) is None
    assert core.receive(proto.encode(proto.CommandMsg(0, 0.0, 0.0, 0.0, 5.0)), 0.0) is None  # unsigned
    good = cmd(2.0)
    assert core.receive(good, 0.0) is not None and core.command.speed == 2.0
    assert core.receive(good, 0.01) is None  # replayed
    now["t"] = -1.0
    assert core.receive(cmd(9.0), 0.02) is None  # stale stamp
    assert core.report()["rejected"] == {"foreign": 0, "garbled": 0, "unsigned": 1, "forged": 1, "replayed": 1,
                                         "stale": 1, "unexpected": 0}
    assert core.command.speed == 2.0
    # the STATE it publishes verifies with the key
    msg = proto.decode(core.state_datagram(), KEY)
    assert isinstance(msg, proto.StateMsg) and msg.session == core.tx.session != 0


class ConstantSpeedPlant:
    """A toy plant for the module:factory path: moves along x at the commanded speed."""

    def __init__(self, params, plant_hz=1000.0):
        self.x = np.zeros(7)

    def reset(self, x0):
        self.x = np.array(x0, dtype=float)

    def step(self, command, dt):
        self.x[3] = command.speed
        self.x[0] += command.speed * dt
        return self.x.copy()


def make_toy_plant(params, plant_hz=1000.0):
    return ConstantSpeedPlant(params, plant_hz)


def make_broken_plant(params, plant_hz=1000.0):
    class Broken(ConstantSpeedPlant):
        def step(self, command, dt):
            return np.zeros(3)

    return Broken(params)


def test_any_plant_by_module_factory(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "toy_plants", sys.modules[__name__])
    core = _make_core(PARAMS, np.zeros(7), SimTwinConfig(plant="toy_plants:make_toy_plant"))
    core.receive(Link().command(0.0, 2.0), 0.0)
    run(core, 0.4)
    assert core.x[0] == pytest.approx(0.8, abs=1e-6)
    with pytest.raises(ValueError, match=r"plant 'toy_plants:make_broken_plant'.*7 finite numbers"):
        _make_core(PARAMS, np.zeros(7), SimTwinConfig(plant="toy_plants:make_broken_plant"))
    with pytest.raises(ValueError, match="unknown plant 'warp'"):
        _make_core(PARAMS, np.zeros(7), SimTwinConfig(plant="warp"))


def test_vehicle_sim_command_refuses_bad_setups(tmp_path, capsys):
    from racing.cli import main as racing_main

    key = tmp_path / "car.key"
    key.write_text("ab" * 32)
    key.chmod(0o644)
    cases = [(["--port", "0"], "needs --key FILE"),
             (["--port", "0", "--key", str(key)], "accessible by group and others"),
             (["--host", "0.0.0.0", "--protocol", "1"], "--allow-remote"),
             (["--peer", "192.0.2.7:5601", "--protocol", "1"], "--allow-remote"),
             (["--protocol", "1", "--delay", "-1"], "--delay"),
             (["--protocol", "1", "--plant", "nowhere:factory"], "cannot import module 'nowhere'")]
    for argv, words in cases:
        assert racing_main(["vehicle-sim", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert words in err, (argv, err)
