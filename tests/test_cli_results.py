"""`racing race` says what happened: status, outcome and exit code for clean, incident and failed runs;
compute time against the period, off-line too."""
import json

import pytest

from racing.cli import main
from racing.control import CONTROLLERS, make_controller, register


@pytest.fixture
def wobble(wobble_cls):
    @register("test_wobble", "pure pursuit with a steering pulse at t = 3 s (tests)")
    def _factory(track, params, config_path=None, **options):
        return wobble_cls(make_controller("pure_pursuit", track, params))

    yield "test_wobble"
    CONTROLLERS.pop("test_wobble", None)


def test_clean_run_exit_0_and_json_outcome(capsys):
    rc = main(["race", "--controller", "pure_pursuit", "--laps", "1", "--no-save", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert data["status"] == "completed" and data["outcome"] == "clean" and data["exit_code"] == 0
    assert data["incidents"] == {"off_track": 0, "deadline_misses": 0, "compute_over_period": 0}
    assert data["period_ms"] == pytest.approx(20.0) and data["realtime"] is False


def test_off_track_excursion_exit_3_completed_with_incidents(wobble, capsys):
    rc = main(["race", "--controller", wobble, "--laps", "1", "--no-save", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 3
    assert data["status"] == "completed_with_incidents" and data["outcome"] == "incidents"
    assert data["off_track"] == 1 and data["incidents"]["off_track"] == 1 and len(data["laps"]) == 1


def test_incidents_in_the_table(wobble, capsys):
    rc = main(["race", "--controller", wobble, "--laps", "1", "--no-save"])
    text = capsys.readouterr().out
    assert rc == 3
    assert "completed_with_incidents" in text and "completed with incidents, exit code 3" in text
    assert "compute over period" in text and "(period 20 ms)" in text


def test_failed_run_exit_1(capsys):
    rc = main(["race", "--controller", "pure_pursuit", "--max-time", "1", "--no-save", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert data["status"] == "timeout" and data["outcome"] == "failed" and data["exit_code"] == 1


def test_stale_outputs_of_a_previous_run_are_removed_and_every_file_is_listed(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    for stale in ("lap.gif", "mppi_t0003.00.png", "race.png", "summary.json"):
        (out / stale).write_text("from an older run")
    (out / "my_notes.txt").write_text("not ours")
    rc = main(["race", "--controller", "pure_pursuit", "--laps", "1", "--out", str(out), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert not (out / "lap.gif").exists() and not (out / "mppi_t0003.00.png").exists()
    assert (out / "my_notes.txt").read_text() == "not ours"
    names = sorted(p.split("/")[-1] for p in data["files"])
    assert names == sorted(["config.yaml", "events.json", "log.csv", "race.png", "result.npz", "summary.json"])
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["my_notes.txt"])
    assert json.loads((out / "summary.json").read_text())["laps"] == data["laps"]


def test_table_lists_every_file_written(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["race", "--controller", "pure_pursuit", "--laps", "1", "--out", str(out), "--no-plot"])
    text = capsys.readouterr().out
    assert rc == 0
    for f in ("result.npz", "events.json", "summary.json", "config.yaml", "log.csv"):
        assert f"wrote {out / f}" in text


def test_compile_notice_speaks_only_when_the_block_is_slow():
    import io
    import time

    from racing.assembly import compile_notice

    buf = io.StringIO()
    with compile_notice("building x", after_s=0.05, stream=buf):
        time.sleep(0.3)
    assert "building x: compiling numba kernels" in buf.getvalue() and "ready after" in buf.getvalue()
    quiet = io.StringIO()
    with compile_notice("building y", after_s=5.0, stream=quiet):
        pass
    assert quiet.getvalue() == ""


def test_the_animation_is_listed_among_the_files(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["race", "--controller", "pure_pursuit", "--max-time", "1.5", "--animate", "--out", str(out), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 1  # the time limit ends the run before a lap: a failed run still writes what it has
    assert str(out / "lap.gif") in data["files"] and data["animation"] == str(out / "lap.gif")
    assert (out / "lap.gif").stat().st_size > 0
