//! Process-level ensemble harness: `Ensemble` runs N voting `zk server` processes (and any
//! observers) on free loopback ports, each with its own directory (`zoo.cfg`, `data/myid`,
//! `server.log`), and lets a test ask each one what it is (`srvr`, `mntr`), kill -9 it,
//! stop it with SIGTERM, restart it on the same files, wipe its data, read its log and dump
//! its recovered tree (`zk snapshot dump`). With `start_proxied` every directed peer link
//! (from, to, quorum or election port) runs through a TCP proxy inside the test process, so
//! `isolate(sid)` can cut a server off from its peers without root, and `heal` joins it
//! again. It never uses fixed ports or fixed sleeps: every wait polls a condition under a
//! named bound and panics with the tail of every server's log. Corresponds to ZooKeeper's
//! QuorumPeerTestBase/QuorumUtil, with the proxies in the role of its Jepsen-style
//! iptables partitions.
//!
//! Isolation is a black hole, as a real partition is: bytes on a cut link vanish (no reset),
//! new connections are accepted and lead nowhere, so the servers notice only through their
//! own timeouts (syncLimit, initLimit). `heal` closes every connection that was cut and
//! forwards new ones again. This covers all peer traffic because zk's peer links
//! (src/net/peer.rs) are one-way, one per ordered pair and channel, each dialled by the
//! sender to the address in its own zoo.cfg; nothing is dialled back to an address a peer
//! advertised.

use super::{unique_temp_dir, POLL_INTERVAL, STARTUP_TIMEOUT};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use zk::client::{self, Client};

/// zoo.cfg commitLogCount of every member: a follower that misses more txns than this
/// catches up by SNAP, fewer by DIFF (tests/ensemble.rs's catch-up tests rely on it).
pub const COMMIT_LOG_COUNT: usize = 150;
/// zoo.cfg tickTime of every ensemble member.
pub const TICK_TIME_MS: u64 = 100;
/// zoo.cfg initLimit (ticks).
pub const INIT_LIMIT_TICKS: u64 = 10;
/// zoo.cfg syncLimit (ticks).
pub const SYNC_LIMIT_TICKS: u64 = 5;
/// The session timeout test clients ask for: ZooKeeper's default maxSessionTimeout (20
/// ticks), so what is asked is what is granted.
pub const SESSION_TIMEOUT_MS: i32 = 20 * TICK_TIME_MS as i32;
/// How long an election (or re-election) may take before `wait_leader` gives up.
pub const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a single server may take to reach a mode (following includes its sync).
pub const MODE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `client` keeps trying to open a session on a server.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a test client waits for any one reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one four-letter word may take.
pub const FLW_TIMEOUT: Duration = Duration::from_secs(2);
/// How many lines of each log a failure message shows.
pub const LOG_TAIL_LINES: usize = 40;
/// What `srvr` and most four-letter words answer while a server is not serving.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";
/// How many times `start` retries with fresh ports when a server could not bind one.
const START_ATTEMPTS: u32 = 3;
/// How long a proxy waits to reach the real port behind it.
const PROXY_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How much a proxy pump reads at once.
const PROXY_BUF_BYTES: usize = 16 << 10;

/// Ensembles run one at a time: each is several servers ticking every 100 ms, and two of them
/// side by side on a small machine would starve each other into spurious re-elections.
static SERIAL: Mutex<()> = Mutex::new(());

/// Which peer port a proxied link carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Zab: learners connect to the leader's quorum port.
    Quorum,
    /// FastLeaderElection's connections between election ports.
    Election,
}

/// One ensemble member and its files.
struct Member {
    sid: u64,
    observer: bool,
    client_port: u16,
    quorum_port: u16,
    election_port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// How many times the harness started this server.
    starts: u32,
    /// Where in the log file the current (or last) run begins.
    run_log_start: u64,
}

impl Member {
    fn cfg_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }
}

/// A running (or prepared) ensemble; every server is killed and the directory removed on
/// drop (kept, with its path printed, when the test panicked).
pub struct Ensemble {
    pub dir: PathBuf,
    members: Vec<Member>,
    proxies: Vec<Proxy>,
    proxied: bool,
    dumps_taken: u32,
    _serial: MutexGuard<'static, ()>,
}

