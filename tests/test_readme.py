"""The README's Python examples run as written (every ```python block that starts with ``import racing``), in a
fresh interpreter and an empty folder, so that they cannot drift from the code."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if b.startswith("import racing")]


def test_the_readme_has_python_examples():
    assert len(readme_examples()) >= 2


@pytest.mark.parametrize("index", range(len(readme_examples())))
def test_readme_python_example_runs(index, tmp_path):
    code = readme_examples()[index]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MPLBACKEND": "Agg"}
    import os

    for key in ("NUMBA_CACHE_DIR", "RACING_RACELINE_CACHE", "TMPDIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"README example {index} failed:\n{code}\n--- stderr ---\n{r.stderr[-3000:]}"


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


def test_cars_and_tracks_are_package_data():
    """Found through importlib.resources inside the package (an installed wheel has them), not beside it."""
    import racing
    from racing.models.params import known_cars, params_dir
    from racing.track import known_tracks, tracks_dir

    pkg = Path(racing.__file__).resolve().parent
    assert tracks_dir().resolve().is_relative_to(pkg) and params_dir().resolve().is_relative_to(pkg)
    assert {"lab_loop", "garage_gp", "ridge_ring", "harbour_circuit"} <= set(known_tracks())
    assert {"f1tenth", "gt_car"} <= set(known_cars())
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "data/**/*" in data["tool"]["setuptools"]["package-data"]["racing"]
    deps = " ".join(data["project"]["dependencies"])
    assert "torch" not in deps and "rosbags" not in deps and "casadi" not in deps
