# shellcheck shell=bash
# lib.sh: helpers shared by tests/bench/compare.sh and tests/bench/compare_ensemble.sh.
# Sourced, not run. Defines functions and the settings both scripts read the same way; it
# starts nothing. The sourcing script sets, before it uses these helpers:
#   LOG_NAME      the prefix of every log line ("compare", "compare-ensemble")
#   LOG_CLOCK     1 to add the time of day to every log line, 0 not to
#   ZK_BIN        the zk binary (its default differs between the scripts)
#   PID           an associative array, server key -> pid of a running server ("" once stopped)

# The repository: two levels above this file's directory (tests/bench).
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
JAVA=${JAVA:-java}
JARS=${ZK_JAVA_SHARE:-/usr/share/java}
APACHE_HEAP=${APACHE_HEAP:-1000m}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
# How long a server may take to exit on SIGTERM before it is killed.
STOP_TIMEOUT_S=30

# Prints the script's header comment (from line 2 to the first empty line) and exits 2.
usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

log() {
    if [ "${LOG_CLOCK:-0}" = 1 ]; then
        printf '%s: %(%T)T %s\n' "$LOG_NAME" -1 "$*" >&2
    else
        printf '%s: %s\n' "$LOG_NAME" "$*" >&2
    fi
}
die() {
    log "error: $*"
    exit 1
}

now_ns() { date +%s%N; }

# --- prerequisites -------------------------------------------------------------------

# Builds zk if ZK_BIN is missing or has no bench subcommand, checks for java, python3 and the
# Debian ZooKeeper jars, and sets APACHE_CP, the class path that runs Apache ZooKeeper.
check_prerequisites() { # what python3 is needed for ("to write the report")
    if [ ! -x "$ZK_BIN" ] || ! "$ZK_BIN" bench --help >/dev/null 2>&1; then
        log "building zk (cargo build --release)"
        (cd "$REPO" && cargo build --release >&2)
    fi
    "$ZK_BIN" bench --help >/dev/null 2>&1 || die "$ZK_BIN has no bench subcommand"
    command -v "$JAVA" >/dev/null || die "no java (install the Debian zookeeper package)"
    command -v python3 >/dev/null || die "python3 is needed $1"
    APACHE_CP=""
    local j
    for j in zookeeper.jar zookeeper-jute.jar slf4j-api.jar slf4j-log4j12.jar log4j-1.2.jar; do
        [ -f "$JARS/$j" ] || die "missing $JARS/$j (Debian packages zookeeper, libslf4j-java, liblog4j1.2-java)"
        APACHE_CP="$APACHE_CP${APACHE_CP:+:}$JARS/$j"
    done
}

# Sets pin_server and pin_load, the taskset prefixes that keep the servers on SERVER_CPU and
# the load on LOAD_CPU (both empty when that is not possible), and pinning, the report's
# sentence about it: "SERVERS on CPU n, LOAD on CPU m (taskset)".
# shellcheck disable=SC2034 # pinning is the scripts' to read
setup_pinning() { # servers load (as the report names them)
    pin_server=()
    pin_load=()
    if command -v taskset >/dev/null && [ "$(nproc --all)" -ge 2 ] && [ "$SERVER_CPU" != "$LOAD_CPU" ]; then
        pin_server=(taskset -c "$SERVER_CPU")
        pin_load=(taskset -c "$LOAD_CPU")
        pinning="$1 on CPU $SERVER_CPU, $2 on CPU $LOAD_CPU (taskset)"
    else
        log "warning: not pinning (needs taskset and two CPUs); numbers will be noisier"
        pinning="not pinned (taskset or a second CPU missing)"
    fi
}

# Creates the work directory WORK (under TMPDIR, default /tmp) and its results directory RES.
make_work() { # mktemp name prefix
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    RES=$WORK/results
    mkdir -p "$RES"
}

# --- servers -------------------------------------------------------------------------

