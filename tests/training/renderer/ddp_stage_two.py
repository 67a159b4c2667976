"""Worker for the 2-process stage-2 test: ``torchrun --nproc_per_node 2 tests/training/renderer/ddp_stage_two.py DATA OUT STEPS BATCH``.

Every rank trains the tiny trainer of ``tests.training.renderer.loop_tiny``; each rank writes
its trained generator-side and discriminator parameters to ``OUT/rank<R>.safetensors``,
rank 0 also its step records to ``OUT/history.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tavce.hub import save_safetensors
from tavce.training.renderer import train_renderer
from tests.training.renderer.loop_tiny import loop_config, loop_trainer, run_config


def main(data: str, output: str, steps: int, batch_size: int) -> None:
    config = loop_config(batch_size=batch_size)
    result = train_renderer(config, data, output, run=run_config(max_steps=steps), trainer=loop_trainer(config))
    rank = int(os.environ.get("RANK", "0"))
    state = {name: value.detach().contiguous() for name, value in result.trainer.modules.state_dict().items()}
    save_safetensors(state, Path(output) / f"rank{rank}.safetensors")
    if rank == 0:
        (Path(output) / "history.json").write_text(json.dumps([record.losses for record in result.history]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
