#!/usr/bin/env bash
# compare.sh: zk against Apache ZooKeeper 3.8 on this machine, side by side, from one run.
#
# Usage: tests/bench/compare.sh [--quick] [--znodes N] RESULT.md
#
# Starts Apache ZooKeeper 3.8 (the Debian `zookeeper` package, ZooKeeperServerMain) and
# `zk server` with the same zoo.cfg (standalone, forceSync=yes, snapCount=100000, data dirs
# side by side in one temporary directory, so on one filesystem), each pinned with taskset
# to SERVER_CPU (default 0), and runs `zk bench` pinned to LOAD_CPU (default 1) against each
# in turn, workload by workload (Apache first, then zk, so drift hits both alike). Then it
# loads N znodes of 100 bytes into each, reads the resident size (VmRSS from
# /proc/<pid>/status), and times restarts with those znodes. Writes a markdown report with
# ratios zk / Apache to stdout and to RESULT.md. The raw JSON of every run and the server
# logs stay in the work directory when KEEP_WORK=1.
#
#   --quick       a smoke test of about a minute: short runs, 20,000 znodes
#   --znodes N    znodes for the memory and restart measurements (default 1,000,000;
#                 --quick: 20,000)
#
# Environment: ZK_BIN (default <repo>/target/release/zk, built if missing), JAVA,
# APACHE_HEAP (default 1000m, zkServer.sh's default heap), SERVER_CPU, LOAD_CPU,
# BENCH_DURATION, BENCH_WARMUP, BENCH_CLIENTS, BENCH_INFLIGHT, BENCH_KEYS, WORKLOADS
# (space-separated), KEEP_WORK=1, TMPDIR (where the data directories go).
#
# Every server this script starts is stopped on exit, Ctrl-C included.

set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_NAME=compare
LOG_CLOCK=0

quick=0
znodes=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --znodes)
        [ $# -ge 2 ] || usage
        znodes=$2
        shift
        ;;
    --znodes=*) znodes=${1#--znodes=} ;;
    -h | --help) usage ;;
    -*)
        echo "compare.sh: unknown option $1" >&2
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

ZK_BIN=${ZK_BIN:-$REPO/target/release/zk}

if [ "$quick" = 1 ]; then
    DURATION=${BENCH_DURATION:-2}
    WARMUP=${BENCH_WARMUP:-1}
    CLIENTS=${BENCH_CLIENTS:-8}
    INFLIGHT=${BENCH_INFLIGHT:-16}
    KEYS=${BENCH_KEYS:-1000}
    WORKLOADS=${WORKLOADS:-create set get mixed latency}
    znodes=${znodes:-20000}
else
    DURATION=${BENCH_DURATION:-10}
    # Long enough for the JVM's JIT to settle before anything is measured.
    WARMUP=${BENCH_WARMUP:-5}
    CLIENTS=${BENCH_CLIENTS:-16}
    INFLIGHT=${BENCH_INFLIGHT:-16}
    KEYS=${BENCH_KEYS:-10000}
    WORKLOADS=${WORKLOADS:-create set get mixed multi ephemeral watch lock latency}
    znodes=${znodes:-1000000}
fi
case "$znodes" in '' | *[!0-9]*) echo "compare.sh: --znodes needs a number" >&2 && exit 2 ;; esac
# How long a server may take to start and load its data before the run gives up.
START_TIMEOUT_S=${START_TIMEOUT_S:-900}

# --- prerequisites -------------------------------------------------------------------

check_prerequisites "to write the report"
setup_pinning servers "load generator"

make_work zk-compare
declare -A PID=() PORT=() DIR=()

stop_servers() {
    stop_server apache
    stop_server zk
}
set_cleanup_traps stop_servers restore-stdio

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sends a four-letter word to 127.0.0.1:PORT and prints the answer (empty if refused).
fourlw() { # port word
    local fd out
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 0
    printf '%s' "$2" >&"$fd"
    out=$(timeout 5 cat <&"$fd" || true)
    exec {fd}>&-
    printf '%s' "$out"
}

node_count() { # port
    fourlw "$1" srvr 2>/dev/null | sed -n 's/^Node count: //p'
}

