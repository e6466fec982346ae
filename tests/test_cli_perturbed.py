"""racing race on a perturbed plant (--friction-scale, --mass-scale) and from a rolling start (--start-speed)."""
from __future__ import annotations

import json

import pytest

from racing.cli import main


def test_perturbed_plant_keeps_the_controllers_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["race", "--controller", "pure_pursuit", "--laps", "1", "--friction-scale", "0.9", "--mass-scale",
                 "1.2", "--start-speed", "3", "--out", str(out), "--no-plot", "--json"]) in (0, 3)
    summary = json.loads(capsys.readouterr().out)
    assert summary["reference_lap_s"] > 0          # the car's own reference (the name is kept)
    import yaml

    conf = yaml.safe_load((out / "config.yaml").read_text())
    assert conf["plant_scales"] == {"friction": 0.9, "mass": 1.2}
    assert conf["car"]["mass"] == pytest.approx(1.2 * conf["model_car"]["mass"])
    assert conf["car"]["D_f"] == pytest.approx(0.9 * conf["model_car"]["D_f"])
    assert conf["sim"]["start_speed"] == 3.0


@pytest.mark.parametrize("argv, pattern", [
    (["--friction-scale", "0"], r"--friction-scale: friction scale = 0.0; expected a number > 0"),
    (["--mass-scale", "-2"], r"--mass-scale: mass scale = -2.0"),
    (["--start-speed", "-1"], r"--start-speed: .*start_speed"),
])
def test_bad_perturbation_options(argv, pattern, capsys):
    assert main(["race", "--controller", "pure_pursuit", "--no-save", *argv]) == 2
    import re

    assert re.search(pattern, capsys.readouterr().err)
