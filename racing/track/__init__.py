"""Tracks: closed centre lines with widths, Frenet projection, racelines and loaders.

>>> from racing.track import load_track, DEFAULT_TRACK
>>> track = load_track(DEFAULT_TRACK)
>>> s, n, dpsi = track.frenet(xy, psi)        # xy[..., 2] [m] -> s [m], n [m] (left +), dpsi [rad]
>>> xy = track.to_cartesian(s, n)
"""
from .io import (
    OccupancyMap,
    known_tracks,
    load_occupancy_map,
    load_track,
    load_xy_raceline,
    measure_widths,
    read_centerline,
    read_raceline,
    tracks_dir,
    write_centerline,
)
from .track import (
    Crossover,
    Raceline,
    Track,
    TrackError,
    TrackWarning,
    polyline_self_intersections,
    polylines_intersect,
    wrap_angle,
)

DEFAULT_TRACK = "lab_loop"

__all__ = [
    "Crossover",
    "DEFAULT_TRACK",
    "OccupancyMap",
    "Raceline",
    "Track",
    "TrackError",
    "TrackWarning",
    "known_tracks",
    "load_occupancy_map",
    "load_track",
    "load_xy_raceline",
    "measure_widths",
    "polyline_self_intersections",
    "polylines_intersect",
    "read_centerline",
    "read_raceline",
    "tracks_dir",
    "wrap_angle",
    "write_centerline",
]
