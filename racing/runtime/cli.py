"""``racing drive``: run a controller on a vehicle (or its simulated twin) in real time.

    racing drive --vehicle sim --controller pure_pursuit --duration 20
    racing drive --vehicle udp://127.0.0.1:5600 --listen-port 5601 --laps 3 --log runs/drive/car.csv

Prints a summary (or one JSON object with ``--json``) and writes the driving log (racing.logs
format, the resolved configuration in its header) plus ``<log>.summary.json`` beside it.
Exit status: 0 completed or interrupted, 1 watchdog trip, 2 bad arguments.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path

DEFAULT_DRIVE_CONTROLLER = "pure_pursuit"


def register(subparsers) -> None:
    from racing.models.params import DEFAULT_CAR
    from racing.track import DEFAULT_TRACK

    p = subparsers.add_parser("drive", help="run a controller on a vehicle over UDP (fixed rate, watchdog)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--track", default=DEFAULT_TRACK, help=f"track name or path (default {DEFAULT_TRACK})")
    p.add_argument("--car", default=DEFAULT_CAR, help=f"car parameters: name or YAML path (default {DEFAULT_CAR})")
    p.add_argument("--controller", default=DEFAULT_DRIVE_CONTROLLER,
                   help=f"controller name (default {DEFAULT_DRIVE_CONTROLLER}, the baseline)")
    p.add_argument("--controller-config", default=None, help="YAML with the controller's settings")
    p.add_argument("--model-params", default=None, help="the controller's model parameters (default: the car's)")
    p.add_argument("--vehicle", default="sim",
                   help="'sim' (simulated twin on loopback, started here) or udp://HOST:PORT (default sim)")
    p.add_argument("--listen-port", type=int, default=0,
                   help="local UDP port for STATE (default 0 = any free port; the vehicle replies to it)")
    p.add_argument("--listen-host", default="127.0.0.1", help="local address to bind (default 127.0.0.1)")
    p.add_argument("--rate", type=float, default=50.0, help="control rate [Hz] (default 50)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--laps", type=int, default=None, help="stop after this many laps")
    p.add_argument("--log", default=None,
                   help="driving log CSV (default runs/drive/<track>_<car>_<controller>_<time>.csv)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    w = p.add_argument_group("watchdog")
    w.add_argument("--state-timeout", type=float, default=None, help="no fresh state for this long trips [s] "
                                                                     "(default 3 periods + 0.04 s)")
    w.add_argument("--connect-timeout", type=float, default=5.0, help="first state within this time [s] (default 5)")
    w.add_argument("--max-misses", type=int, default=5, help="consecutive deadline misses that trip (default 5)")
    w.add_argument("--off-track-margin", type=float, default=None,
                   help="trip when the car is this far beyond a boundary [m] (default: the car's width)")
    w.add_argument("--no-off-track-check", action="store_true", help="do not trip on leaving the track")
    w.add_argument("--hang-timeout", type=float, default=0.5, help="supervisor: no tick for this long sends STOP "
                                                                  "[s] (0 = off; default 0.5)")
    s = p.add_argument_group("simulated vehicle (--vehicle sim)")
    s.add_argument("--sim-mode", choices=("process", "thread"), default="process",
                   help="run the twin in a child process (default; own interpreter) or a thread")
    s.add_argument("--sim-state-hz", type=float, default=100.0, help="STATE rate of the twin [Hz] (default 100)")
    p.set_defaults(func=run_drive)


def _loop_config(args, params):
    from racing.runtime.loop import LoopConfig
    from racing.runtime.watchdog import WatchdogConfig

    if args.rate <= 0 or args.rate > 1000:
        raise ValueError(f"--rate {args.rate}: expected 0 < rate <= 1000 Hz")
    if args.duration is not None and args.duration <= 0:
        raise ValueError(f"--duration {args.duration}: expected a positive number of seconds")
    if args.laps is not None and args.laps < 1:
        raise ValueError(f"--laps {args.laps}: expected at least 1")
    if args.max_misses < 1:
        raise ValueError(f"--max-misses {args.max_misses}: expected at least 1")
    for name in ("state_timeout", "connect_timeout"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            raise ValueError(f"--{name.replace('_', '-')} {v}: expected a positive number of seconds")
    if args.off_track_margin is not None and args.off_track_margin < 0:
        raise ValueError(f"--off-track-margin {args.off_track_margin}: expected >= 0 m")
    margin = None if args.no_off_track_check else (
        args.off_track_margin if args.off_track_margin is not None else params.width)
    wd = WatchdogConfig(state_timeout_s=args.state_timeout, connect_timeout_s=args.connect_timeout,
                        max_consecutive_misses=args.max_misses, off_track_margin_m=margin,
                        hang_timeout_s=args.hang_timeout if args.hang_timeout and args.hang_timeout > 0 else None)
    return LoopConfig(rate_hz=args.rate, duration_s=args.duration, laps=args.laps, watchdog=wd)


def _fmt_ms(c: dict) -> str:
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    return f"{f(c['p50'])} / {f(c['p99'])} / {f(c['max'])}"


def drive_table(summary: dict) -> str:
    """Human-readable summary of a drive."""
    lines = [f"drive {summary['track']}  car {summary['car']}  controller {summary['controller']}  "
             f"vehicle {summary['vehicle']}  rate {summary['rate_hz']:g} Hz"]
    pk = summary["packets"]
    wd = summary["watchdog"]
    rows = [("duration [s]", f"{summary['duration_s']:.2f}"),
            ("ticks (skipped)", f"{summary['ticks']} ({summary['skipped_ticks']})"),
            ("deadline misses", str(summary["deadline_misses"])),
            ("compute p50 / p99 / max [ms]", _fmt_ms(summary["compute_ms"])),
            ("tick p50 / p99 / max [ms]", _fmt_ms(summary["tick_ms"])),
            ("packets rx / dropped / stale", f"{pk['rx']} / {summary['packets_dropped']} / {pk['stale']}")]
    sim = summary.get("vehicle_sim")
    if sim:
        rows.append(("twin: mode / stop / standstill [s]",
                     f"{sim['mode']} / {sim['stop_reason']} / "
                     f"{'-' if sim['standstill_t'] is None else round(sim['standstill_t'] - sim['stop_t'], 3)}"))
    if summary["laps"] is not None:
        rows.append(("laps", ", ".join(f"{x:.3f} s" for x in summary["laps"]) or "0"))
        rows.append(("distance [m]", f"{summary['progress_m']:.1f}"))
    rows.append(("watchdog", "ok" if wd is None else f"{wd['reason']}: {wd['detail']}"))
    rows.append(("status", summary["status"]))
    if summary.get("log"):
        rows.append(("log", f"{summary['log']} ({summary['log_rows']} rows)"))
    w = max(len(k) for k, _ in rows)
    return "\n".join(lines + [f"{k:<{w}}  {v}" for k, v in rows])


def run_drive(args) -> int:
    from racing import config as cfg
    from racing.control import make_controller
    from racing.models.params import load_params
    from racing.runtime.loop import RuntimeLoop, run_with_signals
    from racing.runtime.vehicle import UdpVehicle, parse_udp_url
    from racing.runtime.vehicle_sim import SimTwinConfig, UdpSimTwin
    from racing.sim.simulator import initial_state
    from racing.track import load_track

    track = load_track(args.track)
    params = load_params(args.car)
    model_params = load_params(args.model_params) if args.model_params else params
    loop_conf = _loop_config(args, params)
    if not 0 <= args.listen_port < 65536:
        raise ValueError(f"--listen-port {args.listen_port}: expected 0..65535")
    if args.vehicle != "sim":
        host, port = parse_udp_url(args.vehicle)
    controller = make_controller(args.controller, track, model_params, args.controller_config)

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_path = Path(args.log) if args.log else Path("runs") / "drive" / (
        f"{track.name}_{params.name}_{args.controller}_{stamp}.csv")
    meta = {
        "track": {"name": track.name, "source": str(track.source), "length_m": track.length},
        "car": cfg.to_dict(params),
        "model_car": cfg.to_dict(model_params),
        "controller": {"name": args.controller, "config": cfg.to_dict(controller.config),
                       "config_file": args.controller_config},
    }
    twin = None
    sim_report = None
    result = None
    if args.vehicle == "sim":
        twin_conf = SimTwinConfig(state_hz=args.sim_state_hz)
        if args.sim_state_hz <= 0:
            raise ValueError(f"--sim-state-hz {args.sim_state_hz}: expected a positive rate")
        # no lifetime limit: the twin ends with this process (stop(), parent-death check, daemon)
        twin = UdpSimTwin(params, initial_state(track), twin_conf, mode=args.sim_mode, max_lifetime_s=None)
        try:
            host, port = twin.start()
        except RuntimeError as exc:
            raise ValueError(str(exc)) from exc
        meta["vehicle_sim"] = {**cfg.to_dict(twin_conf), "mode": args.sim_mode, "car": params.name}
    try:
        vehicle = UdpVehicle(host, port, local_port=args.listen_port, bind_host=args.listen_host)
        vehicle.connect()
        try:
            vehicle_desc = "sim" if twin is not None else args.vehicle
            meta["vehicle_spec"] = vehicle_desc
            loop = RuntimeLoop(controller, vehicle, loop_conf, track=track, log_path=log_path, meta=meta)
            if not args.json:
                print(f"driving {vehicle.describe()} at {args.rate:g} Hz "
                      f"({'Ctrl-C' if args.duration is None and args.laps is None else 'Ctrl-C or limit'} to stop)",
                      file=sys.stderr)
            result = run_with_signals(loop)
        finally:
            vehicle.close()
    finally:
        if twin is not None:
            # keep the twin running until the car has braked to standstill (bounded), so that its
            # report shows how the STOP was carried out
            v = 0.0
            if result is not None and result.final_state is not None:
                v = abs(float(result.final_state[3]))
            time.sleep(min(2.0, 0.05 + 1.2 * v / params.decel_max))
            sim_report = twin.stop()
    summary = result.summary()
    summary.update(track=track.name, car=params.name, controller=args.controller, vehicle=vehicle_desc)
    if sim_report is not None:
        summary["vehicle_sim"] = sim_report
    side = log_path.with_suffix(".summary.json")
    summary["summary_file"] = str(side)
    side.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(summary))
    else:
        print(drive_table(summary))
    return 1 if summary["status"].startswith("watchdog:") else 0
