"""Foreign CSVs through a column map (units, reference point), pedal logs in the project format, and bad logs
with file line numbers."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from racing.config import ConfigError
from racing.logs import DriveLog, LogError, read_log
from racing.sysid.columns import load_column_map, move_to_cog, read_mapped_csv
from racing.sysid.logs import load_logs

AV21 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "logs" / "av21" / "Putnam_park2023_run4_2.csv"

MAP = """\
delimiter: ";"
header_prefix: "# "
car: f1tenth
reference_point: [0.1, 0.0]
columns:
  t: {column: "time_ms", unit: ms}
  x: {column: "px", unit: m}
  y: {column: "py", unit: m}
  yaw: {column: "heading", unit: deg}
  vx: {column: "u", unit: km/h}
  vy: {column: "v", unit: m/s}
  yaw_rate: {column: "r", unit: deg/s}
  steer: {column: "delta", unit: deg}
  throttle: {column: "thr", unit: fraction}
  brake: {column: "bp", unit: bar}
"""


def _pedal_log(n=60):
    rng = np.random.default_rng(2)
    t = np.arange(n) * 0.04
    st = np.column_stack([np.cumsum(np.full(n, 0.4)), np.zeros(n), np.linspace(-0.2, 0.2, n), np.full(n, 10.0),
                          rng.normal(size=n) * 0.1, rng.normal(size=n) * 0.1, rng.normal(size=n) * 0.01])
    ped = np.column_stack([rng.uniform(0, 60, n), rng.uniform(0, 2000, n)])
    wheels = rng.uniform(9, 11, (n, 4))
    return DriveLog(t, st, np.column_stack([st[:, 6], np.zeros(n), np.zeros(n)]), meta={"car": "av21",
                    "longitudinal": "pedals", "steer_command": "none"}, pedals=ped, wheels=wheels)


def test_pedal_log_round_trips(tmp_path):
    log = _pedal_log()
    log.save(tmp_path / "p.csv")
    text = (tmp_path / "p.csv").read_text()
    assert "throttle,brake,wheel_fl,wheel_fr,wheel_rl,wheel_rr" in text
    back = read_log(tmp_path / "p.csv")
    np.testing.assert_allclose(back.pedals, log.pedals, rtol=1e-8)
    np.testing.assert_allclose(back.wheels, log.wheels, rtol=1e-8)
    np.testing.assert_allclose(back.state, log.state, rtol=1e-8, atol=1e-12)
    assert back.meta["longitudinal"] == "pedals" and back.meta["steer_command"] == "none"
    # a pedal log without speed/steering command columns reads too (a real car has none)
    lines = text.splitlines()
    hdr_i = next(i for i, ln in enumerate(lines) if ln.startswith("t,"))
    cols = lines[hdr_i].split(",")
    keep = [i for i, c in enumerate(cols) if c not in ("cmd_steer", "cmd_speed", "cmd_accel")]
    out = lines[:hdr_i] + [",".join(lines[j].split(",")[i] for i in keep) for j in range(hdr_i, len(lines))]
    (tmp_path / "q.csv").write_text("\n".join(out) + "\n")
    q = read_log(tmp_path / "q.csv")
    np.testing.assert_allclose(q.pedals, log.pedals, rtol=1e-8)
    np.testing.assert_allclose(q.command[:, 0], log.state[:, 6], rtol=1e-8)


def test_column_map_units_and_reference_point(tmp_path):
    (tmp_path / "map.yaml").write_text(MAP)
    rows = ["# time_ms;px;py;heading;u;v;r;delta;thr;bp;extra"]
    for k in range(20):
        rows.append(f"{1000 + 20 * k};{k * 0.1};0;90;36;0.5;57.29577951308232;1.0;0.25;2;7")
    (tmp_path / "f.csv").write_text("\n".join(rows) + "\n")
    cmap = load_column_map(tmp_path / "map.yaml")
    log = read_mapped_csv(tmp_path / "f.csv", cmap)
    assert log.t[1] == pytest.approx(0.02) and log.t[0] == 0.0
    s = log.state[0]
    assert s[2] == pytest.approx(math.pi / 2) and s[5] == pytest.approx(1.0)
    assert s[3] == pytest.approx(10.0)                 # 36 km/h, reference point ahead on the x axis: v_x unchanged
    assert s[4] == pytest.approx(0.5 - 1.0 * 0.1)      # v_y,cog = v_y,ref - r d_x
    assert s[0] == pytest.approx(0.0) and s[1] == pytest.approx(-0.1)  # p_cog = p_ref - R(yaw) d
    assert s[6] == pytest.approx(math.radians(1.0))
    np.testing.assert_allclose(log.pedals[0], [25.0, 200.0])  # % and kPa
    assert log.meta["longitudinal"] == "pedals" and log.meta["car"] == "f1tenth"
    np.testing.assert_allclose(move_to_cog(move_to_cog(log.state, (0.0, 0.0)), (0, 0)), log.state)


def test_column_map_errors(tmp_path):
    (tmp_path / "m.yaml").write_text(MAP.replace("unit: km/h", "unit: furlong/fortnight"))
    with pytest.raises(ConfigError, match=r"columns.vx: unit 'furlong/fortnight' is not a speed unit"):
        load_column_map(tmp_path / "m.yaml")
    (tmp_path / "m.yaml").write_text(MAP.replace("  yaw_rate:", "  yaw_rat:"))
    with pytest.raises(ConfigError, match="columns.yaw_rat: unknown channel"):
        load_column_map(tmp_path / "m.yaml")
    (tmp_path / "m.yaml").write_text(MAP)
    (tmp_path / "f.csv").write_text("# time_ms;px;py\n1;2;3\n")
    with pytest.raises(LogError, match=r"line 1: column\(s\) of the map .* not in the file: .*columns present: time_ms, px, py"):
        read_mapped_csv(tmp_path / "f.csv", load_column_map(tmp_path / "m.yaml"))


def _csv_rows(tmp_path, edit):
    from racing.sysid.excite import excitation_log
    from racing.models.params import load_params

    log, _ = excitation_log(load_params("f1tenth"), 1.0, seed=0)
    log.save(tmp_path / "a.csv")
    lines = (tmp_path / "a.csv").read_text().splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("t,")) + 1
    edit(lines, first)
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "b.csv", first


def test_bad_csv_rows_name_file_lines(tmp_path):
    def nan(lines, first):
        v = lines[first + 5].split(",")
        v[4] = "nan"
        lines[first + 5] = ",".join(v)
    path, first = _csv_rows(tmp_path, nan)
    with pytest.raises(LogError, match=rf"b.csv: line {first + 6}: column vx is nan"):
        load_logs([path])

    def dup(lines, first):
        v = lines[first + 8].split(",")
        v[0] = lines[first + 7].split(",")[0]
        lines[first + 8] = ",".join(v)
    path, first = _csv_rows(tmp_path, dup)
    with pytest.raises(LogError, match=rf"line {first + 9}: duplicate timestamp"):
        load_logs([path])

    def text(lines, first):
        lines[first + 2] = lines[first + 2].replace(lines[first + 2].split(",")[3], "abc", 1)
    path, first = _csv_rows(tmp_path, text)
    with pytest.raises(LogError, match=rf"line {first + 3}: 'abc' is not a number"):
        load_logs([path])


@pytest.mark.skipif(not AV21.is_file(), reason="AV-21 log (../shared/data/logs/av21) not present")
def test_av21_reads_through_its_column_map():
    log = load_logs([AV21], columns="av21")[0]
    assert log.t.size == 11900 and log.duration == pytest.approx(475.96, abs=0.05)
    assert log.pedals is not None and log.wheels is not None and log.imu is None
    assert log.meta["steer_source"] == "measured" and log.meta["longitudinal"] == "pedals"
    assert 0.005 < float(log.meta["velocity_yaw_offset"]) < 0.012  # the file's v_y / v_x on straights
    assert log.pedals[:, 0].max() == pytest.approx(42.46, abs=0.01) and log.wheels.max() < 40  # km/h -> m/s
