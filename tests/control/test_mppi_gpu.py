"""The MPPI rollouts compiled for CUDA from the CPU kernels' source (racing.control.mppi.gpu).

* PTX: every (rollout model, cost) pair compiles into device code with numba-cuda and NVVM, on a machine without a
  GPU (numba-cuda asks the driver for the device's compute capability when it compiles a device function; with no
  driver the test names one, ``CC``).
* CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, a subprocess): the kernel, run as numba's simulator runs it, gives
  the CPU iteration's costs S[K], clamped inputs V[K, T, 2] and generated noise for the same seed.
* GPU (marked ``gpu``, skipped without a device): the same comparison on the device, K = 2048, T = 50.

The checks run in fresh interpreters: numba-cuda 0.30 cannot compile a function for CUDA that the CPU target has
compiled earlier in the same process (``racing.models.fastmath._cuda_overload``).
"""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from racing.control.mppi import step as S

CC = (8, 0)


def _nvvm_or_skip():
    cuda = pytest.importorskip("numba.cuda")
    from numba.cuda.cudadrv import nvvm

    if not nvvm.is_available():
        pytest.skip("NVVM (libnvvm) not found: pip install 'racing[cuda]'")
    return cuda


def _controller(model="dynamic", K=16, T=10, residual=None):
    from racing.control.mppi import make_mppi
    from racing.models.params import load_params
    from racing.track import load_track

    track = load_track("lab_loop")
    ctrl = make_mppi(track, load_params("f1tenth"), num_samples=K, horizon=T, model=model, residual=residual,
                     warmup=False)
    return ctrl, track


def _cpu_iteration(ctrl, track):
    """One CPU iteration from a state on the track, the generated noise stored; returns the kernel's arguments
    (as the controller passed them) and the CPU results."""
    from racing.sim.simulator import initial_state

    x0 = initial_state(track, 3.0)
    x0[4], x0[5] = 0.05, 0.3
    ctrl.solve(x0, 0.0)  # a first iteration: a nominal U that is not zero
    U = ctrl.U.copy()
    ctrl.solve(x0, None, store_noise=True)
    args = dict(x0=x0.copy(), U=U, u_prev=U[0].copy(), i0=ctrl.last["i0"], s0=ctrl.last["s0"], seed=ctrl.last_seed,
                sigma=ctrl.noise.copy())
    return args, ctrl.Sk.copy(), ctrl.V.copy(), ctrl.eps.copy()


def compare(K, T, model="dynamic"):
    """Run the CUDA kernel (device or simulator) against the CPU iteration; returns the largest relative errors
    (S, V, eps)."""
    from numba import cuda

    from racing.control.mppi.gpu import launch, rollout_kernel, to_device

    ctrl, track = _controller(model, K, T)
    kern = rollout_kernel(ctrl.model, ctrl.cost)
    d = cuda.to_device
    V = np.zeros((K, T, 2))
    S_out = np.zeros(K)
    eps = np.zeros((K, T, 2))
    traj = np.zeros((max(ctrl.n_rec, 1), T + 1, 2))

    def run(a, nz):
        dV, dS, deps, dtraj = d(V), d(S_out), d(eps), d(traj)
        margs, cargs, zr = to_device((ctrl.margs, ctrl.cost_args, ctrl.ZR))  # as the controller holds them now
        launch(kern, K, d(a["x0"]), d(a["U"]), margs, cargs, to_device(nz), a["i0"], a["s0"], d(a["u_prev"]),
               a["seed"], ctrl.gamma, True, True, ctrl.n_rec, dV, dS, deps, dtraj, d(np.zeros((T + 1, 7))), zr)
        return dV.copy_to_host(), dS.copy_to_host(), deps.copy_to_host()

    # the CUDA kernel compiles before the CPU one (racing.models.fastmath._cuda_overload)
    x = np.zeros(7)
    run(dict(x0=x, U=np.zeros((T, 2)), u_prev=np.zeros(2), i0=0, s0=0.0, seed=1), S.NoiseArgs(ctrl.noise, ctrl.qtab))
    a, S_cpu, V_cpu, eps_cpu = _cpu_iteration(ctrl, track)
    V, S_out, eps = run(a, S.NoiseArgs(sigma=a["sigma"], qtab=ctrl.qtab))

    def rel(a_, b_):
        return float(np.max(np.abs(a_ - b_)) / max(np.max(np.abs(b_)), 1e-12))

    return rel(S_out, S_cpu), rel(V, V_cpu), rel(eps, eps_cpu)


