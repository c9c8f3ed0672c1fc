#!/usr/bin/env bash
# Install redis-server (and redis-tools: redis-cli, redis-benchmark) from Debian when
# missing: the tests of crates/luapool-redis and tests/redis.rs start their own
# redis-server on a free loopback port, and bench/redis.sh uses redis-benchmark.
# Idempotent; the Debian service is kept from starting (policy-rc.d 101), we only ever
# run our own instances.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1; then
    echo "install-redis.sh: redis-server present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-redis.sh: redis-server is missing and we are not root (install the redis-server package)" >&2
        exit 1
    fi
fi
echo "install-redis.sh: installing redis-server"
export DEBIAN_FRONTEND=noninteractive
prc=/usr/sbin/policy-rc.d
created_prc=0
if [ ! -e "$prc" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$prc" >/dev/null
    $SUDO chmod +x "$prc"
    created_prc=1
fi
cleanup() { if [ "$created_prc" = 1 ]; then $SUDO rm -f "$prc"; fi; }
trap cleanup EXIT
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends redis-server redis-tools
echo "install-redis.sh: done"
