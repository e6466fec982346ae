"""``racing fit`` and ``racing learn`` subcommands (registered by racing/cli.py via :func:`register`)."""
from __future__ import annotations

import json
import sys

from racing.argtypes import nonnegative_float, nonnegative_int, positive_float, positive_int
from racing.config import ConfigError
from racing.logs import LogError
from racing.models.params import DEFAULT_CAR, load_params
from racing.sim.plant import make_plant, own_car
from racing.sysid import rollout as ro
from racing.sysid.base import check_scale, resolve_base
from racing.sysid.evaluate import evaluate
from racing.sysid.learn import learn
from racing.sysid.logs import load_logs
from racing.sysid.parametric import fit
from racing.sysid.residual import train_gated
from racing.track import DEFAULT_TRACK, load_track


def register(subparsers) -> None:
    """Add the ``fit`` and ``learn`` subcommands to an argparse ``subparsers`` object."""
    p = subparsers.add_parser("fit", help="fit vehicle parameters (and optionally a neural residual) to driving logs",
                              description="Fit the bicycle model to logs by multi-step prediction error; report what "
                                          "the logs identify, with block-bootstrap uncertainty, and evaluate against "
                                          "persistence and constant-velocity baselines.")
    p.add_argument("logs", nargs="+", help="logs: racing CSV, foreign CSV (with --columns), ROS 1 .bag, ROS 2 "
                                           ".db3/.mcap or bag folder")
    p.add_argument("--car", default=None, help="base vehicle YAML (name or path); default: the logs' '# car:' header")
    p.add_argument("--out", default=None, help="write the fitted parameters to this YAML (pedal logs: the pedal map "
                                               "to OUT.pedals.yaml beside it)")
    p.add_argument("--name", default=None, help="name of the fitted car (default: <base>_fit_<hash of the values>)")
    p.add_argument("--model", choices=("dynamic", "kinematic"), default="dynamic")
    p.add_argument("--params", default=None, help="comma-separated parameter names to fit (default: per model)")
    p.add_argument("--horizon", type=positive_float, default=0.5, help="multi-step prediction horizon [s]")
    p.add_argument("--stride", type=positive_int, default=5, help="a window starts every STRIDE samples")
    p.add_argument("--prior", type=nonnegative_float, default=1.0,
                   help="relative std of the weak prior around --car (0: none)")
    p.add_argument("--rate", type=positive_float, default=50.0, help="resampling rate for bags / non-uniform logs [Hz]")
    p.add_argument("--columns", default=None, metavar="MAP",
                   help="column map YAML (or a shipped name, e.g. av21) for foreign CSV logs")
    p.add_argument("--lever-arm", default=None, metavar="DX,DY",
                   help="velocity reference point relative to the CoG [m] (body frame); moves velocities to the CoG; "
                        "'auto': fit its x (ref_x) with the parameters")
    p.add_argument("--weights", default=None, help="channel weights, e.g. vx=1,vy=1,yaw_rate=2,steer=0")
    p.add_argument("--min-speed", type=nonnegative_float, default=1.0, help="windows start only at v_x >= this [m/s]")
    p.add_argument("--fit-fraction", type=positive_float, default=None, metavar="F",
                   help="fit on the first F of the logs in time, evaluate on the rest (a time-block hold-out)")
    p.add_argument("--actuator", choices=("auto", "lag", "lag+delay"), default="auto",
                   help="the steering actuator's structure: a first-order servo (lag), the same after a fitted dead "
                        "time (lag+delay), or auto: the one that predicts held-out windows better (the report says "
                        "which)")
    p.add_argument("--init", choices=("causal", "raw", "centred"), default="causal",
                   help="evaluation initial states (causal: no future samples; centred flatters)")
    p.add_argument("--boot", type=nonnegative_int, default=200, help="block-bootstrap replicates for the uncertainty")
    p.add_argument("--odom-topic", default="/odom")
    p.add_argument("--drive-topic", default="/drive")
    p.add_argument("--imu-topic", default=None)
    p.add_argument("--twist-frame", choices=("body", "world", "pose"), default="body")
    p.add_argument("--residual", default=None, metavar="WEIGHTS.npz", help="also train the neural residual, save here "
                                                                            "(only when it lowers validation error)")
    p.add_argument("--force-residual", action="store_true", help="keep the residual even when it does not help")
    p.add_argument("--epochs", type=positive_int, default=40, help="residual training epochs")
    p.add_argument("--hidden", type=positive_int, default=32, help="residual MLP width")
    p.add_argument("--eval", nargs="*", default=None, metavar="LOG", help="held-out logs for the RMSE table")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="logged vs base vs fitted signals with an error panel (held-out logs if given)")
    p.add_argument("--plot-window", default=None, metavar="T0:T1", type=_window,
                   help="time window of the plot [s] (default: the whole log)")
    p.add_argument("--json", action="store_true", help="print the fitted values and metrics as JSON")
    p.set_defaults(func=run_fit)

    q = subparsers.add_parser("learn", help="iterative loop in simulation: race, log, fit, race again",
                              description="Start from wrong parameters, race, fit, repeat; report lap times.")
    q.add_argument("--track", default=None, help="track name or path (default: the default track)")
    q.add_argument("--allow-bad-geometry", action="store_true",
                   help="use a track whose geometry check fails (e.g. distinct parts overlapping), as racing race")
    q.add_argument("--car", default=None,
                   help="the plant's true parameters (name or YAML; default f1tenth); with a foreign plant that is "
                        "its own car (commonroad:mb) none: --start, or the plant's data-sheet car perturbed")
    q.add_argument("--start", default=None, help="controller's start parameters (YAML); default: --car perturbed")
    q.add_argument("--perturb", type=nonnegative_float, default=0.25,
                   help="relative error f of the default start parameters: a cautious car model, grip "
                        "(D_f, D_r, mu) f low, shape and inertia mixed (B_f -0.8f, C_f +1.2f, B_r +0.8f, "
                        "C_r -1.2f, I_z +f; 20-30%% off at f = 0.25)")
    q.add_argument("--controller", default="mppi")
    q.add_argument("--plant", default="dynamic", help="the simulated car (as racing race --plant)")
    q.add_argument("--excite", type=nonnegative_float, default=0.0, metavar="SECONDS",
                   help="first drive the excitation programme this long on the plant and fit to it, so that "
                        "iteration 0 races a fitted car (0 = off)")
    q.add_argument("--iterations", type=positive_int, default=3, help="fit-and-race iterations (>= 1)")
    q.add_argument("--laps", type=positive_int, default=2, help="laps per race (>= 1)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--plot", default=None, metavar="PNG")
    q.add_argument("--out", default=None, help="write the final fitted parameters to this YAML")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=run_learn)


