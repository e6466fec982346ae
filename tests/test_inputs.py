"""Bad inputs are clear errors, on the command line (exit code 2, the option or file and field named with the
expected value, nothing written) and in the Python API (the same checks live in the config objects)."""
import dataclasses
import json
import re

import numpy as np
import pytest

from racing.cli import main
from racing.config import ConfigError
from racing.track import Track, TrackError, load_track


def _fails(argv, pattern, capsys, tmp_path, code=2):
    """Run the CLI with an output folder; assert the exit code, the message and that nothing was written."""
    out = tmp_path / "run"
    extra = ["--out", str(out)] if argv[0] == "race" else []
    with pytest.raises(SystemExit) if code == "argparse" else _nullcontext() as exc:
        rc = main(argv + extra)
    if code == "argparse":
        rc = exc.value.code
        code = 2
    err = capsys.readouterr().err
    assert rc == code, err
    assert re.search(pattern, err), err
    assert err.count("racing ") >= 1 and f"racing {argv[0]}: error:" in err, err
    assert not out.exists(), "something was written"
    return err


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


@pytest.mark.parametrize("argv,pattern", [
    (["--laps", "0"], r"--laps.*laps: 0 is below the minimum 1"),
    (["--laps", "-1"], r"--laps.*minimum 1"),
    (["--rate", "0"], r"--rate.*rate_hz: expected a value > 0"),
    (["--rate", "-50"], r"--rate.*rate_hz: expected a value > 0"),
    (["--rate", "100000"], r"--rate.*rate_hz: 100000.0 is above the maximum 2000"),
    (["--delay", "-1"], r"--delay.*delay_s: -1.0 is below the minimum 0"),
    (["--noise", "-1"], r"--noise.*expected a number >= 0"),
    (["--snapshot", "-1"], r"--snapshot.*snapshot_times\[0\]: -1.0 is below the minimum 0"),
    (["--max-time", "5", "--snapshot", "7"], r"--snapshot.*7 s is after max_time_s = 5 s"),
    (["--max-time", "0"], r"--max-time.*max_time_s: expected a value > 0"),
    (["--plant", "json:dumps"], r"--plant 'json:dumps'.*expected a factory\(params, plant_hz=...\)"),
    (["--plant", "racing:__version__"], r"__version__ is a str, not a factory"),
    (["--plant", "commonroad:xx"], r"unknown CommonRoad model 'xx' in plant 'commonroad:xx'; known: st, std, mb"),
    (["--plant", "commonroad:mb:9"], r"unknown CommonRoad vehicle id 9; known: 1 \(Ford Escort\), 2 \(BMW 320i\)"),
    (["--threads", "99"], r"--threads must be in 1\.\.\d+"),
    (["--set", "lookahead"], r"controller_set \(--set\): 'lookahead': expected KEY=VALUE"),
    (["--set", "lookahed=1.0"], r"unknown key 'lookahed'"),
    (["--set", "lookahead=[1, 2]"], r"'lookahead=\[1, 2\]': expected a single value"),
])
def test_race_option_errors(argv, pattern, capsys, tmp_path):
    _fails(["race", "--controller", "pure_pursuit"] + argv, pattern, capsys, tmp_path)


def test_snapshot_after_the_end_of_the_run_is_reported(capsys, tmp_path):
    rc = main(["race", "--controller", "pure_pursuit", "--laps", "1", "--snapshot", "500", "--no-save", "--json"])
    cap = capsys.readouterr()
    assert rc == 0
    assert json.loads(cap.out)["snapshots_missed"] == [500.0]
    assert "--snapshot 500 s not taken: the run ended at" in cap.err


@pytest.mark.parametrize("kw,pattern", [
    (dict(rate_hz=0), r"SimConfig: rate_hz: expected a value > 0"),
    (dict(laps=0), r"SimConfig: laps: 0 is below the minimum 1"),
    (dict(laps=2.5), r"SimConfig: laps: expected an integer"),
    (dict(delay_s=-1.0), r"SimConfig: delay_s: -1.0 is below the minimum 0"),
    (dict(max_time_s=0.0), r"SimConfig: max_time_s: expected a value > 0"),
    (dict(max_time_s=1e9), r"max_time_s x rate_hz = .* expected at most"),
    (dict(snapshot_times=(-1.0,)), r"snapshot_times\[0\]: -1.0 is below the minimum 0"),
    (dict(rate_hz=1500.0), r"rate_hz = 1500 Hz is above plant_hz = 1000 Hz"),
])
def test_sim_config_is_strict_in_python(kw, pattern):
    from racing.sim.simulator import SimConfig

    with pytest.raises(ConfigError, match=pattern):
        SimConfig(**kw)


