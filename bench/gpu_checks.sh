#!/usr/bin/env bash
# One device session's GPU checks (the `device` tool's run; results land in $OUT):
#   1. python -m snncore bench --quick --device cuda --json  (ratios + fraction of roofline)
#   2. a timed spiking ResNet-19 run on CIFAR-10-format files (bf16 autocast, T=4, batch 64).
# The device machine cannot reach the network, so the CIFAR-10 files hold random images in the real
# pickle format: the run measures speed, not accuracy. Carry .whl (spikingjelly and its two
# pure-Python needs missing from the image): see bench/RESULTS.md for the exact call.
set -u
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, spikingjelly; print('torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
t0=$(date +%s)
timeout "${BENCH_S:-110}" python3 -m snncore bench --quick --device cuda --json > "$OUT/bench.json" 2> "$OUT/bench.err"
echo "bench rc=$? in $(( $(date +%s) - t0 )) s"
python3 - <<'PY'
import numpy as np
from pathlib import Path
from snncore.data.images import write_cifar_batch
base = Path("/tmp/cifar/cifar-10-batches-py"); base.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    write_cifar_batch(base / name, rng.integers(0, 256, (10000, 3072), dtype=np.uint8), rng.integers(0, 10, 10000))
print("wrote CIFAR-10-format files (random images)")
PY
t0=$(date +%s)
timeout "${TRAIN_S:-150}" python3 -m snncore train --dataset cifar10 --data-dir /tmp/cifar --model resnet19 --amp bf16 \
  --timesteps 4 --batch-size 64 --epochs "${EPOCHS:-2}" --n-train "${NTRAIN:-12800}" --encoding direct --device cuda \
  --runs-dir /tmp/runs --json > "$OUT/train.json" 2> "$OUT/train.err"
echo "train rc=$? in $(( $(date +%s) - t0 )) s"
python3 -m snncore runs --runs-dir /tmp/runs --json > "$OUT/runs.json" 2>/dev/null
python3 - <<'PY' > "$OUT/epochs.txt"
import sqlite3
db = sqlite3.connect("/tmp/runs/runs.sqlite")
for row in db.execute("SELECT epoch, step, created FROM checkpoints ORDER BY epoch"):
    print(*row)
PY
cat "$OUT/epochs.txt"; tail -c 600 "$OUT/train.json"; tail -c 800 "$OUT/bench.err"
