"""Compare two ``racing sweep`` tables race by race (e.g. the shipped controller settings against tuned ones on the
same spec): a markdown table of best lap, gap to the reference, off-track and status per row, and the change.

    python tools/compare_sweeps.py runs/sweep_shipped/sweep.csv runs/sweep_tuned/sweep.csv --names shipped tuned

Rows are matched on (track, car, seed, friction, mass, delay, noise, plant); a row missing from either table is
listed as such.
"""
from __future__ import annotations

import argparse
import sys

KEY = ("track", "car", "seed", "friction", "mass", "delay", "noise", "plant")


def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def compare(a_rows, b_rows, names=("A", "B")) -> str:
    """The markdown comparison of two lists of sweep rows (:func:`racing.sweep.table.read_table`)."""
    a = {tuple(r.get(k) for k in KEY): r for r in a_rows}
    b = {tuple(r.get(k) for k in KEY): r for r in b_rows}
    na, nb = names
    lines = [f"| track | laps | {na} best lap [s] | {na} gap | {na} off-track | {nb} best lap [s] | {nb} gap | "
             f"{nb} off-track | change of gap [points] |", "|---|---|---|---|---|---|---|---|---|"]
    gaps = []
    for key in list(a) + [k for k in b if k not in a]:
        ra, rb = a.get(key), b.get(key)
        cells = [key[0], str((ra or rb)["laps_run"])]
        for r in (ra, rb):
            if r is None:
                cells += ["missing", "—", "—"]
            else:
                ok = r["outcome"] != "failed"
                cells += [_fmt(r["best_lap_s"], ".2f") if ok else f"— ({r['status']})",
                          _fmt(r["gap_pct"], "+.2f") + " %" if r["gap_pct"] is not None else "—", str(r["off_track"])]
        if ra and rb and ra["gap_pct"] is not None and rb["gap_pct"] is not None:
            d = rb["gap_pct"] - ra["gap_pct"]
            gaps.append((ra["gap_pct"], rb["gap_pct"]))
            cells.append(f"{d:+.2f}")
        else:
            cells.append("—")
        lines.append("| " + " | ".join(cells) + " |")
    if gaps:
        ma = sum(g[0] for g in gaps) / len(gaps)
        mb = sum(g[1] for g in gaps) / len(gaps)
        lines.append(f"| **mean** | | | {ma:+.2f} % | | | {mb:+.2f} % | | {mb - ma:+.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from racing.sweep.table import read_table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="the first sweep.csv")
    ap.add_argument("b", help="the second sweep.csv")
    ap.add_argument("--names", nargs=2, default=["A", "B"], help="column labels of the two tables")
    args = ap.parse_args(argv)
    print(compare(read_table(args.a), read_table(args.b), tuple(args.names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