def test_noise_config_is_strict_in_python():
    from racing.sim.simulator import NoiseConfig

    with pytest.raises(ConfigError, match=r"NoiseConfig: pos: -0.1 is below the minimum 0.0 m"):
        NoiseConfig(pos=-0.1)


@pytest.mark.parametrize("field,value,pattern", [
    ("mass", -1.0, r"VehicleParams 'f1tenth': mass: -1.0 is below the minimum 0.05 kg \(expected 0.05 .. 200000 kg"),
    ("mass", float("nan"), r"mass: expected a finite number"),
    ("steer_max", 2.0, r"steer_max: expected a value < 1.5 rad"),
    ("mu", "high", r"mu: expected a number"),
])
def test_vehicle_params_built_in_python_are_validated(field, value, pattern):
    from racing.models.params import load_params

    base = load_params("f1tenth")
    with pytest.raises(ConfigError, match=pattern):
        dataclasses.replace(base, **{field: value})
    kwargs = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    kwargs[field] = value
    with pytest.raises(ConfigError, match=pattern):
        type(base)(**kwargs)


# ------------------------------------------------------------------ track geometry
def _write_track(path, xy, w):
    rows = "\n".join(f"{x:.6f},{y:.6f},{w},{w}" for x, y in xy)
    path.write_text("# x_m,y_m,w_tr_right_m,w_tr_left_m\n" + rows + "\n")
    return path


def _bad_tracks(tmp_path):
    th = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    return {
        "too_wide": (_write_track(tmp_path / "too_wide.csv", np.column_stack([5 * np.cos(th), 5 * np.sin(th)]), 6.0),
                     r"widths had to be clipped over 100 % of the lap .* same unit"),
        "collinear": (_write_track(tmp_path / "collinear.csv", np.array([[0, 0], [10, 0], [20, 0], [10, 0]]), 1.0),
                      r"straight line .* encloses no area"),
    }


def test_a_figure_eight_on_a_bridge_is_a_circuit(tmp_path):
    """A centre line crossing itself at a clear angle, the two parts far apart along the lap, is a bridge (Suzuka):
    loaded, with the crossover recorded (the car is projected locally there)."""
    th = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    path = _write_track(tmp_path / "figure8.csv", np.column_stack([10 * np.sin(th), 5 * np.sin(2 * th)]), 1.0)
    assert len(load_track(path).crossovers) == 1


@pytest.mark.parametrize("name", ["too_wide", "collinear"])
def test_bad_track_geometry_is_an_error_at_load(name, tmp_path, capsys):
    path, pattern = _bad_tracks(tmp_path)[name]
    with pytest.raises(TrackError, match=pattern) as exc:
        load_track(path)
    assert str(path) in str(exc.value)
    err = _fails(["race", "--controller", "pure_pursuit", "--track", str(path)], pattern, capsys, tmp_path)
    assert f"{name}.csv" in err
    if name == "too_wide":  # a straight line is refused even with the opt-out: it is not a lap at all
        assert "--allow-bad-geometry" in str(exc.value)
        assert load_track(path, check_geometry=False).name == name  # explicit opt-out


def test_allow_bad_geometry_races_anyway(tmp_path, capsys):
    path, _ = _bad_tracks(tmp_path)["too_wide"]
    rc = main(["race", "--controller", "pure_pursuit", "--track", str(path), "--allow-bad-geometry", "--max-time", "2",
               "--no-save", "--json"])
    capsys.readouterr()
    assert rc in (0, 1, 3)


def test_track_check_geometry_in_python(oval):
    assert oval().check_geometry().name == "oval"
    with pytest.raises(TrackError, match="clipped over .* of the lap"):
        oval(a=12.0, b=6.0, w=8.0).check_geometry()


