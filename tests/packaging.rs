//! Packaging, documentation and operations tests (issue 7): the static binary (`ldd`, runs
//! with no libraries, resolves /etc/hosts names without NSS), `make install` and `make dist`
//! layouts, the .deb and .rpm, man page coverage of every clap flag and every zoo.cfg key,
//! clean man page rendering, the systemd unit under `systemd-analyze verify` and its sandbox
//! against the system calls the server really makes, the example config, and the log line
//! layout.
//!
//! The tools these tests drive come from Debian packages (man-db, groff-base, systemd, rpm,
//! strace, dpkg, binutils, make). When one is missing and the test runs as root, it is
//! installed with apt-get; if that is impossible the test is skipped with a message, except
//! under CI (CI set), where a missing tool is a failure.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a server may take to answer `ruok` after start.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);
/// The sentence a page of a command that does not exist yet must contain.
const NOT_YET: &str = "not yet implemented in this version";
/// The man pages, relative to the repository.
const MAN_PAGES: &[&str] = &[
    "man/zk.1",
    "man/zk-server.1",
    "man/zk-status.1",
    "man/zk-snapshot.1",
    "man/zk-cli.1",
    "man/zk-bench.1",
    "man/zoo.cfg.5",
];
/// Commands that have a page although the binary may not have them yet.
const PLANNED_COMMANDS: &[&str] = &["snapshot", "cli", "bench"];

// ------------------------------------------------------------------------------------------
// Helpers

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn zk_bin() -> &'static str {
    env!("CARGO_BIN_EXE_zk")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Runs a command and returns its output, panicking with everything it printed if it fails.
fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Both streams of a finished command, for messages and for "printed nothing" checks.
fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// apt-get runs one at a time, and `apt-get update` at most once per test binary.
static APT: Mutex<bool> = Mutex::new(false);

/// Makes sure `cmd` exists, installing Debian `package` if needed and possible. Returns
/// false (after printing why) when the test should be skipped; under CI, panics instead.
fn tool(cmd: &str, package: &str) -> bool {
    if have(cmd) {
        return true;
    }
    let mut updated = APT.lock().unwrap_or_else(|e| e.into_inner());
    if !have(cmd) && is_root() && have("apt-get") {
        if !*updated {
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            *updated = true;
        }
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    if have(cmd) {
        return true;
    }
    let why = format!("`{cmd}` is missing and Debian package `{package}` could not be installed");
    if std::env::var_os("CI").is_some() {
        panic!("{why} (CI must have it: apt-get install {package})");
    }
    eprintln!("SKIPPED: {why}");
    false
}

/// `make` in the repository, without the outer make's jobserver flags (when `make test`
/// runs these tests, those descriptors are not inherited).
fn make(args: &[&str]) -> Command {
    let mut c = Command::new("make");
    c.current_dir(repo())
        .args(["--no-print-directory"])
        .args(args)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL");
    c
}

/// Builds the static binary once per test binary (`make static`) and returns its path.
fn static_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            assert!(tool("make", "make"));
            run_ok(&mut make(&["static"]));
            let target_dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(|d| repo().join(d))
                .unwrap_or_else(|| repo().join("target"));
            let p = target_dir.join("x86_64-unknown-linux-gnu/release/zk");
            assert!(p.is_file(), "make static did not produce {}", p.display());
            p
        })
        .clone()
}

fn temp_dir(tag: &str) -> PathBuf {
    common::unique_temp_dir(tag)
}

/// A child process, and any process it started (the server under strace), killed when the
/// test ends however it ends, so a failing test leaves no server behind.
struct Reaped(Child);

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let pid = self.0.id();
        if let Ok(kids) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
            for kid in kids.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", kid]).status();
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM to a child this test started (by its pid) and waits for it to exit.
fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + EXIT_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the server") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit within {EXIT_TIMEOUT:?} of SIGTERM");
        }
        std::thread::sleep(common::POLL_INTERVAL);
    }
}

/// Polls `ruok` until `imok`.
fn wait_ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "the server exited before it answered ruok"
        );
        if four_letter_word(port, "ruok").is_ok_and(|s| s == "imok") {
            return;
        }
        std::thread::sleep(common::POLL_INTERVAL);
    }
    panic!("the server did not answer ruok within {READY_TIMEOUT:?}");
}

fn four_letter_word(port: u16, word: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Makes roff source searchable as text: escaped hyphens become hyphens, font changes and
/// zero-width characters go.
fn roff_text(src: &str) -> String {
    let mut s = src
        .replace("\\-", "-")
        .replace("\\(aq", "'")
        .replace("\\&", "")
        .replace("\\:", "")
        .replace("\\%", "")
        .replace("\\f(CW", "")
        .replace("\\fP", "");
    for f in ["\\fB", "\\fI", "\\fR"] {
        s = s.replace(f, "");
    }
    s
}

/// Whether `text` contains `word` with no name character right before or after it.
fn contains_word(text: &str, word: &str, name_char: fn(char) -> bool) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(name_char) && !after.is_some_and(name_char)
    })
}

fn flag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

// ------------------------------------------------------------------------------------------
// clap help parsing

/// What `zk ... --help` lists.
#[derive(Debug, Default)]
struct Help {
    flags: Vec<String>,
    commands: Vec<String>,
    arguments: Vec<String>,
}

fn help(args: &[&str]) -> Help {
    let out = run_ok(Command::new(zk_bin()).args(args).arg("--help"));
    parse_help(&stdout(&out))
}