def _window(text: str):
    import argparse

    try:
        t0, t1 = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected T0:T1 in seconds, got {text!r}") from None
    if not t1 > t0:
        raise argparse.ArgumentTypeError(f"expected T0:T1 with T1 > T0, got {text!r}")
    return t0, t1


def cautious_start(true, f: float = 0.25):
    """Default start parameters of ``racing learn``: a cautious model of the car ``true``.

    The grip (peak friction D_f, D_r and mu) is ``f`` too low, so the first model under-promises
    and the controller races slower than the car could (a realistic conservative start); the
    tyre shape factors and the yaw inertia are ``0.8 f`` to ``1.2 f`` off in mixed directions
    (20-30% at f = 0.25).
    """
    return true.replace(name=f"{true.name}_perturbed", inertia_z=true.inertia_z * (1 + f),
                        B_f=true.B_f * (1 - 0.8 * f), C_f=true.C_f * (1 + 1.2 * f), D_f=true.D_f * (1 - f),
                        B_r=true.B_r * (1 + 0.8 * f), C_r=true.C_r * (1 - 1.2 * f), D_r=true.D_r * (1 - f),
                        mu=true.mu * (1 - f))


def _err(msg: str, command: str = "fit") -> int:
    print(f"racing {command}: error: {msg}", file=sys.stderr)
    return 2


def _json_safe(v):
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def _lever_arm(text: str | None) -> tuple[tuple | None, bool]:
    """(reference point (dx, dy) [m] or None, whether to fit ref_x) of ``--lever-arm`` (``DX,DY`` or ``auto``)."""
    lever = None
    fit_lever = text == "auto"
    if text and not fit_lever:
        try:
            lever = tuple(float(v) for v in text.split(","))
        except ValueError:
            lever = ()
        if len(lever) != 2:
            raise ValueError(f"--lever-arm {text!r}: expected DX,DY in m")
    return lever, fit_lever


