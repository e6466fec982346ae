"""The randomised foreign-car bench (``tools/foreign_bench.py``): the seeded draw covers every level of every factor,
and one cell runs end to end (excitation, fit against the truth, race) on a plant the fit does not assume."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pytest

from racing.models.params import load_params

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import foreign_bench as fb  # noqa: E402


def test_the_seeded_draw_holds_every_level_of_every_factor():
    cells = fb.draw_cells(24, seed=0)
    assert len(cells) == 24
    for factor, levels in fb.FACTORS.items():
        counts = [sum(c[factor] == v for c in cells) for v in levels]
        assert min(counts) >= 24 // len(levels), (factor, counts)  # spread evenly
    assert fb.draw_cells(24, seed=0) == cells
    assert fb.draw_cells(24, seed=1) != cells
    for c in cells:
        a = c["actuators"]
        assert (a["dead_time"] > 0.0) == (c["steering"] == "dead_time")
        assert 0.02 <= a["dead_time"] <= 0.06 or a["dead_time"] == 0.0
        assert (a["servo"] == "second_order") == (c["steering"] == "second_order")
        assert (a["speed_ki"] > 0.0) == (c["speed_loop"] == "PI")
        assert a["accel_ff"] == (c["interface"] == "speed_accel")
    grid = fb.draw_cells(0, seed=0, grid=True)
    assert len({tuple(c[k] for k in fb.FACTORS) for c in grid}) == 216


@pytest.mark.slow
def test_a_cell_runs_end_to_end_and_reports_what_the_fit_could_not_know(tmp_path):
    pytest.importorskip("vehiclemodels")
    cell = next(c for c in fb.draw_cells(24, seed=0) if c["model"] == "st" and c["interface"] == "speed_accel")
    plant = fb.plant_of(cell)
    assert plant.params.drive_interface == "speed_accel" and plant.actuators.accel_ff
    args = argparse.Namespace(track="Norisring", controller="pure_pursuit", laps=1, duration=30.0, no_reference=True,
                              out=str(tmp_path), reuse_fits=False, earlier={})
    out = fb.run_cell(cell, args)
    assert load_params(tmp_path / "cars" / f"cell{cell['index']}.yaml").speed_kp == out["fit"]["speed_kp"]
    f, r = out["fit"], out["race"]
    # the log's acceleration field is always 0: it cannot show that the car applies it, so the fitted car says speed
    assert f["drive_interface"] == "speed"
    assert f["steer_structure"] in ("lag", "lag+delay")
    assert math.isfinite(f["I_z_error"]) and math.isfinite(f["K_f_error"]) and f["I_z_se"] >= 0.0
    assert r["status"] in ("completed", "completed_with_incidents", "off_track", "stalled", "timeout", "diverged"), r
    assert (r["off_track"] > 0) == (r["first_off_track_s"] is not None)
    if r["status"] == "completed":
        assert len(r["laps"]) == 1 and r["off_track"] == 0
    assert r["gap_fit"] is None and r["reference_fit_s"] is None  # no reference asked for
    line = fb.row(out)
    assert line.startswith(f"| {cell['index']} | v{cell['vehicle']} ST |") and line.count("|") == fb.HEADER.split("\n")[0].count("|")


def test_reusing_the_fits_races_the_saved_car_with_the_earlier_report(tmp_path, monkeypatch):
    """--reuse-fits: no excitation, no fit; the car raced is the one saved as cars/cell<i>.yaml, the fit's report is
    the earlier run's; a cell without an earlier fit is an error of that cell."""
    cell = fb.draw_cells(24, seed=0)[3]
    (tmp_path / "cars").mkdir()
    saved = load_params("gt_car").replace(name="saved_fit", inertia_z=1234.0)  # dynamic index 0.49: plausible
    saved.to_yaml(tmp_path / "cars" / "cell3.yaml")
    raced = []
    monkeypatch.setattr(fb, "excite", lambda *a: pytest.fail("excited a reused cell"))
    monkeypatch.setattr(fb, "race_report", lambda c, car, a: raced.append(car) or {"status": "completed",
                                                                                  "best_lap_s": 70.0})
    earlier = {3: {**cell, "fit": {"I_z_error": 0.5}}}
    args = argparse.Namespace(track="Norisring", controller="mppi", laps=1, no_reference=True, out=str(tmp_path),
                              reuse_fits=True, earlier=earlier)
    out = fb.run_cell(cell, args)
    assert out["fit"]["I_z_error"] == 0.5 and raced[0].inertia_z == 1234.0 and out["race"]["status"] == "completed"
    assert out["fit"]["implausible"] == []
    saved.replace(inertia_z=4000.0).to_yaml(tmp_path / "cars" / "cell3.yaml")  # 1.59: flagged
    assert fb.run_cell(cell, args)["fit"]["implausible"] == ["inertia_z"]
    assert "no earlier fit" in fb.run_cell(fb.draw_cells(24, seed=0)[4], args)["error"]
