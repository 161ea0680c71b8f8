"""Four-letter words against the target, side by side with Apache ZooKeeper 3.8.

Both servers get the same state through one kazoo client each (same nodes, same
ephemeral, same watches), then each command's output is checked against a shape regex
and, where the value is deterministic, against Apache's output.
"""

from __future__ import annotations

import re
import threading

import pytest
from kazoo.client import KazooClient

from conftest import ZK_TARGET, four_letter

WHITELIST_REFUSAL = "{} is not executed because it is not in the whitelist.\n"

SRVR_RE = re.compile(
    r"Zookeeper version: (?P<version>[^\n]+), built on [^\n]+\n"
    r"Latency min/avg/max: \d+/\d+\.\d+/\d+\n"
    r"Received: (?P<received>\d+)\n"
    r"Sent: (?P<sent>\d+)\n"
    r"Connections: (?P<connections>\d+)\n"
    r"Outstanding: \d+\n"
    r"Zxid: 0x[0-9a-f]+\n"
    r"Mode: standalone\n"
    r"Node count: (?P<nodes>\d+)\n"
)
CLIENT_BRIEF = r" /127\.0\.0\.1:\d+\[\d+\]\(queued=\d+,recved=\d+,sent=\d+\)\n"
CONS_LINE_RE = re.compile(
    r" /127\.0\.0\.1:\d+\[[0-9a-f]+\]\(queued=\d+,recved=\d+,sent=\d+"
    r"(?P<session>,sid=0x[0-9a-f]+,lop=\w+,est=\d+,to=\d+(,lcxid=0x[0-9a-f]+)?,lzxid=0x[0-9a-f]+,"
    r"lresp=\d+,llat=\d+,minlat=\d+,avglat=\d+,maxlat=\d+)?\)")
STAT_RE = re.compile(
    r"Zookeeper version: [^\n]+, built on [^\n]+\n"
    r"Clients:\n(?P<clients>(" + CLIENT_BRIEF + r")+)\n"
    r"Latency min/avg/max: \d+/\d+\.\d+/\d+\n"
    r"Received: \d+\nSent: \d+\nConnections: \d+\nOutstanding: \d+\nZxid: 0x[0-9a-f]+\n"
    r"Mode: standalone\nNode count: \d+\n")

ENVI_KEYS = ["zookeeper.version", "host.name", "java.version", "java.vendor", "java.home", "java.class.path",
             "java.library.path", "java.io.tmpdir", "java.compiler", "os.name", "os.arch", "os.version",
             "user.name", "user.home", "user.dir", "os.memory.free", "os.memory.max", "os.memory.total"]
CONF_KEYS = ["clientPort", "secureClientPort", "dataDir", "dataDirSize", "dataLogDir", "dataLogSize", "tickTime",
             "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout", "clientPortListenBacklog", "serverId"]
MNTR_REQUIRED = ["zk_version", "zk_server_state", "zk_avg_latency", "zk_max_latency", "zk_min_latency",
                 "zk_packets_received", "zk_packets_sent", "zk_num_alive_connections", "zk_outstanding_requests",
                 "zk_znode_count", "zk_watch_count", "zk_ephemerals_count", "zk_approximate_data_size",
                 "zk_open_file_descriptor_count", "zk_max_file_descriptor_count", "zk_global_sessions",
                 "zk_local_sessions", "zk_uptime"]


def setup_state(server):
    """Identical state on each server: nodes, one ephemeral, two data watches, one child watch."""
    fired = threading.Event()
    zk = KazooClient(hosts=server.address, timeout=10)
    zk.start(timeout=15)
    zk.create("/fourlw", b"hello")
    zk.create("/fourlw/child", b"0123456789")
    zk.create("/fourlw/eph", b"", ephemeral=True)
    zk.get("/fourlw", watch=lambda e: fired.set())
    zk.exists("/fourlw/missing", watch=lambda e: fired.set())
    zk.get_children("/fourlw", watch=lambda e: fired.set())
    return zk


@pytest.fixture(scope="module")
def pair(zk_server, apache_server):
    clients = [setup_state(apache_server), setup_state(zk_server)]
    yield {"apache": apache_server, "target": zk_server, "sessions": [c.client_id[0] for c in clients]}
    for c in clients:
        c.stop()
        c.close()


def both(pair, cmd):
    return four_letter(pair["apache"].port, cmd), four_letter(pair["target"].port, cmd)


def mntr_dict(text):
    d = {}
    for line in text.splitlines():
        assert re.fullmatch(r"zk_\w+\t\S.*", line), f"bad mntr line {line!r}"
        k, v = line.split("\t", 1)
        d[k] = v
    return d


# --------------------------------------------------------------------------------------


def test_ruok(pair):
    a, t = both(pair, "ruok")
    assert a == "imok"
    assert t == "imok"


def test_isro(pair):
    a, t = both(pair, "isro")
    assert a == "rw"
    assert t == "rw"


