"""Where MPPI's iteration runs: ``cpu`` (numba, this process's threads), ``cuda`` (numba-cuda on an NVIDIA GPU,
:mod:`racing.control.mppi.gpu`) or ``auto`` (the GPU when one works, else the CPU, and the record says why).

A machine setting like the thread count, not part of the algorithm's settings: ``racing race --device``,
``racing drive --device``, the API's ``device=`` and a sweep's ``device:`` key all come here. Nothing CUDA is
imported unless a GPU is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass

from racing.config import ConfigError

#: the values of ``--device``
DEVICES = ("cpu", "cuda", "auto")


class DeviceError(ConfigError):
    """A device that cannot be used (``--device cuda`` without a GPU or without the ``[cuda]`` extra): exit 2."""


@dataclass(frozen=True)
class Device:
    """The device an MPPI iteration runs on: ``kind`` ``"cpu"`` | ``"cuda"``; ``name`` the GPU's name (``"CUDA
    simulator"`` under ``NUMBA_ENABLE_CUDASIM=1``; ``"cpu"``); ``requested`` what the user asked for; ``note`` why
    ``auto`` chose the CPU (empty otherwise)."""

    kind: str = "cpu"
    name: str = "cpu"
    requested: str = "cpu"
    note: str = ""

    def record(self) -> dict:
        """The run record's and summaries' entry: ``{"device", "gpu", "requested"[, "note"]}``."""
        out = {"device": self.kind, "gpu": self.name if self.kind == "cuda" else None, "requested": self.requested}
        if self.note:
            out["note"] = self.note
        return out


CPU = Device()


def cuda_problem() -> str | None:
    """``None`` when numba-cuda finds a CUDA GPU it can use (or runs its simulator), else what is missing, in
    words a user can act on."""
    try:
        from numba import cuda
    except ImportError as exc:  # numba without its CUDA target
        return f"numba's CUDA target is not installed ({exc}); pip install 'racing[cuda]'"
    try:
        import numba_cuda  # noqa: F401 - the maintained CUDA target (numba's built-in one is deprecated)
    except ImportError:
        return "the numba-cuda package is not installed; pip install 'racing[cuda]'"
    if cuda.is_available():
        return None
    from numba.cuda.cudadrv import driver

    why = " ".join(str(getattr(driver.driver, "initialization_error", "") or "").split())
    return ("no usable CUDA GPU: numba-cuda found none" + (f" ({why})" if why else "") +
            "; an NVIDIA GPU and its driver are needed (or NUMBA_ENABLE_CUDASIM=1 for numba's simulator)")


def gpu_name() -> str:
    """The current CUDA device's name (``"CUDA simulator"`` in numba's simulator)."""
    from numba import cuda

    dev = cuda.get_current_device()
    name = getattr(dev, "name", None)
    if name is None:
        return "CUDA simulator"
    return name.decode() if isinstance(name, bytes) else str(name)


def resolve_device(request, option: str = "--device") -> Device:
    """The :class:`Device` for ``request`` (``"cpu"``, ``"cuda"``, ``"auto"``, or a :class:`Device` as it is).
    :class:`DeviceError` (a ConfigError: exit 2) for an unknown value, or ``cuda`` where no GPU works, naming what is
    missing; ``auto`` without a GPU is the CPU with the reason in ``note``."""
    if isinstance(request, Device):
        return request
    if request is None:
        return CPU
    if request not in DEVICES:
        raise DeviceError(f"{option}: unknown device {request!r}; expected one of {', '.join(DEVICES)}")
    if request == "cpu":
        return CPU
    problem = cuda_problem()
    if problem is None:
        return Device("cuda", gpu_name(), request)
    if request == "cuda":
        raise DeviceError(f"{option} cuda: {problem}")
    return Device("cpu", "cpu", "auto", f"auto chose the CPU: {problem}")


__all__ = ["CPU", "DEVICES", "Device", "DeviceError", "cuda_problem", "gpu_name", "resolve_device"]