rss_kib() { # pid
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# Starts a server on its existing directory and waits until `srvr` answers with at least
# MIN_NODES znodes loaded; sets START_SECS to the seconds from launch to that answer. (Not
# run in $(...): the server must be a child of this shell, so stop_server can wait for it.)
start_server() { # name min_nodes
    local name=$1 min=${2:-0} t0
    local dir=${DIR[$name]}
    t0=$(now_ns)
    launch_server "$name" "$dir" org.apache.zookeeper.server.ZooKeeperServerMain
    PID[$name]=$!
    if ! START_SECS=$(wait_ready "${PID[$name]}" "${PORT[$name]}" "$min" "$t0"); then
        show_server_log "$dir" 30
        kill -KILL "${PID[$name]}" 2>/dev/null || true
        PID[$name]=""
        die "$name did not start with $min znodes"
    fi
}

# Polls `srvr` every 10 ms until the server reports at least MIN znodes; prints the seconds
# since T0_NS. In Python because a probe must not hang: Apache accepts connections before it
# serves, and its "not currently serving" answer need not end with a close, so each probe
# takes the answer as complete after 50 ms of silence rather than waiting for the close.
wait_ready() { # pid port min t0_ns
    python3 - "$@" "$START_TIMEOUT_S" <<'PY'
import os, re, socket, sys, time
pid, port, want, t0, limit = (int(a) for a in sys.argv[1:])
def probe():
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"srvr")
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
while True:
    now = time.time_ns()
    m = re.search(r"^Node count: (\d+)", probe(), re.M)
    if m and int(m.group(1)) >= want:
        print(f"{(time.time_ns() - t0) / 1e9:.3f}")
        sys.exit(0)
    try:
        # A child that exited stays a zombie until the shell reaps it; that counts as gone.
        with open(f"/proc/{pid}/stat") as f:
            gone = f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        gone = True
    if gone:
        sys.exit("the server exited while starting")
    if (now - t0) / 1e9 > limit:
        sys.exit(f"no srvr answer with {want} znodes within {limit} s")
    time.sleep(0.01)
PY
}

setup_server() { # name
    local name=$1
    DIR[$name]=$WORK/$name
    mkdir -p "${DIR[$name]}/data"
    PORT[$name]=$(free_port)
    zoo_cfg "${DIR[$name]}/data" "${PORT[$name]}" >"${DIR[$name]}/zoo.cfg"
    write_log4j "${DIR[$name]}"
}

# --- throughput and latency ----------------------------------------------------------

setup_server apache
setup_server zk
log "work directory $WORK; Apache on port ${PORT[apache]}, zk on port ${PORT[zk]}"
start_server apache 0
start_server zk 0
apache_version=$(fourlw "${PORT[apache]}" srvr | sed -n 's/^Zookeeper version: \([^,-]*\).*/\1/p')

started=$(now_ns)
for w in $WORKLOADS; do
    extra=()
    [ "$w" = mixed ] && extra=(--ratio 9)
    for name in apache zk; do
        log "$w against $name"
        bench "127.0.0.1:${PORT[$name]}" "$w" "${extra[@]}" >"$RES/$name-$w.json" 2>"$RES/$name-$w.err" ||
            die "zk bench $w against $name failed: $(cat "$RES/$name-$w.err")"
    done
done

# --- memory and restart with N znodes ------------------------------------------------

# Loads $znodes znodes of 100 bytes into NAME and waits for background work (Apache's
# periodic snapshot, GC) to settle; sets TOTAL to the node count and RSS to VmRSS in KiB.
load_znodes() { # name label
    local name=$1
    log "loading $znodes znodes of 100 bytes into $name ($2)"
    "${pin_load[@]}" "$ZK_BIN" bench --server "127.0.0.1:${PORT[$name]}" --workload get \
        --clients 8 --keys "$znodes" --size 100 --duration 1 --warmup 0 --keep \
        --root /zk-bench-memory --json >"$RES/$name-load.json" 2>"$RES/$name-load.err" ||
        die "loading $name failed: $(cat "$RES/$name-load.err")"
    TOTAL=$(node_count "${PORT[$name]}")
    sleep 3
    RSS=$(rss_kib "${PID[$name]}")
}

for name in apache zk; do
    # First into the process that ran every workload above: what it holds after that history.
    load_znodes "$name" "the process that ran the workloads"
    rss_worked=$RSS
    # Then into a fresh process on an empty data directory: the size of the znodes alone.
    stop_server "$name"
    rm -rf "${DIR[$name]}/data"
    mkdir -p "${DIR[$name]}/data"
    start_server "$name" 0
    load_znodes "$name" "a fresh process"
    total=$TOTAL
    rss_loaded=$RSS

    stop_server "$name"
    log "restarting $name with its data as the load left it"
    start_server "$name" "$total"
    t_as_left=$START_SECS
    if [ "$name" = zk ]; then
        # zk takes snapshots on its own only every snapCount txns; ask for one so the second
        # restart starts from a snapshot holding everything, as Apache's does (Apache writes
        # a snapshot while starting up).
        "$ZK_BIN" snapshot save --server "127.0.0.1:${PORT[zk]}" --data-dir "${DIR[zk]}/data" \
            >"$RES/zk-snap.out" 2>&1 || die "zk snapshot save failed: $(cat "$RES/zk-snap.out")"
    else
        sleep 3
    fi
    stop_server "$name"
    log "restarting $name from a snapshot holding all znodes"
    start_server "$name" "$total"
    t_snap=$START_SECS
    sleep 3
    rss_restarted=$(rss_kib "${PID[$name]}")
    du_kib=$(du -sk "${DIR[$name]}/data" | cut -f1)
    snaps=$(ls "${DIR[$name]}/data/version-2" | grep -c '^snapshot\.' || true)
    cat >"$RES/$name-memory.env" <<EOF
