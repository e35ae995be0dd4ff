#!/bin/bash
# The engine benchmark as run on the lent GPU machines (no network there): wheels the image
# lacks (carried in .whl/), then `python -m audiobook_tts.enginebench` with MODE's flags.
# Usage: OUT=folder bash docs/engine-bench/device-run.sh h200|h200-book|final|x2|eager|book|tests|profile|finishing
set -o pipefail
cd "$(dirname "$0")/../.." || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/inductor
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
nvidia-smi --query-gpu=name,memory.used,clocks.sm --format=csv
python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__)"
bench() { python3 -m audiobook_tts.enginebench --out "$OUT" "$@"; }
case "$1" in
    h200)
        bench --profile --frame-batches 1,8,64,128,256 ;;
    h200-book)
        bench --runs 1 --chapter-batches 64,128 --book 3 ;;
    final)
        bench --profile --frame-batches 1,128,256 --batch 256 --book 6 ;;
    x2)
        bench --runs 1 --devices 2 --batch 128 --book 6 "${@:2}" ;;
    eager)
        bench --no-compile --profile --frames 125 ;;
    book)
        bench --runs 3 --batch 256 --book 6 "${@:2}" ;;
    tests)
        python3 -m pytest -q -p no:cacheprovider --noconftest "${@:2}" ;;
    profile)
        python3 docs/engine-bench/profile-book.py "${@:2}" ;;
    finishing)
        python3 docs/engine-bench/profile-finishing.py "${@:2}" ;;
    *) echo "MODE: h200, h200-book, final, x2, eager, book, tests, profile or finishing"; exit 2 ;;
esac
