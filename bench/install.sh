#!/usr/bin/env bash
# Install what bench/http.sh needs from Debian: nginx + the lua module (the
# OpenResty-style comparison) + lua-cjson (its /json), wrk (load generator), curl
# (readiness polls), python3 (response checks).
# Idempotent: packages that are already installed are skipped.
set -euo pipefail

pkgs=(nginx libnginx-mod-http-lua lua-cjson wrk curl python3)
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
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "bench/install.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# policy-rc.d 101 keeps the Debian nginx package from starting its system-wide
# service (port 80) during the install; we only ever run our own instance.
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
