"""How many threads torch's CPU kernels use: a fixed count, or one chosen by measurement as the machine's load
changes (``train.threads = 0``, the default).

Why (benchmarks/contention.py, 2 cores, the quickstart's step): idle, 2 threads take 1.04 s and 1 thread 1.82 s;
beside a second quickstart run, 2 threads take 3.5 s (OpenMP threads wait on a core the other process holds) and
1 thread 1.9 s. No fixed count is right on both machines, so the count is measured: ``ThreadChooser`` times a few
steps at the neighbouring counts now and then, and again at once when steps slow down, and keeps the fastest.

A chosen count changes with the load, and torch's kernels may split a reduction differently with another count,
so the last bits of a run can depend on it: a fixed ``train.threads`` gives bit-identical resume (README).
"""

from __future__ import annotations

import os
import time

import torch


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


class ThreadChooser:
    """Chooses the thread count of the next step from the times of the steps before (hill climbing over
    ``cores``, ``cores / 2``, ... 1).

    At first and every ``every`` steps, it times ``trials`` steps at the current count and at each neighbour (half
    and double), and keeps the count of the fastest (minimum over its trials); between probes it also re-probes
    as soon as ``patience`` steps in a row took more than ``slower`` times the chosen count's time (a competitor
    arrived). Step times in seconds. The first recorded step (warm-up) is not used.

    ``next_threads()`` gives the count for the next step (and sets it in torch); ``record(seconds)`` reports the
    step's time. ``fixed`` > 0 disables the choice: that count always.
    """

    def __init__(self, fixed: int = 0, cores: int | None = None, every: int = 100, trials: int = 2,
                 slower: float = 1.5, patience: int = 3):  # fmt: skip
        self.fixed = int(fixed)
        cores = available_cores() if cores is None else int(cores)
        self.counts = sorted({max(1, cores >> k) for k in range(max(1, cores.bit_length()))}, reverse=True)
        self.every, self.trials, self.slower, self.patience = every, trials, slower, patience
        self.current = self.fixed or self.counts[0]
        self._queue: list[int] = []  # counts still to time in this probe, with their trials
        self._times: dict[int, float] = {}
        self._reference = None  # the chosen count's time
        self._since = 0  # steps since the last choice
        self._slow = 0  # consecutive slow steps
        self._warm = False
        if not self.fixed:
            self._start_probe()

    def _start_probe(self) -> None:
        i = self.counts.index(self.current)
        around = [self.counts[j] for j in (i, i + 1, i - 1) if 0 <= j < len(self.counts)]
        self._queue = [c for c in around for _ in range(self.trials)]
        self._times = {}

    def next_threads(self) -> int:
        """The thread count for the next step, set with ``torch.set_num_threads``."""
        count = self._queue[0] if self._queue and self._warm else self.current
        if torch.get_num_threads() != count:
            torch.set_num_threads(count)
        return count

    def record(self, seconds: float) -> None:
        """The time of the step just run with ``next_threads()``'s count."""
        if self.fixed:
            return
        if not self._warm:
            self._warm = True
            return
        if self._queue:
            count = self._queue.pop(0)
            self._times[count] = min(seconds, self._times.get(count, float("inf")))
            if not self._queue:
                self.current = min(self._times, key=self._times.get)
                self._reference, self._since, self._slow = self._times[self.current], 0, 0
            return
        self._since += 1
        self._slow = self._slow + 1 if seconds > self.slower * self._reference else 0
        if self._since >= self.every or self._slow >= self.patience:
            self._start_probe()


_evaluation = {"fixed": None, "chooser": None}


def set_threads(fixed: int | None) -> int | None:
    """The thread count of ``paced`` loops in this process: ``fixed`` > 0, 0 (chosen by measurement), or None
    (the default: ``paced`` leaves torch's count alone, as a library should). ``gmn-eval`` and training set it.
    Returns the previous setting."""
    previous = _evaluation["fixed"]
    _evaluation.update(fixed=None if fixed is None else int(fixed), chooser=None)
    return previous


def paced(iterable):
    """Yield from ``iterable`` with the thread count of each loop body chosen as ``ThreadChooser`` does, from the
    times of the bodies before (one chooser per process, shared by the evaluation loops; ``set_threads`` fixes it;
    unset, nothing is changed). Evaluations wrap their batch loops in it: ``for start in paced(range(0, n, b)):``."""
    if _evaluation["fixed"] is None:
        yield from iterable
        return
    if _evaluation["chooser"] is None:
        _evaluation["chooser"] = ThreadChooser(_evaluation["fixed"])
    chooser = _evaluation["chooser"]
    for item in iterable:
        chooser.next_threads()
        started = time.perf_counter()
        yield item
        chooser.record(time.perf_counter() - started)
