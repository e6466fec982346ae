"""Reading and writing tracks: TUM racetrack-database csv, F1TENTH map folders, the project's own tracks.

Formats
-------
* TUM centre line: comma separated ``# x_m,y_m,w_tr_right_m,w_tr_left_m`` (closed loop, first point not
  repeated), widths measured from the centre line to the right/left edge [m].
* TUM raceline (7 columns): semicolon separated ``s_m; x_m; y_m; psi_rad; kappa_radpm; vx_mps; ax_mps2``
  with ``#`` comment lines (:class:`Raceline`).
* TUM database reference lines ``racelines/<Name>.csv``: ``# x_m,y_m`` only (:func:`load_xy_raceline`).
* F1TENTH folder: ``*_map.yaml`` + image (ROS map_server: image, resolution [m/px], origin [x, y, yaw],
  occupied_thresh, free_thresh, negate), ``*_centerline.csv`` and optionally ``*_raceline.csv``.
* The project's own tracks: ``tracks/<name>/centerline.csv`` (TUM centre line) + ``track.yaml``
  (name, description, scale: "1:10" or "full"; optional ds [m] and smoothing [m]).

Errors are :class:`TrackError` naming the file, the row (1-based line number in the file) and the column.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import parse_yaml
from ..resources import data_dir
from .checks import clip_widths
from .tables import CENTERLINE_COLUMNS, RACELINE_COLUMNS, read_table
from .track import Raceline, Track, TrackError

__all__ = [
    "CENTERLINE_COLUMNS",
    "RACELINE_COLUMNS",
    "OccupancyMap",
    "tracks_dir",
    "known_tracks",
    "load_track",
    "read_centerline",
    "write_centerline",
    "read_raceline",
    "load_xy_raceline",
    "load_occupancy_map",
    "measure_widths",
    "read_track_meta",
]

META_KEYS = {"name": str, "description": str, "scale": str, "ds": float, "smoothing": float}
SCALES = ("1:10", "full")


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def read_centerline(path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read a TUM centre-line csv ``x_m,y_m,w_tr_right_m,w_tr_left_m``.

    Returns xy [M, 2] [m], w_right [M] [m], w_left [M] [m], file line numbers [M]. Checks the widths are > 0.
    """
    data, lines, _ = read_table(Path(path), CENTERLINE_COLUMNS, ",")
    for k, col in ((2, "w_tr_right_m"), (3, "w_tr_left_m")):
        bad = np.flatnonzero(data[:, k] <= 0)
        if bad.size:
            i = int(bad[0])
            raise TrackError(f"{path}: row {lines[i]}: {col} = {data[i, k]}; expected > 0")
    return data[:, :2].copy(), data[:, 2].copy(), data[:, 3].copy(), lines


def write_centerline(path, xy, w_right, w_left, comments: Sequence[str] = ()) -> None:
    """Write a TUM centre-line csv (comment lines, then '# x_m,y_m,w_tr_right_m,w_tr_left_m', then rows)."""
    xy = np.asarray(xy, dtype=np.float64)
    wr = np.broadcast_to(np.asarray(w_right, dtype=np.float64), xy.shape[:1])
    wl = np.broadcast_to(np.asarray(w_left, dtype=np.float64), xy.shape[:1])
    with Path(path).open("w", encoding="utf-8") as fh:
        for c in comments:
            fh.write(f"# {c}\n")
        fh.write("# " + ",".join(CENTERLINE_COLUMNS) + "\n")
        for (x, y), r, l in zip(xy, wr, wl):
            fh.write(f"{x:.6f},{y:.6f},{r:.4f},{l:.4f}\n")


def read_raceline(path) -> Raceline:
    """Read a TUM 7-column raceline (see :meth:`Raceline.load`)."""
    return Raceline.load(path)


def load_xy_raceline(path) -> np.ndarray:
    """Read a TUM database reference line ``# x_m,y_m`` (comma separated). Returns xy [M, 2] [m]."""
    data, _, _ = read_table(Path(path), ("x_m", "y_m"), ",")
    return data


