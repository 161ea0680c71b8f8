#!/usr/bin/env bash
# compare_ensemble.sh: a 3-server zk ensemble against a 3-server Apache ZooKeeper 3.8
# ensemble on this machine, side by side, from one run.
#
# Usage: tests/bench/compare_ensemble.sh [--quick] [--reps N] [--rounds N] RESULT.md
#
# Starts a 3-server Apache ZooKeeper 3.8 ensemble (the Debian `zookeeper` package,
# QuorumPeerMain), measures it, stops it, then does the same with a 3-server `zk server`
# ensemble: only one ensemble runs at a time. Both get equivalent zoo.cfg files (tickTime=2000,
# initLimit=10, syncLimit=5, forceSync=yes, snapCount=100000, server.N=127.0.0.1:Q:E lines,
# a myid per server, each server on its own loopback ports, every data directory side by side
# in one temporary directory). All three servers are pinned with taskset to SERVER_CPU
# (default 0), the load generator and the failover writer to LOAD_CPU (default 1).
#
# 1. Throughput and latency: `zk bench --server A,B,C` for each workload (sessions are spread
#    over the three servers in turn, so each serves a third of them).
# 2. Failover: a small client (Python, raw ZooKeeper protocol, one session that fails over
#    between the three servers as ZooKeeper's clients do, one create-sequential at a time)
#    writes without pause; the leader (found with `srvr`) is killed with SIGKILL, and the
#    downtime is the time from the kill to the reply of the first write that succeeded among
#    those sent once the killed process was gone (reaped). The killed server is restarted and
#    the script waits until it follows again before the next repetition.
# 3. With --rounds N, all of it N times (Apache, zk, Apache, zk, ...): the table gives the
#    median over the rounds and the range of the ratios, the failover figures pool every kill.
#    On a machine shared with other jobs this tells noise from difference.
#
# Writes a markdown report with ratios zk / Apache to stdout and to RESULT.md. The raw JSON,
# the writer's log and the server logs stay in the work directory when KEEP_WORK=1.
#
#   --quick       a smoke test of about a minute: short runs, 2 failovers
#   --reps N      failover repetitions per ensemble and round (default 8; --quick: 2)
#   --rounds N    run everything N times and report medians (default 1)
#
# Environment: ZK_BIN (default $CARGO_TARGET_DIR/release/zk or <repo>/target/release/zk,
# built if missing), JAVA, APACHE_HEAP (default 1000m per server), SERVER_CPU, LOAD_CPU,
# BENCH_DURATION, BENCH_WARMUP, BENCH_CLIENTS, BENCH_INFLIGHT, BENCH_KEYS, WORKLOADS
# (space-separated), KEEP_WORK=1, TMPDIR (where the data directories go).
#
# Every process this script starts is stopped on exit, Ctrl-C included.

set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_NAME=compare-ensemble
LOG_CLOCK=1

quick=0
reps=""
rounds=1
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --reps)
        [ $# -ge 2 ] || usage
        reps=$2
        shift
        ;;
    --reps=*) reps=${1#--reps=} ;;
    --rounds)
        [ $# -ge 2 ] || usage
        rounds=$2
        shift
        ;;
    --rounds=*) rounds=${1#--rounds=} ;;
    -h | --help) usage ;;
    -*)
        echo "compare_ensemble.sh: unknown option $1" >&2
        usage
        ;;
    *)
        [ -z "$out" ] || usage
        out=$1
        ;;
    esac
    shift
done
[ -n "$out" ] || usage

ZK_BIN=${ZK_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/zk}

if [ "$quick" = 1 ]; then
    DURATION=${BENCH_DURATION:-2}
    WARMUP=${BENCH_WARMUP:-1}
    CLIENTS=${BENCH_CLIENTS:-9}
    INFLIGHT=${BENCH_INFLIGHT:-16}
    KEYS=${BENCH_KEYS:-1000}
    reps=${reps:-2}
