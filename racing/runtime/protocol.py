"""The vehicle link protocol: little-endian binary datagrams over UDP (version 1).

Every datagram is one message: a 20-byte header, a fixed-size payload that depends on the
message type, and a CRC-32 trailer. All integers are unsigned little-endian, all reals IEEE-754
``float64`` little-endian::

    offset  size  type     field
    0       4     bytes    magic      b"RCNG" (0x52 0x43 0x4E 0x47)
    4       1     uint8    version    1
    5       1     uint8    type       1 STATE, 2 COMMAND, 3 HEARTBEAT, 4 STOP
    6       2     uint16   length     payload length [bytes]; must equal the type's size below
    8       4     uint32   seq        per-sender, per-type counter, +1 per message, wraps at 2^32
    12      8     float64  stamp      sender's monotonic clock when sent [s] (sender-local epoch)
    20      L     ...      payload    see below
    20+L    4     uint32   crc32      CRC-32 (IEEE 802.3, as zlib.crc32) of bytes [0, 20+L)

Payloads. The ``t`` field of every payload is on the *vehicle's* clock [s]: STATE carries the
measurement time; the computer echoes the ``t`` of the newest STATE it has used in COMMAND,
HEARTBEAT and STOP (0 before the first STATE), so the vehicle can measure the full loop latency
(and may refuse commands computed from too old a state).

    type  name       dir                  length  payload (float64 unless noted)
    1     STATE      vehicle -> computer  64      t [s], x [m], y [m], yaw [rad], vx [m/s], vy [m/s],
                                                  yaw_rate [rad/s], steer [rad]   (racing.models.dynamic layout)
    2     COMMAND    computer -> vehicle  32      t [s], steering_angle [rad] (+ left), speed [m/s],
                                                  acceleration [m/s^2] (feed-forward, 0 = none)
    3     HEARTBEAT  computer -> vehicle  8       t [s]   (link alive; sent while there is no command)
    4     STOP       computer -> vehicle  12      t [s], reason (uint32, :class:`StopReason`)

Semantics on the vehicle: a COMMAND is applied until the next one (zero-order hold); COMMANDs
whose ``seq`` is not newer than the last applied one are discarded. STOP is an emergency stop,
latched until the vehicle is re-armed locally: hold the last commanded steering angle and brake
to standstill (never reverse). A STOP is honoured whatever its reason code. Independently, the
vehicle brakes the same way (not latched; the next COMMAND resumes) when no COMMAND arrives for
its own command timeout; a HEARTBEAT only says the computer is alive (and, for a vehicle that
replies to its peer, where to send STATE) - it never extends a command. The computer sends STOP
several times in a row because UDP may lose a datagram.

Decoding is strict: :func:`decode` raises :class:`ProtocolError` naming the field and what was
expected, checking in this order: a datagram shorter than 24 bytes, a bad magic, an unsupported version, a length field that
does not match the datagram size, a CRC mismatch, an unknown type, a length that does not match
the type, a non-finite real (NaN/inf) in the stamp or payload. Receivers count and drop such datagrams.

Sequence numbers compare with serial-number arithmetic (RFC 1982): ``b`` is newer than ``a``
when ``0 < (b - a) mod 2^32 < 2^31``.
"""
from __future__ import annotations

import enum
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Union

import numpy as np

MAGIC = b"RCNG"
VERSION = 1
HEADER = struct.Struct("<4sBBHId")  # magic, version, type, length, seq, stamp
CRC = struct.Struct("<I")
HEADER_SIZE = HEADER.size  # 20
CRC_SIZE = CRC.size  # 4
SEQ_MOD = 1 << 32
MAX_DATAGRAM = 512  # receive buffer [bytes]; every valid message is far smaller


class MsgType(enum.IntEnum):
    STATE = 1
    COMMAND = 2
    HEARTBEAT = 3
    STOP = 4


