#!/usr/bin/env bash
# Install Debian packages the benchmarks and tests need, when missing.
#   bench/install.sh               what bench/http.sh needs: nginx + the lua module (the
#                                  OpenResty-style comparison) + lua-cjson (its /json),
#                                  wrk (load generator), curl (readiness polls), python3
#                                  (response checks)
#   bench/install.sh PACKAGE...    those packages (bench/install-redis.sh uses this)
# Idempotent: packages that are already installed are skipped. Services the packages
# bring are kept from starting (policy-rc.d 101): we only ever run our own instances.
set -euo pipefail

if [ $# -gt 0 ]; then
    pkgs=("$@")
else
    pkgs=(nginx libnginx-mod-http-lua lua-cjson wrk curl python3)
fi
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "bench/install.sh: all present (${pkgs[*]})"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "bench/install.sh: ${missing[*]} missing and we are not root (install the packages)" >&2
        exit 1
    fi
fi
echo "bench/install.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# policy-rc.d 101 keeps the packages' system-wide services (nginx on port 80, redis)
# from starting during the install.
prc=/usr/sbin/policy-rc.d
created_prc=0
if [ ! -e "$prc" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$prc" >/dev/null
    $SUDO chmod +x "$prc"
    created_prc=1
fi
cleanup() { if [ "$created_prc" = 1 ]; then $SUDO rm -f "$prc"; fi; }
trap cleanup EXIT
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "bench/install.sh: done"
