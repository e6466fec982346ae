"""Vehicle parameter files: strict loading, errors naming file and key."""
import numpy as np
import pytest

from racing.config import ConfigError
from racing.models.params import N_PARAMS, PARAM_NAMES, VehicleParams, known_cars, load_params


def test_shipped_cars_load():
    cars = known_cars()
    assert {"f1tenth", "gt_car"} <= set(cars)
    f1 = load_params("f1tenth")
    assert f1.mass == pytest.approx(3.74) and f1.inertia_z == pytest.approx(0.04712)
    assert f1.l_f == pytest.approx(0.15875) and f1.l_r == pytest.approx(0.17145)
    assert f1.steer_max == pytest.approx(0.4189) and f1.steer_rate_max == pytest.approx(3.2)
    gt = load_params("gt_car")
    assert 1000 <= gt.mass <= 1400
    assert f1.to_array().shape == (N_PARAMS,)


def test_array_round_trip(tmp_path):
    p = load_params("gt_car")
    q = VehicleParams.from_array(p.to_array(), name="gt_car", tuning=p.tuning)
    assert q == p
    p.to_yaml(tmp_path / "x.yaml", header="test")
    assert load_params(tmp_path / "x.yaml") == p


def _write(tmp_path, text_changes=None, drop=None, add=None):
    src = (load_params.__globals__["params_dir"]() / "f1tenth.yaml").read_text().splitlines()
    out = []
    for line in src:
        key = line.split(":")[0].strip()
        if drop and key == drop:
            continue
        if text_changes and key in text_changes:
            line = f"{key}: {text_changes[key]}"
        out.append(line)
    if add:
        out.append(add)
    path = tmp_path / "car.yaml"
    path.write_text("\n".join(out) + "\n")
    return path


def test_unknown_key_names_file_and_key(tmp_path):
    path = _write(tmp_path, add="massss: 3.0")
    with pytest.raises(ConfigError, match=r"car\.yaml.*unknown key 'massss'"):
        load_params(path)


def test_missing_key(tmp_path):
    path = _write(tmp_path, drop="inertia_z")
    with pytest.raises(ConfigError, match=r"car\.yaml.*missing key inertia_z"):
        load_params(path)


def test_negative_mass(tmp_path):
    path = _write(tmp_path, text_changes={"mass": "-3.0"})
    with pytest.raises(ConfigError, match=r"car\.yaml: mass.*-3\.0"):
        load_params(path)


@pytest.mark.parametrize("key,value", [("mu", ".nan"), ("steer_max", "2.0"), ("B_f", "abc"), ("c_roll", "-0.1")])
def test_bad_values(tmp_path, key, value):
    path = _write(tmp_path, text_changes={key: value})
    with pytest.raises(ConfigError, match=rf"car\.yaml: {key}"):
        load_params(path)


def test_unknown_car_lists_known():
    with pytest.raises(ConfigError, match=r"unknown car 'nope'.*f1tenth.*gt_car"):
        load_params("nope")


def test_blend_order(tmp_path):
    path = _write(tmp_path, text_changes={"v_blend_high": "0.1"})
    with pytest.raises(ConfigError, match="v_blend_high"):
        load_params(path)


def test_param_names_cover_fields():
    assert len(PARAM_NAMES) == N_PARAMS
    assert np.all(np.isfinite(load_params().to_array()))
