//! `zk cli`: a ZooKeeper shell that behaves like Apache's zkCli.sh 3.8 (ZooKeeperMain), so
//! scripts written against zkCli keep working: the same invocation (`-server`, `-timeout`,
//! `-r`, `-waitforconnection`, `-client-configuration`, also spelled with two dashes),
//! every command with the same options, the same text on the same stream, the same error
//! wording and exit codes (0, 1, 127), the same `WATCHER::` lines, the same
//! `[zk: host(STATE) N]` prompt, history and redo. Reading a pipe, it prints no prompt
//! (zkCli without JLine); on a terminal it has line editing, history kept across runs in
//! `~/.zk_cli_history` (or `$ZK_CLI_HISTORY`), tab completion of commands and of znode
//! paths (asking the server for the children of the path typed so far), and watch events
//! printed above the prompt. Beyond zkCli: on a lost connection it fails over to the next
//! server of the list and says so on stderr; an expired session is reported and replaced
//! by a new one; `--json` makes the read commands print one JSON document each. The
//! session handling lives in `client::session`, the commands in `cli/commands.rs`. Like
//! zkCli it never closes the session when it exits without `quit` (the server expires it,
//! so a one-shot `create -e` node outlives the process by the session timeout), and it
//! never prints a prompt to a pipe.

pub mod commands;
pub mod format;
pub mod parse;

use crate::client::path::ConnectString;
use crate::client::session::{
    EventHandler, Session, SessionConfig, SessionEvent, States, WatchedEvent,
};
use clap::{Args, Parser};
use commands::{cli, is_command, usage_text, CliError, Ctx, JSON_COMMANDS};
use format::{json_obj, json_str};
use std::collections::HashMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// zkCli's default server and session timeout.
pub const SERVER_DEFAULT: &str = "localhost:2181";
pub const SESSION_TIMEOUT_MS_DEFAULT: i32 = 30_000;
/// Lines kept in the history file.
pub const HISTORY_LINES_MAX: usize = 1000;
/// The history file, under $HOME, unless $ZK_CLI_HISTORY names another.
pub const HISTORY_FILE_NAME: &str = ".zk_cli_history";
/// How many past commands `history` lists besides the current one.
pub const HISTORY_SHOWN: i32 = 10;
/// zkCli's exit code for an unusable `-client-configuration` (ExitCode.INVALID_INVOCATION).
pub const EXIT_INVALID_INVOCATION: i32 = 2;

/// `zk cli`'s arguments, passed through untouched: zkCli's single-dash options and the
/// command's own options (`ls -R /`) are not clap's to interpret.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CliArgs {
    /// [-server host:port[,host:port...][/chroot]] [-timeout ms] [-r] [-waitforconnection]
    /// [--json] [command args...]  (`zk cli --help` for details)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "ARGS")]
    pub args: Vec<String>,
}

