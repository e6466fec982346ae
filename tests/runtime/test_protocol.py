"""The vehicle link protocol: exact layout, round trips, strict decoding, fuzzing."""
import math
import socket
import struct
import time
import zlib

import numpy as np
import pytest

from racing.control.base import Command
from racing.runtime import protocol as proto
from racing.runtime.protocol import CommandMsg, HeartbeatMsg, ProtocolError, StateMsg, StopMsg, decode, encode

STATE = (1.5, -2.25, 0.3, 4.0, -0.1, 0.7, 0.05)
MESSAGES = [
    StateMsg(7, 12.5, 3.25, STATE),
    CommandMsg(8, 12.75, 3.25, -0.2, 5.5, 1.25),
    HeartbeatMsg(9, 13.0, 3.25),
    StopMsg(10, 13.5, 3.25, proto.StopReason.STATE_TIMEOUT),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    data = encode(msg)
    assert len(data) == proto.message_size(proto._TYPE_OF[type(msg)])
    assert decode(data) == msg


def test_exact_wire_layout_of_a_command():
    data = encode(CommandMsg(0x01020304, 2.0, 1.0, 0.1, 3.0, -1.0))
    assert data[:4] == b"RCNG" and data[4] == 1 and data[5] == 2
    assert struct.unpack_from("<H", data, 6)[0] == 32
    assert struct.unpack_from("<I", data, 8)[0] == 0x01020304
    assert struct.unpack_from("<d", data, 12)[0] == 2.0
    assert struct.unpack_from("<4d", data, 20) == (1.0, 0.1, 3.0, -1.0)
    assert struct.unpack_from("<I", data, 52)[0] == zlib.crc32(data[:52])
    assert len(data) == 56
    sizes = {t: proto.message_size(t) for t in proto.MsgType}
    assert sizes == {proto.MsgType.STATE: 88, proto.MsgType.COMMAND: 56, proto.MsgType.HEARTBEAT: 32,
                     proto.MsgType.STOP: 36}


def test_state_array_and_seq_wrap():
    msg = decode(encode(StateMsg(2**32 + 5, 0.0, 1.0, STATE)))
    assert msg.seq == 5
    np.testing.assert_array_equal(msg.array, np.array(STATE))
    assert proto.seq_newer(1, 0) and proto.seq_newer(0, 2**32 - 1) and not proto.seq_newer(5, 5)
    assert not proto.seq_newer(0, 1) and not proto.seq_newer(2**32 - 1, 0)


def test_unknown_stop_reason_is_still_a_stop():
    msg = decode(encode(StopMsg(0, 0.0, 0.0, 4242)))
    assert isinstance(msg, StopMsg) and msg.reason_name == "unknown(4242)"


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _raw(mtype: int, payload: bytes, magic=b"RCNG", version=1, length=None, stamp=0.0) -> bytes:
    n = len(payload) if length is None else length
    return _with_crc(struct.pack("<4sBBHId", magic, version, mtype, n, 1, stamp) + payload)


@pytest.mark.parametrize("data,field,words", [
    (b"", "length", "shorter"),
    (b"RCNG\x01", "length", "shorter"),
    (_raw(1, bytes(64), magic=b"XXXX"), "magic", "expected b'RCNG'"),
    (_raw(1, bytes(64), version=2), "version", "expected 1"),
    (_raw(9, bytes(8)), "type", "expected one of 1 STATE"),
    (_raw(1, bytes(32)), "length", "STATE payload has 64 bytes"),
    (_raw(1, bytes(64), length=60), "length", "expected 20 + length + 4"),
    (_raw(3, struct.pack("<d", 1.0), stamp=math.inf), "stamp", "finite"),
    (_raw(1, struct.pack("<8d", 0, 1, 2, 3, math.nan, 5, 6, 7)), "vx", "STATE field 'vx' is nan"),
    (_raw(2, struct.pack("<4d", 0, 0.1, math.inf, 0)), "speed", "COMMAND field 'speed' is inf"),
])
def test_garbled_packets_name_the_field(data, field, words):
    with pytest.raises(ProtocolError) as exc:
        decode(data)
    assert exc.value.field == field
    assert words in str(exc.value)


def test_bad_crc_is_named():
    data = bytearray(encode(MESSAGES[0]))
    data[-1] ^= 0xFF
    with pytest.raises(ProtocolError, match=r"crc32.*expected 0x"):
        decode(bytes(data))


def test_encode_refuses_non_finite_and_bad_shapes():
    with pytest.raises(ProtocolError, match="'yaw' is nan"):
        encode(StateMsg(0, 0.0, 0.0, (0, 0, math.nan, 0, 0, 0, 0)))
    with pytest.raises(ProtocolError, match="expected 7"):
        encode(StateMsg(0, 0.0, 0.0, (0, 0, 0)))
    with pytest.raises(ProtocolError, match="stamp"):
        encode(HeartbeatMsg(0, math.nan, 0.0))
    with pytest.raises(TypeError):
        encode("hello")


def test_fuzz_random_bytes_never_decode():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        n = int(rng.integers(0, 120))
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        if rng.random() < 0.5 and n >= 4:  # half of them with a valid magic, to get past the first check
            data = b"RCNG" + data[4:]
        with pytest.raises(ProtocolError):
            decode(data)


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_fuzz_truncated_extended_and_every_single_bit_flip(msg):
    data = encode(msg)
    for n in range(len(data)):
        with pytest.raises(ProtocolError):
            decode(data[:n])
    with pytest.raises(ProtocolError):
        decode(data + b"\x00")
    for bit in range(8 * len(data)):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProtocolError):
            decode(bytes(flipped))


