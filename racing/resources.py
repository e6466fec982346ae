"""Where the project's data folders are: ``tracks/`` (the tracks, with the TUM circuits) and ``vehicle_params/``
(the cars).

In a source checkout, and in an editable install of one, they sit at the top of the repository beside the ``racing``
package. A wheel (``pip install .``) carries them inside the package as ``racing/tracks`` and
``racing/vehicle_params`` (``setup.py`` maps the folders to those packages). :func:`data_dir` looks inside the
package first, then beside it, so both layouts find the same files; nothing is chosen by a name.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["DATA_FOLDERS", "data_dir"]

DATA_FOLDERS = ("tracks", "vehicle_params")


def data_dir(name: str) -> Path:
    """The folder ``name`` (one of :data:`DATA_FOLDERS`): ``<site-packages>/racing/<name>`` in an installed wheel,
    else ``<repository>/<name>`` beside the package of a source checkout. It may not exist (a broken install)."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}; expected one of {', '.join(DATA_FOLDERS)}")
    package = Path(str(files("racing")))
    inside = package / name
    return inside if inside.is_dir() else package.parent / name
