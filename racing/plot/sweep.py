"""Figures of ``racing sweep`` and ``racing tune`` tables (rows as written by :mod:`racing.sweep.table`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _y(row):
    """A row's gap to the reference [%] when it has one, else its best lap [s]."""
    return row.get("gap_pct") if row.get("gap_pct") is not None else row.get("best_lap_s")


def sweep_figure(rows: list[dict], swept: list[str], title: str = "racing sweep"):
    """One panel per swept column (``swept``: column names): the gap to the reference [%] (or the best lap [s]
    where no reference exists) of every race against that column; off-track races in red, failed ones as x at
    the top. Returns a matplotlib Figure."""
    import matplotlib.pyplot as plt

    cols = swept or ["trial"]
    ref = any(r.get("gap_pct") is not None for r in rows)
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.6), squeeze=False)
    ok = [r for r in rows if r.get("outcome") != "failed" and _y(r) is not None]
    bad = [r for r in rows if r not in ok]
    top = max([_y(r) for r in ok], default=1.0)
    for ax, c in zip(axes[0], cols):
        xs = [r.get(c) for r in ok]
        numeric = all(isinstance(x, (int, float)) for x in xs)
        labels = sorted({str(x) for x in [r.get(c) for r in rows]})
        pos = (lambda x: x) if numeric else (lambda x: labels.index(str(x)))
        for group, colour, lab in ((lambda r: r["off_track"] == 0, "tab:blue", "0 off-track"),
                                   (lambda r: r["off_track"] > 0, "tab:red", "off-track")):
            sel = [r for r in ok if group(r)]
            if sel:
                ax.scatter([pos(r.get(c)) for r in sel], [_y(r) for r in sel], s=18, c=colour, label=lab)
        if bad:
            ax.scatter([pos(r.get(c)) for r in bad], [top * 1.05] * len(bad), marker="x", c="k", label="failed")
        if not numeric:
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_xlabel(c)
        ax.set_ylabel("gap to min-time reference [%]" if ref else "best lap [s]")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def tune_figure(trials: list[dict], title: str = "racing tune"):
    """The objective and the mean gap of every trial in finishing order, with the running best. A Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    n = np.arange(len(trials))
    obj = np.array([t["objective"] for t in trials], dtype=float)
    gap = np.array([t["mean_gap_pct"] for t in trials], dtype=float)
    ax.plot(n, obj, "o", ms=4, label="objective (mean + k std + penalties)")
    ax.plot(n, gap, ".", ms=6, label="mean gap to reference [%]")
    if obj.size:
        ax.plot(n, np.minimum.accumulate(obj), "-", c="k", lw=1, label="best objective so far")
        ax.set_ylim(min(np.nanmin(gap), np.nanmin(obj)) - 1, min(np.nanmax(obj), np.nanmin(obj) + 30) + 1)
    ax.set_xlabel("trial (finishing order)")
    ax.set_ylabel("[%]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["save_figure", "sweep_figure", "tune_figure"]
