r"""Training of the semi-parametric residual (torch), after Georgiev et al. 2020.

The model (see :mod:`racing.models.residual` for the equations, features and the flat weight
layout that numba / CUDA kernels read)::

    x_{k+1} = Phi_p(x_k, c_k) + dt [0, 0, 0, g(x_k, u_k, f_p(x_k, u_k), z_k), 0]
    z_{k+1} = z_k + (1 - exp(-dt / tau)) (u_k[ACCEL] - z_k)

``Phi_p`` is the fitted physics model stepped over one log period with the actuator model
(:mod:`racing.sysid.rollout`), ``g`` a small tanh MLP on normalised features, ``z`` the residual's
own state: low-pass filters of the acceleration input (default two, time constants learned with
the network), which expose hidden actuator states such as a drivetrain lag, plus the products of
``z`` with the physics model's lateral and yaw accelerations (load transfer scales the tyre forces).
Windows start with ``z`` from the filters run over the log's command history
(:func:`racing.sysid.rollout.aug_history`).

**Multi-step loss.** Windows of ``horizon_s`` (default 1 s) start at logged (smoothed) states and
are rolled out with the logged commands; the loss is the mean squared error of v_x, v_y and r
over all steps, each channel divided by the parametric model's RMSE on the training windows (so
the three channels count equally; ``channel_weights="noise"`` divides by the noise scale instead).
A curriculum trains on 1/4, then 1/2, then the full horizon. The physics step runs in numba
(fast, float64, one thread) inside a ``torch.autograd.Function`` whose backward pass uses the
step's Jacobian (central differences, computed in the same numba pass), so gradients flow through
the whole rollout while only the small network lives in torch. Inputs and outputs are normalised
with statistics of the training data, and every raw feature is clipped to its 0.5-99.5 percentile
range over the training data (``clip_percentile``; the bounds are stored with the weights and
applied by every evaluation, so the network never extrapolates beyond what it saw). The output
layer starts at zero (the parametric model); a one-step regression on finite-difference targets
(``pretrain_steps``) then gives the multi-step stage a good start, whose Adam steps are
gradient-norm clipped (``grad_clip``: slides make long rollouts' gradients spike); the weights with the best full-horizon validation loss (held-out contiguous
blocks of the log; training windows overlapping them are dropped) are kept.
"""
from __future__ import annotations

import time
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np

from racing.models.params import VehicleParams
from racing.models.residual import N_IN, N_OUT, ResidualWeights, load_residual  # noqa: F401 (re-export)
from racing.sysid import rollout as ro
from racing.sysid.evaluate import evaluate


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


def _mlp(n_in: int, hidden: int, layers: int, seed: int):
    import torch

    torch.manual_seed(seed)
    mods = []
    n = n_in
    for _ in range(layers):
        mods += [torch.nn.Linear(n, hidden), torch.nn.Tanh()]
        n = hidden
    last = torch.nn.Linear(n, N_OUT)
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    mods.append(last)
    return torch.nn.Sequential(*mods).double()


def _features(S, Z, z, products: bool, cat):
    """Features (module :mod:`racing.models.residual` order) from S[B, 4] = (v_x, v_y, r, delta), the step
    output Z[B, 9] = (S_next, u, fp[VX, VY, R]) and filter states z[B, n_aug]; ``cat`` = np/torch concatenate."""
    parts = [S, Z[:, 4:9]]
    if z.shape[1]:
        parts.append(z)
        if products:
            ay = Z[:, 7:8] + S[:, 0:1] * S[:, 2:3]
            for q in range(z.shape[1]):
                parts += [z[:, q:q + 1] * ay, z[:, q:q + 1] * Z[:, 8:9]]
    return cat(parts, 1)


