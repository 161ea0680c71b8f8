"""`zk status` against live and dead servers.

* One server: `zk status --config zoo.cfg` prints what Apache's own `zkServer.sh status
  zoo.cfg` prints (stdout and exit code compared side by side, against the target server
  and against a dead port), and `--server host:port` the same two lines.
* An ensemble config (server.N lines with client ports): ensembles are not implemented
  yet, so the rows are independent standalone servers plus a dead address; every row is
  checked, mntr-less servers get their note, and the exit code is 1 while a server is down
  and 0 once all answer. `--json` gives the same rows as one JSON document.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path


from conftest import ZK_BIN, free_port

ZKSERVER_SH = "/usr/share/zookeeper/bin/zkServer.sh"


def zk_status(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ZK_BIN, "status", *args], capture_output=True, text=True, timeout=60)


def zkserver_sh_status(cfg: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ZKSERVER_SH, "status", str(cfg)], capture_output=True, text=True, timeout=120)


def dead_config(tmp_path: Path) -> Path:
    data = tmp_path / "dead-data"
    data.mkdir(exist_ok=True)
    cfg = tmp_path / "dead.cfg"
    cfg.write_text(f"dataDir={data}\nclientPort={free_port()}\ntickTime=2000\n")
    return cfg


def test_standalone_matches_zkserver_sh(zk_server):
    ours = zk_status("--config", str(zk_server.cfg_path))
    assert ours.returncode == 0, ours
    assert ours.stdout == (f"Client port found: {zk_server.port}. Client address: localhost. "
                           f"Client SSL: false.\nMode: standalone\n")
    ref = zkserver_sh_status(zk_server.cfg_path)
    assert (ours.stdout, ours.returncode) == (ref.stdout, ref.returncode), ref.stderr


def test_server_flag(zk_server):
    r = zk_status("--server", zk_server.address)
    assert r.returncode == 0, r
    assert r.stdout == (f"Client port found: {zk_server.port}. Client address: 127.0.0.1. "
                        f"Client SSL: false.\nMode: standalone\n")


def test_dead_server_matches_zkserver_sh(tmp_path):
    cfg = dead_config(tmp_path)
    ours = zk_status("--config", str(cfg))
    assert ours.returncode == 1
    assert ours.stdout.endswith("Error contacting service. It is probably not running.\n")
    ref = zkserver_sh_status(cfg)
    assert (ours.stdout, ours.returncode) == (ref.stdout, ref.returncode), ref.stderr
    r = zk_status("--server", f"127.0.0.1:{free_port()}")
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == "Error contacting service. It is probably not running."


def ensemble_config(tmp_path: Path, addresses: list[str]) -> Path:
    data = tmp_path / "ens-data"
    data.mkdir(exist_ok=True)
    lines = [f"dataDir={data}", "tickTime=2000", "initLimit=5", "syncLimit=2"]
    for i, a in enumerate(addresses, start=1):
        lines.append(f"server.{i}=127.0.0.1:{free_port()}:{free_port()};{a}")
    cfg = tmp_path / "ensemble.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    header = re.split(r"\s{2,}", lines[0])
    assert header == ["ID", "ADDRESS", "MODE", "ZXID", "LAG", "CONNECTIONS", "OUTSTANDING",
                      "LATENCY AVG/MAX", "ZNODES", "WATCHES", "UPTIME"], lines[0]
    out = {}
    for ln in lines[1:]:
        if not re.match(r"^\d+\s", ln):
            break
        cells = ln.split()
        out[cells[0]] = cells
    return out


def test_ensemble_rows(server_factory, tmp_path):
    full = server_factory(name="full")
    srvr_only = server_factory(name="srvr_only", extra_cfg={"4lw.commands.whitelist": "srvr"})
    dead = f"127.0.0.1:{free_port()}"
    subprocess.run([ZK_BIN, "cli", "-server", full.address, "create", "/st", "x"], capture_output=True, timeout=60)
    cfg = ensemble_config(tmp_path, [full.address, srvr_only.address, dead])
    r = zk_status("--config", str(cfg))
    assert r.returncode == 1, r
    got = rows(r.stdout)
    assert set(got) == {"1", "2", "3"}, r.stdout
    one, two, three = got["1"], got["2"], got["3"]
    assert one[1:3] == [full.address, "standalone"], one
    assert re.fullmatch(r"0x[0-9a-f]+", one[3]) and int(one[3], 16) > 0
    assert one[4] == "-"  # no leader among standalone servers
    assert re.fullmatch(r"\d+(\.\d+)?/\d+", one[7]), one
    assert one[8] == "6"  # the 5 nodes of a fresh tree and /st
    assert one[9].isdigit() and re.fullmatch(r"\d+[dhms]\d*[hms]?", one[10]), one
    assert two[1:3] == [srvr_only.address, "standalone"], two
    assert two[9] == "-" and two[10] == "-", two  # mntr refused
    assert three[1:3] == [dead, "down"] and set(three[3:]) == {"-"}, three
    assert f"server 2 ({srvr_only.address}): mntr is not in 4lw.commands.whitelist" in r.stdout
    assert f"server 3 ({dead}): Error contacting service. It is probably not running." in r.stdout

    j = zk_status("--config", str(cfg), "--json")
    assert j.returncode == 1
    doc = json.loads(j.stdout)
    assert [d["mode"] for d in doc] == ["standalone", "standalone", "down"]
    assert doc[0]["znodes"] == 6 and doc[1]["watches"] is None and doc[2]["error"]

    # all up: exit 0
    cfg_up = ensemble_config(tmp_path, [full.address, srvr_only.address])
    r = zk_status("--config", str(cfg_up))
    assert r.returncode == 0, r
    assert len(rows(r.stdout)) == 2
    r = zk_status("--server", f"{full.address},{srvr_only.address}")
    assert r.returncode == 0 and len(rows(r.stdout)) == 2, r


def test_all_down(tmp_path):
    cfg = ensemble_config(tmp_path, [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"])
    r = zk_status("--config", str(cfg))
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == "Error contacting service. It is probably not running."


def test_bad_config_is_an_error(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("tickTime=nope\n")
    r = zk_status("--config", str(cfg))
    assert r.returncode != 0
    assert r.stderr.startswith("zk: error: "), r.stderr
