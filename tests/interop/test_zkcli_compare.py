"""Side-by-side comparison of Apache's own zkCli.sh (3.8.0, Debian) against two servers.

The reference is always Apache ZooKeeper 3.8 standalone; the other side is the target
(our ``zk`` server, or a second Apache server with ZK_TARGET=apache, which validates the
harness and its masking). Each side is driven by identical zkCli.sh invocations:

* interactive (piped) sessions: a long script on stdin, one zkCli process per session
  per server (JLine is not installed, so zkCli reads stdin line by line and prints no
  prompt);
* one-shot invocations ``zkCli.sh -server 127.0.0.1:PORT <cmd args>``, comparing the exit
  code as well.

How the comparison is made deterministic
----------------------------------------
* stdout and stderr are captured and compared **separately** (Java writes them through two
  independent streams, so their interleaving is not meaningful).
* Before every command the script inserts two read-only *marker* commands:
  ``stat /__NNN_word`` (prints ``Node does not exist: /__NNN_word`` on stderr) and
  ``delquota /__NNN_word`` (prints ``Quota does not exist for /__NNN_word`` on stdout, and
  succeeds, so zkCli's exit status is 0 again before each real command). After
  masking these become ``##### [NNN] <command>`` headers in both streams, so a diff shows
  which command produced which output. (They shift zkCli's command counter, which is
  accounted for when computing ``redo`` numbers.)
* zkCli prints watch events from the client's event thread. Every command that can fire a
  watch is grouped with a following ``sync /``: sync's callback is delivered by the same
  event thread, after the notification, so the WATCHER:: block is always printed before
  ``Sync is OK``. No markers are inserted inside such groups.
* ``-waitforconnection`` makes the initial SyncConnected event print before the first
  command. ``printwatches off`` is issued before ``close``/``connect``/``quit`` so the
  asynchronous ``state:Closed`` event is never printed.
* Apache returns getEphemerals results in Java HashSet order, so the script never asks for
  a list of more than one ephemeral.

Masking (see ``mask``): only these fields are masked, never whole lines:
non-zero cZxid/mZxid/pZxid values, ctime/mtime dates other than the epoch, session ids in
``ephemeralOwner`` (0x0 is kept), a
``zxid: N`` suffix of WatchedEvent lines (3.9 clients), the two servers' port numbers,
the ``ZooKeeper CLI version:`` value, and SLF4J/log4j noise lines from the client JVM.
One reordering: the id lines printed by ``whoami`` are sorted, because Apache lists them in
Java hash-set order (ServerCnxn.authInfo is a ConcurrentHashMap key set).
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import os
import re
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from conftest import FAST_JVM_FLAGS, ZK_TARGET, ZKCLI, start_apache, start_target

ZKCLI_TIMEOUT = 180         # one interactive session (Apache: ~5 s)
ZKCLI_ONESHOT_TIMEOUT = 60  # one one-shot command (Apache: ~0.5 s)


def digest(user_pw: str) -> str:
    user = user_pw.split(":", 1)[0]
    return user + ":" + base64.b64encode(hashlib.sha1(user_pw.encode()).digest()).decode()


ALICE = digest("alice:secret")   # alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=
BOB = digest("bob:bobpw")

# --------------------------------------------------------------------------------------
# Scripts. Items are either a command string, a list of lines run as one group (no markers
# inside; used for "trigger a watch, then sync"), or "@label: cmd" (referenced by
# "redo @label"). "{port}", "{alice}", "{bob}" are substituted.

SESSION_MAIN = [
    # --- the fresh tree
    "ls /",
    "ls /zookeeper",
    "get /zookeeper",
    "ls -R /",
    "stat /",
    "getAllChildrenNumber /",
    # --- create: plain, with data, quoting, sequential, ephemeral, container
    "@create_a: create /a hello",
    "create /a",
    "create /a/b",
    "create /a/b/c deep",
    "get /a",
    "get -s /a",
    "get /a/b",
    "get /a/b/c",
    'create /empty ""',
    "get -s /empty",
    'create /quoted "hello  world"',
    "get /quoted",
    "create /sq 'single quoted'",
    "get /sq",
    "create /utf8 héllo€",
    "get -s /utf8",
    "create /seq",
    "create -s /seq/n-",
    "create -s /seq/n- data",
    "create -s /seq/",
    "ls -s /seq",
    "create -e /eph ephemeral",
    "create -e /eph",
    "stat /eph",
    "getEphemerals",
    "create -e /eph/child",
    "create -s -e /seq/e-",
    "getEphemerals /seq",
    "getEphemerals /nothing-here",
    "ls /seq",
    "create -c /cont",
    "stat /cont",
    "create /cont/child x",
    "ls /cont",
    # --- TTL (extendedTypesEnabled is false) and invalid flag combinations
    "create -t 1000 /ttl",
    "create -t 1000 -s /ttls-",
    "create -t 1000 -e /ttl2",
    "create -t 1000 -c /ttl3",
    "create -t abc /ttl4",
    "create -c -s /c2",
    "create -c -e /c3",
    "create -s -e -c /c4",
    "create -x /badopt",
    # --- invalid paths and usage errors
    "create /a/",
    "create a",
    "create //a",
    "create /a//b",
    "create /a/./b",
    "create /a/../b",
    "create /zookeeper/mine x",
    "create",
    "create /nope/x",
    "get nopath",
    "get",
    "set /a",
    "ls",
    "stat",
    "delete",
    # --- ACL strings at create time
    "create /aclbad1 d world:anyone",
    "create /aclbad2 d world:anyone:rq",
    "getAcl /aclbad2",
    "create /aclbad3 d foo:bar:cdrwa",
    "create /aclbad4 d auth::cdrwa",
    "create /aclbad5 d digest:nocolon:cdrwa",
    "create /ipacl d ip:127.0.0.1:r",
    "get /ipacl",
    "set /ipacl x",
    "getAcl /ipacl",
    "create /ipacl2 d ip:10.0.0.0/8:cdrwa",
    "get /ipacl2",
    "getAcl /ipacl2",
    "create /ipacl2/kid d",
    "delete /ipacl2",
    "create /ipbad d ip:300.1.1.1:cdrwa",
    "create /ipbad2 d ip:127.0.0.1/99:cdrwa",
    # --- set
    "set /a world",
    "set -s /a world2",
    "set -v 2 /a v3",
    "set -v 99 /a v4",
    "set -s -v 3 /a v4",
    "set /nope x",
    "set /a/ x",
    "get -s /a",
    # --- ls variants
    "ls nopath",
    "ls /nope",
    "ls -R /a",
    "ls -R /nope",
    "ls -s /a/b/c",
    "ls -R /",
    # --- stat / delete / deleteall
    "stat /a",
    "stat /nope",
    "delete /nope",
    "delete /a",
    "delete -v 99 /a/b/c",
    "delete -v 0 /a/b/c",
    "delete /a/b 5",
    "stat /a/b",
    "deleteall /nope",
    "deleteall nopath",
    "create /del",
    "create /del/x",
    "create /del/x/y",
    "create /del/z",
    "create /del/z/w",
    "deleteall /del -b 1",
    "stat /del",
    "create /del2",
    "create /del2/x",
    "deleteall /del2",
    "deleteall /del2 -b abc",
    "ls /",
    # --- one-time watches (each trigger is followed by sync in the same group)
    "get -w /a",
    ["set /a w1", "sync /"],
    "get -s -w /a",
    ["set /a w2", "sync /"],
    "ls -w /a",
    ["create /a/w", "sync /"],
    "ls -s -w /a",
    ["delete /a/w", "sync /"],
    "stat -w /nw",
    ["create /nw", "sync /"],
    "stat -w /nw",
    ["delete /nw", "sync /"],
    "get -w /a",
    "ls -w /a",
    ["create /a/w2", "sync /"],
    ["set /a w3", "sync /"],
    "get -w /a/w2",
    "ls -w /a/w2",
    "ls -w /a",
    ["delete /a/w2", "sync /"],
    "create /a/b",
    "create /a/b/c",
    "create /a/d",
    "ls -R -w /a",
    ["create /a/b/x", "sync /"],
    ["set /a w4", "sync /"],
    ["delete /a/b/x", "sync /"],
    ["set /a/b/c w", "delete /a/b/c", "sync /"],
    ["create /a/d/e", "sync /"],
    ["deleteall /a/d", "sync /"],
    ["deleteall /a/b", "sync /"],
    "get /a watch",
    ["set /a w5", "sync /"],
    "ls /a watch",
    ["create /a/lw", "sync /"],
    "stat /a watch",
    ["set /a w6", "sync /"],
    "stat /a/lw watch",
    ["delete /a/lw", "sync /"],
    # --- persistent watches
    "create /r",
    "create /r/a",
    "create /r/a/b",
    "create /r/c",
    "addWatch /r",
    ["set /r/a/b x", "create /r/a/new", "delete /r/a/new", "set /r y", "sync /"],
    "addWatch -m PERSISTENT /r/c",
    ["create /r/c/k", "set /r/c z", "sync /"],
    "addWatch -m persistent_recursive /r/a",
    "addWatch -m bogus /r",
    "addWatch",
    "addWatch /nope",
    ["create /nope", "delete /nope", "sync /"],
    # --- removewatches
    ["removewatches /r", "sync /"],
    ["removewatches /r/c -a", "sync /"],
    ["removewatches /r/a", "sync /"],
    ["set /r/a/b q", "sync /"],
    ["removewatches /nope", "sync /"],
    ["removewatches /never-watched", "sync /"],
    ["removewatches /r -c", "sync /"],
    "get -w /r",
    ["removewatches /r -c", "sync /"],
    ["removewatches /r -d", "sync /"],
    "ls -w /r",
    ["removewatches /r -l", "sync /"],
    ["removewatches nopath", "sync /"],
    ["create /r/c/k2", "set /r x", "sync /"],
    # --- printwatches
    "printwatches",
    "printwatches off",
    "printwatches",
    "get -w /r",
    ["set /r quiet", "sync /"],
    "printwatches on",
    "printwatches",
    "printwatches maybe",
    "printwatches",
    "printwatches on",
    # --- ACLs and authentication
    "getAcl /",
    "getAcl -s /a",
    "getAcl /nope",
    "getAcl /zookeeper",
    "whoami",
    "addauth digest alice:secret",
    "whoami",
    "addauth digest alice:secret",
    "whoami",
    "create /secret top digest:{alice}:cdrwa",
    "get /secret",
    "getAcl -s /secret",
    "create /authnode x auth::cdrwa",
    "getAcl /authnode",
    "create /authnode2 x auth:whatever:rw",
    "getAcl /authnode2",
    "create /multi x world:anyone:r,digest:{alice}:cdrwa,ip:127.0.0.1:cdrwa",
    "getAcl /multi",
    "setAcl /a auth::cdrwa",
    "getAcl -s /a",
    "setAcl -s /a world:anyone:cdrwa",
    "setAcl -v 5 /a world:anyone:cdrwa",
    "setAcl -v 2 /a world:anyone:cdrwa",
    "setAcl /nope world:anyone:cdrwa",
    "setAcl /a",
    "setAcl /a foo:bar:cdrwa",
    "create /zero",
    "setAcl /zero world:anyone:xyz",
    "getAcl /zero",
    "setAcl /zero world:anyone:cdrwa",
    "get /zero",
    "delete /zero",
    "getAcl /a",
    "create /nop x digest:{bob}:cdrwa",
    "get /nop",
    "get -s /nop",
    "set /nop y",
    "getAcl /nop",
    "setAcl /nop world:anyone:r",
    "create /nop/child",
    "ls /nop",
    # `stat` of a node the caller may not read is left out on purpose: Apache 3.8.0 answers
    # it, while ZooKeeper 3.8.4+/3.9.2+ (ZOOKEEPER-2590) and zk refuse it with NoAuth. The
    # kazoo test test_digest_acl pins down each side's behaviour.
    "delete /nop",
    "create /ro x world:anyone:r",
    "set /ro y",
    "create /ro/kid",
    "setAcl /ro world:anyone:cdrwa",
    "create /r/c/k3",
    "setAcl -R /r world:anyone:cdrw",
    "getAcl /r/c/k",
    "getAcl /r/a/b",
    "setAcl -R /r world:anyone:cdrwa",
    "getAcl /r/c/k",
    "getAcl /r/a/b",
    "setAcl -R -v 1 /r world:anyone:cdrwa",
    "getAcl -s /r/c",
    "setAcl /r/a digest:{bob}:cdrwa",
    "setAcl -R /r world:anyone:cdra",
    "getAcl /r",
    "getAcl /r/c",
    "getAcl /r/c/k3",
    "setAcl -R /r/c world:anyone:cdr",
    "setAcl -R /r/c world:anyone:cdrwa",
    "setAcl -R /nope world:anyone:cdrwa",
    "setAcl -s -R /r/c world:anyone:cdrwa",
    # --- getEphemerals / getAllChildrenNumber
    "getEphemerals /eph",
    "getEphemerals /seq/e",
    "getEphemerals nopath",
    "getAllChildrenNumber /",
    "getAllChildrenNumber /r",
    "getAllChildrenNumber /seq",
    "getAllChildrenNumber /nope",
    "getAllChildrenNumber",
    # --- quotas
    "create /q",
    "create /q/a",
    "create /q/a/b 12345",
    "setquota -n 5 /q",
    "listquota /q",
    "ls -R /zookeeper",
    "get -s /zookeeper/quota/q/zookeeper_limits",
    "get /zookeeper/quota/q/zookeeper_stats",
    "setquota -b 100 /q",
    "setquota -N 10 /q",
    "setquota -B 1000 /q",
    "listquota /q",
    "create /q/c 0123456789",
    "create /q/d",
    "create /q/e",
    "create /q/f",
    "listquota /q",
    "setquota -n 2 /q",
    "listquota /q",
    "setquota -n 5 /q/a",
    "setquota -n 5 /q/a/b",
    "create /qq",
    "create /qq/x",
    "setquota -n 3 /qq/x",
    "setquota -n 3 /qq",
    "setquota -n 5 /",
    "setquota -n 0 /q",
    "setquota -b -1 /q",
    "setquota -n abc /q",
    "setquota -n 5 /nope",
    "setquota /q",
    "setquota -n 5 -b 5 /q",
    "setquota -n 5 /zookeeper/quota/q",
    "listquota /nope",
    "listquota /qq",
    "delquota -n /q",
    "listquota /q",
    "delquota -b /q",
    "delquota -N /q",
    "delquota -B /q",
    "listquota /q",
    "delquota /q",
    "listquota /q",
    "delquota /q",
    "delquota -n /q",
    "delquota /qq/x",
    "delquota /nope",
    "ls -R /zookeeper",
    "getAllChildrenNumber /zookeeper",
    # --- sync / config
    "sync /",
    "sync /nope",
    "sync nopath",
    "sync",
    "config",
    "config -c",
    "config -s",
    "config -w",
    "get -s /zookeeper/config",
    "getAcl /zookeeper/config",
    "set /zookeeper/config x",
    "delete /zookeeper/config",
    "create /zookeeper/config/x",
    "delete /zookeeper",
    "delete /zookeeper/quota",
    # --- reconfig (standalone, reconfigEnabled=false)
    "reconfig -remove 3",
    "reconfig -add server.4=localhost:2888:3888;2181",
    "reconfig -members server.1=localhost:2888:3888;2181",
    "reconfig -s -v 1 -remove 3",
    "reconfig -v xyz -remove 3",
    "reconfig -file /nonexistent/file.cfg",
    "reconfig -file /x -remove 3",
    "reconfig",
    # --- history / redo / version / unknown
    "history",
    "redo @create_a",
    "@getA: get /a",
    "redo @getA",
    "@redo_redo: redo @getA",
    "redo @redo_redo",
    "redo 999999",
    "redo -1",
    "redo",
    "version",
    "version extra",
    "frobnicate",
    "help",
    "",
    # --- close / connect ("printwatches off" keeps the async Closed event out of stdout)
    "printwatches off",
    "close",
    "ls /",
    "get /a",
    "create /closed x",
    "history",
    "connect 127.0.0.1:{port}",
    "printwatches on",
    "ls /",
    "stat /eph",
    "getEphemerals",
    "whoami",
    "create -e /eph2 again",
    "getEphemerals",
    "printwatches off",
    "close",
    "close",
    "connect",
    "printwatches on",
    "stat /eph2",
    "create -e /eph3 last",
    "get /secret",
    "printwatches off",
    "quit",
]

# A second session after SESSION_MAIN quit: ephemerals of the closed session are gone,
# digest auth is per session, wrong passwords do not authenticate. Ends at EOF (no quit),
# so the exit code is the last command's (1: NoNode).
SESSION_SECOND = [
    "stat /eph3",
    "getEphemerals",
    "get /secret",
    "getAcl /secret",
    "ls /nop",
    "addauth digest alice:wrong",
    "whoami",
    "get /secret",
    "addauth digest alice:secret",
    "whoami",
    "get -s /secret",
    "set /secret changed",
    "get /secret",
    "getAcl /authnode",
    "delete /secret",
    "ls -R /",
    "getAllChildrenNumber /",
    "deleteall /r",
    "deleteall /q",
    "deleteall /seq",
    "ls /",
    "get /nope",
]

# Against servers with extendedTypesEnabled=true and reconfigEnabled=true.
SESSION_EXTENDED = [
    "create -t 100000 /ttl x",
    "stat /ttl",
    "get /ttl",
    "create -t 100000 -s /ttls- y",
    "ls /",
    "stat /ttls-0000000001",
    "create -t 0 /ttl0",
    "create -t -5 /ttlneg",
    "create -t 1099511627775 /ttlmax",
    "create -t 1099511627776 /ttlbig",
    "create -t 5000 /ttl",
    "create -t 5000 -e /ttle",
    "create -c /cont",
    "stat /cont",
    "create -e /eph",
    "stat /eph",
    "reconfig -remove 3",
    "reconfig -add server.4=localhost:2888:3888;2181",
    "config",
    "delete /ttl",
    "printwatches off",
    "quit",
]

# One-shot invocations: (args, ...). Each runs as its own zkCli process, in order.
ONE_SHOT = [
    ["ls", "/"],
    ["create", "/os", "data"],
    ["create", "/os", "again"],
    ["get", "-s", "/os"],
    ["set", "-v", "9", "/os", "x"],
    ["set", "-s", "/os", "y"],
    ["get", "/nope"],
    ["create", "-e", "/os/eph"],
    ["ls", "/os"],
    ["create", "-s", "/os/s-", "x"],
    ["create", "/os/"],
    ["create"],
    ["frobnicate"],
    ["delete", "/os"],
    ["deleteall", "/os"],
    ["stat", "/os"],
    ["ls", "-R", "/"],
    ["version"],
    ["sync", "/"],
    ["printwatches"],
    ["history"],
    ["redo", "1"],
    ["getAcl", "/"],
    ["whoami"],
    ["reconfig", "-remove", "1"],
    ["create", "-t", "10", "/ttl"],
    ["ls", "-w", "/"],
    # zkCli crashes with an uncaught NumberFormatException (stack trace, exit 1)
    ["set", "-v", "abc", "/os", "x"],
]


# --------------------------------------------------------------------------------------
# script construction

_MARK_RE_OUT = re.compile(r"^(.*?)Quota does not exist for /__(\d{3})_[A-Za-z0-9_-]*$")
_MARK_RE_ERR = re.compile(r"^(.*?)Node does not exist: /__(\d{3})_[A-Za-z0-9_-]*$")


@dataclass
class Script:
    text: str
    markers: dict = field(default_factory=dict)  # "NNN" -> command text


def build_script(items, subst: dict) -> Script:
    lines: list[str] = []
    markers: dict[str, str] = {}
    labels: dict[str, int] = {}
    counter = 0  # zkCli's commandCount: incremented for every non-empty line

    def emit(line: str):
        nonlocal counter
        lines.append(line)
        if line != "":
            counter += 1

    for i, item in enumerate(items):
        group = item if isinstance(item, list) else [item]
        label = None
        resolved = []
        for raw in group:
            m = re.match(r"^@(\w+): (.*)$", raw)
            if m:
                label, raw = m.group(1), m.group(2)
            raw = re.sub(r"@(\w+)", lambda mm: str(labels[mm.group(1)]), raw)
            resolved.append(raw.format(**subst))
        first = resolved[0]
        if first != "":
            tag = f"{i:03d}_" + re.sub(r"[^A-Za-z0-9_-]", "_", first.split()[0])[:20]
            markers[f"{i:03d}"] = " ; ".join(resolved)
            emit(f"stat /__{tag}")
            emit(f"delquota /__{tag}")
        for j, line in enumerate(resolved):
            if j == 0 and label:
                labels[label] = counter
            emit(line)
    return Script("\n".join(lines) + "\n", markers)


# --------------------------------------------------------------------------------------
# masking

_NOISE = [
    re.compile(r"^SLF4J: "),
    re.compile(r"^log4j:(WARN|ERROR) "),
    # log4j/logback pattern lines, e.g. "2024-01-01 12:00:00,123 [myid:] - INFO  [main:..."
    re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d{3} .*\b(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\b"),
]
_ZXID_RE = re.compile(r"^(cZxid|mZxid|pZxid) = 0x(?!0$)[0-9a-f]+$")
_DATE_RE = re.compile(r"^(ctime|mtime) = (?!Thu Jan 01 00:00:00 UTC 1970$)"
                      r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d [A-Za-z+0-9:]+ \d{4}$")
_OWNER_RE = re.compile(r"^ephemeralOwner = 0x([0-9a-f]+)$")
_EVENT_ZXID_RE = re.compile(r"^(WatchedEvent .* zxid: )-?\d+$")
_VERSION_RE = re.compile(r"^(ZooKeeper CLI version: ).+$")


def _mask_owner(m: re.Match) -> str:
    # 0x0 (not ephemeral; also what TTL and container nodes report) stays visible
    return m.group(0) if int(m.group(1), 16) == 0 else "ephemeralOwner = 0x<SESSION>"


_WHOAMI_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+: \S")


def _sort_whoami(lines: list[str]) -> list[str]:
    """Apache keeps a connection's auth ids in a ConcurrentHashMap-backed set, so `whoami`
    lists them in Java hash order; compare the id lines of each block as a sorted list."""
    out, i = [], 0
    while i < len(lines):
        out.append(lines[i])
        if lines[i] == "Auth scheme: User":
            j = i + 1
            while j < len(lines) and _WHOAMI_ID_RE.match(lines[j]):
                j += 1
            out.extend(sorted(lines[i + 1:j]))
            i = j
        else:
            i += 1
    return out


def mask(text: str, ports, markers: dict | None = None) -> str:
    out = []
    for line in _sort_whoami(text.splitlines()):
        if any(r.search(line) for r in _NOISE):
            continue
        line = _ZXID_RE.sub(r"\1 = 0x<ZXID>", line)
        line = _DATE_RE.sub(r"\1 = <DATE>", line)
        line = _OWNER_RE.sub(_mask_owner, line)
        line = _EVENT_ZXID_RE.sub(r"\1<ZXID>", line)
        line = _VERSION_RE.sub(r"\1<VERSION>", line)
        for p in ports:
            line = line.replace(f"127.0.0.1:{p}", "127.0.0.1:<PORT>").replace(f"localhost:{p}", "localhost:<PORT>")
        if markers is not None:
            m = _MARK_RE_OUT.match(line) or _MARK_RE_ERR.match(line)
            if m and m.group(2) in markers:
                # a marker glued to an unterminated line (setAcl -R errors) is split off it
                line = (m.group(1) + "\n" if m.group(1) else "") + f"##### [{m.group(2)}] {markers[m.group(2)]}"
        out.append(line)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------
# running zkCli


@dataclass
class CliResult:
    rc: int | str  # exit code, or "timeout" / "skipped"
    stdout: str
    stderr: str


def zkcli_env() -> dict:
    env = dict(os.environ)
    env["CLIENT_JVMFLAGS"] = " ".join(FAST_JVM_FLAGS)
    env["TZ"] = "UTC"  # stat dates; the epoch stays unmasked as "Thu Jan 01 00:00:00 UTC 1970"
    env["LC_ALL"] = env["LANG"] = "C.UTF-8"  # the JVM reads stdin and writes stdout as UTF-8
    env.pop("JVMFLAGS", None)
    return env


def _text(b) -> str:
    if b is None:
        return ""
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


def run_zkcli(address: str, args=None, stdin: str | None = None) -> CliResult:
    cmd = [ZKCLI, "-waitforconnection", "-timeout", "30000", "-server", address] + list(args or [])
    timeout = ZKCLI_ONESHOT_TIMEOUT if args else ZKCLI_TIMEOUT
    # zkCli.sh runs java as a child of bash: own process group, so a timeout kills both
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         encoding="utf-8", errors="backslashreplace", env=zkcli_env(), start_new_session=True)
    try:
        out, err = p.communicate(stdin if stdin is not None else "", timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        # keep what was printed so far: the diff then shows where the target got stuck
        return CliResult("timeout", _text(out), _text(err) + f"\n<<< zkCli killed after {timeout}s >>>\n")
    return CliResult(p.returncode, out, err)


SKIPPED = CliResult("skipped", "<<< not run: an earlier zkCli run against this server timed out >>>\n", "")


def run_side(server, scripts: dict, one_shots=None) -> dict:
    """Run the interactive scripts (in order) and then the one-shot commands against one
    server. After a zkCli run times out, the rest are not run (a hung server would
    otherwise cost a timeout per command)."""
    res = {}
    stuck = False
    for name, script in scripts.items():
        res[name] = SKIPPED if stuck else run_zkcli(server.address, stdin=script.text)
        stuck = stuck or res[name].rc == "timeout"
    if one_shots:
        res["one_shot"] = []
        for a in one_shots:
            r = SKIPPED if stuck else run_zkcli(server.address, args=a)
            stuck = stuck or r.rc == "timeout"
            res["one_shot"].append(r)
    return res


def udiff(a: str, b: str, a_name: str, b_name: str) -> str:
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), a_name, b_name, n=4))


def compare(ref: CliResult, tgt: CliResult, ports, markers=None, what="", masker=None,
            names=("apache", ZK_TARGET), roles=("reference", "target")) -> list[str]:
    """Masked stdout and stderr and the exit codes of two runs; one problem per difference.
    `masker` replaces `mask` (test_cli_compare also drops Java stack frames); `names` label
    the two sides."""
    masker = masker or mask
    ra, rb = names
    la, lb = (f" {r}" if r else "" for r in roles)
    problems = []
    for stream in ("stdout", "stderr"):
        a = masker(getattr(ref, stream), ports, markers)
        b = masker(getattr(tgt, stream), ports, markers)
        if a != b:
            problems.append(f"--- {what} {stream} differs (masked; - {ra}{la}, + {rb}{lb}):\n"
                            + udiff(a, b, f"{ra}/{stream}", f"{rb}/{stream}"))
    if ref.rc != tgt.rc:
        problems.append(f"--- {what} exit code differs: {ra} {ref.rc}, {rb} {tgt.rc}")
    return problems


# --------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    base = tmp_path_factory.mktemp("zkcli_compare")
    servers = []
    try:
        with ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(start_apache, base, "ref"),
                    ex.submit(start_target, base, "target"),
                    ex.submit(start_apache, base, "ref_ext",
                              {"extendedTypesEnabled": "true", "reconfigEnabled": "true"}),
                    ex.submit(start_target, base, "target_ext",
                              {"extendedTypesEnabled": "true", "reconfigEnabled": "true"})]
            errors = []
            for f in futs:
                try:
                    servers.append(f.result())
                except BaseException as e:  # noqa: BLE001
                    errors.append(e)
            if errors:
                raise errors[0]
        ref, tgt, ref_ext, tgt_ext = servers
        ports = [s.port for s in servers]

        def scripts_for(server, ext: bool):
            subst = {"port": server.port, "alice": ALICE, "bob": BOB}
            if ext:
                return {"extended": build_script(SESSION_EXTENDED, subst)}
            return {"main": build_script(SESSION_MAIN, subst), "second": build_script(SESSION_SECOND, subst)}

        with ThreadPoolExecutor(4) as ex:
            jobs = {
                "ref": ex.submit(run_side, ref, scripts_for(ref, False), ONE_SHOT),
                "tgt": ex.submit(run_side, tgt, scripts_for(tgt, False), ONE_SHOT),
                "ref_ext": ex.submit(run_side, ref_ext, scripts_for(ref_ext, True)),
                "tgt_ext": ex.submit(run_side, tgt_ext, scripts_for(tgt_ext, True)),
            }
            out = {k: v.result() for k, v in jobs.items()}
        # the markers only depend on the script items, so either side's copy will do
        out["markers"] = {
            "main": scripts_for(ref, False)["main"].markers,
            "second": scripts_for(ref, False)["second"].markers,
            "extended": scripts_for(ref, True)["extended"].markers,
        }
        out["ports"] = ports
        out["servers"] = servers
        out["dir"] = base / "outputs"
        _dump(base, out)
        yield out
    finally:
        for s in servers:
            s.stop()


def _dump(base, out):
    """Keep raw and masked outputs next to the server logs, for debugging a mismatch."""
    base = base / "outputs"
    base.mkdir(exist_ok=True)
    for side in ("ref", "tgt", "ref_ext", "tgt_ext"):
        for session, res in out[side].items():
            items = res if isinstance(res, list) else [res]
            for i, r in enumerate(items):
                stem = base / (f"{side}.{session}" + (f".{i:02d}" if isinstance(res, list) else ""))
                for stream in ("stdout", "stderr"):
                    raw = getattr(r, stream)
                    stem.with_suffix(stem.suffix + f".{stream}").write_text(raw)
                    stem.with_suffix(stem.suffix + f".{stream}.masked").write_text(
                        mask(raw, out["ports"], out["markers"].get(session)))
                stem.with_suffix(stem.suffix + ".rc").write_text(f"{r.rc}\n")


def _check(results, session: str, ext: bool = False):
    ref = results["ref_ext" if ext else "ref"][session]
    tgt = results["tgt_ext" if ext else "tgt"][session]
    problems = compare(ref, tgt, results["ports"], results["markers"][session], what=f"session '{session}'")
    assert not problems, "\n".join(problems) + f"\n(raw outputs in {results['dir']})"


# --------------------------------------------------------------------------------------
# tests


def test_reference_output_is_sane(results):
    """Guard against a vacuous comparison: the Apache reference run really did the work."""
    ref = results["ref"]["main"]
    out, err = ref.stdout, ref.stderr
    assert "Welcome to ZooKeeper!" in out
    assert "WatchedEvent state:SyncConnected type:None path:null" in out
    assert "Created /seq/n-0000000000" in err and "Created /seq/e-0000000003" in err
    assert "KeeperErrorCode = Unimplemented for /ttl" in err
    assert "WatchedEvent state:SyncConnected type:NodeDataChanged path:/a" in out
    assert "WatchedEvent state:SyncConnected type:NodeCreated path:/nw" in out
    assert "Insufficient permission : /nop" in err
    assert "Not connected" in out
    assert "Command not found: Command not found frobnicate" in err
    assert "ZooKeeper CLI version: 3.8" in out
    assert "Output quota for /q count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1" in out
    # every marker made it through, so the whole script ran
    masked = mask(out, results["ports"], results["markers"]["main"])
    last = max(results["markers"]["main"])
    assert f"##### [{last}] quit" in masked
    assert ref.rc == 0
    sec = results["ref"]["second"]
    assert sec.rc == 1, (sec.rc, sec.stderr[-2000:])
    ext = results["ref_ext"]["extended"]
    assert "Created /ttl" in ext.stderr
    assert "Created /ttls-0000000001" in ext.stderr
    assert "KeeperErrorCode = Unimplemented" in ext.stderr  # reconfig, reconfigEnabled=true
    # Stat.ephemeralOwner of TTL and container nodes reads as 0x0 (DataTree.getClientEphemeralOwner)
    assert "ephemeralOwner = 0x<SESSION>" in mask(ext.stdout, results["ports"])


def test_interactive_main_session(results):
    _check(results, "main")


def test_interactive_second_session(results):
    _check(results, "second")


def test_interactive_extended_types_session(results):
    _check(results, "extended", ext=True)


def test_one_shot_commands(results):
    problems = []
    for args, ref, tgt in zip(ONE_SHOT, results["ref"]["one_shot"], results["tgt"]["one_shot"]):
        problems += compare(ref, tgt, results["ports"], what=f"one-shot `zkCli.sh {' '.join(args)}`")
    assert not problems, "\n".join(problems)


def test_one_shot_exit_codes_reference(results):
    """zkCli 3.8.0 exit codes: 0 success, 1 CliException, 127 unknown command."""
    codes = {" ".join(a): r.rc for a, r in zip(ONE_SHOT, results["ref"]["one_shot"])}
    assert codes["ls /"] == 0
    assert codes["get /nope"] == 1
    assert codes["create /os again"] == 1
    assert codes["frobnicate"] == 127
    assert codes["create /os/"] == 1
    assert codes["set -v 9 /os x"] == 1
