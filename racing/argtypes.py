"""argparse value types shared by the ``racing`` subcommands: a bad value is argparse's usage error (exit code
2, ``racing <command>: error: argument --flag: expected ..., got ...``) before anything runs or is written."""
from __future__ import annotations

import argparse
import math


def _number(kind, text: str):
    try:
        v = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _bounded(kind, lo, strict: bool, doc: str):
    """An argparse type: a ``kind`` number ``> lo`` (``strict``) or ``>= lo``."""
    want = f"{'an integer' if kind is int else 'a number'} {'>' if strict else '>='} {lo}"

    def parse(text: str):
        v = _number(kind, text)
        if (v <= lo) if strict else (v < lo):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return v

    parse.__doc__ = doc
    return parse


positive_int = _bounded(int, 1, False, "An integer >= 1.")
nonnegative_int = _bounded(int, 0, False, "An integer >= 0.")
positive_float = _bounded(float, 0, True, "A finite number > 0.")
nonnegative_float = _bounded(float, 0, False, "A finite number >= 0.")
