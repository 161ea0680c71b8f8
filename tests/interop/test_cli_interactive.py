"""`zk cli` in a real terminal: each test runs it inside a detached tmux session (its own
tmux server socket), types with ``send-keys`` and reads the screen with ``capture-pane``.
Every wait polls the screen for what it expects, bounded by a deadline; there are no
fixed sleeps.

What is checked:

* the banner (``JLine support is enabled``), the SyncConnected event and zkCli's prompt
  ``[zk: 127.0.0.1:PORT(CONNECTED) N] `` whose counter follows the commands;
* history that survives a restart: lines go to $ZK_CLI_HISTORY as they are entered, and
  the Up arrow in a new run brings them back; ``history`` numbers the session's commands;
* Tab completion of a command name and of a znode path (the children are asked from the
  server);
* a watch event fired by another client printed while the prompt waits, the prompt
  redrawn below it;
* failover: with ``-server A,B`` and A stopped, the shell reports the loss and tries B. A
  and B are independent standalone servers, so B does not know the session: the screen
  shows ``state:Disconnected``, ``zk: lost the connection to A (...); trying B``, then
  ``state:Expired``, ``zk: session 0x... has expired; opening a new session``,
  ``state:SyncConnected`` and ``zk: connected to B; new session 0x...``; the prompt is
  CONNECTED again and commands run against B. (B either answers that the session is
  unknown, or refuses a client that has seen a later zxid than B has; then the shell gives
  the session up itself after twice its timeout and says so in the notice.) When the same
  server comes back (restarted
  on its data directory, which keeps sessions), the session is resumed instead and its
  ephemeral node is still there.

tmux comes from Debian's ``tmux`` package (.ci/run installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import ZK_BIN, ZK_TARGET, Server, _wait_ready, wait_until

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install tmux)")

SCREEN_TIMEOUT = 20.0


class Term:
    """One `zk cli` in a detached tmux session."""

    def __init__(self, tmp: Path, args: list[str], home: Path):
        self.sock = str(tmp / f"tmux-{uuid.uuid4().hex[:8]}.sock")
        self.name = "cli"
        env = {"HOME": str(home), "ZK_CLI_HISTORY": str(home / "history"), "TERM": "xterm",
               "TZ": "UTC", "LC_ALL": "C.UTF-8", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        cmd = ["env", "-i"] + [f"{k}={v}" for k, v in env.items()] + [ZK_BIN, "cli"] + args
        self.tmux("new-session", "-d", "-x", "200", "-y", "60", "-s", self.name,
                  " ".join(_quote(c) for c in cmd))
        # keep the pane after the shell exits, so its last screen can still be read
        self.tmux("set-option", "-t", self.name, "remain-on-exit", "on")

    def tmux(self, *args, check=True) -> str:
        r = subprocess.run([TMUX, "-S", self.sock, *args], capture_output=True, text=True, timeout=10)
        if check and r.returncode != 0:
            raise RuntimeError(f"tmux {args}: {r.stderr}")
        return r.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", self.name, "-S", "-2000")

    def type(self, text: str):
        self.tmux("send-keys", "-t", self.name, "-l", text)

    def key(self, *keys: str):
        self.tmux("send-keys", "-t", self.name, *keys)

    def line(self, text: str):
        self.type(text)
        self.key("Enter")

    def wait_for(self, pattern: str, timeout: float = SCREEN_TIMEOUT, count: int = 1) -> str:
        rx = re.compile(pattern, re.M)

        def seen():
            s = self.screen()
            return s if len(rx.findall(s)) >= count else None

        try:
            return wait_until(seen, timeout, what=f"{pattern!r} on the screen")
        except TimeoutError as e:
            raise AssertionError(f"{e}\n--- screen ---\n{self.screen()}") from None

    def last_line(self) -> str:
        lines = [ln for ln in self.screen().splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def close(self):
        self.tmux("kill-server", check=False)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def prompt(server: Server, n: int, state: str = "CONNECTED", host: str | None = None) -> str:
    """zkCli's prompt as a pattern; capture-pane drops its trailing blank at a line's end."""
    return re.escape(f"[zk: {host or server.address}({state}) {n}]") + " ?"


@pytest.fixture
def term_factory(tmp_path):
    terms = []
    home = tmp_path / "home"
    home.mkdir()

    def make(args: list[str]) -> Term:
        t = Term(tmp_path, args, home)
        terms.append(t)
        return t

    make.home = home
    yield make
    for t in terms:
        t.close()


def zk_cli(server: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ZK_BIN, "cli", "-server", server.address, *args], capture_output=True,
                          text=True, timeout=60)


def test_prompt_and_counter(zk_server, term_factory):
    t = term_factory(["-server", zk_server.address])
    s = t.wait_for(prompt(zk_server, 0))
    assert "Welcome to ZooKeeper!" in s and "JLine support is enabled" in s
    assert "WatchedEvent state:SyncConnected type:None path:null" in s
    t.line("create /it_prompt hello")
    s = t.wait_for(prompt(zk_server, 1))
    assert "Created /it_prompt" in s
    t.line("get /it_prompt")
    s = t.wait_for(prompt(zk_server, 2))
    assert "\nhello\n" in s
    t.line("")  # an empty line does not count
    t.line("frobnicate")
    s = t.wait_for(prompt(zk_server, 3))
    assert "Command not found: Command not found frobnicate" in s
    t.line("history")
    s = t.wait_for(prompt(zk_server, 4))
    assert "0 - create /it_prompt hello\n1 - get /it_prompt\n2 - frobnicate\n3 - history" in s
    t.line("close")
    t.wait_for(prompt(zk_server, 5, "CLOSED"))
    t.line("ls /")
    s = t.wait_for(prompt(zk_server, 6, "CLOSED"))
    assert "Not connected" in s
    t.line("quit")
    t.wait_for(r"Pane is dead|\[exited\]|^$", timeout=SCREEN_TIMEOUT)


def test_history_survives_restart(zk_server, term_factory):
    t = term_factory(["-server", zk_server.address])
    t.wait_for(prompt(zk_server, 0))
    t.line("create /it_hist one")
    t.wait_for(prompt(zk_server, 1))
    t.line("get /it_hist")
    t.wait_for(prompt(zk_server, 2))
    t.line("quit")
    hist = term_factory.home / "history"
    wait_until(lambda: hist.exists() and "get /it_hist" in hist.read_text(), SCREEN_TIMEOUT,
               what="the history file")
    t2 = term_factory(["-server", zk_server.address])
    t2.wait_for(prompt(zk_server, 0))
    t2.key("Up")
    t2.wait_for(prompt(zk_server, 0) + re.escape("quit") + "$")
    t2.key("Up")
    t2.wait_for(prompt(zk_server, 0) + re.escape("get /it_hist") + "$")
    t2.key("Up")
    t2.wait_for(prompt(zk_server, 0) + re.escape("create /it_hist one") + "$")
    t2.key("Down")
    t2.key("Enter")
    s = t2.wait_for(prompt(zk_server, 1))
    assert "\none\n" in s  # the recalled `get /it_hist` ran


def test_tab_completes_commands_and_paths(zk_server, term_factory):
    assert zk_cli(zk_server, "create", "/it_complete_node_abc", "data").returncode == 0
    assert zk_cli(zk_server, "create", "/it_complete_node_abc/child_1", "kid").returncode == 0
    t = term_factory(["-server", zk_server.address])
    t.wait_for(prompt(zk_server, 0))
    t.type("getAllCh")
    t.key("Tab")
    t.wait_for(prompt(zk_server, 0) + re.escape("getAllChildrenNumber") + " ?$")
    t.key("C-u")
    t.type("get /it_complete_no")
    t.key("Tab")
    t.wait_for(prompt(zk_server, 0) + re.escape("get /it_complete_node_abc") + "$")
    t.type("/ch")
    t.key("Tab")
    t.wait_for(prompt(zk_server, 0) + re.escape("get /it_complete_node_abc/child_1") + "$")
    t.key("Enter")
    s = t.wait_for(prompt(zk_server, 1))
    assert "\nkid\n" in s


def test_watch_event_printed_at_prompt(zk_server, term_factory):
    assert zk_cli(zk_server, "create", "/it_watch", "v0").returncode == 0
    t = term_factory(["-server", zk_server.address])
    t.wait_for(prompt(zk_server, 0))
    t.line("get -w /it_watch")
    t.wait_for(prompt(zk_server, 1))
    # the shell is idle at its prompt; another client changes the node
    assert zk_cli(zk_server, "set", "/it_watch", "v1").returncode == 0
    s = t.wait_for(r"WatchedEvent state:SyncConnected type:NodeDataChanged path:/it_watch")
    assert s.rstrip().endswith(f"[zk: {zk_server.address}(CONNECTED) 1]"), s
    assert "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/it_watch\n" in s
    # the prompt still works afterwards
    t.line("get /it_watch")
    s = t.wait_for(prompt(zk_server, 2))
    assert "\nv1\n" in s


def test_failover_to_the_next_server(server_factory, term_factory):
    a = server_factory(name="a")
    b = server_factory(name="b")
    assert zk_cli(b, "create", "/only_on_b", "b").returncode == 0
    hosts = f"{a.address},{b.address}"
    # A short session, so that even when B refuses the session outright (it refuses a
    # client that has seen a later zxid than its own) the shell gives it up quickly.
    t = term_factory(["-timeout", "4000", "-server", hosts])
    t.wait_for(prompt(a, 0, host=hosts))
    t.line("create -e /eph_on_a x")
    t.wait_for(prompt(a, 1, host=hosts))
    a.stop()
    s = t.wait_for(r"zk: connected to " + re.escape(b.address) + r"; new session 0x[0-9a-f]+")
    assert "WatchedEvent state:Disconnected type:None path:null" in s
    assert re.search(r"zk: lost the connection to " + re.escape(a.address) + r" \(.*\); trying "
                     + re.escape(b.address), s), s
    assert "WatchedEvent state:Expired type:None path:null" in s
    assert re.search(r"zk: session 0x[0-9a-f]+ has expired; opening a new session", s), s
    order = [s.index("state:Disconnected"), s.index("zk: lost the connection"), s.index("state:Expired"),
             s.rindex("state:SyncConnected"), s.index("zk: connected to")]
    assert order == sorted(order), s
    t.line("ls /")
    s = t.wait_for(prompt(a, 2, host=hosts))
    assert "[only_on_b, zookeeper]" in s


@pytest.mark.skipif(ZK_TARGET != "zk", reason="restarts the target as `zk server` on its data directory")
def test_reconnect_to_restarted_server_resumes_session(server_factory, term_factory):
    srv = server_factory(name="restart")
    t = term_factory(["-server", srv.address])
    t.wait_for(prompt(srv, 0))
    t.line("create -e /it_resume_eph x")
    t.wait_for(prompt(srv, 1))
    srv.stop()
    t.wait_for(r"zk: lost the connection to " + re.escape(srv.address))
    # the same server on the same data directory and port
    log = open(srv.workdir / "restart.log", "ab")
    proc = subprocess.Popen([ZK_BIN, "server", "--config", str(srv.cfg_path)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=str(srv.workdir), start_new_session=True)
    again = Server(srv.kind, "restarted", srv.workdir, srv.port, srv.cfg_path, srv.data_dir, proc,
                   srv.workdir / "restart.log")
    try:
        _wait_ready(again, 60)
        s = t.wait_for(r"zk: connected to " + re.escape(srv.address) + r"; session 0x[0-9a-f]+ resumed", timeout=60)
        assert "state:Expired" not in s
        t.line("getEphemerals")
        s = t.wait_for(prompt(srv, 2))
        assert "[/it_resume_eph]" in s
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        log.close()
