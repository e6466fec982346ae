"""``racing bench``: time the MPPI iteration (numba) and, when installed, pytorch_mppi on the same problem; the
iLQR step.

Standard problem: kinematic bicycle (wheelbase 2.9 m, l_r 1.45 m; the gt_car's input limits),
dt = 0.05 s, cost ``(r - 50)^2 + (v - 15)^2`` per step (tracking a circle of radius 50 m at
15 m/s), for K in {256, 1024, 4096} x T in {30, 50}. Both implementations use the same
discrete model (:func:`racing.models.discrete.kinematic_step`: the numba kernel compiles its scalar form, the
torch peer runs the vectorised form with torch ops), the same cost (:data:`CIRCLE`, defined here and
assembled into the MPPI kernel like any cost), the same sigma/lambda/limits, float64, and ``--threads``
threads (default 2); the state advances with the first planned input
after every call. Full racing iteration: dynamic model + racing cost, K = 2048, T = 50, on the
default track with the f1tenth car (``controller.act``). iLQR: the warm-started step (``controller.act`` after
the first solve) with T = 50, the dynamic model and the smooth racing cost, 1 and 2 iterations per step, on
one thread (casadi derivatives compiled to C when a compiler exists; the row says which). Semi-parametric racing
iteration: the same with K = 1024 and a 2 x 32 residual network (untrained random weights: the time does not depend
on their values). The racing rows come twice: the lockstep CPU kernel (:mod:`racing.control.mppi.lockstep`, the
default) and the scalar one (each sample on its own), ``kernel`` in the JSON rows; the racing row a third time with
the lockstep kernel's model in float32 (``physics_precision``), the semi-parametric row a third time with its network
in float32 (``residual_precision`` in the JSON rows). Times are medians of
``--repeats`` calls after warm-up.

``--device cuda`` (an NVIDIA GPU, the ``cuda`` extra; exit 2 naming what is missing without one): the racing iteration
on the GPU (:mod:`racing.control.mppi.gpu`, ``controller.act`` end to end: state in, command out) for K in {1024,
4096, 16384, 65536} x T in {50, 100}, with and without the residual, each row naming the GPU. ``--device auto``: the
GPU rows when a GPU works, else the CPU rows and why.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from racing.argtypes import positive_int
from racing.control.base import Observation
from racing.control.ilqr import make_ilqr
from racing.control.mppi import MPPI, MPPIConfig, make_mppi
from racing.control.mppi.device import DEVICES, resolve_device
from racing.control.mppi.step import RolloutCost
from racing.models.discrete import kinematic_step
from racing.models.fastmath import scalar
from racing.models.ops import torch_ops
from racing.models.params import load_params
from racing.models.residual import ResidualWeights, feature_names
from racing.sim.simulator import initial_state
from racing.track import DEFAULT_TRACK, Track, load_track

STANDARD_GRID = [(256, 30), (256, 50), (1024, 30), (1024, 50), (4096, 30), (4096, 50)]
#: the GPU rows of ``--device cuda``: K x T
GPU_GRID = [(K, T) for T in (50, 100) for K in (1024, 4096, 16384, 65536)]
RADIUS, SPEED, DT = 50.0, 15.0, 0.05


# the circle cost: w_r (sqrt(x^2 + y^2) - R)^2 + w_v (v - v_ref)^2 per step; ca = (array([R, v_ref, w_r, w_v]),)
@scalar
def _circle_start(ca, i0, s0):
    return i0, i0, 0.0, s0


@scalar
def circle_stage(st, u0, u1, up0, up1, t, T, ca, cs):
    """Stage cost of the standard problem (scalars in the kernel, arrays in the numpy reference)."""
    q = ca[0]
    e = (st[0] * st[0] + st[1] * st[1]) ** 0.5 - q[0]  # ** 0.5: numpy arrays, CPU and CUDA scalars alike
    f = st[3] - q[1]
    return q[2] * e * e + q[3] * f * f, cs


@scalar
def _circle_terminal(ca, cs, s0):
    return 0.0


CIRCLE = RolloutCost("circle", _circle_start, circle_stage, _circle_terminal)


def circle_args(radius: float = RADIUS, speed: float = SPEED, w_r: float = 1.0, w_v: float = 1.0) -> tuple:
    return (np.array([radius, speed, w_r, w_v], dtype=np.float64),)


def standard_params():
    return load_params("gt_car").replace(name="bench_car", l_f=1.45, l_r=1.45)


def standard_x0() -> np.ndarray:
    return np.array([RADIUS, 0.0, math.pi / 2, SPEED, 0.0, 0.0, 0.0])


def _median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e3)


def bench_numba_standard(K: int, T: int, repeats: int, threads: int | None = None):
    """Median ms of one numba MPPI iteration on the standard problem; also returns the controller."""
    p = standard_params()

    conf = MPPIConfig(num_samples=K, horizon=T, dt=DT, model="kinematic", lambda_=1.0, alpha=0.0,
                      sigma_steer_rate=0.5, sigma_accel=2.0, smoothing_window=0, record_samples=0)
    ctrl = MPPI(None, p, conf, cost=(CIRCLE, circle_args()), threads=threads, warmup_state=standard_x0())
    x = standard_x0()
    pa = ctrl.p
    xk = np.zeros(5)

    def one():
        ctrl.solve(x)
        # advance the true state with the first input (kinematic layout -> dynamic layout)
        xk[:] = x[0], x[1], x[2], x[3], x[6]
        x[0], x[1], x[2], x[3], x[6] = kinematic_step(xk, ctrl.U[0], pa, DT)

    return _median_ms(one, repeats), ctrl


def bench_peer_standard(K: int, T: int, repeats: int, threads: int = 2):
    """Median ms of ``pytorch_mppi.MPPI.command`` on the same problem (None if not installed)."""
    try:
        import torch
        from pytorch_mppi import MPPI as TorchMPPI
    except ImportError:
        return None
    torch.set_num_threads(threads)
    p = standard_params()
    pa = p.to_array()
    ops = torch_ops()
    dtype = torch.float64

    def dynamics(s, u):
        # the project's discrete kinematic step (vectorised form, torch ops); state (x, y, psi, v, delta)
        s_n = kinematic_step(s, u, pa, DT, ops)
        return torch.cat([s_n[:, :4], torch.clamp(s_n[:, 4:5], -p.steer_max, p.steer_max)], dim=1)

    def running_cost(s, u):
        e = torch.sqrt(s[:, 0] ** 2 + s[:, 1] ** 2) - RADIUS
        f = s[:, 3] - SPEED
        return e * e + f * f

    sigma = torch.diag(torch.tensor([0.5 ** 2, 2.0 ** 2], dtype=dtype))
    mppi = TorchMPPI(dynamics, running_cost, 5, sigma, num_samples=K, horizon=T, lambda_=1.0,
                     u_min=torch.tensor([-p.steer_rate_max, -p.decel_max], dtype=dtype),
                     u_max=torch.tensor([p.steer_rate_max, p.accel_max], dtype=dtype),
                     U_init=torch.zeros(T, 2, dtype=dtype))
    state = torch.tensor([RADIUS, 0.0, math.pi / 2, SPEED, 0.0], dtype=dtype)

    def one():
        nonlocal state
        with torch.no_grad():
            a = mppi.command(state)
            state = dynamics(state[None], a[None])[0]

    return _median_ms(one, repeats)


def _bench_track():
    """The default track (or a 1:10 oval when it is not shipped) and its name."""
    try:
        return load_track(DEFAULT_TRACK), DEFAULT_TRACK
    except Exception:  # the default track is not shipped: a 1:10 oval stands in
        th = np.linspace(0, 2 * np.pi, 400, endpoint=False)
        xy = np.column_stack([12 * np.cos(th), 6 * np.sin(th)])
        return Track.from_centerline(xy, 1.0, 1.0, name="oval"), "oval"


def _time_act(ctrl, track, repeats: int) -> float:
    x = initial_state(track, 3.0)
    t = [0.0]

    def one():
        ctrl.act(Observation(t[0], x), t[0])
        t[0] += 0.02

    return _median_ms(one, repeats)


def bench_residual(hidden: int = 32, layers: int = 2, seed: int = 0) -> ResidualWeights:
    """A residual network of ``layers`` x ``hidden`` tanh units with two filter states and product features (the
    shape ``racing fit --residual`` trains) and untrained random weights: what a rollout step costs with one."""
    rng = np.random.default_rng(seed)
    n_in = len(feature_names(2, True))
    sizes = [n_in] + [hidden] * layers + [3]
    Ws = [rng.normal(0, 1.0 / math.sqrt(a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(0, 0.1, b) for b in sizes[1:]]
    return ResidualWeights(Ws, bs, np.zeros(n_in), np.ones(n_in), np.zeros(3), np.full(3, 0.1), dt=0.02,
                           taus=np.array([0.05, 0.2]), products=True)


def bench_racing(repeats: int, K: int = 2048, T: int = 50, threads: int | None = None, device="cpu",
                 residual: ResidualWeights | None = None, kernel: str = "lockstep", precision: str = "float64",
                 physics: str = "float64"):
    """Median ms of ``MPPI.act`` with the dynamic model (in ``physics`` precision; and ``residual``, its network in
    ``precision``) and racing cost on the default track (f1tenth car), on ``device``, with the CPU ``kernel``
    (``lockstep`` or ``scalar``)."""
    track, name = _bench_track()
    ctrl = make_mppi(track, load_params("f1tenth"), threads=threads, num_samples=K, horizon=T, model="dynamic",
                     device=device, residual=residual, kernel=kernel, residual_precision=precision,
                     physics_precision=physics)
    return _time_act(ctrl, track, repeats), name


def bench_ilqr(repeats: int, iterations: int, T: int = 50):
    """Median ms of a warm-started ``ILQRController.act`` (dynamic model, racing cost, ``iterations`` per step)
    on the default track (f1tenth car); also returns the track name and the derivatives' backend."""
    track, name = _bench_track()
    ctrl = make_ilqr(track, load_params("f1tenth"), horizon=T, model="dynamic", iterations=iterations)
    return _time_act(ctrl, track, repeats), name, ctrl.derivatives_backend


