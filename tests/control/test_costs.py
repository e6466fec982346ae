"""racing.control.costs.track_table: the speed cap from a minimum-time line's own speeds and the car's grip margin."""
from __future__ import annotations

import numpy as np

from racing.assembly import resolve_line
from racing.control import costs as C
from racing.models.params import load_params
from racing.track import load_track


def _line_cap(car, margin=None):
    track, record = resolve_line(load_track("ridge_ring"), car, ("mintime",))
    assert record.get("method") == "mintime"  # the shipped minimum-time line of the gt_car
    extra = () if margin is None else (margin,)
    return C.track_table(track, car, 0.95 * (margin or 1.0), 1.0, True, True, False, *extra)[0][:, C.TAB_VCAP]


def test_a_grip_margin_lowers_the_lines_own_speeds_where_grip_binds():
    """With ``profile_cap=False`` (iLQR) the cap is the line's own speeds; a car whose identification vouches for 70 %
    of its grip gets them lowered by about sqrt(0.7) in the corners and braking zones, hardly where the power sets
    them; a margin of 1 changes nothing."""
    car = load_params("gt_car")
    full = _line_cap(car)
    np.testing.assert_array_equal(_line_cap(car, 1.0), full)
    low = _line_cap(car, 0.7)
    assert np.all(low <= full + 1e-12)
    k = np.argmin(full)
    assert abs(low[k] / full[k] - np.sqrt(0.7)) < 0.05
    ratio = low / full
    assert ratio.min() > np.sqrt(0.7) - 0.05  # measured 0.81 (the braking zones), median 0.84
    assert ratio.max() > 0.95  # where the power sets the speed with either grip: measured 0.98
