"""The simulated twin of a car: the vehicle side of :mod:`racing.runtime.protocol` around a plant.

Three layers:

* :class:`VehicleCore` - transport-free vehicle logic: authenticates and checks datagrams
  (:class:`racing.runtime.auth.Receiver`), applies COMMANDs (zero-order hold) after the actuation
  delay ``delay_s``, latches STOP, runs the vehicle-side failsafe (no COMMAND for
  ``command_timeout_s`` -> brake), steps a plant (:func:`racing.sim.plant.make_plant`: any
  registered plant or ``module:factory``) to the vehicle clock and signs STATE datagrams.
* :class:`UdpSimTwin` - the core in real time behind a UDP socket on 127.0.0.1, in a thread or in
  a child process (its own interpreter and GIL, like a separate vehicle computer). It publishes
  STATE at ``state_hz`` to ``peer`` - or, if none is given, to the source address of the latest
  accepted (authenticated) datagram from the computer - and applies each datagram at its arrival.
* :class:`LoopbackSimVehicle` - a :class:`~racing.runtime.vehicle.Vehicle` that runs the core
  in-process on the caller's clock (deterministic with a fake clock; every message still goes
  through encode/decode and the receivers). For tests.

Clock: the twin's vehicle clock is the machine's CLOCK_MONOTONIC (``time.monotonic``) itself, so
STATE times and stamps are in the clock ``racing drive`` uses on the same machine ("shared" clock,
see :mod:`racing.runtime.auth`).

Braking (STOP latched, failsafe not latched): hold the last commanded steering angle, command
speed 0 with a feed-forward deceleration ``-decel_max * min(1, v_x / brake_blend_speed)`` so the
car brakes hard and settles at standstill without reversing. STOP passes through the same
actuation delay as COMMANDs (it acts through the same actuators).

Run a twin by hand (then ``racing drive --vehicle udp://127.0.0.1:5600 --key car.key``)::

    racing keygen car.key
    racing vehicle-sim --track lab_loop --car f1tenth --port 5600 --key car.key
"""
from __future__ import annotations

import argparse
import collections
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

from racing.config import ConfigError
from racing.control.base import Command
from racing.exit_codes import BAD_INPUT
from racing.interfaces import drive_interface
from racing.models.params import DEFAULT_CAR, load_params
from racing.runtime import protocol as proto
from racing.runtime import rt
from racing.runtime.auth import INSECURE, LinkSecurity, Receiver, Rejected, Sender, load_key
from racing.runtime.vehicle import LOOPBACK, Vehicle, check_address
from racing.sim.plant import make_plant
from racing.sim.simulator import initial_state
from racing.track import DEFAULT_TRACK, load_track


@dataclass(frozen=True)
class SimTwinConfig:
    """Settings of the simulated vehicle."""

    state_hz: float = field(default=100.0, metadata={"unit": "Hz", "gt": 0.0, "max": 2000.0})
    plant: str = field(default="dynamic", metadata={"doc": "plant name or module:factory (racing.sim.plant)"})
    plant_hz: float = field(default=1000.0, metadata={"unit": "Hz", "min": 500.0})
    delay_s: float = field(default=0.0, metadata={"unit": "s", "min": 0.0, "max": 1.0,
                                                  "doc": "actuation delay: a command acts this long after arrival"})
    command_timeout_s: float = field(default=0.5, metadata={"unit": "s", "gt": 0.0,
                                                            "doc": "vehicle-side failsafe: brake without link"})
    brake_blend_speed: float = field(default=0.5, metadata={"unit": "m/s", "gt": 0.0})
    brake_step_s: float = field(default=0.005, metadata={"unit": "s", "gt": 0.0,
                                                         "doc": "plant step while braking (feed-forward update)"})


_ACCEPT = (proto.MsgType.COMMAND, proto.MsgType.HEARTBEAT, proto.MsgType.STOP)


