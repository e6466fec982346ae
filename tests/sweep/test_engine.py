"""``racing sweep`` and ``racing tune`` on a local Ray instance (the ``sweep`` extra): a 2-trial sweep and a 3-trial
tune of pure pursuit on the short lab_loop, 1 lap each; the tables, the plot and the exported YAML."""
from __future__ import annotations

import json
import sys
import textwrap

import pytest

from racing.cli import main
from racing.sweep.table import read_table

pytest.importorskip("ray.tune")
pytest.importorskip("optuna")

SPEC = """
controller: pure_pursuit
tracks: [lab_loop]
cars: [f1tenth]
seeds: [0]
laps: 1
"""


def test_sweep_two_trials(tmp_path, capsys):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(textwrap.dedent(SPEC + "perturbations:\n  friction: [0.95, 1.0]\n"))
    out = tmp_path / "out"
    rc = main(["sweep", str(spec), "--workers", "1", "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["finished"] == 2 and summary["clean"] == 2 and summary["errors"] == 0
    rows = read_table(out / "sweep.csv")
    assert [r["friction"] for r in rows] == [0.95, 1.0] and [r["trial"] for r in rows] == [0, 1]
    assert all(r["status"] == "completed" and r["off_track"] == 0 and r["gap_pct"] > 0 for r in rows)
    assert rows[0]["command"].startswith("racing race --track lab_loop --car f1tenth --controller pure_pursuit")
    assert "--friction-scale 0.95" in rows[0]["command"]
    assert (out / "sweep.png").stat().st_size > 0
    try:
        import pyarrow.parquet as pq
    except ImportError:  # the CSV needs nothing more
        assert not (out / "sweep.parquet").exists()
    else:
        assert pq.read_table(out / "sweep.parquet").column("friction").to_pylist() == [0.95, 1.0]
    # the same command again resumes the finished experiment instead of racing again
    assert main(["sweep", str(spec), "--workers", "1", "--out", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["resumed"] and again["finished"] == 2
    assert read_table(out / "sweep.csv") == rows


def test_tune_three_trials_exports_a_loadable_config(tmp_path, capsys):
    spec = tmp_path / "tune.yaml"
    spec.write_text(SPEC + textwrap.dedent("""
        trials: 3
        searcher: optuna
        perturbations:
          friction: {low: 0.95, high: 1.0}
        scenarios: 1
        settings:
          grip_scale: {low: 0.7, high: 0.85}
          speed_scale: [1.0, 1.05]
        """))
    out = tmp_path / "out"
    rc = main(["tune", str(spec), "--workers", "1", "--out", str(out), "--json"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] == 3 and summary["errors"] == 0
    trials = read_table(out / "trials.csv")
    races = read_table(out / "races.csv")
    assert len(trials) == 3 and len(races) == 3
    assert trials[0]["grip_scale"] == 0.75 and trials[0]["speed_scale"] == 1.0   # the base settings first
    assert summary["base_objective"] == trials[0]["objective"]
    assert all(0.7 <= t["grip_scale"] <= 0.85 and t["speed_scale"] in (1.0, 1.05) for t in trials)
    assert all(t["objective"] >= t["mean_gap_pct"] for t in trials)
    assert (out / "tune.png").stat().st_size > 0
    best = min(trials, key=lambda t: t["objective"])
    assert summary["best"]["objective"] == best["objective"]
    from racing import config as cfg
    from racing.control.pure_pursuit import PurePursuitConfig

    conf = cfg.load(PurePursuitConfig, out / "best.yaml")
    assert conf.grip_scale == pytest.approx(best["grip_scale"]) and conf.speed_scale == best["speed_scale"]
    assert main(["race", "--controller", "pure_pursuit", "--controller-config", str(out / "best.yaml"),
                 "--laps", "1", "--no-save", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"


def test_without_ray_the_commands_say_how_to_install_it(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'racing[sweep]'" in capsys.readouterr().err
