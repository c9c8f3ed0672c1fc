#!/usr/bin/env bash
# Install redis-server (and redis-tools: redis-cli, redis-benchmark) from Debian when
# missing: the tests of crates/luapool-redis and tests/redis.rs start their own
# redis-server on a free loopback port, and bench/redis.sh uses redis-benchmark.
# Idempotent (bench/install.sh does the install).
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1; then
    echo "install-redis.sh: redis-server present"
    exit 0
fi

exec "$(dirname "$0")/install.sh" redis-server redis-tools
