"""Track loaders: TUM racetrack-database csv, F1TENTH folders, racelines, the project's tracks, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from racing.track import (
    Raceline,
    Track,
    TrackError,
    known_tracks,
    load_track,
    load_xy_raceline,
    read_centerline,
    tracks_dir,
    write_centerline,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tracks"  # the F1TENTH map (GPL-3.0)
OSCHERSLEBEN = SHARED / "f1tenth" / "Oschersleben"

# official circuit lengths [m] (the database's centre lines are within a few per cent)
TUM_LENGTHS = {"Monza": 5793.0, "BrandsHatch": 3908.0, "Catalunya": 4655.0, "Norisring": 2300.0,
               "Spielberg": 4318.0}


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared track data not present: {path}")
    return path


def _tum_folders():
    """The shipped TUM circuits: the track folders that carry the database's reference line."""
    return sorted(p.parent for p in tracks_dir().glob("*/tum_raceline_xy.csv"))


# ---------------------------------------------------------------------------- the shipped TUM circuits
def test_tum_circuits_ship_with_their_licence_and_provenance():
    assert len(_tum_folders()) >= 5
    text = (tracks_dir() / "TUM_PROVENANCE.md").read_text()
    assert "github.com/TUMFTM/racetrack-database" in text and "LGPL-3.0" in text
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (tracks_dir() / "LICENSES" / "LGPL-3.0.txt").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in (tracks_dir() / "LICENSES" / "GPL-3.0.txt").read_text()
    assert not list(tracks_dir().glob("*/*_map.yaml"))  # no F1TENTH map (GPL-3.0) in the project


@pytest.mark.parametrize("folder", _tum_folders(), ids=lambda p: p.name)
def test_tum_circuit_loads(folder):
    tr = load_track(folder.name)
    assert tr.name == folder.name and tr.source == str(folder) and tr.scale == "full"
    assert 1000.0 < tr.length < 8000.0
    if folder.name in TUM_LENGTHS:
        assert tr.length == pytest.approx(TUM_LENGTHS[folder.name], rel=0.03)
    assert 4.0 < tr.ds < 6.0  # database points every ~5 m
    assert np.all(tr.w_left > 0) and np.all(tr.w_right > 0)
    assert 6.0 < np.mean(tr.w_left + tr.w_right) < 25.0
    assert tr.geometry_problems() == []
    assert tr.raceline is None
    # Frenet round trip on a real circuit
    rng = np.random.default_rng(3)
    s0 = rng.uniform(0, tr.length, 2000)
    wl, wr = tr.widths_at(s0)
    n0 = rng.uniform(-0.95 * wr, 0.95 * wl)
    p = tr.to_cartesian(s0, n0)
    s, n, _ = tr.frenet(p)
    assert np.max(np.abs(tr.to_cartesian(s, n) - p)) < 1e-3
    assert tr.is_inside(p).all()
    # the database's reference line (x, y only) lies on the track
    rl_path = folder / "tum_raceline_xy.csv"
    if rl_path.is_file():
        xy = load_xy_raceline(rl_path)
        assert xy.ndim == 2 and xy.shape[1] == 2 and len(xy) > 100
        assert tr.is_inside(xy, margin=-0.5).mean() > 0.98


def test_monza_length():
    tr = load_track("Monza")
    assert tr.length == pytest.approx(5800.0, rel=0.01)


# ---------------------------------------------------------------------------- shared F1TENTH folder
def test_f1tenth_folder_with_csv_widths_and_raceline():
    tr = load_track(_need(OSCHERSLEBEN))
    assert tr.name == "Oschersleben" and tr.source == str(OSCHERSLEBEN)
    assert 200.0 < tr.length < 320.0
    _, wr, wl, _ = read_centerline(next(OSCHERSLEBEN.glob("*centerline.csv")))
    assert np.allclose(tr.w_left, wl.mean()) and np.allclose(tr.w_right, wr.mean())
    rl = tr.raceline
    assert isinstance(rl, Raceline)
    assert len(rl) > 100 and rl.xy().shape == (len(rl), 2)
    assert np.all(np.diff(rl.s) > 0) and rl.length > rl.s[-1]
    assert np.all(rl.psi > -np.pi) and np.all(rl.psi <= np.pi)
    assert rl.length == pytest.approx(tr.length, rel=0.1)
    assert tr.is_inside(rl.xy()).mean() > 0.99
    # the raceline's heading follows the track direction
    s, _, dpsi = tr.frenet(rl.xy(), rl.psi)
    assert np.median(np.abs(dpsi)) < 0.3


def test_f1tenth_measure_widths():
    csv_tr = load_track(_need(OSCHERSLEBEN))
    tr = load_track(OSCHERSLEBEN, measure_widths=True)
    assert np.allclose(tr.xy, csv_tr.xy) and tr.length == csv_tr.length
    for w, w_csv in ((tr.w_left, csv_tr.w_left), (tr.w_right, csv_tr.w_right)):
        assert np.all(w > 0)
        ratio = w.mean() / w_csv.mean()
        assert 0.5 < ratio < 2.0
    assert tr.raceline is not None