/// Reads clap's help: the flags of every option line, the names in the Commands section
/// (without `help`) and the names of positional arguments.
fn parse_help(text: &str) -> Help {
    let mut h = Help::default();
    let mut section = "";
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line.trim_end_matches(':');
            continue;
        }
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        match section {
            "Options" if t.starts_with('-') => {
                for tok in t.split_whitespace() {
                    let tok = tok.trim_end_matches(',');
                    if !tok.starts_with('-') {
                        break;
                    }
                    let name = tok.split(['=', '[', '<']).next().unwrap_or(tok);
                    h.flags.push(name.to_owned());
                }
            }
            "Commands" if line.starts_with("  ") && !line.starts_with("      ") => {
                let name = t.split_whitespace().next().unwrap_or("");
                if name != "help" {
                    h.commands.push(name.to_owned());
                }
            }
            "Arguments" if t.starts_with(['<', '[']) => {
                let name = t
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_matches(|c| "<>[].".contains(c));
                h.arguments.push(name.to_owned());
            }
            _ => {}
        }
    }
    h
}

#[test]
fn help_parsing_finds_flags_commands_and_arguments() {
    let h = parse_help(
        "Usage: zk snapshot [OPTIONS] <COMMAND>\n\nCommands:\n  ls    List\n  dump  Print \
         the tree\n          more text\n  help  Print this message\n\nArguments:\n  \
         [SNAPSHOT]  A file\n\nOptions:\n  -c, --config <FILE>  zoo.cfg\n      --json  One \
         JSON -- object\n  -h, --help  Print help\n",
    );
    assert_eq!(h.commands, ["ls", "dump"]);
    assert_eq!(h.arguments, ["SNAPSHOT"]);
    assert_eq!(h.flags, ["-c", "--config", "--json", "-h", "--help"]);
}

// ------------------------------------------------------------------------------------------
// Man pages

