# The mlgov image for Prefect's Docker and Kubernetes workers (deployments/work_pools/*.json).
#
#   docker build -t registry.example.com/mlgov:2026.11 .                       # CPU torch
#   docker build -t registry.example.com/mlgov:2026.11-cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .     # CUDA torch
#
# The worker starts each flow run with `prefect flow-run execute` as the container's command;
# there is no ENTRYPOINT, so that command runs as given. Credentials are not baked in: the work
# pool's template reads them from Prefect Secret blocks when a flow run starts.

# A full version tag: rebuilds get the same Python. Pin the digest too (`python:3.11.14-slim-
# bookworm@sha256:...`) where the build must be reproducible byte for byte.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm
FROM ${BASE_IMAGE}

# Where torch and torchvision come from: CPU wheels unless a CUDA index is given.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Extras of the project: PostgreSQL for a shared registry.
ARG MLGOV_EXTRAS=postgres
# More packages, e.g. "s3fs" or "gcsfs" for an object store as MLGOV_STORE_URL.
ARG EXTRA_PIP_PACKAGES=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    GX_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    PATH=/opt/venv/bin:$PATH

# CUDA base images have no Python: Ubuntu's python3 (3.12) is installed there. A virtual
# environment keeps pip away from the system's packages on either base.
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv \
    && pip install --upgrade pip

# torch first, from its own index and in its own layer: the largest download changes least.
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.14.1 torchvision==0.29.1

WORKDIR /opt/mlgov
COPY . /opt/mlgov
# The pins in pyproject.toml match the torch above, so pip keeps it.
RUN pip install "/opt/mlgov[${MLGOV_EXTRAS}]" ${EXTRA_PIP_PACKAGES}

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin mlgov \
    && mkdir -p /home/mlgov/.mlgov \
    && chown mlgov /home/mlgov/.mlgov
# /opt/mlgov stays root's and read-only to the flows; their work files go to the user's home.
ENV MLGOV_HOME=/home/mlgov/.mlgov
USER mlgov

CMD ["prefect", "flow-run", "execute"]
