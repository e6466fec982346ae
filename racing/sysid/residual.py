r"""Training of the semi-parametric residual (torch), after Georgiev et al. 2020.

The model (see :mod:`racing.models.residual` for the equations, features and the flat weight
layout that numba / CUDA kernels read)::

    x_{k+1} = Phi_p(x_k, c_k) + dt [0, 0, 0, g(x_k, u_k, f_p(x_k, u_k)), 0]

``Phi_p`` is the fitted physics model stepped over one log period with the actuator model
(:mod:`racing.sysid.rollout`), ``g`` a small tanh MLP on normalised features.

**Multi-step loss.** Windows of ``horizon_s`` (default 0.5 s) start at logged (smoothed) states and
are rolled out with the logged commands; the loss is the mean squared error of v_x, v_y and r
over all steps, each channel divided by its measurement-noise scale. The physics step runs in
numba (fast, float64) inside a ``torch.autograd.Function`` whose backward pass uses the step's
Jacobian (central differences, computed in the same numba pass), so gradients flow through the
whole rollout while only the small network lives in torch. Inputs and outputs are normalised
with statistics of the training data; the output layer starts at zero, so training starts from
the parametric model; the weights with the best validation loss (held-out windows) are kept.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from racing.logs import DriveLog
from racing.models.params import VehicleParams
from racing.models.residual import N_IN, N_OUT, ResidualWeights, load_residual  # noqa: F401 (re-export)
from racing.sysid import rollout as ro


@dataclass
class ResidualTrainResult:
    """Outcome of :func:`train_residual`: weights plus the loss history (per epoch)."""

    weights: ResidualWeights
    train_loss: list
    val_loss: list
    best_epoch: int
    seconds: float
    n_windows: int
    horizon_s: float
    info: dict = field(default_factory=dict)


def _torch_step_fn():
    import torch

    class ParametricStep(torch.autograd.Function):
        """Z[B, 9] = (S_next[4], u[2], fp[3]) of the physics step; backward through its Jacobian."""

        @staticmethod
        def forward(ctx, S, C, p, dt, h_max):
            s_np = np.ascontiguousarray(S.detach().numpy(), dtype=np.float64)
            c_np = np.ascontiguousarray(C.numpy(), dtype=np.float64)
            Z = np.empty((s_np.shape[0], 9))
            J = np.empty((s_np.shape[0], 9, 4))
            ro.step_with_jacobian(p, s_np, c_np, dt, h_max, 1e-5, Z, J)
            ctx.save_for_backward(torch.from_numpy(J))
            return torch.from_numpy(Z)

        @staticmethod
        def backward(ctx, gZ):
            (J,) = ctx.saved_tensors
            return torch.einsum("bij,bi->bj", J, gZ), None, None, None, None

    return ParametricStep


def _mlp(hidden: int, layers: int, seed: int):
    import torch

    torch.manual_seed(seed)
    mods = []
    n = N_IN
    for _ in range(layers):
        mods += [torch.nn.Linear(n, hidden), torch.nn.Tanh()]
        n = hidden
    last = torch.nn.Linear(n, N_OUT)
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    mods.append(last)
    return torch.nn.Sequential(*mods).double()


def features_of(data: ro.Data, p: np.ndarray, h_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[N, 9]`` at every logged (smoothed) state and the one-step targets ``[N, 3]`` [SI/s]."""
    S = np.ascontiguousarray(data.init[:, 3:7])
    Z = np.empty((data.n, 9))
    J = np.empty((data.n, 9, 4))
    dt = float(np.median(data.dt[data.dt > 0]))
    ro.step_with_jacobian(p, S, np.ascontiguousarray(data.cmd), dt, h_max, 1e-5, Z, J)
    feats = np.concatenate([S, Z[:, 4:9]], axis=1)
    nxt = np.roll(data.init[:, 3:6], -1, axis=0)
    tgt = (nxt - Z[:, 0:3]) / dt
    ok = data.dt > 0
    return feats[ok], tgt[ok]


