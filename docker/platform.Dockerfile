# The platform: the trainarena CLI, API, scheduler and job worker (docs/deploy.md). One image serves
# every service of docker/compose.yaml; the Ray services run it too, so each node sandboxes its runs
# with the same code and the same pinned training environment.
# Build from the repository root:
#   docker build -f docker/platform.Dockerfile -t trainarena:latest .
# GPU hosts: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (the CUDA build that
# matches the host's driver).
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

# bubblewrap: the sandbox of competitor runs; git: registration clones competitors' repositories.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap git ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# The checkout layout is kept (the house scripts under examples/, requirements.lock beside src/ for
# the signed records' environment digest), so the package is installed editable from it, as
# scripts/setup does.
WORKDIR /opt/trainarena
COPY pyproject.toml requirements.lock README.md ./
COPY src ./src
COPY examples ./examples
RUN python -m venv .venv \
 && .venv/bin/pip install --disable-pip-version-check --index-url "$TORCH_INDEX_URL" torch==2.13.0 \
 && .venv/bin/pip install --disable-pip-version-check -c requirements.lock -e '.[postgres]'

# All state lives under the data directory (a volume); the database is PostgreSQL by settings.
ENV PATH=/opt/trainarena/.venv/bin:$PATH TRAINARENA_DATA_DIR=/var/lib/trainarena
VOLUME /var/lib/trainarena
EXPOSE 8000
ENTRYPOINT ["trainarena"]
CMD ["serve", "--json"]
