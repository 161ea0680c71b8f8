//! The zkCli commands that talk to the server (the CliCommand classes of ZooKeeper
//! 3.8.0), each with the same options, the same output on the same stream, the same error
//! text and the same sequence of requests, so that results and watches match zkCli's. The
//! shell-level commands (history, redo, printwatches, connect, quit) live in `cli.rs`.
//! With `--json`, the read commands print one JSON document each instead of zkCli's text.
//! A command never retries a failed call and never goes on after a failure zkCli stops at
//! (the exceptions zkCli does not catch are reported as such, see `CliError::Crash`).

use super::format::{
    client_config_str, java_list, json_obj, json_stat, json_str, json_strs, jute_id, perm_string,
    pretty_hex_dump, stat_text, StatsTrack,
};
use super::parse::{
    java_parse_int, java_parse_long, java_parse_long_radix, java_split, parse_acl, parse_options,
    CommandLine, GroupSpec, OptSpec, OptionsSpec,
};
use super::Output;
use crate::client::path::validate_path;
use crate::client::session::{validate_ttl, Session, ZkError};
use crate::proto::consts::{add_watch_mode, watcher_type};
use crate::proto::records::{open_acl_unsafe, Acl};
use crate::proto::{Code, CreateMode, MultiOp};
use base64::Engine as _;

/// Why a command failed, and how zkCli reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// A CliException: its message goes to stderr and the exit code becomes this.
    Cli(String, i32),
    /// An exception zkCli does not catch (a NumberFormatException, say): zkCli's main
    /// thread dies with `Exception in thread "main" <this>` and exit code 1.
    Crash(String),
}

pub fn cli(msg: impl Into<String>) -> CliError {
    CliError::Cli(msg.into(), 1)
}

/// CliWrapperException's message for a failed call, and MalformedPathException's for a
/// path the client refused.
pub fn wrap(e: ZkError) -> CliError {
    match e {
        ZkError::IllegalArgument(m) => cli(m),
        ZkError::Keeper { code, path } => {
            let p = path.clone().unwrap_or_else(|| "null".to_owned());
            cli(match code {
                Code::NoNode => format!("Node does not exist: {p}"),
                Code::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {p}"),
                Code::NodeExists => format!("Node already exists: {p}"),
                Code::NotEmpty => format!("Node not empty: {p}"),
                Code::NotReadOnly => format!("Not a read-only call: {p}"),
                Code::InvalidAcl => format!("Acl is not valid : {p}"),
                Code::NoAuth => format!("Insufficient permission : {p}"),
                Code::BadArguments => format!("Arguments are not valid : {p}"),
                Code::BadVersion => format!("version No is not valid : {p}"),
                Code::ReconfigInProgress => "Another reconfiguration is in progress -- \
                                             concurrent reconfigs not supported (yet)"
                    .to_owned(),
                Code::NewConfigNoQuorum => "No quorum of new config is connected and up-to-date \
                                            with the leader of last commmitted config - try \
                                            invoking reconfiguration after new servers are \
                                            connected and synced"
                    .to_owned(),
                Code::QuotaExceeded => format!("Quota has exceeded : {p}"),
                _ => ZkError::Keeper { code, path }.to_string(),
            })
        }
    }
}