/// The options proper, parsed by clap once zkCli's spellings are rewritten.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "zk cli",
    about = "A ZooKeeper shell compatible with zkCli.sh",
    long_about = "A ZooKeeper shell compatible with zkCli.sh: the same commands, output, \
                  error wording and exit codes (0 ok, 1 failure, 127 unknown command). With a \
                  command it runs that command and exits; without one it reads commands \
                  from standard input (no prompt when that is not a terminal). zkCli's \
                  single-dash spellings (-server, -timeout, -r, -waitforconnection, \
                  -client-configuration) are accepted too. Type `help` at the prompt for \
                  the list of commands."
)]
pub struct CliOptions {
    /// Servers to connect to, tried in order with failover: host:port[,host:port...][/chroot]
    #[arg(long, default_value = SERVER_DEFAULT, allow_hyphen_values = true)]
    pub server: String,
    /// Session timeout in milliseconds.
    #[arg(long, default_value_t = SESSION_TIMEOUT_MS_DEFAULT, allow_negative_numbers = true)]
    pub timeout: i32,
    /// Allow a read-only session (with a read-only server).
    #[arg(short = 'r', long = "readonly")]
    pub read_only: bool,
    /// Wait for the connection before reading commands; give up (exit 1) after --timeout.
    #[arg(long)]
    pub waitforconnection: bool,
    /// A ZooKeeper client properties file; it must be readable (its settings are not used:
    /// zk has no TLS or SASL client).
    #[arg(long, value_name = "FILE")]
    pub client_configuration: Option<PathBuf>,
    /// Print the read commands' results (ls, get, stat, getAcl, getAllChildrenNumber,
    /// getEphemerals, whoami, listquota, config, sync) and watch events as one JSON
    /// document per line; start-up lines go to stderr.
    #[arg(long)]
    pub json: bool,
    /// The command to run once, with its arguments; none for a shell.
    #[arg(trailing_var_arg = true, num_args = 0.., value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Rewrites zkCli's spellings for clap: up to the first word that is not an option,
/// `-server X` becomes `--server=X` (the value taken as is, as zkCli takes it), and so
/// on; then `--` and the command's words, which are never options of `zk cli`.
pub fn rewrite_args(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        let long = a.strip_prefix("--").or_else(|| a.strip_prefix('-'));
        match long {
            Some(name @ ("server" | "timeout" | "client-configuration")) => {
                match argv.get(i + 1) {
                    Some(v) => out.push(format!("--{name}={v}")),
                    None => out.push(format!("--{name}")),
                }
                i += 2;
                continue;
            }
            Some("waitforconnection") => out.push("--waitforconnection".to_owned()),
            Some("json") => out.push("--json".to_owned()),
            Some("r") if !a.starts_with("--") => out.push("-r".to_owned()),
            Some(_) => out.push(a.to_owned()),
            None => {
                out.push("--".to_owned());
                out.extend(argv[i..].iter().cloned());
                return out;
            }
        }
        i += 1;
    }
    out
}

/// Parses `zk cli`'s arguments (after `cli`).
pub fn parse_cli_options(argv: &[String]) -> Result<CliOptions, clap::Error> {
    let mut v = vec!["zk cli".to_owned()];
    v.extend(rewrite_args(argv));
    CliOptions::try_parse_from(v)
}

/// Where output goes. One lock orders writes from the command and event threads; each
/// write is flushed so stdout and stderr interleave as they happen.
pub struct Output {
    lock: Mutex<()>,
    capture: Option<Mutex<(String, String)>>,
}

impl Output {
    pub fn stdio() -> Output {
        Output {
            lock: Mutex::new(()),
            capture: None,
        }
    }

    /// An output that keeps what is written, for tests.
    pub fn captured() -> Output {
        Output {
            lock: Mutex::new(()),
            capture: Some(Mutex::new((String::new(), String::new()))),
        }
    }

    /// What a captured output holds: (stdout, stderr).
    pub fn taken(&self) -> (String, String) {
        match &self.capture {
            Some(c) => std::mem::take(&mut *c.lock().unwrap_or_else(|e| e.into_inner())),
            None => (String::new(), String::new()),
        }
    }

    fn write(&self, s: &str, to_err: bool) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &self.capture {
            let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
            if to_err {
                c.1.push_str(s);
            } else {
                c.0.push_str(s);
            }
            return;
        }
        // A closed pipe (`zk cli ls / | head -1`) is not worth a panic.
        if to_err {
            let mut e = io::stderr().lock();
            let _ = e.write_all(s.as_bytes());
            let _ = e.flush();
        } else {
            let mut o = io::stdout().lock();
            let _ = o.write_all(s.as_bytes());
            let _ = o.flush();
        }
    }

    pub fn out(&self, s: &str) {
        self.write(s, false);
    }

    pub fn err(&self, s: &str) {
        self.write(s, true);
    }
}

/// Prints what the session reports: watch events as zkCli's default watcher prints them
/// (when printwatches is on), connection notices on stderr. At the prompt they go through
/// the line editor, which redraws the prompt below them.
struct Events {
    out: Arc<Output>,
    print_watches: AtomicBool,
    json: bool,
    /// Events held back while the banner is printed, so it is never split.
    held: Mutex<Option<Vec<(String, bool)>>>,
    printer: Mutex<Option<Box<dyn rustyline::ExternalPrinter + Send>>>,
    at_prompt: AtomicBool,
}