/// Every clap flag, command, verb and positional argument of the built binary appears in
/// its man page; the pages of commands the binary does not have yet say so.
#[test]
fn man_pages_cover_every_flag_command_and_verb() {
    let zk1 = roff_text(&read("man/zk.1"));
    let top = help(&[]);
    assert!(
        top.commands.iter().any(|c| c == "server") && top.flags.iter().any(|f| f == "--version"),
        "zk --help was not understood: {top:?}"
    );
    let mut missing = Vec::new();
    for f in &top.flags {
        if !contains_word(&zk1, f, flag_char) {
            missing.push(format!("man/zk.1: flag {f}"));
        }
    }
    let every_command = top.commands.iter().map(String::as_str);
    for cmd in every_command.chain(PLANNED_COMMANDS.iter().copied()) {
        if !contains_word(&zk1, cmd, flag_char) {
            missing.push(format!("man/zk.1: command {cmd}"));
        }
    }
    let mut seen = BTreeSet::new();
    for cmd in &top.commands {
        if !seen.insert(cmd.clone()) {
            continue;
        }
        let rel = format!("man/zk-{cmd}.1");
        assert!(
            repo().join(&rel).is_file(),
            "{rel} is missing for `zk {cmd}`"
        );
        let page = roff_text(&read(&rel));
        let h = help(&[cmd]);
        if cmd == "server" {
            assert!(
                h.flags.iter().any(|f| f == "--config"),
                "zk server --help: {h:?}"
            );
        }
        let mut check = |what: &str, items: &[String], name_char: fn(char) -> bool| {
            for item in items {
                if !contains_word(&page, item, name_char) {
                    missing.push(format!("{rel}: {what} {item}"));
                }
            }
        };
        check("flag", &h.flags, flag_char);
        check("verb", &h.commands, flag_char);
        check("argument", &h.arguments, flag_char);
        for verb in &h.commands {
            let v = help(&[cmd, verb]);
            check(&format!("flag of {verb}"), &v.flags, flag_char);
            check(&format!("argument of {verb}"), &v.arguments, flag_char);
        }
    }
    for cmd in PLANNED_COMMANDS {
        if top.commands.iter().any(|c| c == cmd) {
            continue;
        }
        let rel = format!("man/zk-{cmd}.1");
        let page = roff_text(&read(&rel)).to_lowercase();
        let page = page.split_whitespace().collect::<Vec<_>>().join(" ");
        if !page.contains(NOT_YET) {
            missing.push(format!(
                "{rel}: `zk {cmd}` does not exist in this binary, so the page must say \
                 \"{NOT_YET}\""
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented:\n  {}",
        missing.join("\n  ")
    );
}

/// The zoo.cfg keys src/config.rs accepts: the string patterns of the key match in `parse`,
/// the prefixes of its `starts_with` guards, and the unsupported keys it accepts with a
/// warning. Panics if the source no longer has that shape, so the test cannot pass empty.
fn config_keys() -> (Vec<String>, Vec<String>) {
    let src = read("src/config.rs");
    let literals =
        |s: &str| -> Vec<String> { s.split('"').skip(1).step_by(2).map(str::to_owned).collect() };
    let start = src
        .find("match p.key.as_str() {")
        .expect("src/config.rs: the `match p.key.as_str()` of parse() is gone; update this test");
    let body = &src[start..];
    let arm_indent = body
        .lines()
        .skip(1)
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .map(|l| l.len() - l.trim_start().len())
        .expect("an arm");
    let (mut keys, mut prefixes) = (Vec::new(), Vec::new());
    for line in body.lines().skip(1) {
        let t = line.trim();
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent < arm_indent {
            break;
        }
        if indent != arm_indent {
            continue;
        }
        let pattern = t.split("=>").next().unwrap_or("");
        if pattern.starts_with('"') || pattern.starts_with("| \"") {
            keys.extend(literals(pattern));
        } else if pattern.contains("starts_with(\"") {
            for part in pattern.split("starts_with(").skip(1) {
                prefixes.extend(literals(part).into_iter().take(1));
            }
        }
    }
    let unsupported = src
        .split("const KEYS_UNSUPPORTED: &[&str] = &[")
        .nth(1)
        .and_then(|s| s.split("];").next())
        .expect("src/config.rs: KEYS_UNSUPPORTED is gone; update this test");
    keys.extend(literals(unsupported));
    for must in [
        "tickTime",
        "dataDir",
        "clientPort",
        "superDigest",
        "secureClientPort",
    ] {
        assert!(
            keys.iter().any(|k| k == must),
            "{must} not found in {keys:?}"
        );
    }
    assert!(prefixes.iter().any(|p| p == "server."), "{prefixes:?}");
    assert!(keys.len() >= 40, "only {} keys found: {keys:?}", keys.len());
    (keys, prefixes)
}

/// zoo.cfg(5) and packaging/zoo.cfg.example name every key src/config.rs accepts.
#[test]
fn zoo_cfg_page_and_example_document_every_key() {
    let (keys, prefixes) = config_keys();
    let page = roff_text(&read("man/zoo.cfg.5"));
    let example = read("packaging/zoo.cfg.example");
    let example_keys: BTreeSet<String> = example
        .lines()
        .filter_map(|l| {
            let l = l.trim_start_matches('#');
            let (k, _) = l.split_once('=')?;
            (!k.is_empty() && !k.contains(' ')).then(|| k.to_owned())
        })
        .collect();
    let mut missing = Vec::new();
    for key in &keys {
        if !contains_word(&page, key, key_char) {
            missing.push(format!("man/zoo.cfg.5: {key}"));
        }
        if !example_keys.contains(key) {
            missing.push(format!(
                "packaging/zoo.cfg.example: {key}= (commented or not)"
            ));
        }
    }
    for prefix in &prefixes {
        let mentioned = |text: &str| {
            text.match_indices(prefix.as_str())
                .any(|(i, _)| !text[..i].chars().next_back().is_some_and(key_char))
        };
        if !mentioned(&page) {
            missing.push(format!("man/zoo.cfg.5: {prefix}*"));
        }
        if !mentioned(&example) {
            missing.push(format!("packaging/zoo.cfg.example: {prefix}*"));
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented keys:\n  {}",
        missing.join("\n  ")
    );
}

/// `man -l` and groff render every page without a single warning.
#[test]
fn man_pages_render_without_warnings() {
    if !tool("man", "man-db") || !tool("groff", "groff-base") {
        return;
    }
    for rel in MAN_PAGES {
        let path = repo().join(rel);
        let out = run_ok(
            Command::new("man")
                .args(["--warnings", "-E", "UTF-8", "-l"])
                .arg(&path)
                .env("MANWIDTH", "80")
                .env_remove("MAN_KEEP_FORMATTING")
                .env_remove("MANPAGER")
                .env_remove("PAGER"),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "man -l {rel} warned:\n{stderr}");
        let text = stdout(&out);
        assert!(
            text.contains("NAME") && text.len() > 400,
            "{rel} rendered as:\n{text}"
        );
        for device in ["ps", "utf8"] {
            let out = run_ok(
                Command::new("groff")
                    .args(["-t", "-man", "-ww", "-z", &format!("-T{device}")])
                    .arg(&path),
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.is_empty(),
                "groff -T{device} {rel} warned:\n{stderr}"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// Configuration example

/// The example config is a valid standalone configuration, and uncommenting its ENSEMBLE
/// section gives the seeds' three-node ensemble.
#[test]
fn example_config_is_standalone_and_its_ensemble_section_is_the_three_nodes() {
    let text = read("packaging/zoo.cfg.example");
    let cfg = zk::config::parse(&text, Some(Path::new("zoo.cfg.example")))
        .unwrap_or_else(|e| panic!("packaging/zoo.cfg.example: {e}"));
    assert_eq!(cfg.client_port, Some(2181));
    assert_eq!(cfg.data_dir, PathBuf::from("/var/lib/zk"));
    assert_eq!(cfg.tick_time_ms, 2000);
    assert!(!cfg.is_distributed() && cfg.servers.is_empty());

    let begin = text
        .find("ENSEMBLE (begin)")
        .expect("ENSEMBLE (begin) marker");
    let end = text.find("ENSEMBLE (end)").expect("ENSEMBLE (end) marker");
    let mut ensemble = text[..begin].to_owned();
    for line in text[begin..end].lines() {
        // `#key=value` (no space after #) is a setting; `# text` stays a comment.
        let uncommented = line.strip_prefix('#').filter(|l| {
            l.split_once('=')
                .is_some_and(|(k, _)| !k.is_empty() && !k.contains(' '))
        });
        ensemble.push_str(uncommented.unwrap_or(line));
        ensemble.push('\n');
    }
    let cfg = zk::config::parse(&ensemble, Some(Path::new("zoo.cfg.example")))
        .unwrap_or_else(|e| panic!("the ENSEMBLE section, uncommented: {e}"));
    assert!(cfg.is_distributed());
    let servers: Vec<(u64, &str, u16, u16)> = cfg
        .servers
        .iter()
        .map(|s| (s.sid, s.host.as_str(), s.quorum_port, s.election_port))
        .collect();
    assert_eq!(
        servers,
        [
            (1, "node-1", 2888, 3888),
            (2, "node-2", 2888, 3888),
            (3, "node-3", 2888, 3888)
        ]
    );
    assert_eq!((cfg.init_limit, cfg.sync_limit), (Some(10), Some(5)));
    // The same server lines are in zoo.cfg(5)'s example and in the README guide.
    for doc in ["man/zoo.cfg.5", "README.md"] {
        let t = roff_text(&read(doc));
        for l in [
            "server.1=node-1:2888:3888",
            "server.3=node-3:2888:3888",
            "echo 1",
        ] {
            assert!(t.contains(l), "{doc} lacks {l:?}");
        }
    }
}

// ------------------------------------------------------------------------------------------
// systemd

/// The unit passes `systemd-analyze verify` with no complaint at all. The check runs on a
/// temp copy whose ExecStart names the built binary, because verify requires the program to
/// exist and /usr/bin/zk is not installed here, with MANPATH at the pages, because verify
/// also checks that every `Documentation=man:` page exists.
#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let unit = read("packaging/zk.service");
    for line in [
        "User=zk",
        "Group=zk",
        "ExecStart=/usr/bin/zk server --config /etc/zk/zoo.cfg",
        "Restart=on-failure",
        "LimitNOFILE=65536",
        "After=network-online.target",
        "Wants=network-online.target",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/zk",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "zk.service lacks {line}");
    }
    if !tool("systemd-analyze", "systemd") || !tool("man", "man-db") {
        return;
    }
    let dir = temp_dir("unit");
    for (section, pages) in [("man1", &MAN_PAGES[..6]), ("man5", &MAN_PAGES[6..])] {
        std::fs::create_dir_all(dir.join("man").join(section)).unwrap();
        for p in pages {
            let name = Path::new(p).file_name().unwrap();
            std::fs::copy(repo().join(p), dir.join("man").join(section).join(name)).unwrap();
        }
    }
    let verify = |unit_text: &str| -> Output {
        let path = dir.join("zk.service");
        std::fs::write(&path, unit_text).unwrap();
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .env("MANPATH", dir.join("man"))
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .expect("run systemd-analyze")
    };
    let local = unit.replace(
        "ExecStart=/usr/bin/zk ",
        &format!("ExecStart={} ", zk_bin()),
    );
    let out = verify(&local);
    assert!(
        out.status.success() && all_output(&out).trim().is_empty(),
        "systemd-analyze verify zk.service ({}):\n{}",
        out.status,
        all_output(&out)
    );
    // The sandbox stays tight: systemd's own exposure score (0 best, 10 worst) at most 3.
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=30", "--no-pager"])
        .arg(dir.join("zk.service"))
        .env("MANPATH", dir.join("man"))
        .output()
        .expect("run systemd-analyze security");
    assert!(
        security.status.success(),
        "systemd-analyze security: exposure above 3.0:\n{}",
        all_output(&security)
    );
    // The check sees mistakes: verify exits 0 on unknown keys, so silence is what counts.
    let broken = local.replace("ProtectSystem=strict", "ProtectSytem=strict");
    assert!(all_output(&verify(&broken)).contains("ProtectSytem"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every system call the server makes while serving clients, writing and shutting down is
/// allowed by the unit's `SystemCallFilter=@system-service`, and it maps no memory both
/// writable and executable (`MemoryDenyWriteExecute=yes`) and opens no socket outside
/// `RestrictAddressFamilies`. So the sandbox does not break the server.
#[test]
fn unit_sandbox_allows_every_system_call_the_server_makes() {
    if !tool("strace", "strace") || !tool("systemd-analyze", "systemd") {
        return;
    }
    if !Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("SKIPPED: strace cannot trace here (ptrace not permitted)");
        return;
    }
    // What the unit allows, read from the unit itself.
    let unit = read("packaging/zk.service");
    let values = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    };
    let filter = values("SystemCallFilter");
    let families = values("RestrictAddressFamilies");
    let no_wx = values("MemoryDenyWriteExecute") == ["yes"];
    assert!(
        !filter.is_empty() && !families.is_empty() && no_wx,
        "the sandbox is gone"
    );

    let dir = temp_dir("strace");
    let trace = dir.join("trace");
    let port = common::free_port();
    let mut child = Reaped(
        Command::new("strace")
            .args(["-f", "-qq", "-o"])
            .arg(&trace)
            .arg(zk_bin())
            .args([
                "server",
                "--port",
                &port.to_string(),
                "--4lw-whitelist",
                "*",
            ])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn strace zk server"),
    );
    wait_ready(port, &mut child);
    for word in [
        "mntr", "stat", "cons", "conf", "dirs", "envi", "wchs", "dump",
    ] {
        let _ = four_letter_word(port, word);
    }
    writes_over_a_session(port);
    // SIGTERM goes to the server, strace's child; strace then exits with its status.
    let server_pid = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id()))
        .expect("read strace's children")
        .split_whitespace()
        .next()
        .expect("the traced server")
        .to_owned();
    let _ = Command::new("kill").args(["-TERM", &server_pid]).status();
    let status = terminate(&mut child);
    assert!(status.success(), "server under strace exited {status}");

    let calls: BTreeSet<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let rest = l.split_once(' ')?.1.trim_start();
            let rest = rest.strip_prefix("<... ").unwrap_or(rest);
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty() && !name.starts_with("exited") && !name.starts_with("killed"))
                .then_some(name)
        })
        .filter(|n| !n.starts_with("SIG"))
        .collect();
    assert!(
        calls.contains("epoll_wait") || calls.contains("epoll_pwait"),
        "{calls:?}"
    );
    // The writes reached the disk, so the txn log's calls are among those checked.
    assert!(
        ["fsync", "fdatasync", "msync", "sync_file_range"]
            .iter()
            .any(|c| calls.contains(*c)),
        "no sync call traced: {calls:?}"
    );
    // Allow-list entries add, `~` entries take away (systemd.exec(5), SystemCallFilter=).
    let (mut allowed, mut removed) = (BTreeSet::new(), BTreeSet::new());
    for entry in &filter {
        match entry.strip_prefix('~') {
            Some(e) => removed.extend(syscall_set(e, &mut BTreeSet::new())),
            None => allowed.extend(syscall_set(entry, &mut BTreeSet::new())),
        }
    }
    let denied: Vec<&String> = calls
        .iter()
        .filter(|c| !allowed.contains(*c) || removed.contains(*c))
        .collect();
    assert!(
        denied.is_empty(),
        "the server calls {denied:?}, which SystemCallFilter={} denies; widen the filter \
         in packaging/zk.service",
        filter.join(" ")
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    for l in text.lines() {
        if l.contains("mmap(") || l.contains("mprotect(") {
            assert!(
                !(l.contains("PROT_WRITE") && l.contains("PROT_EXEC")),
                "writable and executable memory breaks MemoryDenyWriteExecute=yes: {l}"
            );
        }
        if let Some(rest) = l.split("socket(").nth(1) {
            let family = rest.split(',').next().unwrap_or("");
            assert!(
                families.iter().any(|f| f == family),
                "socket family {family} breaks RestrictAddressFamilies: {l}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The system calls a systemd filter entry stands for: a set (`@system-service`) with its
/// nested sets expanded, or one call.
fn syscall_set(name: &str, seen: &mut BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if !name.starts_with('@') {
        out.insert(name.to_owned());
        return out;
    }
    if !seen.insert(name.to_owned()) {
        return out;
    }
    let text = stdout(&run_ok(
        Command::new("systemd-analyze").args(["syscall-filter", name]),
    ));
    for l in text.lines().map(str::trim) {
        if l.is_empty() || l.starts_with('#') || l == name {
            continue;
        }
        if l.starts_with('@') {
            out.extend(syscall_set(l, seen));
        } else {
            out.insert(l.to_owned());
        }
    }
    assert!(
        out.len() > 10 || name != "@system-service",
        "{name}: {out:?}"
    );
    out
}

/// One session that creates, changes and deletes a znode, written byte by byte (so it does
/// not depend on the client library): the server appends and syncs txns.
fn writes_over_a_session(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&common::frame(&common::connect_payload()))
        .unwrap();
    read_frame(&mut s);
    let string = |v: &mut Vec<u8>, b: &[u8]| {
        v.extend((b.len() as i32).to_be_bytes());
        v.extend(b);
    };
    let mut create = Vec::new();
    string(&mut create, b"/packaging");
    string(&mut create, b"data");
    create.extend(1i32.to_be_bytes()); // one ACL: world:anyone, all permissions
    create.extend(31i32.to_be_bytes());
    string(&mut create, b"world");
    string(&mut create, b"anyone");
    create.extend(0i32.to_be_bytes()); // persistent
    let mut set = Vec::new();
    string(&mut set, b"/packaging");
    string(&mut set, b"more");
    set.extend((-1i32).to_be_bytes());
    let mut delete = Vec::new();
    string(&mut delete, b"/packaging");
    delete.extend((-1i32).to_be_bytes());
    for (xid, op, body) in [
        (1, 1, create),
        (2, 5, set),
        (3, 2, delete),
        (4, -11, Vec::new()),
    ] {
        s.write_all(&common::request_frame(xid, op, &body)).unwrap();
        let reply = read_frame(&mut s);
        let err = i32::from_be_bytes(reply[12..16].try_into().unwrap());
        assert_eq!(err, 0, "op {op} failed with {err}");
    }
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    buf
}

// ------------------------------------------------------------------------------------------
// Static binary

/// `make static` gives a binary that ldd calls static, that runs in an empty root with no
/// libraries at all, and that resolves a name from that root's /etc/hosts even though the
/// C library's resolver cannot (its nsswitch.conf names a module that does not exist, as on
/// a host whose NSS modules do not match the build machine's glibc). Without
/// src/net/resolve.rs, the `zk status --server node-1:PORT` below fails.
#[test]
fn static_binary_runs_anywhere_and_resolves_etc_hosts_names() {
    let bin = static_bin();
    let ldd = Command::new("ldd").arg(&bin).output().expect("run ldd");
    let said = all_output(&ldd);
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd {}: {said}",
        bin.display()
    );
    if !is_root() || !have("chroot") {
        eprintln!("SKIPPED (the chroot part): needs root and chroot(8)");
        return;
    }
    let root = temp_dir("chroot");
    std::fs::copy(&bin, root.join("zk")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/hosts"),
        "# the seeds' names\n127.0.0.1 node-1\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/nsswitch.conf"), "hosts: nosuchmodule\n").unwrap();
    let in_root = |args: &[&str]| {
        Command::new("chroot")
            .arg(&root)
            .arg("/zk")
            .args(args)
            .output()
            .expect("run chroot")
    };
    let v = in_root(&["--version"]);
    assert!(
        v.status.success() && stdout(&v).starts_with("zk "),
        "{}",
        all_output(&v)
    );

    // The static binary serves too; it runs outside the root, on loopback.
    let port = common::free_port();
    let data = temp_dir("static-data");
    let mut server = Reaped(
        Command::new(&bin)
            .args(["server", "--port", &port.to_string(), "--data-dir"])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the static server"),
    );
    wait_ready_srvr(port, &mut server);
    let ok = in_root(&["status", "--server", &format!("node-1:{port}")]);
    let unknown = in_root(&["status", "--server", &format!("node-2:{port}")]);
    let status = terminate(&mut server);
    // zkServer.sh's shape: a "Client port found" line, then the Mode line.
    assert_eq!(
        stdout(&ok).trim().lines().last().unwrap_or(""),
        "Mode: standalone",
        "zk status --server node-1:{port} in the empty root: {}",
        all_output(&ok)
    );
    assert!(ok.status.success());
    assert_eq!(unknown.status.code(), Some(1), "{}", all_output(&unknown));
    assert!(
        status.success(),
        "static server exited {status} after SIGTERM"
    );
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&data);
}

/// Polls `srvr` (the only word the default whitelist allows) until it answers.
fn wait_ready_srvr(port: u16, child: &mut Child) {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        assert!(matches!(child.try_wait(), Ok(None)), "the server exited");
        if four_letter_word(port, "srvr").is_ok_and(|s| s.contains("Mode: ")) {
            return;
        }
        std::thread::sleep(common::POLL_INTERVAL);
    }
    panic!("the server did not answer srvr within {READY_TIMEOUT:?}");
}

// ------------------------------------------------------------------------------------------
// make install, make dist, .deb, .rpm

/// Files relative to a root, with their permission bits.
fn tree(root: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, meta.permissions().mode() & 0o7777));
            }
        }
    }
    out.sort();
    out
}