def test_raceline_7col_load_drops_repeated_point():
    path = _need(next(iter(sorted(OSCHERSLEBEN.glob("*raceline.csv"))), OSCHERSLEBEN / "missing"))
    rl = Raceline.load(path)
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    last = np.array([float(v) for v in lines[-1].split(";")])
    assert len(rl) == len(lines) - 1  # the repeated first point at the end is dropped
    assert rl.length == pytest.approx(last[0])
    assert rl.s[0] == 0.0 and rl.source == str(path)


# ---------------------------------------------------------------------------- round trips (tmp files)
def test_raceline_save_load_round_trip(tmp_path):
    s = np.linspace(0, 9.0, 10)
    th = s / 10 * 2 * np.pi
    rl = Raceline(s=s, x=np.cos(th), y=np.sin(th), psi=np.zeros(10), kappa=np.ones(10), vx=np.full(10, 2.0),
                  ax=np.zeros(10), length=10.0)
    p = tmp_path / "line_raceline.csv"
    rl.save(p)
    text = p.read_text()
    assert "# s_m; x_m; y_m; psi_rad; kappa_radpm; vx_mps; ax_mps2" in text
    back = Raceline.load(p)
    for k in ("s", "x", "y", "psi", "kappa", "vx", "ax"):
        assert np.allclose(getattr(back, k), getattr(rl, k), atol=1e-6)
    assert back.length == pytest.approx(10.0)


def test_centerline_write_read_and_folder_with_raceline(tmp_path):
    th = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    xy = np.column_stack([8 * np.cos(th), 5 * np.sin(th)])
    folder = tmp_path / "oval"
    folder.mkdir()
    write_centerline(folder / "centerline.csv", xy, 1.0, 1.5, comments=["test oval"])
    (folder / "track.yaml").write_text('name: oval\ndescription: "an oval"\nscale: "1:10"\n')
    tr = load_track(folder)
    assert tr.name == "oval" and tr.scale == "1:10" and tr.description == "an oval"
    assert np.allclose(tr.w_right, 1.0) and np.allclose(tr.w_left, 1.5)
    s = tr.s[::5]
    rl = Raceline.from_arrays(s, tr.xy[::5, 0], tr.xy[::5, 1], tr.psi[::5], tr.kappa[::5], np.full(s.size, 3.0),
                              np.zeros(s.size))
    rl.save(folder / "oval_raceline.csv")
    tr2 = load_track(str(folder))
    assert tr2.raceline is not None and len(tr2.raceline) == s.size
    assert tr2.raceline.length == pytest.approx(rl.length)
    # a csv file path works too
    tr3 = load_track(folder / "centerline.csv")
    assert tr3.length == pytest.approx(tr.length) and tr3.raceline is None


# ---------------------------------------------------------------------------- the project's tracks
def test_known_tracks_and_load_by_name():
    names = known_tracks()
    assert names == sorted(names) and len(names) >= 4
    for name in names:
        tr = load_track(name)
        assert isinstance(tr, Track) and tr.name == name
        assert Path(tr.source) == tracks_dir() / name
        head = (tracks_dir() / name / "centerline.csv").read_text().splitlines()
        assert "# x_m,y_m,w_tr_right_m,w_tr_left_m" in head[:5]


