"""Shared test fixtures: the project root, the shared real-track data (skipped when absent), a small oval track
and a start state on it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from racing.control import Command, Controller
from racing.track import Track

ROOT = Path(__file__).resolve().parents[1]
SHARED_TRACKS = ROOT.parent / "shared" / "data" / "tracks"
TUM_DIR = SHARED_TRACKS / "racetrack-database"
F1TENTH_DIR = SHARED_TRACKS / "f1tenth"


def tum_tracks() -> list[Path]:
    return sorted(TUM_DIR.glob("*.csv")) if TUM_DIR.is_dir() else []


@pytest.fixture
def shared_tracks() -> Path:
    if not SHARED_TRACKS.is_dir():
        pytest.skip("shared track data (../shared/data/tracks) not present")
    return SHARED_TRACKS


def _oval(a=12.0, b=6.0, w=1.0, n=400) -> Track:
    """Ellipse centre line with semi-axes ``a, b`` [m], half-width ``w`` [m], ``n`` samples."""
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return Track.from_centerline(np.column_stack([a * np.cos(th), b * np.sin(th)]), w, w, name="oval")


def _start_state(track, v=3.0):
    """State ``x[7]`` at the track's first sample, heading along it at ``v`` [m/s]."""
    x0 = np.zeros(7)
    x0[0], x0[1], x0[2], x0[3] = track.xy[0, 0], track.xy[0, 1], track.psi[0], v
    return x0


@pytest.fixture
def oval():
    """The oval-track factory ``oval(a=12, b=6, w=1, n=400)``."""
    return _oval


@pytest.fixture
def start_state():
    """The start-state helper ``start_state(track, v=3.0)``."""
    return _start_state


class Wobble(Controller):
    """A controller that wraps another and steers right (-0.15 rad) for 0.2 s at t = 3 s (an off-track incident)."""

    name = "wobble"

    def __init__(self, inner):
        self.inner = inner

    def reset(self, observation=None):
        self.inner.reset()

    def act(self, observation, t):
        c = self.inner.act(observation, t)
        return Command(-0.15, c.speed, c.acceleration) if 3.0 <= t < 3.2 else c



@pytest.fixture(scope="session")
def wobble_cls():
    """The :class:`Wobble` incident-making controller wrapper."""
    return Wobble



def random_residual(seed=0, hidden=8, layers=2, taus=(0.05, 0.2), products=True, clip=True, scale=1.0):
    """Untrained residual weights with random parameters (corrections of order ``scale``)."""
    from racing.models.residual import ResidualWeights, feature_names

    rng = np.random.default_rng(seed)
    n_aug = len(taus)
    n_in = len(feature_names(n_aug, products and n_aug > 0))
    sizes = [n_in] + [hidden] * layers + [3]
    Ws = [rng.normal(0, 1.0 / np.sqrt(a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(0, 0.1, b) for b in sizes[1:]]
    in_mean = rng.normal(0, 0.5, n_in)
    in_std = rng.uniform(0.5, 3.0, n_in)
    lo = hi = None
    if clip:
        lo, hi = in_mean - 3 * in_std, in_mean + 3 * in_std
    return ResidualWeights(Ws, bs, in_mean, in_std, np.array([0.1, -0.2, 0.3]) * scale,
                           np.array([0.5, 1.0, 2.0]) * scale, dt=0.02, taus=np.array(taus, float),
                           products=products, in_lo=lo, in_hi=hi)


@pytest.fixture
def make_residual():
    """:func:`random_residual`: untrained semi-parametric residual weights."""
    return random_residual
