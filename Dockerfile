# syntax=docker/dockerfile:1
# seqhub: one image for every service; each Deployment picks its service with its command:
#   docker run seqhub python -m services.beacon      (one service)
#   docker run seqhub                                (embedded mode: every service in one process)
# Build:  docker build -t seqhub:0.1.0 .
# Base: python:3.11-slim-bookworm in both stages (keep them equal); pin it by digest
# (python:3.11-slim-bookworm@sha256:...) when the release pipeline can resolve one.

# ---- build: resolve and install the package and its pinned dependencies into a venv ----
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python -m venv /opt/seqhub
# Every runtime dependency (aiohttp, pymongo, pysam, numpy, h5py, isal, ...) ships a cp311 manylinux
# wheel, so no compiler is needed; --only-binary makes a missing wheel fail the build loudly instead of
# silently pulling in a toolchain.
COPY pyproject.toml ./
COPY libs ./libs
COPY services ./services
RUN /opt/seqhub/bin/pip install --only-binary=:all: --no-binary=seqhub --no-compile . \
 && /opt/seqhub/bin/python -m compileall -q /opt/seqhub/lib \
 && /opt/seqhub/bin/pip uninstall -y pip

# ---- runtime: slim base, no build tools, no tests, no source tree, non-root ----
FROM python:3.11-slim-bookworm AS runtime
ARG SEQHUB_VERSION=0.1.0
LABEL org.opencontainers.image.title="seqhub" \
      org.opencontainers.image.description="seqhub genomic data platform services (auth, ingest, repository, beacon, rnaget)" \
      org.opencontainers.image.version="${SEQHUB_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 seqhub \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin seqhub \
 && mkdir -p /var/lib/seqhub/files /var/lib/seqhub/data \
 && chown -R 10001:10001 /var/lib/seqhub
COPY --from=build /opt/seqhub /opt/seqhub
COPY deploy/docker/healthcheck.py /opt/seqhub/healthcheck.py
ENV PATH=/opt/seqhub/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_DISABLE_CREATED_SERIES=True \
    SEQHUB_HTTP_HOST=0.0.0.0 \
    SEQHUB_HTTP_PORT=8080 \
    SEQHUB_FILES_ROOT=/var/lib/seqhub/files \
    SEQHUB_DATA_ROOT=/var/lib/seqhub/data \
    NUMBA_CACHE_DIR=/tmp/numba
# No source checkout in the image: the package runs from site-packages, so the working directory is
# only where relative paths would land (nothing should write there: the root FS is read-only in k8s).
WORKDIR /var/lib/seqhub
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/opt/seqhub/healthcheck.py"]
CMD ["python", "-m", "services"]