# ---------------------------------------------------------------------------- bad input
def _write(tmp_path, text, name="bad.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD_ROWS = ["0,0,1,1", "10,0,1,1", "10,10,1,1", "0,10,1,1"]


def _csv(rows, header="# x_m,y_m,w_tr_right_m,w_tr_left_m"):
    return header + "\n" + "\n".join(rows) + "\n"


def test_good_square_loads(tmp_path):
    tr = load_track(_write(tmp_path, _csv(GOOD_ROWS)))
    assert tr.length > 30


def test_error_nan_width_names_file_row_field(tmp_path):
    rows = list(GOOD_ROWS)
    rows[2] = "10,10,1,nan"
    p = _write(tmp_path, _csv(rows))
    with pytest.raises(TrackError) as exc:
        load_track(p)
    assert str(exc.value) == f"{p}: row 4: w_tr_left_m is NaN; expected a finite number"


def test_error_too_few_points(tmp_path):
    p = _write(tmp_path, _csv(GOOD_ROWS[:3]))
    with pytest.raises(TrackError, match=r"only 3 points; a track needs at least 4") as exc:
        load_track(p)
    assert str(p) in str(exc.value)


@pytest.mark.parametrize("value", ["0", "-1.0"])
def test_error_width_not_positive(tmp_path, value):
    rows = list(GOOD_ROWS)
    rows[3] = f"0,10,{value},1"
    p = _write(tmp_path, _csv(rows))
    with pytest.raises(TrackError) as exc:
        load_track(p)
    assert str(exc.value) == f"{p}: row 5: w_tr_right_m = {float(value)}; expected > 0"


def test_error_missing_column(tmp_path):
    rows = list(GOOD_ROWS)
    rows[1] = "10,0,1"
    p = _write(tmp_path, _csv(rows))
    with pytest.raises(TrackError, match=r"row 3: 3 values, missing column w_tr_left_m") as exc:
        load_track(p)
    assert str(exc.value).startswith(str(p))


def test_error_header_lacks_column(tmp_path):
    p = _write(tmp_path, _csv([r[:-2] for r in GOOD_ROWS], header="# x_m,y_m,w_tr_right_m"))
    with pytest.raises(TrackError, match=r"row 1: header lacks column w_tr_left_m"):
        load_track(p)


def test_error_not_a_number(tmp_path):
    rows = list(GOOD_ROWS)
    rows[0] = "0,abc,1,1"
    p = _write(tmp_path, _csv(rows))
    with pytest.raises(TrackError, match=r"row 2: y_m = 'abc' is not a number"):
        load_track(p)


def test_error_duplicate_point_names_file_rows(tmp_path):
    rows = GOOD_ROWS[:2] + [GOOD_ROWS[1]] + GOOD_ROWS[2:]
    p = _write(tmp_path, _csv(rows))
    with pytest.raises(TrackError, match=r"row 4: .*repeats the previous point \(row 3\)") as exc:
        load_track(p)
    assert str(exc.value).startswith(str(p))


def test_error_empty_file(tmp_path):
    p = _write(tmp_path, "# x_m,y_m,w_tr_right_m,w_tr_left_m\n")
    with pytest.raises(TrackError, match="no data rows"):
        load_track(p)


def test_error_unknown_track_lists_known():
    with pytest.raises(TrackError) as exc:
        load_track("no_such_track")
    msg = str(exc.value)
    assert "unknown track 'no_such_track'" in msg
    for name in known_tracks():
        assert name in msg


def test_error_missing_path(tmp_path):
    with pytest.raises(TrackError, match="no such file or folder"):
        load_track(tmp_path / "nothing.csv")


def test_error_folder_without_centerline(tmp_path):
    with pytest.raises(TrackError, match=r"no centre line \('\*centerline.csv'\)"):
        load_track(tmp_path)


def test_error_measure_widths_without_map(tmp_path):
    (tmp_path / "centerline.csv").write_text(_csv(GOOD_ROWS))
    with pytest.raises(TrackError, match=r"measure_widths=True needs a '\*_map.yaml'"):
        load_track(tmp_path, measure_widths=True)
    with pytest.raises(TrackError, match=r"measure_widths=True needs a track folder"):
        load_track(tmp_path / "centerline.csv", measure_widths=True)


def test_error_bad_track_yaml(tmp_path):
    (tmp_path / "centerline.csv").write_text(_csv(GOOD_ROWS))
    (tmp_path / "track.yaml").write_text("name: x\nlenght: 3\n")
    with pytest.raises(TrackError, match=r"track.yaml: unknown key 'lenght'"):
        load_track(tmp_path)
    (tmp_path / "track.yaml").write_text("scale: 1:10\n")  # unquoted: YAML 1.1 reads a base-60 integer
    with pytest.raises(TrackError, match=r"scale = 70; expected a string \(quote it"):
        load_track(tmp_path)
    (tmp_path / "track.yaml").write_text('scale: "1:8"\n')
    with pytest.raises(TrackError, match=r"scale = '1:8'; expected one of 1:10, full"):
        load_track(tmp_path)
    (tmp_path / "track.yaml").write_text('name: x\nds: 0.5\nds: 0.2\n')
    with pytest.raises(TrackError, match=r"track.yaml: not valid YAML: key 'ds' appears twice \(lines 2 and 3\)"):
        load_track(tmp_path)


def test_error_raceline_bad_rows(tmp_path):
    head = "# s_m; x_m; y_m; psi_rad; kappa_radpm; vx_mps; ax_mps2\n"
    p = _write(tmp_path, head + "0;0;0;0;0;1;0\n1;1;0;0;0;1\n2;2;0;0;0;1;0\n", "r.csv")
    with pytest.raises(TrackError, match=r"r.csv: row 3: 6 values, missing column ax_mps2"):
        Raceline.load(p)
    p = _write(tmp_path, head + "0;0;0;0;0;1;0\n1;1;0;0;0;1;0\n1;2;0;0;0;1;0\n", "r.csv")
    with pytest.raises(TrackError, match=r"row 4: s_m = 1.0 after 1.0; expected strictly increasing s_m"):
        Raceline.load(p)
    p = _write(tmp_path, head + "0;0;0;0;0;1;0\n1;1;0;0;inf;1;0\n2;2;0;0;0;1;0\n", "r.csv")
    with pytest.raises(TrackError, match=r"row 3: kappa_radpm is inf; expected a finite number"):
        Raceline.load(p)
    p = _write(tmp_path, "0,0,0,0,0,1,0\n1,1,0,0,0,1,0\n", "r.csv")  # commas: wrong separator
    with pytest.raises(TrackError, match=r"row 1: 1 values, missing column .*separated by ';'"):
        Raceline.load(p)


def test_xy_raceline_bad_input(tmp_path):
    p = _write(tmp_path, "# x_m,y_m\n1,2\n3\n", "xy.csv")
    with pytest.raises(TrackError, match=r"xy.csv: row 3: 1 values, missing column y_m"):
        load_xy_raceline(p)
