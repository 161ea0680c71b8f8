#!/usr/bin/env bash
# Installs what the tests need, when it is missing: Apache ZooKeeper 3.8
# (server and zkCli.sh), the C client (cli_mt), Curator and a JDK from Debian, and kazoo and
# pytest from PyPI. Idempotent: nothing is downloaded when everything is already there.
# Needs root (apt-get); `make test` and `.ci/run` call it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# --- Debian packages: Apache ZooKeeper 3.8 (server, zkCli.sh), the C client (cli_mt),
#     Curator, and a JDK (javac, for the Curator interop program).
# man-db/groff-base render the man pages, systemd verifies the unit, rpm builds the RPM,
# strace checks the unit's system-call filter, tmux drives the interactive CLI tests.
pkgs=(zookeeper zookeeper-bin libcurator-client-java libcurator-framework-java libcurator-recipes-java
      man-db groff-base systemd rpm strace tmux)
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "+ apt-get install ${missing[*]}"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- Python packages: pytest and kazoo.
if ! "$PY" -c 'import kazoo, pytest' >/dev/null 2>&1; then
    if ! "$PY" -m pip --version >/dev/null 2>&1; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends python3-pip
    fi
    echo "+ pip install kazoo pytest"
    "$PY" -m pip install -q --disable-pip-version-check kazoo pytest \
        || "$PY" -m pip install -q --disable-pip-version-check --break-system-packages kazoo pytest
fi

