#!/usr/bin/env bash
# Run HERE (where the package registries are reachable), before the device call of gpu_check.sh:
# puts into .whl/ (git-ignored) the wheels of the project's pins that the GPU image lacks or holds
# at another version, for Python 3.12 on x86-64, plus Liger's kernels (optional, pure Python), and
# into .deb/ the bubblewrap package. The GPU image keeps its own CUDA builds of torch and triton.
set -euo pipefail
cd "$(dirname "$0")/.."
exclude="$(git rev-parse --git-path info/exclude)"
for folder in /.whl/ /.deb/; do grep -qxF "$folder" "$exclude" || echo "$folder" >> "$exclude"; done
rm -rf .whl .deb && mkdir -p .whl .deb
# On the image already, CUDA-built or large: never replaced by a carried wheel.
keep='^(torch|triton|numpy|nvidia-.*|pillow|jinja2|markupsafe|typer|rich|click|pygments|markdown-it-py|mdurl|safetensors|tokenizers|huggingface-hub|hf-xet|filelock|fsspec|packaging|pyyaml|regex|requests|urllib3|certifi|idna|charset-normalizer|tqdm|typing-extensions|sympy|mpmath|networkx|psutil|pyarrow|pandas|xxhash|aiohttp|.*-stubs)$'
mapfile -t pins < <(grep -E '^[A-Za-z0-9_.-]+==' requirements.lock | awk -F== -v keep="$keep" 'tolower($1) !~ keep')
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_34_x86_64)
for pin in "${pins[@]}" liger-kernel==0.8.5; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d .whl "$pin" \
    || echo "skipped $pin (no wheel for the GPU image's Python)"
done
(cd .deb && apt-get download bubblewrap)
du -sh .whl .deb
echo "ready: launch benchmarks/gpu_check.sh in one device call, carrying .whl and .deb"
