"""The ZooKeeper C client's ``cli_mt`` (Debian zookeeper-bin 3.8.0) against the target.

cli_mt reads commands from stdin and runs most of them asynchronously; results are
printed on stderr by the completion thread (``[<path>]: rc = N``, ``<path>: rc = N``, a
stat dump, ...). The driver writes one command at a time and waits (bounded) for the
output that completes it, so the test is deterministic without sleeps.

Commands understood by cli_mt 3.8.0 (from its ``help``): create/create2 [+[e|s|c|t=ttl]]
<path> (data is always "new"), delete, set <path> <data>, get, ls, ls2, sync, exists,
wexists, myid, verbose, addauth <scheme> <auth>, config, reconfig, quit.
"""

from __future__ import annotations

import re
import subprocess
import threading
import uuid

import pytest
from kazoo.client import KazooClient

from conftest import CLI_MT

T = 20

# return codes (ZOO_ERRORS in zookeeper.h)
ZOK, ZUNIMPLEMENTED, ZNONODE, ZNODEEXISTS, ZNOTEMPTY, ZNOAUTH = 0, -6, -101, -110, -111, -102


class CliMt:
    def __init__(self, address: str, *args: str):
        self.proc = subprocess.Popen([CLI_MT, "-h", address, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.err = ""
        self.out = ""
        self.pos = 0
        self.cond = threading.Condition()
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stderr, "err"), daemon=True),
                        threading.Thread(target=self._pump, args=(self.proc.stdout, "out"), daemon=True)]
        for t in self.threads:
            t.start()

    def _pump(self, stream, attr):
        for line in iter(stream.readline, ""):
            with self.cond:
                setattr(self, attr, getattr(self, attr) + line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def send(self, line: str):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, timeout: float = T) -> re.Match:
        """Wait until ``pattern`` (multiline regex) appears in stderr after the cursor."""
        rx = re.compile(pattern, re.M)
        with self.cond:
            m = None

            def found():
                nonlocal m
                m = rx.search(self.err, self.pos)
                return m is not None or self.proc.poll() is not None

            self.cond.wait_for(found, timeout)
            if m is None:
                raise AssertionError(f"cli_mt: no match for {pattern!r} within {timeout}s; stderr after cursor:\n"
                                     f"{self.err[self.pos:]}")
            self.pos = m.end()
            return m

    def cmd(self, line: str, pattern: str) -> re.Match:
        self.send(line)
        return self.expect(pattern)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("quit")
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(T)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(T)
        for t in self.threads:
            t.join(T)


STAT = (r"\tctime = [^\n]+\n\tczxid=(?P<czxid>[0-9a-f]+)\n\tmtime=[^\n]+\n\tmzxid=(?P<mzxid>[0-9a-f]+)\n"
        r"\tversion=(?P<version>[0-9a-f]+)\taversion=(?P<aversion>[0-9a-f]+)\n"
        r"\tephemeralOwner = (?P<owner>[0-9a-f]+)\n")


def esc(s):
    return re.escape(s)


@pytest.fixture
def kz(zk_server):
    c = KazooClient(hosts=zk_server.address, timeout=10)
    c.start(timeout=T)
    yield c
    c.stop()
    c.close()


@pytest.fixture
def root():
    return f"/climt-{uuid.uuid4().hex[:8]}"


