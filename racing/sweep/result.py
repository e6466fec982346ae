"""What a sweep or a tune produced, as data: the rows, the counts, the exit code (plots consume it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from racing import exit_codes
from racing.sweep.table import write_table
from racing.sweep.trial import ROW_COLUMNS


def _rate(n: int, wall_s: float, resumed: bool) -> float | None:
    """Trials per hour of this session (None after a resume: the rows include earlier sessions' trials)."""
    return None if resumed else round(3600.0 * n / max(wall_s, 1e-9), 2)


@dataclass
class SweepResult:
    """``rows``: one dict per finished race, in trial order (:data:`racing.sweep.trial.ROW_COLUMNS` and the
    settings by dotted key); ``planned`` trials in the spec, ``errors`` trials that raised, ``resumed`` whether an
    interrupted run was continued; ``wall_s`` [s] of this session; ``cpus`` Ray had."""

    rows: list
    planned: int
    errors: int = 0
    resumed: bool = False
    wall_s: float = 0.0
    cpus: int = 0
    settings: tuple = ()
    concurrency: int = 1
    ray_start_s: float = 0.0

    @property
    def overhead_per_trial_s(self) -> float | None:
        """Wall time per trial beyond its race [s]: ``(wall_s x concurrency - sum of the races' wall times) / n``
        (Ray's scheduling, the trial process, imports and the controller's construction; not Ray's start-up,
        ``ray_start_s``). None after a resume."""
        if self.resumed or not self.rows:
            return None
        n = len(self.rows)
        return round((self.wall_s * min(self.concurrency, n) - sum(r["wall_s"] for r in self.rows)) / n, 2)

    @property
    def unfinished(self) -> int:
        """Trials neither finished nor failed (the run was interrupted; the same command resumes it)."""
        return self.planned - len(self.rows) - self.errors

    def counts(self) -> dict:
        return {o: sum(r["outcome"] == o for r in self.rows) for o in ("clean", "incidents", "failed")}

    @property
    def exit_code(self) -> int:
        """1 when trials raised, did not run or none finished; else 3 when a race had incidents or failed; else 0."""
        c = self.counts()
        if self.errors or self.unfinished or not self.rows:
            return exit_codes.FAILED
        return exit_codes.INCIDENTS if c["incidents"] or c["failed"] else exit_codes.OK

    def summary(self) -> dict:
        return {"trials": self.planned, "finished": len(self.rows), "errors": self.errors,
                "unfinished": self.unfinished, **self.counts(), "resumed": self.resumed,
                "wall_s": round(self.wall_s, 2), "cpus": self.cpus,
                "trials_per_hour": _rate(len(self.rows), self.wall_s, self.resumed),
                "overhead_per_trial_s": self.overhead_per_trial_s, "ray_start_s": round(self.ray_start_s, 2),
                "exit_code": self.exit_code}

    def save(self, out_dir) -> list[Path]:
        """``sweep.csv`` (and ``sweep.parquet`` with pyarrow) in ``out_dir``; returns the files."""
        return write_table(self.rows, Path(out_dir) / "sweep.csv", first=ROW_COLUMNS[:-3] + tuple(self.settings))


@dataclass
class TuneResult:
    """``trials``: one dict per finished trial in finishing order (``trial``, the searched settings, ``objective``,
    ``mean_gap_pct``, ``std_gap_pct``, ``max_gap_pct``, ``off_track``, ``spins``, ``failed``, ``wall_s``,
    ``controller_config``); ``races``: every race row of every trial; ``best`` / ``base``: the trial with the
    lowest objective and the one with the base settings (or None)."""

    trials: list
    races: list
    planned: int
    settings: tuple
    errors: int = 0
    resumed: bool = False
    wall_s: float = 0.0
    cpus: int = 0
    base_point: dict = field(default_factory=dict)

    @property
    def best(self) -> dict | None:
        return min(self.trials, key=lambda t: t["objective"]) if self.trials else None

    @property
    def base(self) -> dict | None:
        if not self.base_point:
            return None
        return next((t for t in self.trials if all(t[k] == v for k, v in self.base_point.items())), None)

    @property
    def unfinished(self) -> int:
        return self.planned - len(self.trials) - self.errors

    @property
    def exit_code(self) -> int:
        """1 when no trial finished, trials raised or did not run; else 0 when the best trial raced clean (no
        off-track, spin or failure), 3 when it did not."""
        b = self.best
        if b is None or self.unfinished or self.errors:
            return exit_codes.FAILED
        return exit_codes.OK if (b["off_track"] == 0 and b["spins"] == 0 and b["failed"] == 0) else \
            exit_codes.INCIDENTS

    def summary(self) -> dict:
        base = self.base
        return {"planned": self.planned, "finished": len(self.trials), "errors": self.errors,
                "unfinished": self.unfinished, "resumed": self.resumed, "wall_s": round(self.wall_s, 2),
                "cpus": self.cpus, "trials_per_hour": _rate(len(self.trials), self.wall_s, self.resumed),
                "best": self.best, "base": base, "base_objective": None if base is None else base["objective"],
                "exit_code": self.exit_code}

    def best_yaml(self, spec_name: str) -> str:
        """The best trial's full controller settings (YAML for ``--controller-config``) with a header saying where
        they come from."""
        b = self.best
        head = (f"# racing tune {spec_name}: best of {len(self.trials)} trials, objective {b['objective']:.3f} "
                f"(mean gap {b['mean_gap_pct']:+.2f} %, std {b['std_gap_pct']:.2f}, off-track {b['off_track']}, "
                f"spins {b['spins']}, failed {b['failed']})\n")
        return head + Path(b["controller_config"]).read_text()

    def save(self, out_dir, spec_name: str) -> list[Path]:
        """``trials.csv``, ``races.csv`` (and .parquet with pyarrow) and ``best.yaml`` in ``out_dir``."""
        out = Path(out_dir)
        if not self.trials:
            return []
        keys = tuple(self.settings)
        files = write_table(self.trials, out / "trials.csv",
                            first=("trial", *keys, "objective", "mean_gap_pct", "std_gap_pct", "max_gap_pct",
                                   "off_track", "spins", "failed", "wall_s", "controller_config"))
        files += write_table(self.races, out / "races.csv", first=ROW_COLUMNS[:-3] + keys)
        (out / "best.yaml").write_text(self.best_yaml(spec_name))
        return files + [out / "best.yaml"]


__all__ = ["SweepResult", "TuneResult"]