def test_srvr(pair):
    a, t = both(pair, "srvr")
    ma, mt = SRVR_RE.fullmatch(a), SRVR_RE.fullmatch(t)
    assert ma, a
    assert mt, f"target srvr output does not have Apache's shape:\n{t}"
    assert mt["nodes"] == ma["nodes"], (a, t)
    assert int(mt["connections"]) >= 1
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[\w.]+)?(-\S+)?", mt["version"]), mt["version"]


def test_stat(pair):
    a, t = both(pair, "stat")
    ma, mt = STAT_RE.fullmatch(a), STAT_RE.fullmatch(t)
    assert ma, a
    assert mt, f"target stat output does not have Apache's shape:\n{t}"
    # the kazoo client and this 4lw connection at least
    assert len(mt["clients"].splitlines()) >= 2, t
    # stat = srvr + Clients block
    assert t.startswith("Zookeeper version: ")
    assert t.splitlines()[-1] == a.splitlines()[-1]  # Node count


def test_cons(pair):
    a, t = both(pair, "cons")
    for name, out in (("apache", a), ("target", t)):
        assert out.endswith("\n\n"), (name, out)
        lines = out[:-2].split("\n")
        for line in lines:
            assert CONS_LINE_RE.fullmatch(line), f"{name}: bad cons line {line!r}"
        with_session = [CONS_LINE_RE.fullmatch(x)["session"] for x in lines if CONS_LINE_RE.fullmatch(x)["session"]]
        assert len(with_session) >= 1, (name, out)
        assert any("sid=0x" in x for x in lines) and any("sid=" not in x for x in lines), (name, out)
    sid = f"sid=0x{pair['sessions'][1]:x},"
    assert sid in t, f"target session {sid} not listed in cons:\n{t}"


def test_conf(pair):
    a, t = both(pair, "conf")
    def parse(out):
        assert out.endswith("\n")
        return dict(line.split("=", 1) for line in out.splitlines())
    ca, ct = parse(a), parse(t)
    assert list(ca) == CONF_KEYS
    assert list(ct) == CONF_KEYS, t
    assert ct["clientPort"] == str(pair["target"].port)
    assert ct["dataDir"] == str(pair["target"].data_dir / "version-2")
    assert ct["dataLogDir"] == str(pair["target"].data_dir / "version-2")
    for k in ("secureClientPort", "tickTime", "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout",
              "clientPortListenBacklog", "serverId"):
        assert ct[k] == ca[k], (k, ca[k], ct[k])
    assert ct["dataDirSize"].isdigit() and ct["dataLogSize"].isdigit()


def test_envi(pair):
    a, t = both(pair, "envi")
    for name, out in (("apache", a), ("target", t)):
        lines = out.splitlines()
        assert lines[0] == "Environment:", (name, out)
        keys = [line.split("=", 1)[0] for line in lines[1:]]
        assert keys == ENVI_KEYS, (name, keys)
        env = dict(line.split("=", 1) for line in lines[1:])
        for k in ("os.memory.free", "os.memory.max", "os.memory.total"):
            assert re.fullmatch(r"\d+MB", env[k]), (name, k, env[k])
    ta = dict(x.split("=", 1) for x in a.splitlines()[1:])
    tt = dict(x.split("=", 1) for x in t.splitlines()[1:])
    assert tt["zookeeper.version"].split(",")[0] and ", built on " in tt["zookeeper.version"]
    assert tt["os.name"] == ta["os.name"] and tt["user.name"] == ta["user.name"]


def test_wchs(pair):
    a, t = both(pair, "wchs")
    rx = re.compile(r"(\d+) connections watching (\d+) paths\nTotal watches:(\d+)\n")
    assert rx.fullmatch(a), a
    assert rx.fullmatch(t), t
    assert t == a  # 1 connection watching 2 paths (/fourlw, /fourlw/missing), 2 watches


def _watch_table(out, key_re, val_re):
    assert out.endswith("\n\n") or out == "\n", repr(out)
    table = {}
    cur = None
    for line in out.rstrip("\n").split("\n"):
        if line.startswith("\t"):
            assert cur is not None and re.fullmatch(val_re, line[1:]), repr(line)
            table[cur].append(line[1:])
        else:
            assert re.fullmatch(key_re, line), repr(line)
            cur = line
            table[cur] = []
    return table


def test_wchc(pair):
    a, t = both(pair, "wchc")
    ta = _watch_table(a, r"0x[0-9a-f]+", r"/\S*")
    tt = _watch_table(t, r"0x[0-9a-f]+", r"/\S*")
    assert sorted(map(sorted, ta.values())) == [["/fourlw", "/fourlw/missing"]]
    assert sorted(map(sorted, tt.values())) == [["/fourlw", "/fourlw/missing"]], t
    assert list(tt) == [f"0x{pair['sessions'][1]:x}"]