def run_gpu(args, device, repeats: int) -> int:
    """The ``--device cuda`` rows (:data:`GPU_GRID`, with and without the 2 x 32 residual)."""
    rows = []
    res = bench_residual()
    if not args.json:
        print(f"device {device.name}, medians of {repeats} calls (controller.act end to end)")
    for K, T in GPU_GRID[:1] if args.quick else GPU_GRID:
        for residual in (None, res):
            ms, track_name = bench_racing(repeats, K, T, device=device, residual=residual)
            tag = "racing+residual2x32" if residual is not None else "racing"
            rows.append({"backend": "cuda", "gpu": device.name, "problem": f"{tag}:{track_name}", "K": K, "T": T,
                         "ms_median": round(ms, 4), "ns_per_sample_step": round(ms * 1e6 / (K * T), 3)})
            if not args.json:
                print(f"{tag:<20} K={K:6d} T={T:3d}  cuda {ms:8.3f} ms   ({device.name})")
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


def run(args) -> int:
    repeats = args.repeats if args.repeats is not None else (20 if args.quick else 50)
    device = resolve_device(args.device)
    if device.kind == "cuda":
        return run_gpu(args, device, repeats)
    if device.note and not args.json:
        print(device.note)
    grid = [(1024, 50)] if args.quick else STANDARD_GRID
    import os

    load = os.getloadavg()
    if not args.json:
        print(f"threads {args.threads}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min), "
              f"medians of {repeats} calls")
    rows = []
    peer_ok = not args.no_peer
    for K, T in grid:
        ms, _ = bench_numba_standard(K, T, repeats, threads=args.threads)
        row = {"backend": "numba", "problem": "standard", "K": K, "T": T, "ms_median": round(ms, 4),
               "threads": args.threads, "load_avg_1min": round(load[0], 2)}
        if peer_ok:
            pm = bench_peer_standard(K, T, repeats, threads=args.threads)
            if pm is None:
                peer_ok = False
                if not args.json:
                    print("pytorch_mppi not installed (pip install 'racing[bench]'): peer skipped")
            else:
                row["peer_ms_median"] = round(pm, 4)
                row["speedup"] = round(pm / ms, 2)
        rows.append(row)
        if not args.json:
            extra = f"   pytorch_mppi {row['peer_ms_median']:8.3f} ms   speedup {row['speedup']:5.1f}x" \
                if "peer_ms_median" in row else ""
            print(f"standard  K={K:5d} T={T:3d}  numba {ms:8.3f} ms{extra}")
    for K, residual, tag, what in ((2048, None, "racing", "dynamic model + racing cost"),
                                   (1024, bench_residual(), "racing+residual2x32", "the same + a 2 x 32 residual")):
        # (kernel, the network's precision, the physics' precision)
        variants = [("scalar", "float64", "float64"), ("lockstep", "float64", "float64")] + (
            [("lockstep", "float32", "float64")] if residual else [("lockstep", "float64", "float32")])
        for kernel, precision, physics in variants:
            ms, track_name = bench_racing(repeats, K, 50, threads=args.threads, residual=residual, kernel=kernel,
                                          precision=precision, physics=physics)
            rows.append({"backend": "numba", "problem": f"{tag}:{track_name}", "K": K, "T": 50,
                         "ms_median": round(ms, 4), "ns_per_sample_step": round(ms * 1e6 / (K * 50), 1),
                         "threads": args.threads, "kernel": kernel, "physics_precision": physics,
                         "load_avg_1min": round(load[0], 2)})
            what_runs = f"model in {physics}"
            if residual is not None:
                rows[-1]["residual_precision"] = precision
                what_runs = f"network in {precision}"
            if not args.json:
                print(f"racing    K= {K} T= 50  numba {ms:8.3f} ms   ({what}, {track_name}, f1tenth, {kernel} kernel, "
                      f"{what_runs}; {rows[-1]['ns_per_sample_step']:g} ns per sample-step on {args.threads} threads)")
    for it in (1, 2):
        ms, track_name, backend = bench_ilqr(repeats, it)
        rows.append({"backend": "ilqr", "problem": f"racing:{track_name}", "T": 50, "iterations": it,
                     "ms_median": round(ms, 4), "derivatives": backend, "threads": 1,
                     "load_avg_1min": round(load[0], 2)})
        if not args.json:
            print(f"ilqr      T= 50 {it} iteration{'s' if it > 1 else ' '} {ms:8.3f} ms   (warm-started, dynamic model + "
                  f"smooth racing cost, {track_name}, f1tenth; derivatives: {backend})")
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    ap = subparsers.add_parser("bench", help="time the MPPI iteration (and pytorch_mppi when installed) and the iLQR step",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--quick", action="store_true", help="K=1024, T=50 only and fewer repeats")
    ap.add_argument("--no-peer", action="store_true", help="skip pytorch_mppi")
    ap.add_argument("--repeats", type=positive_int, default=None, help="timed calls per row (default 50, --quick 20)")
    ap.add_argument("--threads", type=positive_int, default=2, help="numba and torch threads (default 2)")
    ap.add_argument("--device", default="cpu", choices=DEVICES,
                    help="cpu (default: the rows above), cuda (the GPU rows; exit 2 without a GPU) or auto")
    ap.set_defaults(func=run)
    return ap


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="racing")
    sub = ap.add_subparsers(dest="cmd", required=True)
    register(sub)
    args = ap.parse_args(["bench", *(argv or [])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