/// A command's name and its usage string (zkCli 3.8.0's `getOptionStr`), sorted as the
/// usage list prints them.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "addWatch",
        "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default \
         is PERSISTENT_RECURSIVE",
    ),
    ("addauth", "scheme auth"),
    ("close", ""),
    ("config", "[-c] [-w] [-s]"),
    ("connect", "host:port"),
    ("create", "[-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "[-v version] path"),
    ("deleteall", "path [-b batch size]"),
    ("delquota", "[-n|-b|-N|-B] path"),
    ("get", "[-s] [-w] path"),
    ("getAcl", "[-s] path"),
    ("getAllChildrenNumber", "path"),
    ("getEphemerals", "path"),
    ("history", ""),
    ("listquota", "path"),
    ("ls", "[-s] [-w] [-R] path"),
    ("printwatches", "on|off"),
    ("quit", ""),
    (
        "reconfig",
        "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | \
         [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
    ),
    ("redo", "cmdno"),
    ("removewatches", "path [-c|-d|-a] [-l]"),
    ("set", "[-s] [-v version] path data"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("setquota", "-n|-b|-N|-B val path"),
    ("stat", "[-w] path"),
    ("sync", "path"),
    ("version", ""),
    ("whoami", ""),
];

/// The read commands that print JSON under `--json`.
pub const JSON_COMMANDS: &[&str] = &[
    "ls",
    "get",
    "stat",
    "getAcl",
    "getAllChildrenNumber",
    "getEphemerals",
    "whoami",
    "listquota",
    "config",
    "sync",
];

pub fn is_command(name: &str) -> bool {
    COMMANDS.iter().any(|(c, _)| *c == name)
}

/// `getUsageStr()`: the command, a space, its options.
pub fn usage_str(name: &str) -> String {
    let opts = COMMANDS
        .iter()
        .find(|(c, _)| *c == name)
        .map(|(_, o)| *o)
        .unwrap_or("");
    format!("{name} {opts}")
}

/// ZooKeeperMain.usage(), printed to stderr.
pub fn usage_text() -> String {
    let mut s = String::from(
        "ZooKeeper -server host:port -client-configuration properties-file cmd args\n",
    );
    for (c, o) in COMMANDS {
        s.push_str(&format!("\t{c} {o}\n"));
    }
    s
}

const fn flag(name: &'static str) -> OptSpec {
    OptSpec {
        name,
        has_arg: false,
    }
}

const fn valued(name: &'static str) -> OptSpec {
    OptSpec {
        name,
        has_arg: true,
    }
}

const NONE: OptionsSpec = OptionsSpec {
    opts: &[],
    group: None,
};
const CREATE: OptionsSpec = OptionsSpec {
    opts: &[flag("e"), flag("s"), flag("c"), valued("t")],
    group: None,
};
const DELETE: OptionsSpec = OptionsSpec {
    opts: &[valued("v")],
    group: None,
};
const DELETEALL: OptionsSpec = OptionsSpec {
    opts: &[valued("b")],
    group: None,
};
const QUOTA_GROUP: &[(&str, &str)] = &[
    ("n", "num soft quota"),
    ("b", "bytes soft quota"),
    ("N", "num hard quota"),
    ("B", "bytes hard quota"),
];
const DELQUOTA: OptionsSpec = OptionsSpec {
    opts: &[flag("n"), flag("b"), flag("N"), flag("B")],
    group: Some(GroupSpec {
        members: QUOTA_GROUP,
        required: false,
    }),
};
const SETQUOTA: OptionsSpec = OptionsSpec {
    opts: &[valued("n"), valued("b"), valued("N"), valued("B")],
    group: Some(GroupSpec {
        members: QUOTA_GROUP,
        required: true,
    }),
};
/// get's `-b` and `-x` come from ZooKeeper 3.8.5/3.9.3; the usage line stays 3.8.0's.
const GET: OptionsSpec = OptionsSpec {
    opts: &[flag("s"), flag("w"), flag("b"), flag("x")],
    group: None,
};
const GETACL: OptionsSpec = OptionsSpec {
    opts: &[flag("s")],
    group: None,
};
const CONFIG: OptionsSpec = OptionsSpec {
    opts: &[flag("s"), flag("w"), flag("c")],
    group: None,
};
const LS: OptionsSpec = OptionsSpec {
    opts: &[flag("?"), flag("s"), flag("w"), flag("R")],
    group: None,
};
const RECONFIG: OptionsSpec = OptionsSpec {
    opts: &[
        flag("s"),
        valued("v"),
        valued("file"),
        valued("members"),
        valued("add"),
        valued("remove"),
    ],
    group: None,
};
const REMOVEWATCHES: OptionsSpec = OptionsSpec {
    opts: &[flag("c"), flag("d"), flag("a"), flag("l")],
    group: None,
};
const SETACL: OptionsSpec = OptionsSpec {
    opts: &[flag("s"), valued("v"), flag("R")],
    group: None,
};
/// set's `-b` (data in base64) comes from ZooKeeper 3.8.5/3.9.3.
const SET: OptionsSpec = OptionsSpec {
    opts: &[flag("s"), valued("v"), flag("b")],
    group: None,
};
const STAT: OptionsSpec = OptionsSpec {
    opts: &[flag("w")],
    group: None,
};
const ADDWATCH: OptionsSpec = OptionsSpec {
    opts: &[valued("m")],
    group: None,
};

/// What a command runs against.
pub struct Ctx<'a> {
    pub zk: &'a Session,
    pub out: &'a Output,
    pub json: bool,
}

impl Ctx<'_> {
    fn outln(&self, s: &str) {
        self.out.out(&format!("{s}\n"));
    }

    fn errln(&self, s: &str) {
        self.out.err(&format!("{s}\n"));
    }
}

fn parse(spec: &OptionsSpec, args: &[String]) -> Result<CommandLine, CliError> {
    parse_options(spec, args).map_err(cli)
}

/// Runs one server command; `args[0]` is its name.
pub fn exec(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    match args[0].as_str() {
        "addWatch" => add_watch(args, ctx),
        "addauth" => addauth(args, ctx),
        "close" => {
            ctx.zk.close();
            Ok(())
        }
        "config" => config(args, ctx),
        "create" => create(args, ctx),
        "delete" => delete(args, ctx),
        "deleteall" => deleteall(args, ctx),
        "delquota" => delquota(args, ctx),
        "get" => get(args, ctx),
        "getAcl" => get_acl(args, ctx),
        "getAllChildrenNumber" => get_all_children_number(args, ctx),
        "getEphemerals" => get_ephemerals(args, ctx),
        "listquota" => listquota(args, ctx),
        "ls" => ls(args, ctx),
        "reconfig" => reconfig(args, ctx),
        "removewatches" => removewatches(args, ctx),
        "set" => set(args, ctx),
        "setAcl" => set_acl(args, ctx),
        "setquota" => setquota(args, ctx),
        "stat" => stat(args, ctx),
        "sync" => sync(args, ctx),
        "version" => version(args, ctx),
        "whoami" => whoami(ctx),
        _ => Ok(()),
    }
}