def test_fuzz_random_multi_bit_flips():
    rng = np.random.default_rng(1)
    data = encode(MESSAGES[0])
    for _ in range(2000):
        flipped = bytearray(data)
        for pos in rng.integers(0, len(data), int(rng.integers(2, 6))):
            flipped[pos] ^= int(rng.integers(1, 256))
        if bytes(flipped) == data:
            continue
        with pytest.raises(ProtocolError):
            decode(bytes(flipped))


def test_udp_vehicle_drops_garbage_and_returns_the_newest_valid_state():
    from racing.runtime.vehicle import UdpVehicle

    car = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    car.bind(("127.0.0.1", 0))
    car.settimeout(2.0)
    veh = UdpVehicle("127.0.0.1", car.getsockname()[1])
    veh.connect()
    try:
        assert veh.latest_state() is None
        me = veh.local_address
        good = [encode(StateMsg(i, 0.0, 0.1 * i, STATE)) for i in range(3)]
        for d in (b"junk", good[1], encode(MESSAGES[1])[:-3], good[2], good[0], encode(MESSAGES[1]), bytes(88)):
            car.sendto(d, me)
        time.sleep(0.05)  # loopback delivers at once; a margin anyway, so that one call reads all seven
        got = veh.latest_state()
        assert veh.stats.rx + veh.stats.dropped == 7
        t, state = got
        assert t == pytest.approx(0.2) and state.shape == (7,)
        s = veh.stats
        assert s.dropped == 4 and s.garbled == 3 and s.unexpected == 1 and s.older == 1 and s.superseded == 1
        assert any("magic" in e for e in veh.errors)
        veh.send(Command(0.1, 2.0), t=0.2)
        veh.stop(proto.StopReason.INTERRUPTED, t=math.nan)
        cmd = decode(car.recvfrom(512)[0])
        stop = decode(car.recvfrom(512)[0])
        assert isinstance(cmd, CommandMsg) and cmd.speed == 2.0 and cmd.t == 0.2
        assert isinstance(stop, StopMsg) and stop.reason == proto.StopReason.INTERRUPTED and stop.t == 0.0
    finally:
        veh.close()
        car.close()


@pytest.mark.parametrize("url,ok", [("udp://127.0.0.1:5600", ("127.0.0.1", 5600)), ("tcp://127.0.0.1:1", None),
                                    ("udp://127.0.0.1", None), ("127.0.0.1:5600", None), ("udp://:80", None)])
def test_parse_udp_url(url, ok):
    from racing.runtime.vehicle import parse_udp_url

    if ok:
        assert parse_udp_url(url) == ok
    else:
        with pytest.raises(ValueError, match="udp://HOST:PORT"):
            parse_udp_url(url)


# --- version 2: HMAC-SHA256 ----------------------------------------------------------------------------
KEY = bytes(range(32))


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_v2_round_trip_and_size(msg):
    import dataclasses

    msg = dataclasses.replace(msg, session=0x1122334455667788)
    data = encode(msg, KEY)
    assert len(data) == proto.message_size(proto.msg_type(msg), version=2)
    assert decode(data, KEY) == msg


def test_v2_exact_wire_layout_of_a_state():
    import hashlib
    import hmac

    data = encode(StateMsg(7, 12.5, 3.25, STATE, session=0xA1B2C3D4E5F60718), KEY)
    assert len(data) == 28 + 64 + 32 == 124
    assert data[:4] == b"RCNG" and data[4] == 2 and data[5] == 1
    assert struct.unpack_from("<H", data, 6)[0] == 64
    assert struct.unpack_from("<I", data, 8)[0] == 7
    assert struct.unpack_from("<d", data, 12)[0] == 12.5
    assert struct.unpack_from("<Q", data, 20)[0] == 0xA1B2C3D4E5F60718
    assert struct.unpack_from("<8d", data, 28) == (3.25, *STATE)
    assert data[92:] == hmac.new(KEY, data[:92], hashlib.sha256).digest()
    sizes = {t: proto.message_size(t, 2) for t in proto.MsgType}
    assert sizes == {proto.MsgType.STATE: 124, proto.MsgType.COMMAND: 92, proto.MsgType.HEARTBEAT: 68,
                     proto.MsgType.STOP: 72}


def test_v2_kinds_forged_unsigned_and_keyless():
    msg = CommandMsg(1, 2.0, 1.0, 0.1, 3.0, 0.0, session=5)
    data = encode(msg, KEY)
    with pytest.raises(ProtocolError) as exc:
        decode(data, bytes(32))  # another key
    assert exc.value.kind == "forged" and exc.value.field == "tag"
    with pytest.raises(ProtocolError) as exc:
        decode(encode(msg), KEY)  # version 1 where version 2 is required
    assert exc.value.kind == "unsigned" and "expected 2" in str(exc.value)
    assert decode(encode(msg), KEY, allow_v1=True).session == 0  # configured migration
    with pytest.raises(ProtocolError, match="no key is configured") as exc:
        decode(data)
    assert exc.value.kind == "garbled"
    with pytest.raises(ProtocolError, match="session"):
        encode(CommandMsg(1, 2.0, 1.0, 0.1, 3.0), KEY)  # session 0 is version 1's
    with pytest.raises(ValueError, match="at least 16 bytes"):
        encode(msg, b"short")


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_v2_every_single_bit_flip_and_truncation_is_refused(msg):
    import dataclasses

    data = encode(dataclasses.replace(msg, session=9), KEY)
    for n in range(len(data)):
        with pytest.raises(ProtocolError):
            decode(data[:n], KEY)
    for bit in range(8 * len(data)):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProtocolError) as exc:
            decode(bytes(flipped), KEY)
        assert exc.value.kind in ("forged", "garbled", "unsigned")