def train_residual(logs, params: VehicleParams, hidden: int = 32, layers: int = 2, horizon_s: float = 0.5,
                   epochs: int = 40, batch: int = 128, lr: float = 1e-2, stride: int = 2, val_fraction: float = 0.15,
                   h_max: float = 0.01, seed: int = 0, pretrain_steps: int = 0,
                   max_seconds: float | None = None,
                   verbose: bool = False) -> ResidualTrainResult:
    """Train the residual MLP on top of ``params`` (the fitted physics model).

    Parameters
    ----------
    logs : list of DriveLog (or prepared ``rollout.Data``)
    params : the parametric model's VehicleParams (fit first, then train the residual on top)
    hidden, layers : MLP width and number of hidden layers (tanh)
    horizon_s : multi-step loss horizon [s]; epochs, batch, lr : Adam settings (cosine decay)
    stride : a window starts every ``stride`` samples; val_fraction : windows held out for model selection
    pretrain_steps : Adam steps of a one-step (finite-difference target) regression before the multi-step stage
    h_max : largest physics sub-step [s]; max_seconds : stop early after this wall time
    """
    import torch

    t0 = time.perf_counter()
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices; torch and numba thread pools fight otherwise
    data = logs if isinstance(logs, ro.Data) else ro.prepare(list(logs))
    p = params.to_array()
    H = max(1, int(round(horizon_s * data.rate_hz)))
    starts = ro.starts_or_raise(data, H, stride, horizon_s)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(starts.size)
    n_val = max(1, int(round(val_fraction * starts.size))) if starts.size > 4 else 0
    val_idx, tr_idx = starts[perm[:n_val]], starts[perm[n_val:]]
    sigma = ro.noise_scale(data)[:3]
    feats, tgt1 = features_of(data, p, h_max)
    in_mean, in_std = feats.mean(0), np.maximum(feats.std(0), 1e-6)
    out_mean = np.zeros(N_OUT)
    out_std = np.maximum(np.std(tgt1, axis=0), 1e-3)
    net = _mlp(hidden, layers, seed)
    Step = _torch_step_fn()
    tm = torch.from_numpy
    im, isd, om, osd = tm(in_mean), tm(in_std), tm(out_mean), tm(out_std)
    meas = tm(data.meas[:, 3:6] / sigma)
    cmd = tm(data.cmd)
    dts = tm(data.dt)
    init = tm(data.init[:, 3:7])
    dt_nom = float(np.median(data.dt[data.dt > 0]))

    def loss_of(idx: np.ndarray):
        ii = torch.from_numpy(idx)
        s = init[ii].clone()
        total = 0.0
        zero = torch.zeros(len(idx), 1, dtype=torch.float64)
        for k in range(H):
            Z = Step.apply(s, cmd[ii + k], p, dt_nom, h_max)
            f = torch.cat([s, Z[:, 4:9]], dim=1)
            g = net((f - im) / isd) * osd + om
            s = Z[:, 0:4] + dts[ii + k][:, None] * torch.cat([g, zero], dim=1)
            total = total + (((s[:, 0:3] / tm(sigma)) - meas[ii + k + 1]) ** 2).mean()
        return total / H

    # stage 1: one-step regression on (smoothed) finite-difference targets - cheap, gets close
    if pretrain_steps > 0:
        fn = tm((feats - in_mean) / in_std)
        yn = tm((tgt1 - out_mean) / out_std)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for _ in range(pretrain_steps):
            j = torch.from_numpy(rng.integers(0, fn.shape[0], size=min(1024, fn.shape[0])))
            opt.zero_grad()
            loss = ((net(fn[j]) - yn[j]) ** 2).mean()
            loss.backward()
            opt.step()
    # stage 2: multi-step loss through the rollout
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = max(1, int(np.ceil(tr_idx.size / batch)))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch, eta_min=lr * 0.05)
    best = (float("inf"), -1, None)
    hist_tr, hist_val = [], []
    with torch.no_grad():
        v0 = float(loss_of(val_idx)) if n_val else float("nan")
    for ep in range(epochs):
        order = rng.permutation(tr_idx)
        acc = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            if idx.size == 0:
                continue
            opt.zero_grad()
            loss = loss_of(idx)
            loss.backward()
            opt.step()
            sched.step()
            acc += float(loss.detach()) * idx.size
        hist_tr.append(acc / max(tr_idx.size, 1))
        with torch.no_grad():
            vl = float(loss_of(val_idx)) if n_val else hist_tr[-1]
        hist_val.append(vl)
        if vl < best[0]:
            best = (vl, ep, [q.detach().clone() for q in net.parameters()])
        if verbose:
            print(f"epoch {ep + 1}/{epochs}: train {hist_tr[-1]:.4f}  val {vl:.4f}  ({time.perf_counter() - t0:.1f} s)")
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    torch.set_num_threads(n_threads)
    if best[2] is not None:
        with torch.no_grad():
            for q, b in zip(net.parameters(), best[2]):
                q.copy_(b)
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    weights = ResidualWeights(
        weights=[m.weight.detach().numpy().copy() for m in lin], biases=[m.bias.detach().numpy().copy() for m in lin],
        in_mean=in_mean, in_std=in_std, out_mean=out_mean, out_std=out_std, dt=dt_nom,
        meta={"base_car": params.name, "base_params": ",".join(f"{v:.12g}" for v in p), "horizon_s": f"{H * dt_nom:g}",
              "hidden": str(hidden), "layers": str(layers), "h_max": f"{h_max:g}",
              "val_loss_initial": f"{v0:.6g}", "val_loss_best": f"{best[0]:.6g}"})
    return ResidualTrainResult(weights=weights, train_loss=hist_tr, val_loss=hist_val, best_epoch=best[1],
                               seconds=time.perf_counter() - t0, n_windows=int(starts.size), horizon_s=H * dt_nom,
                               info={"val_loss_initial": v0, "val_loss_best": best[0]})


def torch_residual(weights: ResidualWeights):
    """A torch function ``g(x[..., 7], u[..., 2], fp[..., 7]) -> [..., 3]`` equal to the numpy/numba one."""
    import torch

    Ws = [torch.from_numpy(W) for W in weights.weights]
    bs = [torch.from_numpy(b) for b in weights.biases]
    im, isd = torch.from_numpy(weights.in_mean), torch.from_numpy(weights.in_std)
    om, osd = torch.from_numpy(weights.out_mean), torch.from_numpy(weights.out_std)

    def g(x, u, fp):
        h = (torch.cat([x[..., 3:7], u[..., 0:2], fp[..., 3:6]], dim=-1) - im) / isd
        for W, b in zip(Ws[:-1], bs[:-1]):
            h = torch.tanh(h @ W.T + b)
        return (h @ Ws[-1].T + bs[-1]) * osd + om

    return g