# --------------------------------------------------------------------------------------------
# Occupancy maps (ROS map_server)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class OccupancyMap:
    """An occupancy grid in the ROS map_server convention.

    occupied : bool [H, W], image row 0 is the top (largest y) of the map
    resolution : [m/px]
    origin : (x [m], y [m], yaw [rad]) pose of the lower-left corner of the lower-left pixel
    source : the yaml file
    """

    occupied: np.ndarray
    resolution: float
    origin: tuple[float, float, float]
    source: str = "<map>"

    def pixel_of(self, xy) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) int arrays [...] of points xy [..., 2] [m]; may be outside the image."""
        xy = np.asarray(xy, dtype=np.float64)
        ox, oy, yaw = self.origin
        dx, dy = xy[..., 0] - ox, xy[..., 1] - oy
        c, s = math.cos(yaw), math.sin(yaw)
        u = c * dx + s * dy
        v = -s * dx + c * dy
        h = self.occupied.shape[0]
        col = np.floor(u / self.resolution).astype(np.int64)
        row = h - 1 - np.floor(v / self.resolution).astype(np.int64)
        return row, col

    def is_occupied(self, xy, outside: bool = True) -> np.ndarray:
        """bool [...]: the pixel under each point xy [..., 2] [m] is occupied (``outside`` for points off the image)."""
        row, col = self.pixel_of(xy)
        h, w = self.occupied.shape
        inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        out = np.full(row.shape, bool(outside))
        out[inside] = self.occupied[row[inside], col[inside]]
        return out


def load_occupancy_map(yaml_path) -> OccupancyMap:
    """Read a ROS map_server yaml and its image.

    Occupancy probability p = (255 - v) / 255 (or v / 255 when ``negate`` is true) for pixel value v of the
    greyscale image (alpha ignored); a pixel is occupied when p >= occupied_thresh.
    """
    import yaml
    from PIL import Image

    path = Path(yaml_path)
    if not path.is_file():
        raise TrackError(f"{path}: file not found")
    try:
        meta = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TrackError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise TrackError(f"{path}: expected a mapping (image, resolution, origin, ...)")
    for key in ("image", "resolution", "origin", "occupied_thresh"):
        if key not in meta:
            raise TrackError(f"{path}: missing key {key!r}; expected image, resolution, origin, "
                             f"occupied_thresh, free_thresh, negate")
    try:
        res = float(meta["resolution"])
        origin = tuple(float(v) for v in meta["origin"])
        occ_th = float(meta["occupied_thresh"])
        negate = bool(int(meta.get("negate", 0)))
    except (TypeError, ValueError) as exc:
        raise TrackError(f"{path}: bad value ({exc}); expected resolution: float, origin: [x, y, yaw], "
                         f"occupied_thresh: float, negate: 0/1") from None
    if not (math.isfinite(res) and res > 0):
        raise TrackError(f"{path}: resolution = {meta['resolution']}; expected > 0")
    if len(origin) != 3:
        raise TrackError(f"{path}: origin = {meta['origin']}; expected [x, y, yaw]")
    img_path = Path(str(meta["image"]))
    if not img_path.is_absolute():
        img_path = path.parent / img_path
    if not img_path.is_file():
        raise TrackError(f"{path}: image: {img_path} not found")
    try:
        with Image.open(img_path) as im:
            grey = np.asarray(im.convert("L"), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise TrackError(f"{path}: image: {img_path} cannot be read as an image ({exc}); expected a PGM/PNG "
                         f"occupancy grid") from None
    if grey.ndim != 2 or min(grey.shape) < 2:
        raise TrackError(f"{path}: image: {img_path} has shape {grey.shape}; expected a 2-D occupancy grid")
    if not 0.0 < occ_th <= 1.0:
        raise TrackError(f"{path}: occupied_thresh = {meta['occupied_thresh']}; expected a value in (0, 1]")
    p = grey / 255.0 if negate else (255.0 - grey) / 255.0
    return OccupancyMap(occupied=p >= occ_th, resolution=res, origin=origin, source=str(path))


def measure_widths(track: Track, omap: OccupancyMap, max_dist: float | None = None,
                   step: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distance [m] from each centre-line sample to the first occupied pixel along the left/right normal.

    Ray march with ``step`` (default half a pixel) up to ``max_dist`` (default 20 m, at least 5x the
    largest stored width); leaving the image counts as hitting a wall. Returns (w_left [N], w_right [N]).
    Raises TrackError if a sample sits on an occupied pixel or no wall is found within ``max_dist``.
    """
    if step is None:
        step = 0.5 * omap.resolution
    if max_dist is None:
        max_dist = max(20.0, 5.0 * float(max(track.w_left.max(), track.w_right.max())))
    nsteps = int(math.ceil(max_dist / step))
    out = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        dist = np.full(track.n_samples, np.nan)
        todo = np.arange(track.n_samples)
        direc = sign * track.normals
        chunk = 64
        for k0 in range(1, nsteps + 1, chunk):
            if todo.size == 0:
                break
            ks = np.arange(k0, min(k0 + chunk, nsteps + 1)) * step  # [K]
            pts = track.xy[todo, None, :] + ks[None, :, None] * direc[todo, None, :]
            hit = omap.is_occupied(pts)
            any_hit = hit.any(axis=1)
            first = np.argmax(hit, axis=1)
            dist[todo[any_hit]] = ks[first[any_hit]]
            todo = todo[~any_hit]
        if todo.size:
            i = int(todo[0])
            raise TrackError(f"{omap.source}: no occupied pixel within {max_dist} m {side} of the centre line "
                             f"at s = {track.s[i]:.2f} m")
        centre_occ = omap.is_occupied(track.xy)
        if centre_occ.any():
            i = int(np.flatnonzero(centre_occ)[0])
            raise TrackError(f"{omap.source}: centre line sample at s = {track.s[i]:.2f} m "
                             f"({track.xy[i, 0]:.3f}, {track.xy[i, 1]:.3f}) lies on an occupied pixel")
        out.append(dist)
    return out[0], out[1]


