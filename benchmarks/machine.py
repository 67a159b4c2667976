"""What the figures were measured on: the CPU's model name, the instruction sets that decide its peaks, and
how much of its cores the process actually gets."""

from __future__ import annotations

import time
from pathlib import Path

FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_description() -> dict:
    """``{"cpu": model name, "cpu_flags": [the FLAGS_OF_INTEREST present]}`` from /proc/cpuinfo (Linux; else empty)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"cpu": None, "cpu_flags": []}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"cpu": fields.get("model name"), "cpu_flags": [flag for flag in FLAGS_OF_INTEREST if flag in flags]}


def thread_scaling(threads: int, seconds: float = 0.5) -> float:
    """How many times faster a float32 1024² matrix product runs on ``threads`` threads than on one.

    Close to ``threads`` where the cores are the process's own; close to 1 on a host that
    oversubscribes them (a shared VM may show no steal time and still give two threads little
    more than one core: figures measured there are not comparable with others, and
    docs/performance.md, "Threads that render", has the setting that helps there). Each rate is
    the products completed in ``seconds`` after a warm-up; the thread count is restored.
    """
    import torch

    matrix = torch.randn(1024, 1024)

    def products_per_second(count: int) -> float:
        torch.set_num_threads(count)
        matrix @ matrix
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            matrix @ matrix
            done += 1
        return done / (time.perf_counter() - started)

    previous = torch.get_num_threads()
    try:
        return products_per_second(threads) / products_per_second(1)
    finally:
        torch.set_num_threads(previous)
