"""One sweep race: the row, and the printed ``racing race`` command that re-runs it alone (no Ray needed)."""
from __future__ import annotations

import json
import shlex
import textwrap

import pytest

from racing.cli import main
from racing.sweep.spec import Objective, load_sweep_spec
from racing.sweep.table import read_table, write_table
from racing.sweep.trial import ROW_COLUMNS, run_race, score


def test_row_and_command_rerun_the_same_race(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(textwrap.dedent("""
        controller: pure_pursuit
        tracks: [lab_loop]
        cars: [f1tenth]
        seeds: [4]
        laps: 1
        perturbations: {friction: [0.95], delay: [0.02], noise: [0.5], mass: [1.1]}
        settings: {grip_scale: [0.8]}
        """))
    (race,) = load_sweep_spec(spec).sweep_trials()
    row = run_race(race, tmp_path / "configs")
    assert set(ROW_COLUMNS) <= set(row) and row["grip_scale"] == 0.8
    assert row["status"] == "completed" and row["off_track"] == 0 and row["gap_pct"] > 0
    assert (row["friction"], row["delay"], row["noise"], row["mass"], row["seed"]) == (0.95, 0.02, 0.5, 1.1, 4)
    assert "grip_scale: 0.8" in open(row["controller_config"]).read()
    argv = shlex.split(row["command"])
    assert argv[:2] == ["racing", "race"]
    assert main(argv[1:] + ["--no-save", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best_lap_s"] == pytest.approx(row["best_lap_s"], abs=1e-3)
    assert 100 * summary["gap_to_reference"] == pytest.approx(row["gap_pct"], abs=1e-2)


def test_score_penalises_failures_and_incidents():
    obj = Objective(k_std=1.0, off_track_penalty=20.0, fail_penalty=100.0)
    rows = [{"gap_pct": 10.0, "outcome": "clean", "off_track": 0, "spins": 0, "reference_lap_s": 50.0},
            {"gap_pct": 14.0, "outcome": "incidents", "off_track": 1, "spins": 0, "reference_lap_s": 50.0}]
    s = score(rows, obj)
    assert s["mean_gap_pct"] == 12.0 and s["std_gap_pct"] == 2.0 and s["objective"] == 12.0 + 2.0 + 20.0
    s = score(rows + [{"gap_pct": None, "outcome": "failed", "off_track": 1, "spins": 1, "reference_lap_s": 50.0}],
              obj)
    assert s["failed"] == 1 and s["max_gap_pct"] == 100.0 and s["objective"] > 60
    lost = {"gap_pct": None, "outcome": "clean", "off_track": 0, "spins": 0, "reference_lap_s": None,
            "track": "Monza", "car": "gt_car"}
    with pytest.raises(RuntimeError, match=r"no minimum-time reference for gt_car on Monza any more"):
        score([{**lost}], obj)


def test_table_csv_without_parquet_round_trips(tmp_path):
    rows = [{"trial": 0, "track": "lab_loop", "gap_pct": 1.5, "note": None}, {"trial": 1, "track": "x", "extra": 2}]
    (f,) = write_table(rows, tmp_path / "t.csv", first=("track",), parquet=False)
    back = read_table(f)
    assert list(back[0]) == ["track", "trial", "gap_pct", "note", "extra"]
    assert back[0]["gap_pct"] == 1.5 and back[0]["note"] is None and back[1]["extra"] == 2
