"""``racing drive``, ``racing vehicle-sim`` and ``racing keygen``: run a controller on a vehicle (or
its simulated twin) in real time over the authenticated UDP link.

    racing keygen car.key
    racing vehicle-sim --key car.key --port 5600                         # terminal 1: the car
    racing drive --vehicle udp://127.0.0.1:5600 --key car.key --laps 3   # terminal 2: the computer
    racing drive --vehicle sim --controller mppi --laps 2 --json         # twin started here, ephemeral key

``racing drive`` prints a summary (or one JSON object with ``--json``) and writes the driving log
(racing.logs format, the resolved configuration in its header) plus ``<log>.summary.json``.
Settings come from the defaults, then ``--config FILE`` (YAML, strict keys: ``DriveConfig``), then
the flags given. Exit status: 0 completed or interrupted, 1 watchdog trip, 2 bad arguments.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from racing import config as cfg
from racing import exit_codes
from racing.assembly import RaceSpec, build
from racing.sim.result import guide_text, samples_text
from racing.control.mppi.device import DEVICES
from racing.interfaces import drive_interface
from racing.models.params import DEFAULT_CAR
from racing.runtime import rt
from racing.runtime.auth import LinkSecurity, key_fingerprint, load_key, write_key
from racing.runtime.loop import LoopConfig, RuntimeLoop, run_with_signals
from racing.runtime.predict import StatePredictor
from racing.runtime.vehicle import UdpVehicle, check_address, is_loopback, parse_udp_url
from racing.runtime.vehicle_sim import SimTwinConfig, UdpSimTwin, add_arguments, run_vehicle_sim
from racing.sim.simulator import initial_state
from racing.track import DEFAULT_TRACK

DEFAULT_DRIVE_CONTROLLER = "pure_pursuit"


# --- configuration --------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkConfig:
    """The vehicle link of ``racing drive``."""

    vehicle: str = field(default="sim", metadata={"doc": "'sim' (twin started here) or udp://HOST:PORT"})
    listen_host: str = field(default="127.0.0.1", metadata={"doc": "local address for STATE"})
    listen_port: int = field(default=0, metadata={"min": 0, "max": 65535, "doc": "0 = any free port"})
    protocol: int = field(default=2, metadata={"min": 1, "max": 2, "doc": "2 = HMAC-SHA256, 1 = CRC only"})
    key_file: str | None = field(default=None, metadata={"doc": "shared key (protocol 2; mode 0600)"})
    allow_remote: bool = field(default=False, metadata={"doc": "permit non-loopback addresses"})
    max_age_s: float = field(default=0.25, metadata={"unit": "s", "gt": 0.0, "doc": "freshness window"})
    clock: str = field(default="shared", metadata={"choices": ("shared", "estimate")})


@dataclass(frozen=True)
class CpuConfig:
    """CPU settings of the control process (see :mod:`racing.runtime.rt`)."""

    threads: int = field(default=1, metadata={"min": 1, "doc": "numba threads of the controller"})
    pin: str | None = field(default=None, metadata={"doc": "CPU list for the control + numba threads"})
    rt_priority: int | None = field(default=None, metadata={"min": 1, "max": 98, "doc": "SCHED_FIFO priority"})
    lock_memory: bool = field(default=False, metadata={"doc": "mlockall"})


@dataclass(frozen=True)
class TwinSettings:
    """The simulated twin of ``--vehicle sim``."""

    mode: str = field(default="process", metadata={"choices": ("process", "thread")})
    state_hz: float | None = field(default=None, metadata={"unit": "Hz", "gt": 0.0,
                                                           "doc": "default max(100, 2 x rate)"})
    plant: str = field(default="dynamic", metadata={"doc": "plant name or module:factory"})
    delay_s: float = field(default=0.0, metadata={"unit": "s", "min": 0.0, "max": 1.0, "doc": "actuation delay"})
    pin: str | None = field(default=None, metadata={"doc": "CPU list for the twin process"})


@dataclass(frozen=True)
class DriveConfig:
    """Everything ``racing drive`` runs with (``--config FILE`` holds any part of it)."""

    track: str | None = None
    car: str | None = None
    controller: str = DEFAULT_DRIVE_CONTROLLER
    controller_config: str | None = None
    controller_set: tuple[str, ...] = field(default=(), metadata={
        "doc": "KEY=VALUE settings over the controller's (as racing race --set)"})
    model_params: str | None = None
    device: str = field(default="cpu", metadata={"choices": DEVICES,
                                                 "doc": "where MPPI's iteration runs: cpu, cuda (a GPU) or auto"})
    off_track_check: bool = field(default=True, metadata={"doc": "margin default: the car's width"})
    log: str | None = None
    loop: LoopConfig = LoopConfig()
    link: LinkConfig = LinkConfig()
    cpu: CpuConfig = CpuConfig()
    sim: TwinSettings = TwinSettings()


# flag (argparse dest) -> dotted key of DriveConfig
FLAG_KEYS = {
    "track": "track", "car": "car", "controller": "controller", "controller_config": "controller_config",
    "controller_set": "controller_set", "model_params": "model_params", "log": "log", "device": "device",
    "rate": "loop.rate_hz", "duration": "loop.duration_s", "laps": "loop.laps",
    "actuation_delay": "loop.actuation_delay_s", "on_state_timeout": "loop.on_state_timeout",
    "reconnect_timeout": "loop.reconnect_timeout_s",
    "state_timeout": "loop.watchdog.state_timeout_s", "connect_timeout": "loop.watchdog.connect_timeout_s",
    "max_misses": "loop.watchdog.max_consecutive_misses", "off_track_margin": "loop.watchdog.off_track_margin_m",
    "hang_timeout": "loop.watchdog.hang_timeout_s",
    "vehicle": "link.vehicle", "listen_host": "link.listen_host", "listen_port": "link.listen_port",
    "protocol": "link.protocol", "key": "link.key_file", "allow_remote": "link.allow_remote",
    "max_age": "link.max_age_s", "clock": "link.clock",
    "threads": "cpu.threads", "pin": "cpu.pin", "rt_priority": "cpu.rt_priority", "lock_memory": "cpu.lock_memory",
    "sim_mode": "sim.mode", "sim_state_hz": "sim.state_hz", "sim_plant": "sim.plant", "sim_delay": "sim.delay_s",
    "sim_pin": "sim.pin",
}


def _positive(name: str, v, allow_zero: bool = False):
    if v is None:
        return
    ok = math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        raise ValueError(f"--{name} {v}: expected a {'non-negative' if allow_zero else 'positive'} number")


def _check_flags(args) -> None:
    """Flag-level errors named as the user typed them."""
    if args.rate is not None and not (math.isfinite(args.rate) and 0 < args.rate <= 1000):
        raise ValueError(f"--rate {args.rate}: expected 0 < rate <= 1000 Hz")
    if args.duration is not None and not args.duration > 0:
        raise ValueError(f"--duration {args.duration}: expected a positive number of seconds")
    if args.laps is not None and args.laps < 1:
        raise ValueError(f"--laps {args.laps}: expected at least 1")
    if args.max_misses is not None and args.max_misses < 1:
        raise ValueError(f"--max-misses {args.max_misses}: expected at least 1")
    for name in ("state_timeout", "connect_timeout", "reconnect_timeout", "max_age", "sim_state_hz"):
        _positive(name.replace("_", "-"), getattr(args, name))
    for name in ("off_track_margin", "actuation_delay", "sim_delay"):
        _positive(name.replace("_", "-"), getattr(args, name), allow_zero=True)
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads {args.threads}: expected at least 1")
    if args.rt_priority is not None and not 1 <= args.rt_priority <= 98:
        raise ValueError(f"--rt-priority {args.rt_priority}: expected 1..98")
    if args.listen_port is not None and not 0 <= args.listen_port < 65536:
        raise ValueError(f"--listen-port {args.listen_port}: expected 0..65535")


def resolve_config(args) -> DriveConfig:
    """Defaults, then ``--config FILE``, then the flags given (strict keys, errors name file and key)."""
    _check_flags(args)
    base = cfg.load(DriveConfig, args.config) if args.config else DriveConfig()
    over: dict = {}
    for dest, key in FLAG_KEYS.items():
        v = getattr(args, dest, None)
        if v is None:
            continue
        if dest == "hang_timeout" and v <= 0:
            v = None  # 0 = off
        node = over
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = v
    if args.no_compensation:
        over.setdefault("loop", {})["compensate"] = False
    if args.no_off_track_check:
        over["off_track_check"] = False
    return cfg.replace_from(base, over, source="command line") if over else base


def register(subparsers) -> None:
    p = subparsers.add_parser("drive", help="run a controller on a vehicle over UDP (fixed rate, watchdog, HMAC)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_drive_arguments(p)
    p.set_defaults(func=run_drive)


    v = subparsers.add_parser("vehicle-sim", help="a simulated car (any plant) serving the vehicle link on UDP",
                              description=run_vehicle_sim.__doc__)
    add_arguments(v)
    v.set_defaults(func=run_vehicle_sim)

    k = subparsers.add_parser("keygen", help="write a new shared key file for the vehicle link (mode 0600)")
    k.add_argument("file", help="key file to create (never overwritten)")
    k.add_argument("--bytes", type=int, default=32, help="key length [bytes] (default 32)")
    k.set_defaults(func=run_keygen)


def run_keygen(args) -> int:
    path = write_key(args.file, args.bytes)
    print(f"wrote {path} (mode 0600, {args.bytes} bytes, {key_fingerprint(load_key(path))}); copy it to the car "
          f"over a secure channel")
    return 0


def add_drive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="YAML with any part of DriveConfig (strict keys); flags win")
    p.add_argument("--track", default=None, help=f"track name or path (default {DEFAULT_TRACK})")
    p.add_argument("--allow-bad-geometry", action="store_true",
                   help="use a track whose geometry check fails (e.g. distinct parts overlapping), as racing race")
    p.add_argument("--car", default=None, help=f"car parameters: name or YAML path (default {DEFAULT_CAR})")
    p.add_argument("--controller", default=None,
                   help=f"controller name (default {DEFAULT_DRIVE_CONTROLLER}, the baseline)")
    p.add_argument("--controller-config", default=None, help="YAML with the controller's settings")
    p.add_argument("--set", dest="controller_set", action="append", default=None, metavar="KEY=VALUE",
                   help="a setting over the controller's (repeatable, as racing race --set): "
                        "--set physics_precision=float32")
    p.add_argument("--model-params", default=None, help="the controller's model parameters (default: the car's)")
    p.add_argument("--rate", type=float, default=None, help="control rate [Hz] (default 50)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--laps", type=int, default=None, help="stop after this many laps")
    p.add_argument("--log", default=None,
                   help="driving log CSV (default runs/drive/<track>_<car>_<controller>_<time>.csv)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ln = p.add_argument_group("link")
    ln.add_argument("--vehicle", default=None,
                    help="'sim' (simulated twin on loopback, started here; the default) or udp://HOST:PORT")
    ln.add_argument("--listen-port", type=int, default=None,
                    help="local UDP port for STATE (default 0 = any free port; the vehicle replies to it)")
    ln.add_argument("--listen-host", default=None, help="local address to bind (default 127.0.0.1)")
    ln.add_argument("--key", default=None, help="shared HMAC key file (protocol v2; chmod 600; racing keygen). "
                                                "--vehicle sim without it uses a random key for this run")
    ln.add_argument("--protocol", type=int, choices=(1, 2), default=None,
                    help="2 (HMAC-SHA256, default) or 1 (unauthenticated CRC-32, for old vehicles)")
    ln.add_argument("--allow-remote", action="store_true", default=None,
                    help="permit a non-loopback vehicle or listen address")
    ln.add_argument("--max-age", type=float, default=None, help="freshness: reject stamps older than this [s] "
                                                                "(default 0.25)")
    ln.add_argument("--clock", choices=("shared", "estimate"), default=None,
                    help="stamps on a clock shared with the vehicle (default) or offset estimated per session")
    lc = p.add_argument_group("latency compensation")
    lc.add_argument("--actuation-delay", type=float, default=None,
                    help="time from sending a command to its effect on the car [s] (default 0)")
    lc.add_argument("--no-compensation", action="store_true",
                    help="act on the measured state (no prediction by state age + actuation delay)")
    cp = p.add_argument_group("CPU")
    cp.add_argument("--device", default=None, choices=DEVICES,
                    help="where MPPI's iteration runs: cpu (default), cuda (an NVIDIA GPU; exit 2 naming what is "
                         "missing without one) or auto (the GPU when one works)")
    cp.add_argument("--threads", type=int, default=None,
                    help="numba threads of the controller (default 1: does not collapse under load)")
    cp.add_argument("--pin", default=None, help="CPU list for the control and numba threads, e.g. 1 or 2-3")
    cp.add_argument("--rt-priority", type=int, default=None,
                    help="SCHED_FIFO priority 1..98 for the control thread where the OS permits (reported)")
    cp.add_argument("--lock-memory", action="store_true", default=None, help="mlockall (no page faults)")
    w = p.add_argument_group("watchdog")
    w.add_argument("--state-timeout", type=float, default=None, help="no fresh state for this long stops the car "
                                                                     "[s] (default 1.5 periods)")
    w.add_argument("--on-state-timeout", choices=("end", "wait"), default=None,
                   help="end the run (default) or send STOP and resume when the vehicle is back")
    w.add_argument("--reconnect-timeout", type=float, default=None,
                   help="wait mode: give up after this long without a vehicle [s] (default 30)")
    w.add_argument("--connect-timeout", type=float, default=None, help="first state within this time [s] "
                                                                       "(default 5)")
    w.add_argument("--max-misses", type=int, default=None, help="consecutive deadline misses that trip (default 5)")
    w.add_argument("--off-track-margin", type=float, default=None,
                   help="trip when the car is this far beyond a boundary [m] (default: the car's width)")
    w.add_argument("--no-off-track-check", action="store_true", help="do not trip on leaving the track")
    w.add_argument("--hang-timeout", type=float, default=None, help="supervisor: no tick for this long sends STOP "
                                                                    "[s] (0 = off; default 0.5)")
    s = p.add_argument_group("simulated vehicle (--vehicle sim)")
    s.add_argument("--sim-mode", choices=("process", "thread"), default=None,
                   help="run the twin in a child process (default; own interpreter) or a thread")
    s.add_argument("--sim-state-hz", type=float, default=None, help="STATE rate of the twin [Hz] "
                                                                    "(default max(100, 2 x rate))")
    s.add_argument("--sim-plant", default=None, help="the twin's plant: name or module:factory (default dynamic)")
    s.add_argument("--sim-delay", type=float, default=None, help="the twin's actuation delay [s] (default 0)")
    s.add_argument("--sim-pin", default=None, help="CPU list for the twin process")


# --- output ----------------------------------------------------------------------------------------
def _fmt_ms(c: dict) -> str:
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    return f"{f(c['p50'])} / {f(c['p99'])} / {f(c['max'])}"


def drive_table(summary: dict) -> str:
    """Human-readable summary of a drive."""
    lines = [f"drive {summary['track']}  car {summary['car']}  controller {summary['controller']}  "
             f"vehicle {summary['vehicle']}  rate {summary['rate_hz']:g} Hz  protocol v{summary['link']['protocol']}"]
    pk = summary["packets"]
    wd = summary["watchdog"]
    rejected = {k: pk[k] for k in ("foreign", "garbled", "unsigned", "forged", "replayed", "stale", "unexpected")
                if pk.get(k)}
    rows = [("duration [s]", f"{summary['duration_s']:.2f}"),
            ("ticks (skipped)", f"{summary['ticks']} ({summary['skipped_ticks']})"),
            ("deadline misses", str(summary["deadline_misses"])),
            ("compute p50 / p99 / max [ms]", _fmt_ms(summary["compute_ms"])),
            ("tick p50 / p99 / max [ms]", _fmt_ms(summary["tick_ms"])),
            ("period jitter p50 / p99 / max [ms]", _fmt_ms(summary["period_jitter_ms"])),
            ("state age p50 / p99 / max [ms]", _fmt_ms(summary["state_age_ms"])),
            ("compensation", ("on, actuation delay "
                              f"{summary['compensation']['actuation_delay_s']:g} s, predict p50 "
                              f"{summary['predict_ms']['p50']} ms") if summary["compensation"]["enabled"] else "off"),
            ("packets rx / dropped", f"{pk['rx']} / {summary['packets_dropped']}"
                                     + (f" ({', '.join(f'{k} {v}' for k, v in rejected.items())})" if rejected else ""))]
    cpu = summary.get("cpu") or {}
    rows.append(("cpu", f"threads {cpu.get('threads')}, pin {cpu.get('pin') or '-'}, real-time "
                        + ("-" if cpu.get("rt_priority") is None else
                           f"FIFO {cpu['rt_priority']} {'granted' if cpu.get('rt_granted') else 'REFUSED'}")))
    smp = summary.get("samples")
    if smp and smp.get("iterations"):
        rows.append(("samples", samples_text(smp)))
    gd = summary.get("guide")
    if gd and gd.get("weight_mean") is not None:
        rows.append(("guide", guide_text(gd)))
    dev = summary.get("device") or {}
    if dev:
        rows.append(("device", (f"cuda ({dev.get('gpu')})" if dev.get("device") == "cuda" else "cpu")
                     + (f"  ({dev['note']})" if dev.get("note") else "")))
    sim = summary.get("vehicle_sim")
    if sim:
        rows.append(("twin: mode / stop / standstill [s]",
                     f"{sim['mode']} / {sim['stop_reason']} / "
                     f"{'-' if sim['standstill_t'] is None else round(sim['standstill_t'] - sim['stop_t'], 3)}"))
    for loss in summary.get("link_losses") or []:
        rows.append(("link lost", f"t {loss['t']:.2f} s, STOP {loss['stop_after_last_state_ms']:.1f} ms after the "
                                  f"last state"))
    if summary["laps"] is not None:
        rows.append(("laps", ", ".join(f"{x:.3f} s" for x in summary["laps"]) or "0"))
        rows.append(("distance [m]", f"{summary['progress_m']:.1f}"))
        rows.append(("off-track", str(summary.get("off_track"))))
    rows.append(("watchdog", "ok" if wd is None else f"{wd['reason']}: {wd['detail']}"))
    rows.append(("status", summary["status"]))
    if summary.get("log"):
        rows.append(("log", f"{', '.join(summary.get('logs') or [summary['log']])} ({summary['log_rows']} rows)"))
    w = max(len(k) for k, _ in rows)
    return "\n".join(lines + [f"{k:<{w}}  {v}" for k, v in rows] + [f"note: {n}" for n in cpu.get("notes", [])])


# --- the command --------------------------------------------------------------------------------
def link_key(link, is_sim: bool, host: str | None):
    """The link's key (protocol v2: ``--key``'s file, or a key for this run only with the simulated twin, which is
    our own child), None for protocol v1 (with a warning on a remote link). Bad combinations are a ValueError."""
    import secrets


    if link.protocol == 2:
        if link.key_file:
            return load_key(link.key_file)
        if is_sim:
            return secrets.token_bytes(32)
        raise ValueError("protocol v2 (the default) needs --key FILE for a vehicle at "
                         f"{link.vehicle} (make one with racing keygen FILE), or --protocol 1 for the "
                         f"unauthenticated protocol")
    if link.key_file:
        raise ValueError("--key is for protocol v2; --protocol 1 is unauthenticated")
    if not is_sim and not check_loopback_quiet(host):
        print("racing drive: warning: protocol v1 on a remote link is unauthenticated: anyone on the network "
              "can send states", file=sys.stderr)
    return None


def drive_race(conf, allow_bad_geometry: bool = False):
    """``(race, loop_conf)``: the one race assembly's track, cars and controller (with its racing line; the plant is
    the vehicle) for ``racing drive``, and the loop settings with the watchdog's off-track margin resolved."""
    loop_conf = conf.loop
    rate = loop_conf.rate_hz
    race = build(RaceSpec(track=conf.track or DEFAULT_TRACK, car=conf.car, model_params=conf.model_params,
                          controller=conf.controller, controller_config=conf.controller_config,
                          controller_set=tuple(conf.controller_set), device=conf.device,
                          rate_hz=rate,
                          plant_hz=max(1000.0, rate), allow_bad_geometry=allow_bad_geometry))
    wd = loop_conf.watchdog
    if conf.off_track_check and wd.off_track_margin_m is None:
        wd = cfg.replace_from(wd, {"off_track_margin_m": race.car.width}, source="drive")
    elif not conf.off_track_check:
        wd = cfg.replace_from(wd, {"off_track_margin_m": None}, source="drive")
    return race, cfg.replace_from(loop_conf, {"watchdog": cfg.to_dict(wd)}, source="drive")