impl Events {
    fn handle(&self, ev: SessionEvent) {
        match ev {
            SessionEvent::Watched(e) => {
                if self.print_watches.load(Ordering::SeqCst) {
                    let text = if self.json {
                        format!("{}\n", event_json(&e))
                    } else {
                        // ZooKeeperMain.printMessage prints a blank line before each text.
                        format!("\nWATCHER::\n\n{e}\n")
                    };
                    self.emit(text, false);
                }
            }
            SessionEvent::Notice(m) => self.emit(format!("zk: {m}\n"), true),
        }
    }

    fn emit(&self, text: String, to_err: bool) {
        if let Some(h) = self.held.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            h.push((text, to_err));
            return;
        }
        if self.at_prompt.load(Ordering::SeqCst) {
            let mut p = self.printer.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = p.as_mut() {
                if p.print(text.trim_end_matches('\n').to_owned()).is_ok() {
                    return;
                }
            }
        }
        if to_err {
            self.out.err(&text);
        } else {
            self.out.out(&text);
        }
    }

    fn hold(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    fn release(&self) {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
        for (t, to_err) in held.unwrap_or_default() {
            self.emit(t, to_err);
        }
    }
}

fn event_json(e: &WatchedEvent) -> String {
    let event = json_obj(&[
        (
            "state",
            json_str(crate::client::session::keeper_state_name(e.state)),
        ),
        (
            "type",
            json_str(crate::client::session::event_type_name(e.event_type)),
        ),
        (
            "path",
            e.path
                .as_deref()
                .map(json_str)
                .unwrap_or_else(|| "null".to_owned()),
        ),
    ]);
    json_obj(&[("event", event)])
}

/// What the shell does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Exit(i32),
}

/// ZooKeeperMain's state: the handle, the command counter, the numbered history, the
/// exit code of the last command, and the current command line (`cl`).
pub struct Shell {
    opts: CliOptions,
    host: String,
    zk: Option<Arc<Session>>,
    /// The handle as the completer sees it.
    zk_slot: Arc<Mutex<Option<Arc<Session>>>>,
    events: Arc<Events>,
    out: Arc<Output>,
    history: HashMap<i32, String>,
    command_count: i32,
    exit_code: i32,
    cl: Vec<String>,
    /// On a terminal an uncaught-exception case is reported and the shell goes on; piped
    /// and one-shot runs end with exit code 1 as zkCli's JVM does.
    survive_crashes: bool,
    /// The previous command was `addauth`. zkCli sends the identity without waiting, so
    /// the command after it always goes out and, if the identity was refused, fails with
    /// AuthFailed; only the ones after that say "Not connected". This keeps that order
    /// however fast the refusal comes back.
    after_addauth: bool,
}

