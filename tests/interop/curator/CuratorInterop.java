// Apache Curator (Debian libcurator-*-java 5.4.0, ZooKeeper client 3.8.0) against a
// ZooKeeper-compatible server.
//
// Usage: java -cp <classpath> CuratorInterop <connectString> [check ...]
// Checks: crud, transaction, mutex, atomiclong, leaderlatch, pathchildrencache,
//         semaphore, nodecache (default: all). Prints "OK <check>" for each passed
// check; on the first failed check prints "FAIL <check>: <message>" and exits 1.
// A watchdog exits 3 if the whole run takes longer than the limit.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.NodeCache;
import org.apache.curator.framework.recipes.cache.PathChildrenCache;
import org.apache.curator.framework.recipes.cache.PathChildrenCacheEvent;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorInterop {

    static final long T = 20; // seconds, generic bound for anything we wait on
    static String connect;
    static final String ROOT = "/curator-" + Long.toHexString(System.nanoTime());
    static final List<CuratorFramework> clients = new ArrayList<>();

    static class CheckFailed extends RuntimeException {
        CheckFailed(String m) { super(m); }
    }

    static void check(boolean cond, String msg) {
        if (!cond) throw new CheckFailed(msg);
    }

    static CuratorFramework client() throws InterruptedException {
        CuratorFramework c = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .sessionTimeoutMs(10000)
                .connectionTimeoutMs(10000)
                .retryPolicy(new ExponentialBackoffRetry(50, 10))
                .build();
        c.start();
        check(c.blockUntilConnected((int) T, TimeUnit.SECONDS), "client did not connect within " + T + "s");
        synchronized (clients) { clients.add(c); }
        return c;
    }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }
    static String s(byte[] b) { return b == null ? null : new String(b, StandardCharsets.UTF_8); }

    static void joinAll(List<Thread> threads) throws InterruptedException {
        for (Thread t : threads) {
            t.join(TimeUnit.SECONDS.toMillis(60));
            check(!t.isAlive(), "worker thread still running after 60s: " + t.getName());
        }
    }

    // ------------------------------------------------------------------------------------

    static void crud() throws Exception {
        CuratorFramework c = client();
        String p = ROOT + "/crud/a/b";
        check(p.equals(c.create().creatingParentsIfNeeded().forPath(p, b("v0"))), "create returned wrong path");
        Stat st = new Stat();
        check("v0".equals(s(c.getData().storingStatIn(st).forPath(p))), "data mismatch");
        check(st.getVersion() == 0 && st.getDataLength() == 2, "bad stat after create: " + st);
        Stat st2 = c.setData().withVersion(0).forPath(p, b("v1"));
        check(st2.getVersion() == 1, "version not bumped");
        try {
            c.setData().withVersion(0).forPath(p, b("v2"));
            check(false, "stale version accepted");
        } catch (KeeperException.BadVersionException expected) { }
        try {
            c.create().forPath(p);
            check(false, "duplicate create accepted");
        } catch (KeeperException.NodeExistsException expected) { }
        try {
            c.getData().forPath(ROOT + "/crud/missing");
            check(false, "read of a missing node succeeded");
        } catch (KeeperException.NoNodeException expected) { }
        String seq = c.create().withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath(ROOT + "/crud/a/e-");
        check(seq.equals(ROOT + "/crud/a/e-0000000001"), "unexpected sequential name " + seq);
        check(c.getChildren().forPath(ROOT + "/crud/a").size() == 2, "children count");
        try {
            c.delete().forPath(ROOT + "/crud/a");
            check(false, "delete of a non-empty node succeeded");
        } catch (KeeperException.NotEmptyException expected) { }
        c.delete().deletingChildrenIfNeeded().forPath(ROOT + "/crud");
        check(c.checkExists().forPath(ROOT + "/crud") == null, "recursive delete left the node");
    }

    static void transaction() throws Exception {
        CuratorFramework c = client();
        String p = ROOT + "/tx";
        c.create().creatingParentsIfNeeded().forPath(p, b("0"));
        CuratorOp op1 = c.transactionOp().create().forPath(p + "/x", b("x"));
        CuratorOp op2 = c.transactionOp().setData().withVersion(0).forPath(p, b("1"));
        CuratorOp op3 = c.transactionOp().check().withVersion(1).forPath(p);
        Collection<CuratorTransactionResult> res = c.transaction().forOperations(op1, op2, op3);
        check(res.size() == 3, "3 results expected, got " + res);
        check("1".equals(s(c.getData().forPath(p))), "transaction not applied");
        CuratorOp bad1 = c.transactionOp().create().forPath(p + "/y");
        CuratorOp bad2 = c.transactionOp().check().withVersion(42).forPath(p);
        try {
            c.transaction().forOperations(bad1, bad2);
            check(false, "transaction with a failing check committed");
        } catch (KeeperException.BadVersionException expected) { }
        check(c.checkExists().forPath(p + "/y") == null, "failed transaction was partly applied");
    }

    static void mutex() throws Exception {
        String path = ROOT + "/mutex";
        final int clientsN = 3, threadsPerClient = 2, rounds = 15;
        AtomicInteger inside = new AtomicInteger();
        AtomicInteger violations = new AtomicInteger();
        int[] counter = {0}; // deliberately unsynchronized: protected only by the ZooKeeper lock
        AtomicReference<Throwable> error = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < clientsN; i++) {
            CuratorFramework c = client();
            for (int j = 0; j < threadsPerClient; j++) {
                InterProcessMutex m = new InterProcessMutex(c, path);
                Thread t = new Thread(() -> {
                    try {
                        for (int r = 0; r < rounds; r++) {
                            if (!m.acquire(T, TimeUnit.SECONDS)) throw new CheckFailed("acquire timed out");
                            try {
                                if (inside.incrementAndGet() != 1) violations.incrementAndGet();
                                int v = counter[0];
                                Thread.yield();
                                counter[0] = v + 1;
                                inside.decrementAndGet();
                            } finally {
                                m.release();
                            }
                        }
                    } catch (Throwable e) {
                        error.compareAndSet(null, e);
                    }
                }, "mutex-" + i + "-" + j);
                threads.add(t);
            }
        }
        threads.forEach(Thread::start);
        joinAll(threads);
        if (error.get() != null) throw new CheckFailed("worker failed: " + error.get());
        check(violations.get() == 0, violations.get() + " times two holders were inside the mutex");
        int expected = clientsN * threadsPerClient * rounds;
        synchronized (counter) {
            check(counter[0] == expected, "shared counter " + counter[0] + " != " + expected);
        }
        // a held lock cannot be taken by another client; reentrancy within one
        InterProcessMutex a = new InterProcessMutex(client(), path);
        InterProcessMutex bm = new InterProcessMutex(client(), path);
        check(a.acquire(T, TimeUnit.SECONDS), "a could not acquire");
        check(a.acquire(T, TimeUnit.SECONDS), "mutex is not reentrant");
        check(!bm.acquire(300, TimeUnit.MILLISECONDS), "b acquired a lock held by a");
        a.release();
        check(!bm.acquire(300, TimeUnit.MILLISECONDS), "b acquired a lock still held (reentrantly) by a");
        a.release();
        check(bm.acquire(T, TimeUnit.SECONDS), "b could not acquire after a released");
        bm.release();
    }

    static void atomicLong() throws Exception {
        String path = ROOT + "/atomic";
        final int clientsN = 4, increments = 25;
        AtomicReference<Throwable> error = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < clientsN; i++) {
            CuratorFramework c = client();
            DistributedAtomicLong counter = new DistributedAtomicLong(c, path, new RetryNTimes(1000, 1));
            Thread t = new Thread(() -> {
                try {
                    for (int k = 0; k < increments; k++) {
                        AtomicValue<Long> v;
                        int tries = 0;
                        do {
                            v = counter.increment();
                            if (++tries > 100) throw new CheckFailed("increment never succeeded");
                        } while (!v.succeeded());
                        if (v.postValue() != v.preValue() + 1)
                            throw new CheckFailed("post " + v.postValue() + " != pre " + v.preValue() + " + 1");
                    }
                } catch (Throwable e) {
                    error.compareAndSet(null, e);
                }
            }, "atomic-" + i);
            threads.add(t);
        }
        threads.forEach(Thread::start);
        joinAll(threads);
        if (error.get() != null) throw new CheckFailed("worker failed: " + error.get());
        DistributedAtomicLong reader = new DistributedAtomicLong(client(), path, new RetryNTimes(10, 10));
        AtomicValue<Long> total = reader.get();
        check(total.succeeded(), "get did not succeed");
        check(total.postValue() == clientsN * increments, "total " + total.postValue() + " != " + clientsN * increments);
        AtomicValue<Long> cas = reader.compareAndSet(total.postValue(), 7L);
        check(cas.succeeded() && reader.get().postValue() == 7L, "compareAndSet failed");
        check(!reader.compareAndSet(99L, 8L).succeeded(), "compareAndSet with a wrong expected value succeeded");
    }

    static void leaderLatch() throws Exception {
        String path = ROOT + "/leader";
        final int n = 3;
        List<LeaderLatch> latches = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            LeaderLatch l = new LeaderLatch(client(), path, "p" + i);
            latches.add(l);
            l.start();
        }
        LeaderLatch leader = awaitSingleLeader(latches);
        for (LeaderLatch l : latches) {
            check(l.getLeader().getId().equals(leader.getId()),
                    l.getId() + " sees leader " + l.getLeader().getId() + " instead of " + leader.getId());
            check(l.getParticipants().size() == n, "participants: " + l.getParticipants());
        }
        // the leader closes: leadership moves to exactly one of the others
        leader.close();
        latches.remove(leader);
        LeaderLatch next = awaitSingleLeader(latches);
        check(!next.getId().equals(leader.getId()), "leadership did not move");
        next.close();
        latches.remove(next);
        LeaderLatch last = awaitSingleLeader(latches);
        check(last.getParticipants().size() == 1, "participants after two closed: " + last.getParticipants());
        last.close();
    }

    static LeaderLatch awaitSingleLeader(List<LeaderLatch> latches) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(T);
        while (System.nanoTime() < deadline) {
            LeaderLatch found = null;
            int leaders = 0;
            for (LeaderLatch l : latches) {
                if (l.hasLeadership()) { leaders++; found = l; }
            }
            check(leaders <= 1, leaders + " leaders at once");
            if (leaders == 1) {
                // stable: the others agree on who leads
                boolean agree = true;
                for (LeaderLatch l : latches) agree &= l.getLeader().getId().equals(found.getId());
                if (agree) return found;
            }
            // wait on a leader's latch briefly instead of sleeping blindly
            latches.get(0).await(50, TimeUnit.MILLISECONDS);
        }
        throw new CheckFailed("no single leader within " + T + "s");
    }

    static void pathChildrenCache() throws Exception {
        CuratorFramework c = client();
        CuratorFramework writer = client();
        String path = ROOT + "/pcc";
        c.create().creatingParentsIfNeeded().forPath(path + "/pre", b("p"));
        BlockingQueue<PathChildrenCacheEvent> events = new LinkedBlockingQueue<>();
        PathChildrenCache cache = new PathChildrenCache(c, path, true);
        cache.getListenable().addListener((cl, ev) -> events.add(ev));
        cache.start(PathChildrenCache.StartMode.POST_INITIALIZED_EVENT);
        try {
            expect(events, PathChildrenCacheEvent.Type.CHILD_ADDED, path + "/pre", "p");
            expect(events, PathChildrenCacheEvent.Type.INITIALIZED, null, null);
            writer.create().forPath(path + "/a", b("1"));
            expect(events, PathChildrenCacheEvent.Type.CHILD_ADDED, path + "/a", "1");
            writer.setData().forPath(path + "/a", b("2"));
            expect(events, PathChildrenCacheEvent.Type.CHILD_UPDATED, path + "/a", "2");
            writer.create().withMode(CreateMode.EPHEMERAL).forPath(path + "/e", b("eph"));
            expect(events, PathChildrenCacheEvent.Type.CHILD_ADDED, path + "/e", "eph");
            writer.delete().forPath(path + "/a");
            expect(events, PathChildrenCacheEvent.Type.CHILD_REMOVED, path + "/a", null);
            writer.close(); // closing the session removes its ephemeral
            expect(events, PathChildrenCacheEvent.Type.CHILD_REMOVED, path + "/e", null);
            check(cache.getCurrentData().size() == 1, "cache content: " + cache.getCurrentData());
            check("p".equals(s(cache.getCurrentData(path + "/pre").getData())), "cached data of /pre");
        } finally {
            cache.close();
        }
    }

    static void expect(BlockingQueue<PathChildrenCacheEvent> q, PathChildrenCacheEvent.Type type, String path,
                       String data) throws InterruptedException {
        PathChildrenCacheEvent ev = q.poll(T, TimeUnit.SECONDS);
        check(ev != null, "no " + type + " event for " + path + " within " + T + "s");
        check(ev.getType() == type, "expected " + type + " " + path + ", got " + ev);
        if (path != null) check(path.equals(ev.getData().getPath()), "expected path " + path + ", got " + ev);
        if (data != null) check(data.equals(s(ev.getData().getData())), "expected data " + data + ", got " + ev);
    }

    static void semaphore() throws Exception {
        String path = ROOT + "/sem";
        InterProcessSemaphoreV2 s1 = new InterProcessSemaphoreV2(client(), path, 2);
        InterProcessSemaphoreV2 s2 = new InterProcessSemaphoreV2(client(), path, 2);
        Lease l1 = s1.acquire(T, TimeUnit.SECONDS);
        Lease l2 = s2.acquire(T, TimeUnit.SECONDS);
        check(l1 != null && l2 != null, "two leases of a 2-lease semaphore not granted");
        check(s1.acquire(300, TimeUnit.MILLISECONDS) == null, "a third lease was granted");
        s2.returnLease(l2);
        Lease l3 = s1.acquire(T, TimeUnit.SECONDS);
        check(l3 != null, "lease not granted after one was returned");
        s1.returnLease(l1);
        s1.returnLease(l3);
    }

    static void nodeCache() throws Exception {
        CuratorFramework c = client();
        CuratorFramework writer = client();
        String path = ROOT + "/nc";
        BlockingQueue<String> seen = new LinkedBlockingQueue<>();
        NodeCache cache = new NodeCache(c, path);
        cache.getListenable().addListener(() -> {
            seen.add(cache.getCurrentData() == null ? "<none>" : s(cache.getCurrentData().getData()));
        });
        cache.start(true);
        try {
            writer.create().creatingParentsIfNeeded().forPath(path, b("one"));
            check("one".equals(seen.poll(T, TimeUnit.SECONDS)), "NodeCache missed the create");
            writer.setData().forPath(path, b("two"));
            check("two".equals(seen.poll(T, TimeUnit.SECONDS)), "NodeCache missed the update");
            writer.delete().forPath(path);
            check("<none>".equals(seen.poll(T, TimeUnit.SECONDS)), "NodeCache missed the delete");
        } finally {
            cache.close();
        }
    }

    // ------------------------------------------------------------------------------------

    interface Check { void run() throws Exception; }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: CuratorInterop <connectString> [check ...]");
            System.exit(2);
        }
        connect = args[0];
        long limit = Long.getLong("interop.timeoutSeconds", 240);
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(TimeUnit.SECONDS.toMillis(limit));
                System.out.println("FAIL watchdog: run exceeded " + limit + "s");
                System.out.flush();
                Runtime.getRuntime().halt(3);
            } catch (InterruptedException e) {
                // finished in time
            }
        }, "watchdog");
        watchdog.setDaemon(true);
        watchdog.start();

        String[][] all = {
            {"crud"}, {"transaction"}, {"mutex"}, {"atomiclong"}, {"leaderlatch"},
            {"pathchildrencache"}, {"semaphore"}, {"nodecache"},
        };
        List<String> selected = new ArrayList<>();
        if (args.length > 1) selected.addAll(Arrays.asList(args).subList(1, args.length));
        else for (String[] a : all) selected.add(a[0]);

        int rc = 0;
        for (String name : selected) {
            Check c;
            switch (name) {
                case "crud": c = CuratorInterop::crud; break;
                case "transaction": c = CuratorInterop::transaction; break;
                case "mutex": c = CuratorInterop::mutex; break;
                case "atomiclong": c = CuratorInterop::atomicLong; break;
                case "leaderlatch": c = CuratorInterop::leaderLatch; break;
                case "pathchildrencache": c = CuratorInterop::pathChildrenCache; break;
                case "semaphore": c = CuratorInterop::semaphore; break;
                case "nodecache": c = CuratorInterop::nodeCache; break;
                default:
                    System.out.println("FAIL " + name + ": unknown check");
                    rc = 2;
                    continue;
            }
            long t0 = System.nanoTime();
            try {
                c.run();
                System.out.printf("OK %s (%d ms)%n", name, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
            } catch (Throwable e) {
                System.out.println("FAIL " + name + ": " + e);
                e.printStackTrace(System.out);
                rc = 1;
                break;
            } finally {
                System.out.flush();
                synchronized (clients) {
                    for (CuratorFramework cf : clients) {
                        try { cf.close(); } catch (Throwable ignored) { }
                    }
                    clients.clear();
                }
            }
        }
        System.exit(rc);
    }
}
