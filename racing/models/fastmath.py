"""libm-free scalar math for the compiled kernels: accurate to a few ulp, 2-3x faster than libm for the
arguments the rollouts see.

The functions are registered for numba's CPU target (always-inline functions) and its CUDA target (device
functions) by :func:`scalar`, so the same Python source compiles into CPU (``@njit``) and CUDA (``@cuda.jit``)
code, and they stay callable from plain Python (scalars) for tests.
"""
from __future__ import annotations

import functools
import math
import struct
import warnings

import numpy as np

from numba.core.errors import NumbaIRAssumptionWarning
from numba.core import types
from numba.extending import intrinsic, overload

#: fast-math flags of the CPU kernels: everything but 'no NaN / no inf' (the weights must see non-finite costs),
#: 'reassoc' and 'contract'. With either of the two, the kernel that ran in the process that compiled it and the
#: same kernel loaded from numba's on-disk cache computed some samples differently in the last bits, enough to
#: change the chosen inputs, so the first run on a machine gave other laps than every later run with the same seed.
#: 'reassoc' reordered the cost sums (lab_loop, MPPI: 10.87 / 10.07 s vs 10.91 / 10.04 s); 'contract' (fused
#: multiply-adds) made the lockstep kernel's vectorised physics differ by 1-2 ulp from the first ticks (a 3 s race
#: 0.17 m apart; the scalar kernel was unaffected). Measured flag by flag (a fresh cache folder, then the warm one,
#: compared bit for bit): {nsz, arcp, afn} is identical for both kernels; dropping 'contract' cost no measurable
#: time (docs/results.md, sixth session). tests/test_determinism.py pins it.
FM = {"nsz", "arcp", "afn"}
#: the functions registered by :func:`scalar`
SCALARS: set = set()


def scalar(fn):
    """Register ``fn`` for numba's CPU target (``@njit`` callers) as a function of its own, compiled once per
    signature with the kernels' fast-math flags and numpy's error model (a division by zero gives inf/nan, as the
    vectorised forms do, and no exception path) and marked always-inline, so LLVM inlines it into every caller
    when the caller's module is linked; ``fn`` stays a plain Python function (numpy/torch/casadi arrays or scalars).

    Not numba's IR-level inlining (``overload(..., inline="always")``), which this project used until 2026-12-06:
    it re-types every inlined body inside every caller, and nested through the tyre, load-transfer, model, RK4 and
    cost functions it took 110-185 s to compile one MPPI or iLQR kernel and 140 s for the plant, against 5-20 s
    now, for rollouts 6-8 % slower (docs/results.md, 2026-12-06).

    CUDA callers get the function as a plain device function (:func:`_cuda_overload`); :data:`SCALARS` lists it
    (:func:`racing.models.precision.float32_form` derives float32 forms of the functions it calls)."""
    overload(fn, target="cpu", jit_options=dict(fastmath=FM, forceinline=True, error_model="numpy"),
             strict=False)(_typing(fn))
    SCALARS.add(fn)
    return _cuda_overload(fn)


def scalar_exact(fn):
    """:func:`scalar` without fast-math (IEEE arithmetic, as ``@njit(fastmath=False)``): for code held bit for bit to
    a reference compiled the same way (the residual network, :mod:`racing.models.residual`). Plain Python when called
    from Python, so numba's CUDA simulator runs it on its arrays."""
    overload(fn, target="cpu", jit_options=dict(fastmath=False, forceinline=True, error_model="numpy"),
             strict=False)(_typing(fn))
    return _cuda_overload(fn)


def _cuda_overload(fn):
    """Register ``fn`` for the CUDA target as a plain device function (NVVM inlines it): numba-cuda (0.30) cannot
    type numba's IR-inlined functions (a comparison inside one becomes ``gt(omitted, omitted)``), so the CUDA
    registration carries no inline option and no CPU jit options."""
    overload(fn, target="cuda", strict=False)(_typing(fn))
    return fn


def _typing(fn):
    """An overload's typing function that returns ``fn`` as its own implementation, with ``fn``'s signature (numba
    matches the two)."""
    @functools.wraps(fn)
    def typing(*args, **kwargs):
        return fn

    return typing


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


def select(c, a, b):
    """``a if c else b`` (both arguments are evaluated); an LLVM select in compiled code (CPU and CUDA)."""
    return a if c else b


@overload(select, target="generic")
def _select_impl(c, a, b):
    def impl(c, a, b):
        return _select(c, a, b)

    return impl