fn create(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&CREATE, args)?;
    let a = &cl.args;
    if a.len() < 2 {
        return Err(cli(usage_str("create")));
    }
    let (e, s, c, t) = (cl.has("e"), cl.has("s"), cl.has("c"), cl.has("t"));
    if c && (e || s) {
        return Err(cli(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ));
    }
    let ttl = if t {
        java_parse_long(cl.value("t").unwrap_or(""))
            .map_err(|_| cli("-t argument must be a long value"))?
    } else {
        0
    };
    if t && e {
        return Err(cli("TTLs cannot be used with Ephemeral znodes"));
    }
    if t && c {
        return Err(cli("TTLs cannot be used with Container znodes"));
    }
    let mode = match (e, s, c, t) {
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (true, false, _, _) => CreateMode::Ephemeral,
        (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
        (false, true, _, false) => CreateMode::PersistentSequential,
        (false, false, true, _) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (false, false, false, false) => CreateMode::Persistent,
    };
    if t {
        validate_ttl(ttl).map_err(cli)?;
    }
    let path = &a[1];
    let data = a.get(2).map(|d| d.as_bytes().to_vec());
    let acl = match a.get(3) {
        Some(s) => acl_from(s, ctx),
        None => open_acl_unsafe(),
    };
    match ctx
        .zk
        .create(path, data.as_deref(), &acl, mode, t.then_some(ttl))
    {
        Ok(p) => {
            ctx.errln(&format!("Created {p}"));
            Ok(())
        }
        Err(e @ ZkError::IllegalArgument(_)) => Err(wrap(e)),
        Err(e) => {
            match e.code() {
                Some(Code::EphemeralOnLocalSession) => {
                    ctx.errln("Unable to create ephemeral node on a local session")
                }
                Some(Code::InvalidAcl) => ctx.errln(&e.to_string()),
                _ => {}
            }
            Err(wrap(e))
        }
    }
}

/// AclParser.parse, printing its complaints to stderr as zkCli does.
fn acl_from(s: &str, ctx: &Ctx) -> Vec<Acl> {
    let (acl, warnings) = parse_acl(s);
    for w in warnings {
        ctx.errln(&w);
    }
    acl
}

fn delete(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&DELETE, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("delete")));
    }
    if cl.args.len() > 2 {
        // zkCli 3.8 warns about the old `delete path version` form and then ignores the
        // version: it parses the same words again.
        ctx.errln(
            "'delete path [version]' has been deprecated. Please use 'delete [-v version] path' \
             instead.",
        );
    }
    let version = match cl.value("v") {
        Some(v) => java_parse_int(v).map_err(CliError::Crash)?,
        None => -1,
    };
    ctx.zk.delete(&cl.args[1], version).map_err(wrap)
}

fn deleteall(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&DELETEALL, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("deleteall")));
    }
    let batch = match cl.value("b") {
        Some(v) => java_parse_int(v).map_err(|_| cli("-b argument must be an int value"))?,
        None => 1000,
    };
    let path = &cl.args[1];
    validate_path(path).map_err(cli)?;
    let tree = list_subtree_bfs(ctx.zk, path).map_err(wrap)?;
    if !delete_in_batch(ctx.zk, &tree, batch) {
        ctx.errln("Failed to delete some node(s) in the subtree!");
    }
    Ok(())
}

/// ZKUtil.listSubTreeBFS: the root, then every node level by level (getChildren, op 8).
pub fn list_subtree_bfs(zk: &Session, root: &str) -> Result<Vec<String>, ZkError> {
    let mut tree = vec![root.to_owned()];
    let mut queue = std::collections::VecDeque::from([root.to_owned()]);
    while let Some(node) = queue.pop_front() {
        for child in zk.get_children(&node, false)? {
            let p = if node == "/" {
                format!("/{child}")
            } else {
                format!("{node}/{child}")
            };
            queue.push_back(p.clone());
            tree.push(p);
        }
    }
    Ok(tree)
}

/// ZKUtil.deleteInBatch: deletes leaves first, `batch` deletes per multi, and stops at the
/// first failed multi. Returns whether everything went.
fn delete_in_batch(zk: &Session, tree: &[String], batch: i32) -> bool {
    let mut ops = Vec::new();
    for (i, p) in tree.iter().enumerate().rev() {
        ops.push(MultiOp::Delete {
            path: p.clone(),
            version: -1,
        });
        if ops.len() as i64 == batch as i64 || i == 0 {
            if zk.multi(&ops).is_err() {
                return false;
            }
            ops.clear();
        }
    }
    true
}

/// ZKUtil.visitSubTreeDFS: getData on the root (setting a data watch if asked), the root,
/// then for each node its sorted children and a recursion into each (getChildren2,
/// setting child watches if asked). A node that vanishes midway is skipped.
pub fn visit_subtree_dfs(
    zk: &Session,
    path: &str,
    watch: bool,
    cb: &mut dyn FnMut(&str) -> Result<(), ZkError>,
) -> Result<(), ZkError> {
    validate_path(path).map_err(ZkError::IllegalArgument)?;
    zk.get_data(path, watch)?;
    cb(path)?;
    visit_helper(zk, path, watch, cb)
}

fn visit_helper(
    zk: &Session,
    path: &str,
    watch: bool,
    cb: &mut dyn FnMut(&str) -> Result<(), ZkError>,
) -> Result<(), ZkError> {
    let mut children = match zk.get_children2(path, watch) {
        Ok((c, _)) => c,
        Err(ZkError::Keeper {
            code: Code::NoNode, ..
        }) => return Ok(()),
        Err(e) => return Err(e),
    };
    children.sort();
    let child_path = |c: &str| {
        if path.len() == 1 {
            format!("{path}{c}")
        } else {
            format!("{path}/{c}")
        }
    };
    for c in &children {
        cb(&child_path(c))?;
    }
    for c in &children {
        visit_helper(zk, &child_path(c), watch, cb)?;
    }
    Ok(())
}