# ------------------------------------------------------------------ raceline of another track
def test_raceline_of_another_track_is_rejected(tmp_path, capsys):
    from racing.raceline.cache import cache_path

    other = cache_path(load_track("lab_loop"), "f1tenth", "mintime")
    assert other.is_file()
    _fails(["race", "--controller", "pure_pursuit", "--track", "garage_gp", "--raceline", str(other)],
           r"raceline_f1tenth_mintime.csv: raceline .* expected a raceline of this track", capsys, tmp_path)
    own = cache_path(load_track("garage_gp"), "f1tenth", "mintime")
    track = load_track("garage_gp")
    from racing.track import Raceline

    assert track.check_raceline(Raceline.load(own)) is not None


# ------------------------------------------------------------------ F1TENTH map folders
def _map_folder(tmp_path, image="ok", yaml_text=None):
    from PIL import Image

    folder = tmp_path / "mymap"
    folder.mkdir()
    th = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    _write_track(folder / "mymap_centerline.csv", np.column_stack([12 * np.cos(th), 6 * np.sin(th)]), 1.0)
    img = np.full((200, 300), 255, np.uint8)  # free everywhere: 0.1 m/px, x -15..15, y -10..10
    img[95:105, 140:160] = 0  # a block in the infield
    if image == "ok":
        Image.fromarray(img).save(folder / "mymap_map.png")
    elif image == "garbage":
        (folder / "mymap_map.png").write_bytes(b"not a png at all")
    elif image == "on_wall":
        img[:, 270:] = 0  # covers the right end of the oval (x > 12)
        img[:, 255:] = 0
        Image.fromarray(img).save(folder / "mymap_map.png")
    (folder / "mymap_map.yaml").write_text(yaml_text or "image: mymap_map.png\nresolution: 0.1\n"
                                                        "origin: [-15.0, -10.0, 0.0]\nnegate: 0\n"
                                                        "occupied_thresh: 0.65\nfree_thresh: 0.196\n")
    return folder


def test_f1tenth_folder_with_a_good_map_loads_and_says_where_widths_come_from(tmp_path):
    track = load_track(_map_folder(tmp_path))
    assert "mymap_centerline.csv" in track.widths_from and "mymap_map.yaml checked" in track.widths_from


@pytest.mark.parametrize("image,yaml_text,pattern", [
    ("missing", None, r"mymap_map.yaml: image: .*mymap_map.png not found"),
    ("garbage", None, r"mymap_map.yaml: image: .*cannot be read as an image"),
    ("ok", "image: mymap_map.png\nresolution: [oops\n", r"mymap_map.yaml: not valid YAML"),
    ("ok", "image: mymap_map.png\nresolution: -1\norigin: [0, 0, 0]\noccupied_thresh: 0.65\n",
     r"resolution = -1; expected > 0"),
    ("on_wall", None, r"mymap_map.yaml: the centre line .* lies on an occupied pixel"),
])
def test_f1tenth_folder_with_a_broken_map_is_an_error(image, yaml_text, pattern, tmp_path, capsys):
    folder = _map_folder(tmp_path, image, yaml_text)
    with pytest.raises(TrackError, match=pattern):
        load_track(folder)
    _fails(["race", "--controller", "pure_pursuit", "--track", str(folder)], pattern, capsys, tmp_path)


# ------------------------------------------------------------------ other subcommands
@pytest.mark.parametrize("argv,pattern", [
    (["learn", "--iterations", "0"], r"racing learn: error: argument --iterations: expected an integer >= 1, got '0'"),
    (["learn", "--laps", "0"], r"racing learn: error: argument --laps: expected an integer >= 1"),
    (["learn", "--excite", "-5"], r"racing learn: error: argument --excite: expected a number >= 0"),
    (["fit", "x.csv", "--horizon", "0"], r"racing fit: error: argument --horizon: expected a number > 0, got '0'"),
    (["fit", "x.csv", "--stride", "0"], r"racing fit: error: argument --stride: expected an integer >= 1"),
    (["bench", "--repeats", "0"], r"racing bench: error: argument --repeats: expected an integer >= 1, got '0'"),
    (["bench", "--threads", "0"], r"racing bench: error: argument --threads: expected an integer >= 1"),
    (["race", "--threads", "0"], r"racing race: error: argument --threads: expected an integer >= 1"),
])
def test_numeric_options_of_every_subcommand(argv, pattern, capsys, tmp_path):
    _fails(argv, pattern, capsys, tmp_path, code="argparse")


