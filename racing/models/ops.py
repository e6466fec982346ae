"""Array namespaces that let one piece of model math run on numpy, torch and casadi.

The model and cost equations (:mod:`racing.models.dynamic`, :mod:`racing.models.kinematic`,
:mod:`racing.models.discrete`, :mod:`racing.models.actuators`, :mod:`racing.control.costs`) are written once,
elementwise, against the small interface below (``get``, ``stack``, ``where``, ``sincos`` and elementwise
functions). ``x[..., i]`` is ``ops.get(x, i)``; the result vector is ``ops.stack([...])``. The same component
functions compile into the numba (CPU) and CUDA kernels with the scalar namespace :mod:`racing.models.sops`;
tests tie every compiled form to this numpy reference on random batches.
"""
from __future__ import annotations

import numpy as np


class NumpyOps:
    """numpy: states ``x[..., nx]`` of any batch shape."""

    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    tan = staticmethod(np.tan)
    atan = staticmethod(np.arctan)
    atan2 = staticmethod(np.arctan2)
    tanh = staticmethod(np.tanh)
    sqrt = staticmethod(np.sqrt)
    abs = staticmethod(np.abs)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    where = staticmethod(np.where)

    @staticmethod
    def sincos(a):
        return np.sin(a), np.cos(a)

    @staticmethod
    def get(x, i):
        return x[..., i]

    @staticmethod
    def stack(parts):
        return np.stack(np.broadcast_arrays(*parts), axis=-1)


class TorchOps:
    """torch: states ``x[..., nx]`` tensors; parameters a tensor ``p[N_PARAMS]``."""

    def __init__(self):
        import torch

        self.torch = torch
        self.sin, self.cos, self.tan = torch.sin, torch.cos, torch.tan
        self.atan, self.atan2, self.tanh = torch.atan, torch.atan2, torch.tanh
        self.sqrt, self.abs, self.exp, self.log = torch.sqrt, torch.abs, torch.exp, torch.log

    def where(self, c, a, b):
        t = self.torch
        return t.where(t.as_tensor(c), t.as_tensor(a, dtype=t.float64) if not t.is_tensor(a) else a,
                       t.as_tensor(b, dtype=t.float64) if not t.is_tensor(b) else b)

    def sincos(self, a):
        return self.torch.sin(a), self.torch.cos(a)

    def minimum(self, a, b):
        t = self.torch
        a, b = t.as_tensor(a), t.as_tensor(b)
        return t.minimum(a, b.to(a.dtype) if b.is_floating_point() else b.to(a.dtype))

    def maximum(self, a, b):
        t = self.torch
        a, b = t.as_tensor(a), t.as_tensor(b)
        return t.maximum(a, b.to(a.dtype))

    @staticmethod
    def get(x, i):
        return x[..., i]

    def stack(self, parts):
        t = self.torch
        parts = t.broadcast_tensors(*[t.as_tensor(q) for q in parts])
        return t.stack(parts, dim=-1)


class CasadiOps:
    """casadi: a state is a column ``SX``/``MX`` of length nx; parameters ``p`` indexable."""

    def __init__(self):
        import casadi as ca

        self.ca = ca
        self.sin, self.cos, self.tan = ca.sin, ca.cos, ca.tan
        self.atan, self.atan2, self.tanh = ca.atan, ca.atan2, ca.tanh
        self.sqrt, self.abs = ca.sqrt, ca.fabs
        self.minimum, self.maximum = ca.fmin, ca.fmax
        self.exp, self.log = ca.exp, ca.log
        self.where = ca.if_else

    def sincos(self, a):
        return self.ca.sin(a), self.ca.cos(a)

    @staticmethod
    def get(x, i):
        return x[i]

    def stack(self, parts):
        return self.ca.vertcat(*parts)


NUMPY = NumpyOps()
_cache: dict = {}


def torch_ops() -> TorchOps:
    if "torch" not in _cache:
        _cache["torch"] = TorchOps()
    return _cache["torch"]


def casadi_ops() -> CasadiOps:
    if "casadi" not in _cache:
        _cache["casadi"] = CasadiOps()
    return _cache["casadi"]