/// The `cmd path [watch]` forms of ls, get and stat: zkCli overwrites the third word with
/// `-w`, warns, and parses again.
fn retain_compatibility(
    spec: &OptionsSpec,
    args: &[String],
    cl: CommandLine,
    warning: &str,
    ctx: &Ctx,
) -> Result<CommandLine, CliError> {
    if cl.args.len() <= 2 {
        return Ok(cl);
    }
    let mut a = args.to_vec();
    a[2] = "-w".to_owned();
    ctx.errln(warning);
    parse(spec, &a)
}

fn get(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&GET, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("get")));
    }
    let cl = retain_compatibility(
        &GET,
        args,
        cl,
        "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.",
        ctx,
    )?;
    let path = &cl.args[1];
    let (data, stat) = ctx.zk.get_data(path, cl.has("w")).map_err(wrap)?;
    if ctx.json {
        let b64 = data
            .as_ref()
            .map(|d| json_str(&base64::engine::general_purpose::STANDARD.encode(d)))
            .unwrap_or_else(|| "null".to_owned());
        let text = data
            .as_ref()
            .map(|d| json_str(&String::from_utf8_lossy(d)))
            .unwrap_or_else(|| "null".to_owned());
        ctx.outln(&json_obj(&[
            ("path", json_str(path)),
            ("data", text),
            ("dataBase64", b64),
            ("stat", json_stat(&stat)),
        ]));
        return Ok(());
    }
    let data = data.unwrap_or_else(|| b"null".to_vec());
    let text = if cl.has("x") {
        pretty_hex_dump(&data)
    } else if cl.has("b") {
        base64::engine::general_purpose::STANDARD.encode(&data)
    } else {
        String::from_utf8_lossy(&data).into_owned()
    };
    ctx.outln(&text);
    if cl.has("s") {
        ctx.out.out(&stat_text(&stat));
    }
    Ok(())
}

fn set(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&SET, args)?;
    if cl.args.len() < 3 {
        return Err(cli(usage_str("set")));
    }
    let path = &cl.args[1];
    let data = if cl.has("b") {
        base64::engine::general_purpose::STANDARD
            .decode(&cl.args[2])
            .map_err(|e| CliError::Crash(format!("java.lang.IllegalArgumentException: {e}")))?
    } else {
        cl.args[2].as_bytes().to_vec()
    };
    let version = match cl.value("v") {
        Some(v) => java_parse_int(v).map_err(CliError::Crash)?,
        None => -1,
    };
    let stat = ctx.zk.set_data(path, Some(&data), version).map_err(wrap)?;
    if cl.has("s") {
        ctx.out.out(&stat_text(&stat));
    }
    Ok(())
}

fn ls(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&LS, args)?;
    if cl.has("?") {
        ctx.out
            .out("usage: ls [options] path\n -?   help\n -R   recurse\n -s   stat\n -w   watch\n");
    }
    let cl = retain_compatibility(
        &LS,
        args,
        cl,
        "'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.",
        ctx,
    )?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("ls")));
    }
    let path = &cl.args[1];
    let watch = cl.has("w");
    if cl.has("R") {
        let mut paths = Vec::new();
        let r = visit_subtree_dfs(ctx.zk, path, watch, &mut |p| {
            if ctx.json {
                paths.push(p.to_owned());
            } else {
                ctx.outln(p);
            }
            Ok(())
        });
        if ctx.json && r.is_ok() {
            ctx.outln(&json_obj(&[
                ("path", json_str(path)),
                ("recursive", "true".to_owned()),
                ("paths", json_strs(&paths)),
            ]));
        }
        return r.map_err(wrap);
    }
    let (mut children, stat) = ctx.zk.get_children2(path, watch).map_err(wrap)?;
    children.sort();
    if ctx.json {
        ctx.outln(&json_obj(&[
            ("path", json_str(path)),
            ("children", json_strs(&children)),
            ("stat", json_stat(&stat)),
        ]));
        return Ok(());
    }
    ctx.outln(&java_list(&children));
    if cl.has("s") {
        ctx.out.out(&stat_text(&stat));
    }
    Ok(())
}

fn stat(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&STAT, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("stat")));
    }
    let cl = retain_compatibility(
        &STAT,
        args,
        cl,
        "'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.",
        ctx,
    )?;
    let path = &cl.args[1];
    let Some(stat) = ctx.zk.exists(path, cl.has("w")).map_err(wrap)? else {
        return Err(cli(format!("Node does not exist: {path}")));
    };
    if ctx.json {
        ctx.outln(&json_obj(&[
            ("path", json_str(path)),
            ("stat", json_stat(&stat)),
        ]));
    } else {
        ctx.out.out(&stat_text(&stat));
    }
    Ok(())
}

