"""Sweep and tune results: counts, exit codes (an incident or an interruption is never a clean success)."""
from __future__ import annotations

from racing import exit_codes
from racing.sweep.result import SweepResult, TuneResult


def row(outcome):
    return {"outcome": outcome, "trial": 0, "wall_s": 30.0}


def test_sweep_exit_codes():
    assert SweepResult([row("clean"), row("clean")], planned=2).exit_code == exit_codes.OK
    assert SweepResult([row("clean"), row("incidents")], planned=2).exit_code == exit_codes.INCIDENTS
    assert SweepResult([row("clean"), row("failed")], planned=2).exit_code == exit_codes.INCIDENTS
    interrupted = SweepResult([row("clean")], planned=3)
    assert interrupted.unfinished == 2 and interrupted.exit_code == exit_codes.FAILED
    assert SweepResult([row("clean")], planned=2, errors=1).exit_code == exit_codes.FAILED
    s = SweepResult([row("clean")], planned=1, wall_s=36.0).summary()
    assert s["trials_per_hour"] == 100.0 and s["overhead_per_trial_s"] == 6.0
    two = SweepResult([row("clean"), row("clean")], planned=2, wall_s=40.0, concurrency=2)
    assert two.overhead_per_trial_s == 10.0
    assert SweepResult([row("clean")], planned=1, wall_s=36.0, resumed=True).summary()["trials_per_hour"] is None


def trial(obj, off=0, **kw):
    return {"objective": obj, "off_track": off, "spins": 0, "failed": 0, "x": kw.get("x", obj)}


def test_tune_best_base_and_exit_codes():
    res = TuneResult([trial(5.0, x=1.0), trial(3.0, off=1), trial(4.0)], [], planned=3, settings=("x",),
                     base_point={"x": 1.0})
    assert res.best["objective"] == 3.0 and res.base["objective"] == 5.0
    assert res.exit_code == exit_codes.INCIDENTS        # the best trial left the track
    assert TuneResult([trial(3.0)], [], planned=1, settings=("x",)).exit_code == exit_codes.OK
    assert TuneResult([trial(3.0)], [], planned=2, settings=("x",)).exit_code == exit_codes.FAILED
    assert TuneResult([], [], planned=2, settings=("x",)).exit_code == exit_codes.FAILED