def test_cli_mt_session(zk_server, kz, root):
    cli = CliMt(zk_server.address)
    try:
        cli.expect(r"^Watcher SESSION_EVENT state = CONNECTED_STATE$")
        sid = cli.expect(r"^Got a new session id: 0x([0-9a-f]+)$").group(1)

        def create(arg, path, rc, name=None, mode=0):
            cli.send(f"create {arg}{path}")
            cli.expect(rf"^Creating \[{esc(path)}\] node \(mode: {mode}\)$")
            if rc == ZOK:
                m = cli.expect(rf"^\[{esc(path)}\]: rc = 0\n\tname = (\S+)$")
                assert m.group(1) == (name or path)
            else:
                cli.expect(rf"^\[{esc(path)}\]: rc = {rc}$")

        create("", root, ZOK)
        create("", root, ZNODEEXISTS)
        create("", f"{root}/missing/child", ZNONODE)
        create("+e ", f"{root}/eph", ZOK, mode=1)
        create("+s ", f"{root}/seq-", ZOK, name=f"{root}/seq-0000000001", mode=2)
        create("+es ", f"{root}/es-", ZOK, name=f"{root}/es-0000000002", mode=3)
        create("+c ", f"{root}/cont", ZOK, mode=4)
        create("+t=5000 ", f"{root}/ttl", ZUNIMPLEMENTED, mode=5)  # extendedTypesEnabled=false
        cli.cmd("create +x /x", r"^Unknown option: x$")
        cli.cmd("create +ec /x", r"^Invalid mode\.$")
        cli.cmd("create nopath", r"^Path must start with /, found: nopath$")

        # create2 returns the stat as well
        cli.send(f"create2 {root}/c2")
        m = cli.expect(rf"^\[{esc(root)}/c2\]: rc = 0\n\tname = {esc(root)}/c2\n" + STAT)
        assert m["version"] == "0" and m["owner"] == "0" and m["czxid"] == m["mzxid"]

        # the ephemeral belongs to this session
        assert kz.exists(f"{root}/eph").ephemeralOwner == int(sid, 16)
        assert kz.get(f"{root}/c2")[0] == b"new"

        # get (sets a watch), set (fires it), get again
        m = cli.cmd(f"get {root}", rf"^{esc(root)}: rc = 0\n value_len = 3\nnew\nStat:\n" + STAT)
        assert m["version"] == "0"
        cli.send(f"set {root} hello")
        cli.expect(rf"^Watcher CHANGED_EVENT state = CONNECTED_STATE for path {esc(root)}$")
        m = cli.expect(rf"^{esc(root)}: rc = 0 Stat:\n" + STAT)
        assert m["version"] == "1"
        m = cli.cmd(f"get {root}", rf"^{esc(root)}: rc = 0\n value_len = 5\nhello\nStat:\n" + STAT)
        assert m["version"] == "1"
        assert kz.get(root)[0] == b"hello"
        cli.cmd(f"set {root}", r"^No data found after path$")
        cli.cmd(f"set {root}/nope x", rf"^{esc(root)}/nope: rc = {ZNONODE} Stat:\nnull$")

        # ls / ls2: children in any order
        m = cli.cmd(f"ls {root}", rf"^{esc(root)}: rc = 0\n((?:\t\S+\n)*)time = \d+ msec$")
        assert sorted(m.group(1).split()) == ["c2", "cont", "eph", "es-0000000002", "seq-0000000001"]
        m = cli.cmd(f"ls2 {root}", rf"^{esc(root)}: rc = 0\n((?:\t\S+\n)*)time = \d+ msec\n" + STAT)
        assert sorted(m.group(1).split()) == ["c2", "cont", "eph", "es-0000000002", "seq-0000000001"]
        assert m["version"] == "1"
        cli.cmd(f"ls {root}/nope", rf"^{esc(root)}/nope: rc = {ZNONODE}\ntime = \d+ msec$")

        # exists is synchronous in cli_mt: silent on success, "Error <rc>" otherwise
        cli.cmd(f"exists {root}/nope", rf"^Error {ZNONODE} for {esc(root)}/nope$")
        cli.cmd(f"wexists {root}/w", rf"^Error {ZNONODE} for {esc(root)}/w$")
        kz.create(f"{root}/w", b"from kazoo")
        cli.expect(rf"^Watcher CREATED_EVENT state = CONNECTED_STATE for path {esc(root)}/w$")
        # the child watch left by `ls` fires too
        cli.expect(rf"^Watcher CHILD_EVENT state = CONNECTED_STATE for path {esc(root)}$")
        cli.send(f"exists {root}/w")
        cli.cmd(f"get {root}/w", rf"^{esc(root)}/w: rc = 0\n value_len = 10\nfrom kazoo\nStat:\n" + STAT)

        # errors
        cli.cmd(f"get {root}/nope", rf"^{esc(root)}/nope: rc = {ZNONODE}\n\nStat:\nnull$")
        cli.cmd(f"delete {root}", rf"^{esc(root)}: rc = {ZNOTEMPTY}$")
        cli.cmd(f"delete {root}/nope", rf"^{esc(root)}/nope: rc = {ZNONODE}$")
        cli.cmd(f"delete {root}/w", rf"^{esc(root)}/w: rc = 0$")
        assert kz.exists(f"{root}/w") is None

        cli.cmd(f"sync {root}", rf"^\[{esc(root)}\]: rc = 0\n\tname = {esc(root)}$")
        m = cli.cmd("config", r"^/zookeeper/config: rc = 0\n value_len = 0\n\nStat:\n" + STAT)
        assert m["czxid"] == "0" and m["aversion"] == "ffffffff"
        cli.cmd("reconfig -remove 1", r"^-remove 1: rc = -123\n\nStat:\nnull$")  # ZRECONFIGDISABLED

        # digest auth: a node only alice can read
        kz.add_auth("digest", "alice:secret")
        from kazoo.security import make_digest_acl
        kz.create(f"{root}/secret", b"s3", acl=[make_digest_acl("alice", "secret", all=True)])
        cli.cmd(f"get {root}/secret", rf"^{esc(root)}/secret: rc = {ZNOAUTH}\n")
        cli.send("addauth digest alice:secret")
        cli.cmd(f"get {root}/secret", rf"^{esc(root)}/secret: rc = 0\n value_len = 2\ns3\n")

        cli.send("myid")
        cli.cmd("quit", r"^Quitting\.\.\.$")
        assert cli.proc.wait(T) == 0
    finally:
        cli.close()
    # stdout is block-buffered, so myid's line shows up at exit
    assert f"session Id = {sid}\n" in cli.out, cli.out
    # closing the session removed its ephemerals, and nothing else
    assert kz.exists(f"{root}/eph") is None
    assert kz.exists(f"{root}/es-0000000002") is None
    assert sorted(kz.get_children(root)) == ["c2", "cont", "secret", "seq-0000000001"]