fn get_acl(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&GETACL, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("getAcl")));
    }
    let path = &cl.args[1];
    let (acl, stat) = ctx.zk.get_acl(path).map_err(wrap)?;
    if ctx.json {
        let entries: Vec<String> = acl
            .iter()
            .map(|a| {
                json_obj(&[
                    ("scheme", json_str(&a.id.scheme)),
                    ("id", json_str(&a.id.id)),
                    ("perms", json_str(&perm_string(a.perms))),
                ])
            })
            .collect();
        ctx.outln(&json_obj(&[
            ("path", json_str(path)),
            ("acl", format!("[{}]", entries.join(","))),
            ("stat", json_stat(&stat)),
        ]));
        return Ok(());
    }
    for a in &acl {
        ctx.out
            .out(&format!("{}: {}\n", jute_id(&a.id), perm_string(a.perms)));
    }
    if cl.has("s") {
        ctx.out.out(&stat_text(&stat));
    }
    Ok(())
}

fn set_acl(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&SETACL, args)?;
    if cl.args.len() < 3 {
        return Err(cli(usage_str("setAcl")));
    }
    let path = &cl.args[1];
    let acl = acl_from(&cl.args[2], ctx);
    let version = match cl.value("v") {
        Some(v) => java_parse_int(v).map_err(CliError::Crash)?,
        None => -1,
    };
    if cl.has("R") {
        // Each node's failure is printed (without a newline, as zkCli does) and the walk
        // goes on.
        return visit_subtree_dfs(ctx.zk, path, false, &mut |p| {
            if let Err(e) = ctx.zk.set_acl(p, &acl, version) {
                ctx.out.out(&e.to_string());
            }
            Ok(())
        })
        .map_err(wrap);
    }
    let stat = ctx.zk.set_acl(path, &acl, version).map_err(wrap)?;
    if cl.has("s") {
        ctx.out.out(&stat_text(&stat));
    }
    Ok(())
}

fn get_all_children_number(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&NONE, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("getAllChildrenNumber")));
    }
    let path = &cl.args[1];
    let n = ctx.zk.get_all_children_number(path).map_err(wrap)?;
    if ctx.json {
        ctx.outln(&json_obj(&[
            ("path", json_str(path)),
            ("count", n.to_string()),
        ]));
    } else {
        ctx.outln(&n.to_string());
    }
    Ok(())
}

fn get_ephemerals(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&NONE, args)?;
    let prefix = cl.args.get(1).map(String::as_str).unwrap_or("/");
    let v = ctx.zk.get_ephemerals(prefix).map_err(wrap)?;
    if ctx.json {
        ctx.outln(&json_obj(&[
            ("prefix", json_str(prefix)),
            ("ephemerals", json_strs(&v)),
        ]));
    } else {
        ctx.outln(&java_list(&v));
    }
    Ok(())
}

fn whoami(ctx: &Ctx) -> Result<(), CliError> {
    let infos = ctx.zk.who_am_i().map_err(wrap)?;
    if ctx.json {
        let ids: Vec<String> = infos
            .iter()
            .map(|i| {
                json_obj(&[
                    ("scheme", json_str(&i.auth_scheme)),
                    ("user", json_str(&i.user)),
                ])
            })
            .collect();
        ctx.outln(&json_obj(&[("ids", format!("[{}]", ids.join(",")))]));
        return Ok(());
    }
    ctx.outln("Auth scheme: User");
    for i in infos {
        ctx.outln(&format!("{}: {}", i.auth_scheme, i.user));
    }
    Ok(())
}

fn addauth(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&NONE, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("addauth")));
    }
    let auth = cl.args.get(2).map(|a| a.as_bytes().to_vec());
    ctx.zk.add_auth(&cl.args[1], auth.as_deref());
    Ok(())
}

fn add_watch(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&ADDWATCH, args)?;
    if cl.args.len() != 2 {
        return Err(cli(usage_str("addWatch")));
    }
    let mode = match cl.value("m").map(str::to_uppercase).as_deref() {
        None | Some("PERSISTENT_RECURSIVE") => add_watch_mode::PERSISTENT_RECURSIVE,
        Some("PERSISTENT") => add_watch_mode::PERSISTENT,
        Some(_) => return Err(cli(usage_str("addWatch"))),
    };
    match ctx.zk.add_watch(&cl.args[1], mode) {
        Ok(()) => Ok(()),
        // AddWatchCommand does not catch the IllegalArgumentException of a bad path.
        Err(ZkError::IllegalArgument(m)) => Err(CliError::Crash(format!(
            "java.lang.IllegalArgumentException: {m}"
        ))),
        Err(e) => Err(wrap(e)),
    }
}

fn removewatches(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&REMOVEWATCHES, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("removewatches")));
    }
    let wtype = if cl.has("c") {
        watcher_type::CHILDREN
    } else if cl.has("d") {
        watcher_type::DATA
    } else {
        watcher_type::ANY
    };
    ctx.zk
        .remove_all_watches(&cl.args[1], wtype, cl.has("l"))
        .map_err(wrap)
}

fn sync(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&NONE, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("sync")));
    }
    let path = &cl.args[1];
    let rc = match ctx.zk.sync(path) {
        Ok(()) => 0,
        Err(ZkError::IllegalArgument(m)) => return Err(cli(m)),
        Err(ZkError::Keeper { code, .. }) => code.code(),
    };
    if ctx.json {
        ctx.outln(&json_obj(&[
            ("path", json_str(path)),
            ("rc", rc.to_string()),
        ]));
    } else if rc == 0 {
        ctx.outln("Sync is OK");
    } else {
        ctx.outln(&format!("Sync has failed. rc={rc}"));
    }
    Ok(())
}

fn version(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&NONE, args)?;
    if cl.args.len() > 1 {
        return Err(cli(usage_str("version")));
    }
    ctx.outln(&format!("ZooKeeper CLI version: {}", crate::VERSION_STRING));
    Ok(())
}

