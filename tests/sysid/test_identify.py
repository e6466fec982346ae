"""Identifiability: what a log does not excite keeps its base value and is reported; block-bootstrap intervals;
confounded pairs flagged; a residual that does not help is not kept; the pedal map."""
from __future__ import annotations

import numpy as np
import pytest

from racing.models.params import load_params
from racing.sysid import rollout as ro
from racing.sysid.excite import MODERATE, excitation_log
from racing.sysid.parametric import fit, parse_weights
from racing.sysid.pedals import PedalMap, initial_map, pedal_accel


@pytest.fixture(scope="module")
def moderate_log():
    # a gentle speed loop (1/s): the car never accelerates or brakes near mu g
    true = load_params("f1tenth").replace(inertia_z=0.0518, D_f=0.95, speed_kp=1.0)
    log, _ = excitation_log(true, 20.0, seed=2, config=MODERATE)
    return true, log


BASE = load_params("f1tenth").replace(speed_kp=1.0)


def test_unexcited_parameters_keep_base_values_and_are_reported(moderate_log):
    true, log = moderate_log
    base = BASE
    res = fit([log], base, names=("inertia_z", "D_f", "mu", "c_drag"), n_boot=100)
    ni = res.not_identified
    assert "mu" in ni and "not excited" in ni["mu"]  # MODERATE never brakes at the grip limit
    assert res.params.mu == base.mu
    for n, why in ni.items():  # everything not identified is at its base value, never at a bound
        assert getattr(res.params, n) == getattr(base, n), (n, why)
    assert "inertia_z" in res.names and abs(res.params.inertia_z / true.inertia_z - 1) < 0.15
    k = res.names.index("inertia_z")
    lo, hi = res.interval95[k]
    assert lo < res.values[k] < hi and res.std_errors[k] > 0
    assert "Not identified by this log" in res.report()
    d = res.to_dict()
    assert set(d["limits"]) == {"power_max", "v_max", "accel_max", "decel_max"}
    assert all(v["status"] for v in d["limits"].values())
    assert np.allclose(np.diag(res.correlation), 1.0)


def test_confounded_pair_is_flagged_without_the_measured_angle(moderate_log):
    """Without the measured angle, the servo gain and the front tyre trade off: the pair is flagged with an interval."""
    _, log = moderate_log
    log = type(log)(log.t, log.state, log.command, meta={**log.meta, "steer_source": "command"}, source="no-angle")
    res = fit([log], BASE, names=("B_f", "steer_gain"), n_boot=100)
    assert set(res.confounded) == {"B_f", "steer_gain"}
    c = res.confounded["B_f"]
    assert c["partner"] == "steer_gain" and c["correlation"] < -0.9
    assert c["interval"][0] <= res.params.B_f <= c["interval"][1]
    assert "confounded with steer_gain" in res.report()


def test_channel_weights_parse_and_errors():
    assert parse_weights("vx=2,steer=0") == {"vx": 2.0, "vy": 1.0, "yaw_rate": 1.0, "steer": 0.0}
    with pytest.raises(ValueError, match="unknown channel"):
        parse_weights("yaw=1")
    with pytest.raises(ValueError, match="expected a finite number >= 0"):
        parse_weights("vx=-1")


