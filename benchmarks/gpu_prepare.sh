#!/usr/bin/env bash
# Run HERE (where the package registries are reachable), before the device call of gpu_check.sh:
# puts into .whl/ (git-ignored, as .deb/) the wheels of the project's pins that the GPU image lacks or holds
# at another version, for Python 3.12 on x86-64, plus Liger's kernels (optional, pure Python), and
# into .deb/ the bubblewrap package. The GPU image keeps its own CUDA builds of torch and triton.
# The device call carries at most 64 MiB (the working tree plus the carried .whl and .deb): the script
# fails, saying so, when they come to more than MAX_CARRY_MIB.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_CARRY_MIB=${MAX_CARRY_MIB:-60}  # the device tool's limit is 64 MiB; a margin for files added after this ran
rm -rf .whl .deb && mkdir -p .whl .deb
# On the image already, CUDA-built or large: never replaced by a carried wheel.
keep='^(torch|triton|numpy|nvidia-.*|pillow|jinja2|markupsafe|typer|rich|click|pygments|markdown-it-py|mdurl|safetensors|tokenizers|hf-xet|filelock|fsspec|packaging|pyyaml|regex|requests|urllib3|certifi|idna|charset-normalizer|tqdm|typing-extensions|sympy|mpmath|networkx|psutil|pyarrow|pandas|xxhash|aiohttp|protobuf|tzdata|python-dateutil|zipp|importlib-metadata|accelerate)$'
# The test and lint tools of the lock file and what only they need: the check runs no test suite.
# (Not httpx2, httpcore2, truststore, opentelemetry-api: huggingface_hub and fastapi import them.)
tests='^(pytest.*|hypothesis.*|schemathesis|playwright|ruff|psycopg.*|harfile|graphql-core|jsonschema-rs|pyrate-limiter|iniconfig|pluggy|werkzeug|sortedcontainers|greenlet|execnet)$'
# Neither benchmarks.gpu_throughput nor `trainarena run` of an instruct task imports these (measured:
# every module both imported, subprocesses included, on the CPU): ray (79 MB; only
# trainarena/cluster/ray_executor.py), trl (no house script uses it), diffusers (image tasks),
# datasets and its own needs (a task read from a Hub dataset or a save_to_disk folder), and what only
# ray and the test tools need (msgpack, jsonschema and its needs).
unneeded='^(ray|trl|diffusers|datasets|multiprocess|dill|msgpack|jsonschema|jsonschema-specifications|referencing|rpds-py|attrs)$'
mapfile -t pins < <(grep -E '^[A-Za-z0-9_.-]+==' requirements.lock \
  | awk -F== -v keep="$keep" -v tests="$tests" -v unneeded="$unneeded" \
      '{name = tolower($1); gsub(/_/, "-", name)} name !~ keep && name !~ tests && name !~ unneeded')
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_34_x86_64)
for pin in "${pins[@]}" liger-kernel==0.8.5; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d .whl "$pin" \
    || echo "skipped $pin (no wheel for the GPU image's Python)"
done
(cd .deb && apt-get download bubblewrap)
du -sh .whl .deb
# What the device call sends: tracked and untracked-not-ignored files, shared/ when there is one, and
# the carried folders.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
shared_bytes=0
if [ -d shared ]; then shared_bytes=$(du -sb shared | cut -f1); fi
carried_bytes=$(du -cb .whl .deb | tail -1 | cut -f1)
total=$((tree_bytes + shared_bytes + carried_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "device call: tree $(mib "$tree_bytes") + shared $(mib "$shared_bytes") + .whl/.deb $(mib "$carried_bytes") = $(mib "$total")"
if [ "$total" -gt $((MAX_CARRY_MIB * 1048576)) ]; then
  echo "error: the device call would carry $(mib "$total"), over ${MAX_CARRY_MIB} MiB (its limit is 64 MiB)." >&2
  echo "Largest wheels:" >&2
  ls -S -s --block-size=K .whl | sed -n 2,6p >&2
  echo "Exclude what the check does not import (the 'unneeded' list in benchmarks/gpu_prepare.sh)." >&2
  exit 1
fi
echo "ready: launch benchmarks/gpu_check.sh in one device call, carrying .whl and .deb"