fn config(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&CONFIG, args)?;
    let (data, stat) = ctx.zk.get_config(cl.has("w")).map_err(wrap)?;
    let text = data
        .as_ref()
        .map(|d| String::from_utf8_lossy(d).into_owned());
    if ctx.json {
        let mut fields = vec![(
            "config",
            text.as_deref()
                .map(json_str)
                .unwrap_or_else(|| "null".to_owned()),
        )];
        if cl.has("c") {
            fields.push((
                "clientConfig",
                json_str(&client_config_str(text.as_deref().unwrap_or("null"))),
            ));
        }
        fields.push(("stat", json_stat(&stat)));
        ctx.outln(&json_obj(&fields));
        return Ok(());
    }
    let text = text.unwrap_or_else(|| "null".to_owned());
    if cl.has("c") {
        ctx.outln(&client_config_str(&text));
    } else {
        ctx.outln(&text);
    }
    if cl.has("s") {
        ctx.out.out(&stat_text(&stat));
    }
    Ok(())
}

fn reconfig(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&RECONFIG, args)?;
    let (file, members, add, remove) = (
        cl.has("file"),
        cl.has("members"),
        cl.has("add"),
        cl.has("remove"),
    );
    if !(file || members || add || remove) {
        return Err(cli(usage_str("reconfig")));
    }
    let version = match cl.value("v") {
        Some(v) => java_parse_long_radix(v, 16)
            .map_err(|_| cli("-v must be followed by a long (configuration version)"))?,
        None => -1,
    };
    if (file || members) && (add || remove) {
        return Err(cli(
            "Can't use -file or -members together with -add or -remove (mixing incremental and \
             non-incremental modes is not allowed)",
        ));
    }
    if file && members {
        return Err(cli(
            "Can't use -file and -members together (conflicting non-incremental modes)",
        ));
    }
    let joining = cl.value("add").map(str::to_lowercase);
    let leaving = cl.value("remove").map(str::to_lowercase);
    let mut new_members = cl.value("members").map(str::to_lowercase);
    if let Some(f) = cl.value("file") {
        new_members =
            Some(members_from_file(f).map_err(|m| cli(format!("Error processing {f}{m}")))?);
    }
    let (data, stat) = ctx
        .zk
        .reconfig(
            joining.as_deref(),
            leaving.as_deref(),
            new_members.as_deref(),
            version,
        )
        .map_err(wrap)?;
    let data = data.unwrap_or_default();
    ctx.outln(&format!(
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(&data)
    ));
    if cl.has("s") {
        ctx.out.out(&stat_text(&stat));
    }
    Ok(())
}

/// The membership a `-file` dynamic config describes: its `server.N` lines in id order,
/// then its version, as QuorumVerifier.toString() lists them. The error is the text Java's
/// FileInputStream gives (`<file> (No such file or directory)`).
fn members_from_file(f: &str) -> Result<String, String> {
    let text = std::fs::read(f).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "No such file or directory".to_owned(),
            std::io::ErrorKind::PermissionDenied => "Permission denied".to_owned(),
            _ if std::path::Path::new(f).is_dir() => "Is a directory".to_owned(),
            _ => e.to_string(),
        };
        format!("{f} ({why})")
    })?;
    let props = super::format::load_properties(&String::from_utf8_lossy(&text));
    let mut servers: Vec<(u64, String)> = Vec::new();
    let mut version = None;
    for (k, v) in props {
        if let Some(id) = k.strip_prefix("server.") {
            let id: u64 = id.parse().map_err(|_| format!(": bad server id in {k}"))?;
            servers.push((id, format!("server.{id}={v}")));
        } else if k == "version" {
            version = Some(v);
        }
    }
    servers.sort();
    let mut s: String = servers.into_iter().map(|(_, l)| l + "\n").collect();
    if let Some(v) = version {
        s.push_str(&format!("version={v}"));
    }
    Ok(s)
}

/// The quota nodes (Quotas).
const QUOTA_ROOT: &str = "/zookeeper/quota";
const LIMIT_NODE: &str = "zookeeper_limits";
const STAT_NODE: &str = "zookeeper_stats";

/// A failure inside the quota commands: a call's error, which each command reports its
/// own way (NoNode especially), or an already decided CliError.
enum QuotaError {
    Zk(ZkError),
    Cli(CliError),
}

impl From<ZkError> for QuotaError {
    fn from(e: ZkError) -> Self {
        QuotaError::Zk(e)
    }
}

impl From<CliError> for QuotaError {
    fn from(e: CliError) -> Self {
        QuotaError::Cli(e)
    }
}

/// Reports a quota failure: NoNode as `quota for <path> does not exist.` on stderr (a
/// success, as in zkCli) when `nonode_is_absent`, everything else as CliWrapperException.
fn quota_result(
    r: Result<(), QuotaError>,
    ctx: &Ctx,
    path: &str,
    nonode_is_absent: bool,
) -> Result<(), CliError> {
    match r {
        Ok(()) => Ok(()),
        Err(QuotaError::Zk(e)) if nonode_is_absent && e.code() == Some(Code::NoNode) => {
            ctx.errln(&format!("quota for {path} does not exist."));
            Ok(())
        }
        Err(QuotaError::Zk(e)) => Err(wrap(e)),
        Err(QuotaError::Cli(e)) => Err(e),
    }
}

