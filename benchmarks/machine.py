"""What the figures were measured on: the CPU's model name and the instruction sets that decide its peaks."""

from __future__ import annotations

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
