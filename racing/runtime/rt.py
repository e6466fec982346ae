"""CPU settings of a real-time process: numba thread count, core pinning, real-time scheduling.

A control loop must keep its rate while other processes (ROS nodes, logging, a simulator) load
the computer. Three levers, all optional and all reported (:class:`CpuReport`):

* **numba threads** (``threads``, default 1): a parallel region with n threads waits for its
  slowest thread, and on a loaded machine one of them is often descheduled - a two-thread MPPI
  region on a loaded 2-core machine took 16-24 ms where one thread took 1.9 ms. One thread
  degrades gracefully; use more only on cores reserved for the controller.
* **pinning** (``pin``, a CPU list such as ``"1"`` or ``"2-3"``): ``os.sched_setaffinity`` of the
  control thread (the caller) and of numba's worker threads; threads started later by the control
  thread (the watchdog supervisor) inherit it. Keeps caches warm and stops migrations; pair it
  with isolated cores (``isolcpus=``/cpusets) on a car.
* **real-time scheduling** (``rt_priority`` 1..98): ``SCHED_FIFO`` for the control thread and the
  numba workers (the watchdog supervisor gets one level more, so a spinning controller cannot
  starve the thread that stops the car). Needs CAP_SYS_NICE or an ``rtprio`` limit
  (``ulimit -r``, /etc/security/limits.conf); where the OS refuses, the report says so and the
  run goes on at normal priority. ``lock_memory`` calls ``mlockall`` (no page faults in the loop).

Linux only (``/proc``, ``sched_*``); elsewhere every lever reports "not supported".
"""
from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import asdict, dataclass, field

MCL_CURRENT, MCL_FUTURE = 1, 2


@dataclass
class CpuReport:
    """What was asked and what the OS granted (``notes``: one line per refusal or fallback)."""

    threads: int | None = None
    pin: list[int] | None = None
    pinned_tids: list[int] = field(default_factory=list)
    rt_priority: int | None = None
    rt_granted: bool | None = None
    lock_memory: bool = False
    memory_locked: bool | None = None
    numba_tids: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def parse_cpu_list(text: str, what: str = "--pin") -> list[int]:
    """``"0,2-3"`` -> [0, 2, 3]; ValueError naming ``what`` and the CPUs this process may use."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count()
                                                                                                     or 1))
    cpus: set[int] = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                cpus.update(range(lo, hi + 1))
            else:
                cpus.add(int(part))
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected a CPU list such as 1 or 0,2-3 (this process may use CPUs "
                         f"{_fmt_cpus(available)})") from None
    bad = sorted(cpus - set(available))
    if not cpus or bad:
        raise ValueError(f"{what} {text!r}: CPU {bad[0] if bad else '?'} is not available; this process may use "
                         f"CPUs {_fmt_cpus(available)}")
    return sorted(cpus)


def _fmt_cpus(cpus) -> str:
    return ",".join(str(c) for c in cpus)


def _gettid_kernel():
    """A numba-compiled parallel kernel writing each worker's kernel thread id (cached per process)."""
    global _TID_KERNEL
    if _TID_KERNEL is None:
        from numba import njit, prange

        libc = ctypes.CDLL(None)
        gettid = libc.gettid
        gettid.restype = ctypes.c_int
        gettid.argtypes = ()

        @njit(parallel=True)
        def tids(out):
            for i in prange(out.shape[0]):
                out[i] = gettid()

        _TID_KERNEL = tids
    return _TID_KERNEL


_TID_KERNEL = None


def numba_worker_tids() -> list[int]:
    """Kernel thread ids of numba's parallel workers (all ``NUMBA_NUM_THREADS`` of them, the calling
    thread included when it takes part), found by running a parallel kernel that asks each one."""
    import numba
    import numpy as np

    n_now = numba.get_num_threads()
    n_all = numba.config.NUMBA_NUM_THREADS
    try:
        numba.set_num_threads(n_all)
        out = np.zeros(max(64, 16 * n_all), dtype=np.int64)
        _gettid_kernel()(out)
    finally:
        numba.set_num_threads(n_now)
    return sorted(set(int(v) for v in out if v > 0))


