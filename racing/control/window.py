"""The last samples of a measured run, kept for the online estimators (:mod:`racing.control.grip`,
:mod:`racing.control.steering`): a ring buffer read oldest first into buffers made once."""
from __future__ import annotations

import numpy as np


class SampleWindow:
    """The last ``n`` samples: times ``T[n]`` [s] and rows ``V[n, m]``. :meth:`push` stores one (nothing is
    allocated per sample); :meth:`ordered` copies the ring into ``T`` and ``V``, oldest first, and returns them
    (views into buffers made once). Times not yet written are ``-inf``."""

    def __init__(self, n: int, m: int):
        self.Tb, self.Vb = np.full(n, -np.inf), np.zeros((n, m))
        self.T, self.V = np.zeros(n), np.zeros((n, m))
        self._base, self._idx = np.arange(n), np.zeros(n, dtype=np.int64)
        self.k = 0

    def reset(self) -> None:
        self.Tb[:] = -np.inf
        self.k = 0

    @property
    def size(self) -> int:
        return self.Tb.size

    @property
    def full(self) -> bool:
        return self.k >= self.Tb.size

    def push(self, t: float, row) -> int:
        """Store the sample ``row[m]`` at ``t`` [s]; returns its slot in the ring."""
        i = self.k % self.Tb.size
        self.Tb[i] = t
        self.Vb[i] = row
        self.k += 1
        return i

    def ordered(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T[n], V[n, m])``, oldest first."""
        np.add(self._base, self.k, out=self._idx)
        np.remainder(self._idx, self.Tb.size, out=self._idx)
        np.take(self.Tb, self._idx, out=self.T)
        np.take(self.Vb, self._idx, axis=0, out=self.V)
        return self.T, self.V


__all__ = ["SampleWindow"]
