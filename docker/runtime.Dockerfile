# The docker backend's image: the pinned training environment, nothing else.
# A self-contained alternative to the backend's default image (built from the host, execution.docker_image).
# Build locally (the backend never pulls): docker build -f docker/runtime.Dockerfile -t trainarena-runtime:latest .
# and select it: TRAINARENA_SANDBOX__DOCKER_IMAGE=trainarena-runtime:latest
# Scripts run as nobody (65534) with the repository at /submission (ro), inputs at /inputs (ro) and
# /output (rw); the backend adds --network none, --read-only, --cap-drop ALL and a private /tmp.
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Must match trainarena.execution.docker.IMAGE_PYTHON.
RUN python -m venv /opt/trainarena/venv
# The same pins as pyproject.toml's runtime dependencies that a training script may use.
# For GPU hosts replace the torch index with the CUDA build matching the driver.
RUN /opt/trainarena/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && /opt/trainarena/venv/bin/pip install transformers==5.23.0 trl==1.16.0 peft==0.21.2 accelerate==1.15.0 \
    datasets==5.2.0 safetensors==0.8.0 tokenizers==0.23.3 numpy

RUN mkdir -p /submission /inputs /output && chown 65534:65534 /output
USER 65534:65534
WORKDIR /submission