@scalar
def fmax(a, b):
    """``max(a, b)`` in Python's order (``a`` unless ``b > a``) as one select, the same in CPU and CUDA code: the
    compiled model and cost code uses it (``sops.maximum``) instead of the builtin, whose typing differs between
    numba and numba-cuda."""
    return select(b > a, b, a)


@scalar
def fmin(a, b):
    """``min(a, b)`` in Python's order (``a`` unless ``b < a``) as a select (see :func:`fmax`)."""
    return select(b < a, b, a)


# numba's pedantic IR check warns about phi variables of inlined branches (atan_fast's range reduction); the
# results are tied to the numpy references by the tests
warnings.filterwarnings("ignore", category=NumbaIRAssumptionWarning)


@scalar
def atan_fast(x):
    """arctan(x) without a libm call: Cephes' range reduction (|x| > tan(3 pi/8): pi/2 - atan(1/|x|);
    |x| > 0.66: pi/4 + atan((|x| - 1)/(|x| + 1))) and its rational approximation; error < 2.3e-16.
    About 2-3x faster than ``math.atan`` for the small arguments of slip angles."""
    ax = abs(x)
    if ax > 2.414213562373095:
        y0 = 1.5707963267948966
        xr = -1.0 / ax
        lo = 6.123233995736766e-17
    elif ax > 0.66:
        y0 = 0.7853981633974483
        xr = (ax - 1.0) / (ax + 1.0)
        lo = 3.061616997868383e-17
    else:
        y0 = 0.0
        xr = ax
        lo = 0.0
    z = xr * xr
    pz = ((((-8.750608600031904122785e-1 * z - 1.615753718733365076637e1) * z - 7.500855792314704667340e1) * z
           - 1.228866684490136173410e2) * z - 6.485021904942025371773e1)
    qz = (((((z + 2.485846490142306297962e1) * z + 1.650270098316988542046e2) * z + 4.328810604912902668951e2) * z
           + 4.853903996359136964868e2) * z + 1.945506571482613964425e2)
    y = y0 + (xr + (xr * z * pz / qz + lo))
    return y if x >= 0.0 else -y


@scalar
def tanh_fast(x):
    """tanh(x) from one exp: sign(x) (1 - 2 / (exp(2|x|) + 1)) (absolute error < 4e-16; ~3x cheaper than libm)."""
    ax = fmin(abs(x), 19.1)
    t = 1.0 - 2.0 / (math.exp(2.0 * ax) + 1.0)
    return t if x >= 0.0 else -t


@scalar
def _sincos_taylor(a):
    """(sin a, cos a) by their Taylor polynomials (error < 3e-14 for |a| < 0.8)."""
    a2 = a * a
    sn = a * (1.0 + a2 * (-1.0 / 6.0 + a2 * (1.0 / 120.0 + a2 * (-1.0 / 5040.0 + a2 * (1.0 / 362880.0 + a2 * (
        -1.0 / 39916800.0 + a2 * (1.0 / 6227020800.0)))))))
    cs = 1.0 + a2 * (-0.5 + a2 * (1.0 / 24.0 + a2 * (-1.0 / 720.0 + a2 * (1.0 / 40320.0 + a2 * (
        -1.0 / 3628800.0 + a2 * (1.0 / 479001600.0 + a2 * (-1.0 / 87178291200.0)))))))
    return sn, cs


@scalar
def _sincos_reflected(x):
    """(sin x, cos x) for 0 <= x <= pi/2 by polynomials to x^21 / x^20 (error < 3e-16)."""
    x2 = x * x
    sn = x * (1.0 + x2 * (-1.6666666666666666e-01 + x2 * (8.3333333333333333e-03 + x2 * (
        -1.9841269841269841e-04 + x2 * (2.7557319223985891e-06 + x2 * (-2.5052108385441719e-08 + x2 * (
            1.6059043836821615e-10 + x2 * (-7.6471637318198165e-13 + x2 * (2.8114572543455208e-15 + x2 * (
                -8.2206352466243297e-18 + x2 * 1.9572941063391263e-20))))))))))
    cs = 1.0 + x2 * (-0.5 + x2 * (4.1666666666666667e-02 + x2 * (-1.3888888888888889e-03 + x2 * (
        2.4801587301587302e-05 + x2 * (-2.7557319223985891e-07 + x2 * (2.0876756987868099e-09 + x2 * (
            -1.1470745597729725e-11 + x2 * (4.7794773323873853e-14 + x2 * (-1.5619206968586226e-16 + x2 * (
                4.1103176233121648e-19))))))))))
    return sn, cs


