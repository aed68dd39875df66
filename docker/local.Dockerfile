# The local harness image for `docker compose up`: the embedded AWS emulator (moto, patched by
# local/moto_patches.py) with the controller Lambdas running in-process, and AWS Batch jobs run in
# the worker image (docker/Dockerfile) through the Docker API. The state machine comes from the CDK
# app, synthesized on the host (`gwas local blueprint --out .gwas-local/blueprint.json`) and mounted,
# so this image needs no node runtime. Build from the repository root:
#   docker build -f docker/local.Dockerfile -t gwas-local-harness:local .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller ./controller
COPY genome ./genome
COPY worker ./worker
COPY regenie_py ./regenie_py
COPY local ./local
COPY infra/__init__.py ./infra/__init__.py
# The pinned emulator (moto==5.2.5, the version local/moto_patches.py is written for) and the Docker SDK.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install ".[local,docker]" \
 && /opt/venv/bin/gwas local --help > /dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="gwas-local-harness" \
      org.opencontainers.image.description="Local AWS emulator + GWAS controller for docker compose"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GWAS_LOCAL_BATCH=docker
# Runs as root: it drives the Docker socket mounted by docker-compose.yml (jobs are sibling
# containers, which run as the worker image's non-root user), and gives the local FSx file system
# the owners FSx would (root-owned folders, the workers' uid where the metadata says so).
WORKDIR /srv/gwas-local
EXPOSE 4566
HEALTHCHECK --interval=5s --timeout=3s --retries=20 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4566/moto-api/data.json', timeout=2)"]
ENTRYPOINT ["gwas", "local", "up", "--host", "0.0.0.0", "--port", "4566"]
