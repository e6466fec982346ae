"""The foreign car's actuators (:class:`racing.sim.foreign.ForeignActuators`): the structures the foreign-car bench
draws that the fit does not assume (a second-order servo, a speed+accel drive-by-wire)."""
from __future__ import annotations

import pytest

from racing.sim.foreign import ForeignActuators


def _step(fa, n=1500, h=0.001, target=0.1):
    """A steering step to ``target`` [rad]: the angle trace (n samples of h [s])."""
    delta, out = 0.0, []
    for _ in range(n):
        rate, _ = fa.inputs(delta, 10.0, target, 10.0, 0.0, h)
        delta += rate * h
        out.append(delta)
    return out


def test_a_second_order_servo_overshoots_and_settles_where_a_p_servo_does_not():
    under = _step(ForeignActuators(servo="second_order", servo_wn=12.0, servo_zeta=0.4, rate_max=5.0, dead_time=0.0,
                                   steer_gain=1.0))
    p = _step(ForeignActuators(servo="p", steer_kp=12.0, rate_max=5.0, dead_time=0.0, steer_gain=1.0))
    assert max(under) > 0.1 * 1.15  # zeta 0.4: about 25 % overshoot
    assert max(p) <= 0.1 + 1e-12  # first order: no overshoot
    assert under[-1] == pytest.approx(0.1, rel=0.02) and p[-1] == pytest.approx(0.1, rel=0.02)
    # the rate limit holds for the second-order servo too
    slow = _step(ForeignActuators(servo="second_order", servo_wn=20.0, servo_zeta=0.7, rate_max=0.2, dead_time=0.0,
                                  steer_gain=1.0), n=100)
    assert 0.9 * 0.2 * 0.1 < slow[-1] <= 0.2 * 0.1 + 1e-12  # 0.1 s at no more than 0.2 rad/s


def test_the_acceleration_field_is_added_only_by_a_speed_accel_interface():
    h = 0.001
    only = ForeignActuators(speed_kp=0.5, speed_ki=0.0)
    ff = ForeignActuators(speed_kp=0.5, speed_ki=0.0, accel_ff=True)
    assert only.drive_interface == "speed" and ff.drive_interface == "speed_accel"
    assert only.inputs(0.0, 10.0, 0.0, 10.0, -3.0, h)[1] == 0.0
    assert ff.inputs(0.0, 10.0, 0.0, 10.0, -3.0, h)[1] == pytest.approx(-3.0)
    assert ff.inputs(0.0, 10.0, 0.0, 10.0, -30.0, h)[1] == -ff.decel_max  # clipped to the car's limits
    with pytest.raises(ValueError, match="servo"):
        ForeignActuators(servo="pid")
    with pytest.raises(ValueError, match="servo_wn"):
        ForeignActuators(servo="second_order", servo_wn=0.0)
