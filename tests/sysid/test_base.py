"""The base car of a fit and the check that a log is possible for it (racing.sysid.base): a log of a car that
slides (body slip up to 0.3 rad, a saturated front axle, yaw swings) fits the car that drove it, and is still
refused for a car of another scale."""
import numpy as np
import pytest

from racing.config import ConfigError
from racing.logs import DriveLog
from racing.models.params import load_params
from racing.sysid.base import check_scale, resolve_base, scale_figures

F1 = load_params("f1tenth")


def _sliding_log(car=F1, rate=50.0, header=None) -> DriveLog:
    """6 s of grip cornering (kinematic curvature x 0.8: understeer), then 14 s of sliding: a saturated front
    (steering 0.3 rad, yaw rate far below the kinematic one, beta 0.2 rad), steering that chatters, and yaw swings
    of +-4 rad/s at 2 Hz that the lateral velocity takes up (v_x r peaks at 36 m/s^2, the path's lateral
    acceleration stays at 8 m/s^2)."""
    t = np.arange(0.0, 20.0, 1.0 / rate)
    st = np.zeros((t.size, 7))
    grip = t < 6.0
    delta = np.where(np.floor(t / 2.0) % 2 == 0, 0.1, -0.1)
    st[grip, 3] = 6.0
    st[grip, 6] = delta[grip]
    st[grip, 5] = 0.8 * 6.0 * np.tan(delta[grip]) / car.wheelbase
    st[grip, 4] = 0.01
    slide = (t >= 6.0) & (t < 13.0)
    st[slide, 3], st[slide, 4], st[slide, 5] = 9.0, -1.8, 0.9
    st[slide, 6] = np.where(np.arange(t.size)[slide] % 2 == 0, 0.3, 0.26)
    swing = t >= 13.0
    w = 2 * np.pi * 2.0
    st[swing, 3] = 9.0
    st[swing, 5] = 0.9 + 4.0 * np.sin(w * t[swing])
    st[swing, 4] = -0.9 - 9.0 * 4.0 / w * (1 - np.cos(w * (t[swing] - 13.0))) + 0.0 * t[swing]
    st[swing, 6] = 0.3
    cmd = np.column_stack([st[:, 6], st[:, 3], np.zeros(t.size)])
    return DriveLog(t, st, cmd, meta={"car": header} if header else {}, source="sliding.csv")


def test_a_sliding_log_fits_the_car_that_drove_it():
    log = _sliding_log()
    f = scale_figures([log])
    assert np.percentile(np.abs(log.state[:, 3] * log.state[:, 5]), 99) > 30.0  # v_x r: not the lateral acceleration
    assert f["lat_accel_p99"] < 12.0  # the true dv_y/dt + v_x r
    assert f["n_steer_samples"] < 6.0 * 50 + 1  # only the stretches without sliding
    assert f["curvature_per_tan_steer"] * F1.wheelbase == pytest.approx(0.8, rel=0.02)
    assert check_scale([log], F1)["n_steer_samples"] >= 20


def test_a_log_of_another_scale_is_still_refused():
    with pytest.raises(ConfigError, match=r"sliding.csv: the log does not fit the scale of the base car 'gt_car'.*"
                                          r"fits a wheelbase of about 0.41 m; the car's is 2.90 m"):
        check_scale([_sliding_log()], load_params("gt_car"))
    gt = load_params("gt_car")
    with pytest.raises(ConfigError, match=r"wheelbase of about 3.6\d m; the car's is 0.33 m"):
        check_scale([_sliding_log(gt)], F1)


def test_car_other_than_the_log_header_is_refused_a_variant_is_taken(tmp_path):
    log = _sliding_log(header="f1tenth")
    with pytest.raises(ConfigError, match=r"sliding.csv: the log header says it was driven by car 'f1tenth' "
                                          r"\(wheelbase 0.33 m, mass 3.74 kg\), but --car 'gt_car' is another car "
                                          r"\(wheelbase 2.90 m, mass 1200 kg\); expected --car f1tenth"):
        resolve_base("gt_car", [log])
    variant = tmp_path / "my_f1.yaml"
    F1.replace(name="my_f1", mass=4.2).to_yaml(variant)
    base, origin = resolve_base(str(variant), [log])
    assert base.name == "my_f1" and origin == "--car"
    assert resolve_base(None, [log])[0] == F1