total_znodes=$total
rss_loaded_kib=$rss_loaded
rss_worked_kib=$rss_worked
rss_restarted_kib=$rss_restarted
restart_as_left_s=$t_as_left
restart_snapshot_s=$t_snap
data_dir_kib=$du_kib
snapshot_files=$snaps
EOF
    stop_server "$name"
done
elapsed_s=$((($(now_ns) - started) / 1000000000))

# --- the report ----------------------------------------------------------------------

export_machine_info
rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$REPO" diff --quiet HEAD 2>/dev/null; then rev="$rev+local changes"; fi

export RES WORKLOADS DURATION WARMUP CLIENTS INFLIGHT KEYS APACHE_HEAP znodes quick elapsed_s
export rev pinning apache_version
if [ "$quick" = 1 ]; then
    export cmdline="tests/bench/compare.sh --quick --znodes $znodes RESULT.md"
else
    export cmdline="tests/bench/compare.sh --znodes $znodes RESULT.md"
fi
export bench_cmd="zk bench --server HOST:PORT --workload W --clients $CLIENTS --inflight $INFLIGHT --duration $DURATION --warmup $WARMUP --size 100 --keys $KEYS --json"

python3 - >"$WORK/report.md" <<'PY'
import json, os

env = os.environ
res = env["RES"]

def load(name, w):
    with open(f"{res}/{name}-{w}.json") as f:
        return json.load(f)

def ratio(z, a):
    if a in (None, 0) or z is None:
        return "-"
    return f"{z / a:.2f}"

def fmt(x, places):
    return "-" if x is None else f"{x:,.{places}f}"

def notes(d):
    out = []
    for op, s in d["ops"].items():
        for code, n in s["errors"].items():
            out.append(f"{op}: {n} {code}")
    if d["lost_sessions"]:
        out.append(f"{d['lost_sessions']} sessions lost")
    if d["abandoned"]:
        out.append(f"{d['abandoned']} abandoned")
    return "; ".join(out)

def cpu_note(a, z):
    ca, cz = a.get("client_cpu_cores"), z.get("client_cpu_cores")
    if ca is None or cz is None:
        return ""
    note = f"load generator CPU {ca:.0%} / {cz:.0%}"
    if max(ca, cz) >= 0.9:
        note += " (near a full core: the client may have set the pace)"
    return note

p = print
mode = "quick smoke test" if env["quick"] == "1" else "full run"
p(f"# zk vs Apache ZooKeeper {env['apache_version'] or '3.8'}: side by side ({mode})")
p()
p(f"- Date: {env['date_utc']}; total run time {env['elapsed_s']} s")
p(f"- Machine: {env['cpu'] or 'unknown CPU'}, {env['ncpu']} CPUs, {env['kernel']}; {env['pinning']}")
p(f"- Data directories: both on {env['fs']}; forceSync=yes, snapCount=100000, tickTime=2000, standalone")
p(f"- zk: `{env['zk_version']}` (git {env['rev']})")
p(f"- Apache ZooKeeper: Debian package, ZooKeeperServerMain, {env['java_version']}, -Xmx{env['APACHE_HEAP']}, log4j at INFO to a file")
p(f"- Reproduce: `{env['cmdline']}`; each run is `{env['bench_cmd']}` (mixed adds `--ratio 9`), Apache first, then zk")
p()
p("## Throughput and latency")
p()
p("One row per operation the workload reports. ops/s counts successful replies to requests sent in the")
p("measured window; latency is per request, from handing it to the socket to reading its reply")
p("(set->event: from sending the setData to receiving the watch event on the other session;")
p("lock: one acquire-and-release round trip of the lock recipe). Ratios are zk / Apache:")
p("above 1 is better for ops/s, below 1 is better for latency. \"load generator CPU\" is the share")
p("of its one core that `zk bench` used during the Apache run / the zk run.")
p()
p("| workload | op | Apache ops/s | zk ops/s | ratio | Apache p50 ms | zk p50 ms | ratio | Apache p99 ms | zk p99 ms | ratio | Apache p99.9 ms | zk p99.9 ms | ratio | notes |")
p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
for w in env["WORKLOADS"].split():
    a, z = load("apache", w), load("zk", w)
    ops = list(a["ops"].keys()) + [o for o in z["ops"] if o not in a["ops"]]
    rows = [(op, a["ops"].get(op), z["ops"].get(op)) for op in ops]
    if a.get("total") and z.get("total"):
        rows.append(("total", a["total"], z["total"]))
    for op, sa, sz in rows:
        def get(s, *path):
            for k in path:
                if s is None:
                    return None
                s = s.get(k)
            return s
        cells = [w, op]
        ra, rz = get(sa, "ops_per_s"), get(sz, "ops_per_s")
        cells += [fmt(ra, 0), fmt(rz, 0), ratio(rz, ra)]
        for q in ("p50", "p99", "p99_9"):
            la, lz = get(sa, "latency_ms", q), get(sz, "latency_ms", q)
            cells += [fmt(la, 3), fmt(lz, 3), ratio(lz, la)]
        n = ""
        if op == ops[0]:
            n = "; ".join(x for x in (
                ("Apache: " + notes(a)) if notes(a) else "",
                ("zk: " + notes(z)) if notes(z) else "",
                cpu_note(a, z)) if x)
        cells.append(n)
        p("| " + " | ".join(cells) + " |")
