"""Vehicle I/O behind one interface: :class:`Vehicle`, and :class:`UdpVehicle` speaking
:mod:`racing.runtime.protocol` over UDP.

The runtime loop only ever talks to a :class:`Vehicle`; the simulated twin
(:mod:`racing.runtime.vehicle_sim`) implements the vehicle side of the same protocol, so the
code that drives the simulated car is the code that drives the real one.
"""
from __future__ import annotations

import abc
import collections
import math
import socket
import threading
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import numpy as np

from racing.control.base import Command
from racing.runtime import protocol as proto

LOOPBACK = "127.0.0.1"


@dataclass
class LinkStats:
    """Counters of one vehicle link.

    rx          : valid datagrams received
    states      : STATE messages accepted (newer than the last one)
    dropped     : garbled datagrams (:class:`~racing.runtime.protocol.ProtocolError`), dropped
    stale       : valid STATEs not newer than the newest accepted one (reordered / duplicated)
    superseded  : valid STATEs replaced by a newer one read in the same call (normal when the
                  vehicle publishes faster than the loop runs)
    foreign     : datagrams from an address other than the vehicle's, dropped
    unexpected  : valid messages of a type the computer does not accept (COMMAND, STOP), dropped
    tx          : datagrams sent
    send_errors : sends that failed (OSError); the watchdog notices the consequences
    """

    rx: int = 0
    states: int = 0
    dropped: int = 0
    stale: int = 0
    superseded: int = 0
    foreign: int = 0
    unexpected: int = 0
    tx: int = 0
    send_errors: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class Vehicle(abc.ABC):
    """The computer's side of a vehicle link.

    ``connect()`` once, then every tick ``latest_state()`` (never blocks) and ``send(command, t)``;
    ``stop()`` for an emergency stop, ``close()`` at the end. ``stats`` counts packets,
    ``errors`` keeps the last few protocol error messages.
    """

    def __init__(self):
        self.stats = LinkStats()
        self.errors: collections.deque[str] = collections.deque(maxlen=20)

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the link (bind sockets, start threads). Idempotent."""

    @abc.abstractmethod
    def latest_state(self) -> tuple[float, np.ndarray] | None:
        """The newest valid state received since the previous call, as (t_meas [s, vehicle clock],
        state float64[7]), or None if nothing new arrived. Never blocks."""

    @abc.abstractmethod
    def send(self, command: Command, t: float = 0.0) -> None:
        """Send ``command``, computed from the state of vehicle time ``t`` [s]."""

    def heartbeat(self, t: float = 0.0) -> None:  # noqa: B027 - optional for links without one
        """Tell the vehicle the computer is alive (sent while there is no command yet)."""

    @abc.abstractmethod
    def stop(self, reason: int = proto.StopReason.NORMAL, t: float = 0.0) -> None:
        """Emergency stop: the vehicle holds its steering and brakes to standstill."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the link. Idempotent."""

    def describe(self) -> str:
        return type(self).__name__

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.close()