/// Binds `n` distinct loopback ports at once and returns them with the listeners still held,
/// so nothing else (a proxy listener included) can be given one of them meanwhile.
fn hold_free_ports(n: usize) -> (Vec<u16>, Vec<TcpListener>) {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect();
    (ports, listeners)
}

impl Ensemble {
    /// Starts `voters` participants (sids 1..=voters) and `observers` observers (the sids
    /// after them) with direct peer links, and returns once every server answers `ruok` and
    /// a leader is elected (`wait_leader`). Retries with fresh ports when a server could not
    /// bind one.
    pub fn start(voters: usize, observers: usize) -> Ensemble {
        Ensemble::start_with(voters, observers, false)
    }

    /// As `start`, with every peer link through a proxy, so `isolate` and `heal` work.
    pub fn start_proxied(voters: usize, observers: usize) -> Ensemble {
        Ensemble::start_with(voters, observers, true)
    }

    fn start_with(voters: usize, observers: usize, proxied: bool) -> Ensemble {
        let mut last = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let mut ens = Ensemble::prepare(voters, observers, proxied);
            let sids = ens.sids();
            let mut started = Ok(());
            for &sid in &sids {
                started = ens.spawn(sid);
                if started.is_err() {
                    break;
                }
            }
            let elected = started.and_then(|()| {
                // Not wait_leader: a server that exits here (say, on a port taken since it
                // was allocated) is a reason to retry, not to panic.
                let voters = ens.running_voters();
                let deadline = Instant::now() + ELECTION_TIMEOUT;
                loop {
                    if let Some((sid, status)) = ens.reap_exited() {
                        break Err(format!("server.{sid} exited ({status})"));
                    }
                    if ens.leader_among(&voters).is_some() {
                        break Ok(());
                    }
                    if Instant::now() >= deadline {
                        break Err(format!("no leader elected within {ELECTION_TIMEOUT:?}"));
                    }
                    std::thread::sleep(POLL_INTERVAL);
                }
            });
            match elected {
                Ok(()) => return ens,
                Err(e) if ens.any_log_contains("Address already in use") => {
                    // A port allocated free was taken before the server bound it.
                    last = format!("attempt {attempt}: {e}\n{}", ens.report());
                }
                Err(e) => ens.fail(&format!("ensemble did not start: {e}")),
            }
        }
        panic!(
            "ensemble did not start after {START_ATTEMPTS} attempts (ports in use); last:\n{last}"
        );
    }

    /// Writes every member's directory, zoo.cfg and myid, and starts nothing: the test starts
    /// servers one by one with `start_server`.
    pub fn prepare(voters: usize, observers: usize, proxied: bool) -> Ensemble {
        assert!(voters >= 1, "an ensemble needs a voter");
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let n = voters + observers;
        let dir = unique_temp_dir("ensemble");
        let (ports, held) = hold_free_ports(3 * n);
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                sid: i as u64 + 1,
                observer: i >= voters,
                client_port: ports[3 * i],
                quorum_port: ports[3 * i + 1],
                election_port: ports[3 * i + 2],
                dir: dir.join(format!("s{}", i + 1)),
                child: None,
                starts: 0,
                run_log_start: 0,
            })
            .collect();
        // Proxy listeners are bound while the real ports are still held, so none of them can
        // land on a server's port.
        let proxies = if proxied {
            Proxy::mesh(&members)
        } else {
            Vec::new()
        };
        drop(held);
        let ens = Ensemble {
            dir,
            members,
            proxies,
            proxied,
            dumps_taken: 0,
            _serial: serial,
        };
        for sid in ens.sids() {
            let cfg = ens.config_text(sid);
            let m = ens.member(sid);
            std::fs::create_dir_all(m.data_dir()).expect("create data dir");
            std::fs::write(m.data_dir().join("myid"), format!("{sid}\n")).expect("write myid");
            std::fs::write(m.cfg_path(), cfg).expect("write zoo.cfg");
        }
        ens
    }

    /// Server `sid`'s zoo.cfg: its own server line names its real ports; with proxies, every
    /// other server's line names the proxy for the link from `sid` to that server.
    fn config_text(&self, sid: u64) -> String {
        let me = self.member(sid);
        let mut s = format!(
            "tickTime={TICK_TIME_MS}\ninitLimit={INIT_LIMIT_TICKS}\nsyncLimit={SYNC_LIMIT_TICKS}\n\
             dataDir={}\n4lw.commands.whitelist=*\ncommitLogCount={COMMIT_LOG_COUNT}\n",
            me.data_dir().display(),
        );
        // Both ways of naming a member's client address are in use: even members set
        // clientPort and clientPortAddress, odd ones rely on the `;host:port` suffix of their
        // own server.N line (every line carries one, as Apache's dynamic config writes them).
        if sid % 2 == 0 {
            s.push_str(&format!(
                "clientPort={}\nclientPortAddress=127.0.0.1\n",
                me.client_port
            ));
        }
        if me.observer {
            s.push_str("peerType=observer\n");
        }
        for o in &self.members {
            let (q, e) = if o.sid == sid || !self.proxied {
                (o.quorum_port, o.election_port)
            } else {
                (
                    self.proxy(sid, o.sid, Channel::Quorum).port,
                    self.proxy(sid, o.sid, Channel::Election).port,
                )
            };
            let role = if o.observer { ":observer" } else { "" };
            s.push_str(&format!(
                "server.{}=127.0.0.1:{q}:{e}{role};127.0.0.1:{}\n",
                o.sid, o.client_port
            ));
        }
        s
    }

    fn member(&self, sid: u64) -> &Member {
        self.members
            .get((sid as usize).wrapping_sub(1))
            .unwrap_or_else(|| panic!("no server.{sid} in this ensemble"))
    }

    fn member_mut(&mut self, sid: u64) -> &mut Member {
        self.members
            .get_mut((sid as usize).wrapping_sub(1))
            .unwrap_or_else(|| panic!("no server.{sid} in this ensemble"))
    }

    fn proxy(&self, from: u64, to: u64, channel: Channel) -> &Proxy {
        self.proxies
            .iter()
            .find(|p| p.from == from && p.to == to && p.channel == channel)
            .expect("a proxy for every directed link")
    }

    /// Every sid, voters first.
    pub fn sids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.sid).collect()
    }

    /// The participants' sids.
    pub fn voters(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| !m.observer)
            .map(|m| m.sid)
            .collect()
    }

    /// The observers' sids.
    pub fn observers(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.observer)
            .map(|m| m.sid)
            .collect()
    }

    /// Whether the harness has `sid` running (started and not killed or stopped since).
    pub fn is_running(&self, sid: u64) -> bool {
        self.member(sid).child.is_some()
    }

    /// The voters the harness has running.
    pub fn running_voters(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| !m.observer && m.child.is_some())
            .map(|m| m.sid)
            .collect()
    }

    /// Server `sid`'s client address, `127.0.0.1:<port>`.
    pub fn addr(&self, sid: u64) -> String {
        self.member(sid).addr()
    }

    /// Every server's client address, in sid order.
    pub fn addrs(&self) -> Vec<String> {
        self.members.iter().map(Member::addr).collect()
    }

    /// Every client address, comma-separated, as a ZooKeeper connect string.
    pub fn connect_string(&self) -> String {
        self.addrs().join(",")
    }

    /// Server `sid`'s data directory.
    pub fn data_dir(&self, sid: u64) -> PathBuf {
        self.member(sid).data_dir()
    }

    // ---- processes ----

    /// Starts `sid` and waits until it answers `ruok`; panics (with the logs) if it exits
    /// or stays silent for STARTUP_TIMEOUT.
    pub fn start_server(&mut self, sid: u64) {
        if let Err(e) = self.spawn(sid) {
            self.fail(&e);
        }
    }

    /// Starts a stopped or killed server again on the same zoo.cfg and data directory.
    pub fn restart(&mut self, sid: u64) {
        assert!(
            self.member(sid).starts > 0,
            "restart of server.{sid}, which never started"
        );
        self.start_server(sid);
    }

    fn spawn(&mut self, sid: u64) -> Result<(), String> {
        let m = self.member_mut(sid);
        assert!(m.child.is_none(), "server.{sid} is already running");
        m.starts += 1;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.log_path())
            .expect("open server log");
        writeln!(
            log,
            "==== ensemble harness: start #{} of server.{sid} ====",
            m.starts
        )
        .expect("write server log");
        m.run_log_start = log.metadata().map(|md| md.len()).unwrap_or(0);
        let child = Command::new(env!("CARGO_BIN_EXE_zk"))
            .args(["server", "--config"])
            .arg(m.cfg_path())
            // The log lines the tests look for are at info, the server's default level.
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn zk server");
        m.child = Some(child);
        let addr = m.addr();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let m = self.member_mut(sid);
            let child = m.child.as_mut().expect("just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                m.child = None;
                return Err(format!("server.{sid} exited during start-up ({status})"));
            }
            if client::four_letter_word(&addr, "ruok", FLW_TIMEOUT).is_ok_and(|s| s == "imok") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                m.child = None;
                return Err(format!(
                    "server.{sid} did not answer ruok within {STARTUP_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self, sid: u64) {
        let mut child = self
            .member_mut(sid)
            .child
            .take()
            .unwrap_or_else(|| panic!("kill9 of server.{sid}, which is not running"));
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGTERM, then waits up to STOP_TIMEOUT for the exit (panics, after a SIGKILL, if
    /// the server does not go). Returns the exit status.
    pub fn stop(&mut self, sid: u64) -> ExitStatus {
        let mut child = self
            .member_mut(sid)
            .child
            .take()
            .unwrap_or_else(|| panic!("stop of server.{sid}, which is not running"));
        // SAFETY: kill(2) on the pid of a child we have not reaped; it touches no memory.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM server.{sid}");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.fail(&format!(
                    "server.{sid} did not exit within {STOP_TIMEOUT:?} of SIGTERM (killed)"
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Stops every running server (SIGTERM each, in sid order).
    pub fn stop_all(&mut self) {
        for sid in self.sids() {
            if self.is_running(sid) {
                self.stop(sid);
            }
        }
    }

    /// Deletes everything in a stopped server's data directory except `myid`.
    pub fn wipe(&mut self, sid: u64) {
        assert!(!self.is_running(sid), "wipe of server.{sid} while it runs");
        let data = self.data_dir(sid);
        for e in std::fs::read_dir(&data).expect("read data dir") {
            let e = e.expect("data dir entry");
            if e.file_name() == "myid" {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).expect("remove from data dir");
            } else {
                std::fs::remove_file(&p).expect("remove from data dir");
            }
        }
    }

    /// The first server the harness believes running that has exited (now reaped and
    /// marked not running), with its status.
    fn reap_exited(&mut self) -> Option<(u64, ExitStatus)> {
        for m in &mut self.members {
            if let Some(Ok(Some(status))) = m.child.as_mut().map(Child::try_wait) {
                m.child = None;
                return Some((m.sid, status));
            }
        }
        None
    }

    /// Panics (with the logs) if a server the harness believes running has exited.
    pub fn check_alive(&mut self) {
        if let Some((sid, status)) = self.reap_exited() {
            self.fail(&format!("server.{sid} exited unexpectedly ({status})"));
        }
    }

    // ---- asking the servers ----

    /// A four-letter word's whole answer, or None if the server cannot be reached.
    pub fn flw(&self, sid: u64, word: &str) -> Option<String> {
        client::four_letter_word(&self.addr(sid), word, FLW_TIMEOUT).ok()
    }

    /// `leader`, `follower`, `observer` (or `standalone`) from `srvr`'s `Mode:` line; None
    /// while the server is not serving or cannot be reached.
    pub fn mode(&self, sid: u64) -> Option<String> {
        let text = self.flw(sid, "srvr")?;
        text.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_owned())
    }

    /// `srvr`'s `Zxid:` while serving.
    pub fn zxid(&self, sid: u64) -> Option<u64> {
        let text = self.flw(sid, "srvr")?;
        let hex = text.lines().find_map(|l| l.strip_prefix("Zxid: 0x"))?;
        u64::from_str_radix(hex.trim(), 16).ok()
    }

    /// `mntr` as key (without `zk_`) -> value; None while not serving or unreachable.
    pub fn mntr(&self, sid: u64) -> Option<BTreeMap<String, String>> {
        let text = self.flw(sid, "mntr")?;
        if text.contains(NOT_SERVING) {
            return None;
        }
        let map: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.strip_prefix("zk_").unwrap_or(k).to_owned(), v.to_owned()))
            .collect();
        (!map.is_empty()).then_some(map)
    }

    /// A new session on `sid` (asking for SESSION_TIMEOUT_MS, with REQUEST_TIMEOUT per
    /// reply), retried until the server serves and accepts it, within CLIENT_TIMEOUT.
    pub fn client(&mut self, sid: u64) -> Client {
        let addr = self.addr(sid);
        let mut last = String::from("it never served");
        let got = self.try_wait_for(CLIENT_TIMEOUT, |e| {
            e.mode(sid)?;
            Client::connect(&addr, SESSION_TIMEOUT_MS)
                .map_err(|err| last = err.to_string())
                .ok()
        });
        let Some(mut c) = got else {
            self.fail(&format!(
                "no session on server.{sid} within {CLIENT_TIMEOUT:?}; last: {last}"
            ));
        };
        c.set_request_timeout(REQUEST_TIMEOUT);
        c
    }

    // ---- waiting ----

    /// Polls `probe` until it yields a value; panics with the logs after `bound`. Also
    /// panics at once if a running server exits.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        bound: Duration,
        probe: impl FnMut(&mut Ensemble) -> Option<T>,
    ) -> T {
        match self.try_wait_for(bound, probe) {
            Some(v) => v,
            None => self.fail(&format!("timed out after {bound:?} waiting for {what}")),
        }
    }

    /// As `wait_for`, returning None at the bound instead of panicking.
    pub fn try_wait_for<T>(
        &mut self,
        bound: Duration,
        mut probe: impl FnMut(&mut Ensemble) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + bound;
        loop {
            self.check_alive();
            if let Some(v) = probe(self) {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The one server of `sids` that says leader while all the others say follower.
    pub fn leader_among(&self, sids: &[u64]) -> Option<u64> {
        let modes: Vec<(u64, Option<String>)> = sids.iter().map(|&s| (s, self.mode(s))).collect();
        let leaders: Vec<u64> = modes
            .iter()
            .filter(|(_, m)| m.as_deref() == Some("leader"))
            .map(|(s, _)| *s)
            .collect();
        let all_follow = modes
            .iter()
            .all(|(_, m)| matches!(m.as_deref(), Some("leader" | "follower")));
        (leaders.len() == 1 && all_follow).then(|| leaders[0])
    }

    /// Waits until exactly one running voter says leader and every other running voter says
    /// follower; returns the leader's sid.
    pub fn wait_leader(&mut self) -> u64 {
        let voters = self.running_voters();
        self.wait_leader_among(&voters)
    }

    /// As `wait_leader`, over just these servers (for example the majority side of a
    /// partition).
    pub fn wait_leader_among(&mut self, sids: &[u64]) -> u64 {
        let what = format!("one leader and the rest following among {sids:?}");
        self.wait_for(&what, ELECTION_TIMEOUT, |e| e.leader_among(sids))
    }

    /// Waits until `srvr` on `sid` says `Mode: <mode>`.
    pub fn wait_mode(&mut self, sid: u64, mode: &str) {
        let what = format!("server.{sid} to say Mode: {mode}");
        self.wait_for(&what, MODE_TIMEOUT, |e| {
            (e.mode(sid).as_deref() == Some(mode)).then_some(())
        });
    }

    /// Waits, at most `bound`, until `sid` runs but does not serve (srvr answers, without a
    /// Mode). Returns how long it took.
    pub fn wait_not_serving(&mut self, sid: u64, bound: Duration) -> Duration {
        let t0 = Instant::now();
        let addr = self.addr(sid);
        let what = format!("server.{sid} to stop serving");
        self.wait_for(&what, bound, |_| {
            client::four_letter_word(&addr, "srvr", FLW_TIMEOUT)
                .ok()
                .filter(|t| t.contains(NOT_SERVING))
                .map(|_| ())
        });
        t0.elapsed()
    }

    /// Panics if any of `sids` serves at any moment during `window` (a negative can only be
    /// observed for a while; the window is the caller's named bound).
    pub fn assert_not_serving_for(&mut self, sids: &[u64], window: Duration) {
        let deadline = Instant::now() + window;
        while Instant::now() < deadline {
            self.check_alive();
            for &sid in sids {
                if let Some(m) = self.mode(sid) {
                    self.fail(&format!(
                        "server.{sid} serves (Mode: {m}) though {sids:?} should have no quorum"
                    ));
                }
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    // ---- logs ----

    /// Everything `sid` has logged, over all its runs (each run begins with a harness line).
    pub fn log(&self, sid: u64) -> String {
        self.log_since(sid, 0)
    }

    /// What `sid` logged since its last start.
    pub fn run_log(&self, sid: u64) -> String {
        self.log_since(sid, self.member(sid).run_log_start)
    }

    /// The log's current length, to read later what came after (`log_since`).
    pub fn log_len(&self, sid: u64) -> u64 {
        std::fs::metadata(self.member(sid).log_path()).map_or(0, |m| m.len())
    }

    /// What `sid` logged after byte `offset`.
    pub fn log_since(&self, sid: u64, offset: u64) -> String {
        let bytes = std::fs::read(self.member(sid).log_path()).unwrap_or_default();
        let from = (offset as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }

    /// Waits until `sid`'s log after `offset` contains one of `needles`; returns that one.
    pub fn wait_log(&mut self, sid: u64, offset: u64, needles: &[&str], bound: Duration) -> String {
        let what = format!("server.{sid} to log one of {needles:?}");
        self.wait_for(&what, bound, |e| {
            let log = e.log_since(sid, offset);
            needles
                .iter()
                .find(|n| log.contains(**n))
                .map(|n| n.to_string())
        })
    }

    fn any_log_contains(&self, needle: &str) -> bool {
        self.sids().iter().any(|&s| self.log(s).contains(needle))
    }

    /// Every server: what it is, how it answers `srvr`, and the tail of its log.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            let state = match &m.child {
                Some(c) => format!("running, pid {}", c.id()),
                None => "not running".to_owned(),
            };
            let srvr = client::four_letter_word(&m.addr(), "srvr", FLW_TIMEOUT)
                .map(|t| {
                    t.lines()
                        .find(|l| l.starts_with("Mode:") || l.contains(NOT_SERVING))
                        .unwrap_or("(no Mode line)")
                        .to_owned()
                })
                .unwrap_or_else(|e| format!("unreachable: {e}"));
            out.push_str(&format!(
                "==== server.{} ({}, {state}, client {}, quorum {}, election {}): {srvr}\n",
                m.sid,
                if m.observer { "observer" } else { "voter" },
                m.addr(),
                m.quorum_port,
                m.election_port
            ));
            out.push_str(&tail(&self.log(m.sid), LOG_TAIL_LINES));
            out.push('\n');
        }
        out.push_str(&format!(
            "(ensemble files kept in {})\n",
            self.dir.display()
        ));
        out
    }

    /// Panics with `msg`, then every server's state and log tail.
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.report())
    }

    // ---- data ----

    /// `zk snapshot dump` of a stopped server's data directory: its recovered tree as text.
    pub fn dump(&mut self, sid: u64) -> String {
        assert!(
            !self.is_running(sid),
            "dump of server.{sid} while it runs (stop or kill it first)"
        );
        let text = dump_dir(&self.data_dir(sid)).unwrap_or_else(|e| self.fail(&e));
        self.dumps_taken += 1;
        let _ = std::fs::write(
            self.dir
                .join(format!("dump-s{sid}-{}.txt", self.dumps_taken)),
            &text,
        );
        text
    }

    /// The dump of a copy of a running server's data directory, taken while it runs (best
    /// when the server is idle, say cut off and electing).
    pub fn dump_copy(&mut self, sid: u64) -> String {
        self.dumps_taken += 1;
        let copy = self.dir.join(format!("copy-s{sid}-{}", self.dumps_taken));
        copy_dir(&self.data_dir(sid), &copy).expect("copy data dir");
        let text = dump_dir(&copy).unwrap_or_else(|e| self.fail(&e));
        let _ = std::fs::remove_dir_all(&copy);
        text
    }

    /// Dumps every (stopped) server and panics, naming the first differing line, unless
    /// their trees (`tree_of`) are identical. Returns the dumps by sid.
    pub fn assert_same_trees(&mut self) -> BTreeMap<u64, String> {
        let dumps: BTreeMap<u64, String> =
            self.sids().into_iter().map(|s| (s, self.dump(s))).collect();
        let mut it = dumps.iter();
        let (&first_sid, first) = it.next().expect("an ensemble has members");
        let first_tree = tree_of(first);
        for (&sid, d) in it {
            let tree = tree_of(d);
            if tree != first_tree {
                let a: Vec<&str> = first_tree.lines().collect();
                let b: Vec<&str> = tree.lines().collect();
                let i = a
                    .iter()
                    .zip(&b)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(b.len()));
                let ctx = |v: &[&str]| v[i.saturating_sub(8)..(i + 4).min(v.len())].join("\n");
                self.fail(&format!(
                    "the trees of server.{first_sid} and server.{sid} differ at line {} \
                     ({} vs {} lines; dumps in {}):\n--- server.{first_sid}:\n{}\n--- server.{sid}:\n{}",
                    i + 1,
                    a.len(),
                    b.len(),
                    self.dir.display(),
                    ctx(&a),
                    ctx(&b)
                ));
            }
        }
        dumps
    }

    // ---- partitions ----

    /// Cuts every proxied link to and from `sid` (a black hole: see the module note).
    pub fn isolate(&self, sid: u64) {
        assert!(self.proxied, "isolate needs Ensemble::start_proxied");
        for p in self.proxies.iter().filter(|p| p.from == sid || p.to == sid) {
            p.shared.cut();
        }
    }

    /// Closes every cut connection and lets every link carry new connections again.
    pub fn heal(&self) {
        assert!(self.proxied, "heal needs Ensemble::start_proxied");
        for p in &self.proxies {
            p.shared.heal();
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.proxies.clear();
        if std::thread::panicking() {
            eprintln!("ensemble files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn dump_dir(data_dir: &Path) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_zk"))
        .args(["snapshot", "dump", "--data-dir"])
        .arg(data_dir)
        .output()
        .map_err(|e| format!("run zk snapshot dump: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "zk snapshot dump --data-dir {} failed ({}):\n{}{}",
            data_dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else if e.file_name() != ".lock" {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// The part of a text dump that replicas agree on once converged: every znode's block in
/// preorder, without the header line (it names the replica's own files), the Sessions list
/// (session expiry is a txn that may land on some replicas only while the test stops them)
/// and `/zookeeper/config` (each server's own view of the membership, which differs per
/// server when links are proxied).
pub fn tree_of(dump: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in dump.lines() {
        if line.starts_with("# ") {
            continue;
        }
        if line.starts_with("Sessions (") {
            break;
        }
        if line == "/zookeeper/config" {
            skipping = true;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
        if skipping && line == "----" {
            skipping = false;
        }
    }
    out
}

/// Every znode path in a text dump.
pub fn dump_paths(dump: &str) -> BTreeSet<String> {
    dump.lines()
        .take_while(|l| !l.starts_with("Sessions ("))
        .filter(|l| l.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

// ---- proxies ----

/// One directed peer link's proxy: a listener that `from`'s zoo.cfg names for `to`'s
/// `channel` port, forwarding to the real port.
struct Proxy {
    from: u64,
    to: u64,
    channel: Channel,
    port: u16,
    shared: Arc<ProxyShared>,
    accept: Option<JoinHandle<()>>,
}

struct ProxyShared {
    target: SocketAddr,
    stop: AtomicBool,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    cut: bool,
    next_id: u64,
    conns: HashMap<u64, Spliced>,
}

/// One accepted connection: its sockets (for shutting them down) and whether it is cut.
struct Spliced {
    streams: Vec<TcpStream>,
    cut: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy for every directed link between members and every channel, listeners bound.
    fn mesh(members: &[Member]) -> Vec<Proxy> {
        let mut listeners = Vec::new();
        for a in members {
            for b in members.iter().filter(|b| b.sid != a.sid) {
                for ch in [Channel::Quorum, Channel::Election] {
                    let l = TcpListener::bind("127.0.0.1:0").expect("bind a proxy listener");
                    listeners.push((a.sid, b.sid, ch, l));
                }
            }
        }
        listeners
            .into_iter()
            .map(|(from, to, channel, listener)| {
                let m = &members[to as usize - 1];
                let real = match channel {
                    Channel::Quorum => m.quorum_port,
                    Channel::Election => m.election_port,
                };
                let port = listener.local_addr().expect("proxy addr").port();
                let shared = Arc::new(ProxyShared {
                    target: SocketAddr::from(([127, 0, 0, 1], real)),
                    stop: AtomicBool::new(false),
                    state: Mutex::new(LinkState::default()),
                });
                let sh = shared.clone();
                let accept = std::thread::Builder::new()
                    .name(format!("proxy-{from}-{to}-{channel:?}"))
                    .spawn(move || accept_loop(listener, sh))
                    .expect("spawn proxy thread");
                Proxy {
                    from,
                    to,
                    channel,
                    port,
                    shared,
                    accept: Some(accept),
                }
            })
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let mut st = self.shared.lock();
        for c in st.conns.values() {
            for s in &c.streams {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        st.conns.clear();
    }
}

impl ProxyShared {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cut(&self) {
        let mut st = self.lock();
        st.cut = true;
        for c in st.conns.values() {
            c.cut.store(true, Ordering::SeqCst);
        }
    }

    fn heal(&self) {
        let mut st = self.lock();
        st.cut = false;
        st.conns.retain(|_, c| {
            if c.cut.load(Ordering::SeqCst) {
                for s in &c.streams {
                    let _ = s.shutdown(Shutdown::Both);
                }
                false
            } else {
                true
            }
        });
    }

    /// Registers a connection and returns its id and cut flag.
    fn register(st: &mut LinkState, streams: Vec<TcpStream>, cut: bool) -> (u64, Arc<AtomicBool>) {
        let id = st.next_id;
        st.next_id += 1;
        let flag = Arc::new(AtomicBool::new(cut));
        st.conns.insert(
            id,
            Spliced {
                streams,
                cut: flag.clone(),
            },
        );
        (id, flag)
    }

    fn forget(&self, id: u64) {
        self.lock().conns.remove(&id);
    }
}

fn accept_loop(listener: TcpListener, sh: Arc<ProxyShared>) {
    for incoming in listener.incoming() {
        if sh.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(inbound) = incoming else {
            continue;
        };
        let _ = inbound.set_nodelay(true);
        let outbound = if sh.lock().cut {
            None
        } else {
            // A refused connect (the server is down) closes the inbound side: the caller sees
            // what it would see without the proxy.
            match TcpStream::connect_timeout(&sh.target, PROXY_CONNECT_TIMEOUT) {
                Ok(s) => Some(s),
                Err(_) => continue,
            }
        };
        let mut st = sh.lock();
        match outbound {
            Some(out) if !st.cut => {
                let _ = out.set_nodelay(true);
                let (Ok(in2), Ok(out2)) = (inbound.try_clone(), out.try_clone()) else {
                    continue;
                };
                let streams = vec![in2, out2];
                let (id, flag) = ProxyShared::register(&mut st, streams, false);
                drop(st);
                let (in3, out3) = match (inbound.try_clone(), out.try_clone()) {
                    (Ok(a), Ok(b)) => (a, b),
                    _ => continue,
                };
                spawn_pump(sh.clone(), id, inbound, out, flag.clone());
                spawn_pump(sh.clone(), id, out3, in3, flag);
            }
            _ => {
                // Cut: accept and swallow, like a partition where packets vanish.
                let Ok(keep) = inbound.try_clone() else {
                    continue;
                };
                ProxyShared::register(&mut st, vec![keep], true);
                drop(st);
                let _ = std::thread::Builder::new()
                    .name("proxy-swallow".into())
                    .spawn(move || swallow(inbound));
            }
        }
    }
}

/// Reads and drops everything until the connection ends (`heal` or drop shuts it down).
fn swallow(mut s: TcpStream) {
    let mut buf = vec![0u8; PROXY_BUF_BYTES];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

fn spawn_pump(sh: Arc<ProxyShared>, id: u64, src: TcpStream, dst: TcpStream, cut: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("proxy-pump".into())
        .spawn(move || pump(sh, id, src, dst, cut));
}

/// Copies `src` to `dst` until either ends; while the link is cut, what arrives is read and
/// dropped, and the end of a cut connection is left for `heal` to propagate.
fn pump(
    sh: Arc<ProxyShared>,
    id: u64,
    mut src: TcpStream,
    mut dst: TcpStream,
    cut: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; PROXY_BUF_BYTES];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if cut.load(Ordering::SeqCst) {
            continue;
        }
        if dst.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    if !cut.load(Ordering::SeqCst) {
        let _ = src.shutdown(Shutdown::Both);
        let _ = dst.shutdown(Shutdown::Both);
        sh.forget(id);
    }
}
