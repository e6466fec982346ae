"""The iterative learning loop in simulation: race, log, fit, race again with the fitted model.

The plant's parameters (``plant_params``) are unknown to the controller, which starts from
``start_params`` (e.g. the nominal car 20-30% off). Iteration i:

1. build the controller (MPPI by default) with the current model parameters and race ``laps``
   laps on ``track`` with sensor noise (:func:`racing.sim.simulator.simulate`);
2. log what the sensors saw (measured states + commands) and measure the current model's
   open-loop prediction error (1 s RMSE of v_y and yaw rate) on that fresh log;
3. fit the parameters to all logs so far (:func:`racing.sysid.parametric.fit`, weak prior
   around the current values, with its identification checks: what the logs do not excite or pin keeps its
   current value, and the fit's grip margin comes with the car) and use them in iteration i + 1.

The result holds per-iteration lap times, off-track counts, prediction errors and parameters.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from racing.assembly import RaceSpec, build, build_controller, resolve_track
from racing.logs import DriveLog
from racing.models.params import VehicleParams
from racing.sim.plant import make_plant, own_car
from racing.sim.simulator import NoiseConfig
from racing.sysid import rollout as ro
from racing.sysid.evaluate import evaluate
from racing.sysid.excite import DEFAULT_NOISE, ExcitationDriver, drive_session, excitation_for
from racing.sysid.parametric import DEFAULT_FIT, fit


@dataclass
class LearnIteration:
    iteration: int
    params: dict
    best_lap_s: float | None
    laps: list
    off_track: int
    status: str
    rmse_vy_1s: float | None
    rmse_r_1s: float | None
    fit_seconds: float
    grip_margin: float = 0.0


@dataclass
class LearnResult:
    """iterations: list of LearnIteration (iteration 0 = start parameters); final_params: VehicleParams."""

    iterations: list
    final_params: VehicleParams
    controller: str
    track: str
    fitted_names: tuple
    true_params: dict = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"{'iter':>4}{'best lap [s]':>14}{'off':>5}{'status':>11}{'vy RMSE 1s':>12}{'r RMSE 1s':>11}"
                 f"{'margin':>8}" + "".join(f"{n:>11}" for n in self.fitted_names)]
        for it in self.iterations:
            bl = f"{it.best_lap_s:.3f}" if it.best_lap_s is not None else "-"
            vy = f"{it.rmse_vy_1s:.4f}" if it.rmse_vy_1s is not None else "-"
            r = f"{it.rmse_r_1s:.4f}" if it.rmse_r_1s is not None else "-"
            lines.append(f"{it.iteration:>4}{bl:>14}{it.off_track:>5}{it.status:>11}{vy:>12}{r:>11}"
                         f"{100 * it.grip_margin:>7.1f}%" + "".join(f"{it.params[n]:>11.4g}" for n in self.fitted_names))
        if self.true_params:
            lines.append(f"{'true':>4}{'':>14}{'':>5}{'':>11}{'':>12}{'':>11}{'':>8}"
                         + "".join(f"{self.true_params[n]:>11.4g}" for n in self.fitted_names))
        return "\n".join(lines)

    def improvement(self) -> float | None:
        """Relative best-lap improvement of the last iteration over the first (0.03 = 3% faster)."""
        a, b = self.iterations[0].best_lap_s, self.iterations[-1].best_lap_s
        if a is None or b is None:
            return None
        return 1.0 - b / a

    def to_dict(self) -> dict:
        return {"controller": self.controller, "track": self.track, "improvement": self.improvement(),
                "iterations": [it.__dict__ for it in self.iterations], "true_params": self.true_params}


def sim_log(result) -> DriveLog:
    """A SimResult as the log the car's sensors would have written (measured states, commands)."""
    return DriveLog(result.t, result.measured, result.command, meta={"source": "racing learn"},
                    source="<learn iteration>")


def learn(track, plant_params: VehicleParams | None, start_params: VehicleParams, iterations: int = 3,
          controller: str = "mppi", controller_config=None, plant: str = "dynamic", laps: int = 2,
          noise: dict | None = None, seed: int = 0, names=None, horizon_s: float = 0.5,
          progress=None, excite_s: float = 0.0, identify: bool = True, **controller_options) -> LearnResult:
    """Run the loop (see module docstring). ``iterations`` fits; iterations + 1 races in all.

    ``excite_s`` > 0: first drive the excitation programme (:func:`racing.sysid.excite.excitation_for` the start
    car) for that long [s] on the plant and fit to it, so that iteration 0 already races a fitted car.
    ``plant_params``: the plant's true parameters (None for a foreign plant that is its own car, e.g.
    ``commonroad:mb``; the table then has no 'true' row). ``identify``: each fit runs its identification checks
    (:func:`racing.sysid.parametric.fit`: a parameter the logs do not excite or pin keeps its current value, and
    the fit's grip margin comes with the car); off, every parameter in ``names`` is fitted as the logs pull it
    (on CommonRoad MB that put the rear tyre's peak at its bound, D_r = 5, after one race)."""
    track = resolve_track(track)
    names = tuple(names) if names else tuple(n for n in DEFAULT_FIT["dynamic"])
    nz = NoiseConfig(**(DEFAULT_NOISE if noise is None else noise))
    params = start_params

    def new_plant():
        car = plant_params if plant_params is not None else start_params
        pl = make_plant(plant, car)
        return pl, own_car(pl, car) or car

    logs: list[DriveLog] = []
    rows = []
    fit_kw = dict(names=names, horizon_s=horizon_s, h_max=0.01, identify=identify, n_boot=200 if identify else 0)
    if excite_s > 0:
        pl, _ = new_plant()
        cfg_e = excitation_for(start_params)
        x0 = np.zeros(7)
        x0[3] = cfg_e.v_min
        log, _ = drive_session(pl, ExcitationDriver(start_params, cfg_e, seed=seed), excite_s, 50.0,
                               noise=DEFAULT_NOISE if noise is None else noise, seed=seed, x0=x0,
                               meta={"car": start_params.name, "plant": str(plant)})
        logs.append(log)
        fr = fit(ro.prepare(logs), params, name=f"{start_params.name}_excite", **fit_kw)
        params = fr.params
    for it in range(iterations + 1):
        t0 = time.perf_counter()
        ctrl = build_controller(controller, track, params, controller_config, **controller_options)[0]
        res = build(RaceSpec(track=track, car=plant_params if plant_params is not None else start_params,
                             model_params=params, plant=plant, controller=ctrl, laps=laps, noise=nz,
                             seed=seed + it)).run()
        log = sim_log(res)
        vy = r = None
        if log.duration > 1.5:
            try:
                ev = evaluate([log], params, horizons_s=(1.0,))
                vy, r = ev.rmse["parametric"]["1 s"]["vy"], ev.rmse["parametric"]["1 s"]["yaw_rate"]
            except Exception:  # noqa: BLE001 - a too-short run just has no figure
                pass
        row = LearnIteration(it, {n: float(getattr(params, n)) for n in names}, res.best_lap_s, list(res.laps),
                             res.off_track, res.status, vy, r, 0.0, params.grip_margin)
        rows.append(row)
        if progress:
            progress(row)
        if it == iterations:
            break
        if log.duration > 2 * horizon_s:
            logs.append(log)
        if logs:
            fr = fit(ro.prepare(logs), params, name=f"{start_params.name}_learn{it + 1}", **fit_kw)
            params = fr.params
        row.fit_seconds = time.perf_counter() - t0
    return LearnResult(rows, params, controller, track.name, names,
                       true_params={} if plant_params is None else {n: float(getattr(plant_params, n))
                                                                      for n in names})