class StopReason(enum.IntEnum):
    """Why the computer sent STOP (informative; the vehicle stops for any code)."""

    NORMAL = 0            # end of run (duration / laps reached)
    INTERRUPTED = 1       # operator (SIGINT / SIGTERM)
    STATE_TIMEOUT = 2     # watchdog: no fresh state
    DEADLINE_MISSES = 3   # watchdog: consecutive deadline misses
    CONTROLLER_ERROR = 4  # watchdog: the controller raised
    BAD_COMMAND = 5       # watchdog: non-finite / invalid command
    BAD_STATE = 6         # watchdog: non-finite state
    OFF_TRACK = 7         # watchdog: car beyond the track boundary + margin
    LOOP_HANG = 8         # watchdog supervisor: the loop stopped ticking
    ERROR = 255           # runtime error


STATE_FIELDS = ("t", "x", "y", "yaw", "vx", "vy", "yaw_rate", "steer")
COMMAND_FIELDS = ("t", "steering_angle", "speed", "acceleration")

_PAYLOAD = {
    MsgType.STATE: struct.Struct("<8d"),
    MsgType.COMMAND: struct.Struct("<4d"),
    MsgType.HEARTBEAT: struct.Struct("<d"),
    MsgType.STOP: struct.Struct("<dI"),
}
PAYLOAD_SIZE = {k: v.size for k, v in _PAYLOAD.items()}
_FIELDS = {
    MsgType.STATE: STATE_FIELDS,
    MsgType.COMMAND: COMMAND_FIELDS,
    MsgType.HEARTBEAT: ("t",),
    MsgType.STOP: ("t", "reason"),
}