/// `make install DESTDIR=... PREFIX=/usr` lays out every file with the right mode; the
/// sysusers and tmpfiles entries create the zk user and /var/lib/zk in that root; an
/// operator's zoo.cfg survives a second install; PREFIX=/usr/local moves ExecStart along.
#[test]
fn make_install_layout() {
    static_bin();
    let dest = temp_dir("install");
    let d = dest.display().to_string();
    run_ok(&mut make(&[
        "install",
        &format!("DESTDIR={d}"),
        "PREFIX=/usr",
    ]));
    let expected: &[(&str, u32)] = &[
        ("etc/zk/zoo.cfg", 0o644),
        ("etc/zk/zoo.cfg.example", 0o644),
        ("usr/bin/zk", 0o755),
        ("usr/lib/systemd/system/zk.service", 0o644),
        ("usr/lib/sysusers.d/zk.conf", 0o644),
        ("usr/lib/tmpfiles.d/zk.conf", 0o644),
        ("usr/share/doc/zk/README.md", 0o644),
        ("usr/share/man/man1/zk-bench.1", 0o644),
        ("usr/share/man/man1/zk-cli.1", 0o644),
        ("usr/share/man/man1/zk-server.1", 0o644),
        ("usr/share/man/man1/zk-snapshot.1", 0o644),
        ("usr/share/man/man1/zk-status.1", 0o644),
        ("usr/share/man/man1/zk.1", 0o644),
        ("usr/share/man/man5/zoo.cfg.5", 0o644),
    ];
    let got = tree(&dest);
    let want: Vec<(String, u32)> = expected.iter().map(|(p, m)| (p.to_string(), *m)).collect();
    assert_eq!(got, want, "make install DESTDIR={d} PREFIX=/usr");
    assert_eq!(
        std::fs::read(dest.join("usr/bin/zk")).unwrap(),
        std::fs::read(static_bin()).unwrap(),
        "the static binary is what gets installed"
    );
    assert_eq!(
        read_path(&dest.join("usr/lib/systemd/system/zk.service")),
        read("packaging/zk.service")
    );

    if tool("systemd-sysusers", "systemd") {
        std::fs::create_dir_all(dest.join("etc")).unwrap();
        run_ok(Command::new("systemd-sysusers").arg(format!("--root={d}")));
        let passwd = read_path(&dest.join("etc/passwd"));
        let zk = passwd
            .lines()
            .find(|l| l.starts_with("zk:"))
            .unwrap_or_else(|| panic!("no zk user in {passwd}"));
        assert!(zk.ends_with(":/var/lib/zk:/usr/sbin/nologin"), "{zk}");
        let uid: u32 = zk.split(':').nth(2).unwrap().parse().unwrap();
        run_ok(
            Command::new("systemd-tmpfiles")
                .arg(format!("--root={d}"))
                .arg("--create"),
        );
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(dest.join("var/lib/zk")).unwrap();
        assert_eq!(
            (meta.uid(), meta.permissions().mode() & 0o7777),
            (uid, 0o750)
        );
    }

    // A second install keeps the operator's configuration.
    std::fs::write(
        dest.join("etc/zk/zoo.cfg"),
        "tickTime=2000\ndataDir=/srv/zk\n",
    )
    .unwrap();
    run_ok(&mut make(&[
        "install",
        &format!("DESTDIR={d}"),
        "PREFIX=/usr",
    ]));
    assert!(read_path(&dest.join("etc/zk/zoo.cfg")).contains("/srv/zk"));

    let local = temp_dir("install-local");
    let l = local.display().to_string();
    run_ok(&mut make(&["install", &format!("DESTDIR={l}")]));
    let unit = read_path(&local.join("usr/local/lib/systemd/system/zk.service"));
    assert!(
        unit.lines()
            .any(|x| x == "ExecStart=/usr/local/bin/zk server --config /etc/zk/zoo.cfg"),
        "{unit}"
    );
    assert!(local.join("usr/local/bin/zk").is_file());
    assert!(local.join("usr/local/share/man/man5/zoo.cfg.5").is_file());
    assert!(local.join("etc/zk/zoo.cfg.example").is_file());
    run_ok(&mut make(&["uninstall", &format!("DESTDIR={l}")]));
    let left: Vec<String> = tree(&local).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        left,
        ["etc/zk/zoo.cfg"],
        "uninstall keeps only the configuration"
    );
    let _ = std::fs::remove_dir_all(&dest);
    let _ = std::fs::remove_dir_all(&local);
}

