"""The scalar array namespace: the ``ops`` that the compiled kernels pass to the model and cost math.

A module (not an object) on purpose: numba types a module argument as a compile-time constant, so a function
written once against ``ops`` (``ops.sin(x)``, ``ops.where(c, a, b)``, ...) compiles into scalar CPU code
(``@njit``) and CUDA device code when called with ``ops=sops``, and runs vectorised on numpy, torch and casadi
with the namespaces of :mod:`racing.models.ops`. ``atan`` and ``tanh`` are the libm-free approximations of
:mod:`racing.models.fastmath` (error < 4e-16), ``sincos`` its Taylor form.
"""
from __future__ import annotations

import math


from racing.models.fastmath import atan_fast, fmax, fmin, select, sincos, tanh_fast

sin = math.sin
cos = math.cos
tan = math.tan
exp = math.exp
log = math.log
sqrt = math.sqrt
atan = atan_fast
tanh = tanh_fast
atan2 = math.atan2
minimum = fmin
maximum = fmax
abs = abs  # noqa: A001 - the namespace mirrors numpy's names
#: ``a if c else b`` with both arguments evaluated (as in the vectorised namespaces): an LLVM select when compiled
where = select

__all__ = ["abs", "atan", "atan2", "cos", "exp", "log", "maximum", "minimum", "sin", "sincos", "sqrt", "tan", "tanh",
           "where"]
