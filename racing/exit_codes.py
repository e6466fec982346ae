"""The exit-code convention of every ``racing`` subcommand (documented in the README).

======  ===============================================================================
code    meaning
======  ===============================================================================
0       completed clean
1       the run failed (off track for good, timeout, diverged, a watchdog trip, a fit
        that did not converge, ...)
2       bad input: an unknown name, a malformed file, an impossible option (the message
        names the file or option and what was expected); nothing was written
3       completed with incidents (off-track excursions, deadline misses): the figures
        exist but are not a clean result
======  ===============================================================================
"""
from __future__ import annotations

OK = 0
FAILED = 1
BAD_INPUT = 2
INCIDENTS = 3
