"""The benchmark track list (project tracks, with the TUM circuits, + an extra folder) and the names specs may use."""
from __future__ import annotations

import pytest

from racing.track import known_tracks
from racing.track.catalog import benchmark_tracks, car_for, resolve_track
from racing.track.catalog import shared_tracks as list_shared


def test_project_tracks_race_the_car_of_their_scale():
    rows = {name: (src, car) for name, src, car in benchmark_tracks()}
    assert rows["lab_loop"] == ("lab_loop", "f1tenth") and rows["ridge_ring"] == ("ridge_ring", "gt_car")
    assert set(known_tracks()) <= set(rows)


def test_tum_circuits_are_project_tracks_raced_by_gt_car(monkeypatch):
    monkeypatch.delenv("RACING_SHARED_TRACKS", raising=False)
    assert "Monza" in known_tracks() and list_shared() == []
    assert resolve_track("Monza") == "Monza"
    assert ("Monza", "Monza", "gt_car") in benchmark_tracks()
    assert resolve_track("lab_loop") == "lab_loop" and resolve_track("some/file.csv") == "some/file.csv"


def test_shared_folder_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "Oval.csv").write_text("# x_m,y_m,w_tr_right_m,w_tr_left_m\n")
    monkeypatch.setenv("RACING_SHARED_TRACKS", str(tmp_path))
    (tmp_path / "Monza.csv").write_text("# x_m,y_m,w_tr_right_m,w_tr_left_m\n")  # a project track's name wins
    assert list_shared() == ["Oval"] and resolve_track("Oval") == str(tmp_path / "Oval.csv")
    assert resolve_track("Monza") == "Monza"
    monkeypatch.setenv("RACING_SHARED_TRACKS", str(tmp_path / "absent"))
    assert list_shared() == []


class _T:
    def __init__(self, scale):
        self.scale = scale


@pytest.mark.parametrize("scale, car", [("full", "gt_car"), ("1:10", "f1tenth"), (None, "f1tenth")])
def test_car_for_scale(scale, car):
    assert car_for(_T(scale)) == car
