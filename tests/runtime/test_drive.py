"""End to end over real loopback UDP: the runtime loop drives the simulated twin; `racing drive`.

Real-time tests: generous watchdog margins (a slow, shared machine must not trip them) and
assertions on behaviour (progress, counts, reasons), never on exact timings.
"""
import json
import socket
import threading

import numpy as np
import pytest

from racing.cli import main
from racing.control import make_controller
from racing.logs import read_log
from racing.models.params import load_params
from racing.runtime import protocol as proto
from racing.runtime.loop import LoopConfig, RuntimeLoop
from racing.runtime.vehicle import UdpVehicle
from racing.runtime.vehicle_sim import SimTwinConfig, UdpSimTwin
from racing.runtime.watchdog import WatchdogConfig
from racing.sim.simulator import initial_state
from racing.track import load_track

JSON_KEYS = {"status", "ticks", "deadline_misses", "compute_ms", "packets_dropped", "watchdog", "log", "duration_s",
             "laps"}
GENEROUS = dict(state_timeout_s=0.5, max_consecutive_misses=25, hang_timeout_s=2.0, off_track_margin_m=0.5)


@pytest.fixture(scope="module")
def setup():
    track, params = load_track("lab_loop"), load_params("f1tenth")
    return track, params


def test_pure_pursuit_drives_the_udp_twin(setup, tmp_path):
    track, params = setup
    twin = UdpSimTwin(params, initial_state(track), SimTwinConfig(), mode="thread", max_lifetime_s=30.0)
    host, port = twin.start()
    veh = UdpVehicle(host, port)
    try:
        veh.connect()
        junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # garbage on the computer's port
        for data in (b"hello", bytes(88), proto.encode(proto.HeartbeatMsg(0, 0.0, 0.0))[:-1]):
            junk.sendto(data, veh.local_address)
        junk.close()
        ctl = make_controller("pure_pursuit", track, params)
        conf = LoopConfig(rate_hz=50.0, duration_s=3.0, watchdog=WatchdogConfig(**GENEROUS))
        res = RuntimeLoop(ctl, veh, conf, track=track, log_path=tmp_path / "drive.csv").run()
    finally:
        veh.close()
        report = twin.stop()
    assert res.status == "completed" and res.watchdog is None, res.events
    assert res.link["dropped"] == 3 and res.summary()["packets_dropped"] == 3
    assert any(e["type"] == "protocol_error" for e in res.events)
    assert 140 <= res.ticks + res.skipped_ticks <= 151
    log = read_log(tmp_path / "drive.csv")
    assert log.t.size == res.log_rows == res.control_ticks and res.ticks - res.log_rows <= 10
    s, _, _ = track.frenet(log.state[:, :2])
    assert res.progress_m > 5.0 and s[-1] - s[0] > 5.0  # moved forward along the track
    assert np.all(np.abs(log.command[:, 0]) <= params.steer_max + 1e-9)
    assert report["stop_reason"] == "normal" and report["stops"] >= 1 and report["commands"] >= res.control_ticks - 5
    assert report["dropped"] == 0 and report["latency_ms_max"] is not None


def test_link_loss_trips_state_timeout(setup):
    track, params = setup
    twin = UdpSimTwin(params, initial_state(track), mode="thread", max_lifetime_s=30.0)
    host, port = twin.start()
    veh = UdpVehicle(host, port)
    timer = threading.Timer(1.0, twin.stop)  # the vehicle goes silent after ~1 s
    try:
        veh.connect()
        timer.start()
        conf = LoopConfig(duration_s=20.0, watchdog=WatchdogConfig(state_timeout_s=0.3, max_consecutive_misses=25,
                                                                   hang_timeout_s=2.0))
        res = RuntimeLoop(make_controller("pure_pursuit", track, params), veh, conf, track=track).run()
    finally:
        timer.cancel()
        veh.close()
        twin.stop()
    assert res.status == "watchdog:state_timeout", res.events
    assert res.duration_s < 15.0 and res.control_ticks > 0


def test_cli_drive_sim_json(tmp_path, capsys):
    log = tmp_path / "run.csv"
    rc = main(["drive", "--vehicle", "sim", "--controller", "pure_pursuit", "--duration", "2", "--json",
               "--log", str(log), "--state-timeout", "0.5", "--max-misses", "25"])
    out = capsys.readouterr().out
    data = json.loads(out)
    assert rc == 0, data
    assert JSON_KEYS <= set(data)
    assert data["status"] == "completed" and data["watchdog"] is None and data["packets_dropped"] == 0
    assert set(data["compute_ms"]) == {"p50", "p99", "max"} and data["compute_ms"]["p50"] > 0
    assert data["laps"] == [] and data["progress_m"] > 2.0 and data["log"] == str(log)
    assert 90 <= data["ticks"] + data["skipped_ticks"] <= 101
    sim = data["vehicle_sim"]
    assert sim["stop_reason"] == "normal" and sim["mode"] == "stopped" and sim["standstill_t"] is not None
    assert read_log(log).t.size == data["log_rows"] > 0
    assert json.loads((tmp_path / "run.summary.json").read_text())["ticks"] == data["ticks"]


def test_cli_drive_udp_url_table(setup, tmp_path, capsys):
    track, params = setup
    twin = UdpSimTwin(params, initial_state(track), mode="thread", max_lifetime_s=30.0)
    host, port = twin.start()
    try:
        rc = main(["drive", "--vehicle", f"udp://{host}:{port}", "--duration", "1", "--log", str(tmp_path / "u.csv"),
                   "--state-timeout", "0.5", "--max-misses", "25", "--hang-timeout", "2"])
    finally:
        report = twin.stop()
    text = capsys.readouterr().out
    assert rc == 0, text
    for word in ("ticks", "deadline misses", "compute p50 / p99 / max", "watchdog", "ok", "completed", "u.csv"):
        assert word in text
    assert report["stop_reason"] == "normal"


@pytest.mark.parametrize("argv,pattern", [
    (["--vehicle", "tcp://127.0.0.1:5600"], "udp://HOST:PORT"),
    (["--vehicle", "udp://127.0.0.1"], "port"),
    (["--rate", "0"], "--rate"),
    (["--duration", "-1"], "--duration"),
    (["--controller", "magic"], "unknown controller 'magic'"),
])
def test_cli_drive_bad_arguments(argv, pattern, tmp_path, capsys):
    rc = main(["drive", "--log", str(tmp_path / "x.csv")] + argv)
    err = capsys.readouterr().err
    assert rc == 2 and pattern in err, err
