"""The scalar array namespace: the ``ops`` that the compiled kernels pass to the model and cost math.

A module (not an object) on purpose: numba types a module argument as a compile-time constant, so a function
written once against ``ops`` (``ops.sin(x)``, ``ops.where(c, a, b)``, ...) compiles into scalar CPU code
(``@njit``) and CUDA device code when called with ``ops=sops``, and runs vectorised on numpy, torch and casadi
with the namespaces of :mod:`racing.models.ops`. ``atan`` and ``tanh`` are the libm-free approximations of
:mod:`racing.models.fastmath` (error < 4e-16), ``sincos`` its Taylor form.
"""
from __future__ import annotations

import math


from numba.core import types
from numba.extending import intrinsic, overload

from racing.models.fastmath import atan_fast, sincos, tanh_fast

sin = math.sin
cos = math.cos
tan = math.tan
exp = math.exp
log = math.log
sqrt = math.sqrt
atan = atan_fast
tanh = tanh_fast
atan2 = math.atan2
minimum = min
maximum = max
abs = abs  # noqa: A001 - the namespace mirrors numpy's names

__all__ = ["abs", "atan", "atan2", "cos", "exp", "log", "maximum", "minimum", "sin", "sincos", "sqrt", "tan", "tanh",
           "where"]


@intrinsic
def _select(typingctx, c, a, b):
    """LLVM ``select``: no branch, no IR blocks (cheap to inline)."""
    ty = typingctx.unify_types(a, b)
    if ty is None or not isinstance(c, types.Boolean):
        return None

    def codegen(context, builder, sig, args):
        cv, av, bv = args
        av = context.cast(builder, av, sig.args[1], ty)
        bv = context.cast(builder, bv, sig.args[2], ty)
        return builder.select(cv, av, bv)

    return ty(c, a, b), codegen


def where(c, a, b):
    """``a if c else b`` (both arguments are evaluated, as in the vectorised namespaces); an LLVM select in
    compiled code."""
    return a if c else b


@overload(where, target="generic")
def _where_impl(c, a, b):
    def impl(c, a, b):
        return _select(c, a, b)

    return impl
