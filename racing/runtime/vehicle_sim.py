"""The simulated twin of a car: the vehicle side of :mod:`racing.runtime.protocol` around a plant.

Three layers:

* :class:`VehicleCore` - transport-free vehicle logic: decodes datagrams, applies COMMANDs
  (zero-order hold), latches STOP, runs the vehicle-side failsafe (no COMMAND for
  ``command_timeout_s`` -> brake), steps a :mod:`racing.sim.plant` plant to the vehicle clock and
  encodes STATE datagrams.
* :class:`UdpSimTwin` - the core in real time behind a UDP socket on 127.0.0.1, in a thread or in
  a child process (its own interpreter and GIL, like a separate vehicle computer). It publishes
  STATE at ``state_hz`` to ``peer`` - or, if none is given, to the source address of the latest
  valid datagram from the computer - and applies each datagram at its arrival time.
* :class:`LoopbackSimVehicle` - a :class:`~racing.runtime.vehicle.Vehicle` that runs the core
  in-process on the caller's clock (deterministic with a fake clock; every message still goes
  through encode/decode). For tests.

Braking (STOP latched, failsafe not latched): hold the last commanded steering angle, command
speed 0 with a feed-forward deceleration ``-decel_max * min(1, v_x / brake_blend_speed)`` so the
car brakes hard and settles at standstill without reversing.

Run a twin by hand (then ``racing drive --vehicle udp://127.0.0.1:5600`` in another terminal)::

    python -m racing.runtime.vehicle_sim --track lab_loop --car f1tenth --port 5600
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from racing.control.base import Command
from racing.runtime import protocol as proto
from racing.runtime.vehicle import LOOPBACK, Vehicle


@dataclass(frozen=True)
class SimTwinConfig:
    """Settings of the simulated vehicle."""

    state_hz: float = field(default=100.0, metadata={"unit": "Hz", "gt": 0.0, "max": 2000.0})
    plant: str = field(default="dynamic", metadata={"doc": "plant name or module:factory (racing.sim.plant)"})
    plant_hz: float = field(default=1000.0, metadata={"unit": "Hz", "min": 500.0})
    command_timeout_s: float = field(default=0.5, metadata={"unit": "s", "gt": 0.0,
                                                            "doc": "vehicle-side failsafe: brake without link"})
    brake_blend_speed: float = field(default=0.5, metadata={"unit": "m/s", "gt": 0.0})
    brake_step_s: float = field(default=0.005, metadata={"unit": "s", "gt": 0.0,
                                                         "doc": "plant step while braking (feed-forward update)"})


class VehicleCore:
    """Vehicle-side protocol logic around a plant, on the vehicle clock ``now`` [s] (starts at 0).

    Modes: ``idle`` (no command yet: hold still), ``driving``, ``failsafe`` (no COMMAND for
    ``command_timeout_s``: braking, a new COMMAND resumes; HEARTBEATs do not extend a command),
    ``stopped`` (STOP received: braking, latched), ``diverged`` (the plant failed: no more STATE).
    """

    def __init__(self, plant, params, x0: np.ndarray, config: SimTwinConfig = SimTwinConfig()):
        self.plant, self.params, self.config = plant, params, config
        self.x = np.asarray(x0, dtype=np.float64).copy()
        plant.reset(self.x)
        self.t = 0.0
        self.mode = "idle"
        self.command = Command(0.0, 0.0, 0.0)
        self.last_command_rx: float | None = None  # vehicle time of the last applied COMMAND
        self.last_heartbeat_rx: float | None = None
        self._last_cmd_seq: int | None = None
        self._state_seq = 0
        self._lat_sum = 0.0
        self.stats = {"states_sent": 0, "commands": 0, "heartbeats": 0, "stops": 0, "dropped": 0,
                      "stale_commands": 0, "commands_ignored": 0, "unexpected": 0, "failsafe_events": 0,
                      "latency_ms_mean": None, "latency_ms_max": None, "stop_reason": None, "stop_t": None,
                      "standstill_t": None, "last_error": None}

    # --- inputs ---------------------------------------------------------------------------
    def receive(self, data: bytes, now: float):
        """Apply one datagram received at vehicle time ``now`` (advance the plant first)."""
        self.advance(now)
        try:
            msg = proto.decode(data)
        except proto.ProtocolError as exc:
            self.stats["dropped"] += 1
            self.stats["last_error"] = str(exc)
            return None
        st = self.stats
        if isinstance(msg, proto.CommandMsg):
            if self.mode == "stopped":
                st["commands_ignored"] += 1
            elif self._last_cmd_seq is not None and not proto.seq_newer(msg.seq, self._last_cmd_seq):
                st["stale_commands"] += 1
            else:
                self._last_cmd_seq = msg.seq
                self.command = Command(msg.steering_angle, msg.speed, msg.acceleration)
                self.last_command_rx = now
                if self.mode != "diverged":
                    self.mode = "driving"
                st["commands"] += 1
                if msg.t > 0.0:
                    lat = 1e3 * max(now - msg.t, 0.0)
                    self._lat_sum += lat
                    st["latency_ms_mean"] = self._lat_sum / st["commands"]
                    st["latency_ms_max"] = max(st["latency_ms_max"] or 0.0, lat)
        elif isinstance(msg, proto.HeartbeatMsg):
            st["heartbeats"] += 1
            self.last_heartbeat_rx = now
        elif isinstance(msg, proto.StopMsg):
            st["stops"] += 1
            if self.mode != "stopped":
                if self.mode != "diverged":
                    self.mode = "stopped"
                st["stop_reason"] = msg.reason_name
                st["stop_t"] = now
        else:
            st["unexpected"] += 1
        return msg

    # --- physics ----------------------------------------------------------------------------
    def _brake_command(self) -> Command:
        vx = float(self.x[3])
        ff = -self.params.decel_max * min(1.0, max(vx, 0.0) / self.config.brake_blend_speed)
        return Command(self.command.steering_angle, 0.0, ff)

    def advance(self, now: float) -> None:
        """Step the plant from ``self.t`` to ``now`` [s] with the command in force."""
        cfg = self.config
        while self.t < now - 1e-9 and self.mode != "diverged":
            dt = now - self.t
            if self.mode == "driving" and self.last_command_rx is not None:
                expiry = self.last_command_rx + cfg.command_timeout_s
                if self.t >= expiry:
                    self.mode = "failsafe"
                    self.stats["failsafe_events"] += 1
                else:
                    dt = min(dt, expiry - self.t)
            if self.mode in ("stopped", "failsafe"):
                dt = min(dt, cfg.brake_step_s)
                cmd = self._brake_command()
            elif self.mode == "idle":
                cmd = Command(0.0, 0.0, 0.0)
            else:
                cmd = self.command
            try:
                x = self.plant.step(cmd, dt)
            except FloatingPointError as exc:
                self.mode = "diverged"
                self.stats["last_error"] = f"plant diverged: {exc}"
                return
            self.x = np.asarray(x, dtype=np.float64)
            self.t += dt
            if (self.mode == "stopped" and self.stats["standstill_t"] is None and abs(self.x[3]) < 0.05):
                self.stats["standstill_t"] = self.t

    # --- outputs ----------------------------------------------------------------------------
    def state_datagram(self, stamp: float) -> bytes | None:
        """The STATE datagram of the current state (None once the plant has diverged)."""
        if self.mode == "diverged" or not np.all(np.isfinite(self.x)):
            return None
        data = proto.encode(proto.StateMsg(self._state_seq, stamp, self.t, tuple(float(v) for v in self.x)))
        self._state_seq = (self._state_seq + 1) % proto.SEQ_MOD
        self.stats["states_sent"] += 1
        return data

    def report(self) -> dict:
        out = dict(self.stats)
        out.update(mode=self.mode, t=self.t, state=[float(v) for v in self.x],
                   speed_mps=float(math.hypot(self.x[3], self.x[4])))
        return out


def _make_core(params, x0, config: SimTwinConfig) -> VehicleCore:
    from racing.sim.plant import make_plant

    plant = make_plant(config.plant, params, plant_hz=config.plant_hz)
    # first call loads / compiles the numba kernels (~0.5 s): do it before the clock starts
    plant.reset(np.asarray(x0, dtype=np.float64))
    plant.step(Command(0.0, 0.0, 0.0), 1e-3)
    return VehicleCore(plant, params, x0, config)


def serve(sock: socket.socket, core: VehicleCore, should_stop, peer: tuple[str, int] | None = None,
          max_lifetime_s: float | None = None, clock=time.monotonic) -> dict:
    """Run ``core`` in real time on ``sock`` until ``should_stop()`` (checked at least every 50 ms).

    Publishes STATE every ``1 / state_hz`` [s] on absolute deadlines (late ones are skipped, not
    bunched) to ``peer`` or to the last computer address heard from. Returns ``core.report()``.
    """
    sock.setblocking(False)
    period = 1.0 / core.config.state_hz
    t0 = clock()
    next_pub = 0.0
    target = peer
    while not should_stop():
        now = clock() - t0
        if max_lifetime_s is not None and now > max_lifetime_s:
            break
        wait = next_pub - now
        if wait > 0.0:
            try:
                select.select([sock], [], [], min(wait, 0.05))
            except InterruptedError:
                pass
        for _ in range(64):
            try:
                data, addr = sock.recvfrom(proto.MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            msg = core.receive(data, clock() - t0)
            if msg is not None and peer is None:
                target = addr[:2]
        now = clock() - t0
        if now >= next_pub:
            core.advance(now)
            data = core.state_datagram(stamp=now) if target is not None else None
            if data is not None:
                try:
                    sock.sendto(data, target)
                except OSError as exc:
                    core.stats["last_error"] = f"send: {exc}"
            next_pub = (math.floor(now / period) + 1) * period
    return core.report()


def _process_main(conn, stop_event, params, x0, config, host, port, peer, parent_pid, max_lifetime_s):
    # Ctrl-C goes to the whole process group: the parent decides when the twin ends (after its STOP)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        core = _make_core(params, x0, config)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, port))
    except Exception as exc:  # report start-up failures to the parent instead of dying silently
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", sock.getsockname()[:2]))
    try:
        report = serve(sock, core, lambda: stop_event.is_set() or os.getppid() != parent_pid, peer,
                       max_lifetime_s)
    finally:
        sock.close()
    conn.send(("stats", report))


class UdpSimTwin:
    """The simulated car in real time on ``host:port`` (127.0.0.1, free port by default).

    ``mode`` = ``"thread"`` (in this process) or ``"process"`` (a spawned child process).
    ``start()`` returns the (host, port) where the twin receives; ``stop()`` returns its report
    (counters, final state, mode, STOP reason, time to standstill).
    ``max_lifetime_s`` bounds the twin's life even if nobody calls ``stop()``.
    """

    def __init__(self, params, x0, config: SimTwinConfig = SimTwinConfig(), host: str = LOOPBACK, port: int = 0,
                 peer: tuple[str, int] | None = None, mode: str = "thread", max_lifetime_s: float | None = 3600.0):
        if mode not in ("thread", "process"):
            raise ValueError(f"UdpSimTwin: mode {mode!r}; expected 'thread' or 'process'")
        self.params, self.x0, self.config = params, np.asarray(x0, dtype=np.float64).copy(), config
        self.host, self.port, self.peer, self.mode = host, int(port), peer, mode
        self.max_lifetime_s = max_lifetime_s
        self.address: tuple[str, int] | None = None
        self.report: dict | None = None
        self._thread = self._proc = self._conn = None
        self._stop_flag = threading.Event()
        self._mp_stop = None
        self._sock = None

    def start(self, timeout: float = 120.0) -> tuple[str, int]:
        if self.address is not None:
            return self.address
        if self.mode == "thread":
            core = _make_core(self.params, self.x0, self.config)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.host, self.port))
            self._sock = sock
            self.address = sock.getsockname()[:2]

            def run():
                try:
                    self.report = serve(sock, core, self._stop_flag.is_set, self.peer, self.max_lifetime_s)
                finally:
                    sock.close()

            self._thread = threading.Thread(target=run, name="sim-twin", daemon=True)
            self._thread.start()
            return self.address
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._mp_stop = ctx.Event()
        self._proc = ctx.Process(target=_process_main, name="sim-twin", daemon=True,
                                 args=(child, self._mp_stop, self.params, self.x0, self.config, self.host, self.port,
                                       self.peer, os.getpid(), self.max_lifetime_s))
        self._proc.start()
        self._conn = parent
        if not parent.poll(timeout):
            self._kill()
            raise RuntimeError(f"simulated vehicle did not start within {timeout:g} s")
        kind, payload = parent.recv()
        if kind != "ready":
            self._kill()
            raise RuntimeError(f"simulated vehicle failed to start: {payload}")
        self.address = tuple(payload)
        return self.address

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5.0)

    def stop(self, timeout: float = 5.0) -> dict | None:
        """Stop the twin and return its report (None if it could not be collected)."""
        if self._thread is not None:
            self._stop_flag.set()
            self._thread.join(timeout)
            self._thread = None
        elif self._proc is not None:
            self._mp_stop.set()
            try:
                if self._conn.poll(timeout):
                    kind, payload = self._conn.recv()
                    if kind == "stats":
                        self.report = payload
            except (EOFError, OSError):
                pass
            self._proc.join(timeout)
            self._kill()
            self._proc = None
            self._conn.close()
        return self.report

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


class LoopbackSimVehicle(Vehicle):
    """An in-process simulated vehicle on the caller's ``clock`` (a :class:`Vehicle`, no sockets).

    Every message is encoded and decoded as on the wire. ``latest_state()`` steps the plant to
    ``clock()`` and returns a new STATE whenever a ``1 / state_hz`` publication instant has passed.
    """

    def __init__(self, params, x0, config: SimTwinConfig = SimTwinConfig(), clock=time.perf_counter, plant=None):
        super().__init__()
        self.config = config
        if plant is None:
            self.core = _make_core(params, x0, config)
        else:
            self.core = VehicleCore(plant, params, x0, config)
        self.clock = clock
        self._t0: float | None = None
        self._next_pub = 0.0
        self._seq = {t: 0 for t in proto.MsgType}

    def describe(self) -> str:
        return "loopback simulated vehicle"

    def _now(self) -> float:
        if self._t0 is None:
            raise RuntimeError("LoopbackSimVehicle used before connect()")
        return self.clock() - self._t0

    def connect(self) -> None:
        if self._t0 is None:
            self._t0 = self.clock()

    def latest_state(self):
        now = self._now()
        if now < self._next_pub:
            return None
        self.core.advance(now)
        self._next_pub = (math.floor(now * self.config.state_hz) + 1) / self.config.state_hz
        data = self.core.state_datagram(stamp=now)
        if data is None:
            return None
        try:
            msg = proto.decode(data)
        except proto.ProtocolError as exc:
            self.stats.dropped += 1
            self.errors.append(str(exc))
            return None
        self.stats.rx += 1
        self.stats.states += 1
        return msg.t, msg.array

    def _deliver(self, mtype, make) -> None:
        now = self._now()
        seq = self._seq[mtype]
        self._seq[mtype] = (seq + 1) % proto.SEQ_MOD
        self.core.receive(proto.encode(make(seq, now)), now)
        self.stats.tx += 1

    def send(self, command: Command, t: float = 0.0) -> None:
        self._deliver(proto.MsgType.COMMAND, lambda seq, stamp: proto.CommandMsg(
            seq, stamp, float(t), float(command.steering_angle), float(command.speed), float(command.acceleration)))

    def heartbeat(self, t: float = 0.0) -> None:
        self._deliver(proto.MsgType.HEARTBEAT, lambda seq, stamp: proto.HeartbeatMsg(seq, stamp, float(t)))

    def stop(self, reason: int = proto.StopReason.NORMAL, t: float = 0.0) -> None:
        t = float(t) if math.isfinite(t) else 0.0
        self._deliver(proto.MsgType.STOP, lambda seq, stamp: proto.StopMsg(seq, stamp, t, int(reason)))

    def close(self) -> None:
        pass


def _parse_peer(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--peer {text!r}: expected HOST:PORT")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    """``python -m racing.runtime.vehicle_sim``: a simulated car on UDP until Ctrl-C or --duration."""
    from racing.models.params import DEFAULT_CAR, load_params
    from racing.sim.simulator import initial_state
    from racing.track import DEFAULT_TRACK, load_track

    p = argparse.ArgumentParser(prog="python -m racing.runtime.vehicle_sim", description=main.__doc__)
    p.add_argument("--track", default=DEFAULT_TRACK, help="start pose: s = 0 of this track")
    p.add_argument("--car", default=DEFAULT_CAR)
    p.add_argument("--plant", default="dynamic")
    p.add_argument("--host", default=LOOPBACK, help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5600)
    p.add_argument("--peer", default=None, help="HOST:PORT to send STATE to (default: whoever talks to us)")
    p.add_argument("--state-hz", type=float, default=100.0)
    p.add_argument("--command-timeout", type=float, default=0.5, help="failsafe brake without link [s]")
    p.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    args = p.parse_args(argv)
    params = load_params(args.car)
    config = SimTwinConfig(state_hz=args.state_hz, plant=args.plant, command_timeout_s=args.command_timeout)
    core = _make_core(params, initial_state(load_track(args.track)), config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.host, args.port))
    print(f"simulated {params.name} on udp://{args.host}:{sock.getsockname()[1]} (Ctrl-C to stop)", file=sys.stderr)
    stop = threading.Event()
    try:
        report = serve(sock, core, stop.is_set, _parse_peer(args.peer), args.duration)
    except KeyboardInterrupt:
        report = core.report()
    finally:
        sock.close()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
