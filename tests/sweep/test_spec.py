"""Sweep / tune specs: strict checks before any trial (no Ray needed), the expansion into races, the race rows."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from racing.cli import main
from racing.config import ConfigError
from racing.sweep.spec import Axis, _stratified, load_sweep_spec, load_tune_spec

BASE = """
controller: pure_pursuit
tracks: [lab_loop]
cars: [f1tenth]
laps: 1
"""


def write(tmp_path, text, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("extra, pattern", [
    ("bogus: 1\n", r"unknown key 'bogus'; known keys: .*cars"),
    ("perturbations:\n  grip: [1.0]\n", r"unknown key 'perturbations.grip'; known keys: friction, mass"),
    ("perturbations:\n  friction: []\n", r"perturbations.friction: empty list"),
    ("sample: {random: 3}\nperturbations:\n  friction: {low: 1.0, high: 0.9}\n",
     r"perturbations.friction: empty range: low = 1 is not below high = 0.9"),
    ("perturbations:\n  friction: {low: 0.9, high: 1.0}\n", r"a range .* needs random sampling"),
    ("perturbations:\n  delay: [-0.1]\n", r"perturbations.delay: -0.1; expected an actuation delay"),
    ("perturbations:\n  plant: [warp_drive]\n", r"unknown plant 'warp_drive'; known plants: .*dynamic"),
    ("settings:\n  lookahead_tme: [0.2]\n", r"settings.lookahead_tme: 0.2 refused by the pure_pursuit settings: "
                                            r".*unknown key 'lookahead_tme'"),
    ("settings:\n  grip_scale: [5.0]\n", r"settings.grip_scale: 5.0 refused .*above the maximum 1.5"),
    ("laps: 0\n", r"laps: 0; expected an integer >= 1"),
    ("laps: .inf\n", r"laps: inf; expected an integer >= 1"),
    ("sample: grud\n", r"sample: expected 'grid' or \{random: N, seed: S\}"),
])
def test_bad_sweep_spec_is_a_clear_error(tmp_path, extra, pattern):
    spec = write(tmp_path, BASE.replace("laps: 1\n", "") + ("" if extra.startswith("laps") else "laps: 1\n") + extra)
    with pytest.raises(ConfigError, match=pattern):
        load_sweep_spec(spec)


def test_relative_paths_are_made_absolute_for_the_workers(tmp_path, monkeypatch):
    import shutil

    from racing.track import tracks_dir

    shutil.copy(tracks_dir() / "lab_loop" / "centerline.csv", tmp_path / "loop.csv")
    spec = write(tmp_path, BASE.replace("[lab_loop]", "[loop.csv]"))
    monkeypatch.chdir("/")
    (race,) = load_sweep_spec(spec).sweep_trials()
    assert race["track_source"] == str(tmp_path / "loop.csv")


def test_unknown_track_and_car_are_clear_errors(tmp_path):
    spec = write(tmp_path, BASE.replace("[lab_loop]", "[lab_loop, Nurburgring]"))
    with pytest.raises(ConfigError, match=r"spec.yaml: tracks: 'Nurburgring': .*unknown track"):
        load_sweep_spec(spec)
    spec = write(tmp_path, BASE.replace("[f1tenth]", "[go_kart]"))
    with pytest.raises(ConfigError, match=r"cars: unknown car 'go_kart'"):
        load_sweep_spec(spec)


def test_bad_spec_fails_on_the_command_line_before_anything_runs(tmp_path, capsys):
    spec = write(tmp_path, BASE + "perturbations:\n  friction: []\n")
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "racing sweep: error:" in err and "perturbations.friction: empty list" in err
    assert not out.exists()


def test_tune_spec_checks(tmp_path):
    tune = BASE + "trials: 2\nsettings:\n  grip_scale: {low: 0.7, high: 0.8}\n"
    assert load_tune_spec(write(tmp_path, tune)).trials == 2
    with pytest.raises(ConfigError, match=r"racing tune needs at least one setting"):
        load_tune_spec(write(tmp_path, BASE + "trials: 2\n"))
    with pytest.raises(ConfigError, match=r"settings.grip_scale: the base value 0.75 lies outside the search space"):
        load_tune_spec(write(tmp_path, BASE + "settings:\n  grip_scale: {low: 0.9, high: 1.0}\n"))
    with pytest.raises(ConfigError, match=r"perturbation ranges need scenarios >= 1"):
        load_tune_spec(write(tmp_path, tune + "perturbations:\n  friction: {low: 0.9, high: 1.0}\n"))
    with pytest.raises(ConfigError, match=r"unknown key 'objective.k_sd'"):
        load_tune_spec(write(tmp_path, tune + "objective: {k_sd: 1}\n"))
    with pytest.raises(ConfigError, match=r"cars: racing tune takes one car"):
        load_tune_spec(write(tmp_path, tune.replace("[f1tenth]", "[f1tenth, gt_car]")))
    with pytest.raises(ConfigError, match=r"sample"):  # a sweep key in a tune spec
        load_tune_spec(write(tmp_path, tune + "sample: grid\n"))


def test_tune_needs_a_reference_on_every_track(tmp_path):
    with pytest.raises(ConfigError, match=r"no cached minimum-time reference for car 'f1tenth' on 'oval_test'"):
        oval = tmp_path / "oval_test.csv"
        th = np.linspace(0, 2 * np.pi, 200, endpoint=False)
        rows = "\n".join(f"{30 * np.cos(t):.4f},{15 * np.sin(t):.4f},1.0,1.0" for t in th)
        oval.write_text("# x_m,y_m,w_tr_right_m,w_tr_left_m\n" + rows + "\n")
        load_tune_spec(write(tmp_path, BASE.replace("[lab_loop]", "[oval_test.csv]")
                             + "settings:\n  grip_scale: {low: 0.7, high: 0.8}\n"))


def test_grid_and_random_expansion(tmp_path):
    grid = load_sweep_spec(write(tmp_path, BASE + "seeds: [0, 1]\nperturbations:\n  friction: [0.9, 1.0]\n"
                                 "  delay: [0.0, 0.02]\nsettings:\n  grip_scale: [0.75, 0.8]\n"))
    races = grid.sweep_trials()
    assert len(races) == 2 * 2 * 2 * 2
    assert [r["trial"] for r in races] == list(range(16))
    assert {(r["seed"], r["friction"], r["delay"], r["settings"]["grip_scale"]) for r in races} == {
        (s, f, d, g) for s in (0, 1) for f in (0.9, 1.0) for d in (0.0, 0.02) for g in (0.75, 0.8)}
    rnd_text = BASE + "sample: {random: 5, seed: 3}\nperturbations:\n  friction: {low: 0.9, high: 1.05}\n"
    a = load_sweep_spec(write(tmp_path, rnd_text)).sweep_trials()
    b = load_sweep_spec(write(tmp_path, rnd_text, "again.yaml")).sweep_trials()
    assert len(a) == 5 and [r["friction"] for r in a] == [r["friction"] for r in b]
    assert all(0.9 <= r["friction"] <= 1.05 for r in a)


def test_latin_hypercube_scenarios_cover_every_stratum():
    rng = np.random.default_rng(0)
    v = np.array(_stratified(Axis("friction", low=0.9, high=1.05), 6, rng))
    strata = np.floor((v - 0.9) / 0.15 * 6).astype(int)
    assert sorted(strata) == list(range(6))
    assert sorted(_stratified(Axis("plant", values=("a", "b")), 4, rng)) == ["a", "a", "b", "b"]


def test_start_speed_reference_is_the_min_time_lines_start_speed(tmp_path):
    from racing.models.params import load_params
    from racing.raceline import cached_raceline
    from racing.track import load_track

    spec = load_sweep_spec(write(tmp_path, BASE + "start_speed: reference\n"))
    (race,) = spec.sweep_trials()
    line = cached_raceline(load_track("lab_loop"), "f1tenth", "mintime", load_params("f1tenth"))
    assert race["start_speed"] == pytest.approx(line.vx[0], abs=0.01) and race["start_speed"] > 1.0
    assert "--start-speed" in race_cmd(race)


def race_cmd(race):
    from racing.sweep.trial import race_command

    return race_command(race, None)
