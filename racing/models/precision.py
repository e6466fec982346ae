"""float32 forms of the one-source scalar functions, derived from their source when a kernel asks for one.

The model math is written once against ``ops`` (:mod:`racing.models.ops`); numba compiles its scalar form with
the types it is given, but types every Python float literal (``0.5 * h``, ``1.0 - w``) and every module-level float
(``G``) as float64, so a float32 state would be promoted back to float64 at the first constant and nothing would
be gained. :func:`float32_form` therefore makes, from the function's own source (no second copy to keep in step),
a function that differs only in its constants: every float literal and float global becomes a ``numpy.float32``,
and every function it calls that is registered by :func:`racing.models.fastmath.scalar` is replaced by that
function's float32 form, recursively. Called with float32 arguments and :mod:`racing.models.lops32` as ``ops``,
its arithmetic is float32 throughout; :func:`check_float32` proves it after compilation (an int literal mixed into
float arithmetic, say, would promote to float64 and is reported by name). The forms are made once per process and
registered like their originals (CPU and CUDA); tests tie them to the numpy reference within stated bounds.
"""
from __future__ import annotations

import ast
import inspect
import textwrap
import types

import numpy as np
from numba.core import types as nbtypes

from racing.models import fastmath

#: the name the derived functions call for a float32 constant
_F32 = "_float32_constant_"
_FORMS: dict = {}


class _Float32Constants(ast.NodeTransformer):
    """Wraps every float literal, and every ``module.attribute`` that is a float (``math.pi``), in ``_F32(...)``."""

    def __init__(self, env: dict):
        self.env = env

    def visit_Constant(self, node):
        if type(node.value) is float:
            return ast.copy_location(ast.Call(ast.Name(_F32, ast.Load()), [node], []), node)
        return node

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and isinstance(self.env.get(node.value.id), types.ModuleType) \
                and type(getattr(self.env[node.value.id], node.attr, None)) is float:
            return ast.copy_location(ast.Call(ast.Name(_F32, ast.Load()), [node], []), node)
        return node


def float32_form(fn):
    """The float32 form of the scalar function ``fn`` (module doc), registered with
    :func:`racing.models.fastmath.scalar`; made once per process."""
    if fn in _FORMS:
        return _FORMS[fn]
    if fn not in fastmath.SCALARS:
        raise ValueError(f"{fn.__module__}.{fn.__qualname__} is not a compiled scalar function (racing.models."
                         "fastmath.scalar): it has no float32 form")
    if fn.__closure__:
        raise ValueError(f"{fn.__qualname__} is a closure: its float32 form needs a module-level function")
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    fdef = tree.body[0]
    fdef.decorator_list = []
    ast.increment_lineno(tree, fn.__code__.co_firstlineno - 1)
    env = dict(fn.__globals__)
    for node in ast.walk(fdef):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in env:
            value = env[node.id]
            if type(value) is float:
                env[node.id] = np.float32(value)
            elif callable(value) and value in fastmath.SCALARS and value is not fn:
                env[node.id] = float32_form(value)
    tree = ast.fix_missing_locations(_Float32Constants(env).visit(tree))
    env[_F32] = np.float32
    exec(compile(tree, inspect.getsourcefile(fn), "exec"), env)  # noqa: S102 - the project's own source, re-typed
    form = env[fdef.name]
    form.__qualname__ = f"{fn.__qualname__}_float32"
    form.__doc__ = f"float32 form of {fn.__module__}.{fn.__qualname__} (racing.models.precision)."
    _FORMS[fn] = fastmath.scalar(form)
    return _FORMS[fn]


def check_float32(dispatcher, what: str) -> None:
    """Raise a ValueError naming ``what`` when a compiled function's results are not all float32 (the float32 form
    of a model promoted somewhere: an int literal or a float64 argument)."""
    for sig in dispatcher.signatures:
        ret = dispatcher.overloads[sig].signature.return_type
        leaves = ret.types if isinstance(ret, nbtypes.BaseTuple) else (ret,)
        bad = [str(t) for t in leaves if isinstance(t, nbtypes.Float) and t != nbtypes.float32]
        if bad:
            raise ValueError(f"{what}: the float32 form computes in {', '.join(sorted(set(bad)))} "
                             f"(returns {ret}): a constant or argument promotes it")