@scalar
def sincos(a):
    """(sin a, cos a) without libm for |a| <= pi: Taylor polynomials for |a| < 0.8 rad (error < 3e-14), and for
    0.8 <= |a| <= pi those of the angle reflected into [0, pi/2] (sin(pi - x) = sin x, cos(pi - x) = -cos x; terms
    to x^21 / x^20, error < 3e-16); libm beyond pi."""
    aa = abs(a)
    if aa < 0.8:
        return _sincos_taylor(a)
    if aa <= 3.141592653589793:
        flip = aa > 1.5707963267948966
        x = 3.141592653589793 - aa if flip else aa
        sn, cs = _sincos_reflected(x)
        return (sn if a >= 0.0 else -sn), (-cs if flip else cs)
    return math.sin(a), math.cos(a)


# ------------------------------------------------------------------------------------------------
# branch-free forms (racing.models.lops): no libm call and no branch, so that LLVM vectorises a loop over samples
# stepped in lockstep; for the arguments the models see they equal the forms above to a few ulp
# ------------------------------------------------------------------------------------------------
def _bitcast(src, dst):
    """An intrinsic that reinterprets a ``src`` value's bits as ``dst`` (an LLVM bitcast; numba types)."""
    @intrinsic
    def cast(typingctx, x):
        if x != src:
            return None

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    return cast


#: the IEEE bits of a float64 as an int64, and back
_bits_of = _bitcast(types.float64, types.int64)
_float_of = _bitcast(types.int64, types.float64)


def bits_of(x):
    """The IEEE bits of the float64 ``x`` as an int (compiled: a bitcast)."""
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


def float_of(i):
    """The float64 with the IEEE bits ``i`` (taken modulo 2^64, as int64 arithmetic wraps; compiled: a bitcast)."""
    return struct.unpack("<d", struct.pack("<Q", int(i) % (1 << 64)))[0]


@overload(bits_of, target="generic")
def _bits_of_impl(x):
    return lambda x: _bits_of(x)


@overload(float_of, target="generic")
def _float_of_impl(i):
    return lambda i: _float_of(i)


@scalar
def exp_bf(x):
    """exp(x) without libm and without a branch (relative error < 3e-16 on [-708, 709], clamped outside):
    x = n ln 2 + r with |r| <= ln 2 / 2 (Cody-Waite), e^r by its Taylor polynomial to r^13, 2^n built in the
    exponent bits (n + 1023 read from the mantissa of n + 1023 + 2^52, so no float-to-int conversion, which AVX2
    has no vector form of)."""
    x = fmin(fmax(x, -708.0), 709.0)
    n = np.floor(x * 1.4426950408889634 + 0.5)
    r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10
    p = 1.0 + r * (1.0 + r * (0.5 + r * (1.6666666666666666e-01 + r * (4.1666666666666664e-02 + r * (
        8.3333333333333332e-03 + r * (1.3888888888888889e-03 + r * (1.9841269841269841e-04 + r * (
            2.4801587301587302e-05 + r * (2.7557319223985893e-06 + r * (2.7557319223985888e-07 + r * (
                2.5052108385441720e-08 + r * (2.0876756987868100e-09 + r * 1.6059043836821613e-10))))))))))))
    return p * float_of(bits_of(n + 4503599627371519.0) << 52)


@scalar
def tanh_bf(x):
    """:func:`tanh_fast` with :func:`exp_bf` and a select for the sign."""
    ax = fmin(abs(x), 19.1)
    t = 1.0 - 2.0 / (exp_bf(2.0 * ax) + 1.0)
    return select(x >= 0.0, t, -t)


#: tanh_f32's clamp: |x| beyond it gives tanh(+-TANH32_CLAMP), within 2.7e-7 of +-1
TANH32_CLAMP = 7.90531110763549805


@scalar
def tanh_f32(x):
    """tanh(x) in float32 arithmetic for a float32 ``x``: x P(x^2) / Q(x^2), odd numerator of degree 13 over an even
    denominator of degree 6, the argument clamped to +-:data:`TANH32_CLAMP`; no branch, no libm call, one division,
    so that LLVM vectorises it 8 lanes to an AVX2 register. The coefficients are this project's fit to tanh on [0,
    7.905] (linearised least squares, Lawson-weighted towards minimax): 1.4e-9 from tanh in exact arithmetic, 3.8e-7
    evaluated in float32 (tests/models/test_fastmath.py). For the residual network's float32 block
    (:func:`racing.models.residual.make_block_residual`)."""
    c = np.float32(TANH32_CLAMP)
    x = fmin(fmax(x, -c), c)
    x2 = x * x
    p = x * (np.float32(1.0) + x2 * (np.float32(0.13124317) + x2 * (np.float32(0.0031493832) + x2 * (
        np.float32(1.1644494e-05) + x2 * (np.float32(-2.233735e-08) + x2 * (np.float32(6.3870055e-11)
                                                                          + x2 * np.float32(-1.1656992e-13)))))))
    q = np.float32(1.0) + x2 * (np.float32(0.46457645) + x2 * (np.float32(0.024674917)
                                                               + x2 * np.float32(0.00026131034)))
    return p / q


