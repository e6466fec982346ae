"""Geometry shared by controllers, racing lines and plots: closed paths and friction-limited speed profiles.

* :mod:`.path` ``ClosedPath`` (a closed polyline with arc length, heading, curvature, nearest-point queries)
* :mod:`.speed_profile` ``speed_profile`` (forward/backward pass under a friction ellipse and the car's limits)
"""
