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
