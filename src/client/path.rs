//! Client-side path rules and connect strings: `validate_path` is Apache's
//! `PathUtils.validatePath` with its exact messages (the Java client checks every path before
//! sending it, and zkCli prints those messages), and `ConnectString` is its
//! `ConnectStringParser` (`host:port,host:port/chroot`) plus the chroot arithmetic of
//! ZooKeeper.java. Pure: no sockets, no name resolution.

use std::fmt;

/// The port a host without one gets, as in ConnectStringParser.
pub const PORT_DEFAULT: u16 = 2181;

/// Checks a znode path the way the Java client does before sending it; the error is
/// PathUtils' message, word for word. Indices count UTF-16 units, as Java's do.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".to_owned());
    }
    let chars: Vec<u16> = path.encode_utf16().collect();
    if chars[0] != u16::from(b'/') {
        return Err("Path must start with / character".to_owned());
    }
    if chars.len() == 1 {
        return Ok(());
    }
    if chars[chars.len() - 1] == u16::from(b'/') {
        return Err("Path must not end with / character".to_owned());
    }
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    let mut reason = None;
    let mut lastc = slash;
    for i in 1..chars.len() {
        let c = chars[i];
        if c == 0 {
            reason = Some(format!("null character not allowed @{i}"));
        } else if c == slash && lastc == slash {
            reason = Some(format!("empty node name specified @{i}"));
        } else if c == dot && lastc == dot {
            if chars[i - 2] == slash && (i + 1 == chars.len() || chars[i + 1] == slash) {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if c == dot {
            if chars[i - 1] == slash && (i + 1 == chars.len() || chars[i + 1] == slash) {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if (c > 0 && c <= 0x1f)
            || (0x7f..=0x9f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || c >= 0xfff0
        {
            reason = Some(format!("invalid character @{i}"));
        }
        if reason.is_some() {
            break;
        }
        lastc = c;
    }
    match reason {
        None => Ok(()),
        Some(r) => Err(format!("Invalid path string \"{path}\" caused by {r}")),
    }
}

/// `validatePath(path, isSequential)`: a sequential create may end in `/` because the
/// server appends the counter.
pub fn validate_create_path(path: &str, sequential: bool) -> Result<(), String> {
    if sequential {
        validate_path(&format!("{path}1"))
    } else {
        validate_path(path)
    }
}

/// A parsed connect string: the servers in the order given and an optional chroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `host:port` strings, IPv6 literals in brackets, ready for `ToSocketAddrs`.
    pub hosts: Vec<String>,
    /// The chroot without a trailing slash; `None` for none (or `/`).
    pub chroot: Option<String>,
}

/// Why a connect string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectStringError(pub String);

impl fmt::Display for ConnectStringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectStringError {}

impl ConnectString {
    /// Parses `host[:port][,host[:port]...][/chroot]`. Empty host entries are skipped as
    /// Java's split does; a string with no host at all is an error.
    pub fn parse(s: &str) -> Result<ConnectString, ConnectStringError> {
        let (hosts_part, chroot) = match s.find('/') {
            None => (s, None),
            Some(off) => {
                let c = &s[off..];
                let chroot = if c.len() == 1 {
                    None
                } else {
                    validate_path(c).map_err(|e| {
                        ConnectStringError(format!("invalid chroot {c:?} in {s:?}: {e}"))
                    })?;
                    Some(c.to_owned())
                };
                (&s[..off], chroot)
            }
        };
        let mut hosts = Vec::new();
        for h in hosts_part
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
        {
            hosts.push(host_port(h).map_err(|e| ConnectStringError(format!("{e} in {s:?}")))?);
        }
        if hosts.is_empty() {
            return Err(ConnectStringError(format!("no server address in {s:?}")));
        }
        Ok(ConnectString { hosts, chroot })
    }

    /// The server path for a client path (ZooKeeper.prependChroot).
    pub fn server_path(&self, client_path: &str) -> String {
        match &self.chroot {
            None => client_path.to_owned(),
            Some(c) if client_path == "/" => c.clone(),
            Some(c) => format!("{c}{client_path}"),
        }
    }

    /// The client path for a path the server sent (ClientCnxn strips the chroot from event
    /// and create paths); a path outside the chroot is returned unchanged.
    pub fn client_path(&self, server_path: &str) -> String {
        match &self.chroot {
            None => server_path.to_owned(),
            Some(c) if server_path == c => "/".to_owned(),
            Some(c) => match server_path.strip_prefix(c.as_str()) {
                Some(rest) if rest.starts_with('/') => rest.to_owned(),
                _ => server_path.to_owned(),
            },
        }
    }
}

/// One `host[:port]` entry as `host:port`; `[v6]:port` and a bare `[v6]` are understood.
fn host_port(h: &str) -> Result<String, String> {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| format!("unterminated IPv6 address {h:?}"))?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("bad server address {h:?}")),
        };
        (format!("[{host}]"), port)
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (h.to_owned(), None),
        }
    };
    let port = match port {
        None => PORT_DEFAULT,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("bad port {p:?} in server address {h:?}"))?,
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_messages_match_path_utils() {
        assert_eq!(validate_path("/"), Ok(()));
        assert_eq!(validate_path("/a/b-c_d.e"), Ok(()));
        assert_eq!(validate_path("/a/..b"), Ok(()));
        assert_eq!(validate_path("").unwrap_err(), "Path length must be > 0");
        assert_eq!(
            validate_path("a").unwrap_err(),
            "Path must start with / character"
        );
        assert_eq!(
            validate_path("/a/").unwrap_err(),
            "Path must not end with / character"
        );
        assert_eq!(
            validate_path("//a").unwrap_err(),
            "Invalid path string \"//a\" caused by empty node name specified @1"
        );
        assert_eq!(
            validate_path("/a//b").unwrap_err(),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            validate_path("/a/./b").unwrap_err(),
            "Invalid path string \"/a/./b\" caused by relative paths not allowed @3"
        );
        assert_eq!(
            validate_path("/a/../b").unwrap_err(),
            "Invalid path string \"/a/../b\" caused by relative paths not allowed @4"
        );
        assert_eq!(
            validate_path("/a/..").unwrap_err(),
            "Invalid path string \"/a/..\" caused by relative paths not allowed @4"
        );
        assert_eq!(
            validate_path("/a\u{1}").unwrap_err(),
            "Invalid path string \"/a\u{1}\" caused by invalid character @2"
        );
        assert_eq!(
            validate_path("/a\0").unwrap_err(),
            "Invalid path string \"/a\0\" caused by null character not allowed @2"
        );
        // A character outside the BMP is a surrogate pair in Java, which PathUtils refuses.
        assert_eq!(
            validate_path("/x\u{1F600}").unwrap_err(),
            "Invalid path string \"/x\u{1F600}\" caused by invalid character @2"
        );
        assert_eq!(validate_path("/héllo€"), Ok(()));
        assert_eq!(validate_create_path("/seq/", true), Ok(()));
        assert!(validate_create_path("/seq/", false).is_err());
    }

    #[test]
    fn connect_strings() {
        let c = ConnectString::parse("127.0.0.1:2181,h2:2182/app/x").unwrap();
        assert_eq!(c.hosts, ["127.0.0.1:2181", "h2:2182"]);
        assert_eq!(c.chroot.as_deref(), Some("/app/x"));
        assert_eq!(c.server_path("/"), "/app/x");
        assert_eq!(c.server_path("/n"), "/app/x/n");
        assert_eq!(c.client_path("/app/x"), "/");
        assert_eq!(c.client_path("/app/x/n"), "/n");
        assert_eq!(c.client_path("/other"), "/other");
        let c = ConnectString::parse("localhost, [::1]:2183 ,,[::2]/").unwrap();
        assert_eq!(c.hosts, ["localhost:2181", "[::1]:2183", "[::2]:2181"]);
        assert_eq!(c.chroot, None);
        assert_eq!(c.server_path("/a"), "/a");
        assert!(ConnectString::parse("h:99999").is_err());
        assert!(ConnectString::parse("h:1/bad/").is_err());
        assert!(ConnectString::parse("/only").is_err());
    }
}