# --------------------------------------------------------------------------------------------
# Track folders
# --------------------------------------------------------------------------------------------
def tracks_dir() -> Path:
    """The project's tracks, with the TUM circuits: ``<repository>/tracks`` in a source checkout, ``racing/tracks``
    inside an installed wheel (:func:`racing.resources.data_dir`)."""
    return data_dir("tracks")


def known_tracks() -> list[str]:
    """Sorted names of the folders in :func:`tracks_dir` that hold a centre line."""
    d = tracks_dir()
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.is_dir() and any(p.glob("*centerline.csv")))


def read_track_meta(path) -> dict:
    """Read a ``track.yaml`` strictly: keys name, description, scale ("1:10" or "full"), ds [m], smoothing [m]."""
    import yaml

    path = Path(path)
    try:
        meta = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TrackError(f"{path}: not valid YAML: {exc}") from exc
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise TrackError(f"{path}: expected a mapping with keys {', '.join(META_KEYS)}")
    out = {}
    for key, val in meta.items():
        if key not in META_KEYS:
            raise TrackError(f"{path}: unknown key {key!r}; known keys: {', '.join(META_KEYS)}")
        tp = META_KEYS[key]
        if tp is float:
            if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val) or val <= 0:
                raise TrackError(f"{path}: {key} = {val!r}; expected a number > 0")
            val = float(val)
        elif not isinstance(val, str):
            hint = " (quote it: scale: \"1:10\")" if key == "scale" else ""
            raise TrackError(f"{path}: {key} = {val!r}; expected a string{hint}")
        if key == "scale" and val not in SCALES:
            raise TrackError(f"{path}: scale = {val!r}; expected one of {', '.join(SCALES)}")
        out[key] = val
    return out


def _one(folder: Path, pattern: str, what: str, required: bool) -> Path | None:
    found = sorted(p for p in folder.glob(pattern) if p.is_file())
    if not found:
        if required:
            raise TrackError(f"{folder}: no {what} ('{pattern}') in the folder")
        return None
    if len(found) > 1:
        raise TrackError(f"{folder}: several {what} files: {', '.join(p.name for p in found)}; expected one")
    return found[0]


