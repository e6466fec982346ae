"""The README runs as written, in a fresh interpreter and an empty folder, so that it cannot drift from the code:

* every ```python block that starts with ``import racing``;
* every command line of every ```bash block (except the two set-up commands, which CI runs as they are:
  ``.ci/run``). Each line must have an entry in ``PLAN`` saying how it runs, or the test fails:

  - ``FULL``: exactly as written;
  - ``SHORT``: as written plus the arguments shown (argparse takes the last value of an option, so these
    shorten the run: fewer laps, pure pursuit instead of MPPI, a shorter duration, fewer bootstrap replicates);
  - ``HELP``: only ``<command> --help`` runs (it parses and imports), for the reason given: a GPU, a vehicle on
    the network, Ray, or minutes of compute (cold numba/casadi compiles, long benchmarks).

Commands that build on each other (a race, then a fit of its log, then a race with the fitted car) run in one
folder in README order (``SCENARIOS``)."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

SETUP = (
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/racing race",
    "python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 && .venv/bin/pip install -e '.[test]' && "
    ".venv/bin/python -m pytest -q -n 2 --dist loadfile",
)
PP_1LAP = ("--controller", "pure_pursuit", "--laps", "1", "--no-plot")


def FULL(*ok):
    return ("full", (), tuple(ok) or (0,))


def SHORT(args, *ok):
    return ("short", tuple(args), tuple(ok) or (0,))


def HELP(reason):
    return ("help", reason, (0,))


PLAN = {
    "racing race": SHORT(PP_1LAP),
    "racing race --controller pure_pursuit --laps 1 --out runs/first": FULL(),
    # --realtime: on a busy machine a late call is a deadline miss, an incident (exit code 3), not a failure
    "racing race --track ridge_ring --car gt_car --laps 3 --realtime": SHORT(PP_1LAP, 0, 3),
    # a 154 s lap of Monza: 30 s of it show that the circuit loads by name and races; the timeout is exit code 1
    "racing race --track Monza --car gt_car --controller pure_pursuit": SHORT(PP_1LAP + ("--max-time", "30"), 1),
    "racing race --controller ilqr --laps 1": HELP("casadi code generation and the numba compile of the iLQR "
                                                   "passes take minutes on a cold cache"),
    "racing race --controller pure_pursuit --noise 1 --delay 0.02 --friction-scale 0.9 --json": SHORT(PP_1LAP, 0, 3),
    "racing race --snapshot 5 --animate --laps 1": HELP("MPPI's kernels compile for minutes on a cold cache, and "
                                                        "the GIF takes a minute to render"),
    "racing list": FULL(),
    "racing list --json": FULL(),
    "racing raceline --method mincurv": FULL(),
    "racing raceline --track ridge_ring --car gt_car --method mintime --json": FULL(),  # the shipped line, cached
    "racing raceline --track Monza --car gt_car --method mincurv --out monza_gt_car.csv": FULL(),
    "racing race --controller pure_pursuit --laps 1 --out runs/log_me": FULL(),
    "racing fit runs/log_me/log.csv --car f1tenth --out my_car.yaml": SHORT(("--boot", "20")),
    "racing race --controller pure_pursuit --car f1tenth --model-params my_car.yaml --laps 1": FULL(),
    "racing learn --car f1tenth --perturb 0.25 --controller mppi --iterations 3": HELP(
        "four MPPI races and three fits: minutes"),
    "racing bench --quick": HELP("compiles and times the MPPI and iLQR kernels: minutes"),
    "racing bench --json": HELP("compiles and times the MPPI and iLQR kernels: minutes"),
    "racing keygen car.key": FULL(),
    # any free port (5600 may be taken on a shared machine), two seconds
    "racing vehicle-sim --key car.key --port 5600": SHORT(("--duration", "2", "--port", "0")),
    "racing drive --vehicle udp://127.0.0.1:5600 --key car.key --laps 2": HELP(
        "needs a vehicle listening on the network (the command above, in another terminal)"),
    # 3 = completed with deadline misses: on a machine busy with other jobs a real-time tick can be late
    "racing drive --vehicle sim --duration 20": SHORT(("--duration", "3", "--log", "drive.csv"), 0, 3),
    "python tools/ros2_bridge.py --key car.key --port 5600 --interface speed": HELP("runs until stopped; tests/tools/test_ros2_bridge_rclpy.py runs it against ROS 2"),
    "racing sweep sweeps/example_sweep.yaml --workers 2": HELP("starts Ray and races six MPPI laps: minutes"),
    "racing tune sweeps/gt_car_mppi_tune.yaml --workers 1 --out runs/tune_gt": HELP("40 trials of three "
                                                                                  "full-size laps: hours"),
    "python tools/lap_table.py": HELP("81 real-time races of three laps on nine circuits (pure pursuit, MPPI, "
                                      "iLQR): about 30 minutes"),
    "python tools/lap_table.py --no-pp --noise 1 --delay 0.02": HELP("54 real-time races of three laps on nine "
                                                                    "circuits (MPPI, iLQR): about 25 minutes"),
    "python tools/lap_table.py --controllers mppi --mppi-set guide=ilqr": HELP(
        "27 real-time MPPI races with an iLQR guide on nine circuits: about 20 minutes"),
    "racing race --set guide=ilqr --laps 3 --realtime": HELP("casadi code generation for the iLQR guide and three "
                                                            "real-time MPPI laps take minutes on a cold cache"),
    "python tools/gpu_check.py": HELP("needs an NVIDIA GPU"),
    "racing bench --device cuda": HELP("needs an NVIDIA GPU (exit 2 without one: tests/control/test_mppi_gpu.py)"),
    "python tools/foreign_bench.py": HELP("24 cells of a 120 s excitation, a fit, two minimum-time references and a "
                                          "2-lap race each: about an hour on two cores"),
    "python tools/drive_bench.py": HELP("real-time runs under a CPU hog: about six minutes"),
}

SCENARIOS = [
    ("racing race --controller pure_pursuit --laps 1 --out runs/log_me",
     "racing fit runs/log_me/log.csv --car f1tenth --out my_car.yaml",
     "racing race --controller pure_pursuit --car f1tenth --model-params my_car.yaml --laps 1"),
    ("racing keygen car.key", "racing vehicle-sim --key car.key --port 5600"),
]


def readme_examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    return [b for b in blocks if b.startswith("import racing")]


def readme_commands() -> list[str]:
    """Every command line of the README's ```bash blocks, without its trailing comment, in README order."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
            if line and line not in SETUP:
                commands.append(line)
    return commands