impl Shell {
    pub fn new(opts: CliOptions, out: Arc<Output>) -> Shell {
        let events = Arc::new(Events {
            out: Arc::clone(&out),
            print_watches: AtomicBool::new(true),
            json: opts.json,
            held: Mutex::new(None),
            printer: Mutex::new(None),
            at_prompt: AtomicBool::new(false),
        });
        Shell {
            host: opts.server.clone(),
            opts,
            zk: None,
            zk_slot: Arc::new(Mutex::new(None)),
            events,
            out,
            history: HashMap::new(),
            command_count: 0,
            exit_code: 0,
            cl: Vec::new(),
            survive_crashes: false,
            after_addauth: false,
        }
    }

    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }

    /// zkCli's prompt: `[zk: <host>(<STATE>) <n>] `.
    pub fn prompt(&self) -> String {
        let state = self
            .zk
            .as_ref()
            .map(|z| z.state())
            .unwrap_or(States::Closed);
        format!(
            "[zk: {}({}) {}] ",
            self.host,
            state.name(),
            self.command_count
        )
    }

    fn outln(&self, s: &str) {
        self.out.out(&format!("{s}\n"));
    }

    fn errln(&self, s: &str) {
        self.out.err(&format!("{s}\n"));
    }

    /// A start-up line: on stdout as zkCli prints it, or on stderr under `--json` so that
    /// stdout holds nothing but JSON documents.
    fn banner(&self, s: &str) {
        if self.opts.json {
            self.errln(s);
        } else {
            self.outln(s);
        }
    }

    /// Starts a session to `host` (closing the current one, as connectToZK does) without
    /// waiting for it.
    fn start_session(&mut self, host: &str) -> Result<(), CliError> {
        if let Some(z) = &self.zk {
            if z.state().is_alive() {
                z.close();
            }
        }
        self.host = host.to_owned();
        let connect = ConnectString::parse(host)
            .map_err(|e| CliError::Crash(format!("java.lang.IllegalArgumentException: {e}")))?;
        let events = Arc::clone(&self.events);
        let handler: EventHandler = Arc::new(move |ev| events.handle(ev));
        let session = Arc::new(Session::start(
            SessionConfig {
                connect,
                session_timeout_ms: self.opts.timeout,
                read_only: self.opts.read_only,
                renew_expired: true,
                // /etc/hosts first, so that `-server node-1:2181` works in the static build.
                resolver: crate::net::resolve::resolve_host_port,
            },
            handler,
        ));
        *self.zk_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&session));
        self.zk = Some(session);
        Ok(())
    }

    /// Waits for the new session: with -waitforconnection until connected (zkCli gives up
    /// after the timeout with an IOException), otherwise until the first round of
    /// connection attempts is over, so that the SyncConnected event prints first.
    fn wait_session(&mut self) -> Result<(), CliError> {
        let Some(zk) = self.zk.clone() else {
            return Ok(());
        };
        let timeout = Duration::from_millis(self.opts.timeout.max(0) as u64);
        if self.opts.waitforconnection {
            if !zk.wait_connected(timeout) {
                zk.stop();
                return Err(CliError::Crash(
                    "java.io.IOException: org.apache.zookeeper.KeeperException$\
                     ConnectionLossException: KeeperErrorCode = ConnectionLoss"
                        .to_owned(),
                ));
            }
        } else {
            zk.wait_first_round(timeout);
        }
        Ok(())
    }

    fn connect_to_zk(&mut self, host: &str) -> Result<(), CliError> {
        self.start_session(host)?;
        self.wait_session()
    }

    /// ZooKeeperMain.executeLine.
    pub fn execute_line(&mut self, line: &str) -> Flow {
        if line.is_empty() {
            return Flow::Continue;
        }
        // parseCommand leaves the previous command in place for a line with no word.
        if let Some(words) = parse::tokenize(line) {
            self.cl = words;
        }
        self.history.insert(self.command_count, line.to_owned());
        let flow = self.process_cmd();
        self.command_count += 1;
        flow
    }

    /// ZooKeeperMain.processCmd: runs `cl`, records the exit code, prints the error.
    pub fn process_cmd(&mut self) -> Flow {
        match self.process_zk_cmd() {
            Ok(flow) => {
                self.exit_code = 0;
                flow
            }
            Err(CliError::Cli(msg, code)) => {
                self.exit_code = code;
                self.errln(&msg);
                Flow::Continue
            }
            Err(CliError::Crash(msg)) => {
                self.errln(&format!("Exception in thread \"main\" {msg}"));
                if self.survive_crashes {
                    self.exit_code = 1;
                    Flow::Continue
                } else {
                    Flow::Exit(1)
                }
            }
        }
    }

    fn process_zk_cmd(&mut self) -> Result<Flow, CliError> {
        let args = self.cl.clone();
        let Some(cmd) = args.first().cloned() else {
            self.out.err(&usage_text());
            return Err(cli("No command entered"));
        };
        if !is_command(&cmd) {
            self.out.err(&usage_text());
            return Err(CliError::Cli(
                format!("Command not found: Command not found {cmd}"),
                127,
            ));
        }
        match cmd.as_str() {
            "quit" => {
                // zkCli closes the session and exits with the previous command's code.
                if let Some(z) = &self.zk {
                    z.close_quietly();
                }
                return Ok(Flow::Exit(self.exit_code));
            }
            "redo" if args.len() >= 2 => {
                let i = parse::java_integer_decode(&args[1]).map_err(CliError::Crash)?;
                if self.command_count <= i || i < 0 {
                    return Err(cli("Command index out of range"));
                }
                let line = self.history.get(&i).cloned().unwrap_or_default();
                if let Some(words) = parse::tokenize(&line) {
                    self.cl = words;
                }
                if self.cl.first().map(String::as_str) == Some("redo") {
                    return Err(cli("No redoing redos"));
                }
                self.history.insert(self.command_count, line);
                if let Flow::Exit(c) = self.process_cmd() {
                    return Ok(Flow::Exit(c));
                }
            }
            "history" => {
                for i in (self.command_count - HISTORY_SHOWN)..=self.command_count {
                    if i < 0 {
                        continue;
                    }
                    let line = self.history.get(&i).map(String::as_str).unwrap_or("null");
                    self.outln(&format!("{i} - {line}"));
                }
            }
            "printwatches" => {
                if args.len() == 1 {
                    let on = self.events.print_watches.load(Ordering::SeqCst);
                    self.outln(&format!(
                        "printwatches is {}",
                        if on { "on" } else { "off" }
                    ));
                } else {
                    self.events
                        .print_watches
                        .store(args[1] == "on", Ordering::SeqCst);
                }
            }
            "connect" => {
                let host = args.get(1).cloned().unwrap_or_else(|| self.host.clone());
                self.connect_to_zk(&host)?;
            }
            _ => {}
        }
        let after_addauth = std::mem::take(&mut self.after_addauth);
        let usable = |z: &Arc<Session>| {
            let st = z.state();
            st.is_alive() || (after_addauth && st == States::AuthFailed)
        };
        let Some(zk) = self.zk.clone().filter(usable) else {
            self.outln("Not connected");
            return Ok(Flow::Continue);
        };
        if matches!(
            cmd.as_str(),
            "quit" | "redo" | "history" | "printwatches" | "connect"
        ) {
            return Ok(Flow::Continue);
        }
        let ctx = Ctx {
            zk: &zk,
            out: &self.out,
            json: self.opts.json,
        };
        let r = commands::exec(&args, &ctx);
        self.after_addauth = cmd == "addauth" && r.is_ok();
        if let Err(CliError::Cli(msg, _)) = &r {
            if self.opts.json && JSON_COMMANDS.contains(&cmd.as_str()) {
                self.outln(&json_obj(&[
                    ("command", json_str(&cmd)),
                    ("error", json_str(msg)),
                ]));
            }
        }
        r.map(|()| Flow::Continue)
    }
}