def test_cli_mt_batch_mode(zk_server, kz, root):
    kz.create(f"{root}/a", b"batch data", makepath=True)

    def batch(cmd):
        p = subprocess.run([CLI_MT, "-h", zk_server.address, "-c", cmd], capture_output=True, text=True,
                           timeout=T, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, (cmd, p.returncode, p.stderr)
        assert f"Batch mode: {cmd}" in p.stderr
        assert "Watcher SESSION_EVENT state = CONNECTED_STATE" in p.stderr
        return p.stderr

    err = batch(f"get {root}/a")
    assert re.search(rf"^{esc(root)}/a: rc = 0\n value_len = 10\nbatch data\nStat:\n" + STAT, err, re.M), err
    err = batch(f"ls {root}")
    assert re.search(rf"^{esc(root)}: rc = 0\n\ta\n", err, re.M), err
    err = batch(f"create {root}/b")
    assert re.search(rf"^\[{esc(root)}/b\]: rc = 0\n\tname = {esc(root)}/b$", err, re.M), err
    assert kz.get(f"{root}/b")[0] == b"new"
    err = batch(f"get {root}/nope")
    assert re.search(rf"^{esc(root)}/nope: rc = {ZNONODE}$", err, re.M), err
    err = batch(f"delete {root}/b")
    assert re.search(rf"^{esc(root)}/b: rc = 0$", err, re.M), err
    assert kz.exists(f"{root}/b") is None


def test_cli_mt_many_async_requests(zk_server, kz, root):
    """cli_mt sends without waiting for replies: many requests in flight on one connection,
    whose replies must come back in order."""
    kz.create(root)
    cli = CliMt(zk_server.address)
    try:
        cli.expect(r"^Got a new session id: 0x[0-9a-f]+$")
        n = 50
        cli.send("\n".join(f"create {root}/n{i:03d}" for i in range(n)))
        for i in range(n):
            cli.expect(rf"^\[{esc(root)}/n{i:03d}\]: rc = 0\n\tname = {esc(root)}/n{i:03d}$")
        cli.send("\n".join(f"get {root}/n{i:03d}" for i in range(n)))
        for i in range(n):
            cli.expect(rf"^{esc(root)}/n{i:03d}: rc = 0\n value_len = 3\nnew\n")
        cli.cmd("quit", r"^Quitting\.\.\.$")
        assert cli.proc.wait(T) == 0
    finally:
        cli.close()
    assert len(kz.get_children(root)) == n
