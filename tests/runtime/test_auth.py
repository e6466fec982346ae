"""Link security: key files, the replay window, the receiver's checks, and a property-based attack test."""
import dataclasses
import os
import stat

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from racing.runtime import protocol as proto
from racing.runtime.auth import (KeyFileError, LinkSecurity, Receiver, Rejected, ReplayWindow, Sender, key_fingerprint,
                                 load_key, write_key)

KEY = bytes(range(1, 33))
OTHER_KEY = bytes(range(101, 133))
CAR = ("127.0.0.1", 5600)
STATE = (1.0, 2.0, 0.1, 3.0, 0.0, 0.2, 0.05)


class Clock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def state_dgram(sender: Sender, t: float | None = None) -> bytes:
    return sender.datagram(proto.MsgType.STATE, lambda seq, stamp, ses: proto.StateMsg(
        seq, stamp, stamp if t is None else t, STATE, ses))


# --- key files ------------------------------------------------------------------------------------
def test_write_and_load_key(tmp_path):
    path = write_key(tmp_path / "car.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_key(path)
    assert len(key) == 32 and key_fingerprint(key).startswith("sha256:")
    with pytest.raises(KeyFileError, match="already exists"):
        write_key(path)


@pytest.mark.parametrize("mode,who", [(0o644, "group and others"), (0o604, "others"), (0o640, "group"),
                                      (0o666, "group and others")])
def test_key_readable_by_others_is_refused(tmp_path, mode, who):
    path = write_key(tmp_path / "car.key")
    os.chmod(path, mode)
    with pytest.raises(KeyFileError) as exc:
        load_key(path)
    msg = str(exc.value)
    assert str(path) in msg and f"{mode:04o}" in msg and who in msg and "chmod 600" in msg


@pytest.mark.parametrize("text,words", [("zz" * 32, "hex digits"), ("ab" * 8, "key of 8 bytes"), ("", "key of 0")])
def test_malformed_key_files(tmp_path, text, words):
    path = tmp_path / "k"
    path.write_text(text)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=words):
        load_key(path)
    with pytest.raises(KeyFileError, match="not found"):
        load_key(tmp_path / "missing.key")


# --- replay window ----------------------------------------------------------------------------------
def test_replay_window_accepts_reordering_once_and_refuses_old_and_duplicates():
    w = ReplayWindow(8)
    for s in (10, 12, 11, 9):
        assert w.check(s) == ("", "")
        w.accept(s)
    assert w.check(11)[0] == "duplicate" and w.check(12)[0] == "duplicate"
    assert w.check(4)[0] == "too_old" and w.check(5)[0] == ""  # 12 - 5 = 7 < 8: in the window, unseen
    w.accept(30)  # a jump beyond the window clears it
    assert w.check(12)[0] == "too_old" and w.check(29)[0] == "" and w.check(30)[0] == "duplicate"
    w2 = ReplayWindow(64)
    w2.accept(2**32 - 2)
    w2.accept(1)  # wraps
    assert w2.check(2**32 - 2)[0] == "duplicate" and w2.check(0)[0] == "" and w2.check(2**32 - 1)[0] == ""


# --- the receiver ----------------------------------------------------------------------------------------
def make_receiver(rx_clock, **sec):
    return Receiver(LinkSecurity(key=KEY, **sec), accept=(proto.MsgType.STATE,), peer=CAR, clock=rx_clock)


def kind_of(rx, data, source=CAR):
    try:
        rx.accept_datagram(data, source)
    except Rejected as exc:
        return exc.kind
    return "ok"