class VehicleCore:
    """Vehicle-side protocol logic around a plant, on the vehicle clock ``now`` [s] (starts at ``t0``).

    Modes: ``idle`` (no command yet: hold still), ``driving``, ``failsafe`` (no COMMAND for
    ``command_timeout_s``: braking, a new COMMAND resumes; HEARTBEATs do not extend a command),
    ``stopped`` (STOP received: braking, latched), ``diverged`` (the plant failed: no more STATE).

    ``security`` checks incoming datagrams (rejections counted by kind in ``stats["rejected"]``) and
    signs STATE; ``peer`` (host, port) restricts who may command the car (None = any authenticated
    source).
    """

    def __init__(self, plant, params, x0: np.ndarray, config: SimTwinConfig = SimTwinConfig(),
                 security: LinkSecurity = INSECURE, t0: float = 0.0, peer: tuple[str, int] | None = None):
        self.plant, self.params, self.config = plant, params, config
        self.interface = drive_interface(params.drive_interface)
        self.x = np.asarray(x0, dtype=np.float64).copy()
        plant.reset(self.x)
        self.t = float(t0)
        self.t_start = float(t0)
        self.mode = "idle"
        self.command = Command(0.0, 0.0, 0.0)
        self.last_command_rx: float | None = None  # vehicle time the last COMMAND took effect
        self.last_heartbeat_rx: float | None = None
        self._last_cmd_seq: int | None = None
        self._pending: collections.deque = collections.deque()  # (time it acts [s], kind, value)
        self.rx = Receiver(security, accept=_ACCEPT, peer=peer, clock=lambda: self.t)
        self.tx = Sender(security, clock=lambda: self.t)
        self._lat_sum = 0.0
        self.stats = {"states_sent": 0, "commands": 0, "acceleration_ignored": 0, "heartbeats": 0, "stops": 0, "dropped": 0,
                      "rejected": dict(self.rx.counts), "stale_commands": 0, "commands_ignored": 0, "unexpected": 0,
                      "failsafe_events": 0, "latency_ms_mean": None, "latency_ms_max": None, "stop_reason": None,
                      "stop_t": None, "standstill_t": None, "last_error": None, "delay_s": config.delay_s}

    # --- inputs ---------------------------------------------------------------------------
    def receive(self, data: bytes, now: float, source: tuple | None = None):
        """Check and apply one datagram received at vehicle time ``now`` [s] from ``source`` (advance
        the plant first). Returns the accepted message or None."""
        self.advance(now)
        st = self.stats
        try:
            msg = self.rx.accept_datagram(data, source, now)
        except Rejected as exc:
            st["rejected"] = dict(self.rx.counts)
            st["dropped"] = self.rx.rejected
            st["unexpected"] = self.rx.counts["unexpected"]
            st["last_error"] = str(exc)
            return None
        if isinstance(msg, proto.CommandMsg):
            if self._last_cmd_seq is not None and msg.session == self._cmd_session \
                    and not proto.seq_newer(msg.seq, self._last_cmd_seq):
                st["stale_commands"] += 1
                return msg
            self._last_cmd_seq, self._cmd_session = msg.seq, msg.session
            if msg.t > 0.0:
                lat = 1e3 * max(now - msg.t, 0.0)
                self._lat_sum += lat
                n = st["commands"] + 1
                st["latency_ms_mean"] = self._lat_sum / n
                st["latency_ms_max"] = max(st["latency_ms_max"] or 0.0, lat)
            st["commands"] += 1
            self._schedule(now, "command", Command(msg.steering_angle, msg.speed, msg.acceleration))
        elif isinstance(msg, proto.HeartbeatMsg):
            st["heartbeats"] += 1
            self.last_heartbeat_rx = now
        elif isinstance(msg, proto.StopMsg):
            st["stops"] += 1
            self._schedule(now, "stop", msg.reason_name)
        return msg

    _cmd_session = 0

    def _schedule(self, now: float, kind: str, value) -> None:
        due = now + self.config.delay_s
        if self.config.delay_s <= 0.0:
            self._apply(kind, value, now)
        else:
            self._pending.append((due, kind, value))

    def _apply(self, kind: str, value, t: float) -> None:
        st = self.stats
        if kind == "command":
            if self.mode == "stopped":
                st["commands_ignored"] += 1
                return
            if value.acceleration != 0.0 and not self.interface.acceleration:  # a speed-only car ignores the field
                st["acceleration_ignored"] += 1
                value = Command(value.steering_angle, value.speed, 0.0)
            self.command = value
            self.last_command_rx = t
            if self.mode != "diverged":
                self.mode = "driving"
        elif self.mode != "stopped":
            if self.mode != "diverged":
                self.mode = "stopped"
            st["stop_reason"] = value
            st["stop_t"] = t

    # --- physics ----------------------------------------------------------------------------
    def _brake_command(self) -> Command:
        vx = float(self.x[3])
        ff = -self.params.decel_max * min(1.0, max(vx, 0.0) / self.config.brake_blend_speed)
        return Command(self.command.steering_angle, 0.0, ff)

    def advance(self, now: float) -> None:
        """Step the plant from ``self.t`` to ``now`` [s] with the command in force (delayed commands
        take effect at their due times)."""
        cfg = self.config
        while self.mode != "diverged":
            while self._pending and self._pending[0][0] <= self.t + 1e-12:
                _, kind, value = self._pending.popleft()
                self._apply(kind, value, self.t)
            if not self.t < now - 1e-9:
                break
            target = min(now, self._pending[0][0]) if self._pending else now
            dt = target - self.t
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
    def state_datagram(self, stamp: float | None = None) -> bytes | None:
        """The signed STATE datagram of the current state, measured at ``self.t`` (None once the plant
        has diverged). ``stamp`` [s] overrides the send stamp (default: ``self.t``)."""
        if self.mode == "diverged" or not np.all(np.isfinite(self.x)):
            return None
        x = tuple(float(v) for v in self.x)
        data = self.tx.datagram(proto.MsgType.STATE, lambda seq, s, ses: proto.StateMsg(seq, s, self.t, x, ses),
                                stamp=stamp)
        self.stats["states_sent"] += 1
        return data

    def report(self) -> dict:
        out = dict(self.stats)
        out["rejected"] = dict(self.rx.counts)
        out["dropped"] = self.rx.rejected
        out.update(mode=self.mode, t=self.t, elapsed_s=self.t - self.t_start, state=[float(v) for v in self.x],
                   speed_mps=float(math.hypot(self.x[3], self.x[4])), session=f"{self.tx.session:016x}")
        return out


def _make_core(params, x0, config: SimTwinConfig, security: LinkSecurity = INSECURE, t0: float = 0.0,
               peer: tuple[str, int] | None = None) -> VehicleCore:
    """A :class:`VehicleCore` around ``make_plant(config.plant, params)``; ValueError naming the plant
    when it does not return a finite 7-element state."""
    plant = make_plant(config.plant, params, plant_hz=config.plant_hz)
    # first call loads / compiles the kernels (~0.5 s for the numba plants): do it before the clock starts
    x0 = np.asarray(x0, dtype=np.float64)
    plant.reset(x0)
    try:
        x = np.asarray(plant.step(Command(0.0, 0.0, 0.0), 1e-3), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - a foreign plant: name it
        raise ValueError(f"plant {config.plant!r}: step() failed: {type(exc).__name__}: {exc}") from exc
    if x.shape != (7,) or not np.all(np.isfinite(x)):
        raise ValueError(f"plant {config.plant!r}: step() returned {x!r}; expected 7 finite numbers "
                         f"(x, y, yaw, vx, vy, yaw_rate, steer)")
    return VehicleCore(plant, params, x0, config, security, t0, peer)


def serve(sock: socket.socket, core: VehicleCore, should_stop, peer: tuple[str, int] | None = None,
          max_lifetime_s: float | None = None, clock=time.monotonic) -> dict:
    """Run ``core`` in real time on ``sock`` until ``should_stop()`` (checked at least every 50 ms).

    The vehicle clock is ``clock()`` itself [s]. Publishes STATE every ``1 / state_hz`` [s] on
    absolute deadlines (late ones are skipped, not bunched) to ``peer`` or to the last address an
    accepted datagram came from. Runs without the cyclic garbage collector (a full collection of a
    process that imported numba and scipy takes tens of milliseconds: a gap in the STATE stream).
    Returns ``core.report()``.
    """
    import gc

    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return _serve(sock, core, should_stop, peer, max_lifetime_s, clock)
    finally:
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()


def _serve(sock, core, should_stop, peer, max_lifetime_s, clock) -> dict:
    sock.setblocking(False)
    period = 1.0 / core.config.state_hz
    start = clock()
    core.t = core.t_start = start
    next_pub = start
    target = peer
    while not should_stop():
        now = clock()
        if max_lifetime_s is not None and now - start > max_lifetime_s:
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
            msg = core.receive(data, clock(), addr[:2])
            if msg is not None and peer is None:
                target = addr[:2]
        now = clock()
        if now >= next_pub:
            core.advance(now)
            data = core.state_datagram() if target is not None else None
            if data is not None:
                try:
                    sock.sendto(data, target)
                except OSError as exc:
                    core.stats["last_error"] = f"send: {exc}"
            next_pub = start + (math.floor((now - start) / period) + 1) * period
    return core.report()


def _process_main(conn, stop_event, params, x0, config, security, host, port, peer, parent_pid, max_lifetime_s,
                  cpu):
    # Ctrl-C goes to the whole process group: the parent decides when the twin ends (after its STOP)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        core = _make_core(params, x0, config, security, peer=peer)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, port))
        cpu_report = None
        if cpu:
            from racing.runtime import rt

            cpu_report = rt.configure(threads=None, numba_workers=False, **cpu).as_dict()
    except Exception as exc:  # report start-up failures to the parent instead of dying silently
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", (sock.getsockname()[:2], cpu_report)))
    try:
        report = serve(sock, core, lambda: stop_event.is_set() or os.getppid() != parent_pid, peer,
                       max_lifetime_s)
    finally:
        sock.close()
    report["cpu"] = cpu_report
    conn.send(("stats", report))


class UdpSimTwin:
    """The simulated car in real time on ``host:port`` (127.0.0.1, free port by default).

    ``mode`` = ``"thread"`` (in this process) or ``"process"`` (a spawned child process).
    ``start()`` returns the (host, port) where the twin receives; ``stop()`` returns its report
    (counters, final state, mode, STOP reason, time to standstill).
    ``max_lifetime_s`` bounds the twin's life even if nobody calls ``stop()``. ``cpu``: keyword
    arguments of :func:`racing.runtime.rt.configure` (``pin``, ``rt_priority``) for the child process.
    """

    def __init__(self, params, x0, config: SimTwinConfig = SimTwinConfig(), host: str = LOOPBACK, port: int = 0,
                 peer: tuple[str, int] | None = None, mode: str = "thread", max_lifetime_s: float | None = 3600.0,
                 security: LinkSecurity = INSECURE, cpu: dict | None = None):
        if mode not in ("thread", "process"):
            raise ValueError(f"UdpSimTwin: mode {mode!r}; expected 'thread' or 'process'")
        self.params, self.x0, self.config = params, np.asarray(x0, dtype=np.float64).copy(), config
        self.host, self.port, self.peer, self.mode = host, int(port), peer, mode
        self.security = security
        self.cpu = dict(cpu or {})
        self.max_lifetime_s = max_lifetime_s
        self.address: tuple[str, int] | None = None
        self.report: dict | None = None
        self.cpu_report: dict | None = None
        self._thread = self._proc = self._conn = None
        self._stop_flag = threading.Event()
        self._mp_stop = None
        self._sock = None

    def start(self, timeout: float = 120.0) -> tuple[str, int]:
        if self.address is not None:
            return self.address
        if self.mode == "thread":
            core = _make_core(self.params, self.x0, self.config, self.security, peer=self.peer)
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
                                 args=(child, self._mp_stop, self.params, self.x0, self.config, self.security,
                                       self.host, self.port, self.peer, os.getpid(), self.max_lifetime_s, self.cpu))
        self._proc.start()
        self._conn = parent
        if not parent.poll(timeout):
            self._kill()
            raise RuntimeError(f"simulated vehicle did not start within {timeout:g} s")
        kind, payload = parent.recv()
        if kind != "ready":
            self._kill()
            raise RuntimeError(f"simulated vehicle failed to start: {payload}")
        address, self.cpu_report = payload
        self.address = tuple(address)
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

    Every message is encoded, authenticated (with ``security``) and decoded as on the wire; both
    ends use ``clock() - clock()@connect`` as their (shared) clock. The car publishes STATE at the
    instants ``k / state_hz`` (the plant stepped exactly there); each reaches the computer
    ``state_latency_s`` later, and ``latest_state()`` returns the newest one that has arrived.
    """

    def __init__(self, params, x0, config: SimTwinConfig = SimTwinConfig(), clock=time.perf_counter, plant=None,
                 security: LinkSecurity = INSECURE, state_latency_s: float = 0.0):
        super().__init__()
        self.config = config
        self.security = security
        if plant is None:
            self.core = _make_core(params, x0, config, security)
        else:
            self.core = VehicleCore(plant, params, x0, config, security)
        self.clock = clock
        self.state_latency_s = float(state_latency_s)
        self._t0: float | None = None
        self._k_pub = 0
        self._in_flight: collections.deque = collections.deque()
        self._sender = Sender(security, clock=self._now)
        self._rx = Receiver(security, accept=(proto.MsgType.STATE,), clock=self._now)

    def describe(self) -> str:
        return f"loopback simulated vehicle v{self.security.version}"

    def _now(self) -> float:
        if self._t0 is None:
            raise RuntimeError("LoopbackSimVehicle used before connect()")
        return self.clock() - self._t0

    def connect(self) -> None:
        if self._t0 is None:
            self._t0 = self.clock()

    def latest_state(self):
        now = self._now()
        period = 1.0 / self.config.state_hz
        while self._k_pub * period <= now + 1e-12:  # publish at every instant that has passed
            t_pub = self._k_pub * period
            self._k_pub += 1
            self.core.advance(t_pub)
            data = self.core.state_datagram()
            if data is not None:
                self._in_flight.append((t_pub + self.state_latency_s, data))
        best = None
        while self._in_flight and self._in_flight[0][0] <= now + 1e-12:
            _, data = self._in_flight.popleft()
            try:
                msg = self._rx.accept_datagram(data)
            except Rejected as exc:
                self.stats.count(exc.kind)
                self.errors.append(str(exc))
                continue
            self.stats.rx += 1
            if best is not None:
                self.stats.superseded += 1
            best = msg
        if best is None:
            return None
        self.stats.states += 1
        return best.t, best.array

    def state_age(self, t_meas: float) -> float | None:
        return self._rx.age(t_meas) if self.security.key is not None else None

    def _deliver(self, mtype, make) -> None:
        now = self._now()
        self.core.receive(self._sender.datagram(mtype, make), now)
        self.stats.tx += 1

    def send(self, command: Command, t: float = 0.0) -> None:
        self._deliver(proto.MsgType.COMMAND, lambda seq, stamp, ses: proto.CommandMsg(
            seq, stamp, float(t), float(command.steering_angle), float(command.speed), float(command.acceleration),
            ses))

    def heartbeat(self, t: float = 0.0) -> None:
        self._deliver(proto.MsgType.HEARTBEAT, lambda seq, stamp, ses: proto.HeartbeatMsg(seq, stamp, float(t), ses))

    def stop(self, reason: int = proto.StopReason.NORMAL, t: float = 0.0) -> None:
        t = float(t) if math.isfinite(t) else 0.0
        self._deliver(proto.MsgType.STOP, lambda seq, stamp, ses: proto.StopMsg(seq, stamp, t, int(reason), ses))

    def close(self) -> None:
        pass


# --- the command line: racing vehicle-sim ----------------------------------------------------------
def parse_peer(text: str | None) -> tuple[str, int] | None:
    """``HOST:PORT`` -> (host, port); ValueError naming ``--peer`` otherwise."""
    if not text:
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--peer {text!r}: expected HOST:PORT with a port 1..65535")
    return host, int(port)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``racing vehicle-sim`` (also ``python -m racing.runtime.vehicle_sim``)."""
    p.add_argument("--track", default=DEFAULT_TRACK, help="start pose: s = 0 of this track")
    p.add_argument("--allow-bad-geometry", action="store_true",
                   help="use a track whose geometry check fails (e.g. distinct parts overlapping), as racing race")
    p.add_argument("--car", default=DEFAULT_CAR, help="the plant's car parameters (name or YAML)")
    p.add_argument("--plant", default="dynamic",
                   help="plant: a registered name (racing list) or module:factory, factory(params, plant_hz=...) "
                        "-> object with reset(x0) and step(command, dt) (default dynamic)")
    p.add_argument("--plant-hz", type=float, default=1000.0, help="plant integration rate [Hz] (>= 500)")
    p.add_argument("--host", default=LOOPBACK, help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5600, help="UDP port to listen on (0 = any free port)")
    p.add_argument("--peer", default=None,
                   help="HOST:PORT of the computer: send STATE there and accept datagrams only from there "
                        "(default: reply to whoever sent the last authenticated datagram)")
    p.add_argument("--allow-remote", action="store_true", help="permit a non-loopback --host / --peer")
    p.add_argument("--key", default=None, help="shared HMAC key file (protocol v2; chmod 600; racing keygen)")
    p.add_argument("--protocol", type=int, choices=(1, 2), default=None,
                   help="2 (HMAC, needs --key; the default) or 1 (unauthenticated, CRC only)")
    p.add_argument("--max-age", type=float, default=0.25, help="freshness: reject stamps older than this [s]")
    p.add_argument("--clock", choices=("shared", "estimate"), default="shared",
                   help="stamps on a clock shared with the computer (default) or offset estimated")
    p.add_argument("--state-hz", type=float, default=100.0, help="STATE rate [Hz] (default 100)")
    p.add_argument("--delay", type=float, default=0.0, help="actuation delay [s]: commands act this long after "
                                                            "arrival (default 0)")
    p.add_argument("--command-timeout", type=float, default=0.5, help="failsafe brake without COMMAND [s]")
    p.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    p.add_argument("--pin", default=None, help="CPU list for this process's thread (e.g. 0)")
    p.add_argument("--rt-priority", type=int, default=None, help="SCHED_FIFO priority 1..98 where permitted")
    p.add_argument("--ready-file", default=None, help="write 'HOST PORT' here once listening (for scripts)")