def start_twin(conf, race, key, sim_pin):
    """Start the simulated car (``--vehicle sim``): ``(twin, (host, port), meta)``."""
    link, sim, rate = conf.link, conf.sim, conf.loop.rate_hz
    state_hz = sim.state_hz if sim.state_hz is not None else max(100.0, 2.0 * rate)
    twin_conf = SimTwinConfig(state_hz=state_hz, plant=sim.plant, delay_s=sim.delay_s)
    # no lifetime limit: the twin ends with this process (stop(), parent-death check, daemon)
    twin = UdpSimTwin(race.car, initial_state(race.track), twin_conf, mode=sim.mode, max_lifetime_s=None,
                      security=LinkSecurity(key=key, max_age_s=link.max_age_s, clock=link.clock),
                      cpu={"pin": sim_pin} if sim_pin else None)
    try:
        address = twin.start()
    except RuntimeError as exc:
        raise ValueError(str(exc)) from exc
    return twin, address, {**cfg.to_dict(twin_conf), "mode": sim.mode, "car": race.car.name, "cpu": twin.cpu_report}


def run_drive(args) -> int:
    """``racing drive``: checks first (addresses, keys), then the race assembly, the twin, the CPU, the loop."""
    conf = resolve_config(args)
    link, cpu = conf.link, conf.cpu
    # addresses and keys first: cheap, and the errors that matter most on a car
    is_sim = link.vehicle == "sim"
    host, port = (None, None) if is_sim else parse_udp_url(link.vehicle)
    if not is_sim:
        check_address(host, "vehicle address", link.allow_remote)
    check_address(link.listen_host, "listen address", link.allow_remote)
    key = link_key(link, is_sim, host)
    security = LinkSecurity(key=key, max_age_s=link.max_age_s, clock=link.clock)
    pin = rt.parse_cpu_list(cpu.pin, "--pin") if cpu.pin is not None else None
    sim_pin = rt.parse_cpu_list(conf.sim.pin, "--sim-pin") if conf.sim.pin is not None else None
    race, loop_conf = drive_race(conf, getattr(args, "allow_bad_geometry", False))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_path = Path(conf.log) if conf.log else Path("runs") / "drive" / (
        f"{race.track.name}_{race.car.name}_{conf.controller}_{stamp}.csv")
    meta = {**{k: race.record[k] for k in ("spec", "track", "car", "model_car", "controller", "machine")},
            "link": {**cfg.to_dict(link), **security.describe()}}
    twin = None
    if is_sim:
        twin, (host, port), meta["vehicle_sim"] = start_twin(conf, race, key, sim_pin)
    # after the controller is built (its warm-up starts numba's pool; MPPI sets its own thread count) and
    # after a thread-mode twin started (threads inherit the pinning and the scheduling policy)
    try:
        cpu_report = rt.configure(threads=cpu.threads, pin=pin, rt_priority=cpu.rt_priority,
                                  lock_memory=cpu.lock_memory)
    except BaseException:
        if twin is not None:
            twin.stop()
        raise
    for note in cpu_report.notes:
        print(f"racing drive: {note}", file=sys.stderr)
    meta["cpu"] = cpu_report.as_dict()
    meta["vehicle_spec"] = "sim" if twin is not None else link.vehicle
    result, sim_report = drive_loop(args, conf, race, loop_conf, (host, port), security, twin, cpu_report, log_path,
                                    meta)
    summary = result.summary()
    summary.update(track=race.track.name, car=race.car.name, controller=conf.controller,
                   vehicle=meta["vehicle_spec"], link=security.describe(), cpu=cpu_report.as_dict(),
                   device={k: v for k, v in race.record["machine"].items() if k != "numba_threads"})
    return report_drive(args, summary, sim_report, log_path)


