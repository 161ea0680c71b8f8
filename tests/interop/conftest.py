"""Shared helpers and fixtures for the zk interoperability suite.

Two kinds of server can be started:

* ``apache`` - Apache ZooKeeper 3.8 standalone, from the Debian ``zookeeper`` /
  ``libzookeeper-java`` packages (``org.apache.zookeeper.server.ZooKeeperServerMain``).
* ``zk``     - our server: ``$ZK_BIN server --config <zoo.cfg>``
  (ZK_BIN defaults to <repo>/target/release/zk).

The "target" server (fixtures ``zk_server`` / ``target_factory``) is ``zk`` unless
``ZK_TARGET=apache`` is set, in which case Apache ZooKeeper is used, so every test
can be validated against the reference implementation.

Both servers get the same zoo.cfg (dataDir, clientPort, tickTime=2000,
4lw.commands.whitelist=*, admin.enableServer=false, plus per-test extras).
Readiness is detected by polling the ``ruok`` four-letter word until it
answers ``imok`` (bounded). Servers are always stopped at teardown (SIGTERM,
then SIGKILL after a bounded wait). Logs stay in the pytest tmp dir and the tail
of every live server's log is attached to the report of a failing test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INTEROP_DIR = Path(__file__).resolve().parent

ZK_BIN = os.environ.get("ZK_BIN", str(REPO_ROOT / "target" / "release" / "zk"))
ZK_TARGET = os.environ.get("ZK_TARGET", "zk").strip().lower() or "zk"
if ZK_TARGET not in ("zk", "apache"):
    raise RuntimeError(f"ZK_TARGET must be 'zk' or 'apache', not {ZK_TARGET!r}")

JAVA = os.environ.get("JAVA", shutil.which("java") or "/usr/bin/java")
JAVAC = os.environ.get("JAVAC", shutil.which("javac") or "/usr/bin/javac")
JAVA_SHARE = Path(os.environ.get("ZK_JAVA_SHARE", "/usr/share/java"))
ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
CLI_MT = os.environ.get("CLI_MT", shutil.which("cli_mt") or "/usr/lib/zookeeper/bin/cli_mt")

# JVM flags that make short-lived JVMs (servers and zkCli) start faster.
FAST_JVM_FLAGS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Xss1m"]

START_TIMEOUT = float(os.environ.get("ZK_START_TIMEOUT", "60"))
STOP_TIMEOUT = 10.0


# --------------------------------------------------------------------------------------
# small helpers


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def kazoo_clients(start_timeout: float):
    """Yields new(hosts, **kw): a started KazooClient on `hosts`; every client made is
    stopped and closed when the block ends (test_kazoo.py's and test_ensemble.py's fixtures)."""
    from kazoo.client import KazooClient

    clients = []

    def new(hosts: str, **kw):
        c = KazooClient(hosts=hosts, **kw)
        c.start(timeout=start_timeout)
        clients.append(c)
        return c

    try:
        yield new
    finally:
        for c in clients:
            try:
                c.stop()
                c.close()
            except Exception:  # noqa: BLE001
                pass


def four_letter(port: int, cmd: str, host: str = "127.0.0.1", timeout: float = 10.0) -> str:
    """Send a four-letter word on a fresh connection and read until the server closes."""
    assert len(cmd) == 4, cmd
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(cmd.encode("ascii"))
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"4lw {cmd} on port {port}: server did not close the connection")
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode("utf-8", "replace")


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; raise TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polled condition may raise while not ready
            last_exc = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc!r})")
        time.sleep(interval)


def java_classpath(*jar_names: str) -> str:
    """Classpath of Debian jars from /usr/share/java (the jars' manifests pull in their deps)."""
    paths = []
    for name in jar_names:
        p = JAVA_SHARE / name
        if not p.exists():
            raise FileNotFoundError(f"missing jar {p} (is the Debian package installed?)")
        paths.append(str(p))
    return os.pathsep.join(paths)


def apache_server_classpath() -> str:
    # zookeeper.jar's manifest Class-Path references zookeeper-jute, netty, slf4j-api, ...
    # slf4j-log4j12 + log4j-1.2 give the server a real (quiet, file) logger.
    return java_classpath("zookeeper.jar", "zookeeper-jute.jar", "slf4j-log4j12.jar", "log4j-1.2.jar")


def write_zoo_cfg(path: Path, data_dir: Path, port: int, extra: dict | None = None) -> Path:
    cfg = {
        "dataDir": str(data_dir),
        "clientPort": str(port),
        "tickTime": "2000",
        "4lw.commands.whitelist": "*",
        "admin.enableServer": "false",
    }
    for k, v in (extra or {}).items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = str(v)
    path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
    return path


# --------------------------------------------------------------------------------------
# server processes

_LIVE_SERVERS: list["Server"] = []
_LIVE_LOCK = threading.Lock()


class Server:
    """A running ZooKeeper-compatible server (Apache or ours)."""

    def __init__(self, kind: str, name: str, workdir: Path, port: int, cfg_path: Path,
                 data_dir: Path, proc: subprocess.Popen, log_path: Path):
        self.kind = kind
        self.name = name
        self.workdir = workdir
        self.port = port
        self.cfg_path = cfg_path
        self.data_dir = data_dir
        self.proc = proc
        self.log_path = log_path
        self.host = "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    hosts = address  # kazoo style

    def fourlw(self, cmd: str, timeout: float = 10.0) -> str:
        return four_letter(self.port, cmd, timeout=timeout)

    def log_tail(self, max_chars: int = 20000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"<cannot read {self.log_path}: {e}>"
        return text[-max_chars:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self):
        with _LIVE_LOCK:
            if self in _LIVE_SERVERS:
                _LIVE_SERVERS.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=STOP_TIMEOUT)
        if getattr(self, "_logf", None):
            self._logf.close()
            self._logf = None

    def __repr__(self):
        return f"<Server {self.name} {self.kind} {self.address} pid={self.proc.pid}>"


def _probe_ready(server: Server) -> tuple[bool, str]:
    """Ready = the listener answers ruok (imok, or the whitelist refusal) and, when srvr is
    allowed, srvr no longer says 'not currently serving requests' (Apache answers ruok with
    imok a little before the data tree is loaded)."""
    r = four_letter(server.port, "ruok", timeout=2.0)
    if r != "imok" and "not in the whitelist" not in r:
        return False, f"ruok -> {r!r}"
    s = four_letter(server.port, "srvr", timeout=2.0)
    if "not in the whitelist" in s or "Zookeeper version:" in s:
        return True, s
    return False, f"srvr -> {s!r}"


def _wait_ready(server: Server, timeout: float):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.kind} server exited with code {server.proc.returncode} before answering ruok\n"
                f"--- log {server.log_path} ---\n{server.log_tail()}")
        try:
            ok, last = _probe_ready(server)
            if ok:
                return
        except OSError as e:
            last = repr(e)
        time.sleep(0.05)
    server.stop()
    raise TimeoutError(f"{server.kind} server on port {server.port} was not ready (ruok/srvr) within "
                       f"{timeout}s (last answer {last!r})\n--- log {server.log_path} ---\n{server.log_tail()}")