def parse_udp_url(url: str) -> tuple[str, int]:
    """``udp://HOST:PORT`` -> (host, port); ValueError with the expected form otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "udp" or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"vehicle address {url!r}: expected udp://HOST:PORT (e.g. udp://127.0.0.1:5600)")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not port:
        raise ValueError(f"vehicle address {url!r}: expected a port 1..65535 in udp://HOST:PORT")
    return parts.hostname, port


class UdpVehicle(Vehicle):
    """A vehicle at ``udp://host:port``; the computer listens on ``bind_host:local_port``.

    Parameters
    ----------
    host, port : where the vehicle receives COMMAND / HEARTBEAT / STOP
    local_port : where the computer receives STATE (0 = any free port; the vehicle then replies
        to the source address of our datagrams, see :mod:`racing.runtime.vehicle_sim`)
    bind_host : local address to bind (default loopback; use the car-facing interface on a car)
    accept_any_source : accept STATE from any address (default: only from ``host``)
    max_drain : at most this many datagrams are read per ``latest_state()`` call (bounded work)
    """

    def __init__(self, host: str = LOOPBACK, port: int = 5600, local_port: int = 0, bind_host: str = LOOPBACK,
                 accept_any_source: bool = False, max_drain: int = 256):
        super().__init__()
        if not 0 < int(port) < 65536:
            raise ValueError(f"UdpVehicle: port {port}; expected 1..65535")
        if not 0 <= int(local_port) < 65536:
            raise ValueError(f"UdpVehicle: local_port {local_port}; expected 0..65535")
        self.host, self.port, self.local_port, self.bind_host = host, int(port), int(local_port), bind_host
        self.accept_any_source = accept_any_source
        self.max_drain = int(max_drain)
        self._sock: socket.socket | None = None
        self._peer: tuple[str, int] | None = None
        self._lock = threading.Lock()  # send() may be called by the watchdog supervisor thread
        self._seq = {t: 0 for t in proto.MsgType}
        self._last_seq: int | None = None
        self._epoch = time.monotonic()

    def describe(self) -> str:
        local = self.local_address
        return f"udp://{self.host}:{self.port}" + (f" (listening on {local[0]}:{local[1]})" if local else "")

    @property
    def local_address(self) -> tuple[str, int] | None:
        """(host, port) the computer listens on, once connected."""
        return self._sock.getsockname()[:2] if self._sock is not None else None

    def connect(self) -> None:
        if self._sock is not None:
            return
        info = socket.getaddrinfo(self.host, self.port, socket.AF_INET, socket.SOCK_DGRAM)
        if not info:
            raise ValueError(f"UdpVehicle: cannot resolve {self.host!r}")
        self._peer = info[0][4][:2]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.bind_host, self.local_port))
        except OSError as exc:
            sock.close()
            raise ValueError(f"UdpVehicle: cannot listen on {self.bind_host}:{self.local_port}: {exc}") from exc
        sock.setblocking(False)
        self._sock = sock
        self._last_seq = None

    def latest_state(self) -> tuple[float, np.ndarray] | None:
        if self._sock is None:
            raise RuntimeError("UdpVehicle.latest_state() before connect()")
        best: proto.StateMsg | None = None
        for _ in range(self.max_drain):
            try:
                data, addr = self._sock.recvfrom(proto.MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP errors surfaced on some platforms
                self.errors.append(f"recv: {exc}")
                break
            if not self.accept_any_source and addr[0] != self._peer[0]:
                self.stats.foreign += 1
                continue
            try:
                msg = proto.decode(data)
            except proto.ProtocolError as exc:
                self.stats.dropped += 1
                self.errors.append(f"from {addr[0]}:{addr[1]}: {exc}")
                continue
            self.stats.rx += 1
            if not isinstance(msg, proto.StateMsg):
                if not isinstance(msg, proto.HeartbeatMsg):
                    self.stats.unexpected += 1
                continue
            if self._last_seq is not None and not proto.seq_newer(msg.seq, self._last_seq):
                self.stats.stale += 1
                continue
            if best is not None:
                self.stats.superseded += 1
            self._last_seq = msg.seq
            best = msg
        if best is None:
            return None
        self.stats.states += 1
        return best.t, best.array

    def _send(self, mtype: proto.MsgType, make) -> None:
        if self._sock is None:
            raise RuntimeError("UdpVehicle: send before connect()")
        with self._lock:
            seq = self._seq[mtype]
            self._seq[mtype] = (seq + 1) % proto.SEQ_MOD
            data = proto.encode(make(seq, time.monotonic() - self._epoch))
            try:
                self._sock.sendto(data, self._peer)
                self.stats.tx += 1
            except OSError as exc:
                self.stats.send_errors += 1
                self.errors.append(f"send {mtype.name}: {exc}")

    def send(self, command: Command, t: float = 0.0) -> None:
        self._send(proto.MsgType.COMMAND, lambda seq, stamp: proto.CommandMsg(
            seq, stamp, float(t), float(command.steering_angle), float(command.speed), float(command.acceleration)))

    def heartbeat(self, t: float = 0.0) -> None:
        self._send(proto.MsgType.HEARTBEAT, lambda seq, stamp: proto.HeartbeatMsg(seq, stamp, float(t)))

    def stop(self, reason: int = proto.StopReason.NORMAL, t: float = 0.0) -> None:
        t = float(t) if math.isfinite(t) else 0.0  # a STOP must always go out
        self._send(proto.MsgType.STOP, lambda seq, stamp: proto.StopMsg(seq, stamp, t, int(reason)))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
