"""One race of a sweep or tune: a ``racing race`` command line, run in-process, reduced to one table row.

A race is a flat dict (:meth:`racing.sweep.spec.Spec.sweep_trials`): track, car, seed, the plant perturbations
(friction, mass, delay, noise, plant), controller settings (dotted keys) and the shared race fields. A trial
writes it as a :class:`racing.assembly.RaceSpec` and runs it through the one race assembly (:func:`racing.assembly.build`)
that ``racing race`` uses, so the row's ``command`` (the spec's own command line) re-runs it alone, exactly (with
the controller settings in a YAML file written beside the table, named by the hash of its content).
"""
from __future__ import annotations

import hashlib
import math
import shlex
import time
from pathlib import Path

import numpy as np
import yaml

from racing import config as cfg
from racing.assembly import RaceSpec, build
from racing.control.base import controller_settings
from racing.models.params import load_params
from racing.sweep.settings import nest

#: the columns of a race row, in table order (then the settings, by dotted key)
ROW_COLUMNS = ("trial", "track", "car", "seed", "friction", "mass", "delay", "noise", "plant", "start_speed",
               "laps_run", "status", "outcome", "lap_times_s", "best_lap_s", "reference_lap_s", "gap_pct", "off_track",
               "spins", "deadline_misses", "compute_over_period", "compute_p50_ms", "compute_p99_ms", "sim_time_s",
               "wall_s", "controller", "controller_config", "command")


def settings_yaml(race: dict) -> str | None:
    """The full controller settings of ``race`` (its base with its ``settings``) as YAML text that
    ``--controller-config`` reads; None when the race changes no setting (the base file or default is used)."""
    if not race.get("settings"):
        return None
    conf, _ = controller_settings(race["controller"], load_params(race["car"]), race.get("controller_config"),
                                  nest(race["settings"]))
    head = "# written by racing sweep/tune: " + ", ".join(f"{k} = {v!r}" for k, v in sorted(race["settings"].items()))
    return head + "\n" + yaml.safe_dump(cfg.to_dict(conf), sort_keys=False)


def config_file(race: dict, configs_dir) -> str | None:
    """Write the race's controller settings into ``configs_dir/<controller>_<sha1>.yaml`` (named by content, so a
    driver and a worker write the same file) and return its path; the base config (or None) without settings."""
    text = settings_yaml(race)
    if text is None:
        return race.get("controller_config")
    d = Path(configs_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{race['controller']}_{hashlib.sha1(text.encode()).hexdigest()[:10]}.yaml"
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(path.name + f".tmp{id(text)}")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)


def race_spec(race: dict, config_path: str | None) -> RaceSpec:
    """The :class:`RaceSpec` of ``race`` (``config_path``: its controller settings file)."""
    return RaceSpec(track=str(race["track_source"]), car=str(race["car"]), controller=race["controller"],
                    laps=race["laps"], rate_hz=race["rate_hz"], seed=race["seed"], plant=str(race["plant"]),
                    threads=race["threads"], device=race.get("device", "cpu"), friction_scale=race["friction"], mass_scale=race["mass"],
                    delay_s=race["delay"], noise=race["noise"], start_speed=race["start_speed"],
                    max_time_s=race.get("max_time_s"), realtime=bool(race.get("realtime")),
                    controller_config=config_path, allow_bad_geometry=bool(race.get("allow_bad_geometry")))


def race_argv(race: dict, config_path: str | None) -> list[str]:
    """The ``racing race`` options of ``race`` (``config_path``: its controller settings file)."""
    return race_spec(race, config_path).argv()


def race_command(race: dict, config_path: str | None) -> str:
    """The shell command that re-runs ``race`` alone (writing the usual outputs under ``runs/``)."""
    return "racing race " + shlex.join(race_argv(race, config_path))


