"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import threading
import time

import psutil


class PeakMemory:
    """Samples the summed RSS of this process and its children every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            procs = [me, *me.children(recursive=True)]
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def timed(func, repeat: int) -> tuple[float, int]:
    runs, peak = [], 0
    for _ in range(repeat):
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            func()
            runs.append(time.perf_counter() - t0)
        peak = max(peak, mem.peak)
    return statistics.median(runs), peak
