"""The lockstep scalar namespace: :mod:`racing.models.sops` without a branch or a libm call.

The MPPI kernel that steps a block of samples in lockstep (:mod:`racing.control.mppi.lockstep`) passes this
``ops`` to the one-source model functions, so that the loop over the block's samples holds nothing LLVM cannot
vectorise: ``sincos``, ``exp`` and ``tanh`` are the branch-free forms of :mod:`racing.models.fastmath`
(:func:`~racing.models.fastmath.sincos_bf` equals :func:`~racing.models.fastmath.sincos` for |a| <= pi; the others
agree with libm to a few ulp; ``sin`` and ``cos`` are its halves), ``atan`` is the same function as in ``sops`` (its
range reduction is three cheap alternatives that LLVM turns into selects), ``sqrt`` the LLVM intrinsic. ``tan``,
``log`` and ``atan2`` are left out on purpose: a model that needs them has no lockstep form (an error at compile
time), rather than a silent libm call that keeps the loop scalar.
"""
from __future__ import annotations

import math

from racing.models.fastmath import atan_fast, cos_bf, exp_bf, fmax, fmin, select, sin_bf, sincos_bf, tanh_bf

sqrt = math.sqrt
exp = exp_bf
atan = atan_fast
tanh = tanh_bf
sincos = sincos_bf
sin = sin_bf
cos = cos_bf
minimum = fmin
maximum = fmax
abs = abs  # noqa: A001 - the namespace mirrors numpy's names
where = select

__all__ = ["abs", "atan", "cos", "exp", "maximum", "minimum", "sin", "sincos", "sqrt", "tanh", "where"]
