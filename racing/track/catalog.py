"""The benchmark tracks: the project's tracks (with the TUM circuits it ships in ``tracks/``) and, optionally, more
circuits in a folder of TUM centre-line csv files, each with the car that races it.

Used by ``tools/lap_table.py`` (every track, every controller) and by ``racing sweep`` / ``racing tune`` (a track
named in a spec may be a project track, a circuit of the extra folder by its name, or a path).

The extra folder is ``$RACING_SHARED_TRACKS`` (``<Name>.csv`` files); without it there are only the project's tracks.
"""
from __future__ import annotations

import os
from pathlib import Path

from racing.track import known_tracks, load_track

ENV_SHARED = "RACING_SHARED_TRACKS"


def shared_tracks_dir() -> Path | None:
    """The extra folder of TUM centre-line csv files (``$RACING_SHARED_TRACKS``), or None when it is not set."""
    env = os.environ.get(ENV_SHARED)
    return Path(env).expanduser() if env else None


def shared_tracks() -> list[str]:
    """Names of the circuits in the extra folder (``<Name>.csv``) that are not project tracks; empty without it."""
    d = shared_tracks_dir()
    if d is None or not d.is_dir():
        return []
    own = set(known_tracks())
    return sorted(p.stem for p in d.glob("*.csv") if p.stem not in own)


def resolve_track(name: str) -> str:
    """What :func:`racing.track.load_track` takes for ``name``: a project track's name as is (``Monza``), the name of
    a circuit in the extra folder as the path of its csv, anything else (a path) unchanged."""
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
    """``(name, source, car)`` of every project track (its car from its scale: the TUM circuits are full size, so
    ``gt_car``) and every circuit of the extra folder (``gt_car``), in that order; ``source`` is what
    :func:`racing.track.load_track` takes."""
    out = []
    for name in known_tracks():
        out.append((name, name, car_for(load_track(name))))
    for name in shared_tracks():
        out.append((name, str(shared_tracks_dir() / f"{name}.csv"), "gt_car"))
    return out


__all__ = ["ENV_SHARED", "benchmark_tracks", "car_for", "resolve_track", "shared_tracks", "shared_tracks_dir"]
