"""The track package's error and warning types."""
from __future__ import annotations

__all__ = ["TrackError", "TrackWarning"]


class TrackError(ValueError):
    """Bad track input. The message names the file (or ``<array>``), the row/field and what was expected."""


class TrackWarning(UserWarning):
    """A track was accepted with a change the file did not ask for (widths clipped in a tight bend)."""
