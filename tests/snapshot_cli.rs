//! `zk snapshot` end to end (issue 3): against a real server's data directory, `save` asks
//! the running server for a snapshot and waits for the file; `ls`, `dump`, `log` and
//! `verify` read it; `restore` installs an older snapshot into the stopped server's
//! directory (moving newer files aside), refuses while a server holds the directory, and the
//! restarted server serves the restored tree. `verify` fails on a flipped byte.

mod common;

use common::{assert_verifies, free_port, spawn_server};
use std::path::Path;
use std::process::{Command, Output};
use zk::client::Client;
use zk::proto::open_acl_unsafe;

fn zk(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zk"))
        .arg("snapshot")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run zk snapshot")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn save_ls_dump_log_restore_and_verify() {
    let dir = std::env::temp_dir().join(format!("zk-snapcli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\npreAllocSize=256\n",
            data.display()
        ),
    )
    .unwrap();
    let mut server = spawn_server(&cfg, port, None);
    let mut c = Client::connect(&addr, 30_000).unwrap();
    c.create("/before", Some(b"old"), &open_acl_unsafe(), 0)
        .unwrap();

    // save: a snapshot of the running server, waited for.
    let o = zk(&["save", "--server", &addr], &data);
    assert!(o.status.success(), "{}", text(&o));
    let saved = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .to_owned();
    assert!(saved.contains("snapshot."), "{saved}");
    let first = std::path::PathBuf::from(&saved);
    assert!(first.exists());

    // A later change the restore will take back.
    c.create("/after", Some(b"new"), &open_acl_unsafe(), 0)
        .unwrap();
    c.set_data("/before", Some(b"changed"), -1).unwrap();

    // restore refuses while the server holds the directory.
    let o = zk(&["restore", &saved], &data);
    assert!(
        !o.status.success(),
        "restore into a live directory: {}",
        text(&o)
    );

    // ls, dump and log read the directory the server is using.
    let o = zk(&["ls"], &data);
    assert!(o.status.success(), "{}", text(&o));
    let ls = text(&o);
    assert!(ls.contains("snapshot.") && ls.contains("log."), "{ls}");
    let o = zk(&["dump"], &data);
    let dump = text(&o);
    assert!(o.status.success(), "{dump}");
    assert!(
        dump.contains("/after") && dump.contains("changed"),
        "{dump}"
    );
    let o = zk(&["dump", "--json"], &data);
    assert!(o.status.success());
    let json = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        json.lines().all(|l| l.starts_with('{') && l.ends_with('}')),
        "{json}"
    );
    assert!(json.contains("\"/after\""), "{json}");
    let o = zk(&["log"], &data);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert!(
        log.contains("/after") && log.to_lowercase().contains("create"),
        "{log}"
    );

    drop(c);
    server.kill().unwrap();
    server.wait().unwrap();
    assert_verifies(&data);

    // restore the first snapshot into the stopped directory.
    let o = zk(&["restore", &saved], &data);
    assert!(o.status.success(), "{}", text(&o));
    let backups = std::fs::read_dir(&data)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("restore-backup-")
        })
        .count();
    assert_eq!(backups, 1, "newer files are moved aside, not deleted");
    assert_verifies(&data);
    let mut server = spawn_server(&cfg, port, None);
    let mut c = Client::connect(&addr, 30_000).unwrap();
    assert!(
        c.exists("/after", false).unwrap().is_none(),
        "restore kept a later node"
    );
    assert_eq!(
        c.get_data("/before", false).unwrap().0.as_deref(),
        Some(&b"old"[..])
    );
    drop(c);
    server.kill().unwrap();
    server.wait().unwrap();

    // verify notices a flipped byte in the snapshot.
    let snap = std::fs::read_dir(data.join("version-2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snapshot.")
        })
        .unwrap();
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&snap, &bytes).unwrap();
    let o = zk(&["verify"], &data);
    assert!(
        !o.status.success(),
        "verify missed a flipped byte: {}",
        text(&o)
    );
    assert!(text(&o).contains(&snap.file_name().unwrap().to_string_lossy().to_string()));
    let _ = std::fs::remove_dir_all(&dir);
}
