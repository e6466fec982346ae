"""Standalone wrapper of ``racing bench`` (same flags): ``python tools/bench_mppi.py --json``."""
import sys

from racing.bench import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
