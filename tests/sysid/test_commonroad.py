"""Identification on a plant the project did not write: CommonRoad's ST model of a BMW 320i (vehicle 2).

120 s of the project's excitation programme (racing/sysid/excite.py) drive the CommonRoad model through the
adapter in tools/commonroad_plant.py (the project's actuator model turns commands into CommonRoad's inputs).
The truth in the project's terms is derived from CommonRoad's parameters there (axle cornering stiffness
``-p_ky1 F_z``, yaw inertia ``I_z``). The fit starts 20-30 % off. The multi-body model's figures (slower to
simulate) are measured by ``python tools/sysid_commonroad.py mb`` (README).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("vehiclemodels")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from sysid_commonroad import NAMES, errors, session, truth  # noqa: E402

from racing.logs import DriveLog  # noqa: E402
from racing.sysid.parametric import fit  # noqa: E402


@pytest.mark.slow
def test_st_recovery_with_and_without_the_measured_angle():
    log, base = session("st")
    res = fit([log], base, names=NAMES)
    e_iz, e_kf, e_kr = errors(res, "st")
    print(res.report(), f"\nST measured angle: I_z {e_iz:+.1%}, K_f {e_kf:+.1%}, K_r {e_kr:+.1%}")
    assert abs(e_iz) < 0.05 and abs(e_kf) < 0.10 and abs(e_kr) < 0.10
    assert abs(res.params.steer_tau / 0.08 - 1) < 0.1  # the adapter's servo lag
    for n in ("mu", "C_f", "D_f"):  # never reaches the grip limit: kept and reported
        assert n in res.not_identified and getattr(res.params, n) == getattr(base, n)

    blind = DriveLog(log.t, log.state, log.command, meta={**log.meta, "steer_source": "command"}, source="no angle")
    res2 = fit([blind], base, names=NAMES)
    e_iz2, _, _ = errors(res2, "st")
    print(res2.report(), f"\nST without the angle: I_z {e_iz2:+.1%}")
    iz = truth("st")["inertia_z"]
    flagged = res2.confounded.get("inertia_z")
    assert abs(e_iz2) < 0.10 or (flagged and flagged["interval"][0] <= iz <= flagged["interval"][1])
    # without the measured angle the servo lag and the tyre stiffness trade off: either the log still pins both
    # (measured 2026-11-27, once B is kept when only C and D go unpinned: I_z +1.1 %, steer_tau 0.079 s) or the
    # pair is flagged, never a confident wrong value
    pinned = abs(e_iz2) < 0.05 and abs(res2.params.steer_tau / 0.08 - 1) < 0.1
    assert pinned or res2.confounded, "without the measured angle: neither pinned nor a servo/tyre pair flagged"
