"""Every circuit shipped in tracks/ (the project's and the TUM circuits), the F1TENTH map folder beside the
checkout (skipped when absent) and a figure of eight on a bridge load and race one lap with pure pursuit on the
dynamic plant without leaving the track."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from racing.control import make_controller
from racing.models.params import load_params
from racing.sim.plant import make_plant
from racing.sim.simulator import SimConfig, simulate
from racing.track import Track, known_tracks, load_track
from racing.track.catalog import car_for

F1TENTH_MAPS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tracks" / "f1tenth"


def _maps():
    return sorted(p for p in F1TENTH_MAPS.iterdir() if p.is_dir()) if F1TENTH_MAPS.is_dir() else []


def _bridge_eight() -> Track:
    """A full-size figure of eight (x = 300 sin t, y = 150 sin 2t, 12 m wide): one crossover at 90 deg."""
    t = np.linspace(0.0, 2.0 * np.pi, 400, endpoint=False)
    return Track.from_centerline(np.column_stack([300 * np.sin(t), 150 * np.sin(2 * t)]), 6.0, 6.0,
                                 name="bridge_eight", scale="full")


CIRCUITS = [pytest.param(n, id=n) for n in known_tracks()] + [pytest.param(p, id=p.name) for p in _maps()] + [
    pytest.param("bridge", id="bridge_eight")]


@pytest.mark.slow
@pytest.mark.parametrize("circuit", CIRCUITS)
def test_circuit_races_one_clean_lap_with_pure_pursuit(circuit):
    track = _bridge_eight() if circuit == "bridge" else load_track(circuit)
    assert track.geometry_problems() == []
    if isinstance(circuit, Path):
        # a map folder's own raceline was made for another car and runs within millimetres of the edges (pure
        # pursuit on it leaves Oschersleben 6 times by ~3 mm): race the centre line, the geometry is what is tested
        track = track.with_raceline(None)
    params = load_params(car_for(track))
    ctrl = make_controller("pure_pursuit", track, params)
    res = simulate(track, ctrl, make_plant("dynamic", params), params, SimConfig(laps=1, seed=0))
    assert res.status == "completed" and len(res.laps) == 1, (res.status, res.laps)
    assert res.off_track == 0
    # one lap of progress: the projection never jumped to another part of the track (a bridge's other branch)
    s = np.unwrap(res.frenet[:, 0] * (2 * np.pi / track.length)) * (track.length / (2 * np.pi))
    assert np.all(np.diff(s) > -1.0) and s[-1] - s[0] == pytest.approx(track.length, rel=0.02)