else
    DURATION=${BENCH_DURATION:-10}
    # Long enough for the JVMs' JIT to settle before anything is measured.
    WARMUP=${BENCH_WARMUP:-5}
    # A multiple of 3: each server gets the same number of sessions.
    CLIENTS=${BENCH_CLIENTS:-18}
    INFLIGHT=${BENCH_INFLIGHT:-16}
    KEYS=${BENCH_KEYS:-10000}
    reps=${reps:-8}
fi
WORKLOADS=${WORKLOADS:-create set get mixed}
case "$reps" in '' | *[!0-9]*) echo "compare_ensemble.sh: --reps needs a number" >&2 && exit 2 ;; esac
case "$rounds" in '' | 0 | *[!0-9]*) echo "compare_ensemble.sh: --rounds needs a number >= 1" >&2 && exit 2 ;; esac
# How long an ensemble (or a restarted server) may take to elect and sync.
START_TIMEOUT_S=${START_TIMEOUT_S:-180}
# How long the writer may stay without a successful write after a kill before the run gives up.
FAILOVER_TIMEOUT_S=${FAILOVER_TIMEOUT_S:-120}
# The failover writer's session timeout and read timeout (the Java client's: 2/3 of it).
WRITER_SESSION_MS=30000
N=3

# --- prerequisites -------------------------------------------------------------------

check_prerequisites "for the failover writer and the report"
setup_pinning "all three servers" "load generator and failover writer"

make_work zk-compare-ensemble
HELPER=$WORK/helper.py

# PID[name.sid], CPORT[name.sid], DIR[name.sid]; WRITER_PID for the failover writer.
declare -A PID=() CPORT=() QPORT=() EPORT=() DIR=()
WRITER_PID=""

# --- the Python helper: port allocation, srvr probes, the failover writer, the report --

cat >"$HELPER" <<'PY'
import json, os, random, re, socket, statistics, struct, sys, time

