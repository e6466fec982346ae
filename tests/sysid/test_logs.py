"""ROS bag reading (ROS 2 MCAP + sqlite, ROS 1) and clear errors for bad logs."""
from __future__ import annotations

import numpy as np
import pytest

from racing.logs import DriveLog, LogError
from racing.sysid.logs import load_logs, read_bag, write_bag
from racing.sysid.parametric import fit
from racing.models.params import load_params


def _log(n=150):
    rng = np.random.default_rng(0)
    t = np.arange(n) / 50.0
    st = np.column_stack([np.cumsum(rng.normal(size=n)) * 0.01, rng.normal(size=n), np.linspace(-3, 3, n),
                          2 + rng.normal(size=n) * 0.1, rng.normal(size=n) * 0.1, rng.normal(size=n),
                          np.zeros(n)])
    cmd = np.column_stack([rng.uniform(-0.3, 0.3, n), rng.uniform(1, 5, n), np.zeros(n)]).astype(np.float32)
    st[:, 6] = cmd[:, 0]
    imu = rng.normal(size=(n, 3))
    return DriveLog(t, st, cmd.astype(float), imu)


@pytest.mark.parametrize("storage,name", [("mcap", "bag_mcap"), ("sqlite3", "bag_db3"), ("ros1", "bag1.bag")])
def test_bags_read_back_same_arrays(tmp_path, storage, name):
    log = _log()
    path = write_bag(tmp_path / name, log, imu_topic="/imu", storage=storage)
    back = read_bag(path, imu_topic="/imu", rate_hz=50.0)
    assert back.t.shape == log.t.shape
    np.testing.assert_allclose(back.t, log.t, atol=1e-9)
    np.testing.assert_allclose(back.state[:, :6], log.state[:, :6], atol=1e-9)
    np.testing.assert_allclose(back.state[:, 6], log.command[:, 0], atol=1e-6)  # steer = commanded angle
    np.testing.assert_allclose(back.command, log.command, atol=1e-6)            # float32 in the message
    np.testing.assert_allclose(back.imu, log.imu, atol=1e-9)
    assert back.meta["steer_source"] == "command"


def test_single_mcap_and_db3_files_and_folder_dispatch(tmp_path):
    log = _log()
    a = write_bag(tmp_path / "a", log, storage="mcap")
    b = write_bag(tmp_path / "b", log, storage="sqlite3")
    c = write_bag(tmp_path / "c.bag", log, storage="ros1")
    log.save(tmp_path / "d.csv")
    arrays = [lg.state for lg in load_logs([a / "a.mcap", b / "b.db3", c, a])]
    for s in arrays[1:]:
        np.testing.assert_allclose(s, arrays[0], atol=1e-9)
    assert len(load_logs([tmp_path])) == 4  # folder: 2 ROS 2 bag folders, a .bag and a .csv


def test_missing_topic_lists_topics(tmp_path):
    path = write_bag(tmp_path / "b", _log(), storage="mcap")
    with pytest.raises(LogError, match=r"'/odometry' not in the bag; topics present: /drive .*, /odom"):
        read_bag(path, odom_topic="/odometry")


def test_duplicate_and_nonmonotonic_stamps(tmp_path):
    log = _log()
    t = log.t.copy()
    t[10] = t[9]
    bad = DriveLog(t, log.state, log.command)
    path = write_bag(tmp_path / "dup", bad, storage="mcap")
    with pytest.raises(LogError, match="duplicate timestamp"):
        read_bag(path)
    t = log.t.copy()
    t[10] = t[9] - 0.005
    path = write_bag(tmp_path / "back", DriveLog(t, log.state, log.command), storage="sqlite3")
    with pytest.raises(LogError, match="non-monotonic timestamp"):
        read_bag(path)


def test_nan_in_bag_and_csv(tmp_path):
    log = _log()
    st = log.state.copy()
    st[5, 4] = np.nan
    path = write_bag(tmp_path / "nan", DriveLog(log.t, st, log.command), storage="mcap")
    with pytest.raises(LogError, match="vy is nan"):
        read_bag(path)
    csv = tmp_path / "nan.csv"
    DriveLog(log.t, st, log.command).save(csv)
    with pytest.raises(LogError, match="column vy is nan"):
        load_logs([csv])


def test_log_shorter_than_horizon():
    log = _log(10)  # 0.18 s
    with pytest.raises(LogError, match="shorter than the fit horizon"):
        fit([log], load_params("f1tenth"), horizon_s=0.5)