def test_receiver_rejects_each_kind_and_names_it():
    clock = Clock()
    rx = make_receiver(clock, max_age_s=0.25, max_future_s=0.05)
    car = Sender(LinkSecurity(key=KEY), clock=clock)
    first = state_dgram(car)
    assert kind_of(rx, first) == "ok"
    assert kind_of(rx, first) == "replayed"
    assert kind_of(rx, state_dgram(car), source=("127.0.0.1", 9999)) == "foreign"
    assert kind_of(rx, proto.encode(proto.StateMsg(50, clock.t, clock.t, STATE))) == "unsigned"
    assert kind_of(rx, proto.encode(proto.StateMsg(51, clock.t, clock.t, STATE, 7), OTHER_KEY)) == "forged"
    assert kind_of(rx, b"RCNG\x02garbage") == "garbled"
    assert kind_of(rx, proto.encode(proto.CommandMsg(1, clock.t, 0.0, 0.0, 1.0, 0.0, car.session), KEY)) == \
        "unexpected"
    old = Sender(LinkSecurity(key=KEY), clock=lambda: clock.t - 1.0, session=car.session)
    assert kind_of(rx, state_dgram(old)) == "stale"
    ahead = Sender(LinkSecurity(key=KEY), clock=lambda: clock.t + 0.2, session=car.session)
    assert kind_of(rx, state_dgram(ahead)) == "stale"
    assert "in the future" in rx.errors[-1]
    assert rx.counters() == {"accepted": 1, "foreign": 1, "garbled": 1, "unsigned": 1, "forged": 1, "replayed": 1,
                             "stale": 2, "unexpected": 1}
    clock.t += 0.02
    assert kind_of(rx, state_dgram(car)) == "ok"  # the link still works


def test_a_restarted_sender_is_a_new_session_and_the_old_one_stays_dead():
    clock = Clock()
    rx = make_receiver(clock, max_age_s=5.0)
    a = Sender(LinkSecurity(key=KEY), clock=clock)
    recorded = [state_dgram(a) for _ in range(3)]
    for d in recorded:
        assert kind_of(rx, d) == "ok"
    b = Sender(LinkSecurity(key=KEY), clock=clock)  # restart: seq from 0 again
    assert kind_of(rx, state_dgram(b)) == "ok" and kind_of(rx, state_dgram(b)) == "ok"
    assert [kind_of(rx, d) for d in recorded] == ["replayed"] * 3
    assert "has ended" in rx.errors[-1]


def test_estimate_mode_learns_the_offset_per_session():
    clock = Clock(1000.0)
    rx = make_receiver(clock, clock="estimate", max_age_s=0.1)
    car_clock = Clock(5.0)  # unrelated clock
    car = Sender(LinkSecurity(key=KEY), clock=car_clock)
    d0 = state_dgram(car)
    clock.t += 0.002  # 2 ms in flight
    assert kind_of(rx, d0) == "ok"
    assert rx.offset() == pytest.approx(995.002)
    car_clock.t += 0.01
    d1 = state_dgram(car)
    clock.t += 0.011  # this one took 3 ms
    assert kind_of(rx, d1) == "ok"
    assert rx.age(car_clock.t) == pytest.approx(0.001, abs=1e-5)  # relative to the fastest delivery
    car_clock.t += 0.01
    late = state_dgram(car)
    clock.t += 0.5  # held back half a second (a replay attempt or a stalled network)
    assert kind_of(rx, late) == "stale"


def test_version_1_link_checks_order_only():
    clock = Clock()
    rx = Receiver(LinkSecurity(), accept=(proto.MsgType.STATE,), peer=CAR, clock=clock)
    d = [proto.encode(proto.StateMsg(i, 0.0, 0.1 * i, STATE)) for i in range(3)]
    assert [kind_of(rx, x) for x in (d[0], d[2], d[1], d[1])] == ["ok", "ok", "ok", "replayed"]
    assert kind_of(rx, proto.encode(proto.StateMsg(0, 0.0, 0.0, STATE, 3), KEY)) == "garbled"  # v2 without a key
    restarted = proto.encode(proto.StateMsg(100000, 0.0, 0.0, STATE))
    assert kind_of(rx, restarted) == "ok"
    assert kind_of(rx, proto.encode(proto.StateMsg(5, 0.0, 0.0, STATE))) == "ok"  # far back: a restart


