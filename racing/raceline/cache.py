"""Where computed racing lines live, and the cached minimum-lap-time reference.

Cache locations
---------------
* a project track (loaded from ``tracks/<name>/``, :func:`racing.track.tracks_dir`):
  ``tracks/<name>/raceline_<car>_<method>.csv`` (beside the track; the name does not end in ``raceline.csv``, so the
  track loader does not attach it) when that file exists or the folder is writable;
* any other track (a csv elsewhere, a temporary folder, a project track in a read-only installed package, ...):
  ``$RACING_RACELINE_CACHE/<track>_<car>_<method>.csv``, default ``~/.cache/racing/racelines``;
* a car whose parameters differ from the car file its name names (perturbed, fitted, edited):
  ``$RACING_RACELINE_CACHE/<track>_<car>_<fingerprint>_<method>.csv``, on any track (the line beside a project
  track stays the named car's).

Files are in the TUM 7-column raceline format (``s_m; x_m; y_m; psi_rad; kappa_radpm; vx_mps; ax_mps2``,
readable by :meth:`racing.track.Raceline.load`) preceded by ``# key: value`` comment lines: track, car,
method, lap_time_s, status, spacing_m, margin_m, solve_time_s, and fingerprints of the car parameters and
the track geometry. A cached file whose fingerprints do not match the current car / track is ignored
(never silently stale).
"""
from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np

from racing.models.dynamic import MODEL_VERSION
from racing.models.params import load_params
from racing.track import Raceline, load_track, tracks_dir

METHODS = ("mincurv", "mintime")
ENV_CACHE = "RACING_RACELINE_CACHE"
_COLS = ("s_m", "x_m", "y_m", "psi_rad", "kappa_radpm", "vx_mps", "ax_mps2")


def cache_dir() -> Path:
    """Cache folder for tracks outside the project (``$RACING_RACELINE_CACHE`` or ``~/.cache/racing/racelines``)."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "racing" / "racelines"


def _project_track_folder(track) -> Path | None:
    """The track's folder if it is one of the project's tracks (``tracks/<name>/``), else None."""
    try:
        src = Path(track.source).resolve()
        root = tracks_dir().resolve()
    except (OSError, RuntimeError):
        return None
    folder = src if src.is_dir() else src.parent
    if folder.parent == root and folder.is_dir():
        return folder
    return None


def _safe(name: str) -> str:
    return "".join(c if (c.isalnum() or c in "-_.") else "_" for c in str(name)) or "track"


def _borrows_the_name(car_name: str, params) -> bool:
    """Whether ``params`` differ from the car file ``car_name`` names (a perturbed, fitted or edited car that kept
    the name): its lines must not replace the ones made for that file."""
    if params is None:
        return False
    try:
        own = load_params(car_name)
    except Exception:  # noqa: BLE001 - no car file of that name: the name is the car's own
        return False
    return params_fingerprint(own) != params_fingerprint(params)


def cache_path(track, car_name: str, method: str, params=None) -> Path:
    """Path of the cached line for ``track`` (a :class:`racing.track.Track`), car and method; ``params``: the car's
    parameters when they may differ from the car file ``car_name`` names: such a car's lines live in the user's
    cache under its parameters' fingerprint, never beside a project track in place of the named car's."""
    if method not in METHODS:
        raise ValueError(f"unknown raceline method {method!r}; expected one of {', '.join(METHODS)}")
    if _borrows_the_name(car_name, params):
        return cache_dir() / f"{_safe(track.name)}_{_safe(car_name)}_{params_fingerprint(params)}_{method}.csv"
    folder = _project_track_folder(track)
    if folder is not None:
        beside = folder / f"raceline_{_safe(car_name)}_{method}.csv"
        if beside.is_file() or os.access(folder, os.W_OK):
            return beside
    # not a project track, or one in an installed package that this user cannot write: the user's cache
    return cache_dir() / f"{_safe(track.name)}_{_safe(car_name)}_{method}.csv"


def params_fingerprint(params) -> str:
    """sha1 (12 hex) of the car parameter array (float64 bytes) and of the vehicle model's version
    (:data:`racing.models.dynamic.MODEL_VERSION`): a line solved with other physics is not reused."""
    h = hashlib.sha1(np.ascontiguousarray(params.to_array(), dtype=np.float64).tobytes())
    h.update(MODEL_VERSION.encode())
    return h.hexdigest()[:12]


def track_fingerprint(track) -> str:
    """sha1 (12 hex) of the track geometry: centre line and widths, rounded to 0.1 mm."""
    h = hashlib.sha1()
    for a in (track.xy, track.w_left, track.w_right):
        h.update(np.round(np.asarray(a, dtype=np.float64), 4).tobytes())
    return h.hexdigest()[:12]


def save_raceline(raceline, path, metadata: dict | None = None) -> Path:
    """Write ``raceline`` in the TUM 7-column format with ``# key: value`` metadata lines.

    The file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# racing raceline (TUM 7-column format)"]
    for k, v in (metadata or {}).items():
        text = f"{v:.6f}" if isinstance(v, float) else str(v)
        text = text.replace(";", ",").replace("\n", " ")
        lines.append(f"# {k}: {text}")
    lines.append(f"# closed_length_m: {raceline.length:.7f}")
    lines.append("# " + "; ".join(_COLS))
    data = np.column_stack([raceline.s, raceline.x, raceline.y, raceline.psi, raceline.kappa, raceline.vx,
                            raceline.ax])
    body = "\n".join(";".join(f"{v:.7f}" for v in row) for row in data)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n" + body + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_metadata(path) -> dict:
    """The ``# key: value`` lines at the top of a raceline file written by :func:`save_raceline` (strings)."""
    out = {}
    try:
        with Path(path).open("r", encoding="utf-8") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                body = line[1:].strip()
                if ": " in body:
                    k, v = body.split(": ", 1)
                    out[k.strip()] = v.strip()
    except (OSError, UnicodeDecodeError):
        return {}
    return out


