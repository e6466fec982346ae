"""The `racing` command line: the race contract (--json keys, files), errors that name what is wrong."""
import json
import subprocess
import sys

import pytest

from racing.cli import main

JSON_KEYS = {"track", "car", "controller", "rate_hz", "laps", "best_lap_s", "off_track", "deadline_misses",
             "compute_ms", "status"}


def test_race_json_contract_and_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["race", "--controller", "pure_pursuit", "--laps", "1", "--out", str(out), "--json", "--seed", "3"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert JSON_KEYS <= set(data)
    assert data["track"] == "lab_loop" and data["car"] == "f1tenth" and data["controller"] == "pure_pursuit"
    assert data["status"] == "completed" and len(data["laps"]) == 1 and data["off_track"] == 0
    assert set(data["compute_ms"]) == {"p50", "p99", "max"}
    for f in ("race.png", "result.npz", "summary.json", "config.yaml", "log.csv"):
        assert (out / f).is_file(), f


def test_race_table_output(capsys):
    rc = main(["race", "--controller", "pure_pursuit", "--laps", "1", "--no-save", "--track", "garage_gp"])
    text = capsys.readouterr().out
    assert rc == 0
    for word in ("best lap", "off-track", "deadline misses", "compute p50 / p99 / max", "status"):
        assert word in text


@pytest.mark.parametrize("argv,pattern", [
    (["race", "--track", "nowhere"], r"unknown track 'nowhere'.*lab_loop"),
    (["race", "--car", "bus"], r"unknown car 'bus'.*f1tenth"),
    (["race", "--controller", "magic"], r"unknown controller 'magic'.*pure_pursuit"),
    (["race", "--plant", "nope"], r"unknown plant 'nope'.*dynamic"),
])
def test_bad_names_are_clear_errors(argv, pattern, capsys):
    rc = main(argv + ["--no-save"])
    err = capsys.readouterr().err
    assert rc == 2
    assert __import__("re").search(pattern, err), err


def test_bad_track_file_names_file_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("# x_m,y_m,w_tr_right_m,w_tr_left_m\n0,0,1,1\n10,0,1,nan\n10,10,1,1\n0,10,1,1\n")
    rc = main(["race", "--track", str(bad), "--no-save"])
    err = capsys.readouterr().err
    assert rc == 2 and "bad.csv" in err and "w_tr_left_m" in err


def test_console_script_list():
    r = subprocess.run([sys.executable, "-m", "racing", "list", "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert "lab_loop" in data["tracks"] and "gt_car" in data["cars"] and "pure_pursuit" in data["controllers"]


def _fitted_car(tmp_path, tuning):
    """A car file as ``racing fit`` writes it (to_yaml of a fitted VehicleParams) from the f1tenth base."""
    from racing.models.params import VehicleParams, load_params

    base = load_params("f1tenth")
    fitted = VehicleParams.from_array(base.to_array() * 1.0, name="my_car", tuning=tuning)
    path = tmp_path / "my_car.yaml"
    fitted.to_yaml(path, header="fitted by racing fit (test)")
    return path


@pytest.mark.parametrize("tuning", ["f1tenth", None])
def test_fitted_car_races_with_the_tuning_it_names_or_a_derived_one(tmp_path, tuning):
    import yaml

    from racing.control.mppi.config import derived_config, tuning_path

    car = _fitted_car(tmp_path, tuning)
    out = tmp_path / "run"
    rc = main(["race", "--model-params", str(car), "--laps", "1", "--max-time", "3", "--out", str(out),
               "--no-plot", "--threads", "1"])
    assert rc in (0, 1, 2)  # the race may time out after 3 s; the record is what is checked here
    conf = yaml.safe_load((out / "config.yaml").read_text())
    ctl = conf["controller"]
    if tuning is None:
        assert ctl["config_source"] == "derived from the parameters of my_car"
        assert ctl["config"]["horizon"] == derived_config(load_params_of(car)).horizon
    else:
        assert ctl["config_source"] == str(tuning_path(tuning))
    assert conf["machine"]["numba_threads"] == 1
    assert "raceline" in ctl


def load_params_of(path):
    from racing.models.params import load_params

    return load_params(path)


def test_a_car_naming_an_unknown_tuning_is_a_clear_error(tmp_path, capsys):
    car = _fitted_car(tmp_path, "no_such_tuning")
    rc = main(["race", "--model-params", str(car), "--laps", "1", "--no-save"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "no_such_tuning" in err and "known tunings" in err


def test_ilqr_races_the_default_track_clean_and_close_to_the_reference(capsys):
    """`racing race --controller ilqr --plant dynamic`: two laps of the default track and car on the controller's own
    model, no incident, the best lap within 5 % of the car's minimum-time reference (the target of the iLQR issue,
    set on that plant; measured 2.8 % then). On the richer default plant the lap is 6.3 % off (2026-11-27)."""
    from racing.models.params import load_params
    from racing.raceline import reference_for
    from racing.track import load_track

    rc = main(["race", "--controller", "ilqr", "--plant", "dynamic", "--laps", "2", "--no-save", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["controller"] == "ilqr" and data["status"] == "completed"
    assert data["off_track"] == 0 and data["deadline_misses"] == 0
    ref = reference_for(load_track(data["track"]), load_params(data["car"]).name)
    assert ref is not None
    assert data["best_lap_s"] <= 1.05 * ref


def test_bench_times_the_ilqr_step():
    from racing.bench import bench_ilqr

    ms, track, backend = bench_ilqr(3, 1, T=20)
    assert ms > 0.0 and track and ("compiled C" in backend or "casadi VM" in backend)
