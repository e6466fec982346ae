"""SimResult: everything a closed-loop run produced, as data (plots consume it)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from racing import exit_codes
from racing.logs import DriveLog

#: outcome of a run by status: "clean" | "incidents" | "failed"
OUTCOMES = {"completed": "clean", "completed_with_incidents": "incidents", "timeout": "failed", "stalled": "failed",
            "off_track": "failed", "diverged": "failed"}
#: exit code of ``racing race`` by outcome (the convention of :mod:`racing.exit_codes`)
EXIT_CODES = {"clean": exit_codes.OK, "incidents": exit_codes.INCIDENTS, "failed": exit_codes.FAILED}


@dataclass
class SimResult:
    """Time series at the control rate (N ticks) plus laps, events and the resolved config.

    t        : float64[N]     time [s]
    state    : float64[N, 7]  true plant state (x, y, yaw, vx, vy, yaw_rate, steer) [SI]
    measured : float64[N, 7]  what the controller observed (with noise)
    command  : float64[N, 3]  (steering_angle [rad], speed [m/s], acceleration [m/s^2]) returned at t
    frenet   : float64[N, 3]  (s [m], n [m] positive left, heading error [rad]) of the true state
    compute_s: float64[N]     controller compute time per call [s] (0 on ticks skipped after a deadline miss)
    laps     : list of lap times [s]; lap_end_t: crossing times [s]
    events   : list of {"t", "type", ...}  (off_track, back_on_track, deadline_miss, ...)
    status   : "completed" (all laps, nothing happened) | "completed_with_incidents" (all laps, but off-track
               excursions or deadline misses) | "timeout" | "off_track" | "stalled" | "diverged" (failures)
    period_s : control period [s]; compute_over_period: calls that took longer (counted off-line too)
    config   : resolved configuration (track, cars, controller, simulator)
    snapshots: controller diagnostics captured at chosen instants
    """

    t: np.ndarray
    state: np.ndarray
    measured: np.ndarray
    command: np.ndarray
    frenet: np.ndarray
    compute_s: np.ndarray
    laps: list
    lap_end_t: list
    events: list
    status: str
    off_track: int
    deadline_misses: int
    config: dict
    snapshots: list = field(default_factory=list)
    reference_lap_s: float | None = None
    period_s: float | None = None
    compute_over_period: int = 0

    @property
    def outcome(self) -> str:
        """"clean" | "incidents" | "failed" (see :data:`OUTCOMES`)."""
        return OUTCOMES.get(self.status, "failed")

    @property
    def exit_code(self) -> int:
        """0 clean, 3 completed with incidents, 1 failed (:mod:`racing.exit_codes`)."""
        return EXIT_CODES[self.outcome]

    @property
    def incidents(self) -> dict:
        """Counts of what went wrong on the way: off-track excursions, real-time deadline misses, and the calls
        whose compute time exceeded the period (a miss in real time; off-line it costs no simulated time)."""
        return {"off_track": self.off_track, "deadline_misses": self.deadline_misses,
                "compute_over_period": self.compute_over_period}

    @property
    def best_lap_s(self) -> float | None:
        return min(self.laps) if self.laps else None

    def compute_ms(self) -> dict:
        c = self.compute_s * 1e3
        if c.size == 0:
            return {"p50": None, "p99": None, "max": None}
        return {"p50": float(np.percentile(c, 50)), "p99": float(np.percentile(c, 99)), "max": float(c.max())}

    def summary(self) -> dict:
        """The JSON summary of ``racing race --json``."""
        best = self.best_lap_s
        out = {
            "track": self.config.get("track", {}).get("name"),
            "car": self.config.get("car", {}).get("name"),
            "model_car": self.config.get("model_car", {}).get("name"),
            "controller": self.config.get("controller", {}).get("name"),
            "plant": self.config.get("plant"),
            "rate_hz": self.config.get("sim", {}).get("rate_hz"),
            "laps": [round(x, 4) for x in self.laps],
            "best_lap_s": None if best is None else round(best, 4),
            "off_track": self.off_track,
            "deadline_misses": self.deadline_misses,
            "compute_ms": self.compute_ms(),
            "status": self.status,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "incidents": self.incidents,
            "realtime": bool(self.config.get("sim", {}).get("realtime", False)),
            "period_ms": None if self.period_s is None else round(self.period_s * 1e3, 6),
            "compute_over_period": self.compute_over_period,
            "compute_over_period_pct": (round(100.0 * self.compute_over_period / self.t.size, 3)
                                        if self.t.size else 0.0),
            "sim_time_s": float(self.t[-1]) if self.t.size else 0.0,
            "max_speed_mps": float(np.max(np.hypot(self.state[:, 3], self.state[:, 4]))) if self.t.size else 0.0,
            "max_abs_lateral_offset_m": float(np.max(np.abs(self.frenet[:, 1]))) if self.t.size else 0.0,
        }
        machine = self.config.get("machine", {})
        if "device" in machine:
            out["device"] = {k: machine[k] for k in ("device", "gpu", "requested", "note") if k in machine}
        if self.config.get("estimates"):
            out["estimates"] = dict(self.config["estimates"])
        if self.config.get("samples"):
            out["samples"] = dict(self.config["samples"])
        if self.config.get("guide"):
            out["guide"] = dict(self.config["guide"])
        if self.reference_lap_s is not None:
            out["reference_lap_s"] = round(self.reference_lap_s, 4)
            out["gap_to_reference"] = None if best is None else round(best / self.reference_lap_s - 1.0, 5)
        return out

    def to_log(self) -> DriveLog:
        """The run as a driving log (true state, commands)."""
        return DriveLog(self.t, self.state, self.command, meta={"source": "racing race",
                                                                "car": self.config.get("car", {}).get("name", "")})

    def save(self, out_dir: str | Path) -> Path:
        """Write ``result.npz``, ``summary.json``, ``config.yaml`` and ``log.csv`` into ``out_dir``."""
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(d / "result.npz", t=self.t, state=self.state, measured=self.measured,
                            command=self.command, frenet=self.frenet, compute_s=self.compute_s)
        meta = {"laps": self.laps, "lap_end_t": self.lap_end_t, "events": self.events, "status": self.status,
                "off_track": self.off_track, "deadline_misses": self.deadline_misses,
                "reference_lap_s": self.reference_lap_s, "period_s": self.period_s,
                "compute_over_period": self.compute_over_period}
        (d / "events.json").write_text(json.dumps(meta, indent=1, default=float))
        (d / "summary.json").write_text(json.dumps(self.summary(), indent=1))
        (d / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.to_log().save(d / "log.csv")
        return d

    @classmethod
    def load(cls, out_dir: str | Path) -> "SimResult":
        d = Path(out_dir)
        arr = np.load(d / "result.npz")
        meta = json.loads((d / "events.json").read_text())
        config = yaml.safe_load((d / "config.yaml").read_text())
        return cls(t=arr["t"], state=arr["state"], measured=arr["measured"], command=arr["command"],
                   frenet=arr["frenet"], compute_s=arr["compute_s"], laps=meta["laps"], lap_end_t=meta["lap_end_t"],
                   events=meta["events"], status=meta["status"], off_track=meta["off_track"],
                   deadline_misses=meta["deadline_misses"], config=config,
                   reference_lap_s=meta.get("reference_lap_s"), period_s=meta.get("period_s"),
                   compute_over_period=meta.get("compute_over_period", 0))


def guide_text(gd: dict) -> str:
    """MPPI's guide in words (``summary["guide"]``)."""
    return f"{gd['controller']}: {gd['samples']} samples around its plan, {gd['weight_mean']:.2f} of the weight (mean)"


def filter_text(est: dict) -> str:
    """The state filter's measured noise and gains in words (``summary["estimates"]``)."""
    sd, k = est["filter_noise_std"], est["filter_gain"]
    return (f"noise at most x/y {max(sd[0], sd[1]):.3f} m, yaw {sd[2]:.4f} rad, v_x/v_y {sd[3]:.3f}/{sd[4]:.3f} m/s, "
            f"r {sd[5]:.4f} rad/s; gains v_x/v_y {k[3]:.2f}/{k[4]:.2f}, r {k[5]:.2f}")


def samples_text(smp: dict) -> str:
    """MPPI's samples per iteration in words (``summary["samples"]``)."""
    if not smp.get("cut_iterations"):
        return f"{smp['K']} per iteration" + ("  (anytime: never cut)" if smp.get("anytime") else "")
    return (f"mean {smp['mean']:g}, min {smp['min']} of {smp['K']}  (anytime: {smp['cut_iterations']} of "
            f"{smp['iterations']} iterations cut to keep the period)")
