"""Shared test fixtures: the project root, the shared real-track data (skipped when absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

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