def test_learn_on_a_plant_that_is_its_own_car_refuses_a_true_car(capsys):
    pytest.importorskip("vehiclemodels")
    rc = main(["learn", "--plant", "commonroad:st", "--car", "gt_car"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "racing learn: error: --car gt_car: the plant commonroad:st is its own car" in err


def test_fit_a_file_that_is_not_a_bag(tmp_path, capsys):
    bag = tmp_path / "drive.bag"
    bag.write_text("this is not a ROS bag\n")
    out = tmp_path / "car.yaml"
    rc = main(["fit", str(bag), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "racing fit: error:" in err and "drive.bag: cannot open as a ROS bag" in err and "expected a ROS 1 .bag" in err
    assert not out.exists()


def test_log_errors_name_file_line_numbers(tmp_path, capsys):
    from racing.logs import COLUMNS, LOG_MAGIC, LogError, read_log

    log = tmp_path / "run.csv"
    row = ",".join(["0.0"] * len(COLUMNS))
    bad = ",".join(["0.04"] + ["nan"] + ["0.0"] * (len(COLUMNS) - 2))
    log.write_text(f"{LOG_MAGIC}\n# car: f1tenth\n{','.join(COLUMNS)}\n{row}\n"
                   f"{row.replace('0.0', '0.02', 1)}\n{bad}\n")
    with pytest.raises(LogError, match=rf"run.csv: line 6: column {COLUMNS[1]} is nan"):
        read_log(log)
    log.write_text(f"{LOG_MAGIC}\n{','.join(COLUMNS)}\n{row}\n{row}\n")
    with pytest.raises(LogError, match=r"run.csv: line 4: duplicate timestamp"):
        read_log(log)
    log.write_text(f"{LOG_MAGIC}\n{','.join(COLUMNS)}\n{row}\n0.02,abc\n")
    with pytest.raises(LogError, match=r"run.csv: line 4: 2 values but the header names \d+ columns"):
        read_log(log)
    rc = main(["fit", str(log)])
    assert rc == 2 and "racing fit: error:" in capsys.readouterr().err


def test_mppi_threads_out_of_range_is_an_error():
    import numba

    from racing.control.mppi.controller import set_threads

    with pytest.raises(ValueError, match=r"threads = 99; expected an integer in 1\.\."):
        set_threads(99)
    with pytest.raises(ValueError, match=r"threads = 0"):
        set_threads(0)
    assert set_threads(numba.get_num_threads()) >= 1


@pytest.mark.parametrize("kw,pattern", [(dict(horizon_s=0.0), r"fit: horizon_s = 0.0; expected > 0 s"),
                                        (dict(stride=0), r"fit: stride = 0; expected an integer >= 1")])
def test_fit_options_checked_in_the_python_api(kw, pattern):
    import racing

    with pytest.raises(ConfigError, match=pattern):
        racing.fit([], "f1tenth", **kw)


# ------------------------------------------------------------------ issue 27: silently accepted, unclear
def test_start_speed_above_the_cars_top_speed_is_exit_2(capsys, tmp_path):
    _fails(["race", "--controller", "pure_pursuit", "--laps", "1", "--start-speed", "1000"],
           r"start_speed: 1000 m/s is above the top speed v_max = 12 m/s of car 'f1tenth'; expected 0 .. 12 m/s",
           capsys, tmp_path)


def _car(tmp_path, key, value, name="car.yaml"):
    from racing.models.params import params_dir

    lines = [ln for ln in (params_dir() / "f1tenth.yaml").read_text().splitlines() if not ln.startswith(f"{key}:")]
    path = tmp_path / name
    path.write_text("\n".join(lines + [f"{key}: {value}"]) + "\n")
    return path


@pytest.mark.parametrize("key,value,pattern", [
    ("mass", "1.0e+30", r"heavy.yaml: mass: 1e\+30 is above the maximum 200000.0 kg \(expected 0.05 .. 200000 kg: a "
                        r"plausible range"),
    ("v_max", "1.0e+9", r"heavy.yaml: v_max: 1000000000.0 is above the maximum 150.0 m/s"),
    ("mass", "1.0e30", r"heavy.yaml: mass: got the text '1.0e30', not a number: .*write it as 1.0e\+30"),
])
def test_implausible_car_file_is_exit_2(key, value, pattern, capsys, tmp_path):
    path = _car(tmp_path, key, value, "heavy.yaml")
    _fails(["race", "--controller", "pure_pursuit", "--car", str(path)], pattern, capsys, tmp_path)


def test_binary_car_file_is_exit_2(capsys, tmp_path):
    path = tmp_path / "car.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    _fails(["race", "--controller", "pure_pursuit", "--car", str(path)],
           r"car.yaml: a binary file \(NUL bytes\), not YAML; expected a text file", capsys, tmp_path)


def test_api_load_car_takes_a_mapping_through_the_same_checks():
    import racing

    f1 = racing.load_car("f1tenth")
    values = {f.name: getattr(f1, f.name) for f in dataclasses.fields(f1)}
    assert racing.load_car(values) == f1
    with pytest.raises(ConfigError, match=r"car parameters \(a mapping\): v_max: 1000000000.0 is above the maximum"):
        racing.load_car({**values, "v_max": 1e9})


@pytest.fixture(scope="module")
def race_log(tmp_path_factory):
    """The log racing race writes (pure pursuit on f1tenth, lab_loop, one lap)."""
    out = tmp_path_factory.mktemp("race") / "run"
    assert main(["race", "--controller", "pure_pursuit", "--laps", "1", "--no-plot", "--out", str(out)]) in (0, 1)
    return out / "log.csv"


def test_fit_the_race_log_of_another_car_is_exit_2(race_log, capsys, tmp_path):
    _fails(["fit", str(race_log), "--car", "gt_car"], r"log.csv: the log header says it was driven by car 'f1tenth' "
           r"\(wheelbase 0.33 m, mass 3.74 kg\), but --car 'gt_car' is another car", capsys, tmp_path)


def test_fit_columns_on_a_racing_log_is_exit_2(race_log, capsys, tmp_path):
    _fails(["fit", str(race_log), "--columns", "av21"], r"log.csv: the column map \(--columns\) applies to foreign CSV "
           r"logs only, and none of these is one", capsys, tmp_path)


@pytest.mark.parametrize("name", ["plot.png", "plot.csv"])
def test_fit_a_png_is_exit_2(name, capsys, tmp_path):
    from PIL import Image

    path = tmp_path / name
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path, format="PNG")
    _fails(["fit", str(path), "--car", "f1tenth"], rf"{name}: a PNG image, not a log; expected a racing CSV log, a "
           r"foreign CSV \(with a column map\), a ROS bag", capsys, tmp_path)


def test_fit_min_speed_above_every_sample_says_so(race_log, capsys, tmp_path):
    _fails(["fit", str(race_log), "--min-speed", "50", "--boot", "0"], r"no fit window starts at v_x >= 50 m/s "
           r"\(--min-speed, min_speed\): the logs' fastest v_x is 1\d(\.\d+)? m/s; expected a minimum speed below",
           capsys, tmp_path)


def test_fit_without_bootstrap_reports_errors_and_margin_as_not_computed(race_log, capsys, tmp_path):
    out = tmp_path / "fit.yaml"
    assert main(["fit", str(race_log), "--boot", "0", "--params", "D_f,inertia_z", "--json", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text
    rep = json.loads(text)["fit"]
    assert rep["std_errors"] == {"D_f": None, "inertia_z": None} and rep["grip_margin"] is None
    assert rep["uncertainty"].startswith("not computed (no bootstrap replicates")
    assert "grip_margin not computed (--boot 0)" in out.read_text()
    assert main(["fit", str(race_log), "--boot", "0", "--params", "D_f"]) == 0
    report = capsys.readouterr().out
    assert "nan" not in report.lower() and "Grip margin: not computed" in report and "(not computed)" in report
