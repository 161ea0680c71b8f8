#!/usr/bin/env bash
# Runs the interoperability suite (tests/interop) from the repository root.
#
#   tests/interop/run.sh [pytest args...]
#
# Environment:
#   ZK_TARGET=apache   run every test against Apache ZooKeeper 3.8 instead of our server
#   ZK_BIN=path        server binary to test (default: target/release/zk, built here with
#                      `cargo build --release` unless ZK_SKIP_BUILD=1)
#   PYTHON=python3     interpreter that has pytest and kazoo
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PYTHONDONTWRITEBYTECODE=1

if [ "${ZK_TARGET:-zk}" != "apache" ] && [ -z "${ZK_BIN:-}" ] && [ "${ZK_SKIP_BUILD:-0}" != "1" ]; then
    cargo build --release --quiet --bin zk
fi
export ZK_BIN="${ZK_BIN:-$PWD/target/release/zk}"

exec "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider tests/interop "$@"
