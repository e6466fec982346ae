"""Vehicle I/O behind one interface: :class:`Vehicle`, and :class:`UdpVehicle` speaking
:mod:`racing.runtime.protocol` over UDP.

The runtime loop only ever talks to a :class:`Vehicle`; the simulated twin
(:mod:`racing.runtime.vehicle_sim`) implements the vehicle side of the same protocol, so the
code that drives the simulated car is the code that drives the real one.
"""
from __future__ import annotations

import abc
import collections
import ipaddress
import math
import socket
import threading
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import numpy as np

from racing.control.base import Command
from racing.runtime import protocol as proto
from racing.runtime.auth import INSECURE, REJECT_KINDS, LinkSecurity, Receiver, Rejected, Sender

LOOPBACK = "127.0.0.1"


@dataclass
class LinkStats:
    """Counters of one vehicle link (datagrams unless noted).

    rx          : datagrams accepted (authenticated where the link requires it, fresh, not replayed)
    states      : STATE messages handed to the loop (the newest of each read)
    superseded  : accepted STATEs replaced by a newer one read in the same call (normal when the
                  vehicle publishes faster than the loop runs)
    older       : accepted STATEs whose measurement time is not newer than the newest handed over
                  (reordered within the replay window)
    tx          : datagrams sent;  send_errors : sends that failed (OSError)
    rejected, by kind (see :mod:`racing.runtime.auth`): foreign, garbled, unsigned, forged,
    replayed, stale, unexpected. ``dropped`` is their sum.
    """

    rx: int = 0
    states: int = 0
    superseded: int = 0
    older: int = 0
    tx: int = 0
    send_errors: int = 0
    foreign: int = 0
    garbled: int = 0
    unsigned: int = 0
    forged: int = 0
    replayed: int = 0
    stale: int = 0
    unexpected: int = 0

    @property
    def dropped(self) -> int:
        return sum(getattr(self, k) for k in REJECT_KINDS)

    def count(self, kind: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["dropped"] = self.dropped
        return d


def is_loopback(host: str) -> bool:
    """True when ``host`` (a name or address) resolves only to loopback addresses."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_address(host: str, what: str, allow_remote: bool) -> None:
    """ValueError naming ``what`` when ``host`` is not loopback and ``allow_remote`` is False."""
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"{what} {host!r} is not a loopback address; a link beyond this machine must be "
                         f"explicit: add --allow-remote (and use --key: protocol v2)")


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

    def state_age(self, t_meas: float) -> float | None:
        """Age [s] now of the state measured at vehicle time ``t_meas`` [s], or None when this link
        cannot tell (then the loop takes the state as measured when it was read)."""
        return None

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
    host, port : where the vehicle receives COMMAND / HEARTBEAT / STOP; STATE is accepted only from
        this very address (the vehicle sends from the port it receives on, as the simulated twin and
        the ROS 2 bridge do)
    local_port : where the computer receives STATE (0 = any free port; the vehicle then replies
        to the source address of our datagrams, see :mod:`racing.runtime.vehicle_sim`)
    bind_host : local address to bind (default loopback; use the car-facing interface on a car)
    security : :class:`~racing.runtime.auth.LinkSecurity` (default: protocol version 1, unauthenticated)
    allow_remote : permit a non-loopback ``host`` / ``bind_host`` (otherwise ValueError)
    accept_any_source : accept STATE from any address (tests and bench rigs only)
    max_drain : at most this many datagrams are read per ``latest_state()`` call (bounded work)
    clock : the link clock [s] for stamps and ages (default CLOCK_MONOTONIC, shared with a twin on
        this machine)
    """

    def __init__(self, host: str = LOOPBACK, port: int = 5600, local_port: int = 0, bind_host: str = LOOPBACK,
                 security: LinkSecurity = INSECURE, allow_remote: bool = False, accept_any_source: bool = False,
                 max_drain: int = 256, clock=time.monotonic):
        super().__init__()
        if not 0 < int(port) < 65536:
            raise ValueError(f"UdpVehicle: port {port}; expected 1..65535")
        if not 0 <= int(local_port) < 65536:
            raise ValueError(f"UdpVehicle: local_port {local_port}; expected 0..65535")
        check_address(host, "vehicle address", allow_remote)
        check_address(bind_host, "listen address", allow_remote)
        self.host, self.port, self.local_port, self.bind_host = host, int(port), int(local_port), bind_host
        self.security = security
        self.accept_any_source = accept_any_source
        self.max_drain = int(max_drain)
        self.clock = clock
        self._sock: socket.socket | None = None
        self._peer: tuple[str, int] | None = None
        self._lock = threading.Lock()  # send() may be called by the watchdog supervisor thread
        self._sender = Sender(security, clock)
        self._rx: Receiver | None = None
        self._last_t: float | None = None

    def describe(self) -> str:
        local = self.local_address
        return (f"udp://{self.host}:{self.port} v{self.security.version}"
                + (f" (listening on {local[0]}:{local[1]})" if local else ""))

    @property
    def local_address(self) -> tuple[str, int] | None:
        """(host, port) the computer listens on, once connected."""
        return self._sock.getsockname()[:2] if self._sock is not None else None

    @property
    def receiver(self) -> Receiver | None:
        return self._rx

    def connect(self) -> None:
        if self._sock is not None:
            return
        try:
            info = socket.getaddrinfo(self.host, self.port, socket.AF_INET, socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise ValueError(f"UdpVehicle: cannot resolve {self.host!r}: {exc}") from exc
        self._peer = info[0][4][:2]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.bind_host, self.local_port))
        except OSError as exc:
            sock.close()
            raise ValueError(f"UdpVehicle: cannot listen on {self.bind_host}:{self.local_port}: {exc}") from exc
        sock.setblocking(False)
        self._sock = sock
        self._rx = Receiver(self.security, accept=(proto.MsgType.STATE, proto.MsgType.HEARTBEAT),
                            peer=None if self.accept_any_source else self._peer, clock=self.clock)
        self._last_t = None

    def reset_freshness(self) -> None:
        """Forget the newest measurement time (a restarted vehicle may start its clock again)."""
        self._last_t = None

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
            try:
                msg = self._rx.accept_datagram(data, addr[:2])
            except Rejected as exc:
                self.stats.count(exc.kind)
                self.errors.append(self._rx.errors[-1])
                continue
            self.stats.rx += 1
            if not isinstance(msg, proto.StateMsg):
                continue  # a HEARTBEAT from a vehicle: alive, nothing to use
            newest = best.t if best is not None else self._last_t
            if newest is not None and not msg.t > newest:
                self.stats.older += 1
                continue
            if best is not None:
                self.stats.superseded += 1
            best = msg
        if best is None:
            return None
        self._last_t = best.t
        self.stats.states += 1
        return best.t, best.array

    def state_age(self, t_meas: float) -> float | None:
        if self._rx is None:
            return None
        if self.security.key is None:
            return None  # version 1 stamps are sender-local: no age
        return self._rx.age(t_meas)

    def _send(self, mtype: proto.MsgType, make) -> None:
        if self._sock is None:
            raise RuntimeError("UdpVehicle: send before connect()")
        with self._lock:
            data = self._sender.datagram(mtype, make)
            try:
                self._sock.sendto(data, self._peer)
                self.stats.tx += 1
            except OSError as exc:
                self.stats.send_errors += 1
                self.errors.append(f"send {mtype.name}: {exc}")

    def send(self, command: Command, t: float = 0.0) -> None:
        self._send(proto.MsgType.COMMAND, lambda seq, stamp, ses: proto.CommandMsg(
            seq, stamp, float(t), float(command.steering_angle), float(command.speed), float(command.acceleration),
            ses))

    def heartbeat(self, t: float = 0.0) -> None:
        self._send(proto.MsgType.HEARTBEAT, lambda seq, stamp, ses: proto.HeartbeatMsg(seq, stamp, float(t), ses))

    def stop(self, reason: int = proto.StopReason.NORMAL, t: float = 0.0) -> None:
        t = float(t) if math.isfinite(t) else 0.0  # a STOP must always go out
        self._send(proto.MsgType.STOP, lambda seq, stamp, ses: proto.StopMsg(seq, stamp, t, int(reason), ses))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
