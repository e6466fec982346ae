"""The results table of a sweep or tune: CSV always (standard library), Parquet too when pyarrow is installed."""
from __future__ import annotations

import csv
import math
from pathlib import Path


def columns(rows: list[dict], first=()) -> list[str]:
    """``first`` (those present), then every other key in order of appearance."""
    seen = [c for c in first if any(c in r for r in rows)]
    for r in rows:
        for k in r:
            if k not in seen:
                seen.append(k)
    return seen


def write_table(rows: list[dict], path, first=(), parquet: bool = True) -> list[Path]:
    """Write ``rows`` to ``path`` (.csv) and, when ``parquet`` and pyarrow is importable, beside it as .parquet;
    returns the files written. Missing values are empty cells (CSV) / nulls (Parquet)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = columns(rows, first)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(r.get(k)) for k in cols})
    tmp.replace(path)
    files = [path]
    if parquet:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            return files
        data = {c: [_pq(r.get(c)) for r in rows] for c in cols}
        q = path.with_suffix(".parquet")
        pq.write_table(pa.table({c: _array(pa, v) for c, v in data.items()}), q)
        files.append(q)
    return files


def _cell(v):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return v


def _pq(v):
    return None if (isinstance(v, float) and not math.isfinite(v)) else v


def _array(pa, values):
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one column: as text
        return pa.array([None if v is None else str(v) for v in values])


def read_table(path) -> list[dict]:
    """A CSV written by :func:`write_table`, numbers parsed back (empty cells -> None)."""
    out = []
    with Path(path).open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            out.append({k: _parse(v) for k, v in r.items()})
    return out


def _parse(v: str):
    if v == "":
        return None
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(v, v)


__all__ = ["columns", "read_table", "write_table"]
