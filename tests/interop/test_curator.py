"""Apache Curator (Debian's libcurator-{client,framework,recipes}-java 5.4.0) against the target.

CuratorInterop.java is compiled with javac against the Debian jars into
tests/interop/build/curator/ (git-ignored) and run once per check; each run must exit 0
and print ``OK <check>``.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import FAST_JVM_FLAGS, INTEROP_DIR, JAVA, JAVAC, java_classpath

SRC = INTEROP_DIR / "curator" / "CuratorInterop.java"
BUILD = INTEROP_DIR / "build" / "curator"

# The curator and zookeeper jars list their own dependencies (guava, slf4j-api,
# zookeeper-jute, netty, ...) in their manifests' Class-Path; slf4j-simple makes the
# client logs visible (warnings only) when a check fails.
JARS = ["curator-client.jar", "curator-framework.jar", "curator-recipes.jar", "zookeeper.jar",
        "zookeeper-jute.jar", "guava.jar", "slf4j-api.jar", "slf4j-simple.jar"]

CHECKS = ["crud", "transaction", "mutex", "atomiclong", "leaderlatch", "pathchildrencache", "semaphore",
          "nodecache"]


@pytest.fixture(scope="module")
def curator_classpath():
    cp = java_classpath(*JARS)
    cls = BUILD / "CuratorInterop.class"
    if not cls.exists() or cls.stat().st_mtime < SRC.stat().st_mtime:
        BUILD.mkdir(parents=True, exist_ok=True)
        p = subprocess.run([JAVAC, "-Xlint:-options", "-nowarn", "-d", str(BUILD), "-cp", cp, str(SRC)],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"javac failed:\n{p.stdout}\n{p.stderr}"
    return os.pathsep.join([str(BUILD), cp])


@pytest.mark.parametrize("check", CHECKS)
def test_curator(zk_server, curator_classpath, check, tmp_path):
    cmd = [JAVA, *FAST_JVM_FLAGS, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
           "-Dinterop.timeoutSeconds=150", "-cp", curator_classpath, "CuratorInterop", zk_server.address, check]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = p.stdout
    (tmp_path / "stdout").write_text(out)
    (tmp_path / "stderr").write_text(p.stderr)
    assert p.returncode == 0, f"CuratorInterop {check} exited {p.returncode}\n--- stdout\n{out}\n" \
                              f"--- stderr (tail)\n{p.stderr[-8000:]}"
    assert any(line.startswith(f"OK {check} ") for line in out.splitlines()), out
    assert "FAIL" not in out, out