def test_pedal_map_lag_and_regression_start():
    rng = np.random.default_rng(0)
    n = 500
    pedals = np.column_stack([np.repeat(rng.uniform(0, 50, n // 25), 25), np.repeat(rng.uniform(0, 1500, n // 25), 25)])
    dt = np.full(n, 0.04)
    dt[-1] = 0.0
    truth = PedalMap(0.12, 0.004, -0.3, 0.15)
    a = pedal_accel(pedals, dt, truth.to_array())
    assert a[0] == pytest.approx(0.12 * pedals[0, 0] - 0.004 * pedals[0, 1] - 0.3)  # starts in steady state
    step = np.flatnonzero(np.diff(pedals[:, 0]))[0] + 1  # first-order lag: 63 % after tau
    tgt = 0.12 * pedals[:, 0] - 0.004 * pedals[:, 1] - 0.3
    k = step + int(round(0.15 / 0.04))
    frac = (a[k] - a[step]) / (tgt[step] - a[step])
    assert 0.55 < frac < 0.75
    vx = 10 + np.concatenate([[0], np.cumsum(tgt[:-1] * 0.04)])
    m = initial_map(pedals, vx, np.arange(n) * 0.04, np.zeros(n, int))
    assert m.pedal_throttle_gain == pytest.approx(0.12, rel=0.05) and m.pedal_brake_gain == pytest.approx(0.004, rel=0.05)


def test_residual_that_does_not_help_is_not_kept(moderate_log):
    """The plant is the model itself: nothing is left to learn, so the gated residual is not kept (or forced)."""
    pytest.importorskip("torch")
    from racing.sysid.residual import train_gated

    true, log = moderate_log
    data = ro.prepare([log])
    g = train_gated(data, true, epochs=2, hidden=8, pretrain_steps=100, horizon_s=0.5)
    assert not g.kept and g.weights is None and g.worse and "not kept" in g.reason
    table = g.validation.table()
    for m in ("parametric", "semi-parametric", "persistence"):
        assert m in table
    forced = train_gated(data, true, epochs=2, hidden=8, pretrain_steps=100, horizon_s=0.5, force=True)
    assert forced.kept and forced.forced and forced.reason.startswith("forced")


def test_lever_arm_is_recovered(moderate_log):
    """Velocities logged 8 cm ahead of the CoG (v_y,ref = v_y + r d_x): the fit finds d_x."""
    from racing.logs import DriveLog
    from racing.sysid.columns import move_to_cog

    true, log = moderate_log
    moved = DriveLog(log.t, move_to_cog(log.state, (-0.08, 0.0)), log.command, meta=dict(log.meta), source="ahead")
    res = fit([moved], BASE.replace(inertia_z=true.inertia_z, D_f=true.D_f), names=("B_f",), lever_arm=True,
              n_boot=50)
    assert res.reference_x == pytest.approx(0.08, abs=0.015)
    assert res.to_dict()["reference_point"][0] == res.reference_x


class _PedalDriver:
    """Steering from the excitation driver; throttle [%] / brake [kPa] held 0.3-1 s, chosen to keep 2-7 m/s; the
    car's pedal actuator (map + lag, ``truth``) turns them into the plant's acceleration."""

    def __init__(self, params, truth, seed=0):
        from racing.sysid.excite import ExcitationDriver

        self.steer = ExcitationDriver(params, MODERATE, seed)
        self.truth, self.seed, self.pedals = truth, seed, []

    def reset(self, observation=None):
        self.steer.reset()
        self.rng = np.random.default_rng(self.seed)
        self.t_next, self.cur, self.a = -1.0, (0.0, 0.0), None
        self.pedals = []

    def act(self, obs, t):
        from racing.interfaces import Command

        vx = float(obs.state[3])
        if t >= self.t_next:
            r = self.rng.random()
            if vx < 3.0 or (r < 0.5 and vx < 6.0):
                self.cur = (float(self.rng.uniform(10, 60)), 0.0)
            elif vx > 6.0 or r < 0.8:
                self.cur = (0.0, float(self.rng.uniform(200, 1500)))
            else:
                self.cur = (float(self.rng.uniform(0, 15)), 0.0)
            self.t_next = t + self.rng.uniform(0.3, 1.0)
        kt, kb, a0, tau = self.truth
        target = kt * self.cur[0] - kb * self.cur[1] + a0
        self.a = target if self.a is None else self.a + (1 - np.exp(-0.02 / tau)) * (target - self.a)
        self.pedals.append(self.cur)
        return Command(self.steer.act(obs, t).steering_angle, 0.0, self.a)


def test_pedal_log_fit_identifies_the_pedal_map(tmp_path):
    """A pedal car (no speed command): the fit identifies throttle / brake gains, offset and lag; the log round-trips
    through the CSV format on the way."""
    from racing.logs import DriveLog, read_log
    from racing.sim.plant import make_plant
    from racing.sysid.excite import drive_session

    car = load_params("f1tenth").replace(speed_kp=1e-6, D_f=0.95)  # no speed loop: the pedals drive
    truth = (0.08, 0.004, -0.3, 0.1)
    drv = _PedalDriver(car, truth, seed=3)
    log, _ = drive_session(make_plant("dynamic", car), drv, 40.0, 50.0, seed=3)
    cmd = log.command.copy()
    cmd[:, 1:] = 0.0  # a pedal car logs no speed / acceleration command
    ped = DriveLog(log.t, log.state, cmd, meta={"car": "f1tenth", "longitudinal": "pedals"},
                   pedals=np.array(drv.pedals))
    ped.save(tmp_path / "pedal.csv")
    back = read_log(tmp_path / "pedal.csv")
    assert back.meta["longitudinal"] == "pedals" and back.pedals.shape == (log.t.size, 2)
    res = fit([back], car, names=("D_f",), n_boot=50)
    m = res.pedal_map
    assert m is not None and "pedal_map" in res.to_dict()
    assert m.pedal_throttle_gain == pytest.approx(0.08, rel=0.1)
    assert m.pedal_brake_gain == pytest.approx(0.004, rel=0.1)
    assert m.pedal_offset == pytest.approx(-0.3, abs=0.15)
    assert "pedal_tau" in res.not_identified or m.pedal_tau == pytest.approx(0.1, abs=0.05)
