"""Strict numeric text tables (the TUM centre-line and raceline csv formats): every error names the file, the
row (1-based line number in the file) and the column."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import TrackError

__all__ = ["CENTERLINE_COLUMNS", "RACELINE_COLUMNS", "read_table"]

CENTERLINE_COLUMNS = ("x_m", "y_m", "w_tr_right_m", "w_tr_left_m")
RACELINE_COLUMNS = ("s_m", "x_m", "y_m", "psi_rad", "kappa_radpm", "vx_mps", "ax_mps2")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_table(path: Path, columns: Sequence[str], sep: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Strictly read a numeric table. Returns data [R, C], the 1-based file line number of each row [R]
    and the comment lines (without the leading '#', stripped).

    A header (a comment line, or the first non-comment line, made only of column names) may reorder
    the columns; it must name every expected column. Without a header the expected order is assumed.
    """
    path = Path(path)
    if not path.is_file():
        raise TrackError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrackError(f"{path}: cannot read: {exc}") from exc
    ncol = len(columns)
    expected = sep.join(columns)
    order = list(range(ncol))
    rows, lines, comments = [], [], []
    seen_data = False

    def header(tokens, lineno):
        nonlocal order
        if len(tokens) < 2 or not all(_NAME_RE.match(t) for t in tokens):
            return False
        missing = [c for c in columns if c not in tokens]
        extra = [t for t in tokens if t not in columns]
        if missing or extra or len(tokens) != ncol:
            what = (f"lacks column {', '.join(missing)}" if missing else f"has unknown column {', '.join(extra)}")
            raise TrackError(f"{path}: row {lineno}: header {what}; expected '# {expected}'")
        order = [tokens.index(c) for c in columns]
        return True

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line.lstrip("#").strip())
            if not seen_data:
                header([t.strip() for t in line.lstrip("#").split(sep)], lineno)
            continue
        tokens = [t.strip() for t in line.split(sep)]
        if not seen_data and header(tokens, lineno):
            continue
        seen_data = True
        if len(tokens) != ncol:
            if len(tokens) < ncol:
                miss = ", ".join(columns[order.index(k)] for k in range(len(tokens), ncol)
                                 ) if sorted(order) == list(range(ncol)) else ""
                raise TrackError(f"{path}: row {lineno}: {len(tokens)} values, missing column {miss}; "
                                 f"expected {ncol} values '{expected}' separated by '{sep}'")
            raise TrackError(f"{path}: row {lineno}: {len(tokens)} values; expected {ncol} values "
                             f"'{expected}' separated by '{sep}'")
        vals = []
        for k, col in enumerate(columns):
            tok = tokens[order[k]]
            if tok == "":
                raise TrackError(f"{path}: row {lineno}: {col} is empty; expected a number")
            try:
                v = float(tok)
            except ValueError:
                raise TrackError(f"{path}: row {lineno}: {col} = {tok!r} is not a number") from None
            if not math.isfinite(v):
                what = "NaN" if math.isnan(v) else tok
                raise TrackError(f"{path}: row {lineno}: {col} is {what}; expected a finite number")
            vals.append(v)
        rows.append(vals)
        lines.append(lineno)
    if not rows:
        raise TrackError(f"{path}: no data rows; expected rows of '{expected}'")
    return np.asarray(rows, dtype=np.float64), np.asarray(lines, dtype=np.int64), comments