def _fit_data(args, logs: list, opts: dict):
    """(held-out logs of ``--eval`` or None, the fit data, the held-out time block of ``--fit-fraction`` or None)
    (:class:`racing.sysid.rollout.Data`; the time block's initial states as ``--init``)."""
    held = load_logs(args.eval, rate_hz=args.rate, **opts) if args.eval else None
    data = ro.prepare(logs, min_speed=args.min_speed)
    val_data = None
    if args.fit_fraction is not None:
        if not 0.0 < args.fit_fraction < 1.0:
            raise ValueError(f"--fit-fraction must be in (0, 1), got {args.fit_fraction}")
        data, _ = data.split(args.fit_fraction)
        _, val_data = ro.prepare(logs, init=args.init, min_speed=args.min_speed).split(args.fit_fraction)
    return held, data, val_data


def _fit_logs(args):
    """Load the logs and the base car, fit -> (base, origin, FitResult, logs, held-out logs, fit data, held-out time
    block); with a fitted reference point the logs are reloaded moved to it. Raises LogError, ConfigError,
    ValueError for bad input."""
    lever, fit_lever = _lever_arm(args.lever_arm)
    opts = dict(odom_topic=args.odom_topic, drive_topic=args.drive_topic, imu_topic=args.imu_topic,
                twist_frame=args.twist_frame, columns=args.columns, reference_point=lever)
    logs = load_logs(args.logs, rate_hz=args.rate, **opts)
    base, origin = resolve_base(args.car, logs)
    check_scale(logs, base, origin)
    names = [n.strip() for n in args.params.split(",")] if args.params else None
    held, data, val_data = _fit_data(args, logs, opts)
    res = fit(data, base, model=args.model, names=names, horizon_s=args.horizon, stride=args.stride,
              prior_rel=args.prior or None, weights=args.weights, name=args.name, n_boot=args.boot,
              lever_arm=fit_lever, actuator=args.actuator)
    if res.reference_x is not None:  # evaluate on the logs moved to the fitted reference point
        opts["reference_point"] = (res.reference_x, 0.0)
        logs = load_logs(args.logs, rate_hz=args.rate, **opts)
        held, data, val_data = _fit_data(args, logs, opts)
    return base, origin, res, logs, held, data, val_data


def _save_fit(args, res, base, origin: str, out: dict) -> None:
    """Write the fitted car to ``--out`` (and a pedal log's map to OUT.pedals.yaml), noting the paths in ``out``."""
    from pathlib import Path

    note = "" if res.grip_margin is not None else \
        "\ngrip_margin not computed (--boot 0): the fitted grip is used in full"
    res.params.to_yaml(args.out, header=f"fitted by racing fit from {', '.join(map(str, args.logs))}\n"
                                        f"base: {base.name} ({origin}){note}")
    out["out"] = args.out
    if res.pedal_map is not None:
        ped = Path(args.out).with_suffix(".pedals.yaml")
        res.pedal_map.to_yaml(ped, header=f"pedal map of {res.params.name} (racing fit)")
        out["pedal_map_out"] = str(ped)


def _train_residual(args, data, res, out: dict, warnings: list):
    """Train the gated neural residual (``--residual``) on the fit data; its report goes to ``out``, a forced one's
    warning to ``warnings``. Returns the kept residual's weights, else None."""
    rw = None
    g = train_gated(data, res.params, pedal_theta=res.pedal_theta, force=args.force_residual,
                    hidden=args.hidden, epochs=args.epochs)
    out["residual"] = g.to_dict()
    if g.kept:
        rw = g.weights
        out["residual"]["path"] = str(rw.save(args.residual))
    if g.forced:
        warnings.append(f"warning: residual {g.reason}")
    out["residual_validation_table"] = g.validation.table()
    return rw


def _evaluate_fit(args, res, base, rw, logs, held, val_data, out: dict):
    """Prediction errors of the fitted car against persistence, constant velocity and the base car on the held-out
    logs, else the held-out time block, else the fit data (``out["evaluation"]``); None when the logs have no
    window to evaluate (the LogError is reported in ``out``)."""
    ev = None
    try:
        src = held if held else (val_data if val_data is not None else None)
        which = "held-out logs" if held else ("held-out time block" if val_data is not None else "fit data")
        if src is None:
            src = ro.prepare(logs, init=args.init, min_speed=args.min_speed)
        ev = evaluate(src, res.params, rw, base_params=base, pedal_theta=res.pedal_theta, init=args.init,
                      min_speed=args.min_speed)
        out["evaluation"] = {"data": which, **ev.to_dict(), "worse": ev.verdict()}
    except LogError as exc:
        out["evaluation"] = {"error": str(exc)}
    return ev


