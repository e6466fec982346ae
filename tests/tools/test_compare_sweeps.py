"""tools/compare_sweeps.py: two sweep tables race by race."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load():
    spec = importlib.util.spec_from_file_location("compare_sweeps", ROOT / "tools" / "compare_sweeps.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def row(track, gap, off=0, outcome="clean", friction=1.0):
    return {"track": track, "car": "gt_car", "seed": 0, "friction": friction, "mass": 1.0, "delay": 0.0,
            "noise": 0.0, "plant": "dynamic", "laps_run": 2, "best_lap_s": 50.0 * (1 + gap / 100), "gap_pct": gap,
            "off_track": off, "outcome": outcome, "status": "completed"}


def test_matches_rows_and_reports_the_change_of_the_mean_gap():
    text = load().compare([row("Monza", 10.0), row("Norisring", 12.0)],
                          [row("Norisring", 8.0, off=1), row("Monza", 9.0), row("Spielberg", 7.0)], ("old", "new"))
    lines = text.splitlines()
    assert lines[0].startswith("| track | laps | old best lap [s]")
    assert "| Monza | 2 | 55.00 | +10.00 % | 0 | 54.50 | +9.00 % | 0 | -1.00 |" in lines
    assert "| Norisring | 2 | 56.00 | +12.00 % | 0 | 54.00 | +8.00 % | 1 | -4.00 |" in lines
    assert any(line.startswith("| Spielberg | 2 | missing") for line in lines)
    assert lines[-1] == "| **mean** | | | +11.00 % | | | +8.50 % | | -2.50 |"