def start_server(kind: str, basedir: Path, name: str | None = None, extra_cfg: dict | None = None,
                 port: int | None = None) -> Server:
    """Start a server of ``kind`` ('apache' or 'zk') in a fresh subdir of basedir, wait for ruok."""
    name = name or kind
    workdir = Path(basedir) / f"{name}-{time.monotonic_ns()}"
    workdir.mkdir(parents=True)
    data_dir = workdir / "data"
    data_dir.mkdir()
    log_path = workdir / "server.log"

    last_err = None
    for _attempt in range(3):  # the free port may be stolen between probe and bind
        p = port or free_port()
        cfg_path = write_zoo_cfg(workdir / "zoo.cfg", data_dir, p, extra_cfg)
        if kind == "apache":
            log4j = workdir / "log4j.properties"
            level = os.environ.get("ZK_APACHE_LOGLEVEL", "ERROR")
            log4j.write_text(
                f"log4j.rootLogger={level}, F\n"
                "log4j.appender.F=org.apache.log4j.FileAppender\n"
                f"log4j.appender.F.File={workdir / 'zookeeper.log'}\n"
                "log4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.F.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n\n")
            cmd = [JAVA, *FAST_JVM_FLAGS, "-Xmx256m",
                   f"-Dlog4j.configuration=file:{log4j}",
                   "-Dzookeeper.jmx.log4j.disable=true",
                   "-cp", apache_server_classpath(),
                   "org.apache.zookeeper.server.ZooKeeperServerMain", str(cfg_path)]
            env = dict(os.environ)
        elif kind == "zk":
            if not (os.path.isfile(ZK_BIN) and os.access(ZK_BIN, os.X_OK)):
                pytest.fail(f"zk binary not found at {ZK_BIN}: build it with `cargo build --release` "
                            f"(or set ZK_BIN, or ZK_TARGET=apache to test against Apache ZooKeeper)")
            cmd = [ZK_BIN, "server", "--config", str(cfg_path)]
            env = dict(os.environ)
            env.setdefault("RUST_BACKTRACE", "1")
        else:
            raise ValueError(kind)

        logf = open(log_path, "ab")
        logf.write(f"$ {' '.join(cmd)}\n".encode())
        logf.flush()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=str(workdir), env=env, start_new_session=True)
        server = Server(kind, name, workdir, p, cfg_path, data_dir, proc, log_path)
        server._logf = logf
        with _LIVE_LOCK:
            _LIVE_SERVERS.append(server)
        try:
            _wait_ready(server, START_TIMEOUT)
            return server
        except RuntimeError as e:
            server.stop()
            last_err = e
            if port is not None or "Address already in use" not in server.log_tail() + \
                    _read(workdir / "zookeeper.log"):
                raise
    raise last_err


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


