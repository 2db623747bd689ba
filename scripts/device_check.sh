#!/usr/bin/env bash
# CUDA check of the backends on a GPU machine (no network there): install the project without
# dependencies into the machine's Python, train a tiny trio on CPU, bench torch on cuda.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
python3 - <<'PY'
import sys; sys.path.insert(0, "tests")
from conftest import make_npz
make_npz("/tmp/tiny.npz", "1d", n_train=60, n_test=30)
PY
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, onnxruntime as ort; print('torch', torch.__version__, torch.cuda.is_available(), 'ort', ort.__version__, ort.get_available_providers())"
harness train --data /tmp/tiny.npz --epochs 3 --out /tmp/run --quiet | tail -3
harness bench /tmp/run --backends torch --device cuda --quick --suites accuracy,latency,paired \
  --batch-sizes 1,32 --no-history --out "$OUT/cuda_results.json" 2>&1 | tail -30
echo "exit: $?"
harness bench /tmp/run --backends onnxruntime --device cuda --quick --suites latency --no-history --out "$OUT/ort_cuda.json" 2>&1 | tail -3
