"""kazoo (the Python ZooKeeper client, from PyPI) against the target server.

Every test works under its own base path, so the module can share one server.
Waiting is done with threading.Event / conditions and bounded timeouts, never sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from conftest import ZK_TARGET
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (BadVersionError, LockTimeout, NoAuthError, NodeExistsError, NoNodeError,
                              NotEmptyError, RolledBackError, RuntimeInconsistency, SessionExpiredError,
                              ConnectionClosedError)
from kazoo.protocol.states import EventType
from kazoo.recipe.cache import TreeCache, TreeEvent
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

from conftest import kazoo_clients, wait_until

T = 20  # generic bound (seconds) for anything we wait on


@pytest.fixture
def make_client(zk_server):
    with kazoo_clients(T) as new:

        def make(**kw):
            kw.setdefault("timeout", 10)
            return new(zk_server.address, **kw)

        yield make


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def base(client, request):
    path = f"/kazoo/{request.node.name.replace('[', '_').replace(']', '_')}-{uuid.uuid4().hex[:8]}"
    client.ensure_path(path)
    return path


# --------------------------------------------------------------------------------------
# basics


def test_crud(client, base):
    p = f"{base}/node"
    assert client.create(p, b"v0") == p
    data, stat = client.get(p)
    assert data == b"v0"
    assert stat.version == 0 and stat.dataLength == 2 and stat.numChildren == 0 and stat.ephemeralOwner == 0
    assert stat.czxid == stat.mzxid and stat.czxid > 0
    st2 = client.set(p, b"value-1")
    assert st2.version == 1 and st2.dataLength == 7 and st2.mzxid > stat.mzxid and st2.czxid == stat.czxid
    assert client.get(p)[0] == b"value-1"
    assert client.exists(p).version == 1
    client.create(f"{p}/a", b"")
    client.create(f"{p}/b")
    assert sorted(client.get_children(p)) == ["a", "b"]
    children, pstat = client.get_children(p, include_data=True)
    assert pstat.numChildren == 2 and pstat.cversion == 2
    assert client.get(f"{p}/b")[0] == b""
    client.delete(f"{p}/a")
    client.delete(f"{p}/b")
    client.delete(p)
    assert client.exists(p) is None
    # ensure_path / makepath
    client.create(f"{base}/x/y/z", b"deep", makepath=True)
    assert client.get(f"{base}/x/y/z")[0] == b"deep"
    client.delete(f"{base}/x", recursive=True)
    assert client.exists(f"{base}/x") is None
    # larger payload (512 KiB)
    blob = os.urandom(512 * 1024)
    client.create(f"{base}/blob", blob)
    assert client.get(f"{base}/blob")[0] == blob


def test_errors(client, base):
    with pytest.raises(NoNodeError):
        client.get(f"{base}/missing")
    with pytest.raises(NoNodeError):
        client.set(f"{base}/missing", b"x")
    with pytest.raises(NoNodeError):
        client.delete(f"{base}/missing")
    with pytest.raises(NoNodeError):
        client.create(f"{base}/missing/child", b"x")
    with pytest.raises(NoNodeError):
        client.get_children(f"{base}/missing")
    client.create(f"{base}/n", b"1")
    with pytest.raises(NodeExistsError):
        client.create(f"{base}/n", b"2")
    assert client.get(f"{base}/n")[0] == b"1"
    client.create(f"{base}/n/kid")
    with pytest.raises(NotEmptyError):
        client.delete(f"{base}/n")
    with pytest.raises(BadVersionError):
        client.set(f"{base}/n", b"x", version=7)
    client.set(f"{base}/n", b"x", version=0)
    with pytest.raises(BadVersionError):
        client.set(f"{base}/n", b"y", version=0)
    with pytest.raises(BadVersionError):
        client.delete(f"{base}/n/kid", version=3)
    client.delete(f"{base}/n/kid", version=0)
    client.delete(f"{base}/n", version=1)
    assert client.exists(f"{base}/n") is None
    client.create(f"{base}/eph", ephemeral=True)
    from kazoo.exceptions import NoChildrenForEphemeralsError
    with pytest.raises(NoChildrenForEphemeralsError):
        client.create(f"{base}/eph/kid")


def test_sequential(make_client, base):
    c1, c2 = make_client(), make_client()
    names = []
    for i in range(6):
        c = (c1, c2)[i % 2]
        names.append(c.create(f"{base}/item-", str(i).encode(), sequence=True))
    assert names == [f"{base}/item-{i:010d}" for i in range(6)]
    # the counter is per parent (cversion), shared by every prefix and by ephemerals
    e = c1.create(f"{base}/e-", ephemeral=True, sequence=True)
    assert e == f"{base}/e-{6:010d}"
    bare = c1.create(f"{base}/", sequence=True)
    assert bare == f"{base}/{7:010d}"
    assert len(c2.get_children(base)) == 8
    # counter keeps increasing after deletes
    c1.delete(names[0])
    assert c1.create(f"{base}/item-", sequence=True) == f"{base}/item-{8:010d}"


def test_ephemeral_deleted_on_close(make_client, base):
    owner, observer = make_client(), make_client()
    p = f"{base}/eph"
    owner.create(p, b"mine", ephemeral=True)
    stat = observer.exists(p)
    assert stat is not None and stat.ephemeralOwner == owner.client_id[0]
    gone = threading.Event()
    observer.exists(p, watch=lambda ev: ev.type == EventType.DELETED and gone.set())
    owner.stop()
    assert gone.wait(T), "ephemeral node not deleted after the owner closed its session"
    assert observer.exists(p) is None


def test_session_closed_by_another_connection(zk_server, make_client, base):
    """Classic expiry trick: a second connection resumes the session and closes it."""
    victim = make_client()
    observer = make_client()
    states = []
    lost = threading.Event()

    def listener(state):
        states.append(state)
        if state == KazooState.LOST:
            lost.set()
    victim.add_listener(listener)
    p = f"{base}/eph"
    victim.create(p, ephemeral=True)
    gone = threading.Event()
    observer.exists(p, watch=lambda ev: ev.type == EventType.DELETED and gone.set())
    sid, pw = victim.client_id
    twin = KazooClient(hosts=zk_server.address, client_id=(sid, pw), timeout=10)
    twin.start(timeout=T)
    assert twin.client_id[0] == sid, "resuming a session with its id and password gave a different session"
    twin.stop()
    twin.close()
    assert gone.wait(T), "ephemeral not deleted after its session was closed"
    assert observer.exists(p) is None
    assert lost.wait(T), f"victim never saw its session expire (states {states})"
    with pytest.raises((SessionExpiredError, ConnectionClosedError)):
        victim.get(base)


EXPIRY_CHILD = r"""
import sys, time
from kazoo.client import KazooClient
c = KazooClient(hosts=sys.argv[1], timeout=4.0)
c.start(timeout=20)
c.create(sys.argv[2], b"x", ephemeral=True)
print("%d ready" % c.client_id[0], flush=True)
time.sleep(600)
"""


def test_session_expiry_after_client_crash(zk_server, make_client, base):
    """A client killed with SIGKILL never closes its session; the server must expire it
    (session timeout 4 s = minSessionTimeout) and then delete its ephemerals."""
    observer = make_client()
    p = f"{base}/crashy"
    proc = subprocess.Popen([sys.executable, "-c", EXPIRY_CHILD, zk_server.address, p],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.endswith("ready\n"), (line, proc.stderr.read() if proc.poll() is not None else "")
        sid = int(line.split()[0])
        stat = observer.exists(p)
        assert stat is not None and stat.ephemeralOwner == sid
        gone = threading.Event()
        observer.exists(p, watch=lambda ev: ev.type == EventType.DELETED and gone.set())
        t0 = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(T)
        # the session outlives its connection until the timeout
        assert observer.exists(p) is not None, "ephemeral deleted as soon as the connection dropped"
        assert gone.wait(30), "session of a crashed client never expired"
        elapsed = time.monotonic() - t0
        assert elapsed >= 2.0, f"session expired after only {elapsed:.1f}s (timeout was 4s)"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_transactions(client, base):
    client.create(f"{base}/t", b"0")
    tx = client.transaction()
    tx.create(f"{base}/t/a", b"a")
    tx.create(f"{base}/t/s-", b"s", sequence=True)
    tx.set_data(f"{base}/t", b"1", version=0)
    tx.check(f"{base}/t", 1)
    tx.delete(f"{base}/t/a")
    results = tx.commit()
    assert results[0] == f"{base}/t/a"
    assert results[1] == f"{base}/t/s-0000000001"
    assert results[2].version == 1  # ZnodeStat from set_data
    assert results[3] is True
    assert results[4] is True
    assert client.get(f"{base}/t")[0] == b"1"
    assert client.get_children(f"{base}/t") == ["s-0000000001"]

    # a failing op rolls the whole transaction back and reports per-op results
    tx = client.transaction()
    tx.create(f"{base}/t/never", b"x")
    tx.set_data(f"{base}/t", b"2")
    tx.check(f"{base}/t", 99)
    tx.delete(f"{base}/t/s-0000000001")
    results = tx.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], RolledBackError)
    assert isinstance(results[2], BadVersionError)
    assert isinstance(results[3], RuntimeInconsistency)  # ops after the failing one
    assert client.exists(f"{base}/t/never") is None
    data, stat = client.get(f"{base}/t")
    assert data == b"1" and stat.version == 1
    assert client.get_children(f"{base}/t") == ["s-0000000001"]

    tx = client.transaction()
    tx.create(f"{base}/t/dup")
    tx.create(f"{base}/t/dup")
    res = tx.commit()
    assert isinstance(res[0], RolledBackError) and isinstance(res[1], NodeExistsError)
    assert client.exists(f"{base}/t/dup") is None

    tx = client.transaction()
    tx.delete(f"{base}/t/missing")
    res = tx.commit()
    assert isinstance(res[0], NoNodeError)

    assert client.transaction().commit() == []  # empty multi


def test_watches_raw(make_client, base):
    c, writer = make_client(), make_client()
    p = f"{base}/w"
    events = []
    got = threading.Event()

    def w(ev):
        events.append((ev.type, ev.path))
        got.set()

    assert c.exists(p, watch=w) is None
    writer.create(p, b"1")
    assert got.wait(T)
    assert events == [(EventType.CREATED, p)]

    got.clear()
    c.get(p, watch=w)
    writer.set(p, b"2")
    assert got.wait(T)
    assert events[-1] == (EventType.CHANGED, p)

    got.clear()
    c.get_children(p, watch=w)
    writer.create(f"{p}/kid")
    assert got.wait(T)
    assert events[-1] == (EventType.CHILD, p)

    # one-shot: a second change does not fire again without re-registering
    got.clear()
    n = len(events)
    writer.set(p, b"3")
    writer.create(f"{p}/kid2")
    c.sync(p)  # anything pending for c arrives before this returns
    assert len(events) == n

    got.clear()
    c.get(p, watch=w)
    c.get_children(p, watch=w)
    writer.delete(p, recursive=True)
    assert wait_until(lambda: (EventType.DELETED, p) in events[n:], T)


def test_data_watch_and_children_watch(make_client, base):
    c, writer = make_client(), make_client()
    p = f"{base}/dw"
    seen_data = []
    data_cond = threading.Condition()

    @c.DataWatch(p)
    def on_data(data, stat):
        with data_cond:
            seen_data.append(data)
            data_cond.notify_all()

    def wait_data(value):
        with data_cond:
            assert data_cond.wait_for(lambda: seen_data and seen_data[-1] == value, T), seen_data

    wait_data(None)  # called once immediately, node missing
    writer.create(p, b"a")
    wait_data(b"a")
    writer.set(p, b"b")
    wait_data(b"b")

    seen_children = []
    ch_cond = threading.Condition()

    @c.ChildrenWatch(p)
    def on_children(children):
        with ch_cond:
            seen_children.append(sorted(children))
            ch_cond.notify_all()

    def wait_children(value):
        with ch_cond:
            assert ch_cond.wait_for(lambda: seen_children and seen_children[-1] == value, T), seen_children

    wait_children([])
    writer.create(f"{p}/x")
    wait_children(["x"])
    writer.create(f"{p}/y")
    wait_children(["x", "y"])
    writer.delete(f"{p}/x")
    wait_children(["y"])
    writer.delete(p, recursive=True)
    wait_data(None)


def test_digest_acl(make_client, base):
    owner = make_client(auth_data=[("digest", "alice:secret")])
    stranger = make_client()
    wrong = make_client(auth_data=[("digest", "alice:wrong")])
    p = f"{base}/private"
    acl = make_digest_acl("alice", "secret", all=True)
    owner.create(p, b"top secret", acl=[acl])
    assert owner.get(p)[0] == b"top secret"
    acls, stat = owner.get_acls(p)
    assert len(acls) == 1 and acls[0].id.scheme == "digest" and acls[0].id.id == acl.id.id
    assert acls[0].perms == 31
    for c in (stranger, wrong):
        with pytest.raises(NoAuthError):
            c.get(p)
        with pytest.raises(NoAuthError):
            c.set(p, b"hacked")
        with pytest.raises(NoAuthError):
            c.create(f"{p}/kid")
        with pytest.raises(NoAuthError):
            c.set_acls(p, OPEN_ACL_UNSAFE)
    # exists: Apache 3.8.0 needs no permission; 3.8.4+/3.9.2+ (ZOOKEEPER-2590) and zk need
    # READ on an existing node, so a stranger cannot probe a protected subtree.
    if ZK_TARGET == "apache":
        assert stranger.exists(p) is not None
    else:
        with pytest.raises(NoAuthError):
            stranger.exists(p)
        assert stranger.exists(f"{p}-missing") is None
    stranger.add_auth("digest", "alice:secret")
    assert stranger.get(p)[0] == b"top secret"
    # read-only ACL for world plus full control for alice
    ro = f"{base}/ro"
    owner.create(ro, b"r", acl=[make_digest_acl("alice", "secret", all=True),
                                 make_digest_acl("bob", "pw", read=True)])
    bob = make_client(auth_data=[("digest", "bob:pw")])
    assert bob.get(ro)[0] == b"r"
    with pytest.raises(NoAuthError):
        bob.set(ro, b"w")
    # setting ACLs bumps aclVersion; a stale version is a BadVersion
    st = owner.set_acls(ro, OPEN_ACL_UNSAFE, version=0)
    assert st.aversion == 1
    with pytest.raises(BadVersionError):
        owner.set_acls(ro, OPEN_ACL_UNSAFE, version=0)
    bob.set(ro, b"w")


# --------------------------------------------------------------------------------------
# recipes


def test_lock_mutual_exclusion(make_client, base):
    path = f"{base}/lock"
    c1, c2 = make_client(), make_client()
    l1, l2 = c1.Lock(path, "one"), c2.Lock(path, "two")
    assert l1.acquire(timeout=T)
    assert l2.acquire(blocking=False) is False
    with pytest.raises(LockTimeout):
        l2.acquire(timeout=0.5)
    assert sorted(l1.contenders()) == ["one"]
    got2 = threading.Event()
    t = threading.Thread(target=lambda: l2.acquire(timeout=T) and got2.set())
    t.start()
    wait_until(lambda: l1.contenders() == ["one", "two"], T, what="second contender queued")
    assert not got2.is_set()
    l1.release()
    assert got2.wait(T)
    t.join(T)
    l2.release()

    # several clients hammering the same lock: never two holders at once
    clients = [make_client() for _ in range(4)]
    holders = 0
    max_holders = 0
    total = 0
    guard = threading.Lock()
    errors = []

    def worker(c, ident):
        nonlocal holders, max_holders, total
        lock = c.Lock(path, ident)
        try:
            for _ in range(10):
                with lock:
                    with guard:
                        holders += 1
                        max_holders = max(max_holders, holders)
                    # make overlap observable if exclusion were broken
                    c.get(base)
                    with guard:
                        total += 1
                        holders -= 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(c, f"w{i}")) for i, c in enumerate(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    assert total == 40
    assert max_holders == 1
    assert c1.get_children(path) == []


def test_lock_released_when_holder_session_closes(make_client, base):
    path = f"{base}/lock"
    c1, c2 = make_client(), make_client()
    assert c1.Lock(path, "one").acquire(timeout=T)
    got = threading.Event()
    lock2 = c2.Lock(path, "two")
    t = threading.Thread(target=lambda: lock2.acquire(timeout=T) and got.set())
    t.start()
    wait_until(lambda: len(c2.get_children(path)) == 2, T, what="second contender queued")
    c1.stop()
    assert got.wait(T), "lock not handed over after the holder's session closed"
    t.join(T)
    lock2.release()


def test_election(make_client, base):
    path = f"{base}/election"
    clients = [make_client() for _ in range(3)]
    leaders = []
    current = set()
    guard = threading.Lock()
    max_concurrent = 0
    release = {i: threading.Event() for i in range(3)}
    became = threading.Condition()

    def lead(i):
        nonlocal max_concurrent
        with guard:
            current.add(i)
            max_concurrent = max(max_concurrent, len(current))
        with became:
            leaders.append(i)
            became.notify_all()
        release[i].wait(T * 3)
        with guard:
            current.discard(i)

    elections = [c.Election(path, f"id{i}") for i, c in enumerate(clients)]

    def run(i):
        try:
            elections[i].run(lead, i)
        except (ConnectionClosedError, SessionExpiredError):
            pass  # the contender whose client we stop

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(3)]
    for th in threads:
        th.start()
    with became:
        assert became.wait_for(lambda: len(leaders) >= 1, T)
    wait_until(lambda: len(elections[0].contenders()) == 3, T, what="3 contenders")
    first = leaders[0]
    # leadership moves on when the leader steps down, one at a time
    release[first].set()
    with became:
        assert became.wait_for(lambda: len(leaders) >= 2, T)
    second = leaders[1]
    assert second != first
    # leader loses its session: the last one takes over
    with guard:
        current.discard(second)  # (kazoo's Election cannot tell a leader it lost its session)
    clients[second].stop()
    release[second].set()
    with became:
        assert became.wait_for(lambda: len(leaders) >= 3, T)
    third = leaders[2]
    assert len({first, second, third}) == 3
    release[third].set()
    for th in threads:
        th.join(T)
    assert max_concurrent == 1


def test_queue(make_client, base):
    c1, c2 = make_client(), make_client()
    q1, q2 = c1.Queue(f"{base}/q"), c2.Queue(f"{base}/q")
    for i in range(5):
        q1.put(f"item{i}".encode())
    q2.put(b"urgent", priority=1)
    assert len(q2) == 6
    assert q2.get() == b"urgent"
    got = [q2.get() for _ in range(5)]
    assert got == [f"item{i}".encode() for i in range(5)]
    assert q1.get() is None
    assert len(q1) == 0


def test_locking_queue(make_client, base):
    c1, c2 = make_client(), make_client()
    q1, q2 = c1.LockingQueue(f"{base}/lq"), c2.LockingQueue(f"{base}/lq")
    q1.put(b"first")
    q1.put_all([b"second", b"third"])
    assert len(q2) == 3
    assert q2.get(timeout=T) == b"first"
    # q2 holds 'first'; q1 must get the next one, not the same
    assert q1.get(timeout=T) == b"second"
    assert q2.consume() is True
    assert q1.release() is True  # 'second' goes back
    assert len(q1) == 2
    assert q1.get(timeout=T) == b"second"
    assert q1.consume()
    assert q2.get(timeout=T) == b"third"
    assert q2.consume()
    assert len(q1) == 0
    # a get on an empty queue blocks until someone puts
    result = []
    t = threading.Thread(target=lambda: result.append(q1.get(timeout=T)))
    t.start()
    q2.put(b"late")
    t.join(T)
    assert result == [b"late"]
    assert q1.consume()
    assert q1.get(timeout=0.3) is None


def test_barrier(make_client, base):
    c1, c2 = make_client(), make_client()
    b1, b2 = c1.Barrier(f"{base}/barrier"), c2.Barrier(f"{base}/barrier")
    assert b2.wait(timeout=1) is True  # no barrier: passes immediately
    b1.create()
    assert b2.wait(timeout=0.3) is False  # barrier up: times out
    passed = threading.Event()
    t = threading.Thread(target=lambda: b2.wait(timeout=T) and passed.set())
    t.start()
    assert not passed.wait(0.2)
    b1.remove()
    assert passed.wait(T)
    t.join(T)


def test_double_barrier(make_client, base):
    n = 3
    clients = [make_client() for _ in range(n)]
    entered, left, errors = [], [], []

    def party(i):
        try:
            db = clients[i].DoubleBarrier(f"{base}/db", n, identifier=f"p{i}")
            db.enter()
            entered.append(i)
            db.leave()
            left.append(i)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=party, args=(i,)) for i in range(n)]
    for th in threads[:-1]:
        th.start()
    # nobody may enter before the last party arrives
    assert clients[0].sync(base) and entered == []
    threads[-1].start()
    for th in threads:
        th.join(T)
    assert not errors, errors
    assert sorted(entered) == list(range(n)) and sorted(left) == list(range(n))


def test_counter_concurrent(make_client, base):
    retry = {"max_tries": -1, "delay": 0.005, "backoff": 1.2, "max_delay": 0.1}
    clients = [make_client(command_retry=retry) for _ in range(5)]
    path = f"{base}/counter"
    errors = []

    def bump(c):
        try:
            counter = c.Counter(path)
            for _ in range(20):
                counter += 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=bump, args=(c,)) for c in clients]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    assert clients[0].Counter(path).value == 100
    assert clients[0].get(path)[0] == b"100"
    # float counter and decrement
    fc = clients[1].Counter(f"{base}/fc", default=0.0)
    fc += 2.5
    fc -= 1.0
    assert fc.value == 1.5


def test_tree_cache(make_client, base):
    c, writer = make_client(), make_client()
    root = f"{base}/tree"
    writer.create(f"{root}/a", b"1", makepath=True)
    events = []
    cond = threading.Condition()

    def listener(ev):
        with cond:
            path = ev.event_data.path if ev.event_data is not None else None
            data = ev.event_data.data if ev.event_data is not None else None
            events.append((ev.event_type, path, data))
            cond.notify_all()

    def wait_for(etype, path, data=None):
        with cond:
            ok = cond.wait_for(lambda: any(e[0] == etype and e[1] == path and (data is None or e[2] == data)
                                           for e in events), T)
        assert ok, f"no {etype} for {path} in {events}"

    cache = TreeCache(c, root)
    cache.listen(listener)
    cache.start()
    try:
        with cond:
            assert cond.wait_for(lambda: any(e[0] == TreeEvent.INITIALIZED for e in events), T), events
        assert (TreeEvent.NODE_ADDED, f"{root}/a", b"1") in events
        assert cache.get_data(f"{root}/a").data == b"1"

        writer.create(f"{root}/b", b"2")
        wait_for(TreeEvent.NODE_ADDED, f"{root}/b", b"2")
        writer.create(f"{root}/b/deep", b"3")
        wait_for(TreeEvent.NODE_ADDED, f"{root}/b/deep", b"3")
        writer.set(f"{root}/a", b"1bis")
        wait_for(TreeEvent.NODE_UPDATED, f"{root}/a", b"1bis")
        assert sorted(cache.get_children(root)) == ["a", "b"]
        writer.delete(f"{root}/b", recursive=True)
        wait_for(TreeEvent.NODE_REMOVED, f"{root}/b/deep")
        wait_for(TreeEvent.NODE_REMOVED, f"{root}/b")
        assert sorted(cache.get_children(root)) == ["a"]
        assert cache.get_data(f"{root}/b") is None
    finally:
        cache.close()


def test_party_and_lease(make_client, base):
    c1, c2 = make_client(), make_client()
    p1, p2 = c1.Party(f"{base}/party", "one"), c2.Party(f"{base}/party", "two")
    p1.join()
    p2.join()
    assert sorted(p1) == ["one", "two"] and len(p2) == 2
    p2.leave()
    assert list(p1) == ["one"]
    import datetime
    lease1 = c1.NonBlockingLease(f"{base}/lease", datetime.timedelta(seconds=30), identifier="one")
    assert bool(lease1)
    lease2 = c2.NonBlockingLease(f"{base}/lease", datetime.timedelta(seconds=30), identifier="two")
    assert not bool(lease2)