def _load_folder(folder: Path, measure: bool, ds, smoothing) -> Track:
    meta_path = folder / "track.yaml"
    meta = read_track_meta(meta_path) if meta_path.is_file() else {}
    cl = _one(folder, "*centerline.csv", "centre line", required=True)
    xy, wr, wl, rows = read_centerline(cl)
    name = meta.get("name") or folder.name
    track = Track.from_centerline(
        xy, wr, wl, name=name, ds=ds if ds is not None else meta.get("ds"), source=str(cl),
        smoothing=smoothing if smoothing is not None else meta.get("smoothing"), row_numbers=rows,
        description=meta.get("description", ""), scale=meta.get("scale"))
    track.source = str(folder)
    map_yaml = _one(folder, "*_map.yaml", "map yaml", required=False)
    omap = None
    if map_yaml is not None:  # read and check it even when the csv widths are used: a broken map is an error
        omap = load_occupancy_map(map_yaml)
        on_wall = omap.is_occupied(track.xy, outside=True)
        if on_wall.any():
            i = int(np.flatnonzero(on_wall)[0])
            raise TrackError(f"{map_yaml}: the centre line of {cl.name} at s = {track.s[i]:.2f} m "
                             f"({track.xy[i, 0]:.3f}, {track.xy[i, 1]:.3f}) lies on an occupied pixel or off the "
                             f"image; expected the map and the centre line to describe the same track")
        track.widths_from = f"{cl.name} (map {map_yaml.name} checked: centre line on free space)"
    if measure:
        if omap is None:
            raise TrackError(f"{folder}: measure_widths=True needs a '*_map.yaml' occupancy map in the folder")
        w_left, w_right = measure_widths(track, omap)
        w_left, w_right, clipped = clip_widths(track.s, track.xy, track.normals, track.kappa, w_left, w_right,
                                               track.ds, str(map_yaml))
        track = Track(name=track.name, ds=track.ds, s=track.s, xy=track.xy, psi=track.psi, kappa=track.kappa,
                      w_left=w_left, w_right=w_right, length=track.length, source=str(folder),
                      description=track.description, scale=track.scale,
                      widths_from=f"measured from the occupancy map {map_yaml.name}",
                      input_problems=track.input_problems + tuple(clipped))
    rl = _one(folder, "*raceline.csv", "raceline", required=False)
    if rl is not None:
        track = track.with_raceline(track.check_raceline(read_raceline(rl)))
    return track


def load_track(name_or_path, measure_widths: bool = False, ds: float | None = None,
               smoothing: float | None = None, check_geometry: bool = True) -> Track:
    """Load a track (see :func:`_load_track`) and check its shape (:meth:`Track.check_geometry`, unless
    ``check_geometry`` is False: parts overlapping other than on a bridge, an open line closed with a long chord,
    ... are a :class:`TrackError` naming the file; a crossover on a bridge is accepted and a bend tighter than the
    width has its widths clipped with a warning, :mod:`racing.track.checks`)."""
    track = _load_track(name_or_path, measure_widths, ds, smoothing)
    if check_geometry:
        track.check_geometry()
    return track


def _load_track(name_or_path, measure_widths: bool = False, ds: float | None = None,
                smoothing: float | None = None) -> Track:
    """Load a track by name (``tracks/<name>/``, :func:`tracks_dir`) or from a path.

    Parameters
    ----------
    name_or_path : a name from :func:`known_tracks`, a TUM centre-line csv file, or a folder holding a
        ``*centerline.csv`` (optionally ``track.yaml``, ``*_map.yaml`` + image, ``*raceline.csv`` in TUM 7-column
        format, which is attached as ``track.raceline``)
    measure_widths : folder with a map only: replace the csv widths by the distance from each sample to the
        nearest occupied pixel along the normal, left and right
    ds : resampling spacing [m] (default: track.yaml ``ds`` or the mean input spacing)
    smoothing : spline smoothing [m RMS] (default: track.yaml ``smoothing`` or interpolation)
    """
    if isinstance(name_or_path, Track):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise TrackError(f"load_track: got {name_or_path!r}; expected a track name ({', '.join(known_tracks())}), "
                         f"the path of a TUM centre-line csv or of a track folder, or a Track")
    text = str(name_or_path)
    known = known_tracks()
    if text in known:
        return _load_folder(tracks_dir() / text, measure_widths, ds, smoothing)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _load_folder(path, measure_widths, ds, smoothing)
    if path.is_file():
        if measure_widths:
            raise TrackError(f"{path}: measure_widths=True needs a track folder with a '*_map.yaml'")
        xy, wr, wl, rows = read_centerline(path)
        name = re.sub(r"_?centerline$", "", path.stem) or path.stem
        return Track.from_centerline(xy, wr, wl, name=name, ds=ds, source=str(path), smoothing=smoothing,
                                     row_numbers=rows)
    looks_like_path = any(c in text for c in "/\\") or path.suffix != ""
    if looks_like_path:
        raise TrackError(f"{path}: no such file or folder; expected a TUM centre-line csv or a track folder")
    raise TrackError(f"unknown track {text!r}; known tracks: {', '.join(known) or '(none)'} "
                     f"(or give a path to a TUM centre-line csv or a track folder)")