def start_target(basedir: Path, name: str = "target", extra_cfg: dict | None = None) -> Server:
    return start_server(ZK_TARGET, basedir, name=name, extra_cfg=extra_cfg)


def start_apache(basedir: Path, name: str = "apache", extra_cfg: dict | None = None) -> Server:
    return start_server("apache", basedir, name=name, extra_cfg=extra_cfg)


# --------------------------------------------------------------------------------------
# pytest fixtures and hooks


@pytest.fixture(scope="session")
def target_kind() -> str:
    return ZK_TARGET


@pytest.fixture(scope="module")
def zk_server(tmp_path_factory) -> Server:
    """The server under test (ours, or Apache with ZK_TARGET=apache), shared by a module."""
    s = start_target(tmp_path_factory.mktemp("zk_server"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def apache_server(tmp_path_factory) -> Server:
    """A reference Apache ZooKeeper 3.8 server, shared by a module."""
    s = start_apache(tmp_path_factory.mktemp("apache_server"))
    yield s
    s.stop()


@pytest.fixture
def server_factory(tmp_path):
    """Start extra servers with custom config: factory(kind, extra_cfg=...); stopped at teardown."""
    started = []

    def factory(kind: str = ZK_TARGET, name: str | None = None, extra_cfg: dict | None = None) -> Server:
        s = start_server(kind, tmp_path, name=name, extra_cfg=extra_cfg)
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        with _LIVE_LOCK:
            servers = list(_LIVE_SERVERS)
        for s in servers:
            state = "running" if s.alive() else f"EXITED rc={s.proc.returncode}"
            text = s.log_tail()
            zl = s.workdir / "zookeeper.log"
            if zl.exists():
                text += f"\n--- {zl} ---\n" + _read(zl)[-20000:]
            rep.sections.append((f"server {s.name} ({s.kind} {s.address}, {state}) log {s.log_path}", text))


def pytest_sessionfinish(session, exitstatus):
    # Safety net: never leave servers behind, even if a fixture teardown was skipped.
    with _LIVE_LOCK:
        servers = list(_LIVE_SERVERS)
    for s in servers:
        s.stop()


def pytest_report_header(config):
    return [f"zk interop: ZK_TARGET={ZK_TARGET} ZK_BIN={ZK_BIN}"]


# --------------------------------------------------------------------------------------
# ensembles (test_ensemble.py)
#
# Three (or N) servers of one kind on loopback, each in its own directory under basedir
# (zoo.cfg, data/myid, server.log and, for Apache, zookeeper.log), with free client,
# quorum and election ports. zk runs as `$ZK_BIN server --config <cfg>`, Apache as
# org.apache.zookeeper.server.quorum.QuorumPeerMain <cfg> (log4j level ZK_APACHE_LOGLEVEL,
# default WARN here). Members are Server objects, so a failing test's report carries every
# member's log tail, killed ones included ("EXITED rc=-9").

ENSEMBLE_TICK_MS = 200
ENSEMBLE_INIT_LIMIT = 10
ENSEMBLE_SYNC_LIMIT = 5
# Sessions may last up to 20 s (the default cap would be 20 ticks = 4 s, too tight for a
# client to ride out a kill -9 and a re-election on a loaded 2-core machine).
ENSEMBLE_MAX_SESSION_MS = 20000
ENSEMBLE_TIMEOUT = float(os.environ.get("ZK_ENSEMBLE_TIMEOUT", "60"))  # start / election bound


def free_ports(n: int) -> list[int]:
    """n distinct currently free TCP ports on 127.0.0.1 (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def server_mode(port: int, timeout: float = 2.0) -> str | None:
    """'leader', 'follower', 'observer' or 'standalone' from srvr; None when the server is
    down or not serving."""
    try:
        out = four_letter(port, "srvr", timeout=timeout)
    except OSError:
        return None
    for line in out.splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: "):].strip()
    return None


class Ensemble:
    """N voting members of one kind ('zk' or 'apache'); sids are 1..N."""

    def __init__(self, kind: str, basedir: Path, n: int = 3, extra_cfg: dict | None = None):
        self.kind = kind
        self.n = n
        self.basedir = Path(basedir)
        self.extra_cfg = dict(extra_cfg or {})
        self.servers: dict[int, Server] = {}
        self._choose_ports()

    def _choose_ports(self):
        ports = free_ports(3 * self.n)
        self.client_ports = {sid: ports[3 * (sid - 1)] for sid in self.sids}
        self.quorum_ports = {sid: ports[3 * (sid - 1) + 1] for sid in self.sids}
        self.election_ports = {sid: ports[3 * (sid - 1) + 2] for sid in self.sids}
        self.workdirs = {sid: self.basedir / f"s{sid}-{time.monotonic_ns()}" for sid in self.sids}

    @property
    def sids(self) -> list[int]:
        return list(range(1, self.n + 1))

    def address(self, sid: int) -> str:
        return f"127.0.0.1:{self.client_ports[sid]}"

    @property
    def connect_string(self) -> str:
        return ",".join(self.address(sid) for sid in self.sids)

    def sid_of_port(self, port: int) -> int:
        return next(sid for sid, p in self.client_ports.items() if p == port)

    def _write_files(self, sid: int) -> Path:
        wd = self.workdirs[sid]
        data_dir = wd / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "myid").write_text(f"{sid}\n")
        cfg = {
            "tickTime": ENSEMBLE_TICK_MS,
            "initLimit": ENSEMBLE_INIT_LIMIT,
            "syncLimit": ENSEMBLE_SYNC_LIMIT,
            "maxSessionTimeout": ENSEMBLE_MAX_SESSION_MS,
            "clientPortAddress": "127.0.0.1",
            **self.extra_cfg,
        }
        for o in self.sids:
            cfg[f"server.{o}"] = f"127.0.0.1:{self.quorum_ports[o]}:{self.election_ports[o]}"
        return write_zoo_cfg(wd / "zoo.cfg", data_dir, self.client_ports[sid], cfg)

    def spawn(self, sid: int) -> Server:
        """Start member sid (again) on its files; does not wait."""
        old = self.servers.get(sid)
        if old is not None:
            if old.alive():
                raise RuntimeError(f"server.{sid} is still running")
            old.stop()  # closes its log handle, forgets it
        wd = self.workdirs[sid]
        cfg_path = self._write_files(sid)
        log_path = wd / "server.log"
        if self.kind == "apache":
            log4j = wd / "log4j.properties"
            level = os.environ.get("ZK_APACHE_LOGLEVEL", "WARN")
            log4j.write_text(
                f"log4j.rootLogger={level}, F\n"
                "log4j.appender.F=org.apache.log4j.FileAppender\n"
                f"log4j.appender.F.File={wd / 'zookeeper.log'}\n"
                "log4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.F.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n\n")
            cmd = [JAVA, *FAST_JVM_FLAGS, "-Xmx256m", f"-Dlog4j.configuration=file:{log4j}",
                   "-Dzookeeper.jmx.log4j.disable=true", "-cp", apache_server_classpath(),
                   "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg_path)]
            env = dict(os.environ)
        elif self.kind == "zk":
            if not (os.path.isfile(ZK_BIN) and os.access(ZK_BIN, os.X_OK)):
                pytest.fail(f"zk binary not found at {ZK_BIN}: build it or set ZK_BIN")
            cmd = [ZK_BIN, "server", "--config", str(cfg_path)]
            env = dict(os.environ)
            env.setdefault("RUST_BACKTRACE", "1")
        else:
            raise ValueError(self.kind)
        logf = open(log_path, "ab")
        logf.write(f"$ {' '.join(cmd)}\n".encode())
        logf.flush()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=str(wd), env=env, start_new_session=True)
        s = Server(self.kind, f"ens-s{sid}", wd, self.client_ports[sid], cfg_path, wd / "data", proc,
                   log_path)
        s._logf = logf
        with _LIVE_LOCK:
            _LIVE_SERVERS.append(s)
        self.servers[sid] = s
        return s

    def alive_sids(self) -> list[int]:
        return [sid for sid, s in self.servers.items() if s.alive()]

    def mode(self, sid: int) -> str | None:
        s = self.servers.get(sid)
        if s is None or not s.alive():
            return None
        return server_mode(self.client_ports[sid])

    def modes(self) -> dict[int, str | None]:
        return {sid: self.mode(sid) for sid in self.sids}

    def logs(self) -> str:
        out = []
        for sid, s in sorted(self.servers.items()):
            state = "running" if s.alive() else f"EXITED rc={s.proc.returncode}"
            text = s.log_tail(6000)
            zl = s.workdir / "zookeeper.log"
            if zl.exists():
                text += f"\n--- {zl} ---\n" + _read(zl)[-6000:]
            out.append(f"--- server.{sid} ({state}) {s.log_path} ---\n{text}")
        return "\n".join(out)

    def wait_serving(self, sids=None, timeout: float = ENSEMBLE_TIMEOUT) -> int:
        """Wait until every member in sids (default: the running ones) answers srvr with a
        mode, exactly one of them 'leader' and the rest 'follower'; returns the leader's sid."""
        deadline = time.monotonic() + timeout
        modes = {}
        while True:
            want = list(sids) if sids is not None else self.alive_sids()
            for sid in want:
                s = self.servers.get(sid)
                if s is None or not s.alive():
                    rc = None if s is None else s.proc.returncode
                    raise RuntimeError(f"server.{sid} is not running (rc={rc}) while waiting for the "
                                       f"ensemble to serve\n{self.logs()}")
            modes = {sid: self.mode(sid) for sid in want}
            leaders = [sid for sid, m in modes.items() if m == "leader"]
            if len(leaders) == 1 and all(m in ("leader", "follower") for m in modes.values()):
                return leaders[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.kind} ensemble: no single leader with followers within "
                                   f"{timeout}s (modes {modes})\n{self.logs()}")
            time.sleep(0.05)

    def leader(self) -> int:
        return self.wait_serving()

    def start(self, timeout: float = ENSEMBLE_TIMEOUT) -> "Ensemble":
        for attempt in range(3):  # free ports may be stolen between probe and bind
            for sid in self.sids:
                self.spawn(sid)
            try:
                self.wait_serving(self.sids, timeout)
                return self
            except (RuntimeError, TimeoutError):
                logs = "".join(s.log_tail() + _read(s.workdir / "zookeeper.log") for s in self.servers.values())
                self.stop()
                if attempt == 2 or "Address already in use" not in logs:
                    raise
                self.servers = {}
                self._choose_ports()
        raise AssertionError("unreachable")

    def kill(self, sid: int):
        """kill -9 member sid (its process group) and reap it; its log stays attached."""
        s = self.servers[sid]
        try:
            os.killpg(s.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        s.proc.wait(timeout=STOP_TIMEOUT)

    def restart(self, sid: int, timeout: float = ENSEMBLE_TIMEOUT) -> int:
        """Start a killed member again and wait until it serves (with the others); returns
        the leader's sid."""
        self.spawn(sid)
        return self.wait_serving(timeout=timeout)

    def stop(self):
        for s in list(self.servers.values()):
            s.stop()


def start_ensemble(kind: str, basedir: Path, n: int = 3, extra_cfg: dict | None = None) -> Ensemble:
    return Ensemble(kind, basedir, n, extra_cfg).start()


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> Ensemble:
    """A 3-server ensemble of the target kind, serving (one leader, two followers), shared by a
    module; every member is stopped at teardown."""
    e = Ensemble(ZK_TARGET, tmp_path_factory.mktemp("ensemble"))
    e.start()
    yield e
    e.stop()
