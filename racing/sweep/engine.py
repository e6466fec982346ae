"""Running sweeps and tunes on Ray (Ray Tune; Optuna's TPE for the Bayesian search).

Local by default: Ray starts on this machine with ``workers x threads`` CPUs (each trial asks for ``threads`` CPUs,
so ``workers`` trials run at once); ``address="ray://host:10001"`` (or ``"auto"``) joins a cluster, whose nodes
need the package installed (``pip install 'racing[sweep]'``), the same track files at the same paths and the
cached references. Ray Tune keeps the experiment under ``<out>/ray/<name>``; a run interrupted there resumes where
it stopped (finished trials are kept, unfinished ones rerun).

Ray is imported here only (the ``sweep`` extra); :func:`require_ray` turns its absence into the extra's name.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from racing.config import ConfigError
from racing.control.base import controller_settings
from racing.models.params import load_params
from racing.raceline.cache import ENV_CACHE
from racing.sweep.result import SweepResult, TuneResult
from racing.sweep.settings import get_dotted
from racing.sweep.spec import spec_fingerprint
from racing.sweep.trial import config_file, run_race, score
from racing.track.catalog import ENV_SHARED


def require_ray():
    """Import ray and ray.tune; a ModuleNotFoundError naming ``ray`` (the CLI turns it into
    ``pip install 'racing[sweep]'``) when absent."""
    import ray  # noqa: F401
    import ray.tune  # noqa: F401

    return ray


def start_ray(workers: int | None, threads: int, address: str | None):
    """Connect to a cluster at ``address`` or start Ray on this machine with ``workers * threads`` CPUs (default:
    every core). Returns the CPUs Ray has."""
    import logging

    import ray

    if ray.is_initialized():
        ray.shutdown()
    # the trials see this checkout, and the same reference cache and shared-track folder as the driver
    env_vars = {"PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[2]),
                                                          os.environ.get("PYTHONPATH", "")] if p)}
    env_vars.update({k: os.environ[k] for k in (ENV_CACHE, ENV_SHARED) if os.environ.get(k)})
    env = {"env_vars": env_vars}
    if address:
        ray.init(address=address, runtime_env=env, logging_level=logging.ERROR, log_to_driver=False)
    else:
        cpus = (workers or max(1, (os.cpu_count() or 1) // threads)) * threads
        ray.init(num_cpus=cpus, include_dashboard=False, runtime_env=env, logging_level=logging.ERROR,
                 log_to_driver=False)
    return int(ray.cluster_resources().get("CPU", 0))


# ------------------------------------------------------------------------------------------------------------
# trainables (run in Ray's worker processes)
def sweep_trainable(config, configs_dir: str, spin_beta: float):
    """One sweep trial: ``config["race"]`` -> reports ``row`` (JSON) and the headline numbers."""
    from ray import tune


    row = run_race(config["race"], configs_dir, spin_beta)
    tune.report({"row": json.dumps(row), "gap_pct": _nan(row["gap_pct"]), "best_lap_s": _nan(row["best_lap_s"]),
                 "off_track": row["off_track"], "status": row["status"]})


def tune_trainable(config, races: list, configs_dir: str, objective):
    """One tune trial: the searcher's settings (``config``: dotted key -> value) raced on every race of the
    evaluation set, in order; reports the objective and the race rows (JSON)."""
    from ray import tune


    settings = {k: (float(v) if isinstance(v, float) else v) for k, v in config.items()}
    rows = []
    for race in races:
        rows.append(run_race({**race, "settings": settings}, configs_dir, objective.spin_beta))
    s = score(rows, objective)
    tune.report({**s, "rows": json.dumps(rows)})


def _nan(v):
    return math.nan if v is None else v


# ------------------------------------------------------------------------------------------------------------
class _Progress:
    """A Ray Tune callback printing one line per finished trial (the driver's stderr, flushed)."""

    def __new__(cls, total: int, describe, stream=None):
        from ray.tune import Callback

        class Progress(Callback):
            def __init__(self):
                self.done, self.t0 = 0, None

            def setup(self, **info):  # also after a restore: time this session, count what finished before
                self.done, self.t0 = 0, time.perf_counter()

            def on_trial_complete(self, iteration, trials, trial, **info):
                finished = sum(t.status == "TERMINATED" for t in trials if t is not trial) + 1
                self.done = max(self.done + 1, finished)
                el = time.perf_counter() - (self.t0 or time.perf_counter())
                print(f"[{self.done}/{total} {el / 60:.1f} min] {describe(trial.last_result or {})}",
                      file=stream or sys.stderr, flush=True)

            def on_trial_error(self, iteration, trials, trial, **info):
                self.done += 1
                print(f"[{self.done}/{total}] trial {trial.trial_id} raised an error (see {trial.local_path})",
                      file=stream or sys.stderr, flush=True)

        return Progress()


def check_run_folder(out: Path, fingerprint: str, restart: bool) -> bool:
    """Prepare ``out`` for a run of the spec with ``fingerprint``; True when an interrupted run of the same spec
    is there to resume. A folder holding another spec's run is an error (unless ``restart``)."""
    marker = out / "spec_fingerprint.txt"
    if restart and (out / "ray").exists():
        import shutil

        shutil.rmtree(out / "ray")
    if marker.is_file() and not restart:
        old = marker.read_text().strip()
        if old != fingerprint:
            raise ConfigError(f"{out}: holds a run of another spec (fingerprint {old}, this spec {fingerprint}); "
                              f"choose another --out or pass --restart to discard it")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(fingerprint + "\n")
    return (out / "ray").is_dir() and not restart


def _tuner(trainable, name: str, out: Path, resume: bool, param_space, tune_config, callbacks):
    from ray import tune

    path = out.resolve() / "ray" / name
    if resume and tune.Tuner.can_restore(str(path)):
        return tune.Tuner.restore(str(path), trainable=trainable, resume_errored=True, param_space=param_space), True
    run_config = tune.RunConfig(storage_path=str(out.resolve() / "ray"), name=name, verbose=0, callbacks=callbacks,
                                failure_config=tune.FailureConfig(max_failures=0))
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config), False


