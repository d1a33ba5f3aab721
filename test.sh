#!/usr/bin/env bash
# Every test: installs the Debian packages the tests need when one is missing and this runs as root (names
# them and stops otherwise), installs the Node packages of src/node (npm ci) and runs their tests, then runs `dotnet test -c Release`
# with the arguments given, e.g. a --filter.
set -euo pipefail
cd "$(dirname "$0")"

# Each package with a program it installs; either one found counts.
missing=()
for entry in redis-server:redis-server redis-sentinel:redis-sentinel chromium:chromium postgresql:initdb mariadb-server:mariadbd haproxy:haproxy; do
    package=${entry%%:*} program=${entry#*:}
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' && ! command -v "$program" >/dev/null; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} > 0)); then
    if ((EUID != 0)); then
        echo "The tests need these Debian packages: ${missing[*]}. Install them with:" >&2
        echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The Express library's and demo's packages, exactly as locked (the cross-language tests run the Node demo), and
# their own tests.
(cd src/node && npm ci --no-audit --no-fund --loglevel=error && npm test --silent)

exec dotnet test -c Release "$@"
