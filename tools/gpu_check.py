"""Check and time the MPPI rollouts on a CUDA GPU (``racing.control.mppi.gpu``), in one run on a machine with one.

    python tools/gpu_check.py [--out DIR] [--quick]

1. The kernel against the CPU iteration (``tests/control/test_mppi_gpu.py``'s ``compare``) at K = 2048, T = 50,
   dynamic model and racing cost: the largest relative error of the sample costs S[K], the clamped inputs
   V[K, T, 2] and the generated noise.
2. The rollout kernel's time on the device (CUDA events, median of 50 launches after 5 warm-ups, inputs already on
   the device), and with the copy of S and V back to the host that the host's update needs, for K = 2048 ... 131072
   at T = 50; the block size 64 / 128 / 256 at the largest K.
3. The CPU iteration (``MPPI.solve``, the same problem) on the same machine with 2 threads and with all its cores,
   for scale.

Prints a table last and writes every number to ``DIR/gpu_check.json``. The CUDA kernel compiles before the CPU one
(numba-cuda 0.30's limit, ``racing.models.fastmath._cuda_overload``).
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _versions() -> dict:
    import numba
    from numba import cuda

    import racing

    v = {"python": sys.version.split()[0], "numpy": np.__version__, "numba": numba.__version__,
         "racing": getattr(racing, "__version__", "?")}
    try:
        from importlib.metadata import version

        v["numba-cuda"] = version("numba-cuda")
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        v["numba-cuda"] = f"? ({e})"
    dev = cuda.get_current_device()
    name = getattr(dev, "name", "CUDA simulator")
    v["device"] = name.decode() if isinstance(name, bytes) else str(name)
    v["compute_capability"] = list(dev.compute_capability)
    v["multiprocessors"] = int(getattr(dev, "MULTIPROCESSOR_COUNT", 0))
    return v


def _per_signature(kern, method: str):
    """``kern.<method>()`` (numba-cuda's per-signature resource counts) as a list; a string where unavailable (the
    simulator)."""
    try:
        return list(getattr(kern, method)().values())
    except Exception as e:  # noqa: BLE001 - informative only
        return f"? ({e})"


def _time_kernel(kern, K, T, ctrl, tpb, repeats=50, warmup=5):
    """Median ms of the rollout kernel alone and with S[K], V[K, T, 2] copied back (pinned host buffers)."""
    from numba import cuda

    from racing.control.mppi import step as S
    from racing.control.mppi.gpu import launch, to_device
    from racing.sim.simulator import initial_state

    x0 = initial_state(ctrl.track, 3.0)
    d = cuda.to_device
    for _ in range(5):  # a nominal plan the CPU controller converged to from x0: samples as a race sees them
        ctrl.solve(x0, None)
    U, i0, s0 = ctrl.U.copy(), ctrl.last["i0"], ctrl.last["s0"]
    dx0, dU, dup = d(x0), d(U), d(U[0].copy())
    dV, dS = cuda.device_array((K, T, 2)), cuda.device_array(K)
    deps, dtraj = cuda.device_array((1, T, 2)), cuda.device_array((max(ctrl.n_rec, 1), T + 1, 2))
    dX, dZR = d(np.zeros((T + 1, 7))), d(np.zeros((1, 1)))
    nz = to_device(S.NoiseArgs(sigma=ctrl.noise, qtab=ctrl.qtab))
    margs, cargs = to_device(ctrl.margs), to_device(ctrl.cost_args)
    hS, hV = cuda.pinned_array(K), cuda.pinned_array((K, T, 2))

    def go(seed):
        launch(kern, K, dx0, dU, margs, cargs, nz, i0, s0, dup, seed, ctrl.gamma, True, False,
               ctrl.n_rec, dV, dS, deps, dtraj, dX, dZR, threads_per_block=tpb)

    for i in range(warmup):
        go(i + 1)
    cuda.synchronize()
    alone, copied = [], []
    for i in range(repeats):
        a, b, c = cuda.event(), cuda.event(), cuda.event()
        a.record()
        go(100 + i)
        b.record()
        dS.copy_to_host(hS)
        dV.copy_to_host(hV)
        c.record()
        c.synchronize()
        alone.append(a.elapsed_time(b))
        copied.append(a.elapsed_time(c))
    s = hS.copy()
    assert np.all(np.isfinite(s)), "non-finite sample costs"
    return statistics.median(alone), statistics.median(copied), float(np.min(s)), float(np.median(s))


def _time_cpu(ctrl, threads, repeats=30):
    import numba

    from racing.sim.simulator import initial_state

    numba.set_num_threads(threads)
    x0 = initial_state(ctrl.track, 3.0)
    for _ in range(3):
        ctrl.solve(x0, None)
    ts = []
    for _ in range(repeats):
        c = time.perf_counter()
        ctrl.solve(x0, None)
        ts.append((time.perf_counter() - c) * 1e3)
    return statistics.median(ts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--quick", action="store_true", help="K = 2048 and 32768 only")
    ap.add_argument("--dry", action="store_true", help="tiny sizes, to try the script in numba's CUDA simulator")
    a = ap.parse_args(argv)
    res = {"versions": _versions()}
    print(json.dumps(res["versions"]), flush=True)
    m = runpy.run_path(os.path.join(ROOT, "tests", "control", "test_mppi_gpu.py"), run_name="gpu_check")
    c = time.perf_counter()
    Kc, T = (16, 8) if a.dry else (2048, 50)
    err_S, err_V, err_eps = m["compare"](Kc, T)
    res["compare"] = {"rel_err_S": err_S, "rel_err_V": err_V, "rel_err_eps": err_eps,
                                "wall_s_with_compiles": time.perf_counter() - c}
    print("compare", res["compare"], flush=True)

    from racing.control.mppi.gpu import rollout_kernel

    ctrl, _ = m["_controller"]("dynamic", Kc, T)
    kern = rollout_kernel(ctrl.model, ctrl.cost)
    res["registers_per_thread"] = _per_signature(kern, "get_regs_per_thread")
    res["local_mem_per_thread"] = _per_signature(kern, "get_local_mem_per_thread")  # spills, local arrays
    print("registers", res["registers_per_thread"], "local bytes", res["local_mem_per_thread"], flush=True)
    rows = []
    reps = 3 if a.dry else 50
    sizes = (32,) if a.dry else (2048, 32768) if a.quick else (2048, 8192, 32768, 131072)
    for K in sizes:
        k_ms, kc_ms, smin, smed = _time_kernel(kern, K, T, ctrl, 128, repeats=reps)
        rows.append({"K": K, "T": T, "tpb": 128, "kernel_ms": k_ms, "kernel_and_copy_ms": kc_ms,
                     "ns_per_sample_step": k_ms * 1e6 / (K * T), "S_min": smin, "S_median": smed})
        print(rows[-1], flush=True)
    Kb = rows[-1]["K"]
    for tpb in (64, 256):
        k_ms, kc_ms, _, _ = _time_kernel(kern, Kb, T, ctrl, tpb, repeats=reps)
        rows.append({"K": Kb, "T": T, "tpb": tpb, "kernel_ms": k_ms, "kernel_and_copy_ms": kc_ms,
                     "ns_per_sample_step": k_ms * 1e6 / (Kb * T)})
        print(rows[-1], flush=True)
    res["gpu"] = rows
    ncpu = os.cpu_count() or 1
    res["cpu_iteration_ms"] = {"K": Kc, "T": T, **{f"{n}_threads": _time_cpu(ctrl, n) for n in sorted({2, ncpu})}}
    print("cpu", res["cpu_iteration_ms"], flush=True)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "gpu_check.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"\n{res['versions']['device']}  numba {res['versions']['numba']}  numba-cuda {res['versions']['numba-cuda']}")
    print(f"GPU vs CPU (K={Kc}, T={T}): rel err S {err_S:.2e}  V {err_V:.2e}  noise {err_eps:.2e}")
    print(f"{'K':>7} {'tpb':>4} {'kernel ms':>10} {'+copy ms':>9} {'ns/sample-step':>15}")
    for r in rows:
        print(f"{r['K']:>7} {r['tpb']:>4} {r['kernel_ms']:>10.3f} {r['kernel_and_copy_ms']:>9.3f} "
              f"{r['ns_per_sample_step']:>15.4f}")
    for n in sorted({2, ncpu}):
        print(f"CPU iteration K={Kc} T={T}, {n} threads: {res['cpu_iteration_ms'][f'{n}_threads']:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
