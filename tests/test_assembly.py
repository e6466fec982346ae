"""The one race assembly (racing/race.py): the CLI, the API and a sweep trial build the same race from the same
spec; the racing line is resolved by the assembly (cached, or computed once and cached), never by a controller;
no controller reads or writes a file."""
import sys

import numpy as np
import pytest
import yaml

import racing
from racing.cli import main, make_parser
from racing.config import ConfigError
from racing.control.base import CONTROLLERS, controller_settings, make_controller
from racing.models.params import load_params
from racing.assembly import RaceSpec, build, build_controller, resolve_line
from racing.sweep.trial import race_spec
from racing.track import Track
from racing.track.errors import TrackError


def _oval_rl():
    th = np.linspace(0, 2 * np.pi, 300, endpoint=False)
    return Track.from_centerline(np.column_stack([14.0 * np.cos(th), 7.0 * np.sin(th)]), 1.2, 1.2, name="oval_rl")


def test_resolve_line_computes_and_caches_a_min_curvature_line_when_asked(tmp_path, monkeypatch):
    """iLQR's fallback: no minimum-time line cached -> the car's minimum-curvature line, computed once, cached,
    then reused; without ``compute`` nothing is attached and the caller's track is never changed."""
    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path))
    track, params = _oval_rl(), load_params("f1tenth")
    plain, rec = resolve_line(track, params, ("mintime",))
    assert plain is track and rec["source"] is None
    with_line, rec = resolve_line(track, params, ("mintime",), compute="mincurv")
    assert with_line.raceline is not None and track.raceline is None
    assert rec["method"] == "mincurv" and rec.get("computed") and (tmp_path / "oval_rl_f1tenth_mincurv.csv").is_file()
    again, rec2 = resolve_line(track, params, ("mintime",), compute="mincurv")
    assert again.raceline is not None and not rec2.get("computed") and rec2["method"] == "mincurv"


def _sweep_race(**over) -> dict:
    race = {"trial": 0, "track": "lab_loop", "track_source": "lab_loop", "car": "f1tenth", "seed": 3,
            "friction": 0.9, "mass": 1.0, "delay": 0.01, "noise": 0.5, "plant": "dynamic_ext", "start_speed": 0.0,
            "laps": 1, "rate_hz": 50.0, "threads": 1, "controller": "pure_pursuit", "max_time_s": 4.0,
            "realtime": False}
    race.update(over)
    return race


def test_the_cli_the_api_and_a_sweep_trial_build_the_same_race():
    """One spec, three consumers: the sweep trial's spec, the same spec parsed back from its command line by
    ``racing race``, and the API's keywords give equal specs and equal run records."""
    from_sweep = race_spec(_sweep_race(), None)
    args = make_parser().parse_args(["race", *from_sweep.argv()])
    from_cli = RaceSpec.from_args(args)
    from_api = racing.api.spec_of(track="lab_loop", car="f1tenth", controller="pure_pursuit", plant="dynamic_ext",
                                  laps=1, rate_hz=50.0, seed=3, threads=1, friction_scale=0.9, delay_s=0.01,
                                  noise=0.5, max_time_s=4.0)
    assert from_cli == from_sweep == from_api
    records = [build(s).record for s in (from_sweep, from_cli, from_api)]
    assert records[0] == records[1] == records[2]
    assert records[0]["spec"]["friction_scale"] == 0.9 and records[0]["plant_scales"]["friction"] == 0.9


def test_the_cli_saves_the_run_record_the_api_returns(tmp_path):
    spec = RaceSpec(car="f1tenth", controller="pure_pursuit", laps=1, max_time_s=3.0, seed=1)
    rc = main(["race", *spec.argv(), "--out", str(tmp_path / "run"), "--no-plot", "--json"])
    assert rc in (0, 1)  # 3 s is not a lap: a timeout, which is a failed run (exit 1), never a clean one
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    api = racing.race(controller="pure_pursuit", laps=1, max_time_s=3.0, seed=1)
    assert saved["spec"] == api.config["spec"]
    assert saved["controller"] == api.config["controller"] and saved["car"] == api.config["car"]
    assert api.status == "timeout" and api.exit_code == 1


def test_a_spec_is_strict_and_names_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="unknown key.*lapz"):
        RaceSpec.from_dict({"lapz": 2})
    with pytest.raises(ConfigError, match="controller_config.*path of a YAML file.*got a dict"):
        racing.api.spec_of(controller="mppi", controller_config={"online_steer": False})
    with pytest.raises(ConfigError, match="--laps"):
        build(RaceSpec(controller="pure_pursuit", laps=0))
    with pytest.raises(ConfigError, match="residual.*pure_pursuit.*no model"):
        build(RaceSpec(controller="pure_pursuit", residual=str(tmp_path / "w.npz")))
    with pytest.raises(ConfigError, match="--controller.*unknown controller 'nope'"):
        build(RaceSpec(controller="nope"))
    (tmp_path / "file").write_text("x")
    assert main(["race", "--controller", "pure_pursuit", "--out", str(tmp_path / "file")]) == 2
    assert main(["race", "--controller", "pure_pursuit", "--out", "/proc/racing-test/run"]) == 2  # unwritable
    with pytest.raises(ValueError, match="only a spec of names and paths has a racing race command line"):
        RaceSpec(track=_oval_rl()).argv()


def test_no_controller_reads_or_writes_a_file(tmp_path, monkeypatch):
    """A controller receives a finished track (its line resolved by the assembly) and a resolved config, and
    opens no file while it is built and while it drives: every ``open`` during the factory call and ``act`` is
    recorded by an audit hook (only what compiling a kernel reads is allowed: sources and numba's cache)."""
    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path))
    track, params = _oval_rl(), load_params("f1tenth")
    opened: list[str] = []
    watching = {"on": False}

    def hook(event, args):
        if watching["on"] and event == "open" and isinstance(args[0], (str, bytes)):
            opened.append(str(args[0]))

    sys.addaudithook(hook)
    for name in ("pure_pursuit", "mppi"):
        options = {"num_samples": 32, "horizon": 8, "warmup": False} if name == "mppi" else {}
        conf, _ = controller_settings(name, params, None, options or None)
        line_track, _ = resolve_line(track, params, *(CONTROLLERS[name].raceline_request(conf)
                                                      if CONTROLLERS[name].raceline_request else ((), None)))
        make_controller(name, line_track, params, conf)  # compile (cache) outside the watch
        watching["on"] = True
        ctrl = make_controller(name, line_track, params, conf)
        ctrl.reset()
        obs = racing.control.Observation(t=0.0, state=np.array([14.0, 0.0, np.pi / 2, 2.0, 0.0, 0.0, 0.0]))
        ctrl.act(obs, 0.0)
        watching["on"] = False
    # what a compile may read (Python sources, numba's cache, the interpreter's own files) is not the controller's
    # I/O; a track, a line, a settings file or a log would be
    internals = (sys.prefix, sys.base_prefix, "/proc/", "/sys/", "/dev/")
    foreign = [p for p in opened if not p.endswith((".py", ".pyc", ".nbi", ".nbc", ".so"))
               and "__pycache__" not in p and not p.startswith(internals)]
    assert foreign == [], foreign


def test_build_controller_attaches_the_line_its_settings_ask_for(tmp_path, monkeypatch):
    """MPPI asks for the cached minimum-time line only; pure pursuit for none (it follows a line given with the
    track); the line is attached to the controller's own copy of the track."""
    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path))
    track, params = _oval_rl(), load_params("f1tenth")
    ctrl, rec, _ = build_controller("pure_pursuit", track, params)
    assert rec["source"] is None and track.raceline is None
    assert CONTROLLERS["pure_pursuit"].raceline_request is None
    conf, _ = controller_settings("mppi", params)
    assert CONTROLLERS["mppi"].raceline_request(conf) == (("mintime",), None)


