"""The MPPI picture and the lap animation are written from plain data."""
from __future__ import annotations

import numpy as np

from racing.control.mppi import MPPI, MPPIConfig
from racing.models.params import load_params
from racing.sim.result import SimResult
from racing.track import Track


def test_mppi_plot_and_animation(tmp_path):
    from racing.plot.mppi import animate_lap, save_mppi_plot

    th = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    track = Track.from_centerline(np.column_stack([12 * np.cos(th), 6 * np.sin(th)]), 1.0, 1.0, name="oval")
    c = MPPI(track, load_params("f1tenth"), MPPIConfig(num_samples=64, horizon=20, record_samples=32))
    x0 = np.array([12.0, 0.0, np.pi / 2, 3.0, 0, 0, 0])
    c.solve(x0, 0.0)
    snap = {"t": 0.0, "state": x0, **c.diagnostics()}
    n = 30
    t = np.arange(n) * 0.02
    state = np.zeros((n, 7))
    state[:, 0] = 12 * np.cos(t * 0.25)
    state[:, 1] = 6 * np.sin(t * 0.25)
    state[:, 3] = 3.0
    res = SimResult(t=t, state=state, measured=state, command=np.zeros((n, 3)), frenet=np.zeros((n, 3)),
                    compute_s=np.zeros(n), laps=[], lap_end_t=[], events=[], status="timeout", off_track=0,
                    deadline_misses=0, config={}, snapshots=[snap])
    png = save_mppi_plot(res, track, tmp_path / "mppi.png")
    assert png.is_file() and png.stat().st_size > 1000
    gif = animate_lap(res, track, tmp_path / "lap.gif", fps=5, speedup=0.2)
    assert gif.is_file() and gif.stat().st_size > 1000
