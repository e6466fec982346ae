"""Vehicle parameter files: strict loading, errors naming file and key."""
import numpy as np
import pytest

from racing.config import ConfigError
from racing.models.params import N_PARAMS, PARAM_NAMES, VehicleParams, known_cars, load_params, params_dir


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
    q = VehicleParams.from_array(p.to_array(), name="gt_car", tuning=p.tuning, drive_interface=p.drive_interface)
    assert q == p
    p.to_yaml(tmp_path / "x.yaml", header="test")
    assert load_params(tmp_path / "x.yaml") == p


def test_the_speed_loops_integral_gain_round_trips_and_is_checked(tmp_path):
    pi = load_params("gt_car").replace(speed_ki=0.35)
    pi.to_yaml(tmp_path / "pi.yaml")
    assert "speed_ki: 0.35" in (tmp_path / "pi.yaml").read_text() and load_params(tmp_path / "pi.yaml") == pi
    assert "speed_ki" not in PARAM_NAMES and load_params("gt_car").speed_ki == 0.0  # a P loop unless said
    with pytest.raises(ConfigError, match=r"car\.yaml: speed_ki"):
        load_params(_write(tmp_path, add="speed_ki: -0.1"))
    with pytest.raises(ConfigError, match="speed_ki"):
        pi.replace(speed_ki=float("nan"))


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


# ------------------------------------------------------------------ bad car files and arguments (issue 27)
def _car_file(tmp_path, **changes):
    text = (params_dir() / "f1tenth.yaml").read_text()
    lines = [ln for ln in text.splitlines() if ln.split(":")[0] not in changes]
    path = tmp_path / "car.yaml"
    path.write_text("\n".join(lines + [f"{k}: {v}" for k, v in changes.items()]) + "\n")
    return path


@pytest.mark.parametrize("key,value,pattern", [
    ("mass", "1.0e+30", r"car.yaml: mass: 1e\+30 is above the maximum 200000.0 kg \(expected 0.05 .. 200000 kg: a "
                        r"plausible range for cars from an F1TENTH model car to a full-size race car or a truck\)"),
    ("v_max", "1.0e+9", r"car.yaml: v_max: 1000000000.0 is above the maximum 150.0 m/s \(expected > 0 and <= 150 m/s"),
    ("mass", "0.001", r"car.yaml: mass: 0.001 is below the minimum 0.05 kg \(expected 0.05 .. 200000 kg"),
    ("mass", "1.0e30", r"car.yaml: mass: got the text '1.0e30', not a number: YAML 1.1 .* write it as 1.0e\+30"),
    ("mass", "1e30", r"car.yaml: mass: got the text '1e30', not a number: .* write it as 1.0e\+30"),
    ("inertia_z", "5e-3", r"car.yaml: inertia_z: got the text '5e-3', not a number: .* write it as 5.0e-3"),
])
def test_implausible_or_textual_values_name_file_field_and_range(tmp_path, key, value, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_params(_car_file(tmp_path, **{key: value}))


def test_plausible_ranges_hold_the_shipped_cars_and_a_truck():
    for name in known_cars():
        load_params(name)
    truck = load_params("gt_car").replace(name="truck", mass=40000.0, inertia_z=2.0e5, l_f=2.0, l_r=3.5, width=2.55,
                                          v_max=25.0, power_max=4.5e5, c_drag=3.6)
    assert truck.mass == 40000.0


@pytest.mark.parametrize("content,pattern", [
    (bytes(range(256)) * 4, r"car.bin: a binary file \(NUL bytes\), not YAML; expected a text file"),
    (b"mass: \xff\xfe 3\n", r"car.bin: not a UTF-8 text file \(byte 6: b'\\xff'\); expected a YAML text file"),
])
def test_binary_car_file_is_a_clear_error(tmp_path, content, pattern):
    path = tmp_path / "car.bin"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=pattern):
        load_params(path)


def test_car_from_a_mapping_gets_the_same_checks():
    f1 = load_params("f1tenth")
    values = {f: getattr(f1, f) for f in ("name", *PARAM_NAMES)}
    assert load_params(values) == f1.replace(tuning=None)
    assert load_params(f1) is f1
    with pytest.raises(ConfigError, match=r"car parameters \(a mapping\): mass: 1e\+30 is above the maximum"):
        load_params({**values, "mass": 1e30})
    with pytest.raises(ConfigError, match=r"car parameters \(a mapping\): unknown key 'colour'"):
        load_params({**values, "colour": "red"})
    with pytest.raises(ConfigError, match=r"car parameters \(a mapping\): missing key v_max \[m/s\]"):
        load_params({k: v for k, v in values.items() if k != "v_max"})
    with pytest.raises(ConfigError, match=r"car: expected a car name, a path to a car YAML or a mapping of its "
                                          r"parameters, got int 5"):
        load_params(5)