PAIRS = [("dynamic", "racing"), ("kinematic", "racing"), ("semi_parametric", "racing"), ("kinematic", "circle")]


def _random_residual():
    import runpy

    return runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "conftest.py"))["random_residual"]()


def compile_all_to_ptx(make_residual):
    """PTX of the rollout kernel for every pair of :data:`PAIRS`; returns {pair: ptx}. Run in a fresh process:
    numba-cuda 0.30 fails on functions the CPU target has compiled in the same process (see
    ``racing.models.fastmath._cuda_overload``)."""
    import numba
    import numba.cuda.dispatcher as cuda_dispatcher
    from numba import cuda

    from racing.bench import CIRCLE, circle_args
    from racing.control.mppi.gpu import rollout_kernel

    # no driver here: numba-cuda's device-function compiler asks it for the compute capability; name one
    cuda_dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=CC)
    out = {}
    for model, cost in PAIRS:
        residual = make_residual() if model == "semi_parametric" else None
        ctrl, _ = _controller("dynamic" if model == "semi_parametric" else model, K=8, T=5, residual=residual)
        rc, ca = (S.RACING, ctrl.cost_args) if cost == "racing" else (CIRCLE, circle_args())
        kern = rollout_kernel(ctrl.model, rc)
        T = 5
        nz = S.NoiseArgs(sigma=ctrl.noise, qtab=ctrl.qtab)
        args = (np.zeros(7), np.zeros((T, 2)), ctrl.margs, ca, nz, 0, 0.0, np.zeros(2), 1, 0.0, True, False, 1,
                np.zeros((8, T, 2)), np.zeros(8), np.zeros((8, T, 2)), np.zeros((1, T + 1, 2)), np.zeros((T + 1, 7)),
                ctrl.ZR)
        ptx, _ = cuda.compile_ptx(kern.py_func, tuple(numba.typeof(x) for x in args), cc=CC)
        out[f"{model}-{cost}"] = ptx
    return out


def _run_here(call: str, env=None) -> str:
    """Run ``call`` (an expression over this module's namespace ``m``) in a fresh interpreter; its printed result."""
    code = ("import runpy, json; m = runpy.run_path(%r, run_name='gpu_check'); print('RESULT', json.dumps(%s))"
            % (os.path.abspath(__file__), call))
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **(env or {})), capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    return json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")][-1].split(" ", 1)[1])


def test_rollouts_compile_to_ptx():
    _nvvm_or_skip()
    ptx = _run_here("m['compile_all_to_ptx'](m['_random_residual'])")
    assert sorted(ptx) == sorted(f"{m}-{c}" for m, c in PAIRS)
    for name, text in ptx.items():
        assert ".visible .entry" in text, name
        assert "fma.rn.f64" in text, name  # the model's arithmetic is in it (device code, not a stub)


def test_rollouts_match_cpu_in_the_cuda_simulator():
    pytest.importorskip("numba.cuda")
    err_S, err_V, err_eps = _run_here("m['compare'](16, 8)", env={"NUMBA_ENABLE_CUDASIM": "1"})
    assert err_eps == 0.0  # the same generator, bit for bit
    assert err_V <= 1e-9 and err_S <= 1e-9, (err_S, err_V)


@pytest.mark.gpu
def test_rollouts_match_cpu_on_the_gpu():
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device")
    err_S, err_V, err_eps = _run_here("m['compare'](2048, 50)")  # a fresh process: the CUDA kernel compiles first
    assert err_eps == 0.0
    assert err_V <= 1e-9 and err_S <= 1e-9, (err_S, err_V)
