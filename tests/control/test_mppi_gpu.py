"""MPPI on CUDA, compiled from the CPU kernels' source (racing.control.mppi.gpu), and ``--device``.

* PTX: every kernel of the device iteration (the rollouts and the nominal rollout for every (rollout model, cost)
  pair, the weights, the update) compiles into device code with numba-cuda and NVVM on a machine without a GPU
  (numba-cuda asks the driver for the device's compute capability when it compiles a device function; with no driver
  the test names one, ``CC``), after the CPU kernels compiled in the same process.
* CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, a subprocess): the rollout kernel gives the CPU iteration's costs S[K],
  clamped inputs V[K, T, 2] and generated noise for the same seed; the whole device iteration (``MPPI(device=
  "cuda")``) gives the CPU controller's plans, samples, weights and commands, with and without a residual network.
* No GPU here: ``--device cuda`` is exit 2 naming what is missing, in the CLI and the API; ``--device auto`` races on
  the CPU and the summary says why.
* GPU (marked ``gpu``, skipped without a device): the comparisons on the device (K = 2048, T = 50), and a race.
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

    a, S_cpu, V_cpu, eps_cpu = _cpu_iteration(ctrl, track)
    V, S_out, eps = run(a, S.NoiseArgs(sigma=a["sigma"], qtab=ctrl.qtab))

    def rel(a_, b_):
        return float(np.max(np.abs(a_ - b_)) / max(np.max(np.abs(b_)), 1e-12))

    return rel(S_out, S_cpu), rel(V, V_cpu), rel(eps, eps_cpu)


PAIRS = [("dynamic", "racing"), ("kinematic", "racing"), ("semi_parametric", "racing"), ("kinematic", "circle")]


def compare_iteration(K, T, residual=False, steps=4):
    """The CPU controller and ``MPPI(device="cuda")`` (device or simulator) from the same state and seed over
    ``steps`` closed iterations (warm start, shift, command): the largest absolute differences of the plans (U, X),
    the samples (S, V, w), the commands and the reported figures; and the device's record."""
    from racing.control.mppi.controller import MPPI
    from racing.interfaces import Observation
    from racing.sim.simulator import initial_state

    rw = _random_residual() if residual else None
    cpu, track = _controller("dynamic", K, T, residual=rw)
    gpu = MPPI(track, cpu.params, cpu.config, residual=rw, device="cuda")
    x = initial_state(track, 3.0)
    x[4], x[5] = 0.05, 0.3
    err = dict(U=0.0, X=0.0, S=0.0, V=0.0, w=0.0, cmd=0.0, figures=0.0)
    for c in (cpu, gpu):
        c.reset()
    for j in range(steps):
        obs = Observation(0.02 * j, x.copy())
        cmds = [c.act(obs, 0.02 * j) for c in (cpu, gpu)]
        dc, dg = cpu.diagnostics(), gpu.diagnostics()
        for key, a, b in (("U", cpu.U, gpu.U), ("X", cpu.X, gpu.X), ("S", dc["costs"], dg["costs"]),
                          ("V", cpu.V, gpu.V), ("w", dc["weights"], dg["weights"]),
                          ("cmd", [cmds[0].steering_angle, cmds[0].speed, cmds[0].acceleration],
                           [cmds[1].steering_angle, cmds[1].speed, cmds[1].acceleration])):
            err[key] = max(err[key], float(np.max(np.abs(np.asarray(a) - np.asarray(b)))))
        for k in ("min_cost", "nominal_cost", "eta", "ess"):
            rel = abs(cpu.last[k] - gpu.last[k]) / max(abs(cpu.last[k]), 1e-12)
            err["figures"] = max(err["figures"], rel)
        x[0] += 0.05 * j  # the car moved: the next iteration starts elsewhere
    return err, gpu.device_info


def _random_residual():
    import runpy

    return runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "conftest.py"))["random_residual"]()