p()

def memenv(name):
    out = {}
    with open(f"{res}/{name}-memory.env") as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            out[k] = v
    return out

ma, mz = memenv("apache"), memenv("zk")
la, lz = load("apache", "load"), load("zk", "load")
n = int(env["znodes"])
p(f"## Memory and restart with {n:,} znodes of 100 bytes")
p()
p(f"The znodes are created by `zk bench --workload get --keys {n} --size 100 --keep` (8 sessions, 100")
p("requests in flight each, one create per znode, so the txn log holds one txn per znode).")
p()
p("| measure | Apache | zk | ratio |")
p("|---|--:|--:|--:|")
def mib(k):
    return int(k) / 1024
def row(label, av, zv, places=1):
    p(f"| {label} | {fmt(av, places)} | {fmt(zv, places)} | {ratio(zv, av)} |")
row("znodes in the tree (srvr Node count)", int(ma["total_znodes"]), int(mz["total_znodes"]), 0)
def per_s(d):
    return d["populated"] / d["populate_s"] if d["populate_s"] else None
row("load into a fresh server: creates per second", per_s(la), per_s(lz), 0)
row("resident size after the load, fresh server, MiB (VmRSS)", mib(ma["rss_loaded_kib"]), mib(mz["rss_loaded_kib"]))
row("resident size after the workloads above and the load, same process, MiB", mib(ma["rss_worked_kib"]), mib(mz["rss_worked_kib"]))
row("resident size after a restart, MiB (VmRSS)", mib(ma["rss_restarted_kib"]), mib(mz["rss_restarted_kib"]))
row("restart with the data as the load left it, s", float(ma["restart_as_left_s"]), float(mz["restart_as_left_s"]), 3)
row("restart from a snapshot holding every znode, s", float(ma["restart_snapshot_s"]), float(mz["restart_snapshot_s"]), 3)
row("disk used by the data directory after the restarts, MiB (du)", mib(ma["data_dir_kib"]), mib(mz["data_dir_kib"]))
p()
p("- Resident size is VmRSS from /proc/<pid>/status, read 3 s after the load finished (and 3 s after")
p("  the second restart). The znodes are loaded twice per server: into the process that ran every")
p("  workload above (whose creates leave nothing behind: every run deletes its znodes), then, after")
p("  stopping it and emptying its data directory, into a fresh process; the rows after that use")
p(f"  the fresh one's data. Apache's is the JVM's whole footprint with -Xmx{env['APACHE_HEAP']}; the JVM does")
p("  not hand collected heap back at once, so its number depends on the heap settings.")
p("- Restart time runs from launching the process to the first `srvr` answer that reports all the")
p("  znodes (polled every 10 ms over a fresh connection), JVM start-up included for Apache, whose")
p("  port is open before its data is loaded (it answers \"not currently serving\" until then).")
p("- \"As the load left it\": each server recovers from whatever it wrote while loading: its periodic")
p("  snapshots (every ~snapCount txns) and the txn log after the last of them. Apache 3.8 also writes")
p("  a snapshot of the whole tree while it starts, so its second restart loads that snapshot.")
p("- \"From a snapshot holding every znode\": Apache restarts once more (from the snapshot its previous")
p("  start wrote); zk is first asked for a snapshot with `zk snapshot save` (its own 4lw `snap`),")
p("  which it writes in the background, then restarts.")
p(f"- Snapshot files in the data directory at the end: Apache {ma['snapshot_files']}, zk {mz['snapshot_files']}.")
PY

publish_report "$out"