def test_a_line_made_for_another_car_gives_its_geometry_not_its_speeds(tmp_path):
    """A track's own line (an F1TENTH map folder's, ``--raceline``) keeps its speeds only when its file says they
    were computed for these parameters; else the controllers get the path alone (their own speed profile)."""
    from racing.assembly import own_speeds
    from racing.raceline.cache import line_metadata, save_raceline
    from racing.track import Raceline

    oval, params = _oval_rl(), load_params("f1tenth")
    a = oval.arrays()
    line = Raceline.from_arrays(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], np.full(len(a), 8.0),
                                np.zeros(len(a)), length=oval.length)
    foreign, rec = own_speeds(oval.with_raceline(line), params)
    assert np.all(foreign.raceline.vx == 0.0) and np.allclose(foreign.raceline.x, line.x)
    assert "8.0 m/s" in rec["speeds"] and "not computed" in rec["speeds"]
    _, rec = resolve_line(oval.with_raceline(line), params, ("mintime",))
    assert "not computed" in rec["speeds"]
    _, rec, _ = build_controller("pure_pursuit", oval.with_raceline(line), params)
    assert rec["source"] == "track" and "not computed" in rec["speeds"]
    path = save_raceline(line, tmp_path / "ours.csv", line_metadata(oval, params.name, "mintime", {}, params))
    ours, rec = own_speeds(oval.with_raceline(Raceline.load(path)), params)
    assert np.all(ours.raceline.vx == 8.0) and "computed for this car" in rec["speeds"]
    other, _ = own_speeds(oval.with_raceline(Raceline.load(path)), load_params("gt_car"))
    assert np.all(other.raceline.vx == 0.0)


def test_a_maps_own_line_gives_way_to_the_cars_minimum_time_line(tmp_path, monkeypatch):
    """Without ``--raceline`` a line the track brings (another car's) gives way to the car's cached minimum-time
    line; a ``--raceline`` file is followed as given."""
    from racing.assembly import race_line
    from racing.raceline.cache import cache_path, line_metadata, save_raceline
    from racing.track import Raceline

    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path))
    oval, params = _oval_rl(), load_params("f1tenth")
    a = oval.arrays()
    maps = Raceline.from_arrays(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], np.full(len(a), 8.0), np.zeros(len(a)),
                                length=oval.length)
    assert race_line(oval.with_raceline(maps), None, params).raceline is maps  # nothing cached: the map's line
    mine = Raceline.from_arrays(a[:, 0], 0.99 * a[:, 1], a[:, 2], a[:, 3], a[:, 4], np.full(len(a), 9.0),
                                np.zeros(len(a)), length=oval.length)
    save_raceline(mine, cache_path(oval, params.name, "mintime", params),
                  line_metadata(oval, params.name, "mintime", {"lap_time_s": 9.5}, params))
    got = race_line(oval.with_raceline(maps), None, params).raceline
    assert np.allclose(got.x, mine.x, atol=1e-6) and np.all(got.vx == 9.0)
    assert race_line(oval.with_raceline(maps), maps, params).raceline.x[0] == maps.x[0]  # --raceline: as given
    other = race_line(oval.with_raceline(maps), None, load_params("gt_car")).raceline
    assert other is maps


def test_settings_over_the_controllers_own_reach_it_and_its_command_line():
    """``--set KEY=VALUE`` (``controller_set``): read as YAML scalars, dotted keys nest, checked as the settings
    file's keys are; the spec's command line carries them back."""
    from racing.assembly import settings_overrides

    assert settings_overrides(("guide=ilqr", "guide_share=0.25", "cost.line=0.5", "online_grip=false")) == {
        "guide": "ilqr", "guide_share": 0.25, "cost": {"line": 0.5}, "online_grip": False}
    spec = RaceSpec(controller="pure_pursuit", controller_set=("lookahead_time=0.3",), laps=1, max_time_s=1.0)
    assert spec.argv()[spec.argv().index("--set") + 1] == "lookahead_time=0.3"
    assert RaceSpec.from_args(make_parser().parse_args(["race", *spec.argv()])) == spec
    race = build(spec)
    assert race.controller.config.lookahead_time == 0.3
    assert race.record["spec"]["controller_set"] == ["lookahead_time=0.3"]


def test_the_api_makes_a_controller_from_names_as_a_race_does():
    """``racing.make_controller`` takes a track and a car by name (or path) like ``racing.race``; a name that is
    neither is the same clear error (a track's is a TrackError, which the command line maps to exit code 2)."""
    ctrl = racing.make_controller("pure_pursuit", "lab_loop", "f1tenth")
    assert ctrl.params.name == "f1tenth" and ctrl.track.name == "lab_loop"
    with pytest.raises(ConfigError, match="no_such_car"):
        racing.make_controller("pure_pursuit", "lab_loop", "no_such_car")
    with pytest.raises(TrackError, match="no_such_track"):
        racing.make_controller("pure_pursuit", "no_such_track", "f1tenth")