class ProtocolError(ValueError):
    """A datagram is not a valid message; ``field`` names the offending header/payload field."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class StateMsg:
    """Vehicle state at vehicle time ``t`` [s]; ``state`` = (x, y, yaw, vx, vy, yaw_rate, steer)."""

    seq: int
    stamp: float
    t: float
    state: tuple

    @property
    def array(self) -> np.ndarray:
        """The state as float64[7]."""
        return np.array(self.state, dtype=np.float64)


@dataclass(frozen=True)
class CommandMsg:
    """Ackermann command computed from the vehicle state of time ``t`` [s] (vehicle clock)."""

    seq: int
    stamp: float
    t: float
    steering_angle: float
    speed: float
    acceleration: float = 0.0


@dataclass(frozen=True)
class HeartbeatMsg:
    seq: int
    stamp: float
    t: float


@dataclass(frozen=True)
class StopMsg:
    seq: int
    stamp: float
    t: float
    reason: int = StopReason.NORMAL

    @property
    def reason_name(self) -> str:
        return stop_reason_name(self.reason)


Message = Union[StateMsg, CommandMsg, HeartbeatMsg, StopMsg]
_TYPE_OF = {StateMsg: MsgType.STATE, CommandMsg: MsgType.COMMAND, HeartbeatMsg: MsgType.HEARTBEAT,
            StopMsg: MsgType.STOP}


def stop_reason_name(code: int) -> str:
    try:
        return StopReason(code).name.lower()
    except ValueError:
        return f"unknown({code})"


def seq_newer(b: int, a: int) -> bool:
    """True if sequence number ``b`` is newer than ``a`` (RFC 1982 serial arithmetic, 32 bit)."""
    d = (b - a) % SEQ_MOD
    return 0 < d < (SEQ_MOD >> 1)


def _check_finite(mtype: MsgType, names, values) -> None:
    for name, v in zip(names, values):
        if isinstance(v, float) and not math.isfinite(v):
            raise ProtocolError(f"{mtype.name} field {name!r} is {v}; expected a finite number", name)


def encode(msg: Message) -> bytes:
    """The datagram for ``msg``. Raises :class:`ProtocolError` for a non-finite or out-of-range field."""
    mtype = _TYPE_OF.get(type(msg))
    if mtype is None:
        raise TypeError(f"encode: not a protocol message: {type(msg).__name__}")
    if mtype is MsgType.STATE:
        if len(msg.state) != 7:
            raise ProtocolError(f"STATE field 'state' has {len(msg.state)} values; expected 7", "state")
        values = (float(msg.t), *(float(v) for v in msg.state))
    elif mtype is MsgType.COMMAND:
        values = (float(msg.t), float(msg.steering_angle), float(msg.speed), float(msg.acceleration))
    elif mtype is MsgType.HEARTBEAT:
        values = (float(msg.t),)
    else:
        reason = int(msg.reason)
        if not 0 <= reason < SEQ_MOD:
            raise ProtocolError(f"STOP field 'reason' is {reason}; expected 0..2^32-1", "reason")
        values = (float(msg.t), reason)
    stamp = float(msg.stamp)
    if not math.isfinite(stamp):
        raise ProtocolError(f"header field 'stamp' is {stamp}; expected a finite number", "stamp")
    _check_finite(mtype, _FIELDS[mtype], values)
    payload = _PAYLOAD[mtype].pack(*values)
    body = HEADER.pack(MAGIC, VERSION, int(mtype), len(payload), int(msg.seq) % SEQ_MOD, stamp) + payload
    return body + CRC.pack(zlib.crc32(body) & 0xFFFFFFFF)


def decode(data: bytes) -> Message:
    """Parse and validate one datagram. Raises :class:`ProtocolError` naming the bad field."""
    n = len(data)
    if n < HEADER_SIZE + CRC_SIZE:
        raise ProtocolError(f"datagram of {n} bytes is shorter than header + crc32 "
                            f"({HEADER_SIZE + CRC_SIZE} bytes)", "length")
    magic, version, mtype, length, seq, stamp = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise ProtocolError(f"header field 'magic' is {magic!r}; expected {MAGIC!r}", "magic")
    if version != VERSION:
        raise ProtocolError(f"header field 'version' is {version}; expected {VERSION}", "version")
    if n != HEADER_SIZE + length + CRC_SIZE:
        raise ProtocolError(f"header field 'length' is {length} but the datagram has {n} bytes; expected "
                            f"{HEADER_SIZE} + length + {CRC_SIZE} = {HEADER_SIZE + length + CRC_SIZE}", "length")
    (crc,) = CRC.unpack_from(data, n - CRC_SIZE)
    want = zlib.crc32(memoryview(data)[: n - CRC_SIZE]) & 0xFFFFFFFF
    if crc != want:
        raise ProtocolError(f"field 'crc32' is 0x{crc:08x}; expected 0x{want:08x} (CRC-32 of the first "
                            f"{n - CRC_SIZE} bytes)", "crc32")
    try:
        kind = MsgType(mtype)
    except ValueError:
        known = ", ".join(f"{int(m)} {m.name}" for m in MsgType)
        raise ProtocolError(f"header field 'type' is {mtype}; expected one of {known}", "type") from None
    if length != PAYLOAD_SIZE[kind]:
        raise ProtocolError(f"header field 'length' is {length}; a {kind.name} payload has "
                            f"{PAYLOAD_SIZE[kind]} bytes", "length")
    if not math.isfinite(stamp):
        raise ProtocolError(f"header field 'stamp' is {stamp}; expected a finite number", "stamp")
    values = _PAYLOAD[kind].unpack_from(data, HEADER_SIZE)
    _check_finite(kind, _FIELDS[kind], values)
    if kind is MsgType.STATE:
        return StateMsg(seq, stamp, values[0], tuple(values[1:]))
    if kind is MsgType.COMMAND:
        return CommandMsg(seq, stamp, *values)
    if kind is MsgType.HEARTBEAT:
        return HeartbeatMsg(seq, stamp, values[0])
    return StopMsg(seq, stamp, values[0], values[1])


def message_size(mtype: MsgType) -> int:
    """Total datagram size [bytes] of a message type."""
    return HEADER_SIZE + PAYLOAD_SIZE[MsgType(mtype)] + CRC_SIZE
