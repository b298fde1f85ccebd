#!/usr/bin/env bash
# Run HERE (where the package registries are reachable), before the device call of gpu_check.sh:
# puts into .whl/ (git-ignored, as .deb/) the wheels of the project's pins that the GPU image lacks or holds
# at another version, for Python 3.12 on x86-64, plus Liger's kernels (optional, pure Python), and
# into .deb/ the bubblewrap package. The GPU image keeps its own CUDA builds of torch and triton.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl .deb && mkdir -p .whl .deb
# On the image already, CUDA-built or large: never replaced by a carried wheel.
keep='^(torch|triton|numpy|nvidia-.*|pillow|jinja2|markupsafe|typer|rich|click|pygments|markdown-it-py|mdurl|safetensors|tokenizers|hf-xet|filelock|fsspec|packaging|pyyaml|regex|requests|urllib3|certifi|idna|charset-normalizer|tqdm|typing-extensions|sympy|mpmath|networkx|psutil|pyarrow|pandas|xxhash|aiohttp|protobuf|tzdata|python-dateutil|zipp|importlib-metadata)$'
# The test and lint tools of the lock file: the check runs no test suite.
tests='^(pytest.*|hypothesis.*|schemathesis|playwright|ruff|psycopg.*|harfile|graphql-core|jsonschema-rs|pyrate-limiter|httpx2|httpcore2|iniconfig|pluggy|truststore|werkzeug|sortedcontainers|opentelemetry-api|greenlet)$'
mapfile -t pins < <(grep -E '^[A-Za-z0-9_.-]+==' requirements.lock \
  | awk -F== -v keep="$keep" -v tests="$tests" '{name = tolower($1); gsub(/_/, "-", name)} name !~ keep && name !~ tests')
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_34_x86_64)
for pin in "${pins[@]}" liger-kernel==0.8.5; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d .whl "$pin" \
    || echo "skipped $pin (no wheel for the GPU image's Python)"
done
(cd .deb && apt-get download bubblewrap)
du -sh .whl .deb
echo "ready: launch benchmarks/gpu_check.sh in one device call, carrying .whl and .deb"
