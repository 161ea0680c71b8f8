"""`zk cli` side by side with Apache's zkCli.sh (3.8.0, Debian): the same long sessions and
one-shot commands, run through both clients, must give the same stdout, the same stderr
(after masking) and the same exit codes.

Each client gets its own freshly started server of the same kind (the target: our ``zk``
server, or Apache's with ZK_TARGET=apache), so both see an identical tree from the first
command on; running both through one server would have the second run see the first
one's nodes. The scripts are those of test_zkcli_compare.py (long piped sessions, the
extended-types session, the one-shot list) plus CLI_EXTRA and CHROOT below, which
exercise the shell itself: tokenizing and quoting, history and redo, blank lines,
printwatches, option parsing corners, a chroot, and the commands zkCli does not survive.

Both clients run exactly as test_zkcli_compare runs zkCli.sh (``-waitforconnection
-timeout 30000 -server 127.0.0.1:PORT``, stdin a pipe, so no prompt), and the outputs go
through the same ``mask`` (zxids, dates, session ids, ports, the CLI version, JVM log
noise) and the same marker commands. One more masking rule here: the stack frames after
``Exception in thread "main" ...`` are dropped, since `zk cli` prints only the exception
line where zkCli's JVM dies with a stack trace (same first line, same exit code 1).

Raw and masked outputs are kept in the pytest tmp dir (``.../cli_compare0/outputs``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ZK_BIN, start_target
from test_zkcli_compare import (
    ALICE,
    BOB,
    ONE_SHOT,
    SESSION_EXTENDED,
    SESSION_MAIN,
    SESSION_SECOND,
    CliResult,
    ZKCLI,
    ZKCLI_ONESHOT_TIMEOUT,
    ZKCLI_TIMEOUT,
    _text,
    build_script,
    compare as zkcli_compare,
    mask,
    zkcli_env,
)

# The shell's own corners. Ends with a command zkCli cannot survive (an uncaught
# NumberFormatException), so the exit code is 1 and nothing after it runs.
CLI_EXTRA = [
    "create /x",
    "create /x/a 'one two'",
    'create /x/b "three  four"',
    "create /x/c x'y'z",
    'create /x/d "unterminated',
    "get /x/a",
    "get /x/b",
    "get /x/c",
    "get /x/d",
    "ls /x",
    "   ls    /x   ",
    "ls\t/x",
    "ls -s -w /x",
    ["create /x/w", "sync /"],
    "ls -?",
    "ls -? /x",
    "ls -sR /x",
    "ls -Rs /x",
    "ls -Ws /x",
    "ls -- /x",
    "ls /x watch extra",
    "get -s /x/a watch",
    "stat /x watch",
    ["set /x y", "sync /"],
    "set -v=0 /x/a v",
    "set -v0 /x/a w",
    "get -s /x/a",
    "set -s -v -1 /x/a z",
    "create -t",
    "create -t 5",
    "create -e -t 5 /x/t",
    "delete -v",
    "delete /x/a 0 extra",
    "getAcl -x /x",
    "getAllChildrenNumber -x /x",
    "getEphemerals /x/",
    "stat /x/",
    "deleteall /x/",
    "deleteall /x -b 0",
    "ls /",
    "create /y",
    "create /y/z",
    "delete /y",
    "setquota -n 1 /y",
    "create /y/z2",
    "listquota /y",
    "delquota -n -b /y",
    "delquota -x /y",
    "delquota /y/",
    "listquota /y/",
    "delquota /y",
    "addauth",
    "whoami",
    "sync /x/y/",
    "removewatches",
    "removewatches /",
    "removewatches / -c -d",
    "printwatches on extra",
    "printwatches",
    "printwatches off",
    "printwatches on",
    "config -x",
    "reconfig -remove",
    "reconfig -add",
    "reconfig -members a -file b",
    "reconfig -v -remove 3",
    "version -x",
    "history",
    "redo 0x3",
    "redo 03",
    "redo +2",
    "help me",
    "Ls /",
    ["version", "\t"],
    ["version", "   "],
    "history",
    "delete -v abc /y",
    "ls /",
]

# Under a chroot: paths, created names, watch paths and errors are relative to it.
CHROOT = [
    "ls /",
    "create /n one",
    "create -s /s- x",
    "create -e /e",
    "ls /",
    "get -s /n",
    "getEphemerals",
    "get -w /n",
    ["set /n two", "sync /"],
    "ls -w /",
    ["create /m", "sync /"],
    "addWatch /",
    ["create /m/k", "delete /m/k", "sync /"],
    ["removewatches /", "sync /"],
    "stat /nope",
    "delete /n/x",
    "ls -R /",
    "getAllChildrenNumber /",
    "setAcl /n world:anyone:r",
    "getAcl /n",
    "set /n three",
    "deleteall /m",
    "delete /",
    "printwatches off",
    "quit",
]

# A refused identity (unknown scheme): the server answers AuthFailed and closes; the
# command after addauth fails with AuthFailed, later ones say "Not connected".
AUTHFAIL = [
    "ls /",
    ["addauth foo bar", "ls /", "ls /", "whoami"],
    "history",
    "printwatches off",
    "quit",
]

ONE_SHOT_EXTRA = [
    ["ls", "-R", "/"],
    ["create", "/one", "a b"],
    ["get", "/one"],
    ["get"],
    ["addWatch", "nopath"],
    ["history"],
    ["redo", "0"],
    ["help"],
    ["whoami", "extra"],
]


def cli_env() -> dict:
    env = zkcli_env()
    env.pop("ZK_CLI_HISTORY", None)
    return env


def run_client(kind: str, address: str, args=None, stdin: str | None = None) -> CliResult:
    """One run of zkCli.sh (kind 'zkcli') or `zk cli` (kind 'zk'), invoked alike."""
    base = [ZKCLI] if kind == "zkcli" else [ZK_BIN, "cli"]
    cmd = base + ["-waitforconnection", "-timeout", "30000", "-server", address] + list(args or [])
    timeout = ZKCLI_ONESHOT_TIMEOUT if args else ZKCLI_TIMEOUT
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         encoding="utf-8", errors="backslashreplace", env=cli_env(), start_new_session=True)
    try:
        out, err = p.communicate(stdin if stdin is not None else "", timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return CliResult("timeout", _text(out), _text(err) + f"\n<<< {kind} killed after {timeout}s >>>\n")
    return CliResult(p.returncode, out, err)


_FRAME_RE = re.compile(r"^(\tat |\t\.\.\. \d+ more$|Caused by: )")


def cmask(text: str, ports, markers=None) -> str:
    kept = "\n".join(line for line in text.splitlines() if not _FRAME_RE.match(line))
    return mask(kept + ("\n" if text.endswith("\n") else ""), ports, markers)


def compare(ref: CliResult, tgt: CliResult, ports, markers=None, what="") -> list[str]:
    return zkcli_compare(ref, tgt, ports, markers, what, masker=cmask,
                         names=("zkCli.sh", "zk-cli"), roles=("", ""))


def run_side(kind: str, server, ext: bool) -> dict:
    subst = {"port": server.port, "alice": ALICE, "bob": BOB}
    res = {}
    if ext:
        res["extended"] = run_client(kind, server.address, stdin=build_script(SESSION_EXTENDED, subst).text)
        return res
    for name, items in (("main", SESSION_MAIN), ("second", SESSION_SECOND), ("extra", CLI_EXTRA),
                        ("authfail", AUTHFAIL)):
        res[name] = run_client(kind, server.address, stdin=build_script(items, subst).text)
    # the chroot must exist before a session can use it
    run_client(kind, server.address, args=["create", "/app"])
    res["chroot"] = run_client(kind, server.address + "/app", stdin=build_script(CHROOT, subst).text)
    res["one_shot"] = [run_client(kind, server.address, args=a) for a in ONE_SHOT + ONE_SHOT_EXTRA]
    return res


def markers_for(name: str) -> dict:
    items = {"main": SESSION_MAIN, "second": SESSION_SECOND, "extra": CLI_EXTRA,
             "chroot": CHROOT, "extended": SESSION_EXTENDED, "authfail": AUTHFAIL}[name]
    return build_script(items, {"port": 0, "alice": ALICE, "bob": BOB}).markers


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_compare")
    ext_cfg = {"extendedTypesEnabled": "true", "reconfigEnabled": "true"}
    servers = []
    try:
        with ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(start_target, base, "for_zkcli"),
                    ex.submit(start_target, base, "for_zk_cli"),
                    ex.submit(start_target, base, "for_zkcli_ext", ext_cfg),
                    ex.submit(start_target, base, "for_zk_cli_ext", ext_cfg)]
            errors = []
            for f in futs:
                try:
                    servers.append(f.result())
                except BaseException as e:  # noqa: BLE001
                    errors.append(e)
            if errors:
                raise errors[0]
        a, b, a_ext, b_ext = servers
        with ThreadPoolExecutor(4) as ex:
            jobs = {"ref": ex.submit(run_side, "zkcli", a, False),
                    "tgt": ex.submit(run_side, "zk", b, False),
                    "ref_ext": ex.submit(run_side, "zkcli", a_ext, True),
                    "tgt_ext": ex.submit(run_side, "zk", b_ext, True)}
            out = {k: v.result() for k, v in jobs.items()}
        out["ports"] = [s.port for s in servers]
        out["dir"] = base / "outputs"
        _dump(out)
        yield out
    finally:
        for s in servers:
            s.stop()


def _dump(out):
    d = out["dir"]
    d.mkdir(exist_ok=True)
    for side in ("ref", "tgt", "ref_ext", "tgt_ext"):
        for session, res in out[side].items():
            items = res if isinstance(res, list) else [res]
            for i, r in enumerate(items):
                stem = f"{side}.{session}" + (f".{i:02d}" if isinstance(res, list) else "")
                markers = None if isinstance(res, list) else markers_for(session)
                for stream in ("stdout", "stderr"):
                    raw = getattr(r, stream)
                    (d / f"{stem}.{stream}").write_text(raw)
                    (d / f"{stem}.{stream}.masked").write_text(cmask(raw, out["ports"], markers))
                (d / f"{stem}.rc").write_text(f"{r.rc}\n")


def _settle_auth_race(r):
    """zkCli.sh races with itself right after a refused addauth: the next command fails with
    "KeeperErrorCode = AuthFailed for /" when it is sent before the AuthFailed state lands,
    and prints "Not connected" when it is sent after. Both outcomes are zkCli's own, so the
    authfail session compares them as one: the AuthFailed line is dropped and a run of
    "Not connected" lines counts as one. The AuthFailed event itself is still compared."""
    err = "".join(l for l in r.stderr.splitlines(keepends=True)
                  if l.strip() != "KeeperErrorCode = AuthFailed for /")
    out, prev = [], None
    for l in r.stdout.splitlines(keepends=True):
        if not (l.strip() == "Not connected" and prev == "Not connected"):
            out.append(l)
        prev = l.strip()
    return type(r)(rc=r.rc, stdout="".join(out), stderr=err)


def _check(results, session: str, ext: bool = False):
    ref = results["ref_ext" if ext else "ref"][session]
    tgt = results["tgt_ext" if ext else "tgt"][session]
    if session == "authfail":
        ref, tgt = _settle_auth_race(ref), _settle_auth_race(tgt)
    problems = compare(ref, tgt, results["ports"], markers_for(session), what=f"session '{session}'")
    assert not problems, "\n".join(problems) + f"\n(raw outputs in {results['dir']})"


def test_reference_ran(results):
    """Guard against a vacuous comparison: zkCli.sh really ran every session."""
    ref = results["ref"]
    assert "Welcome to ZooKeeper!" in ref["main"].stdout
    assert "Command not found: Command not found frobnicate" in ref["main"].stderr
    assert ref["main"].rc == 0 and ref["second"].rc == 1
    assert 'Exception in thread "main" java.lang.NumberFormatException' in ref["extra"].stderr
    assert ref["extra"].rc == 1
    assert "Created /s-0000000001" in ref["chroot"].stderr
    assert "state:AuthFailed" in ref["authfail"].stdout
    assert "Not connected" in ref["authfail"].stdout
    assert ref["one_shot"][0].rc == 0


def test_main_session(results):
    _check(results, "main")


def test_second_session(results):
    _check(results, "second")


def test_shell_corners_session(results):
    _check(results, "extra")


def test_refused_identity_session(results):
    _check(results, "authfail")


def test_chroot_session(results):
    _check(results, "chroot")


def test_extended_types_session(results):
    _check(results, "extended", ext=True)


def test_one_shot_commands(results):
    problems = []
    for args, ref, tgt in zip(ONE_SHOT + ONE_SHOT_EXTRA, results["ref"]["one_shot"], results["tgt"]["one_shot"]):
        problems += compare(ref, tgt, results["ports"], what=f"one-shot `{' '.join(args)}`")
    assert not problems, "\n".join(problems) + f"\n(raw outputs in {results['dir']})"


def test_one_shot_exit_codes(results):
    codes = {" ".join(a): r.rc for a, r in zip(ONE_SHOT + ONE_SHOT_EXTRA, results["tgt"]["one_shot"])}
    assert codes["ls /"] == 0
    assert codes["get /nope"] == 1
    assert codes["frobnicate"] == 127
    assert codes["set -v abc /os x"] == 1


JSON_SESSION = [
    "create /j hello",
    "create -e /j/e",
    "ls -s /j",
    "ls -R /j",
    "get /j",
    "stat /j",
    "getAcl /j",
    "getAllChildrenNumber /j",
    "getEphemerals /j",
    "whoami",
    "setquota -n 5 /j",
    "listquota /j",
    "config",
    "sync /",
    "get /nope",
    "get -w /j",
    "set /j x",
    "sync /",
]


def test_json_output(zk_server):
    """`--json`: every line of stdout is one JSON document, in command order; the start-up
    lines move to stderr; failures of read commands are documents too."""
    r = subprocess.run([ZK_BIN, "cli", "--json", "-server", zk_server.address], input="\n".join(JSON_SESSION) + "\n",
                       capture_output=True, text=True, timeout=ZKCLI_TIMEOUT, env=cli_env())
    assert r.returncode == 0, r
    assert r.stderr.startswith(f"Connecting to {zk_server.address}\nWelcome to ZooKeeper!\n"), r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert docs[0] == {"event": {"state": "SyncConnected", "type": "None", "path": None}}
    ls, lsr, get, stat, acl, count, eph, who, quota, config, sync, err, get_w, event, sync2 = docs[1:]
    assert ls["path"] == "/j" and ls["children"] == ["e"] and ls["stat"]["numChildren"] == 1
    assert lsr == {"path": "/j", "recursive": True, "paths": ["/j", "/j/e"]}
    assert get["data"] == "hello" and get["dataBase64"] == "aGVsbG8=" and get["stat"]["dataLength"] == 5
    assert re.fullmatch(r"0x[0-9a-f]+", get["stat"]["cZxid"]) and get["stat"]["ephemeralOwner"] == "0x0"
    assert stat["stat"] == get["stat"]
    assert acl["acl"] == [{"scheme": "world", "id": "anyone", "perms": "cdrwa"}]
    assert count == {"path": "/j", "count": 1}
    assert eph == {"prefix": "/j", "ephemerals": ["/j/e"]}
    assert {"scheme": "ip", "user": "127.0.0.1"} in who["ids"]
    assert quota["quota"]["count"] == 5 and quota["stat"] == {"count": 2, "bytes": 5}
    assert config["config"] == "" and config["stat"]["aclVersion"] == -1
    assert sync == {"path": "/", "rc": 0}
    assert err == {"command": "get", "error": "Node does not exist: /nope"}
    assert get_w["data"] == "hello"
    assert event == {"event": {"state": "SyncConnected", "type": "NodeDataChanged", "path": "/j"}}
    assert sync2 == {"path": "/", "rc": 0}
    # the error also goes to stderr in zkCli's words
    assert "Node does not exist: /nope" in r.stderr

    one = subprocess.run([ZK_BIN, "cli", "--json", "-server", zk_server.address, "get", "/nope"],
                         capture_output=True, text=True, timeout=ZKCLI_ONESHOT_TIMEOUT, env=cli_env())
    assert one.returncode == 1
    assert [json.loads(line) for line in one.stdout.splitlines()][-1] == \
        {"command": "get", "error": "Node does not exist: /nope"}