/// The data of a quota node as StatsTrack; null or malformed data kills zkCli with
/// Java's exception, and so it does here.
fn quota_data(zk: &Session, path: &str) -> Result<StatsTrack, QuotaError> {
    let (data, _) = zk.get_data(path, false)?;
    let Some(data) = data else {
        return Err(CliError::Crash("java.lang.NullPointerException".to_owned()).into());
    };
    StatsTrack::parse(&String::from_utf8_lossy(&data)).map_err(|m| CliError::Crash(m).into())
}

fn listquota(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&NONE, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("listquota")));
    }
    let path = &cl.args[1];
    let limits_path = format!("{QUOTA_ROOT}{path}/{LIMIT_NODE}");
    let stats_path = format!("{QUOTA_ROOT}{path}/{STAT_NODE}");
    ctx.errln(&format!("absolute path is {limits_path}"));
    let r = (|| -> Result<(), QuotaError> {
        let limits = quota_data(ctx.zk, &limits_path)?;
        let stats = quota_data(ctx.zk, &stats_path)?;
        if ctx.json {
            let obj = |t: &StatsTrack| {
                let f: Vec<(&str, String)> = t
                    .stats
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.to_string()))
                    .collect();
                json_obj(&f)
            };
            ctx.outln(&json_obj(&[
                ("path", json_str(path)),
                ("quota", obj(&limits)),
                ("stat", obj(&stats)),
            ]));
        } else {
            ctx.outln(&format!("Output quota for {path} {limits}"));
            ctx.outln(&format!("Output stat for {path} {stats}"));
        }
        Ok(())
    })();
    quota_result(r, ctx, path, true)
}

fn setquota(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&SETQUOTA, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("setquota")));
    }
    let path = &cl.args[1];
    if path.starts_with(QUOTA_ROOT) {
        ctx.errln(&format!("cannot set a quota under the path: {QUOTA_ROOT}"));
        return Ok(());
    }
    let mut quota = StatsTrack::default();
    for k in ["count", "bytes", "countHardLimit", "byteHardLimit"] {
        quota.set(k, -1);
    }
    for (opt, key, is_count) in [
        ("n", "count", true),
        ("b", "bytes", false),
        ("N", "countHardLimit", true),
        ("B", "byteHardLimit", false),
    ] {
        let Some(v) = cl.value(opt) else { continue };
        let parsed = if is_count {
            java_parse_int(v).map(i64::from)
        } else {
            java_parse_long(v)
        };
        let Ok(n) = parsed else {
            ctx.errln("NumberFormatException happens when parsing the option value");
            return Ok(());
        };
        if is_count && n <= 0 {
            ctx.errln("the num quota must be greater than zero");
            return Ok(());
        }
        if !is_count && n < 0 {
            ctx.errln("the bytes quota must be greater than or equal to zero");
            return Ok(());
        }
        quota.set(key, n);
    }
    quota_result(create_quota(ctx, path, &quota), ctx, path, false)
}

/// Creates a node unless it exists; NodeExists is ignored as SetQuotaCommand ignores it.
fn create_if_missing(zk: &Session, path: &str) -> Result<(), ZkError> {
    match zk.create(path, None, &open_acl_unsafe(), CreateMode::Persistent, None) {
        Err(e) if e.code() != Some(Code::NodeExists) => Err(e),
        _ => Ok(()),
    }
}

