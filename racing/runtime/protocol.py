"""The vehicle link protocol: little-endian binary datagrams over UDP, versions 1 and 2.

The full specification, with byte layouts and the receiver's rules, is ``docs/protocol.md``.

Version 2 (authenticated, the default of ``racing drive``): a 28-byte header, a fixed-size
payload that depends on the message type, and an HMAC-SHA256 tag over header + payload computed
with a shared key (:mod:`racing.runtime.auth` reads it from a file)::

    offset  size  type     field
    0       4     bytes    magic      b"RCNG" (0x52 0x43 0x4E 0x47)
    4       1     uint8    version    2
    5       1     uint8    type       1 STATE, 2 COMMAND, 3 HEARTBEAT, 4 STOP
    6       2     uint16   length     payload length [bytes]; must equal the type's size below
    8       4     uint32   seq        per-sender, per-type counter, +1 per message, wraps at 2^32
    12      8     float64  stamp      sender's clock when sent [s] (see docs/protocol.md: clocks)
    20      8     uint64   session    random per sender start (never 0); a new session resets replay state
    28      L     ...      payload    see below
    28+L    32    bytes    tag        HMAC-SHA256(key, bytes [0, 28+L))

Version 1 (unauthenticated, decoded only when a receiver is configured for it): a 20-byte
header (magic, version = 1, type, length, seq, stamp: the first 20 bytes above), the payload and
a CRC-32 trailer (IEEE 802.3, as ``zlib.crc32``) of bytes [0, 20+L).

Payloads (float64 unless noted). The ``t`` field of every payload is on the *vehicle's* clock [s]:
STATE carries the measurement time; the computer echoes the ``t`` of the newest STATE it has used
in COMMAND, HEARTBEAT and STOP (0 before the first STATE), so the vehicle can measure the full
loop latency (and may refuse commands computed from too old a state).

    type  name       dir                  length  payload
    1     STATE      vehicle -> computer  64      t [s], x [m], y [m], yaw [rad], vx [m/s], vy [m/s],
                                                  yaw_rate [rad/s], steer [rad]   (racing.models.dynamic layout)
    2     COMMAND    computer -> vehicle  32      t [s], steering_angle [rad] (+ left), speed [m/s],
                                                  acceleration [m/s^2] (feed-forward, 0 = none)
    3     HEARTBEAT  computer -> vehicle  8       t [s]   (link alive; sent while there is no command)
    4     STOP       computer -> vehicle  12      t [s], reason (uint32, :class:`StopReason`)

Decoding is strict: :func:`decode` raises :class:`ProtocolError` naming the field and what was
expected; its ``kind`` says how a receiver counts the datagram: ``garbled`` (malformed: size,
magic, version, length, CRC, type, a non-finite real), ``unsigned`` (a version-1 datagram where
version 2 is required), ``forged`` (a version-2 datagram whose tag does not verify with the key).
Replay, freshness and source checks are the receiver's (:class:`racing.runtime.auth.Receiver`).

Sequence numbers compare with serial-number arithmetic (RFC 1982): ``b`` is newer than ``a``
when ``0 < (b - a) mod 2^32 < 2^31``.
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Union

import numpy as np

MAGIC = b"RCNG"
VERSION_V1 = 1
VERSION_V2 = 2
VERSION = VERSION_V1  # the unauthenticated version of encode()/decode() without a key
HEADER = struct.Struct("<4sBBHId")  # v1: magic, version, type, length, seq, stamp
HEADER_V2 = struct.Struct("<4sBBHIdQ")  # v2: ... + session
CRC = struct.Struct("<I")
HEADER_SIZE = HEADER.size  # 20
HEADER_V2_SIZE = HEADER_V2.size  # 28
CRC_SIZE = CRC.size  # 4
TAG_SIZE = hashlib.sha256().digest_size  # 32
SEQ_MOD = 1 << 32
SESSION_MOD = 1 << 64
MAX_DATAGRAM = 512  # receive buffer [bytes]; every valid message is far smaller
KEY_MIN_BYTES = 16


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
    """A datagram is not a valid message.

    ``field`` names the offending header/payload field; ``kind`` is the receiver's counter for it:
    ``garbled`` | ``unsigned`` | ``forged`` (see the module docstring).
    """

    def __init__(self, message: str, field: str = "", kind: str = "garbled"):
        super().__init__(message)
        self.field = field
        self.kind = kind


@dataclass(frozen=True)
class StateMsg:
    """Vehicle state at vehicle time ``t`` [s]; ``state`` = (x, y, yaw, vx, vy, yaw_rate, steer).

    ``stamp`` [s] sender clock at sending; ``session`` 0 for version 1."""

    seq: int
    stamp: float
    t: float
    state: tuple
    session: int = 0

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
    session: int = 0


@dataclass(frozen=True)
class HeartbeatMsg:
    seq: int
    stamp: float
    t: float
    session: int = 0


@dataclass(frozen=True)
class StopMsg:
    seq: int
    stamp: float
    t: float
    reason: int = StopReason.NORMAL
    session: int = 0

    @property
    def reason_name(self) -> str:
        return stop_reason_name(self.reason)


Message = Union[StateMsg, CommandMsg, HeartbeatMsg, StopMsg]
_TYPE_OF = {StateMsg: MsgType.STATE, CommandMsg: MsgType.COMMAND, HeartbeatMsg: MsgType.HEARTBEAT,
            StopMsg: MsgType.STOP}


def msg_type(msg: Message) -> MsgType:
    """The :class:`MsgType` of a message object."""
    mtype = _TYPE_OF.get(type(msg))
    if mtype is None:
        raise TypeError(f"not a protocol message: {type(msg).__name__}")
    return mtype


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


def _payload_values(mtype: MsgType, msg: Message) -> tuple:
    if mtype is MsgType.STATE:
        if len(msg.state) != 7:
            raise ProtocolError(f"STATE field 'state' has {len(msg.state)} values; expected 7", "state")
        return (float(msg.t), *(float(v) for v in msg.state))
    if mtype is MsgType.COMMAND:
        return (float(msg.t), float(msg.steering_angle), float(msg.speed), float(msg.acceleration))
    if mtype is MsgType.HEARTBEAT:
        return (float(msg.t),)
    reason = int(msg.reason)
    if not 0 <= reason < SEQ_MOD:
        raise ProtocolError(f"STOP field 'reason' is {reason}; expected 0..2^32-1", "reason")
    return (float(msg.t), reason)


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) < KEY_MIN_BYTES:
        raise ValueError(f"HMAC key: expected at least {KEY_MIN_BYTES} bytes, got "
                         f"{len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__}")
    return bytes(key)


def tag(key: bytes, body) -> bytes:
    """HMAC-SHA256 of ``body`` with ``key`` (32 bytes)."""
    return hmac.new(key, body, hashlib.sha256).digest()


def encode(msg: Message, key: bytes | None = None) -> bytes:
    """The datagram for ``msg``: version 1 (CRC-32) without ``key``, version 2 (HMAC-SHA256) with it.

    Version 2 uses ``msg.session`` (1..2^64-1). Raises :class:`ProtocolError` for a non-finite or
    out-of-range field, ValueError for a key shorter than 16 bytes.
    """
    mtype = _TYPE_OF.get(type(msg))
    if mtype is None:
        raise TypeError(f"encode: not a protocol message: {type(msg).__name__}")
    values = _payload_values(mtype, msg)
    stamp = float(msg.stamp)
    if not math.isfinite(stamp):
        raise ProtocolError(f"header field 'stamp' is {stamp}; expected a finite number", "stamp")
    _check_finite(mtype, _FIELDS[mtype], values)
    payload = _PAYLOAD[mtype].pack(*values)
    seq = int(msg.seq) % SEQ_MOD
    if key is None:
        body = HEADER.pack(MAGIC, VERSION_V1, int(mtype), len(payload), seq, stamp) + payload
        return body + CRC.pack(zlib.crc32(body) & 0xFFFFFFFF)
    key = _check_key(key)
    session = int(msg.session)
    if not 0 < session < SESSION_MOD:
        raise ProtocolError(f"header field 'session' is {session}; expected 1..2^64-1 for version 2", "session")
    body = HEADER_V2.pack(MAGIC, VERSION_V2, int(mtype), len(payload), seq, stamp, session) + payload
    return body + tag(key, body)


def peek_version(data: bytes) -> int | None:
    """The version byte of a datagram with the right magic, else None (no validation)."""
    if len(data) >= 5 and data[:4] == MAGIC:
        return data[4]
    return None


def _parse_payload(kind: MsgType, data, offset: int, seq: int, stamp: float, session: int) -> Message:
    if not math.isfinite(stamp):
        raise ProtocolError(f"header field 'stamp' is {stamp}; expected a finite number", "stamp")
    values = _PAYLOAD[kind].unpack_from(data, offset)
    _check_finite(kind, _FIELDS[kind], values)
    if kind is MsgType.STATE:
        return StateMsg(seq, stamp, values[0], tuple(values[1:]), session)
    if kind is MsgType.COMMAND:
        return CommandMsg(seq, stamp, *values, session=session)
    if kind is MsgType.HEARTBEAT:
        return HeartbeatMsg(seq, stamp, values[0], session)
    return StopMsg(seq, stamp, values[0], values[1], session)


def _msg_kind(mtype: int, length: int) -> MsgType:
    try:
        kind = MsgType(mtype)
    except ValueError:
        known = ", ".join(f"{int(m)} {m.name}" for m in MsgType)
        raise ProtocolError(f"header field 'type' is {mtype}; expected one of {known}", "type") from None
    if length != PAYLOAD_SIZE[kind]:
        raise ProtocolError(f"header field 'length' is {length}; a {kind.name} payload has "
                            f"{PAYLOAD_SIZE[kind]} bytes", "length")
    return kind


def _decode_v1(data) -> Message:
    n = len(data)
    magic, version, mtype, length, seq, stamp = HEADER.unpack_from(data, 0)
    if n != HEADER_SIZE + length + CRC_SIZE:
        raise ProtocolError(f"header field 'length' is {length} but the datagram has {n} bytes; expected "
                            f"{HEADER_SIZE} + length + {CRC_SIZE} = {HEADER_SIZE + length + CRC_SIZE}", "length")
    (crc,) = CRC.unpack_from(data, n - CRC_SIZE)
    want = zlib.crc32(memoryview(data)[: n - CRC_SIZE]) & 0xFFFFFFFF
    if crc != want:
        raise ProtocolError(f"field 'crc32' is 0x{crc:08x}; expected 0x{want:08x} (CRC-32 of the first "
                            f"{n - CRC_SIZE} bytes)", "crc32")
    kind = _msg_kind(mtype, length)
    return _parse_payload(kind, data, HEADER_SIZE, seq, stamp, 0)


def _decode_v2(data, key: bytes) -> Message:
    n = len(data)
    if n < HEADER_V2_SIZE + TAG_SIZE:
        raise ProtocolError(f"version 2 datagram of {n} bytes is shorter than header + tag "
                            f"({HEADER_V2_SIZE + TAG_SIZE} bytes)", "length")
    body = memoryview(data)[: n - TAG_SIZE]
    if not hmac.compare_digest(tag(key, body), bytes(data[n - TAG_SIZE:])):
        raise ProtocolError("field 'tag' does not verify: HMAC-SHA256 of the header and payload with the "
                            "configured key differs (forged, corrupted, or another key)", "tag", kind="forged")
    magic, version, mtype, length, seq, stamp, session = HEADER_V2.unpack_from(data, 0)
    if n != HEADER_V2_SIZE + length + TAG_SIZE:
        raise ProtocolError(f"header field 'length' is {length} but the datagram has {n} bytes; expected "
                            f"{HEADER_V2_SIZE} + length + {TAG_SIZE} = {HEADER_V2_SIZE + length + TAG_SIZE}",
                            "length")
    if session == 0:
        raise ProtocolError("header field 'session' is 0; expected 1..2^64-1 in version 2", "session")
    kind = _msg_kind(mtype, length)
    return _parse_payload(kind, data, HEADER_V2_SIZE, seq, stamp, session)


def decode(data: bytes, key: bytes | None = None, allow_v1: bool | None = None) -> Message:
    """Parse and validate one datagram. Raises :class:`ProtocolError` naming the bad field.

    Parameters
    ----------
    data : the datagram
    key : the shared HMAC key; None = this receiver speaks version 1 only
    allow_v1 : accept version-1 datagrams (default: only when no key is given). With a key and
        ``allow_v1=False`` a version-1 datagram is rejected with ``kind = "unsigned"``.

    Checks, in order: at least 24 bytes; magic; version (1, or 2 with a key); for version 2 the
    HMAC tag over everything before it (``forged``) before any other field is trusted; the length
    field against the datagram size; for version 1 the CRC; the type; the type's payload length;
    finite stamp and payload reals.
    """
    if allow_v1 is None:
        allow_v1 = key is None
    n = len(data)
    if n < HEADER_SIZE + CRC_SIZE:
        raise ProtocolError(f"datagram of {n} bytes is shorter than header + crc32 "
                            f"({HEADER_SIZE + CRC_SIZE} bytes)", "length")
    magic = bytes(data[:4])
    if magic != MAGIC:
        raise ProtocolError(f"header field 'magic' is {magic!r}; expected {MAGIC!r}", "magic")
    version = data[4]
    if version == VERSION_V2:
        if key is None:
            raise ProtocolError("header field 'version' is 2 (authenticated) but no key is configured; "
                                "expected 1", "version")
        return _decode_v2(data, key)
    if version == VERSION_V1:
        if not allow_v1:
            raise ProtocolError("header field 'version' is 1 (unsigned, CRC-32 only); expected 2 "
                                "(HMAC-SHA256) on this link", "version", kind="unsigned")
        return _decode_v1(data)
    want = "1 or 2" if (key is not None and allow_v1) else ("2" if key is not None else "1")
    raise ProtocolError(f"header field 'version' is {version}; expected {want}", "version")


def message_size(mtype: MsgType, version: int = VERSION_V1) -> int:
    """Total datagram size [bytes] of a message type in ``version`` (1 or 2)."""
    if version == VERSION_V2:
        return HEADER_V2_SIZE + PAYLOAD_SIZE[MsgType(mtype)] + TAG_SIZE
    return HEADER_SIZE + PAYLOAD_SIZE[MsgType(mtype)] + CRC_SIZE