# --- property: nothing crashes, each bad datagram is rejected and counted by kind -------------------------
EVENTS = st.lists(st.one_of(
    st.tuples(st.just("valid"), st.integers(0, 3)),
    st.tuples(st.just("random"), st.binary(min_size=0, max_size=200)),
    st.tuples(st.just("truncated"), st.integers(0, 123)),
    st.tuples(st.just("replayed"), st.integers(0, 1000)),
    st.tuples(st.just("forged"), st.integers(0, 8 * 124 - 1)),
    st.tuples(st.just("wrong_key"), st.just(0)),
    st.tuples(st.just("unsigned"), st.just(0)),
    st.tuples(st.just("stale"), st.floats(6.0, 1e6)),
    st.tuples(st.just("foreign"), st.integers(1, 65535)),
    st.tuples(st.just("restart"), st.just(0)),
), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS)
def test_property_attacks_are_rejected_and_counted_and_valid_packets_pass(events):
    clock = Clock()
    rx = make_receiver(clock, max_age_s=5.0, max_future_s=0.05)
    sec = LinkSecurity(key=KEY)
    car = Sender(sec, clock=clock)
    accepted: list[bytes] = []
    expect = dict.fromkeys(("foreign", "garbled", "unsigned", "forged", "replayed", "stale", "unexpected"), 0)
    n_ok = 0
    for kind, arg in events:
        clock.t += 0.001
        if kind == "valid":
            data = state_dgram(car)
            assert kind_of(rx, data) == "ok"
            accepted.append(data)
            n_ok += 1
            continue
        if kind == "restart":
            car = Sender(sec, clock=clock)
            continue
        if kind == "random":
            got = kind_of(rx, arg)
            if got == "ok":  # a random string is not a valid datagram
                pytest.fail(f"random bytes accepted: {arg!r}")
            expect[got] += 1
            assert got in ("garbled", "forged", "unsigned")
            continue
        fresh = state_dgram(car)  # a valid datagram, never delivered as such
        if kind == "truncated":
            data, want = fresh[:arg % len(fresh)], ("garbled", "forged")
        elif kind == "replayed":
            if not accepted:
                continue
            data, want = accepted[arg % len(accepted)], ("replayed",)
        elif kind == "forged":
            flipped = bytearray(fresh)
            flipped[(arg // 8) % len(flipped)] ^= 1 << (arg % 8)
            data, want = bytes(flipped), ("forged", "garbled", "unsigned")  # a flipped magic/version is garbage
        elif kind == "wrong_key":
            data = proto.encode(proto.StateMsg(0, clock.t, clock.t, STATE, car.session), OTHER_KEY)
            want = ("forged",)
        elif kind == "unsigned":
            data, want = proto.encode(proto.StateMsg(0, clock.t, clock.t, STATE)), ("unsigned",)
        elif kind == "stale":
            old = Sender(sec, clock=lambda: clock.t - arg, session=car.session)
            data, want = state_dgram(old), ("stale",)
        else:  # foreign
            data, want = fresh, ("foreign",)
        got = kind_of(rx, data, source=("127.0.0.1", (CAR[1] + arg) % 65536 or 1) if kind == "foreign" else CAR)
        assert got in want, (kind, got, rx.errors[-1] if rx.errors else "")
        expect[got] += 1
    assert rx.accepted == n_ok
    assert rx.counts == expect
    clock.t += 0.001
    assert kind_of(rx, state_dgram(car)) == "ok"  # still works after the barrage


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.binary(min_size=0, max_size=140), min_size=1, max_size=30))
def test_property_vehicle_side_never_crashes_and_never_obeys_garbage(junk):
    from racing.models.params import load_params
    from racing.runtime.vehicle_sim import SimTwinConfig, VehicleCore

    class Still:
        def reset(self, x0):
            self.x = np.array(x0, dtype=float)

        def step(self, command, dt):
            return self.x

    core = VehicleCore(Still(), load_params("f1tenth"), np.zeros(7), SimTwinConfig(), LinkSecurity(key=KEY))
    t = 0.0
    for data in junk:
        t += 0.01
        assert core.receive(data, t) is None
    assert core.mode == "idle" and core.stats["commands"] == 0 and core.stats["stops"] == 0
    assert sum(core.report()["rejected"].values()) == len(junk)
    good = Sender(LinkSecurity(key=KEY), clock=lambda: t)
    core.receive(good.datagram(proto.MsgType.COMMAND, lambda s, stamp, ses: proto.CommandMsg(
        s, stamp, 0.0, 0.1, 1.0, 0.0, ses)), t)
    assert core.mode == "driving" and core.command.speed == 1.0


def test_link_security_validates():
    with pytest.raises(ValueError, match="clock"):
        LinkSecurity(key=KEY, clock="gps")
    with pytest.raises(ValueError, match="max_age_s"):
        LinkSecurity(key=KEY, max_age_s=0)
    with pytest.raises(ValueError, match="16 bytes"):
        LinkSecurity(key=b"x" * 8)
    assert "key" not in repr(dataclasses.replace(LinkSecurity(key=KEY)))  # never printed
