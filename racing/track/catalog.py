"""The benchmark tracks: the project's own tracks and the shared TUM circuits, each with the car that races it.

Used by ``tools/lap_table.py`` (every track, every controller) and by ``racing sweep`` / ``racing tune`` (a track
named in a spec may be a project track, a TUM circuit of the shared folder by its name, or a path).

The shared TUM circuits live beside a source checkout in ``../shared/data/tracks/racetrack-database/`` (read-only
data, never copied into the project); ``$RACING_SHARED_TRACKS`` points elsewhere. Without the folder there are
simply no TUM circuits.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_SHARED = "RACING_SHARED_TRACKS"


def shared_tracks_dir() -> Path:
    """The folder of the shared TUM circuits (``$RACING_SHARED_TRACKS``, else
    ``<checkout>/../shared/data/tracks/racetrack-database``); it may not exist."""
    env = os.environ.get(ENV_SHARED)
    if env:
        return Path(env).expanduser()
    from racing.models.params import repo_root

    return repo_root().parent / "shared" / "data" / "tracks" / "racetrack-database"


def shared_tracks() -> list[str]:
    """Names of the shared TUM circuits (``Monza``, ...); empty when the folder is absent."""
    d = shared_tracks_dir()
    return sorted(p.stem for p in d.glob("*.csv")) if d.is_dir() else []


def resolve_track(name: str) -> str:
    """What :func:`racing.track.load_track` takes for ``name``: a project track's name as is, a shared TUM circuit's
    name (``Monza``) as the path of its csv, anything else (a path) unchanged."""
    from racing.track import known_tracks

    text = str(name)
    if text in known_tracks():
        return text
    if text in shared_tracks():
        return str(shared_tracks_dir() / f"{text}.csv")
    return text


def car_for(track) -> str:
    """The car that races a project track (a :class:`racing.track.Track`) in the benchmarks: ``gt_car`` when its
    ``track.yaml`` says ``scale: full``, else ``f1tenth`` (the TUM circuits, full size, race ``gt_car``:
    :func:`benchmark_tracks`)."""
    return "gt_car" if getattr(track, "scale", None) == "full" else "f1tenth"


def benchmark_tracks() -> list[tuple[str, str, str]]:
    """``(name, source, car)`` of every project track (its car from its scale) and every shared TUM circuit
    (``gt_car``), in that order; ``source`` is what :func:`racing.track.load_track` takes."""
    from racing.track import known_tracks, load_track

    out = []
    for name in known_tracks():
        out.append((name, name, car_for(load_track(name))))
    for name in shared_tracks():
        out.append((name, str(shared_tracks_dir() / f"{name}.csv"), "gt_car"))
    return out


__all__ = ["ENV_SHARED", "benchmark_tracks", "car_for", "resolve_track", "shared_tracks", "shared_tracks_dir"]