/// Runs `zk cli`.
pub fn run(a: CliArgs) -> Result<i32, Box<dyn std::error::Error>> {
    let opts = match parse_cli_options(&a.args) {
        Ok(o) => o,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_INVALID_INVOCATION
            } else {
                0
            };
            let _ = e.print();
            return Ok(code);
        }
    };
    if let Some(f) = &opts.client_configuration {
        if let Err(e) = std::fs::metadata(f).and_then(|m| {
            if m.is_file() {
                Ok(())
            } else {
                Err(io::Error::other("not a file"))
            }
        }) {
            eprintln!("zk: error: client configuration {}: {e}", f.display());
            return Ok(EXIT_INVALID_INVOCATION);
        }
    }
    if let Err(e) = ConnectString::parse(&opts.server) {
        eprintln!("zk: error: -server {:?}: {e}", opts.server);
        return Ok(EXIT_INVALID_INVOCATION);
    }
    let out = Arc::new(Output::stdio());
    let mut shell = Shell::new(opts.clone(), Arc::clone(&out));
    shell.banner(&format!("Connecting to {}", opts.server));
    let tty = io::stdin().is_terminal();
    if !opts.command.is_empty() {
        // One command, as given on the command line (no tokenizing, no history).
        if let Err(e) = shell.connect_to_zk(&opts.server) {
            return Ok(crash_exit(&shell, e));
        }
        shell.cl = opts.command.clone();
        return Ok(match shell.process_cmd() {
            Flow::Exit(c) => c,
            Flow::Continue => shell.exit_code,
        });
    }
    let banner = |shell: &Shell| {
        shell.banner("Welcome to ZooKeeper!");
        shell.banner(if tty {
            "JLine support is enabled"
        } else {
            "JLine support is disabled"
        });
    };
    if opts.waitforconnection {
        if let Err(e) = shell.connect_to_zk(&opts.server) {
            return Ok(crash_exit(&shell, e));
        }
        banner(&shell);
    } else {
        shell.events.hold();
        let started = shell.start_session(&opts.server);
        banner(&shell);
        shell.events.release();
        if let Err(e) = started.and_then(|_| shell.wait_session()) {
            return Ok(crash_exit(&shell, e));
        }
    }
    if tty {
        shell.survive_crashes = true;
        interactive(&mut shell)
    } else {
        Ok(piped(&mut shell))
    }
}