@scalar
def sincos_bf(a):
    """(sin a, cos a): :func:`sincos` with both polynomials evaluated and selected (the same value for |a| <= pi),
    the angle first reduced into [-pi, pi] arithmetically (a - 2 pi round(a / 2 pi): exact for |a| <= pi)."""
    a = a - 6.283185307179586 * np.floor(a * 0.15915494309189535 + 0.5)
    aa = abs(a)
    sn0, cs0 = _sincos_taylor(a)
    flip = aa > 1.5707963267948966
    sn, cs = _sincos_reflected(select(flip, 3.141592653589793 - aa, aa))
    small = aa < 0.8
    return select(small, sn0, select(a >= 0.0, sn, -sn)), select(small, cs0, select(flip, -cs, cs))


@scalar
def sin_bf(a):
    """sin a from :func:`sincos_bf`."""
    return sincos_bf(a)[0]


@scalar
def cos_bf(a):
    """cos a from :func:`sincos_bf`."""
    return sincos_bf(a)[1]


# ------------------------------------------------------------------------------------------------
# float32 forms (racing.models.lops32): the branch-free functions in float32 arithmetic for a float32 argument,
# eight lanes to an AVX2 register; every constant is a float32, so nothing promotes back to float64
# ------------------------------------------------------------------------------------------------
@scalar
def atan_f32(x):
    """arctan(x) in float32: Cephes' ``atanf`` (its range reduction, |x| > tan(3 pi/8): pi/2 + atan(-1/|x|),
    |x| > tan(pi/8): pi/4 + atan((|x| - 1)/(|x| + 1)), and its odd polynomial of degree 9), the three reductions
    as selects of one quotient's numerator and denominator (one division); error < 3e-7 (tests)."""
    ax = abs(x)
    big = ax > np.float32(2.414213562373095)
    mid = ax > np.float32(0.4142135623730950)
    one = np.float32(1.0)
    num = select(big, -one, select(mid, ax - one, ax))
    den = select(big, ax, select(mid, ax + one, one))
    y0 = select(big, np.float32(1.5707963267948966), select(mid, np.float32(0.7853981633974483), np.float32(0.0)))
    xr = num / den
    z = xr * xr
    y = y0 + (((np.float32(8.05374449538e-2) * z - np.float32(1.38776856032e-1)) * z + np.float32(1.99777106478e-1))
              * z - np.float32(3.33329491539e-1)) * z * xr + xr
    return select(x >= np.float32(0.0), y, -y)


@scalar
def sincos_f32(a):
    """(sin a, cos a) in float32: Cephes' ``sinf``/``cosf`` polynomials on [-pi/4, pi/4] after the reduction
    a = q pi/2 + r (Cody-Waite, pi/2 in three float32 parts; q a whole float, so no float-to-int conversion), the
    quadrant's swap and signs as selects; error < 2e-7 for |a| < 100 rad (tests)."""
    one = np.float32(1.0)
    q = np.floor(a * np.float32(0.6366197723675814) + np.float32(0.5))
    r = ((a - q * np.float32(1.5703125)) - q * np.float32(4.837512969970703125e-4)) - q * np.float32(
        7.54978995489188216e-8)
    z = r * r
    s = ((np.float32(-1.9515295891e-4) * z + np.float32(8.3321608736e-3)) * z - np.float32(1.6666654611e-1)) * z * r + r
    c = ((np.float32(2.443315711809948e-5) * z - np.float32(1.388731625493765e-3)) * z
         + np.float32(4.166664568298827e-2)) * z * z - np.float32(0.5) * z + one
    n = q - np.float32(4.0) * np.floor(q * np.float32(0.25))  # the quadrant, 0..3
    swap = (n == one) | (n == np.float32(3.0))
    sn = select(swap, c, s)
    cs = select(swap, s, c)
    return (select(n >= np.float32(2.0), -sn, sn),
            select((n == one) | (n == np.float32(2.0)), -cs, cs))


@scalar
def sin_f32(a):
    """sin a from :func:`sincos_f32`."""
    return sincos_f32(a)[0]


@scalar
def cos_f32(a):
    """cos a from :func:`sincos_f32`."""
    return sincos_f32(a)[1]
