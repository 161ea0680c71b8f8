//! `zk server`'s command line (issue 2): a bad zoo.cfg names the line and the key and exits
//! non-zero without starting; command-line flags override the file.

mod common;

use common::{free_port, spawn_server};
use std::process::Command;

#[test]
fn bad_config_names_line_and_key_and_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("zk-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort=abc\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zk"))
        .args(["server", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("zoo.cfg:3") && err.contains("clientPort") && err.contains("abc"),
        "the error must name the file, line and key: {err}"
    );
    assert!(
        !dir.join("data").exists(),
        "nothing may be created for a bad config"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flags_override_the_file() {
    let dir = std::env::temp_dir().join(format!("zk-override-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (file_port, flag_port) = (free_port(), free_port());
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={file_port}\nclientPortAddress=127.0.0.1\n",
            dir.join("file-data").display()
        ),
    )
    .unwrap();
    // The flags come after --config and win over the file's clientPort and dataDir.
    let mut child = Command::new(env!("CARGO_BIN_EXE_zk"))
        .args(["server", "--config"])
        .arg(&cfg)
        .args(["--port", &flag_port.to_string(), "--data-dir"])
        .arg(dir.join("flag-data"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{flag_port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while zk::client::four_letter_word(&addr, "srvr", std::time::Duration::from_secs(1))
        .map(|t| !t.contains("Mode:"))
        .unwrap_or(true)
    {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not listen on the --port given");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err(),
        "the file's clientPort must not be used when --port is given"
    );
    assert!(dir.join("flag-data/version-2").exists());
    assert!(!dir.join("file-data").exists());
    child.kill().unwrap();
    child.wait().unwrap();
    // And the file alone is honoured.
    let mut child = spawn_server(&cfg, file_port, None);
    assert!(dir.join("file-data/version-2").exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