fn read_path(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// `make dist` gives the tarball with the static binary, the pages, the unit, the example
/// config and the README; packaging/build-deb.sh turns it into a .deb whose contents
/// `dpkg-deb -c` lists; the RPM spec builds it with rpmbuild.
#[test]
fn dist_tarball_deb_and_rpm() {
    static_bin();
    let version = env!("CARGO_PKG_VERSION");
    let dist = temp_dir("dist");
    let dd = format!("DISTDIR={}", dist.display());
    run_ok(&mut make(&["dist", &dd]));
    let name = format!("zk-{version}-x86_64-linux");
    let tarball = dist.join(format!("{name}.tar.gz"));
    assert!(tarball.is_file(), "no {}", tarball.display());
    let listing = stdout(&run_ok(Command::new("tar").arg("tzf").arg(&tarball)));
    let mut entries: Vec<&str> = listing.lines().filter(|l| !l.ends_with('/')).collect();
    entries.sort();
    let want: Vec<String> = [
        "README.md",
        "man/zk-bench.1",
        "man/zk-cli.1",
        "man/zk-server.1",
        "man/zk-snapshot.1",
        "man/zk-status.1",
        "man/zk.1",
        "man/zoo.cfg.5",
        "zk",
        "zk.service",
        "zk.sysusers.conf",
        "zk.tmpfiles.conf",
        "zoo.cfg.example",
    ]
    .iter()
    .map(|f| format!("{name}/{f}"))
    .collect();
    assert_eq!(entries, want);
    let sha = read_path(&dist.join(format!("{name}.tar.gz.sha256")));
    assert!(sha.ends_with(&format!("  {name}.tar.gz\n")), "{sha}");

    // The binary in the tarball is the static one and runs.
    let x = dist.join("x");
    std::fs::create_dir_all(&x).unwrap();
    run_ok(
        Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&x),
    );
    let bin = x.join(&name).join("zk");
    let ldd = all_output(&Command::new("ldd").arg(&bin).output().unwrap());
    assert!(
        ldd.contains("not a dynamic executable") || ldd.contains("statically linked"),
        "{ldd}"
    );
    let v = stdout(&run_ok(Command::new(&bin).arg("--version")));
    assert!(v.contains(version), "{v}");

    // .deb
    if tool("dpkg-deb", "dpkg") {
        let out = run_ok(
            Command::new("bash")
                .arg(repo().join("packaging/build-deb.sh"))
                .arg(&tarball)
                .arg(&dist),
        );
        let deb = PathBuf::from(stdout(&out).trim());
        assert_eq!(
            deb,
            dist.join(format!("zk_{version}-1_amd64.deb")),
            "{}",
            all_output(&out)
        );
        let contents = stdout(&run_ok(Command::new("dpkg-deb").arg("-c").arg(&deb)));
        for f in [
            "./usr/bin/zk",
            "./usr/lib/systemd/system/zk.service",
            "./usr/lib/sysusers.d/zk.conf",
            "./usr/lib/tmpfiles.d/zk.conf",
            "./etc/zk/zoo.cfg",
            "./etc/zk/zoo.cfg.example",
            "./usr/share/man/man1/zk.1.gz",
            "./usr/share/man/man1/zk-server.1.gz",
            "./usr/share/man/man1/zk-snapshot.1.gz",
            "./usr/share/man/man5/zoo.cfg.5.gz",
            "./usr/share/doc/zk/README.md",
            "./usr/share/doc/zk/copyright",
        ] {
            assert!(
                contents.lines().any(|l| l.ends_with(&format!(" {f}"))),
                "{f} not in the .deb:\n{contents}"
            );
        }
        assert!(contents.contains("rwxr-xr-x root/root") && !contents.contains(" 1000/"));
        let info = stdout(&run_ok(Command::new("dpkg-deb").arg("-I").arg(&deb)));
        for field in [
            "Package: zk",
            &format!("Version: {version}-1"),
            "Architecture: amd64",
        ] {
            assert!(info.contains(field), "{field} not in:\n{info}");
        }
        let ctrl = dist.join("ctrl");
        run_ok(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctrl));
        assert_eq!(read_path(&ctrl.join("conffiles")).trim(), "/etc/zk/zoo.cfg");
        for script in ["postinst", "prerm", "postrm"] {
            run_ok(Command::new("sh").arg("-n").arg(ctrl.join(script)));
        }
    }

    // .rpm: the spec's fallback version is the crate's, and rpmbuild builds it.
    let spec = read("packaging/rpm/zk.spec");
    assert!(
        spec.contains(&format!("%{{!?zk_version: %global zk_version {version}}}")),
        "packaging/rpm/zk.spec: the fallback version must be {version}"
    );
    if tool("rpmbuild", "rpm") {
        run_ok(&mut make(&["rpm", &dd]));
        let rpm = dist.join(format!("x86_64/zk-{version}-1.x86_64.rpm"));
        assert!(rpm.is_file(), "no {}", rpm.display());
        let files = stdout(&run_ok(Command::new("rpm").arg("-qlp").arg(&rpm)));
        for f in [
            "/usr/bin/zk",
            "/usr/lib/systemd/system/zk.service",
            "/usr/lib/sysusers.d/zk.conf",
            "/usr/lib/tmpfiles.d/zk.conf",
            "/etc/zk/zoo.cfg",
            "/var/lib/zk",
        ] {
            assert!(
                files.lines().any(|l| l == f),
                "{f} not in the .rpm:\n{files}"
            );
        }
        assert!(files.contains("/usr/share/man/man5/zoo.cfg.5"), "{files}");
        let config = stdout(&run_ok(Command::new("rpm").arg("-qcp").arg(&rpm)));
        assert_eq!(config.trim(), "/etc/zk/zoo.cfg");
    }
    let _ = std::fs::remove_dir_all(&dist);
}