def drive_loop(args, conf, race, loop_conf, address, security, twin, cpu_report, log_path, meta):
    """Connect, run the fixed-rate loop until it stops, then stop the twin once the car stood still (bounded, so
    that its report shows how the STOP was carried out): ``(result, twin report or None)``."""
    link, cpu = conf.link, conf.cpu
    predictor = StatePredictor(race.model_params, loop_conf.actuation_delay_s) if loop_conf.compensate else None
    result = None
    try:
        vehicle = UdpVehicle(*address, local_port=link.listen_port, bind_host=link.listen_host, security=security,
                             allow_remote=link.allow_remote)
        vehicle.connect()
        try:
            loop = RuntimeLoop(race.controller, vehicle, loop_conf, track=race.track, log_path=log_path, meta=meta,
                               predictor=predictor,
                               supervisor_rt_priority=(cpu.rt_priority + 1) if cpu_report.rt_granted else None,
                               interface=drive_interface(race.car.drive_interface))
            if not args.json:
                limit = "Ctrl-C" if loop_conf.duration_s is None and loop_conf.laps is None else "Ctrl-C or limit"
                print(f"driving {vehicle.describe()} at {loop_conf.rate_hz:g} Hz ({limit} to stop)", file=sys.stderr)
            result = run_with_signals(loop)
        finally:
            vehicle.close()
            rt.restore_normal_scheduling()
    finally:
        sim_report = None
        if twin is not None:
            v = abs(float(result.final_state[3])) if result is not None and result.final_state is not None else 0.0
            time.sleep(min(2.0, 0.05 + conf.sim.delay_s + 1.2 * v / race.car.decel_max))
            sim_report = twin.stop()
    return result, sim_report


def report_drive(args, summary: dict, sim_report, log_path: Path) -> int:
    """The exit code (the convention of every subcommand, racing/exit_codes.py: a watchdog trip failed the run,
    deadline misses are incidents of a run that otherwise completed or was interrupted), the summary beside the log
    (``<log>.summary.json``), and the table or JSON on stdout."""
    summary["exit_code"] = (exit_codes.FAILED if summary["status"].startswith("watchdog:") else
                            exit_codes.INCIDENTS if summary.get("deadline_misses") else exit_codes.OK)
    if sim_report is not None:
        summary["vehicle_sim"] = sim_report
    side = log_path.with_suffix(".summary.json")
    summary["summary_file"] = str(side)
    side.parent.mkdir(parents=True, exist_ok=True)
    side.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(summary))
    else:
        print(drive_table(summary))
    return summary["exit_code"]


def check_loopback_quiet(host: str) -> bool:
    return is_loopback(host)