def compile_all_to_ptx(make_residual):
    """PTX of the rollout and nominal kernels for every pair of :data:`PAIRS` and of the weights and update kernels;
    returns {name: ptx}. The CPU kernels compile first in the same process (a race builds its CPU plant and grip
    estimator beside a GPU controller). A fresh process: the driver lookup is replaced."""
    import numba
    import numba.cuda.dispatcher as cuda_dispatcher
    from numba import cuda

    from racing.bench import CIRCLE, circle_args
    from racing.control.mppi.gpu import nominal_kernel, rollout_kernel, update_kernel, weights_kernel
    from racing.sim.simulator import initial_state

    # no driver here: numba-cuda's device-function compiler asks it for the compute capability; name one
    cuda_dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=CC)
    out = {}
    for model, cost in PAIRS:
        residual = make_residual() if model == "semi_parametric" else None
        ctrl, track = _controller("dynamic" if model == "semi_parametric" else model, K=8, T=5, residual=residual)
        ctrl.solve(initial_state(track, 3.0), 0.0)  # the CPU kernel first
        rc, ca = (S.RACING, ctrl.cost_args) if cost == "racing" else (CIRCLE, circle_args())
        kern = rollout_kernel(ctrl.model, rc)
        T = 5
        nz = S.NoiseArgs(sigma=ctrl.noise, qtab=ctrl.qtab)
        args = (np.zeros(7), np.zeros((T, 2)), ctrl.margs, ca, nz, 0, 0.0, np.zeros(2), 1, 0.0, True, False, 1,
                np.zeros((8, T, 2)), np.zeros(8), np.zeros((8, T, 2)), np.zeros((1, T + 1, 2)), np.zeros((T + 1, 7)),
                ctrl.ZR)
        ptx, _ = cuda.compile_ptx(kern.py_func, tuple(numba.typeof(x) for x in args), cc=CC)
        out[f"{model}-{cost}"] = ptx
        nom = (np.zeros(7), ctrl.margs, ca, ctrl.qtab, np.zeros(4), 0, 0.0, np.zeros(2), np.eye(T), np.zeros((T, 2)),
               np.zeros((T, 2)), np.zeros((T + 1, 7)), np.zeros((1, T, 2)), np.zeros((1, T + 1, 2)), ctrl.ZR,
               np.zeros(4))
        ptx, _ = cuda.compile_ptx(nominal_kernel(ctrl.model, rc).py_func, tuple(numba.typeof(x) for x in nom), cc=CC)
        out[f"nominal:{model}-{cost}"] = ptx
    for name, kern, args in (("weights", weights_kernel, (np.zeros(8), 1.0, np.zeros(8), np.zeros(4))),
                             ("update", update_kernel, (np.zeros((8, 5, 2)), np.zeros(8), np.zeros((5, 2))))):
        out[name] = cuda.compile_ptx(kern.py_func, tuple(numba.typeof(x) for x in args), cc=CC)[0]
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
    pairs = [f"{m}-{c}" for m, c in PAIRS]
    assert sorted(ptx) == sorted(pairs + [f"nominal:{p}" for p in pairs] + ["weights", "update"])
    for name, text in ptx.items():
        assert ".visible .entry" in text, name
        if name not in ("weights", "update"):
            assert "fma.rn.f64" in text, name  # the model's arithmetic is in it (device code, not a stub)
    assert "bar.sync" in ptx["weights"] and "bar.sync" in ptx["update"]  # block reductions


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


def test_device_iteration_matches_cpu_in_the_cuda_simulator():
    """The whole iteration on the device (rollouts, weights, update, smoothing, nominal rollout) equals the CPU
    iteration for the same seed, with and without a residual network, over closed iterations."""
    pytest.importorskip("numba.cuda")
    for residual in (False, True):
        err, info = _run_here(f"m['compare_iteration'](16, 8, {residual})", env={"NUMBA_ENABLE_CUDASIM": "1"})
        assert info["device"] == "cuda" and info["gpu"] == "CUDA simulator"
        assert max(err.values()) <= 1e-9, (residual, err)


def _no_gpu_here():
    from racing.control.mppi.device import cuda_problem

    problem = cuda_problem()
    if problem is None:
        pytest.skip("a CUDA GPU (or the simulator) works here")
    return problem


def test_device_cuda_without_a_gpu_is_exit_2_naming_what_is_missing(capsys):
    from racing.cli import main
    from racing.config import ConfigError
    from racing.control.mppi.device import DeviceError

    _no_gpu_here()
    assert main(["race", "--track", "lab_loop", "--controller", "mppi", "--device", "cuda", "--laps", "1"]) == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "GPU" in err
    from racing.control.mppi import MPPI

    with pytest.raises(DeviceError, match="GPU") as exc:  # the API alike, before anything is built
        MPPI(None, None, device="cuda")
    assert isinstance(exc.value, ConfigError)
    with pytest.raises(ConfigError, match="runs on the CPU only"):  # not a controller that runs on a GPU
        from racing.assembly import controller_device

        controller_device("ilqr", "cuda")


def test_missing_cuda_extra_is_named(monkeypatch):
    from racing.control.mppi.device import DeviceError, cuda_problem, resolve_device

    monkeypatch.setitem(sys.modules, "numba_cuda", None)  # as if numba-cuda were not installed
    assert "racing[cuda]" in cuda_problem()
    with pytest.raises(DeviceError, match=r"racing\[cuda\]"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="expected one of cpu, cuda, auto"):
        resolve_device("tpu")


def test_device_auto_races_on_the_cpu_and_says_so():
    from racing.api import race

    _no_gpu_here()
    result = race("lab_loop", controller="mppi", device="auto", laps=1, max_time_s=1.0,
                  controller_config=None)
    dev = result.summary()["device"]
    assert dev["device"] == "cpu" and dev["requested"] == "auto" and dev["gpu"] is None
    assert dev["note"].startswith("auto chose the CPU")
    assert result.config["machine"]["device"] == "cpu"


@pytest.mark.gpu
def test_device_iteration_matches_cpu_on_the_gpu():
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device")
    for residual in (False, True):
        err, info = _run_here(f"m['compare_iteration'](2048, 50, {residual})")
        assert info["device"] == "cuda"
        assert max(err.values()) <= 1e-9, (residual, err)


@pytest.mark.gpu
def test_race_on_the_gpu_laps_clean():
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device")
    from racing.api import race

    result = race("lab_loop", car="f1tenth", controller="mppi", device="cuda", laps=2)
    s = result.summary()
    assert s["device"]["device"] == "cuda" and s["device"]["gpu"]
    assert s["off_track"] == 0 and len(s["laps"]) == 2