# Prints a zoo.cfg with the settings every server of both benchmarks runs with; any
# key=value arguments go in right after tickTime.
zoo_cfg() { # data_dir client_port [key=value...]
    local data=$1 port=$2
    shift 2
    echo "tickTime=2000"
    [ $# -eq 0 ] || printf '%s\n' "$@"
    cat <<EOF
dataDir=$data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
forceSync=yes
snapCount=100000
4lw.commands.whitelist=*
admin.enableServer=false
EOF
}

# Writes DIR/log4j.properties: Apache logs at INFO to DIR/zookeeper.log.
write_log4j() { # dir
    cat >"$1/log4j.properties" <<EOF
log4j.rootLogger=INFO, F
log4j.appender.F=org.apache.log4j.FileAppender
log4j.appender.F.File=$1/zookeeper.log
log4j.appender.F.layout=org.apache.log4j.PatternLayout
log4j.appender.F.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
EOF
}

# Launches Apache ZooKeeper (NAME apache, with MAIN_CLASS) or zk (any other NAME) on
# DIR/zoo.cfg in the background, pinned, output appended to DIR/server.out; the pid is in $!
# afterwards. (Not to be run in $(...): the server must be a child of the script's shell, so
# that stop_pid can wait for it.)
launch_server() { # name dir main_class
    local name=$1 dir=$2
    if [ "$name" = apache ]; then
        "${pin_server[@]}" "$JAVA" "-Xmx$APACHE_HEAP" \
            "-Dlog4j.configuration=file:$dir/log4j.properties" \
            -Dzookeeper.jmx.log4j.disable=true \
            -cp "$APACHE_CP" "$3" "$dir/zoo.cfg" \
            >>"$dir/server.out" 2>&1 </dev/null &
    else
        "${pin_server[@]}" "$ZK_BIN" server --config "$dir/zoo.cfg" \
            >>"$dir/server.out" 2>&1 </dev/null &
    fi
}

# The last lines of a server's output and log, to stderr.
show_server_log() { # dir lines
    tail -n "$2" "$1/server.out" "$1/zookeeper.log" 2>/dev/null >&2 || true
}

# Sends SIGNAL (default TERM) to PID and waits up to STOP_TIMEOUT_S for it to exit, then
# kills it; reaps it either way.
stop_pid() { # pid label [signal]
    local pid=$1 label=$2 sig=${3:-TERM}
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    local i
    for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$label did not exit on SIG$sig; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Stops the server PID[KEY] (if it runs) and marks it stopped.
stop_server() { # key [label, default the key]
    local key=$1 pid=${PID[$1]:-}
    # shellcheck disable=SC2004 # PID is associative: the $ is needed
    PID[$key]=""
    stop_pid "$pid" "${2:-$key}"
}

# Runs `zk bench` (pinned to LOAD_CPU) against SERVERS with the run's settings.
bench() { # servers ("host:port,...") workload [extra args...]
    local servers=$1 w=$2
    shift 2
    "${pin_load[@]}" "$ZK_BIN" bench --server "$servers" --workload "$w" \
        --clients "$CLIENTS" --inflight "$INFLIGHT" --duration "$DURATION" --warmup "$WARMUP" \
        --size 100 --keys "$KEYS" --json "$@"
}

# --- cleanup -------------------------------------------------------------------------

# Stops everything on exit, Ctrl-C included: sets the EXIT trap to finish and makes INT and
# TERM exit with 130. STOP_FN is the script's function that stops every process it started.
# With "restore-stdio", finish first restores default INT and TERM handling and puts stdout
# and stderr back to what they are now: a trap that fires during a command with redirections
# (a bench run writing its JSON to a file) runs with those redirections.
set_cleanup_traps() { # stop_fn [restore-stdio]
    CLEANUP_STOP_FN=$1
    CLEANUP_RESTORE_STDIO=${2:-}
    if [ "$CLEANUP_RESTORE_STDIO" = restore-stdio ]; then
        exec {TTY_OUT}>&1 {TTY_ERR}>&2
    fi
    trap finish EXIT
    trap 'exit 130' INT TERM
}

# Stops everything, then removes WORK, or keeps it (and says so) when KEEP_WORK=1 or the
# script failed; exits with the script's status.
finish() {
    local rc=$?
    if [ "$CLEANUP_RESTORE_STDIO" = restore-stdio ]; then
        trap - INT TERM
        exec 1>&"$TTY_OUT" 2>&"$TTY_ERR"
    fi
    "$CLEANUP_STOP_FN"
    if [ "${KEEP_WORK:-0}" = 1 ] || [ $rc -ne 0 ]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}

# --- the report ----------------------------------------------------------------------

# Sets and exports what both reports say about the machine, Java, the filesystem of WORK
# and zk: cpu, java_version, fs, zk_version, kernel, ncpu, date_utc.
export_machine_info() {
    cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
    java_version=$("$JAVA" -version 2>&1 | head -n 1)
    fs=$(df -T "$WORK" | awk 'NR == 2 {print $2 " (" $1 ")"}')
    export cpu java_version fs
    export zk_version=$("$ZK_BIN" --version)
    export kernel=$(uname -sr) ncpu=$(nproc --all) date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
}

# Prints WORK/report.md and copies it to OUT.
publish_report() { # out
    cat "$WORK/report.md"
    cp "$WORK/report.md" "$1"
    log "report written to $1"
}
