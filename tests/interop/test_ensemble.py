"""Stock clients against a 3-server ensemble of the target kind (zk, or Apache ZooKeeper 3.8
with ZK_TARGET=apache): fixture ``ensemble`` in conftest.py (tickTime=200, initLimit=10,
syncLimit=5, maxSessionTimeout=20000, loopback ports).

* kazoo with the 3-server connect string: CRUD; an ephemeral node and its session survive a
  kill -9 of the client's server; closing the session removes it on every member.
* watches set through one member fire for changes made through another.
* kazoo Lock (a read-modify-write counter) and Election with one client per member.
* Curator's recipes (CuratorInterop.java, every check) with the 3-server connect string.
* zkCli.sh: create through a follower, read through the other.
* kill -9 of the leader: writes succeed again and srvr shows a new leader within a bound.

The module shares one ensemble; an autouse fixture restarts any member an earlier test left
dead and waits until one member leads and the others follow. Every wait is bounded and
polls (srvr, client state) instead of sleeping.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.protocol.states import EventType
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock

from conftest import FAST_JVM_FLAGS, JAVA, kazoo_clients, wait_until
from test_curator import CHECKS as CURATOR_CHECKS
from test_curator import curator_classpath  # noqa: F401 - pytest fixture
from test_zkcli_compare import run_zkcli

T = 30  # generic bound (seconds) for anything we wait on
SESSION_TIMEOUT = 10  # seconds kazoo asks for (granted: the ensemble allows up to 20)
# Reconnect quickly: kazoo's default backoff doubles without a cap worth the name (3600 s), so
# a few refused attempts during an election would push the next try past the session timeout.
FAST_RETRY = dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5)
FAILOVER_BOUND = 20  # seconds from kill -9 of the leader to a successful write


@pytest.fixture(autouse=True)
def healthy(ensemble):
    """Every member running and serving (one leader, the others followers) before each test."""
    for sid in ensemble.sids:
        s = ensemble.servers.get(sid)
        if s is None or not s.alive():
            ensemble.spawn(sid)
    ensemble.wait_serving(ensemble.sids)
    return ensemble


@pytest.fixture
def make_client(ensemble):
    with kazoo_clients(T) as new:

        def make(hosts: str | None = None, sid: int | None = None, **kw) -> KazooClient:
            """A started kazoo client: on one member (sid), or on `hosts` (default: all three)."""
            if sid is not None:
                hosts = ensemble.address(sid)
            kw.setdefault("timeout", SESSION_TIMEOUT)
            kw.setdefault("connection_retry", dict(FAST_RETRY))
            return new(hosts or ensemble.connect_string, **kw)

        yield make


@pytest.fixture
def base(make_client, request):
    path = f"/ens/{request.node.name}-{uuid.uuid4().hex[:8]}"
    make_client().ensure_path(path)
    return path


def connected_sid(ensemble, client: KazooClient) -> int:
    """The member a connected kazoo client talks to (from its socket's peer port)."""
    return ensemble.sid_of_port(client._connection._socket.getpeername()[1])


def followers_first(ensemble, leader: int) -> str:
    """The 3-server connect string with the followers first (for randomize_hosts=False)."""
    order = [s for s in ensemble.sids if s != leader] + [leader]
    return ",".join(ensemble.address(s) for s in order)


def synced_exists(client: KazooClient, path: str):
    """exists() after sync: what the member knows once it has caught up with the leader."""
    client.sync("/")
    return client.exists(path)


# --------------------------------------------------------------------------------------


def test_kazoo_crud_and_ephemeral_survive_kill(ensemble, make_client, base):
    leader = ensemble.wait_serving()
    # The 3-server string, followers first and in order, so the client sits on a follower
    # (test_leader_failover covers losing the leader).
    c = make_client(followers_first(ensemble, leader), randomize_hosts=False)
    victim = connected_sid(ensemble, c)
    assert victim != leader
    states = []
    c.add_listener(states.append)

    p = f"{base}/node"
    assert c.create(p, b"v0") == p
    data, st = c.get(p)
    assert data == b"v0" and st.version == 0
    assert c.set(p, b"v1").version == 1
    assert c.get(p)[0] == b"v1"
    c.create(f"{p}/kid", b"k")
    assert c.get_children(p) == ["kid"]
    c.delete(f"{p}/kid")
    c.delete(p)
    assert c.exists(p) is None

    eph = f"{base}/eph"
    c.create(eph, b"mine", ephemeral=True)
    session = c.client_id[0]
    observer = make_client(sid=leader)
    assert synced_exists(observer, eph).ephemeralOwner == session

    t0 = time.monotonic()
    ensemble.kill(victim)
    # kazoo notices, reconnects to another member and resumes the same session.
    wait_until(lambda: KazooState.SUSPENDED in states, T, what="kazoo to notice the kill")
    wait_until(lambda: c.state == KazooState.CONNECTED and connected_sid(ensemble, c) != victim,
               SESSION_TIMEOUT, what=f"kazoo to reconnect to another member within the session timeout")
    reconnect = time.monotonic() - t0
    print(f"\nreconnected to server.{connected_sid(ensemble, c)} {reconnect:.2f}s after kill -9 "
          f"of server.{victim}")
    assert KazooState.LOST not in states, states
    assert c.client_id[0] == session
    assert c.exists(eph).ephemeralOwner == session
    assert synced_exists(observer, eph).ephemeralOwner == session
    c.set(eph, b"still mine")

    # The killed member comes back, catches up and knows the ephemeral too.
    ensemble.restart(victim)
    back = make_client(sid=victim)
    st = synced_exists(back, eph)
    assert st is not None and st.ephemeralOwner == session
    assert back.get(eph)[0] == b"still mine"

    # Closing the session removes the ephemeral on every member.
    c.stop()
    for sid in ensemble.sids:
        other = make_client(sid=sid)
        assert synced_exists(other, eph) is None, f"ephemeral still on server.{sid} after close"
        assert other.exists(base) is not None


def test_kazoo_watches_across_servers(make_client, base):
    a = make_client(sid=1)
    b = make_client(sid=2)
    p = f"{base}/w"
    b.create(p, b"0")
    assert synced_exists(a, p) is not None

    events = {k: [] for k in ("data", "child", "created", "deleted")}
    fired = {k: threading.Event() for k in events}

    def recorder(kind):
        def cb(ev):
            events[kind].append(ev)
            fired[kind].set()
        return cb

    assert a.get(p, watch=recorder("data"))[0] == b"0"
    assert a.get_children(p, watch=recorder("child")) == []
    assert a.exists(f"{base}/later", watch=recorder("created")) is None

    b.set(p, b"1")
    assert fired["data"].wait(T), "data watch did not fire"
    assert [(e.type, e.path) for e in events["data"]] == [(EventType.CHANGED, p)]
    # the event comes after a's member applied the change
    assert a.get(p)[0] == b"1"

    b.create(f"{p}/kid", b"")
    assert fired["child"].wait(T), "child watch did not fire"
    assert [(e.type, e.path) for e in events["child"]] == [(EventType.CHILD, p)]
    assert a.get_children(p) == ["kid"]

    b.create(f"{base}/later", b"x")
    assert fired["created"].wait(T), "exists watch did not fire"
    assert [(e.type, e.path) for e in events["created"]] == [(EventType.CREATED, f"{base}/later")]

    assert a.get(f"{p}/kid", watch=recorder("deleted"))[0] == b""
    b.delete(f"{p}/kid")
    assert fired["deleted"].wait(T), "delete watch did not fire"
    assert [(e.type, e.path) for e in events["deleted"]] == [(EventType.DELETED, f"{p}/kid")]
    # one-shot: nothing more arrived on the data watch
    assert len(events["data"]) == 1


def test_kazoo_lock_and_election(ensemble, make_client, base):
    clients = [make_client(sid=sid) for sid in ensemble.sids]

    # --- Lock: a read-modify-write counter on each client's own member (no sync): correct
    # only if the lock excludes and each member applies txns in order.
    counter = f"{base}/counter"
    clients[0].create(counter, b"0")
    rounds = 8
    inside = [0]
    max_inside = [0]
    guard = threading.Lock()
    errors = []

    def worker(i, c):
        try:
            lock = Lock(c, f"{base}/lock", identifier=f"w{i}")
            for _ in range(rounds):
                assert lock.acquire(timeout=T), f"w{i}: acquire timed out"
                try:
                    with guard:
                        inside[0] += 1
                        max_inside[0] = max(max_inside[0], inside[0])
                    v = int(c.get(counter)[0])
                    c.set(counter, str(v + 1).encode())
                    with guard:
                        inside[0] -= 1
                finally:
                    lock.release()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(3 * T)
        assert not t.is_alive(), "lock worker still running"
    assert not errors, errors
    assert max_inside[0] == 1
    assert int(make_client().get(counter)[0]) == rounds * len(clients)

    # --- Election: one leader among three, and failover when its client stops.
    epath = f"{base}/election"
    leaders = []
    active = set()
    max_active = [0]
    release = {f"c{i}": threading.Event() for i in range(len(clients))}
    elections = {f"c{i}": Election(c, epath, identifier=f"c{i}") for i, c in enumerate(clients)}
    by_name = {f"c{i}": c for i, c in enumerate(clients)}
    eerrors = []

    def lead(name):
        with guard:
            active.add(name)
            max_active[0] = max(max_active[0], len(active))
            leaders.append(name)
        release[name].wait(3 * T)
        with guard:
            active.discard(name)

    def contend(name):
        try:
            elections[name].run(lead, name)
        except Exception as e:  # noqa: BLE001 - the stopped leader cannot release its node
            eerrors.append((name, e))

    ethreads = [threading.Thread(target=contend, args=(n,), daemon=True) for n in elections]
    for t in ethreads:
        t.start()
    wait_until(lambda: leaders, T, what="an election leader")
    watcher = make_client()
    wait_until(lambda: len(Election(watcher, epath).contenders()) == 3, T, what="3 contenders")
    first = leaders[0]
    assert leaders == [first] and max_active[0] == 1
    assert Election(watcher, epath).contenders()[0] == first

    # The leader's client goes away (its session closes): exactly one other takes over.
    with guard:
        active.discard(first)  # it is gone, whatever its thread still thinks
    by_name[first].stop()
    wait_until(lambda: len(leaders) >= 2, T, what="a new election leader after the leader's client stopped")
    second = leaders[1]
    assert second != first and len(leaders) == 2 and max_active[0] == 1
    contenders = wait_until(lambda: [cs for cs in [Election(watcher, epath).contenders()] if len(cs) == 2],
                            T, what="2 contenders")[0]
    assert contenders[0] == second and first not in contenders

    for ev in release.values():
        ev.set()
    for t in ethreads:
        t.join(T)
        assert not t.is_alive(), "election thread still running"
    assert max_active[0] == 1
    assert all(name == first for name, _ in eerrors), eerrors


def test_curator_recipes(ensemble, curator_classpath, tmp_path):  # noqa: F811
    checks = list(CURATOR_CHECKS)
    assert {"mutex", "leaderlatch", "atomiclong"} <= set(checks)
    cmd = [JAVA, *FAST_JVM_FLAGS, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
           "-Dinterop.timeoutSeconds=150", "-cp", curator_classpath, "CuratorInterop",
           ensemble.connect_string, *checks]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = p.stdout
    (tmp_path / "stdout").write_text(out)
    (tmp_path / "stderr").write_text(p.stderr)
    print("\n" + out.strip())
    assert p.returncode == 0, f"CuratorInterop exited {p.returncode}\n--- stdout\n{out}\n" \
                              f"--- stderr (tail)\n{p.stderr[-8000:]}"
    for check in checks:
        assert any(line.startswith(f"OK {check} ") for line in out.splitlines()), out
    assert "FAIL" not in out, out


def test_zkcli_across_members(ensemble, make_client):
    leader = ensemble.wait_serving()
    f1, f2 = [s for s in ensemble.sids if s != leader]
    r = run_zkcli(ensemble.address(f1), args=["create", "/x", "data"])
    assert r.rc == 0 and "Created /x" in r.stdout + r.stderr, r  # 3.8 prints it on stderr
    # another member: sync first (reads are local), then get
    r = run_zkcli(ensemble.address(f2), stdin="sync /x\nget /x\nquit\n")
    assert r.rc == 0, r
    lines = [ln.strip() for ln in r.stdout.splitlines()]  # piped: no prompt, no echo
    assert "Sync is OK" in lines and "data" in lines, r
    assert "Node does not exist" not in r.stdout, r.stdout
    c = make_client(sid=leader)
    assert c.get("/x")[0] == b"data"
    c.delete("/x")


def test_leader_failover(ensemble, make_client, base):
    old = ensemble.wait_serving()
    # The 3-server string with the leader first: the client sits on the leader.
    order = [old] + [s for s in ensemble.sids if s != old]
    c = make_client(",".join(ensemble.address(s) for s in order), randomize_hosts=False)
    assert connected_sid(ensemble, c) == old
    session = c.client_id[0]
    p = f"{base}/f"
    c.create(p, b"before")
    eph = f"{base}/eph"
    c.create(eph, b"", ephemeral=True)
    states = []
    c.add_listener(states.append)

    t0 = time.monotonic()
    ensemble.kill(old)

    def write():
        c.set_async(p, b"after").get(timeout=5)
        return True

    wait_until(write, FAILOVER_BOUND, interval=0.05, what="a kazoo write to succeed after kill -9 of the leader")
    t_write = time.monotonic() - t0
    rest = [s for s in ensemble.sids if s != old]
    new = ensemble.wait_serving(rest, timeout=FAILOVER_BOUND)
    t_srvr = time.monotonic() - t0
    print(f"\nkill -9 of leader server.{old}: write ok after {t_write:.2f}s, srvr shows leader "
          f"server.{new} after {t_srvr:.2f}s")
    assert new != old
    assert KazooState.LOST not in states, states
    assert c.client_id[0] == session
    assert c.get(p)[0] == b"after"
    assert c.exists(eph).ephemeralOwner == session

    # The old leader comes back as a follower of the new one and catches up.
    assert ensemble.restart(old) == new
    assert ensemble.mode(old) == "follower"
    back = make_client(sid=old)
    back.sync("/")
    assert back.get(p)[0] == b"after"
    assert back.exists(eph).ephemeralOwner == session