fn crash_exit(shell: &Shell, e: CliError) -> i32 {
    match e {
        CliError::Crash(m) => shell.errln(&format!("Exception in thread \"main\" {m}")),
        CliError::Cli(m, _) => shell.errln(&m),
    }
    1
}

/// Reads commands from a pipe as zkCli without JLine does: no prompt, lines ended by
/// `\n`, `\r` or `\r\n`; at the end, exits with the last command's code.
fn piped(shell: &mut Shell) -> i32 {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return shell.exit_code,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let mut parts: Vec<&str> = text.split('\r').collect();
        if parts.len() > 1 && parts.last() == Some(&"") {
            parts.pop();
        }
        for line in parts {
            if let Flow::Exit(c) = shell.execute_line(line) {
                return c;
            }
        }
    }
}

/// The history file: $ZK_CLI_HISTORY, else ~/.zk_cli_history.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ZK_CLI_HISTORY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(HISTORY_FILE_NAME))
}

/// Tab completion: the command for the first word, znode children for a word starting
/// with `/` (JLineZNodeCompleter, which asks the server).
struct Completion {
    zk: Arc<Mutex<Option<Arc<Session>>>>,
}

impl rustyline::completion::Completer for Completion {
    type Candidate = rustyline::completion::Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Self::Candidate>)> {
        use rustyline::completion::Pair;
        let before = &line[..pos];
        let start = before
            .rfind(char::is_whitespace)
            .map(|i| i + before[i..].chars().next().map_or(1, char::len_utf8))
            .unwrap_or(0);
        let token = &before[start..];
        if token.starts_with('/') {
            let (dir, prefix) = match token.rfind('/') {
                Some(0) | None => ("/", token.strip_prefix('/').unwrap_or(token)),
                Some(i) => (&token[..i], &token[i + 1..]),
            };
            let zk = self.zk.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let Some(zk) = zk.filter(|z| z.state().is_connected()) else {
                return Ok((start, Vec::new()));
            };
            let Ok(mut children) = zk.get_children(dir, false) else {
                return Ok((start, Vec::new()));
            };
            children.sort();
            let pairs = children
                .into_iter()
                .filter(|c| c.starts_with(prefix))
                .map(|c| Pair {
                    replacement: if dir == "/" {
                        format!("/{c}")
                    } else {
                        format!("{dir}/{c}")
                    },
                    display: c,
                })
                .collect();
            return Ok((start, pairs));
        }
        if before[..start].trim().is_empty() {
            let pairs = commands::COMMANDS
                .iter()
                .filter(|(c, _)| c.starts_with(token))
                .map(|(c, _)| Pair {
                    display: (*c).to_owned(),
                    replacement: format!("{c} "),
                })
                .collect();
            return Ok((start, pairs));
        }
        Ok((start, Vec::new()))
    }
}

