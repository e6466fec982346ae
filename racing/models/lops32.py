"""The lockstep scalar namespace in float32: :mod:`racing.models.lops` for float32 arguments.

The MPPI lockstep kernel's float32 physics (``physics_precision: float32``) passes this ``ops`` to the float32 forms
of the one-source model functions (:func:`racing.models.precision.float32_form`): ``sincos``, ``atan`` and
``tanh`` are the float32 branch-free forms of :mod:`racing.models.fastmath` (``sin`` and ``cos`` the halves of
``sincos``), ``sqrt`` numba's float32 square root; every one returns a float32 for a float32, so a loop over the
block's samples stays float32 and LLVM steps eight of them per AVX2 register. ``exp``, ``tan``, ``log`` and
``atan2`` are left out on purpose: a model that needs them has no float32 lockstep form (an error at compile time).
"""
from __future__ import annotations

import math

from racing.models.fastmath import atan_f32, cos_f32, fmax, fmin, select, sin_f32, sincos_f32, tanh_f32

sqrt = math.sqrt
atan = atan_f32
tanh = tanh_f32
sincos = sincos_f32
sin = sin_f32
cos = cos_f32
minimum = fmin
maximum = fmax
abs = abs  # noqa: A001 - the namespace mirrors numpy's names
where = select

__all__ = ["abs", "atan", "cos", "maximum", "minimum", "sin", "sincos", "sqrt", "tanh", "where"]