def run_sweep(spec, out: Path, workers: int | None = None, address: str | None = None, restart: bool = False,
              stream=None):
    """Run every trial of a sweep spec on Ray; returns a :class:`racing.sweep.result.SweepResult` (rows in trial
    order; a trial that raised is missing from them and counted in ``errors``)."""
    from ray import tune


    trials = spec.sweep_trials()
    resume = check_run_folder(out, spec_fingerprint(spec), restart)
    t_ray = time.perf_counter()
    cpus = start_ray(workers, spec.threads, address)
    ray_start = time.perf_counter() - t_ray
    configs_dir = str(out.resolve() / "configs")
    trainable = tune.with_resources(tune.with_parameters(sweep_trainable, configs_dir=configs_dir, spin_beta=0.3),
                                    spec.resources())

    def describe(res):
        row = json.loads(res["row"]) if "row" in res else {}
        if not row:
            return "no result"
        gap = "-" if row["gap_pct"] is None else f"{row['gap_pct']:+.2f} %"
        return (f"trial {row['trial']}: {row['track']} {row['car']} seed {row['seed']}: {row['status']}, best lap "
                f"{row['best_lap_s']} s, gap {gap}, off-track {row['off_track']} ({row['wall_s']:.0f} s)\n    "
                f"{row['command']}")

    cb = _Progress(len(trials), describe, stream)
    tc = tune.TuneConfig(num_samples=1, max_concurrent_trials=workers or None, reuse_actors=True)
    tuner, resumed = _tuner(trainable, "sweep", out, resume, {"race": tune.grid_search(trials)}, tc, [cb])
    t0 = time.perf_counter()
    grid = _fit(tuner)
    wall = time.perf_counter() - t0
    rows, errors = [], 0
    for r in grid:
        if r.metrics and "row" in r.metrics:
            rows.append(json.loads(r.metrics["row"]))
        elif r.error is not None and not _interrupted(r.error):
            errors += 1
    rows.sort(key=lambda r: r["trial"])
    _write_configs([(t, t["settings"]) for t in trials if t["settings"]], configs_dir)
    _shutdown()
    return SweepResult(rows=rows, planned=len(trials), errors=errors, resumed=resumed, wall_s=wall, cpus=cpus,
                       settings=tuple(spec.settings), ray_start_s=ray_start,
                       concurrency=max(1, min(workers or cpus, cpus // spec.threads)))


def search_space(spec):
    """Ray Tune's search space of the spec's settings: uniform / log-uniform ranges, categorical lists."""
    from ray import tune

    space = {}
    for k, a in spec.settings.items():
        if a.is_range:
            space[k] = tune.loguniform(a.low, a.high) if a.log else tune.uniform(a.low, a.high)
        else:
            space[k] = tune.choice(list(a.values))
    return space


def base_point(spec) -> dict:
    """The base settings' values of the searched keys (the first point evaluated with ``start_from_base``)."""
    conf, _ = controller_settings(spec.controller, load_params(spec.cars[0]), spec.controller_config)
    return {k: get_dotted(conf, k) for k in spec.settings}


def run_tune(spec, out: Path, workers: int | None = None, address: str | None = None, restart: bool = False,
             stream=None):
    """Search the spec's settings for the lowest objective on Ray Tune (Optuna TPE, or random search); returns a
    :class:`racing.sweep.result.TuneResult`."""
    from ray import tune


    races = spec.tune_races()
    resume = check_run_folder(out, spec_fingerprint(spec), restart)
    cpus = start_ray(workers, spec.threads, address)
    configs_dir = str(out.resolve() / "configs")
    trainable = tune.with_resources(tune.with_parameters(tune_trainable, races=races, configs_dir=configs_dir,
                                                         objective=spec.objective), spec.resources())
    space = search_space(spec)
    points = [base_point(spec)] if spec.start_from_base else []
    if spec.searcher == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        searcher = OptunaSearch(points_to_evaluate=points or None, seed=spec.search_seed)
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        searcher = BasicVariantGenerator(points_to_evaluate=points or None, random_state=spec.search_seed)
    if workers and spec.searcher == "optuna":
        from ray.tune.search import ConcurrencyLimiter

        searcher = ConcurrencyLimiter(searcher, max_concurrent=workers)

    def describe(res):
        if "objective" not in res:
            return "no result"
        keys = ", ".join(f"{k} {res['config'][k]:.4g}" if isinstance(res['config'][k], float)
                         else f"{k} {res['config'][k]}" for k in spec.settings) if "config" in res else ""
        return (f"objective {res['objective']:.3f}: mean gap {res['mean_gap_pct']:+.2f} %, std "
                f"{res['std_gap_pct']:.2f}, off-track {res['off_track']}, spins {res['spins']}, failed "
                f"{res['failed']}  [{keys}]")

    cb = _Progress(spec.trials, describe, stream)
    tc = tune.TuneConfig(metric="objective", mode="min", search_alg=searcher, num_samples=spec.trials,
                         max_concurrent_trials=workers or None, reuse_actors=True)
    tuner, resumed = _tuner(trainable, "tune", out, resume, space, tc, [cb])
    t0 = time.perf_counter()
    grid = _fit(tuner)
    wall = time.perf_counter() - t0
    trial_rows, race_rows, errors = [], [], 0
    for r in grid:
        m = r.metrics or {}
        if "objective" not in m:
            errors += int(r.error is not None and not _interrupted(r.error))
            continue
        rows = json.loads(m["rows"])
        trial_rows.append({"trial_id": r.metrics.get("trial_id"), **{k: r.config[k] for k in spec.settings},
                           **{k: m[k] for k in ("objective", "mean_gap_pct", "std_gap_pct", "max_gap_pct",
                                                "off_track", "spins", "failed")},
                           "wall_s": round(sum(x["wall_s"] for x in rows), 1),
                           "finished": m.get("timestamp"), "controller_config": rows[0]["controller_config"]})
        race_rows += [{"trial_id": trial_rows[-1]["trial_id"], **x} for x in rows]
    trial_rows.sort(key=lambda t: t["finished"] or 0)
    _write_configs([(races[0], {k: t[k] for k in spec.settings}) for t in trial_rows], configs_dir)
    for i, t in enumerate(trial_rows):
        t["trial"] = i
    order = {t["trial_id"]: t["trial"] for t in trial_rows}
    for x in race_rows:
        x["trial"] = order[x["trial_id"]]
    race_rows.sort(key=lambda x: (x["trial"], x["track"]))
    _shutdown()
    return TuneResult(trials=trial_rows, races=race_rows, planned=spec.trials, settings=tuple(spec.settings),
                      errors=errors, resumed=resumed, wall_s=wall, cpus=cpus,
                      base_point=base_point(spec) if spec.start_from_base else {})


def _write_configs(pairs, configs_dir):
    """Write the settings files the rows name on this (the driver's) machine too: on a cluster the workers wrote
    theirs elsewhere. Named by content, so the paths agree."""
    for race, settings in pairs:
        config_file({**race, "settings": settings}, configs_dir)


def _interrupted(error) -> bool:
    """Whether a trial's error is the interruption of the run (Ctrl-C), not a failure of the trial."""
    text = f"{type(error).__name__}: {error}"
    return "KeyboardInterrupt" in text or "TaskCancelled" in text or "ActorDied" in text


def _fit(tuner):
    """``tuner.fit()`` with whatever Ray prints (its experiment banner, reporters) sent to stderr: stdout is the
    command's own (one JSON object with ``--json``)."""
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):
        return tuner.fit()


def _shutdown():
    import ray

    if ray.is_initialized():
        ray.shutdown()


__all__ = ["base_point", "check_run_folder", "require_ray", "run_sweep", "run_tune", "search_space", "start_ray"]
