#!/usr/bin/env bash
# Run ON the GPU machine, in one device call (at most 8 minutes on one H100/H200), after
# benchmarks/gpu_prepare.sh ran here:
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl", ".deb"], timeout_s=540)
# (the benchmark is cut at 360 s, its results so far in throughput.log, and the sandboxed run at
# 90 s, so the whole stays under 8 minutes)
# 1. benchmarks.gpu_throughput --json: house loop vs transformers.Trainer, evaluator vs compiled forward.
# 2. `trainarena run` of the house script on the instruct example task through bubblewrap, so the
#    platform sizes the run's GPUs itself (CUDA_VISIBLE_DEVICES as assigned; the script logs its device).
# Results land in $OUT (the device tool brings them back): throughput.json, run.json, logs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
# The platform process imports the carried wheels; a sandboxed script sees the image's own packages
# (/tmp is private inside bubblewrap), which is all the house instruct script needs: torch, transformers.
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
if compgen -G ".deb/*.deb" > /dev/null; then
  for deb in .deb/*.deb; do dpkg -x "$deb" /tmp/debroot; done
  export PATH="/tmp/debroot/usr/bin:$PATH"
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=index,name,memory.total --format=csv | tee "$OUT/gpu.csv"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'

timeout 360 python3 -m benchmarks.gpu_throughput --json > "$OUT/throughput.json" 2> "$OUT/throughput.log"
echo "gpu_throughput exit $?"
python3 -c 'import json, sys; from benchmarks.gpu_throughput import print_report; print_report(json.load(open(sys.argv[1])))' \
  "$OUT/throughput.json" || grep -E "^\[" "$OUT/throughput.log" || tail -20 "$OUT/throughput.log"

export TRAINARENA_DATA_DIR=/tmp/trainarena-gpu-check
timeout 90 python3 -m trainarena.cli run --task examples/tasks/instruct-arithmetic.toml \
  --repo examples/competitors/baseline --no-reference --json > "$OUT/run.json" 2> "$OUT/run.log"
echo "trainarena run exit $?"
tail -c 3000 "$OUT/run.json"; tail -20 "$OUT/run.log"
# The house script's own log: the device it trained on and the CUDA_VISIBLE_DEVICES the platform gave it.
cat "$TRAINARENA_DATA_DIR"/runs/*/*/logs/stdout.log 2>/dev/null | tee "$OUT/house-stdout.log" | grep -E "training on|baseline:"