// ------------------------------------------------------------------------------------------
// Logging

/// A server's log lines, from a start until SIGTERM, and its exit status.
fn server_log(args: &[&str], rust_log: Option<&str>) -> (Vec<String>, std::process::ExitStatus) {
    let dir = temp_dir("log");
    let port = common::free_port();
    let mut cmd = Command::new(zk_bin());
    cmd.args(args)
        .args(["server", "--port", &port.to_string(), "--data-dir"])
        .arg(dir.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match rust_log {
        Some(v) => cmd.env("RUST_LOG", v),
        None => cmd.env_remove("RUST_LOG"),
    };
    let mut child = Reaped(cmd.spawn().expect("spawn zk server"));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    wait_ready_srvr(port, &mut child);
    let status = terminate(&mut child);
    reader.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (rx.try_iter().collect(), status)
}

/// `2026-11-24 21:00:00,123 [myid:] - INFO  [zk::net] - message`: the parts after the time.
fn parse_log_line(line: &str) -> Option<(&str, &str, &str)> {
    let (time, rest) = (line.get(..23)?, line.get(23..)?);
    // yyyy-MM-dd HH:mm:ss,SSS: these separators, digits everywhere else.
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b','),
    ];
    let shaped =
        time.bytes()
            .enumerate()
            .all(|(i, b)| match separators.iter().find(|&&(at, _)| at == i) {
                Some(&(_, sep)) => b == sep,
                None => b.is_ascii_digit(),
            });
    if !shaped {
        return None;
    }
    let rest = rest.strip_prefix(" [myid:")?;
    let (myid, rest) = rest.split_once("] - ")?;
    if !myid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (level, rest) = (rest.get(..5)?, rest.get(5..)?);
    let rest = rest.strip_prefix(" [")?;
    let (target, message) = rest.split_once("] - ")?;
    Some((level.trim_end(), target, message))
}