impl rustyline::hint::Hinter for Completion {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Completion {}
impl rustyline::validate::Validator for Completion {}
impl rustyline::Helper for Completion {}

/// The terminal loop: zkCli's prompt, line editing, persistent history, completion.
fn interactive(shell: &mut Shell) -> Result<i32, Box<dyn std::error::Error>> {
    use rustyline::error::ReadlineError;
    use rustyline::history::{FileHistory, History};
    let config = rustyline::Config::builder()
        .max_history_size(HISTORY_LINES_MAX)?
        .completion_type(rustyline::CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut rl: rustyline::Editor<Completion, FileHistory> =
        rustyline::Editor::with_config(config)?;
    rl.set_helper(Some(Completion {
        zk: Arc::clone(&shell.zk_slot),
    }));
    let hist = history_path();
    if let Some(h) = &hist {
        let _ = rl.load_history(h);
    }
    if let Ok(p) = rl.create_external_printer() {
        *shell
            .events
            .printer
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Box::new(p));
    }
    loop {
        let prompt = shell.prompt();
        shell.events.at_prompt.store(true, Ordering::SeqCst);
        let r = rl.readline(&prompt);
        shell.events.at_prompt.store(false, Ordering::SeqCst);
        match r {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = rl.history_mut().add(&line);
                    if let Some(h) = &hist {
                        let _ = rl.append_history(h);
                    }
                }
                if let Flow::Exit(c) = shell.execute_line(&line) {
                    return Ok(c);
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return Ok(shell.exit_code()),
            Err(e) => return Err(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn zkcli_spellings_are_accepted() {
        let o = parse_cli_options(&v(&[
            "-server",
            "h1:1,h2:2/app",
            "-timeout",
            "5000",
            "-r",
            "-waitforconnection",
            "ls",
            "-R",
            "/",
        ]))
        .unwrap();
        assert_eq!(o.server, "h1:1,h2:2/app");
        assert_eq!(o.timeout, 5000);
        assert!(o.read_only && o.waitforconnection && !o.json);
        assert_eq!(o.command, ["ls", "-R", "/"]);
        let o = parse_cli_options(&v(&["--server", "x:9", "--json", "get", "--", "/a"])).unwrap();
        assert_eq!(o.server, "x:9");
        assert!(o.json);
        assert_eq!(o.command, ["get", "--", "/a"]);
        let o = parse_cli_options(&v(&["--server=x:9", "--readonly"])).unwrap();
        assert_eq!(o.server, "x:9");
        assert!(o.read_only);
        assert!(o.command.is_empty());
        let o = parse_cli_options(&[]).unwrap();
        assert_eq!(o.server, SERVER_DEFAULT);
        assert_eq!(o.timeout, SESSION_TIMEOUT_MS_DEFAULT);
        // the command's own options never reach clap
        let o = parse_cli_options(&v(&["create", "-s", "-e", "/a", "--help"])).unwrap();
        assert_eq!(o.command, ["create", "-s", "-e", "/a", "--help"]);
        assert!(parse_cli_options(&v(&["-timeout", "abc"])).is_err());
        assert!(parse_cli_options(&v(&["-bogus"])).is_err());
        assert!(parse_cli_options(&v(&["-server"])).is_err());
    }

    #[test]
    fn rewrite_keeps_values_and_stops_at_the_command() {
        assert_eq!(
            rewrite_args(&v(&[
                "-server", "-weird-", "-r", "set", "-v", "1", "/a", "b"
            ])),
            v(&["--server=-weird-", "-r", "--", "set", "-v", "1", "/a", "b"])
        );
    }

    #[test]
    fn shell_without_a_session() {
        let out = Arc::new(Output::captured());
        let opts = parse_cli_options(&[]).unwrap();
        let mut sh = Shell::new(opts, Arc::clone(&out));
        assert_eq!(sh.prompt(), "[zk: localhost:2181(CLOSED) 0] ");
        assert_eq!(sh.execute_line("ls /"), Flow::Continue);
        assert_eq!(sh.execute_line("frobnicate"), Flow::Continue);
        assert_eq!(sh.exit_code(), 127);
        assert_eq!(sh.execute_line("printwatches off"), Flow::Continue);
        assert_eq!(sh.execute_line("printwatches"), Flow::Continue);
        assert_eq!(sh.execute_line("history"), Flow::Continue);
        assert_eq!(sh.execute_line("redo 99"), Flow::Continue);
        assert_eq!(sh.exit_code(), 1);
        assert_eq!(sh.execute_line(""), Flow::Continue);
        assert_eq!(sh.prompt(), "[zk: localhost:2181(CLOSED) 6] ");
        let (o, e) = out.taken();
        assert_eq!(
            o,
            "Not connected\nNot connected\nprintwatches is off\nNot connected\n\
             0 - ls /\n1 - frobnicate\n2 - printwatches off\n3 - printwatches\n4 - history\n\
             Not connected\n"
        );
        assert!(e.starts_with("ZooKeeper -server host:port -client-configuration"));
        assert!(e.contains("\tls [-s] [-w] [-R] path\n"));
        assert!(e.ends_with(
            "Command not found: Command not found frobnicate\nCommand index out of range\n"
        ));
        // a crash ends a piped shell with exit code 1
        assert_eq!(sh.execute_line("redo x"), Flow::Exit(1));
        let (_, e) = out.taken();
        assert_eq!(
            e,
            "Exception in thread \"main\" java.lang.NumberFormatException: For input string: \"x\"\n"
        );
        assert_eq!(sh.execute_line("quit"), Flow::Exit(1));
    }
}