def count_spins(result, beta_max: float, v_min: float = 5.0) -> int:
    """Excursions of the sideslip |atan2(v_y, v_x)| beyond ``beta_max`` [rad] while v_x > ``v_min`` [m/s]."""
    st = result.state
    if st.shape[0] == 0:
        return 0
    beta = np.abs(np.arctan2(st[:, 4], np.maximum(st[:, 3], 1e-6)))
    over = (beta > beta_max) & (st[:, 3] > v_min)
    return int(np.count_nonzero(over[1:] & ~over[:-1]) + int(over[0]))


def run_race(race: dict, configs_dir, spin_beta: float = 0.3) -> dict:
    """Run one race and return its row (:data:`ROW_COLUMNS` and the settings). A race that fails (off track,
    timeout, diverged) is a row with that status, never an exception; bad input raises as ``racing race`` does."""
    path = config_file(race, configs_dir)
    t0 = time.perf_counter()
    result = build(race_spec(race, path)).run()
    summary = result.summary()
    wall = time.perf_counter() - t0
    gap = summary.get("gap_to_reference")
    cm = summary["compute_ms"]
    completed = result.status in ("completed", "completed_with_incidents")
    row = {"trial": race["trial"], "track": race["track"], "car": race["car"], "seed": race["seed"],
           **{k: race[k] for k in ("friction", "mass", "delay", "noise", "plant", "start_speed")},
           "laps_run": race["laps"], "status": result.status, "outcome": result.outcome,
           "lap_times_s": " ".join(f"{t:.3f}" for t in result.laps),
           "best_lap_s": _round(result.best_lap_s, 4), "reference_lap_s": _round(result.reference_lap_s, 4),
           "gap_pct": _round(100.0 * gap, 3) if (gap is not None and completed) else None,
           "off_track": result.off_track, "spins": count_spins(result, spin_beta),
           "deadline_misses": result.deadline_misses, "compute_over_period": result.compute_over_period,
           "compute_p50_ms": _round(cm["p50"], 3), "compute_p99_ms": _round(cm["p99"], 3),
           "sim_time_s": _round(summary["sim_time_s"], 3), "wall_s": round(wall, 2),
           "controller": race["controller"], "controller_config": path or "",
           "command": race_command(race, path)}
    row.update(race.get("settings", {}))
    return row


def score(rows: list[dict], objective) -> dict:
    """The robust objective of one tune trial over its race rows (:class:`racing.sweep.spec.Objective`):
    ``objective`` (lower is better), ``mean_gap_pct`` / ``std_gap_pct`` of the race scores (a race's gap to the
    reference [%], or ``fail_penalty`` when it did not complete), ``off_track``, ``spins`` and ``failed`` (counts
    over the races), ``max_gap_pct``."""
    lost = [r["track"] for r in rows if r["outcome"] != "failed" and r["reference_lap_s"] is None]
    if lost:  # the spec was checked with a reference on every track: the cache changed under the run
        raise RuntimeError(f"no minimum-time reference for {rows[0]['car']} on {', '.join(lost)} any more (the "
                           f"raceline cache changed during the run, e.g. recomputed for other car parameters); "
                           f"a trial without its reference has no objective")
    scores = np.array([r["gap_pct"] if r["outcome"] != "failed" else objective.fail_penalty for r in rows],
                      dtype=float)
    off = int(sum(r["off_track"] for r in rows))
    spins = int(sum(r["spins"] for r in rows))
    failed = int(sum(r["outcome"] == "failed" for r in rows))
    mean, std = float(scores.mean()), float(scores.std())
    return {"objective": round(mean + objective.k_std * std + objective.off_track_penalty * (off + spins), 4),
            "mean_gap_pct": round(mean, 4), "std_gap_pct": round(std, 4), "max_gap_pct": round(float(scores.max()), 4),
            "off_track": off, "spins": spins, "failed": failed}


def _round(v, nd):
    return None if v is None or not math.isfinite(v) else round(float(v), nd)


__all__ = ["ROW_COLUMNS", "config_file", "count_spins", "race_argv", "race_command", "race_spec", "run_race", "score",
           "settings_yaml"]