def set_numba_threads(n: int) -> int:
    """``numba.set_num_threads(n)`` for the calling thread; ValueError naming the limit."""
    import numba

    top = numba.config.NUMBA_NUM_THREADS
    if not 1 <= int(n) <= top:
        raise ValueError(f"--threads {n}: expected 1..{top} (numba was started with NUMBA_NUM_THREADS={top})")
    numba.set_num_threads(int(n))
    return int(n)


def set_fifo(tid: int, priority: int) -> None:
    """SCHED_FIFO at ``priority`` for kernel thread ``tid`` (0 = the caller); raises OSError when refused."""
    os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(int(priority)))


def _rt_refusal(exc: OSError, priority: int) -> str:
    return (f"real-time scheduling (SCHED_FIFO {priority}) not permitted: {exc.strerror or exc}; needs CAP_SYS_NICE "
            f"or an rtprio limit >= {priority} (ulimit -r, /etc/security/limits.conf); running at normal priority")


def configure(threads: int | None = 1, pin: list[int] | None = None, rt_priority: int | None = None,
              lock_memory: bool = False, numba_workers: bool = True) -> CpuReport:
    """Apply the CPU settings to the calling (control) thread and numba's workers; see the module docstring.

    Call it from the control thread after the controller is built (its warm-up starts numba's thread
    pool) and before the loop starts. ``threads`` None leaves numba's thread count alone;
    ``numba_workers`` False configures the calling thread only (a process without parallel
    kernels, e.g. the simulated vehicle). Raises ValueError for invalid arguments only; what the OS
    refuses is reported in ``report.notes``.
    """
    rep = CpuReport(threads=threads, pin=pin, rt_priority=rt_priority, lock_memory=lock_memory)
    if rt_priority is not None and not 1 <= int(rt_priority) <= 98:
        raise ValueError(f"--rt-priority {rt_priority}: expected 1..98 (99 is left to the kernel's own threads)")
    if threads is not None:
        set_numba_threads(threads)
    linux = hasattr(os, "sched_setaffinity") and os.path.isdir("/proc/self/task")
    if (pin is not None or rt_priority is not None) and not linux:
        rep.notes.append("pinning and real-time scheduling need Linux; not applied")
        return rep
    tids: list[int] = []
    if numba_workers and (pin is not None or rt_priority is not None):
        try:
            tids = numba_worker_tids()
        except Exception as exc:  # noqa: BLE001 - no ctypes gettid, odd threading layer: say so, go on
            rep.notes.append(f"numba worker threads not found ({type(exc).__name__}: {exc}); "
                             f"only the control thread is configured")
        rep.numba_tids = tids
    me = threading.get_native_id()
    targets = [me] + [t for t in tids if t != me]
    if pin is not None:
        for tid in targets:
            try:
                os.sched_setaffinity(tid, pin)
                rep.pinned_tids.append(tid)
            except OSError as exc:
                rep.notes.append(f"pinning thread {tid} to CPUs {_fmt_cpus(pin)} failed: {exc}")
    if rt_priority is not None:
        try:
            for tid in targets:
                set_fifo(tid, rt_priority)
            rep.rt_granted = True
        except OSError as exc:
            rep.rt_granted = False
            rep.notes.append(_rt_refusal(exc, rt_priority))
            for tid in targets:  # all or nothing
                try:
                    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                except OSError:
                    pass
    if lock_memory:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            rep.memory_locked = True
        except (OSError, AttributeError) as exc:
            rep.memory_locked = False
            rep.notes.append(f"mlockall not permitted: {exc}; needs CAP_IPC_LOCK or a memlock limit (ulimit -l)")
    return rep


def boost_thread(native_id: int, priority: int) -> str:
    """SCHED_FIFO ``priority`` for a thread started later (the watchdog supervisor); '' or why not."""
    try:
        set_fifo(native_id, priority)
        return ""
    except (OSError, AttributeError) as exc:
        return f"supervisor thread: SCHED_FIFO {priority} refused: {exc}"


def restore_normal_scheduling() -> None:
    """Back to SCHED_OTHER for the calling thread (after the loop; harmless when never changed)."""
    if hasattr(os, "sched_setscheduler"):
        try:
            if os.sched_getscheduler(0) != os.SCHED_OTHER:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass
