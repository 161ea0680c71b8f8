//! Host name resolution that works in a statically linked binary: IP literals first, then
//! the hosts file (`/etc/hosts`, read and parsed here), and only then the C library's
//! resolver through std's `ToSocketAddrs`.
//!
//! Why: the release binary is linked statically against glibc (`make static`), and static
//! glibc's `getaddrinfo` still loads the NSS modules (`libnss_files.so.2`, ...) at run time.
//! On a host whose glibc differs from the build machine's, or that has none of those files,
//! even a name listed in /etc/hosts (`node-1`, the usual way an ensemble names its members)
//! would not resolve. Reading the hosts file ourselves makes the common case independent of
//! NSS; DNS still goes through the C library and works wherever its modules load.
//!
//! This module never caches (the file is small and read only when connecting or binding)
//! and never talks to the network itself. Apache ZooKeeper leaves all of this to the JVM's
//! `InetAddress`, which reads the hosts file through the same system resolver.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;

/// The hosts file consulted by `resolve`.
pub const HOSTS_FILE: &str = "/etc/hosts";
/// The most bytes read from a hosts file; a larger file is read up to this point.
const HOSTS_FILE_BYTES_MAX: u64 = 4 << 20;

/// The socket addresses of `host` (an IP literal, with or without IPv6 brackets, or a name)
/// at `port`: IP literals as they are, then the names listed in /etc/hosts in file order,
/// then whatever the system resolver returns.
pub fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    resolve_with_hosts_file(host, port, Path::new(HOSTS_FILE))
}

/// `resolve`, with the hosts file at `hosts_file` (for tests, or hosts that keep it
/// elsewhere). A missing or unreadable hosts file is skipped, not an error.
pub fn resolve_with_hosts_file(
    host: &str,
    port: u16,
    hosts_file: &Path,
) -> io::Result<Vec<SocketAddr>> {
    resolve_using(host, port, hosts_file, system_resolver)
}

/// The C library's resolver (getaddrinfo, through std): DNS and whatever NSS provides.
fn system_resolver(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}

/// `resolve_with_hosts_file` with the last resort given, so tests never query DNS.
fn resolve_using(
    host: &str,
    port: u16,
    hosts_file: &Path,
    fallback: fn(&str, u16) -> io::Result<Vec<SocketAddr>>,
) -> io::Result<Vec<SocketAddr>> {
    let host = host.trim();
    if host.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the host name is empty",
        ));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if let Some(text) = read_hosts_file(hosts_file) {
        let ips = lookup_hosts(&text, bare);
        if !ips.is_empty() {
            return Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect());
        }
    }
    let found = fallback(bare, port).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot resolve {bare}: not in {} and the system resolver failed: {e}",
                hosts_file.display()
            ),
        )
    })?;
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve {bare}: no addresses"),
        ));
    }
    Ok(found)
}

/// Resolves `host:port` or `[ipv6]:port` as written on command lines
/// (`zk status --server node-1:2181`). The port is required.
pub fn resolve_host_port(s: &str) -> io::Result<Vec<SocketAddr>> {
    resolve_host_port_with_hosts_file(s, Path::new(HOSTS_FILE))
}

/// `resolve_host_port` with the hosts file at `hosts_file`.
pub fn resolve_host_port_with_hosts_file(
    s: &str,
    hosts_file: &Path,
) -> io::Result<Vec<SocketAddr>> {
    let (host, port) = split_host_port(s.trim())?;
    resolve_with_hosts_file(host, port, hosts_file)
}

/// Splits `host:port` or `[v6]:port`; the host keeps no brackets.
fn split_host_port(s: &str) -> io::Result<(&str, u16)> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} is not host:port ({why})"),
        )
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("no closing ']'"))?;
        let port = after.strip_prefix(':').ok_or_else(|| bad("no port"))?;
        (host, port)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        if host.contains(':') {
            return Err(bad("an IPv6 address needs brackets: [addr]:port"));
        }
        (host, port)
    };
    let port = port.parse::<u16>().map_err(|_| bad("bad port"))?;
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host, port))
}

/// The hosts file's text, or None when it cannot be read. Bytes that are not UTF-8 are
/// replaced; they cannot be part of a host name anyway.
fn read_hosts_file(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(HOSTS_FILE_BYTES_MAX)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The addresses hosts(5) text gives `name`, in file order and without duplicates. Each line
/// is `address canonical_name [aliases...]`, `#` starts a comment, names compare without
/// regard to case, and one trailing dot on the name asked for is ignored. Lines whose
/// address does not parse (including IPv6 addresses with a `%zone`) are skipped.
pub fn lookup_hosts(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut found: Vec<IpAddr> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_ascii_whitespace();
        let Some(addr) = fields.next() else { continue };
        let Ok(ip) = addr.parse::<IpAddr>() else {
            continue;
        };
        if fields.any(|n| n.strip_suffix('.').unwrap_or(n).eq_ignore_ascii_case(name))
            && !found.contains(&ip)
        {
            found.push(ip);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::path::PathBuf;

    /// A hosts file in a fresh temp directory, unique to this test.
    fn hosts_file(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("zk-resolve-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        std::fs::write(&path, text).unwrap();
        path
    }

    const HOSTS: &str = "\
# The seeds' three-node ensemble.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
10.0.0.1   node-1 node-1.zk.example   # first member
10.0.0.2   node-2
10.0.0.3\tnode-3 zk-three
fd00::3    node-3
not-an-ip  node-4
fe80::1%eth0 node-5
#10.0.0.9  node-9
";

    /// A system resolver that knows one name and never touches the network.
    fn fake_system(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        match host {
            "dns-only.example" => Ok(vec![SocketAddr::new([192, 0, 2, 99].into(), port)]),
            "empty.example" => Ok(Vec::new()),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "fake: unknown")),
        }
    }

    /// `resolve_with_hosts_file` with the fake system resolver.
    fn resolve_fake(host: &str, port: u16, hosts: &Path) -> io::Result<Vec<SocketAddr>> {
        resolve_using(host, port, hosts, fake_system)
    }

    fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
    }

    #[test]
    fn names_come_from_the_hosts_file() {
        let f = hosts_file("names", HOSTS);
        assert_eq!(
            resolve_fake("node-1", 2888, &f).unwrap(),
            vec![v4(10, 0, 0, 1, 2888)]
        );
        // Aliases, case and one trailing dot.
        assert_eq!(
            resolve_fake("NODE-1.zk.example.", 3888, &f).unwrap(),
            vec![v4(10, 0, 0, 1, 3888)]
        );
        assert_eq!(
            resolve_fake("zk-three", 2181, &f).unwrap(),
            vec![v4(10, 0, 0, 3, 2181)]
        );
        // Every line that names the host, in file order.
        assert_eq!(
            resolve_fake("node-3", 2181, &f).unwrap(),
            vec![
                v4(10, 0, 0, 3, 2181),
                SocketAddr::new("fd00::3".parse().unwrap(), 2181)
            ]
        );
    }

    #[test]
    fn comments_bad_addresses_and_partial_names_do_not_match() {
        assert!(lookup_hosts(HOSTS, "node-9").is_empty(), "commented out");
        assert!(
            lookup_hosts(HOSTS, "node-4").is_empty(),
            "address is not an IP"
        );
        assert!(
            lookup_hosts(HOSTS, "node-5").is_empty(),
            "zoned IPv6 is skipped"
        );
        assert!(lookup_hosts(HOSTS, "node").is_empty(), "no prefix matches");
        assert!(
            lookup_hosts(HOSTS, "first").is_empty(),
            "comment words are not names"
        );
        assert!(
            lookup_hosts(HOSTS, "10.0.0.1").is_empty(),
            "an address is not a name"
        );
    }

    #[test]
    fn ip_literals_skip_the_hosts_file() {
        let f = Path::new("/nonexistent/hosts");
        assert_eq!(
            resolve_fake("192.0.2.7", 2181, f).unwrap(),
            vec![v4(192, 0, 2, 7, 2181)]
        );
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 2181);
        assert_eq!(resolve_fake("::1", 2181, f).unwrap(), vec![v6]);
        assert_eq!(resolve_fake("[::1]", 2181, f).unwrap(), vec![v6]);
    }

    #[test]
    fn the_hosts_file_wins_over_the_system_resolver() {
        // The fake system resolver knows dns-only.example too; the file's answer is taken.
        let f = hosts_file("override", "192.0.2.55 dns-only.example\n");
        assert_eq!(
            resolve_fake("dns-only.example", 1, &f).unwrap(),
            vec![v4(192, 0, 2, 55, 1)]
        );
    }

    #[test]
    fn names_not_in_the_file_go_to_the_system_resolver() {
        let f = hosts_file("unknown", HOSTS);
        assert_eq!(
            resolve_fake("dns-only.example", 2181, &f).unwrap(),
            vec![v4(192, 0, 2, 99, 2181)]
        );
        let e = resolve_fake("no-such-host.invalid", 2181, &f).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("no-such-host.invalid"), "{e}");
        let e = resolve_fake("empty.example", 2181, &f).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert!(resolve_fake("  ", 2181, &f).is_err());
    }

    #[test]
    fn a_missing_hosts_file_is_not_an_error() {
        let f = Path::new("/nonexistent/hosts");
        assert_eq!(
            resolve_fake("127.0.0.1", 9, f).unwrap(),
            vec![v4(127, 0, 0, 1, 9)]
        );
        assert!(resolve_fake("no-such-host.invalid", 9, f).is_err());
    }

    #[test]
    fn host_port_forms() {
        let f = hosts_file("hostport", HOSTS);
        let r = |s: &str| resolve_host_port_with_hosts_file(s, &f);
        assert_eq!(r("node-2:2181").unwrap(), vec![v4(10, 0, 0, 2, 2181)]);
        assert_eq!(r(" 10.1.2.3:7 ").unwrap(), vec![v4(10, 1, 2, 3, 7)]);
        assert_eq!(
            r("[fd00::3]:2181").unwrap(),
            vec![SocketAddr::new("fd00::3".parse().unwrap(), 2181)]
        );
        for bad in [
            "node-1",
            "node-1:",
            ":2181",
            "node-1:99999",
            "fd00::3:2181",
            "[::1",
        ] {
            let e = r(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
    }
}