def _print_fit(base, origin: str, res, out: dict, ev, rw) -> None:
    """The text report of ``racing fit`` on stdout."""
    print(f"base car: {base.name} ({origin})")
    print(res.report())
    if "residual" in out:
        print(f"\nResidual: {out['residual']['reason']} (validation block):")
        print(out["residual_validation_table"])
    if ev is not None:
        print(f"\nPrediction errors ({out['evaluation']['data']}):")
        print(ev.table())
        worse = out["evaluation"]["worse"]
        if worse and out["evaluation"]["data"] != "fit data":
            print(f"\nWARNING: on the {out['evaluation']['data']} the fitted car does not carry over:")
            for line in worse:
                print(f"  {line}")
    for k in ("out", "pedal_map_out", "plot"):
        if k in out:
            print(f"{k}: {out[k]}")
    if rw is not None:
        print(f"residual: {out['residual']['path']}")


def run_fit(args) -> int:
    """``racing fit``: fit the logs, save and evaluate the fitted car, print the report (or ``--json``)."""
    import numpy as np

    try:
        base, origin, res, logs, held, data, val_data = _fit_logs(args)
    except (LogError, ConfigError, ValueError) as exc:
        return _err(str(exc))
    out = {"base": {"car": base.name, "from": origin}, "fit": res.to_dict()}
    if args.out:
        _save_fit(args, res, base, origin, out)
    rw = None
    warnings = []
    if args.residual:
        if args.model != "dynamic":
            return _err("--residual needs --model dynamic")
        rw = _train_residual(args, data, res, out, warnings)
    ev = _evaluate_fit(args, res, base, rw, logs, held, val_data, out) if args.model == "dynamic" else None
    if args.plot and ev is not None:
        from racing.plot.sysid import plot_predictions

        try:
            plot_predictions(ev, args.plot, window=args.plot_window)
        except ValueError as exc:
            return _err(f"--plot-window: {exc}")
        out["plot"] = args.plot
    for w in warnings:
        print(w, file=sys.stderr)
    if args.json:
        print(json.dumps(_json_safe(out), indent=1, default=lambda o: float(o) if np.isscalar(o) else str(o)))
    else:
        _print_fit(base, origin, res, out, ev, rw)
    return 0


def run_learn(args) -> int:
    try:
        track = load_track(args.track or DEFAULT_TRACK, check_geometry=not args.allow_bad_geometry)
        car = load_params(args.car or DEFAULT_CAR)
        own = own_car(make_plant(args.plant, car), car)  # CommonRoad: no truth in the project's terms
        if own is not None and args.car:
            return _err(f"--car {args.car}: the plant {args.plant} is its own car; give the controller's start "
                        f"parameters with --start (default: the plant's data-sheet car, perturbed)", "learn")
        true = car if own is None else None
        start = load_params(args.start) if args.start else cautious_start(own or car, args.perturb)
    except (ConfigError, ValueError, ImportError) as exc:
        return _err(str(exc), "learn")

    def progress(row):
        if not args.json:
            print(f"iteration {row.iteration}: best lap {row.best_lap_s}, off-track {row.off_track}, {row.status}",
                  flush=True)

    res = learn(track, true, start, iterations=args.iterations, controller=args.controller,
                plant=args.plant, laps=args.laps, seed=args.seed, progress=progress, excite_s=args.excite)
    if args.out:
        res.final_params.to_yaml(args.out, header="fitted by racing learn")
    if args.plot:
        from racing.plot.sysid import plot_learn

        plot_learn(res, args.plot)
    if args.json:
        print(json.dumps(res.to_dict(), indent=1, default=float))
    else:
        print(res.table())
        imp = res.improvement()
        print(f"best-lap improvement: {imp * 100:.2f}%" if imp is not None else "best-lap improvement: n/a")
    return 0


def main(argv=None) -> int:  # stand-alone use: python -m racing.sysid.cli fit ...
    import argparse

    ap = argparse.ArgumentParser(prog="racing")
    register(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
