"""Sweeps and robust tuning: many closed-loop races, distributed on Ray (``racing sweep``, ``racing tune``).

* :mod:`.spec`     the strict spec YAML -> a checked :class:`~racing.sweep.spec.Spec` -> the races to run
* :mod:`.trial`    one race as a ``racing race`` command, run in-process, reduced to a table row; the objective
* :mod:`.engine`   Ray Tune: local or cluster, resume, progress; Optuna's TPE for the search (imports ray)
* :mod:`.table`    CSV (always) and Parquet (with pyarrow) tables
* :mod:`.cli`      the two subcommands

Nothing here imports Ray at import time; the ``sweep`` extra installs it (``pip install 'racing[sweep]'``).
"""
