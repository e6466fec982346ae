"""A closed reference path (centre line or raceline) resampled at uniform spacing, with a
cheap local projection for controllers that follow it."""
from __future__ import annotations

import numpy as np

from racing.track import Track


class ClosedPath:
    """Closed path ``xy[N, 2]`` [m] at uniform spacing ``ds`` [m] with curvature ``kappa[N]`` [1/m].

    ``project(x, y, hint)`` finds the nearest arc length by a local search around ``hint``
    (an index), falling back to a global search when ``hint`` is None.
    """

    def __init__(self, s, x, y, kappa, length: float, ds_target: float | None = None):
        s = np.asarray(s, dtype=float)
        length = float(length)
        if ds_target is None:
            ds_target = length / s.size
        n = max(8, int(round(length / ds_target)))
        self.ds = length / n
        self.length = length
        self.s = np.arange(n) * self.ds
        sp = np.append(s, length)
        self.x = np.interp(self.s, sp, np.append(x, x[0]))
        self.y = np.interp(self.s, sp, np.append(y, y[0]))
        self.kappa = np.interp(self.s, sp, np.append(kappa, kappa[0]))
        self.n = n

    @classmethod
    def from_track(cls, track, use_raceline: bool = True, ds: float | None = None) -> "ClosedPath":
        if use_raceline and track.raceline is not None:
            rl = track.raceline
            return cls(rl.s, rl.x, rl.y, rl.kappa, rl.length, ds or track.ds)
        return cls(track.s, track.xy[:, 0], track.xy[:, 1], track.kappa, track.length, ds or track.ds)

    def project(self, x: float, y: float, hint: int | None = None, window: int = 40) -> tuple[int, float]:
        """(index of the segment start, arc length s [m]) of the nearest point on the path."""
        if hint is None:
            idx = np.arange(self.n)
        else:
            idx = (hint + np.arange(-window // 4, window)) % self.n
        d2 = (self.x[idx] - x) ** 2 + (self.y[idx] - y) ** 2
        k = int(idx[int(np.argmin(d2))])
        best_i, best_s, best_d = k, self.s[k], np.inf
        for i in (k - 1, k):
            i %= self.n
            j = (i + 1) % self.n
            ax, ay = self.x[i], self.y[i]
            bx, by = self.x[j] - ax, self.y[j] - ay
            t = ((x - ax) * bx + (y - ay) * by) / (bx * bx + by * by)
            t = min(max(t, 0.0), 1.0)
            d = (ax + t * bx - x) ** 2 + (ay + t * by - y) ** 2
            if d < best_d:
                best_i, best_s, best_d = i, (self.s[i] + t * self.ds) % self.length, d
        return best_i, best_s

    def point_at(self, s: float) -> tuple[float, float]:
        """Interpolated (x, y) [m] at arc length s [m] (periodic)."""
        s = s % self.length
        f = s / self.ds
        i = int(f) % self.n
        j = (i + 1) % self.n
        a = f - int(f)
        return self.x[i] + a * (self.x[j] - self.x[i]), self.y[i] + a * (self.y[j] - self.y[i])


def raceline_track(track):
    """The track re-expressed around its raceline: a :class:`~racing.track.Track` whose reference line is the
    raceline (same spacing), with the distances from the raceline to the same edges as widths [m], and the
    raceline attached to it (so ``n_ref = 0`` along it and its speed profile maps 1:1). A controller that
    measures progress and lateral offset in this frame gains arc length at the car's speed when it drives the
    line (on the centre-line frame, the inside of a corner gains progress faster than the speed). ``track``
    itself when it has no raceline."""
    rl = track.raceline
    if rl is None:
        return track

    xy = np.column_stack([rl.x, rl.y])
    s_c, n_c, _ = track.frenet_path(xy)
    wl_c, wr_c = track.widths_at(s_c)
    w_left = np.asarray(wl_c) - n_c
    w_right = np.asarray(wr_c) + n_c
    if np.any(w_left <= 0.0) or np.any(w_right <= 0.0):
        raise ValueError(f"track {track.name}: its raceline leaves the track (min width left "
                         f"{w_left.min():.3f} m, right {w_right.min():.3f} m)")
    out = Track.from_centerline(xy, w_right, w_left, name=f"{track.name} (raceline frame)", ds=track.ds,
                                source=getattr(track, "source", "<raceline>"), scale=getattr(track, "scale", None))
    return out.with_raceline(rl)
