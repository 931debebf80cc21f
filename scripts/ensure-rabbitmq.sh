#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers on 127.0.0.1:5672: reuse a running one, else start the local one detached.
set -euo pipefail
if rabbitmqctl await_startup --timeout 2 >/dev/null 2>&1; then exit 0; fi
if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then exit 0; fi  # a broker we do not manage
command -v rabbitmq-server >/dev/null || { echo "rabbitmq-server is not installed (make system-deps)" >&2; exit 1; }
echo "starting rabbitmq-server"
RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached
rabbitmqctl await_startup --timeout 90