def probe(port, word=b"srvr"):
    """A four-letter word's answer, or "" if refused. Apache accepts connections before it
    serves and its "not currently serving" answer need not end with a close, so the answer
    counts as complete after 50 ms of silence."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(word)
            s.settimeout(1)
            data = s.recv(65536)
            s.settimeout(0.05)
            while data:
                try:
                    more = s.recv(65536)
                except socket.timeout:
                    break
                if not more:
                    break
                data += more
            return data.decode("utf-8", "replace")
    except OSError:
        return ""

def mode(port):
    m = re.search(r"^Mode: (\S+)", probe(port), re.M)
    return m.group(1) if m else "-"

def cmd_ports(n):
    socks = [socket.socket() for _ in range(int(n))]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    print(" ".join(str(s.getsockname()[1]) for s in socks))

def cmd_wait_ensemble(limit, *ports):
    """Waits until one server leads and every other follows; prints the leader's index
    (1-based) and the seconds waited."""
    t0 = time.time()
    while True:
        modes = [mode(int(p)) for p in ports]
        if modes.count("leader") == 1 and modes.count("follower") == len(ports) - 1:
            print(modes.index("leader") + 1, f"{time.time() - t0:.3f}")
            return 0
        if time.time() - t0 > float(limit):
            print("modes: " + " ".join(modes), file=sys.stderr)
            return 1
        time.sleep(0.1)

# --- the failover writer ---------------------------------------------------------------
# One session, the ZooKeeper client's way: connect to a server (round robin over the list),
# carry the session id, password and last zxid seen across reconnects, one create of a
# PERSISTENT_SEQUENTIAL /fo/x at a time. Any error (refused, closed, timed out, an error
# code) closes the connection and the writer moves on to the next server, with 10 ms between
# failed connection attempts. Every success is logged as "ok SEND_NS REPLY_NS SERVER";
# failures as "err NOW_NS SERVER REASON".

OPS_CREATE = 1
OPS_CLOSE = -11

def s_str(b):
    return struct.pack(">i", len(b)) + b

def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the server")
        buf += chunk
    return buf

def read_frame(sock):
    (n,) = struct.unpack(">i", read_exact(sock, 4))
    return read_exact(sock, n)

class Session:
    def __init__(self, servers, session_ms, out):
        self.servers = servers
        self.session_ms = session_ms
        self.read_timeout = session_ms * 2 / 3 / 1000
        self.out = out
        self.sid = 0
        self.passwd = b"\0" * 16
        self.zxid = 0
        self.xid = 0
        self.next = random.randrange(len(servers))
        self.sock = None
        self.addr = None

    def log_err(self, reason):
        self.out.write(f"err {time.time_ns()} {self.addr} {reason}\n")

    def drop(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def connect(self):
        host, port = self.servers[self.next % len(self.servers)]
        self.next += 1
        self.addr = f"{host}:{port}"
        s = socket.create_connection((host, port), timeout=1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(self.read_timeout)
        req = struct.pack(">iqiq", 0, self.zxid, self.session_ms, self.sid) + s_str(self.passwd) + b"\0"
        s.sendall(struct.pack(">i", len(req)) + req)
        r = read_frame(s)
        _proto, timeout, sid = struct.unpack(">iiq", r[:16])
        (plen,) = struct.unpack(">i", r[16:20])
        if timeout <= 0:
            s.close()
            self.sid, self.passwd = 0, b"\0" * 16
            raise ConnectionError("session expired; a new one next")
        self.sid, self.passwd = sid, r[20:20 + plen]
        self.sock = s

    def request(self, op, body):
        self.xid += 1
        req = struct.pack(">ii", self.xid, op) + body
        self.sock.sendall(struct.pack(">i", len(req)) + req)
        while True:
            r = read_frame(self.sock)
            xid, zxid, err = struct.unpack(">iqi", r[:16])
            if xid == self.xid:
                if zxid > 0:
                    self.zxid = max(self.zxid, zxid)
                return err, r[16:]
            # Pings (-2) and watch events (-1) are not expected; skip them anyway.

def create_body(path, flags):
    acl = struct.pack(">i", 1) + struct.pack(">i", 31) + s_str(b"world") + s_str(b"anyone")
    return s_str(path) + s_str(b"0123456789") + acl + struct.pack(">i", flags)

def cmd_writer(out_path, servers_csv):
    servers = []
    for a in servers_csv.split(","):
        h, p = a.rsplit(":", 1)
        servers.append((h, int(p)))
    out = open(out_path, "w", buffering=1)
    sess = Session(servers, int(os.environ.get("WRITER_SESSION_MS", "30000")), out)
    running = [True]
    import signal
    def stop(*_):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    made_root = False
    while running[0]:
        if sess.sock is None:
            try:
                sess.connect()
            except (OSError, ConnectionError, struct.error) as e:
                sess.log_err(f"connect: {e}")
                sess.drop()
                time.sleep(0.01)
                continue
        try:
            if not made_root:
                err, _ = sess.request(OPS_CREATE, create_body(b"/fo", 0))
                if err not in (0, -110):
                    raise ConnectionError(f"create /fo: error {err}")
                made_root = True
                continue
            t0 = time.time_ns()
            err, _ = sess.request(OPS_CREATE, create_body(b"/fo/x", 2))
            t1 = time.time_ns()
            if err == 0:
                out.write(f"ok {t0} {t1} {sess.addr}\n")
            else:
                raise ConnectionError(f"error code {err}")
        except (OSError, ConnectionError, struct.error) as e:
            sess.log_err(f"create: {e}")
            sess.drop()
    if sess.sock is not None:
        try:
            sess.request(OPS_CLOSE, b"")
        except Exception:
            pass
        sess.drop()

def cmd_first_ok(path, offset, kill_ns):
    """The reply time of the first write sent at or after KILL_NS, from byte OFFSET on."""
    with open(path, "rb") as f:
        f.seek(int(offset))
        for line in f:
            p = line.split()
            if len(p) >= 4 and p[0] == b"ok" and line.endswith(b"\n") and p[1].isdigit() and int(p[1]) >= int(kill_ns):
                print(int(p[2]), p[3].decode())
                return 0
    return 1

def cmd_errors(path, offset, kill_ns, ok_ns):
    """Failed attempts between the kill and the first good write."""
    n = 0
    with open(path, "rb") as f:
        f.seek(int(offset))
        for line in f:
            p = line.split()
            if len(p) >= 2 and p[0] == b"err" and p[1].isdigit() and int(kill_ns) <= int(p[1]) <= int(ok_ns):
                n += 1
    print(n)

# --- the report ------------------------------------------------------------------------

def cmd_report():
    env = os.environ
    res = env["RES"]
    rounds = int(env["rounds"])
    def load(name, w, r):
        with open(f"{res}/{name}-{w}.r{r}.json") as f:
            return json.load(f)
    def ratio(z, a):
        if a in (None, 0) or z is None:
            return None
        return z / a
    def fmt(x, places):
        return "-" if x is None else f"{x:,.{places}f}"
    def med(v):
        v = [x for x in v if x is not None]
        return statistics.median(v) if v else None
    def errors(ds):
        out = {}
        for d in ds:
            for op, s in d["ops"].items():
                for code, n in s["errors"].items():
                    out[f"{op}: {code}"] = out.get(f"{op}: {code}", 0) + n
            for k in ("lost_sessions", "abandoned"):
                if d.get(k):
                    out[k.replace("_", " ")] = out.get(k.replace("_", " "), 0) + d[k]
        return "; ".join(f"{n} {k}" for k, n in out.items())
    def get(s, *path):
        for k in path:
            if s is None:
                return None
            s = s.get(k)
        return s

    p = print
    run = "quick smoke test" if env["quick"] == "1" else "full run"
    p(f"# 3-server ensembles: zk vs Apache ZooKeeper {env['apache_version'] or '3.8'} ({run})")
    p()
    p(f"- Date: {env['date_utc']}; total run time {env['elapsed_s']} s; {rounds} round(s)")
    p(f"- Machine: {env['cpu'] or 'unknown CPU'}, {env['ncpu']} CPUs, {env['kernel']}; {env['pinning']}")
    p(f"- Data directories: all six on {env['fs']}; forceSync=yes, snapCount=100000, tickTime=2000, initLimit=10, syncLimit=5, 3 voting servers on loopback")
    p(f"- zk: `{env['zk_version']}` (git {env['rev']})")
    p(f"- Apache ZooKeeper: Debian package, QuorumPeerMain, {env['java_version']}, -Xmx{env['APACHE_HEAP']} per server, log4j at INFO to a file")
    leaders = lambda v: ", ".join(f"server.{x}" for x in v.split())
    p(f"- Leader during the workloads, by round: Apache {leaders(env['apache_leader'])}; zk {leaders(env['zk_leader'])}")
    p(f"- Reproduce: `{env['cmdline']}`; each run is `{env['bench_cmd']}` (mixed adds `--ratio 9`); in each round the Apache ensemble runs every workload and its failovers and is stopped, then the zk ensemble does the same")
    p()
    p("## Throughput and latency")
    p()
    p("`zk bench` spreads its sessions over the three servers in turn (session i on server i mod 3),")
    p("so each server holds a third of them; reads are served by the server a session is on, writes")
    p("go through the leader. Ratios are zk / Apache: above 1 is better for ops/s, below 1 is better")
    p("for latency. \"load generator CPU\" is the share of its one core `zk bench` used (Apache / zk).")
    if rounds > 1:
        p(f"Every figure is the median over the {rounds} rounds (a ratio: the median of the rounds'")
        p("ratios); \"range\" is the lowest and highest ratio of ops/s seen in a round.")
    p()
    head = "| workload | op | Apache ops/s | zk ops/s | ratio |"
    line = "|---|---|--:|--:|--:|"
    if rounds > 1:
        head += " range |"
        line += "--:|"
    head += " Apache p50 ms | zk p50 ms | ratio | Apache p99 ms | zk p99 ms | ratio | notes |"
    line += "--:|--:|--:|--:|--:|--:|---|"
    p(head)
    p(line)
    R = range(1, rounds + 1)
    for w in env["WORKLOADS"].split():
        A = [load("apache", w, r) for r in R]
        Z = [load("zk", w, r) for r in R]
        ops = list(A[0]["ops"].keys()) + [o for o in Z[0]["ops"] if o not in A[0]["ops"]]
        def stat(d, op):
            return d.get("total") if op == "total" else d["ops"].get(op)
        if A[0].get("total") and Z[0].get("total"):
            ops.append("total")
        for op in ops:
            cells = [w, op]
            ra = [get(stat(d, op), "ops_per_s") for d in A]
            rz = [get(stat(d, op), "ops_per_s") for d in Z]
            rr = [ratio(z, a) for a, z in zip(ra, rz)]
            cells += [fmt(med(ra), 0), fmt(med(rz), 0), fmt(med(rr), 2)]
            if rounds > 1:
                rv = [x for x in rr if x is not None]
                cells.append(f"{min(rv):.2f}-{max(rv):.2f}" if rv else "-")
            for q in ("p50", "p99"):
                la = [get(stat(d, op), "latency_ms", q) for d in A]
                lz = [get(stat(d, op), "latency_ms", q) for d in Z]
                cells += [fmt(med(la), 3), fmt(med(lz), 3),
                          fmt(med([ratio(z, a) for a, z in zip(la, lz)]), 2)]
            n = ""
            if op == ops[0]:
                ea, ez = errors(A), errors(Z)
                ca = med([d.get("client_cpu_cores") for d in A])
                cz = med([d.get("client_cpu_cores") for d in Z])
                cpu = ""
                if ca is not None and cz is not None:
                    cpu = f"load generator CPU {ca:.0%} / {cz:.0%}"
                    if max(ca, cz) >= 0.9:
                        cpu += " (near a full core: the client may have set the pace)"
                n = "; ".join(x for x in (("Apache: " + ea) if ea else "",
                                          ("zk: " + ez) if ez else "", cpu) if x)
            cells.append(n)
            p("| " + " | ".join(cells) + " |")
    p()

    def fo(name):
        rows = []
        path = f"{res}/{name}-failover.tsv"
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    rep, killed, ms, errs, first_on, new_leader, rejoin = line.rstrip("\n").split("\t")
                    rows.append((rep, killed, float(ms), int(errs), first_on, new_leader, float(rejoin)))
        return rows
    fa, fz = fo("apache"), fo("zk")
    p("## Failover: kill -9 of the leader under a steady writer")
    p()
    p("The writer is one session doing one create (PERSISTENT_SEQUENTIAL, 10 bytes) at a time with")
    p("no pause, failing over between the three servers as ZooKeeper's clients do (session id,")
    p("password and last zxid carried over; round robin; 10 ms between failed connection attempts;")
    p(f"read timeout {int(env['WRITER_SESSION_MS']) * 2 // 3} ms, 2/3 of its {env['WRITER_SESSION_MS']} ms session timeout, as the Java client's).")
    p("Downtime runs from just before `kill -9` of the leader (bash's $EPOCHREALTIME) to the reply of")
    p("the first write that succeeded among those sent after the killed process was reaped (a write")
    p("sent in the instant between the signal and the process's death can still be committed by it).")
    p("Between repetitions the killed server is restarted and the script waits until it follows again")
    p("(one leader, two followers, `srvr` polled every 100 ms); \"rejoin\" is that wait, from the")
    p("restart, JVM start-up included. \"failed attempts\" counts the writer's refused or closed")
    p("connections and failed requests between the kill and the first good write.")
    p()
    p("| round.rep | Apache: killed | downtime ms | failed attempts | rejoin s | zk: killed | downtime ms | failed attempts | rejoin s |")
    p("|--:|---|--:|--:|--:|---|--:|--:|--:|")
    for i in range(max(len(fa), len(fz))):
        ca = fa[i] if i < len(fa) else None
        cz = fz[i] if i < len(fz) else None
        cells = [(ca or cz)[0]]
        for c in (ca, cz):
            if c is None:
                cells += ["-", "-", "-", "-"]
            else:
                cells += [f"server.{c[1]} (new leader server.{c[5]})", f"{c[2]:,.0f}", str(c[3]), f"{c[6]:.1f}"]
        p("| " + " | ".join(cells) + " |")
    def summary(rows, i):
        v = [r[i] for r in rows]
        return (statistics.median(v), max(v)) if v else (None, None)
    ma, xa = summary(fa, 2)
    mz, xz = summary(fz, 2)
    ja, _ = summary(fa, 6)
    jz, _ = summary(fz, 6)
    p(f"| **median** | | {fmt(ma, 0)} | | {fmt(ja, 1)} | | {fmt(mz, 0)} | | {fmt(jz, 1)} |")
    p(f"| **max** | | {fmt(xa, 0)} | | | | {fmt(xz, 0)} | | |")
    p()
    p(f"Downtime, zk / Apache: median {fmt(ratio(mz, ma), 2)}, max {fmt(ratio(xz, xa), 2)} (below 1 is better); {len(fa)} and {len(fz)} kills.")
    def steady(name):
        lat = []
        for r in R:
            path = f"{res}/{name}-writer.r{r}.log"
            if not os.path.exists(path):
                continue
            with open(path) as f:
                for line in f:
                    q = line.split()
                    if len(q) >= 4 and q[0] == "ok":
                        lat.append((int(q[2]) - int(q[1])) / 1e6)
        return (len(lat), statistics.median(lat)) if lat else None
    sa, sz = steady("apache"), steady("zk")
    if sa and sz:
        p()
        p(f"The writer's writes over the failover phases: Apache {sa[0]:,} (median {sa[1]:.2f} ms each),")
        p(f"zk {sz[0]:,} (median {sz[1]:.2f} ms each).")

if __name__ == "__main__":
    cmd = sys.argv[1].replace("-", "_")
    sys.exit(globals()["cmd_" + cmd](*sys.argv[2:]) or 0)
PY

# --- process management ----------------------------------------------------------------

stop_writer() {
    local pid=$WRITER_PID
    WRITER_PID=""
    stop_pid "$pid" "the failover writer"
}

stop_ensemble() { # name
    local sid
    for ((sid = 1; sid <= N; sid++)); do stop_server "$1.$sid" "$1 server.$sid"; done
}

# Everything still running, for finish: the writer, then every server.
stop_everything() {
    stop_writer
    local key
    for key in "${!PID[@]}"; do
        if [ -n "${PID[$key]}" ]; then stop_pid "${PID[$key]}" "$key"; fi
    done
}
set_cleanup_traps stop_everything restore-stdio

fourlw_mode() { # port
    python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import helper; print(helper.mode(int(sys.argv[2])))' \
        "$WORK" "$1"
}

# --- ensemble set-up -------------------------------------------------------------------

setup_ensemble() { # name
    local name=$1 sid ports
    read -r -a ports <<<"$(python3 "$HELPER" ports $((3 * N)))"
    for ((sid = 1; sid <= N; sid++)); do
        local key=$name.$sid
        DIR[$key]=$WORK/r$round/$name/s$sid
        CPORT[$key]=${ports[3 * (sid - 1)]}
        QPORT[$key]=${ports[3 * (sid - 1) + 1]}
        EPORT[$key]=${ports[3 * (sid - 1) + 2]}
        mkdir -p "${DIR[$key]}/data"
        echo "$sid" >"${DIR[$key]}/data/myid"
    done
    for ((sid = 1; sid <= N; sid++)); do
        local key=$name.$sid o
        {
            zoo_cfg "${DIR[$key]}/data" "${CPORT[$key]}" initLimit=10 syncLimit=5
            for ((o = 1; o <= N; o++)); do
                echo "server.$o=127.0.0.1:${QPORT[$name.$o]}:${EPORT[$name.$o]}"
            done
        } >"${DIR[$key]}/zoo.cfg"
        write_log4j "${DIR[$key]}"
    done
}

# Starts one server in the background (a child of this shell, so it can be waited for).
start_server() { # name sid
    local name=$1 key=$1.$2
    launch_server "$name" "${DIR[$key]}" org.apache.zookeeper.server.quorum.QuorumPeerMain
    PID[$key]=$!
}

client_ports() { # name
    local sid s=""
    for ((sid = 1; sid <= N; sid++)); do s="$s ${CPORT[$1.$sid]}"; done
    echo "$s"
}

servers_csv() { # name
    local sid s=""
    for ((sid = 1; sid <= N; sid++)); do s="$s${s:+,}127.0.0.1:${CPORT[$1.$sid]}"; done
    echo "$s"
}

show_logs() { # name
    local sid
    for ((sid = 1; sid <= N; sid++)); do
        show_server_log "${DIR[$1.$sid]}" 20
    done
}

# Waits until one server leads and the others follow; sets LEADER (sid) and WAITED (s).
wait_ensemble() { # name
    local r
    # shellcheck disable=SC2046
    if ! r=$(python3 "$HELPER" wait-ensemble "$START_TIMEOUT_S" $(client_ports "$1")); then
        show_logs "$1"
        die "the $1 ensemble did not settle (one leader, two followers) within $START_TIMEOUT_S s"
    fi
    read -r LEADER WAITED <<<"$r"
}

# Waits until the writer's log shows a success sent after T_NS; 0 if one came in time.
wait_writer_ok_after() { # t_ns timeout_s
    local t=$1 deadline=$(($(now_ns) + $2 * 1000000000)) offset=0
    [ -f "$WORK/writer.log" ] && offset=$(stat -c %s "$WORK/writer.log")
    while [ "$(now_ns)" -lt "$deadline" ]; do
        python3 "$HELPER" first-ok "$WORK/writer.log" "$offset" "$t" >/dev/null 2>&1 && return 0
        kill -0 "$WRITER_PID" 2>/dev/null || die "the failover writer exited"
        sleep 0.2
    done
    return 1
}

# --- one ensemble: workloads, then failovers -------------------------------------------

run_ensemble() { # name
    local name=$1 sid w leader_var=${1}_leader
    setup_ensemble "$name"
    log "round $round: starting the $name ensemble in $WORK/r$round/$name (client ports$(client_ports "$name"))"
    for ((sid = 1; sid <= N; sid++)); do start_server "$name" "$sid"; done
    wait_ensemble "$name"
    log "$name: server.$LEADER leads (settled after ${WAITED}s)"
    printf -v "${name}_leader" '%s' "${!leader_var:-}${!leader_var:+ }$LEADER"
    if [ "$name" = apache ]; then
        apache_version=$(python3 -c '
import sys; sys.path.insert(0, sys.argv[1]); import helper, re
m = re.search(r"^Zookeeper version: ([^,-]*)", helper.probe(int(sys.argv[2])), re.M)
print(m.group(1) if m else "")' "$WORK" "${CPORT[apache.1]}")
    fi

    for w in $WORKLOADS; do
        extra=()
        [ "$w" = mixed ] && extra=(--ratio 9)
        log "$w against the $name ensemble"
        bench "$(servers_csv "$name")" "$w" "${extra[@]}" >"$RES/$name-$w.r$round.json" 2>"$RES/$name-$w.r$round.err" ||
            die "zk bench $w against $name failed: $(cat "$RES/$name-$w.r$round.err")"
    done

    # Failover.
    if [ "$reps" -gt 0 ]; then
        log "failover: starting the writer against $name"
        WRITER_SESSION_MS=$WRITER_SESSION_MS "${pin_load[@]}" python3 "$HELPER" writer \
            "$WORK/writer.log" "$(servers_csv "$name")" 2>"$WORK/$name-writer.r$round.err" &
        WRITER_PID=$!
        wait_writer_ok_after "$(now_ns)" 30 || die "the writer made no write against $name: $(cat "$WORK/$name-writer.r$round.err")"
        local rep
        for ((rep = 1; rep <= reps; rep++)); do
            wait_ensemble "$name"
            local victim=$LEADER victim_pid=${PID[$name.$LEADER]}
            # Steady state first: the writer has just made a write.
            wait_writer_ok_after "$(now_ns)" 30 || die "the writer is not writing to $name before repetition $rep"
            local offset kill_us kill_ns gone_us gone_ns
            offset=$(stat -c %s "$WORK/writer.log")
            kill_us=${EPOCHREALTIME/./}
            kill -KILL "$victim_pid"
            PID[$name.$victim]=""
            wait "$victim_pid" 2>/dev/null || true
            gone_us=${EPOCHREALTIME/./}
            kill_ns=$((kill_us * 1000))
            gone_ns=$((gone_us * 1000))
            # Writes sent before the process was gone could still reach the old leader.
            local deadline=$(($(now_ns) + FAILOVER_TIMEOUT_S * 1000000000)) r=""
            while :; do
                if r=$(python3 "$HELPER" first-ok "$WORK/writer.log" "$offset" "$gone_ns"); then break; fi
                [ "$(now_ns)" -lt "$deadline" ] || die "$name: no write succeeded within $FAILOVER_TIMEOUT_S s of killing server.$victim"
                sleep 0.05
            done
            local ok_ns first_on ms errs new_leader
            read -r ok_ns first_on <<<"$r"
            ms=$(python3 -c "print(f'{($ok_ns - $kill_ns) / 1e6:.1f}')")
            errs=$(python3 "$HELPER" errors "$WORK/writer.log" "$offset" "$kill_ns" "$ok_ns")
            new_leader=-
            for ((sid = 1; sid <= N; sid++)); do
                [ "$sid" = "$victim" ] && continue
                [ "$(fourlw_mode "${CPORT[$name.$sid]}")" = leader ] && new_leader=$sid
            done
            log "$name round $round rep $rep: killed leader server.$victim (gone after $(((gone_ns - kill_ns) / 1000)) us); first write after ${ms} ms ($errs failed attempts, via $first_on); new leader server.$new_leader"
            local t_restart rejoin
            t_restart=$(now_ns)
            start_server "$name" "$victim"
            wait_ensemble "$name"
            rejoin=$(python3 -c "print(f'{($(now_ns) - $t_restart) / 1e9:.1f}')")
            log "$name: server.$victim follows again (server.$LEADER leads), ${rejoin}s after its restart"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round.$rep" "$victim" "$ms" "$errs" "$first_on" "$new_leader" \
                "$rejoin" >>"$RES/$name-failover.tsv"
            sleep 2
        done
        stop_writer
        mv "$WORK/writer.log" "$RES/$name-writer.r$round.log"
    fi
    stop_ensemble "$name"
}

# The tree as it is when the run starts (others may commit while it runs); the binary is
# only known to match it when the script built it or it was built just before.
rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$REPO" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null ||
    [ -n "$(git -C "$REPO" status --porcelain --untracked-files=normal -- src 2>/dev/null | head -n 1)" ]; then
    rev="$rev+local changes"
fi

started=$(now_ns)
apache_leader="" zk_leader="" apache_version=""
for ((round = 1; round <= rounds; round++)); do
    run_ensemble apache
    run_ensemble zk
done
elapsed_s=$((($(now_ns) - started) / 1000000000))

# --- the report ------------------------------------------------------------------------

export_machine_info

export RES WORKLOADS DURATION WARMUP CLIENTS INFLIGHT KEYS APACHE_HEAP quick elapsed_s rounds
export rev pinning apache_version apache_leader zk_leader WRITER_SESSION_MS
export cmdline="tests/bench/compare_ensemble.sh$([ "$quick" = 1 ] && echo " --quick") --reps $reps --rounds $rounds RESULT.md"
export bench_cmd="zk bench --server A,B,C --workload W --clients $CLIENTS --inflight $INFLIGHT --duration $DURATION --warmup $WARMUP --size 100 --keys $KEYS --json"

python3 "$HELPER" report >"$WORK/report.md"
publish_report "$out"