def scenarios() -> list[tuple[str, ...]]:
    grouped = {c for s in SCENARIOS for c in s}
    return list(SCENARIOS) + [(c,) for c in dict.fromkeys(readme_commands()) if c not in grouped]  # once each


def _env(home: Path) -> dict:
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "MPLBACKEND": "Agg", "RACING_RACELINE_CACHE": str(home / "raceline_cache")}
    for key in ("NUMBA_CACHE_DIR", "TMPDIR", "RACING_CACHE"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _argv(command: str, kind: str, extra: tuple) -> list[str]:
    words = shlex.split(command)
    if words[0] == "racing":
        base, args = [sys.executable, "-m", "racing", words[1]], words[2:]
    elif words[0] == "python" and words[1].startswith("tools/"):
        base, args = [sys.executable, str(ROOT / words[1])], words[2:]
    else:
        raise AssertionError(f"README command {command!r}: neither 'racing ...' nor 'python tools/...'")
    if kind == "help":
        return base + ["--help"]
    return base + args + list(extra)


def test_the_readme_has_python_examples():
    assert len(readme_examples()) >= 2


def test_every_readme_command_has_a_plan_and_every_plan_a_command():
    commands = readme_commands()
    unplanned = [c for c in commands if c not in PLAN]
    stale = [c for c in PLAN if c not in commands]
    assert not unplanned, f"README commands neither run nor listed in tests/test_readme.py PLAN: {unplanned}"
    assert not stale, f"PLAN entries no longer in the README: {stale}"
    assert all(c in commands for s in SCENARIOS for c in s)


@pytest.mark.parametrize("index", range(len(readme_examples())))
def test_readme_python_example_runs(index, tmp_path):
    code = readme_examples()[index]
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"README example {index} failed:\n{code}\n--- stderr ---\n{r.stderr[-3000:]}"


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s[-1][:60])
def test_readme_command_runs(scenario, tmp_path):
    """Each command as its PLAN says (full, shortened, or --help only), in a fresh folder; exit code as planned."""
    for command in scenario:
        kind, extra, ok = PLAN[command]
        argv = _argv(command, kind, extra if kind == "short" else ())
        r = subprocess.run(argv, cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
        shown = " ".join(argv[2:] if argv[1] == "-m" else argv[1:])
        assert r.returncode in ok, (f"README command {command!r} ({kind}: {shown}) exited {r.returncode}, "
                                    f"expected {ok}\n--- stderr ---\n{r.stderr[-3000:]}")
        if kind == "help":
            assert "usage:" in r.stdout, r.stdout[-2000:]
        elif "--json" in command:
            json.loads(r.stdout)


def _prints_ok(code: str) -> None:
    """Run ``code`` in a fresh interpreter on the checkout alone; it must print ``ok``."""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_import_racing_is_light_and_exports_the_api():
    code = ("import sys, racing\n"
            "heavy = [m for m in ('numba', 'matplotlib', 'torch', 'rosbags', 'scipy') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "for name in racing.__all__: getattr(racing, name)\n"
            "print('ok')\n")
    _prints_ok(code)


def test_importing_the_plot_modules_leaves_the_backend_alone():
    code = ("import matplotlib\n"
            "matplotlib.use('svg')\n"
            "import racing.plot.race, racing.plot.mppi, racing.plot.sysid\n"
            "assert matplotlib.get_backend().lower() == 'svg', matplotlib.get_backend()\n"
            "print('ok')\n")
    _prints_ok(code)


def test_a_race_imports_neither_torch_nor_rosbags_nor_casadi(tmp_path):
    """The main job needs the core only (the extras learn, ros, raceline hold torch, rosbags, casadi)."""
    code = ("import sys\n"
            "from racing.cli import main\n"
            f"rc = main(['race', '--controller', 'pure_pursuit', '--max-time', '2', '--out', {str(tmp_path / 'r')!r}])\n"
            "import racing.control.mppi, racing.sysid.parametric, racing.sysid.cli, racing.plot.race, racing.api\n"
            "heavy = [m for m in ('torch', 'rosbags', 'casadi', 'pytorch_mppi') if m in sys.modules]\n"
            "assert rc == 1 and not heavy, (rc, heavy)\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                                       "HOME": str(tmp_path), "MPLBACKEND": "Agg"},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


def test_cars_and_tracks_are_package_data(tmp_path):
    """The top-level tracks/ and vehicle_params/ (with the TUM circuits and their licence) go into the wheel as
    racing/tracks and racing/vehicle_params; a checkout finds them beside the package."""
    import subprocess
    import zipfile

    from racing.models.params import known_cars, params_dir
    from racing.track import known_tracks, tracks_dir

    assert tracks_dir().resolve() == (ROOT / "tracks").resolve() and params_dir().resolve() == (
        ROOT / "vehicle_params").resolve()
    assert {"lab_loop", "garage_gp", "ridge_ring", "harbour_circuit", "Monza"} <= set(known_tracks())
    assert {"f1tenth", "gt_car"} <= set(known_cars())
    import setuptools

    # the venv's own setuptools when it is recent enough (pyproject's build requirement), else pip's isolated build
    own = ["--no-build-isolation"] if int(setuptools.__version__.split(".")[0]) >= 68 else []
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *own, "-w", str(tmp_path),
                        str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("racing-*.whl"))).namelist())
    for f in ("racing/tracks/Monza/centerline.csv", "racing/tracks/LICENSES/LGPL-3.0.txt",
              "racing/tracks/TUM_PROVENANCE.md", "racing/tracks/lab_loop/raceline_f1tenth_mintime.csv",
              "racing/vehicle_params/gt_car.yaml", "racing/control/mppi/f1tenth.yaml"):
        assert f in names, f
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = " ".join(data["project"]["dependencies"])
    assert "torch" not in deps and "rosbags" not in deps and "casadi" not in deps