def test_wchp(pair):
    a, t = both(pair, "wchp")
    ta = _watch_table(a, r"/\S*", r"0x[0-9a-f]+")
    tt = _watch_table(t, r"/\S*", r"0x[0-9a-f]+")
    assert sorted(ta) == ["/fourlw", "/fourlw/missing"]
    assert sorted(tt) == ["/fourlw", "/fourlw/missing"], t
    assert all(v == [f"0x{pair['sessions'][1]:x}"] for v in tt.values()), t


def test_dump(pair):
    a, t = both(pair, "dump")
    rx = re.compile(
        r"SessionTracker dump:\n"
        r"Session Sets \(\d+\)/\(\d+\):\n"
        r"(\d+ expire at [^\n]+:\n(\t0x[0-9a-f]+\n)*)*"
        r"ephemeral nodes dump:\n"
        r"Sessions with Ephemerals \((?P<n>\d+)\):\n"
        r"(?P<eph>(0x[0-9a-f]+:\n(\t/\S*\n)+)*)"
        r"(Connections dump:\n.*)?", re.S)
    ma, mt = rx.fullmatch(a), rx.fullmatch(t)
    assert ma, a
    assert mt, f"target dump output does not have Apache's shape:\n{t}"
    assert mt["n"] == "1", t
    assert mt["eph"] == f"0x{pair['sessions'][1]:x}:\n\t/fourlw/eph\n", t
    assert f"\t0x{pair['sessions'][1]:x}\n" in t


def test_dirs(pair):
    a, t = both(pair, "dirs")
    rx = re.compile(r"datadir_size: \d+\nlogdir_size: \d+\n")
    assert rx.fullmatch(a), a
    assert rx.fullmatch(t), t


def test_mntr(pair):
    a, t = both(pair, "mntr")
    ma, mt = mntr_dict(a), mntr_dict(t)
    assert list(ma)[:2] == ["zk_version", "zk_server_state"]
    assert list(mt)[:2] == ["zk_version", "zk_server_state"], t
    missing = [k for k in MNTR_REQUIRED if k not in mt]
    assert not missing, f"target mntr lacks {missing}"
    assert mt["zk_server_state"] == "standalone"
    for k in ("zk_znode_count", "zk_ephemerals_count", "zk_watch_count", "zk_approximate_data_size",
              "zk_global_sessions", "zk_local_sessions", "zk_outstanding_requests"):
        assert mt[k] == ma[k], (k, ma[k], mt[k])
    for k in MNTR_REQUIRED[2:]:
        assert re.fullmatch(r"-?\d+(\.\d+)?", mt[k]), (k, mt[k])
    assert re.fullmatch(r"\d+\.\d+", mt["zk_avg_latency"]), mt["zk_avg_latency"]
    assert int(mt["zk_num_alive_connections"]) >= 2  # kazoo + this 4lw connection


def test_unknown_word_closes_silently(pair):
    a, t = both(pair, "xyzw")
    assert a == ""
    assert t == ""


def test_gtmk(pair):
    a, t = both(pair, "gtmk")
    assert re.fullmatch(r"\d+", a), a
    assert t == a


def test_crst_srst(pair):
    # last: these reset the counters the other tests look at
    a, t = both(pair, "crst")
    assert a == "Connection stats reset.\n"
    assert t == "Connection stats reset.\n"
    a, t = both(pair, "srst")
    assert a == "Server stats reset.\n"
    assert t == "Server stats reset.\n"
    a, t = both(pair, "srvr")
    ma, mt = SRVR_RE.fullmatch(a), SRVR_RE.fullmatch(t)
    assert ma and mt, (a, t)
    assert int(mt["received"]) <= 5, t  # counters restarted
    assert "Latency min/avg/max: 0/0.0/0\n" in a
    assert "Latency min/avg/max: 0/0.0/0\n" in t


# --------------------------------------------------------------------------------------
# whitelist


@pytest.mark.parametrize("whitelist,allowed,refused", [
    ("srvr", ["srvr"], ["ruok", "stat", "mntr", "conf", "cons", "envi", "wchs", "dump", "isro", "dirs", "crst",
                        "srst", "gtmk"]),
    (None, ["srvr"], ["ruok", "stat", "mntr", "isro", "conf"]),               # default: only srvr
    (" stat , ruok ", ["ruok", "stat", "srvr"], ["mntr", "conf", "envi"]),   # trimmed; srvr always allowed
])
def test_whitelist(server_factory, whitelist, allowed, refused):
    cfg = {"4lw.commands.whitelist": whitelist}
    servers = {"apache": server_factory("apache", name="wl_apache", extra_cfg=cfg),
               "target": server_factory(ZK_TARGET, name="wl_target", extra_cfg=cfg)}
    for name, s in servers.items():
        for cmd in refused:
            assert s.fourlw(cmd) == WHITELIST_REFUSAL.format(cmd), (name, cmd)
        for cmd in allowed:
            out = s.fourlw(cmd)
            assert "not in the whitelist" not in out and out, (name, cmd, out)
        assert s.fourlw("xyzw") == ""
    if "ruok" in allowed:
        assert servers["target"].fourlw("ruok") == "imok"