#[test]
fn log_lines_have_zookeepers_layout_and_obey_log_level_and_rust_log() {
    let (lines, status) = server_log(&[], None);
    assert!(
        status.success(),
        "SIGTERM must stop the server with 0, got {status}"
    );
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            parse_log_line(l).is_some(),
            "not in ZooKeeper's layout: {l:?}"
        );
    }
    let binding = lines
        .iter()
        .filter_map(|l| parse_log_line(l))
        .find(|(_, _, m)| m.starts_with("binding to port"));
    assert!(
        matches!(binding, Some(("INFO", t, _)) if t.starts_with("zk::")),
        "no INFO binding line from a zk module in {lines:#?}"
    );
    // Standalone: the myid field is empty, as in ZooKeeper.
    assert!(lines[0].contains(" [myid:] - "), "{}", lines[0]);

    let infos = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| parse_log_line(l).is_some_and(|(lv, _, _)| lv == "INFO"))
            .count()
    };
    let (quiet, _) = server_log(&["--log-level", "warn"], None);
    assert_eq!(infos(&quiet), 0, "--log-level warn: {quiet:#?}");
    let (quiet, _) = server_log(&[], Some("warn"));
    assert_eq!(infos(&quiet), 0, "RUST_LOG=warn: {quiet:#?}");
    let (loud, _) = server_log(&["--log-level", "info"], Some("warn"));
    assert!(
        infos(&loud) > 0,
        "--log-level wins over RUST_LOG: {loud:#?}"
    );
}

