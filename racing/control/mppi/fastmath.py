"""libm-free scalar math for the MPPI kernels (numba, inlined): accurate to a few ulp, 2-3x faster than libm
for the arguments the rollouts see."""
from __future__ import annotations

import math

from numba import njit

#: fast-math flags of the kernels: everything but 'no NaN / no inf' (the weights must see non-finite costs)
FM = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, inline="always", fastmath=FM)
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


@njit(cache=True, inline="always", fastmath=FM)
def tanh_fast(x):
    """tanh(x) from one exp: sign(x) (1 - 2 / (exp(2|x|) + 1)) (absolute error < 4e-16; ~3x cheaper than libm)."""
    ax = min(abs(x), 19.1)
    t = 1.0 - 2.0 / (math.exp(2.0 * ax) + 1.0)
    return t if x >= 0.0 else -t