def features_of(data: ro.Data, p: np.ndarray, h_max: float, taus=(), products: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[N, n_in]`` at every logged (smoothed) state and the one-step targets ``[N, 3]`` [SI/s]."""
    S = np.ascontiguousarray(data.init[:, 3:7])
    Z = np.empty((data.n, 9))
    J = np.empty((data.n, 9, 4))
    dt = float(np.median(data.dt[data.dt > 0]))
    ro.step_with_jacobian(p, S, np.ascontiguousarray(data.cmd), dt, h_max, 1e-5, Z, J)
    feats = _features(S, Z, ro.aug_history(data, p, taus), products, np.concatenate)
    nxt = np.roll(data.init[:, 3:6], -1, axis=0)
    tgt = (nxt - Z[:, 0:3]) / dt
    ok = data.dt > 0
    return feats[ok], tgt[ok]


def train_residual(logs, params: VehicleParams, hidden: int = 32, layers: int = 2, horizon_s: float = 1.0,
                   epochs: int = 40, batch: int = 64, lr: float = 2e-3, stride: int = 2, val_fraction: float = 0.15,
                   h_max: float = 0.01, seed: int = 0, pretrain_steps: int = 1500,
                   max_seconds: float | None = None, taus=(0.05, 0.15), learn_taus: bool = True,
                   products: bool = True,
                   curriculum: tuple = (0.3, 0.6), channel_weights: str = "error",
                   clip_percentile: float | None = 0.5, grad_clip: float | None = 1.0,
                   verbose: bool = False, pedal_theta=None, patience: int | None = None) -> ResidualTrainResult:
    """Train the residual MLP on top of ``params`` (the fitted physics model).

    Parameters
    ----------
    logs : list of DriveLog (or prepared ``rollout.Data``)
    params : the parametric model's VehicleParams (fit first, then train the residual on top)
    hidden, layers : MLP width and number of hidden layers (tanh)
    horizon_s : multi-step loss horizon [s]; epochs, batch, lr : Adam settings (cosine decay)
    stride : a window starts every ``stride`` samples; val_fraction : windows held out for model selection
    taus : initial time constants [s] of the residual's acceleration filter states (``()``: none,
        the version-1 residual of (state, input) only); learn_taus : fit them with the network
    products : add the load-transfer product features (filter state x lateral acceleration / yaw
        acceleration of the physics model, see :mod:`racing.models.residual`)
    curriculum : fractions of the training epochs after which the loss horizon grows from 1/4 to
        1/2 to the full ``horizon_s`` (short windows first: faster, better conditioned)
    channel_weights : "error" divides each channel's error by the parametric model's RMSE over the
        training windows (v_x, v_y and r count equally); "noise" by the measurement-noise scale
    clip_percentile : clip every raw feature to its [q, 100 - q] percentile range over the training
        data (q = ``clip_percentile``), in training and in every later evaluation, so the residual does
        not extrapolate beyond the data it saw (:mod:`racing.models.residual`); None: no clipping
    grad_clip : largest gradient norm of a multi-step Adam step (slides make long rollouts' gradients
        spike; None: no clipping)
    pretrain_steps : Adam steps of a one-step (finite-difference target) regression before the multi-step stage
    h_max : largest physics sub-step [s]; max_seconds : stop early after this wall time
    pedal_theta : the fitted pedal map of pedal logs (the residual is trained on the inputs the fit used)
    patience : early stopping: stop after this many epochs at the full horizon without a better validation loss
    """
    import torch

    t0 = time.perf_counter()
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices; torch and numba thread pools fight otherwise
    import numba

    nb_threads = numba.get_num_threads()
    numba.set_num_threads(1)  # batches of ~64 windows: thread start-up costs more than it saves
    data = logs if isinstance(logs, ro.Data) else ro.prepare(list(logs))
    data, p = data.effective(params.to_array(), pedal_theta)
    dt_nom = float(np.median(data.dt[data.dt > 0]))
    H = max(1, int(round(horizon_s * data.rate_hz)))
    starts = ro.starts_or_raise(data, H, stride, horizon_s)
    rng = np.random.default_rng(seed)
    tr_idx, val_idx = _split_windows(starts, data.n, H, val_fraction, rng)
    n_val = int(val_idx.size)
    taus0 = np.atleast_1d(np.asarray(taus, dtype=float))
    n_aug = int(taus0.size)
    products = bool(products) and n_aug > 0
    feats, tgt1 = features_of(data, p, h_max, taus0, products)
    feats, norm = _normalisation(feats, tgt1, clip_percentile)
    scale = _channel_scale(data, p, H, tr_idx, h_max, channel_weights)
    net = _mlp(feats.shape[1], hidden, layers, seed)
    log_tau = torch.nn.Parameter(torch.from_numpy(np.log(taus0)).clone()) if n_aug else None
    loss_of, history = _rollout_loss(data, p, net, log_tau, taus0, dt_nom, h_max, products, norm, scale)
    Z0 = history()
    with torch.no_grad():  # the output layer starts at zero: this is the parametric model's loss
        v0 = float(loss_of(val_idx, Z0, H)) if n_val else float("nan")
    # stage 1: one-step regression on (smoothed) finite-difference targets (optional)
    if pretrain_steps > 0:
        _pretrain(net, feats, tgt1, norm, lr, pretrain_steps, rng)
    with torch.no_grad():
        v_pre = float(loss_of(val_idx, Z0, H)) if (n_val and pretrain_steps > 0) else v0
    # stage 2: multi-step loss through the rollout, horizon curriculum
    params_all = list(net.parameters()) + ([log_tau] if (n_aug and learn_taus) else [])
    best, hist_tr, hist_val = _train_multistep(
        net, log_tau, params_all, loss_of, history, Z0, tr_idx, val_idx, H, dt_nom, rng, t0, epochs=epochs,
        batch=batch, lr=lr, curriculum=curriculum, grad_clip=grad_clip, learn_taus=learn_taus,
        max_seconds=max_seconds, patience=patience, verbose=verbose)
    torch.set_num_threads(n_threads)
    numba.set_num_threads(nb_threads)
    taus_fit = (np.exp((best[3] if best[3] is not None else log_tau.detach()).numpy()) if n_aug else np.zeros(0))
    meta = _weights_meta(params.name, p, H * dt_nom, hidden, layers, h_max, taus_fit, clip_percentile,
                         (v0, v_pre, best[0]))
    weights = _trained_weights(net, best[2], norm, dt_nom, taus_fit, products, meta)
    return ResidualTrainResult(weights=weights, train_loss=hist_tr, val_loss=hist_val, best_epoch=best[1],
                               seconds=time.perf_counter() - t0, n_windows=int(starts.size), horizon_s=H * dt_nom,
                               info={"val_loss_initial": v0, "val_loss_pretrained": v_pre, "val_loss_best": best[0],
                                     "taus": [float(v) for v in taus_fit]})


def _split_windows(starts: np.ndarray, n: int, H: int, val_fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation window starts (sample indices) from ``starts``: validation = ``val_fraction`` of 20
    contiguous blocks (overlapping windows of a random split would leak; none when there are <= 80 windows),
    training = the windows that do not overlap a validation window of ``H`` steps (``n``: samples in the data)."""
    nb = 20
    blk = np.minimum((np.arange(starts.size) * nb) // max(starts.size, 1), nb - 1)
    n_val_blk = max(1, int(round(val_fraction * nb))) if starts.size > 4 * nb else 0
    val_blk = rng.choice(nb, n_val_blk, replace=False) if n_val_blk else np.zeros(0, int)
    is_val = np.isin(blk, val_blk)
    # drop training windows that overlap a validation window
    val_idx = starts[is_val]
    near = np.zeros(n + H + 1, bool)
    for v in val_idx:
        near[max(0, v - H):v + H + 1] = True
    tr_idx = starts[~is_val & ~near[starts]] if val_idx.size else starts
    return tr_idx, val_idx


#: normalisation of the residual network: raw-feature clip bounds ``in_lo, in_hi`` [n_in] (None: no clipping),
#: input mean / std [n_in], output mean / std [3] (the v_x, v_y, r corrections [m/s^2, m/s^2, rad/s^2])
_Norm = namedtuple("_Norm", "in_lo in_hi in_mean in_std out_mean out_std")


def _normalisation(feats: np.ndarray, tgt1: np.ndarray, clip_percentile: float | None) -> tuple[np.ndarray, _Norm]:
    """The features ``feats[n, n_in]`` clipped to their [q, 100 - q] percentiles (q = ``clip_percentile``; None:
    not clipped) and the :class:`_Norm` statistics of them and of the one-step targets ``tgt1[n, 3]``."""
    if clip_percentile is not None:
        q = float(clip_percentile)
        if not 0.0 <= q < 50.0:
            raise ValueError(f"clip_percentile must be in [0, 50), got {q}")
        in_lo, in_hi = np.percentile(feats, q, axis=0), np.percentile(feats, 100.0 - q, axis=0)
        feats = np.clip(feats, in_lo, in_hi)
    else:
        in_lo = in_hi = None
    out_std = np.maximum(np.std(tgt1, axis=0), 1e-3)
    return feats, _Norm(in_lo, in_hi, feats.mean(0), np.maximum(feats.std(0), 1e-6), np.zeros(N_OUT), out_std)


def _channel_scale(data: ro.Data, p: np.ndarray, H: int, tr_idx: np.ndarray, h_max: float,
                   channel_weights: str) -> np.ndarray:
    """Divisors ``[3]`` of the v_x, v_y [m/s] and r [rad/s] errors in the multi-step loss: the parametric model's
    RMSE over the training windows ``tr_idx`` of ``H`` steps (at least the noise scale; ``"error"``) or the
    measurement-noise scale (``"noise"``)."""
    sigma = ro.noise_scale(data)[:3]
    if channel_weights == "error":
        pred = ro.predict(data, p, H, tr_idx, "dynamic", h_max=h_max)
        err = pred[..., 3:6] - ro.targets(data, H, tr_idx)[..., 3:6]
        return np.maximum(np.sqrt(np.mean(err ** 2, axis=(0, 1))), sigma)
    if channel_weights == "noise":
        return sigma
    raise ValueError(f"channel_weights must be 'error' or 'noise', got {channel_weights!r}")


def _rollout_loss(data: ro.Data, p: np.ndarray, net, log_tau, taus0: np.ndarray, dt_nom: float, h_max: float,
                  products: bool, norm: _Norm, scale: np.ndarray):
    """The multi-step loss and the filter-state history, as closures over the data's tensors.

    ``loss_of(idx[B], Z0[n, n_aug], Hk)``: mean over ``Hk`` steps of the squared, ``scale``-divided errors of v_x,
    v_y, r of the rollouts (physics step in numba, residual ``net``, filter states with time constants
    ``exp(log_tau)`` [s]) from the windows starting at the sample indices ``idx``; ``history()``: the filter states
    ``Z0[n, n_aug]`` run over the log's commands with the current time constants."""
    import torch

    n_aug = int(taus0.size)
    Step = _torch_step_fn()
    tm = torch.from_numpy
    im, isd, om, osd = tm(norm.in_mean), tm(norm.in_std), tm(norm.out_mean), tm(norm.out_std)
    lo_t, hi_t = (tm(norm.in_lo), tm(norm.in_hi)) if norm.in_lo is not None else (None, None)
    scale_t = tm(scale)
    meas = tm(data.meas[:, 3:6])
    cmd = tm(data.cmd)
    dts = tm(data.dt)
    init = tm(data.init[:, 3:7])
    zero = torch.zeros(1, dtype=torch.float64)

    def history():
        tau = np.exp(log_tau.detach().numpy()) if n_aug else taus0
        return tm(ro.aug_history(data, p, tau))

    def loss_of(idx: np.ndarray, Z0, Hk: int):
        ii = torch.from_numpy(idx)
        s = init[ii].clone()
        z = Z0[ii]
        alpha = 1.0 - torch.exp(-dt_nom / torch.exp(log_tau)) if n_aug else None
        total = 0.0
        zb = zero.expand(len(idx), 1)
        for k in range(Hk):
            Z = Step.apply(s, cmd[ii + k], p, dt_nom, h_max)
            f = _features(s, Z, z, products, torch.cat)
            if lo_t is not None:
                f = torch.clamp(f, lo_t, hi_t)
            g = net((f - im) / isd) * osd + om
            s = Z[:, 0:4] + dts[ii + k][:, None] * torch.cat([g, zb], dim=1)
            if n_aug:
                z = z + alpha * (Z[:, 5:6] - z)
            total = total + (((s[:, 0:3] - meas[ii + k + 1]) / scale_t) ** 2).mean()
        return total / Hk

    return loss_of, history


def _pretrain(net, feats: np.ndarray, tgt1: np.ndarray, norm: _Norm, lr: float, steps: int, rng) -> None:
    """``steps`` Adam steps (learning rate ``lr``) of a one-step regression of the normalised targets
    ``tgt1[n, 3]`` on the normalised features ``feats[n, n_in]``, minibatches of up to 1024 rows drawn by ``rng``."""
    import torch

    fn = torch.from_numpy((feats - norm.in_mean) / norm.in_std)
    yn = torch.from_numpy((tgt1 - norm.out_mean) / norm.out_std)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        j = torch.from_numpy(rng.integers(0, fn.shape[0], size=min(1024, fn.shape[0])))
        opt.zero_grad()
        loss = ((net(fn[j]) - yn[j]) ** 2).mean()
        loss.backward()
        opt.step()


def _train_multistep(net, log_tau, params_all: list, loss_of, history, Z0, tr_idx: np.ndarray, val_idx: np.ndarray,
                     H: int, dt_nom: float, rng, t0: float, *, epochs: int, batch: int, lr: float, curriculum,
                     grad_clip: float | None, learn_taus: bool, max_seconds: float | None, patience: int | None,
                     verbose: bool):
    """Stage 2: Adam with cosine decay on the multi-step loss, the horizon growing from H/4 over H/2 to ``H`` steps
    at the ``curriculum`` fractions of the epochs; after every epoch the validation loss at the full horizon (the
    training loss without validation windows) selects the best weights. Stops after ``epochs``, at
    ``max_seconds`` [s] since ``t0`` or after ``patience`` full-horizon epochs without improvement.
    Returns ``((best val loss, best epoch, best net parameters, best log_tau), train losses, val losses)``."""
    import torch

    n_aug = log_tau is not None
    n_val = int(val_idx.size)
    opt = torch.optim.Adam(params_all, lr=lr)
    steps_per_epoch = max(1, int(np.ceil(tr_idx.size / batch)))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch, eta_min=lr * 0.02)
    cur = sorted(float(c) for c in curriculum)
    best = (float("inf"), -1, None, None)
    hist_tr, hist_val = [], []
    for ep in range(epochs):
        stage = sum(ep >= c * epochs for c in cur)
        Hk = H if stage >= len(cur) else max(1, int(round(H * 2.0 ** (stage - len(cur)))))
        order = rng.permutation(tr_idx)
        acc = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            if idx.size == 0:
                continue
            opt.zero_grad()
            loss = loss_of(idx, Z0, Hk)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params_all, grad_clip)
            opt.step()
            sched.step()
            if n_aug:
                with torch.no_grad():  # keep the filters meaningful: dt/5 .. 2 s
                    log_tau.clamp_(float(np.log(dt_nom / 5)), float(np.log(2.0)))
            acc += float(loss.detach()) * idx.size
        if n_aug and learn_taus:
            Z0 = history()
        hist_tr.append(acc / max(tr_idx.size, 1))
        with torch.no_grad():
            vl = float(loss_of(val_idx, Z0, H)) if n_val else hist_tr[-1]
        hist_val.append(vl)
        # model selection at the full horizon only (short-horizon stages are not comparable)
        if vl < best[0] or best[2] is None:
            best = (vl, ep, [q.detach().clone() for q in net.parameters()],
                    log_tau.detach().clone() if n_aug else None)
        if verbose:
            tau_s = f"  tau {np.round(np.exp(log_tau.detach().numpy()), 4)}" if n_aug else ""
            print(f"epoch {ep + 1}/{epochs} (H {Hk}): train {hist_tr[-1]:.4f}  val {vl:.4f}{tau_s}  "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
        if patience is not None and Hk == H and ep - best[1] >= patience and best[1] >= 0:
            break
    return best, hist_tr, hist_val


def _weights_meta(car: str, p: np.ndarray, horizon_s: float, hidden: int, layers: int, h_max: float,
                  taus_fit: np.ndarray, clip_percentile: float | None, val_losses: tuple) -> dict:
    """The residual file's meta data: base car and its parameter vector ``p``, loss horizon [s], network size,
    physics sub-step ``h_max`` [s], filter time constants [s], clip percentile and the validation losses
    (initial, after pretraining, best)."""
    v0, v_pre, v_best = val_losses
    return {"base_car": car, "base_params": ",".join(f"{v:.12g}" for v in p), "horizon_s": f"{horizon_s:g}",
            "hidden": str(hidden), "layers": str(layers), "h_max": f"{h_max:g}",
            "taus": ",".join(f"{v:.6g}" for v in taus_fit),
            "clip_percentile": "none" if clip_percentile is None else f"{clip_percentile:g}",
            "val_loss_initial": f"{v0:.6g}", "val_loss_pretrained": f"{v_pre:.6g}", "val_loss_best": f"{v_best:.6g}"}


def _trained_weights(net, best_params, norm: _Norm, dt_nom: float, taus_fit: np.ndarray, products: bool,
                     meta: dict) -> ResidualWeights:
    """The network's flat :class:`ResidualWeights`, with the best parameters ``best_params`` (None: the current
    ones) copied in first; ``dt_nom`` [s] the log period, ``taus_fit`` [s] the filter time constants."""
    import torch

    if best_params is not None:
        with torch.no_grad():
            for q, b in zip(net.parameters(), best_params):
                q.copy_(b)
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    return ResidualWeights(
        weights=[m.weight.detach().numpy().copy() for m in lin], biases=[m.bias.detach().numpy().copy() for m in lin],
        in_mean=norm.in_mean, in_std=norm.in_std, out_mean=norm.out_mean, out_std=norm.out_std, dt=dt_nom,
        taus=taus_fit, products=products, in_lo=norm.in_lo, in_hi=norm.in_hi, meta=meta)


@dataclass
class GatedResidual:
    """Outcome of :func:`train_gated`: the residual (None when not kept), why, and the validation table."""

    weights: ResidualWeights | None
    kept: bool
    forced: bool
    reason: str
    validation: object  # EvalResult on the held-out time block
    train: ResidualTrainResult
    worse: list

    def to_dict(self) -> dict:
        return {"kept": self.kept, "forced": self.forced, "reason": self.reason, "worse_channels": self.worse,
                "validation": self.validation.to_dict(), "seconds": round(self.train.seconds, 2),
                "best_epoch": self.train.best_epoch, "epochs_run": len(self.train.val_loss),
                **{k: (float(v) if np.isscalar(v) else [float(x) for x in v]) for k, v in self.train.info.items()}}


def train_gated(data: ro.Data, params: VehicleParams, pedal_theta=None, val_fraction: float = 0.2,
                force: bool = False, horizons_s=(0.5, 1.0), patience: int = 8, **train_options) -> GatedResidual:
    """Train the residual on the first ``1 - val_fraction`` of the data in time (its own early stopping on
    validation blocks inside that part, ``patience`` epochs) and keep it only when it lowers the RMSE of *every*
    channel (v_x, v_y, r) at every horizon of ``horizons_s`` on the last ``val_fraction`` (a time block it never
    saw), or when ``force`` (then ``reason`` says what it makes worse)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    tr_data, va_data = data.split(1.0 - val_fraction)
    tr = train_residual(tr_data, params, pedal_theta=pedal_theta, patience=patience, **train_options)
    ev = evaluate(va_data, params, tr.weights, horizons_s=horizons_s, pedal_theta=pedal_theta, pos_horizon_s=None,
                  baselines=True)
    worse = [f"{k}@{h}" for h in ev.horizons for k in ("vx", "vy", "yaw_rate")
             if ev.rmse["semi-parametric"][h][k] >= ev.rmse["parametric"][h][k]]
    if not worse:
        return GatedResidual(tr.weights, True, False, "lowers the validation RMSE of every channel", ev, tr, worse)
    if force:
        return GatedResidual(tr.weights, True, True, f"forced: worse than the parametric model on the validation "
                             f"block at {', '.join(worse)}", ev, tr, worse)
    return GatedResidual(None, False, False, f"not kept: worse than the parametric model on the validation block "
                         f"at {', '.join(worse)}", ev, tr, worse)


def torch_residual(weights: ResidualWeights):
    """A torch function ``g(x[..., 7], u[..., 2], fp[..., 7], z[..., n_aug]) -> [..., 3]`` equal to the numpy/numba one."""
    import torch

    Ws = [torch.from_numpy(W) for W in weights.weights]
    bs = [torch.from_numpy(b) for b in weights.biases]
    im, isd = torch.from_numpy(weights.in_mean), torch.from_numpy(weights.in_std)
    om, osd = torch.from_numpy(weights.out_mean), torch.from_numpy(weights.out_std)

    n_aug, products = weights.n_aug, weights.products
    lo = torch.from_numpy(weights.in_lo) if weights.clipped else None
    hi = torch.from_numpy(weights.in_hi) if weights.clipped else None

    def g(x, u, fp, z=None):
        parts = [x[..., 3:7], u[..., 0:2], fp[..., 3:6]]
        if n_aug:
            parts.append(z[..., :n_aug])
            if products:
                ay = fp[..., 4:5] + x[..., 3:4] * x[..., 5:6]
                for q in range(n_aug):
                    parts += [z[..., q:q + 1] * ay, z[..., q:q + 1] * fp[..., 5:6]]
        f = torch.cat(parts, dim=-1)
        if lo is not None:
            f = torch.clamp(f, lo, hi)
        h = (f - im) / isd
        for W, b in zip(Ws[:-1], bs[:-1]):
            h = torch.tanh(h @ W.T + b)
        return (h @ Ws[-1].T + bs[-1]) * osd + om

    return g
