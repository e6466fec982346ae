"""CPU settings: thread count, CPU lists, pinning and real-time scheduling (granted or reported)."""
import os
import threading

import numba
import pytest

from racing.runtime import rt

CPUS = sorted(os.sched_getaffinity(0))


def test_parse_cpu_list():
    assert rt.parse_cpu_list(str(CPUS[0])) == [CPUS[0]]
    if CPUS == list(range(CPUS[0], CPUS[-1] + 1)):
        assert rt.parse_cpu_list(f"{CPUS[0]}-{CPUS[-1]}") == CPUS
    assert rt.parse_cpu_list(",".join(map(str, CPUS))) == CPUS
    for bad, words in (("x", "expected a CPU list"), ("3-1", "expected a CPU list"), ("4096", "CPU 4096 is not "
                                                                                              "available")):
        with pytest.raises(ValueError, match=words) as exc:
            rt.parse_cpu_list(bad, "--pin")
        assert "--pin" in str(exc.value) and "may use CPUs" in str(exc.value)


def test_thread_count_is_set_and_checked():
    before = numba.get_num_threads()
    try:
        rep = rt.configure(threads=1)
        assert numba.get_num_threads() == 1 and rep.threads == 1 and rep.notes == []
        with pytest.raises(ValueError, match="--threads 0"):
            rt.configure(threads=0)
        with pytest.raises(ValueError, match="NUMBA_NUM_THREADS"):
            rt.configure(threads=numba.config.NUMBA_NUM_THREADS + 1)
    finally:
        numba.set_num_threads(before)


def _in_thread(fn):
    """Run ``fn`` in a fresh thread (its affinity and policy die with it) and return its result."""
    out = {}

    def run():
        try:
            out["v"] = fn()
        except BaseException as exc:  # noqa: BLE001
            out["e"] = exc

    th = threading.Thread(target=run)
    th.start()
    th.join(120)
    if "e" in out:
        raise out["e"]
    return out["v"]


def test_pinning_the_calling_thread_only():
    def go():
        rep = rt.configure(threads=None, pin=[CPUS[-1]], numba_workers=False)
        return rep, os.sched_getaffinity(0)

    rep, aff = _in_thread(go)
    assert aff == {CPUS[-1]} and rep.pinned_tids and rep.notes == []
    assert os.sched_getaffinity(0) == set(CPUS)  # this thread untouched


def test_numba_workers_are_found():
    tids = rt.numba_worker_tids()
    assert tids and all(os.path.isdir(f"/proc/self/task/{t}") for t in tids)


def test_real_time_is_granted_or_clearly_refused():
    def go():
        rep = rt.configure(threads=None, rt_priority=10, numba_workers=False)
        policy = os.sched_getscheduler(0)
        rt.restore_normal_scheduling()
        return rep, policy, os.sched_getscheduler(0)

    rep, policy, after = _in_thread(go)
    if rep.rt_granted:
        assert policy == os.SCHED_FIFO and rep.notes == []
    else:
        assert rep.rt_granted is False and policy == os.SCHED_OTHER
        assert any("not permitted" in n and "CAP_SYS_NICE" in n for n in rep.notes)
    assert after == os.SCHED_OTHER
    with pytest.raises(ValueError, match="1..98"):
        rt.configure(threads=None, rt_priority=99)


def test_refused_real_time_is_reported_and_undone(monkeypatch):
    def refuse(tid, priority):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(rt, "set_fifo", refuse)
    rep = _in_thread(lambda: rt.configure(threads=None, rt_priority=50, numba_workers=False))
    assert rep.rt_granted is False
    (note,) = rep.notes
    assert "SCHED_FIFO 50" in note and "not permitted" in note and "running at normal priority" in note
