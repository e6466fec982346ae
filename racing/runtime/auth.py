"""Link security for protocol version 2: the shared key, sending, and the receiver's checks.

* :func:`load_key` reads the shared HMAC key from a file (64 hex digits = 32 bytes; at least
  32 hex digits) and refuses a file that its group or others may read or write (like ssh
  does for private keys); :func:`write_key` makes one (mode 0600). ``racing keygen FILE``.
* :class:`Sender` stamps, numbers and signs outgoing messages (one random ``session`` per
  sender start, one sequence counter per message type).
* :class:`Receiver` accepts or rejects every incoming datagram and counts rejections by kind:

  ``foreign``    the source address is not the configured peer (checked before anything else);
  ``garbled``    malformed (size, magic, version, length, CRC, type, NaN/inf);
  ``unsigned``   a version-1 datagram where version 2 is required;
  ``forged``     the HMAC tag does not verify with the key;
  ``replayed``   a (session, seq) already seen, older than the replay window, or from a retired session;
  ``stale``      the stamp is outside the freshness window (older than ``max_age_s`` or more than
                 ``max_future_s`` in the future);
  ``unexpected`` a valid message of a type this side does not accept (e.g. COMMAND at the computer).

Clocks (``clock`` setting; see docs/protocol.md). ``shared``: both ends stamp with the same
clock - one machine's CLOCK_MONOTONIC over loopback (the simulated twin), or clocks kept in step
by PTP/chrony - so the age of a stamp is ``now - stamp``. ``estimate``: the ends have unrelated
clocks; the receiver estimates the offset per sender session as the running minimum of
``now - stamp`` (which lets the estimate rise by ``drift_ppm`` to follow clock drift), so an age is
measured relative to the fastest delivery seen - it misses the minimum one-way delay (well below
1 ms on a wired link). In ``estimate`` mode the freshness check cannot judge the first datagram of
a session; replays across sessions are refused by retiring old session ids, but a recording of a
whole session the receiver never saw (made before it started) could be replayed: prefer
synchronised clocks (``shared``) on a car, and rotate keys.
"""
from __future__ import annotations

import collections
import hashlib
import math
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from racing.runtime import protocol as proto

REJECT_KINDS = ("foreign", "garbled", "unsigned", "forged", "replayed", "stale", "unexpected")
CLOCK_MODES = ("shared", "estimate")


class KeyFileError(ValueError):
    """The key file is missing, unsafe or malformed; the message names the file."""


def load_key(path) -> bytes:
    """The shared HMAC key [bytes] from ``path`` (hex text, whitespace ignored).

    Raises :class:`KeyFileError` naming the file when it is missing, not a regular file, readable or
    writable by group or others (mode & 0o077, "chmod 600 FILE"), or not 32..128 hex digits.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise KeyFileError(f"key file {p}: not found (make one with: racing keygen {p})") from None
    except OSError as exc:
        raise KeyFileError(f"key file {p}: cannot read: {exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"key file {p}: not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        who = [w for w, bits in (("group", 0o070), ("others", 0o007)) if mode & bits]
        raise KeyFileError(f"key file {p} has mode {mode:04o}: it is accessible by {' and '.join(who)}; expected "
                           f"0600 or stricter (run: chmod 600 {p})")
    try:
        text = p.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"key file {p}: cannot read as text: {exc}") from exc
    digits = "".join(text.split())
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        raise KeyFileError(f"key file {p}: expected the key as hex digits (0-9, a-f), e.g. 64 digits for 32 bytes")\
            from None
    if not 2 * proto.KEY_MIN_BYTES <= len(digits) <= 256:
        raise KeyFileError(f"key file {p}: key of {len(key)} bytes; expected {proto.KEY_MIN_BYTES}..128 bytes "
                           f"(32..256 hex digits; 64 recommended)")
    return key


def write_key(path, nbytes: int = 32) -> Path:
    """Create ``path`` with a new random key of ``nbytes`` bytes as hex, mode 0600; never overwrites."""
    if not proto.KEY_MIN_BYTES <= nbytes <= 128:
        raise ValueError(f"key length {nbytes} bytes; expected {proto.KEY_MIN_BYTES}..128")
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {p}: already exists; not overwritten") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(nbytes) + "\n")
    os.chmod(p, 0o600)  # whatever the umask said
    return p


def key_fingerprint(key: bytes | None) -> str | None:
    """A short, non-secret identifier of a key for logs (first 8 hex digits of SHA-256 of the key)."""
    return None if key is None else "sha256:" + hashlib.sha256(key).hexdigest()[:8]


def new_session_id() -> int:
    """A random 64-bit session id (never 0)."""
    while True:
        s = secrets.randbits(64)
        if s:
            return s


@dataclass(frozen=True)
class LinkSecurity:
    """How one end of the link signs and checks datagrams.

    key : shared HMAC key (None = protocol version 1: no authentication, CRC-32 only)
    allow_v1 : with a key, still accept version-1 datagrams (migration only; counted as accepted)
    max_age_s : freshness: a stamp older than this [s] is ``stale``
    max_future_s : freshness: a stamp more than this [s] ahead of the receiver's clock is ``stale``
    window : replay window [sequence numbers] per message type (1..1024)
    clock : ``shared`` | ``estimate`` (see the module docstring)
    drift_ppm : ``estimate`` mode: how fast [1e-6 s/s] the offset estimate may rise (clock drift)
    """

    key: bytes | None = field(default=None, repr=False)
    allow_v1: bool = False
    max_age_s: float = 0.25
    max_future_s: float = 0.05
    window: int = 64
    clock: str = "shared"
    drift_ppm: float = 100.0

    def __post_init__(self):
        if self.key is not None:
            proto._check_key(self.key)
        if not (math.isfinite(self.max_age_s) and self.max_age_s > 0):
            raise ValueError(f"max_age_s {self.max_age_s}: expected a positive number of seconds")
        if not (math.isfinite(self.max_future_s) and self.max_future_s >= 0):
            raise ValueError(f"max_future_s {self.max_future_s}: expected >= 0 s")
        if not 1 <= int(self.window) <= 1024:
            raise ValueError(f"window {self.window}: expected 1..1024 sequence numbers")
        if self.clock not in CLOCK_MODES:
            raise ValueError(f"clock {self.clock!r}: expected one of {', '.join(CLOCK_MODES)}")

    @property
    def version(self) -> int:
        return proto.VERSION_V2 if self.key is not None else proto.VERSION_V1

    def describe(self) -> dict:
        """Settings for logs and summaries (the key only as a fingerprint)."""
        return {"protocol": self.version, "key": key_fingerprint(self.key), "allow_v1": self.allow_v1,
                "max_age_s": self.max_age_s, "max_future_s": self.max_future_s, "window": self.window,
                "clock": self.clock}


INSECURE = LinkSecurity()


class Sender:
    """Numbers, stamps and signs outgoing messages: ``datagram(make)`` where ``make(seq, stamp, session)``
    returns the message. ``clock()`` [s] gives the stamp (the shared clock, default CLOCK_MONOTONIC)."""

    def __init__(self, security: LinkSecurity = INSECURE, clock=time.monotonic, session: int | None = None):
        self.security = security
        self.clock = clock
        self.session = new_session_id() if session is None else int(session)
        self._seq = {t: 0 for t in proto.MsgType}

    def datagram(self, mtype: proto.MsgType, make, stamp: float | None = None) -> bytes:
        """Encode ``make(seq, stamp, session)`` (stamp = ``clock()`` unless given [s])."""
        seq = self._seq[mtype]
        self._seq[mtype] = (seq + 1) % proto.SEQ_MOD
        stamp = float(self.clock()) if stamp is None else float(stamp)
        msg = make(seq, stamp, self.session if self.security.key is not None else 0)
        return proto.encode(msg, self.security.key)


class Rejected(Exception):
    """A datagram the receiver refused; ``kind`` is one of :data:`REJECT_KINDS`."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class ReplayWindow:
    """Anti-replay sliding window over 32-bit sequence numbers (as in IPsec/DTLS): the newest
    accepted ``seq`` and a bitmap of the ``size`` numbers below it. Accepts a number once; refuses
    duplicates and numbers older than the window. Reordering within the window is accepted."""

    def __init__(self, size: int = 64):
        self.size = int(size)
        self.top: int | None = None
        self.bits = 0  # bit i set: seq top - i seen

    def check(self, seq: int) -> tuple[str, str]:
        """('', '') when ``seq`` would be accepted, else (``'duplicate'`` | ``'too_old'``, why); records nothing."""
        if self.top is None:
            return "", ""
        d = (self.top - seq) % proto.SEQ_MOD
        if d == 0 or (d < proto.SEQ_MOD >> 1 and d < self.size and self.bits >> d & 1):
            return "duplicate", f"seq {seq} was already accepted"
        if d < proto.SEQ_MOD >> 1 and d >= self.size:
            return "too_old", (f"seq {seq} is {d} behind the newest ({self.top}), beyond the replay window "
                               f"of {self.size}")
        return "", ""

    def accept(self, seq: int) -> None:
        if self.top is None:
            self.top, self.bits = seq, 1
            return
        ahead = (seq - self.top) % proto.SEQ_MOD
        if 0 < ahead < proto.SEQ_MOD >> 1:  # newer: slide
            self.bits = ((self.bits << ahead) | 1) & ((1 << self.size) - 1) if ahead < self.size else 1
            self.top = seq
        else:
            self.bits |= 1 << ((self.top - seq) % proto.SEQ_MOD)


class _Stream:
    """Replay state of one message type from one peer."""

    __slots__ = ("session", "window", "offset", "offset_t", "newest_stamp")

    def __init__(self, session: int, size: int):
        self.session = session
        self.window = ReplayWindow(size)
        self.offset: float | None = None  # estimate mode: receiver clock - sender clock [s]
        self.offset_t = 0.0
        self.newest_stamp = -math.inf


class Receiver:
    """Accept or reject datagrams; count rejections by kind (see the module docstring).

    Parameters
    ----------
    security : :class:`LinkSecurity`
    accept : message types this side accepts (others are ``unexpected``)
    peer : (host, port) that may send to us (None = any source: only for a vehicle that learns its
        computer's address from authenticated datagrams)
    clock : receiver clock [s] in the same time base as the sender's stamps in ``shared`` mode

    ``accept_datagram(data, source)`` returns the message or raises :class:`Rejected`; ``counts`` holds
    the rejections per kind, ``accepted`` the accepted messages, ``errors`` the last 20 reasons.
    """

    MAX_RETIRED = 256

    def __init__(self, security: LinkSecurity, accept, peer: tuple[str, int] | None = None, clock=time.monotonic):
        self.security = security
        self.accept_types = frozenset(proto.MsgType(t) for t in accept)
        self.peer = None if peer is None else (str(peer[0]), int(peer[1]))
        self.clock = clock
        self.counts = dict.fromkeys(REJECT_KINDS, 0)
        self.accepted = 0
        self.errors: collections.deque[str] = collections.deque(maxlen=20)
        self._streams: dict[proto.MsgType, _Stream] = {}
        self._retired: collections.OrderedDict[int, None] = collections.OrderedDict()

    @property
    def rejected(self) -> int:
        return sum(self.counts.values())

    def _reject(self, kind: str, message: str, source=None) -> Rejected:
        self.counts[kind] += 1
        where = f"from {source[0]}:{source[1]}: " if source else ""
        self.errors.append(f"{kind}: {where}{message}")
        return Rejected(kind, message)

    def offset(self, mtype: proto.MsgType = proto.MsgType.STATE) -> float:
        """Receiver clock minus sender clock [s] for ``mtype``'s current session (0 in ``shared`` mode)."""
        if self.security.clock == "shared":
            return 0.0
        s = self._streams.get(proto.MsgType(mtype))
        return 0.0 if s is None or s.offset is None else s.offset

    def age(self, sender_time: float, mtype: proto.MsgType = proto.MsgType.STATE, now: float | None = None) -> float:
        """Age [s] now of an instant ``sender_time`` [s] on the sender's clock."""
        now = self.clock() if now is None else now
        return now - (sender_time + self.offset(mtype))

    def accept_datagram(self, data: bytes, source: tuple | None = None, now: float | None = None) -> proto.Message:
        sec = self.security
        if self.peer is not None and source is not None and (source[0], int(source[1])) != self.peer:
            raise self._reject("foreign", f"not the configured peer {self.peer[0]}:{self.peer[1]}", source)
        try:
            msg = proto.decode(data, sec.key, sec.allow_v1 if sec.key is not None else True)
        except proto.ProtocolError as exc:
            raise self._reject(exc.kind, str(exc), source) from None
        mtype = proto.msg_type(msg)
        if mtype not in self.accept_types:
            raise self._reject("unexpected", f"a {mtype.name} message is not accepted on this side", source)
        now = self.clock() if now is None else now
        if msg.session == 0:  # version 1: no session, sender-local stamps: sequence order only
            self._accept_v1(msg, mtype, source)
        else:
            self._accept_v2(msg, mtype, source, now)
        self.accepted += 1
        return msg

    def _accept_v1(self, msg, mtype, source) -> None:
        # No authentication means no replay protection worth the name; only drop duplicates and
        # reordered datagrams, and treat a jump far back as a sender restart.
        st = self._streams.get(mtype)
        if st is None or st.session != 0:
            st = self._streams[mtype] = _Stream(0, self.security.window)
        code, why = st.window.check(msg.seq)
        if code == "too_old":
            st.window = ReplayWindow(self.security.window)
        elif code:
            raise self._reject("replayed", f"{mtype.name} {why}", source)
        st.window.accept(msg.seq)

    def _accept_v2(self, msg, mtype, source, now) -> None:
        sec = self.security
        st = self._streams.get(mtype)
        new_session = st is None or st.session != msg.session
        if new_session and msg.session in self._retired:
            raise self._reject("replayed", f"{mtype.name} from session {msg.session:016x}, which has ended", source)
        # freshness
        if sec.clock == "shared":
            offset = 0.0
        elif new_session or st.offset is None:
            offset = now - msg.stamp
        else:
            offset = min(st.offset + sec.drift_ppm * 1e-6 * max(now - st.offset_t, 0.0), now - msg.stamp)
        age = now - (msg.stamp + offset)
        if age > sec.max_age_s:
            raise self._reject("stale", f"{mtype.name} stamp is {age * 1e3:.1f} ms old; expected at most "
                                        f"{sec.max_age_s * 1e3:.0f} ms", source)
        if age < -sec.max_future_s:
            raise self._reject("stale", f"{mtype.name} stamp is {-age * 1e3:.1f} ms in the future; expected at most "
                                        f"{sec.max_future_s * 1e3:.0f} ms (clocks not shared?)", source)
        if not new_session:
            code, why = st.window.check(msg.seq)
            if code:
                raise self._reject("replayed", f"{mtype.name} {why}", source)
        else:
            if st is not None:
                self._retire(st.session)
            st = self._streams[mtype] = _Stream(msg.session, sec.window)
        st.window.accept(msg.seq)
        st.offset, st.offset_t = offset, now
        st.newest_stamp = max(st.newest_stamp, msg.stamp)

    def _retire(self, session: int) -> None:
        if session == 0:
            return
        self._retired[session] = None
        while len(self._retired) > self.MAX_RETIRED:
            self._retired.popitem(last=False)

    def counters(self) -> dict:
        """Rejections per kind plus ``accepted``."""
        return {"accepted": self.accepted, **self.counts}
