#!/usr/bin/env bash
# The renderer's GPU figures in one run, for a session lent a CUDA machine (issue 15).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR [BENCHMARK_OPTIONS...]]   # OUT_DIR defaults to $OUT, else ./gpu_check
#
# Options after OUT_DIR are appended to both benchmark runs and win over the ones here
# (e.g. `--frames 16`, or `--device cpu --tiny --frames 2 --loop-frames 1` to try the script).
#
# Needs only PyTorch with CUDA, numpy, pillow, safetensors and huggingface-hub (the renderer
# benchmark imports no audio, video or face-detection package), so it runs from a plain
# checkout with PYTHONPATH set, without installing tavce. Writes into OUT_DIR:
#   gpu.txt               nvidia-smi's name, memory and driver
#   renderer_eager.jsonl  float32 / float16 / bfloat16 at batch 1, 8, 32 (benchmarks/renderer.py --json)
#   renderer_auto.jsonl   the same dtypes at the batch chosen from free memory, through torch.compile
#   log.txt               everything both runs printed (warnings, compile fallbacks)
# Sized for a 10-minute command: the eager run takes about a minute on an H100-class GPU,
# the compiled one a few minutes (compilation).
set -uo pipefail
out="${1:-${OUT:-gpu_check}}"
shift || true
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" 2>&1
common=(--json --device cuda --dtypes float32,float16,bfloat16 --frames 64 --loop-frames 8)
python3 benchmarks/renderer.py "${common[@]}" --batches 1,8,32 "$@" >"$out/renderer_eager.jsonl" 2>>"$out/log.txt"
eager=$?
python3 benchmarks/renderer.py "${common[@]}" --batches auto --compile "$@" >"$out/renderer_auto.jsonl" 2>>"$out/log.txt"
compiled=$?
cat "$out/gpu.txt" "$out/renderer_eager.jsonl" "$out/renderer_auto.jsonl"
exit $((eager || compiled))