/// SetQuotaCommand.createQuota: check the node, refuse when a parent or child has a
/// quota, create the quota nodes, write the limits, warn when they are already exceeded.
fn create_quota(ctx: &Ctx, path: &str, quota: &StatsTrack) -> Result<(), QuotaError> {
    let zk = ctx.zk;
    if zk.exists(path, false)?.is_none() {
        return Err(cli(format!("{path} does not exist.")).into());
    }
    check_if_child_quota(zk, path)?;
    check_if_parent_quota(zk, path)?;
    if zk.exists(QUOTA_ROOT, false)?.is_none() {
        // One try block in Java: if /zookeeper exists, /zookeeper/quota is not created.
        create_if_missing(zk, "/zookeeper")
            .and_then(|_| {
                zk.create(
                    QUOTA_ROOT,
                    None,
                    &open_acl_unsafe(),
                    CreateMode::Persistent,
                    None,
                )
                .map(|_| ())
            })
            .or_else(|e| {
                if e.code() == Some(Code::NodeExists) {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
    }
    let splits = java_split(path, '/');
    let mut quota_path = QUOTA_ROOT.to_owned();
    for s in splits.iter().skip(1) {
        quota_path.push('/');
        quota_path.push_str(s);
        if zk.exists(&quota_path, false)?.is_none() {
            create_if_missing(zk, &quota_path)?;
        }
    }
    let stat_path = format!("{quota_path}/{STAT_NODE}");
    let limit_path = format!("{quota_path}/{LIMIT_NODE}");
    let acl = open_acl_unsafe();
    if zk.exists(&limit_path, false)?.is_none() {
        let q = quota.to_string();
        zk.create(
            &limit_path,
            Some(q.as_bytes()),
            &acl,
            CreateMode::Persistent,
            None,
        )?;
        let mut stats = StatsTrack::default();
        stats.set("count", 0);
        stats.set("bytes", 0);
        let s = stats.to_string();
        zk.create(
            &stat_path,
            Some(s.as_bytes()),
            &acl,
            CreateMode::Persistent,
            None,
        )?;
        let q = quota_data(zk, &limit_path)?;
        let s = quota_data(zk, &stat_path)?;
        check_quota(ctx, &q, &s);
    } else {
        let mut q = quota_data(zk, &limit_path)?;
        for k in ["count", "bytes", "countHardLimit", "byteHardLimit"] {
            if quota.get(k) > -1 {
                q.set(k, quota.get(k));
            }
        }
        let s = quota_data(zk, &stat_path)?;
        check_quota(ctx, &q, &s);
        let text = q.to_string();
        zk.set_data(&limit_path, Some(text.as_bytes()), -1)?;
    }
    Ok(())
}

fn check_quota(ctx: &Ctx, q: &StatsTrack, s: &StatsTrack) {
    let over = |limit: i64, have: i64| limit > -1 && limit < have;
    if over(q.get("count"), s.get("count")) || over(q.get("countHardLimit"), s.get("count")) {
        ctx.outln(&format!(
            "[Warning]: the count quota you create is less than the existing count:{}",
            s.get("count")
        ));
    }
    if over(q.get("bytes"), s.get("bytes")) || over(q.get("byteHardLimit"), s.get("bytes")) {
        ctx.outln(&format!(
            "[Warning]: the bytes quota you create is less than the existing bytes:{}",
            s.get("bytes")
        ));
    }
}

/// Refuses a quota on a node below which a quota already exists. The walk goes over the
/// quota tree of the node; a missing quota tree is fine.
fn check_if_child_quota(zk: &Session, path: &str) -> Result<(), QuotaError> {
    let real = format!("{QUOTA_ROOT}{path}");
    let mut found: Option<String> = None;
    let r = visit_subtree_dfs(zk, &real, false, &mut |qp| {
        // Java prints a stack trace for other errors and carries on; skipping the node
        // does the same without the noise.
        let Ok(children) = zk.get_children(qp, false) else {
            return Ok(());
        };
        if qp != real && children.iter().any(|c| c == LIMIT_NODE) {
            found = Some(qp[QUOTA_ROOT.len()..].to_owned());
            // Stop the walk, as the exception Java throws from the callback does.
            return Err(ZkError::IllegalArgument(String::new()));
        }
        Ok(())
    });
    if let Some(child) = found {
        return Err(cli(format!("{path} has a child {child} which has a quota")).into());
    }
    match r {
        Err(e) if e.code() == Some(Code::NoNode) => Ok(()),
        r => r.map_err(QuotaError::Zk),
    }
}

fn check_if_parent_quota(zk: &Session, path: &str) -> Result<(), QuotaError> {
    let splits = java_split(path, '/');
    let own = format!("{QUOTA_ROOT}{path}");
    let mut quota_path = QUOTA_ROOT.to_owned();
    for s in splits.iter().take(splits.len().saturating_sub(1)).skip(1) {
        quota_path.push('/');
        quota_path.push_str(s);
        let children = match zk.get_children(&quota_path, false) {
            Ok(c) => c,
            Err(e) if e.code() == Some(Code::NoNode) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if children.is_empty() {
            return Ok(());
        }
        if quota_path != own && children.iter().any(|c| c == LIMIT_NODE) {
            return Err(cli(format!(
                "{path} has a parent {} which has a quota",
                &quota_path[QUOTA_ROOT.len()..]
            ))
            .into());
        }
    }
    Ok(())
}

fn delquota(args: &[String], ctx: &Ctx) -> Result<(), CliError> {
    let cl = parse(&DELQUOTA, args)?;
    if cl.args.len() < 2 {
        return Err(cli(usage_str("delquota")));
    }
    let path = &cl.args[1];
    let flags: Vec<&str> = ["n", "b", "N", "B"]
        .into_iter()
        .filter(|f| cl.has(f))
        .collect();
    quota_result(del_quota(ctx, path, &flags), ctx, path, true)
}

/// DelQuotaCommand.delQuota: without flags remove the quota nodes (and their now empty
/// parents); with flags set those limits to -1.
fn del_quota(ctx: &Ctx, path: &str, flags: &[&str]) -> Result<(), QuotaError> {
    let zk = ctx.zk;
    let parent = format!("{QUOTA_ROOT}{path}");
    let limit_path = format!("{parent}/{LIMIT_NODE}");
    if zk.exists(&limit_path, false)?.is_none() {
        ctx.outln(&format!("Quota does not exist for {path}"));
        return Ok(());
    }
    let mut strack = quota_data(zk, &limit_path)?;
    if flags.is_empty() {
        for c in zk.get_children(&parent, false)? {
            zk.delete(&format!("{parent}/{c}"), -1)?;
        }
        // Then remove the quota tree's now empty nodes up to /zookeeper/quota.
        let mut p = parent;
        while p != QUOTA_ROOT {
            if !zk.get_children(&p, false)?.is_empty() {
                break;
            }
            zk.delete(&p, -1)?;
            p.truncate(p.rfind('/').unwrap_or(0));
        }
    } else {
        for f in flags {
            let key = match *f {
                "n" => "count",
                "b" => "bytes",
                "N" => "countHardLimit",
                _ => "byteHardLimit",
            };
            strack.set(key, -1);
        }
        let text = strack.to_string();
        zk.set_data(&limit_path, Some(text.as_bytes()), -1)?;
    }
    Ok(())
}