def security_from_args(args, what: str) -> LinkSecurity:
    """The :class:`LinkSecurity` of ``--key/--protocol/--max-age/--clock``; ValueError when they do not fit."""
    protocol = args.protocol if args.protocol is not None else 2
    if protocol == 2:
        if not args.key:
            raise ValueError(f"{what}: protocol v2 (the default) needs --key FILE (make one with racing keygen FILE), "
                             f"or --protocol 1 for the unauthenticated protocol")
        key = load_key(args.key)
    else:
        if args.key:
            raise ValueError(f"{what}: --key is for protocol v2; --protocol 1 is unauthenticated")
        key = None
    if not (math.isfinite(args.max_age) and args.max_age > 0):
        raise ValueError(f"--max-age {args.max_age}: expected a positive number of seconds")
    return LinkSecurity(key=key, max_age_s=args.max_age, clock=args.clock)


def run_vehicle_sim(args) -> int:
    """``racing vehicle-sim``: a simulated car on UDP until Ctrl-C/SIGTERM or ``--duration``; prints its
    report as JSON on stdout (counters, rejections by kind, final state)."""
    check_address(args.host, "--host", args.allow_remote)
    peer = parse_peer(args.peer)
    if peer is not None:
        check_address(peer[0], "--peer", args.allow_remote)
    if not 0 <= args.port < 65536:
        raise ValueError(f"--port {args.port}: expected 0..65535")
    security = security_from_args(args, "racing vehicle-sim")
    for name in ("state_hz", "command_timeout"):
        v = getattr(args, name)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"--{name.replace('_', '-')} {v}: expected a positive number")
    if not (math.isfinite(args.delay) and 0 <= args.delay <= 1.0):
        raise ValueError(f"--delay {args.delay}: expected 0..1 s")
    if args.duration is not None and not args.duration > 0:
        raise ValueError(f"--duration {args.duration}: expected a positive number of seconds")
    params = load_params(args.car)
    config = SimTwinConfig(state_hz=args.state_hz, plant=args.plant, plant_hz=args.plant_hz, delay_s=args.delay,
                           command_timeout_s=args.command_timeout)
    core = _make_core(params, initial_state(load_track(args.track, check_geometry=not args.allow_bad_geometry)), config, security, peer=peer)
    cpu_report = None
    if args.pin is not None or args.rt_priority is not None:
        pin = rt.parse_cpu_list(args.pin, "--pin") if args.pin is not None else None
        cpu_report = rt.configure(threads=None, pin=pin, rt_priority=args.rt_priority, numba_workers=False)
        for note in cpu_report.notes:
            print(f"racing vehicle-sim: {note}", file=sys.stderr)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"--host/--port: cannot listen on {args.host}:{args.port}: {exc}") from exc
    host, port = sock.getsockname()[:2]
    print(f"simulated {params.name} ({args.plant}) on udp://{host}:{port}, protocol v{security.version}, "
          f"delay {args.delay:g} s (Ctrl-C to stop)", file=sys.stderr, flush=True)
    if args.ready_file:
        tmp = f"{args.ready_file}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(f"{host} {port}\n")
        os.replace(tmp, args.ready_file)
    stop = threading.Event()

    def on_term(signum, frame):
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        report = serve(sock, core, stop.is_set, peer, args.duration)
    except KeyboardInterrupt:
        report = core.report()
    finally:
        sock.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    report["cpu"] = None if cpu_report is None else cpu_report.as_dict()
    print(json.dumps(report), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m racing.runtime.vehicle_sim``: the same as ``racing vehicle-sim`` (its options, its exit codes:
    2 for bad input)."""
    parser = argparse.ArgumentParser(prog="python -m racing.runtime.vehicle_sim", description=run_vehicle_sim.__doc__)
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(run_vehicle_sim(args) or 0)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"racing vehicle-sim: error: {exc}", file=sys.stderr)
        return BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
