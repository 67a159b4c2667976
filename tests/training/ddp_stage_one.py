"""Worker for the 2-process test: ``torchrun --nproc_per_node 2 tests/training/ddp_stage_one.py DATA OUT STEPS BATCH``.

Every rank trains the BatchNorm-free tiny metric; rank 0 writes the final parameters
to ``OUT/parameters.safetensors`` and its loss sequence to ``OUT/losses.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from tavce.hub import save_safetensors
from tavce.training.tavc import train_tavc
from tests.training.tavc_tiny import tiny_config, tiny_metric


def main(data: str, output: str, steps: int, batch_size: int) -> None:
    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    result = train_tavc(
        data,
        output,
        tiny_config(max_steps=steps, batch_size=batch_size, adam_eps=1e-3),
        metric=tiny_metric(batch_norm=False),
    )
    if int(os.environ.get("RANK", "0")) == 0:
        save_safetensors(result.metric.state_dict(), Path(output) / "parameters.safetensors")
        (Path(output) / "losses.json").write_text(json.dumps([record.loss for record in result.history]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
