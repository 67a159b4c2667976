"""tavce._heap: the glibc heap controls are real calls where glibc is, and no-ops elsewhere."""

from __future__ import annotations

import platform
import subprocess
import sys

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_one_shared_heap_is_granted_by_glibc_and_refused_politely_elsewhere() -> None:
    # In a child: the setting is process-wide and would outlive the test here.
    script = (
        "import threading\n"
        "from tavce._heap import release_freed_memory, share_one_heap\n"
        "granted = share_one_heap()\n"
        "thread = threading.Thread(target=lambda: bytearray(1 << 20)); thread.start(); thread.join()\n"
        "release_freed_memory()\n"
        "print(granted)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(GLIBC)


def test_generate_asks_for_one_heap_before_anything_else(monkeypatch, tmp_path) -> None:
    import tavce._heap
    from tavce.cli import main

    calls = []
    monkeypatch.setattr(tavce._heap, "share_one_heap", lambda: calls.append("heap") or True)
    # A missing photo is refused before any model is built: the heap request has happened by then.
    status = main(["generate", str(tmp_path / "missing.png"), str(tmp_path / "missing.wav"), "-o", str(tmp_path / "o.mp4")])
    assert status != 0 and calls == ["heap"]