def _load_raceline_with_closed_length(path):
    """Raceline.load, with the exact closed length from the metadata when present."""
    import dataclasses


    rl = Raceline.load(path)
    meta = read_metadata(path)
    try:
        length = float(meta.get("closed_length_m", "nan"))
    except ValueError:
        length = math.nan
    if math.isfinite(length) and length > float(rl.s[-1]):
        rl = dataclasses.replace(rl, length=length)
    return rl


def _params_for(car_name: str, params=None):
    if params is not None:
        return params

    return load_params(car_name)


def _valid(path: Path, track, car_name: str, params=None) -> dict | None:
    if not path.is_file():
        return None
    meta = read_metadata(path)
    try:
        p = _params_for(car_name, params)
    except Exception:  # noqa: BLE001 - an unknown car simply has no valid cache
        return None
    if meta.get("params_sha1") != params_fingerprint(p) or meta.get("track_sha1") != track_fingerprint(track):
        return None
    return meta


def cached_raceline(track, car_name: str, method: str, params=None):
    """The cached :class:`racing.track.Raceline` for this track, car and method, or None.

    None as well when the file was computed for other car parameters or another track geometry.
    ``params`` (VehicleParams) overrides loading ``vehicle_params/<car_name>.yaml`` for that check.
    """
    path = cache_path(track, car_name, method, params)
    if _valid(path, track, car_name, params) is None:
        return None
    try:
        return _load_raceline_with_closed_length(path)
    except Exception:  # noqa: BLE001 - a damaged cache file is not a line
        return None


def cached_entry(track, car_name: str, method: str, params=None):
    """(Raceline, metadata dict, path) of a valid cached line, or None."""
    path = cache_path(track, car_name, method, params)
    meta = _valid(path, track, car_name, params)
    if meta is None:
        return None
    try:
        return _load_raceline_with_closed_length(path), meta, path
    except Exception:  # noqa: BLE001
        return None


def with_cached_raceline(track, car_name: str, methods=("mintime", "mincurv"), params=None):
    """``track`` with the first valid cached line of ``methods`` attached as its raceline (for controllers that
    follow ``track.raceline``); the track unchanged when none is cached or it already has a raceline."""
    if getattr(track, "raceline", None) is not None:
        return track
    for method in methods:
        rl = cached_raceline(track, car_name, method, params)
        if rl is not None:
            return track.with_raceline(rl)
    return track


def reference_lap(track, car_name: str, params=None) -> float | None:
    """The cached minimum-lap-time lap [s] of ``car_name`` on ``track``, or None if none is cached."""
    path = cache_path(track, car_name, "mintime", params)
    meta = _valid(path, track, car_name, params)
    if meta is None:
        return None
    try:
        t = float(meta["lap_time_s"])
    except (KeyError, ValueError):
        return None
    return t if math.isfinite(t) and t > 0 else None


def reference_for(track, car_name: str, params=None) -> float | None:
    """Reference (minimum-time) lap [s] for ``racing race``: the cached min-time lap, or None.

    ``track`` is a :class:`racing.track.Track` or a track name / path. Never raises and never solves
    anything (run ``racing raceline --method mintime`` to create the reference).
    """
    try:
        if not hasattr(track, "xy"):
            track = load_track(track)
        return reference_lap(track, car_name, params)
    except Exception:  # noqa: BLE001 - a missing reference must never break a race
        return None


def line_metadata(track, car_name: str, method: str, info: dict, params) -> dict:
    """The ``# key: value`` metadata written beside a computed line (with the fingerprints that validate it)."""
    return {"track": track.name, "car": car_name, "method": method, **info,
            "params_sha1": params_fingerprint(params), "track_sha1": track_fingerprint(track)}