#[test]
fn log_line_parser_accepts_the_layout_only() {
    let good = "2026-11-24 21:00:00,123 [myid:1] - INFO  [zk::net] - binding to port 0.0.0.0:2181";
    assert_eq!(
        parse_log_line(good),
        Some(("INFO", "zk::net", "binding to port 0.0.0.0:2181"))
    );
    assert!(parse_log_line("[2026-11-24T21:00:00Z INFO  zk::net] binding").is_none());
    assert!(parse_log_line("2026-11-24 21:00:00.123 [myid:1] - INFO  [zk] - x").is_none());
}

// ------------------------------------------------------------------------------------------
// Metrics

/// With `metricsProvider.httpPort` set, the server answers `GET /metrics` with the mntr
/// figures as gauges, its mode as a labelled gauge and the request latency histogram; other
/// paths get 404. The figures are refreshed about once a second, so the test polls.
#[test]
fn metrics_endpoint_serves_mntr_figures_and_latency_histogram() {
    let port = common::free_port();
    let server = common::TestServer::with_config(&[&format!("metricsProvider.httpPort={port}")]);
    let mut c = server.client();
    c.create(
        "/metrics-test",
        Some(b"x"),
        &zk::proto::open_acl_unsafe(),
        0,
    )
    .expect("create");
    let get = |path: &str| -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    };
    let wanted = [
        "zk_server_state{state=\"standalone\"} 1",
        "zk_znode_count ",
        "zk_num_alive_connections ",
        "zk_packets_received ",
        "zk_request_latency_ms_bucket{le=\"+Inf\"} ",
        "zk_request_latency_ms_sum ",
        "zk_request_latency_ms_count ",
    ];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = None;
    while Instant::now() < deadline {
        last = get("/metrics");
        if let Some(text) = &last {
            let counted = text
                .lines()
                .find_map(|l| l.strip_prefix("zk_request_latency_ms_count "))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            if wanted.iter().all(|w| text.contains(w)) && counted > 0 {
                assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
                assert!(
                    text.contains("Content-Type: text/plain; version=0.0.4"),
                    "{text}"
                );
                let other = get("/").unwrap_or_default();
                assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "GET http://127.0.0.1:{port}/metrics never had {wanted:?} with a request counted; \
         last answer: {last:?}\nserver log:\n{}",
        server.log_tail()
    );
}
