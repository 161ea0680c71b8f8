//! ACL checks and validation, as ZooKeeper's ZooKeeperServer.checkACL and
//! PrepRequestProcessor.fixupACL do them, for the schemes world, auth, digest and ip, plus the
//! super user. Pure functions over the ACL list and the caller's identities.

use crate::proto::consts::perms;
use crate::proto::{Acl, Code, Id};
use std::net::IpAddr;

/// Whether identities `ids` may do `perm` on a node with `acl` (ZooKeeperServer.checkACL).
pub fn check(acl: &[Acl], perm: i32, ids: &[Id], skip_acl: bool) -> Result<(), Code> {
    if skip_acl || acl.is_empty() {
        return Ok(());
    }
    if ids.iter().any(|i| i.scheme == "super") {
        return Ok(());
    }
    for a in acl {
        if a.perms & perm == 0 {
            continue;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return Ok(());
        }
        for i in ids {
            if i.scheme == a.id.scheme && matches(&a.id.scheme, &i.id, &a.id.id) {
                return Ok(());
            }
        }
    }
    Err(Code::NoAuth)
}

/// A provider's `matches(authId, aclId)`.
fn matches(scheme: &str, auth_id: &str, acl_id: &str) -> bool {
    match scheme {
        "digest" => auth_id == acl_id,
        "ip" => ip_matches(auth_id, acl_id),
        _ => false,
    }
}

/// Parses `addr[/bits]`; `None` if the address does not parse or the bits are out of range.
fn parse_ip_spec(spec: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match spec.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (spec, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let len = match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let bits = match bits {
        None => len,
        Some(b) => b.parse::<u32>().ok()?,
    };
    if bits > len {
        return None;
    }
    Some((ip, bits))
}

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn ip_matches(client: &str, acl_id: &str) -> bool {
    let Some((net, bits)) = parse_ip_spec(acl_id) else {
        return false;
    };
    let Ok(client) = client.parse::<IpAddr>() else {
        return false;
    };
    let (a, b) = (ip_bytes(&net), ip_bytes(&client));
    if a.len() != b.len() {
        return false;
    }
    let mut left = bits;
    for i in 0..a.len() {
        let m: u8 = if left >= 8 {
            0xff
        } else {
            (0xffu16 << (8 - left)) as u8
        };
        if a[i] & m != b[i] & m {
            return false;
        }
        left = left.saturating_sub(8);
    }
    true
}

/// Whether an ACL id is valid for its scheme (the provider's `isValid`).
fn id_valid(id: &Id) -> bool {
    match id.scheme.as_str() {
        "digest" => {
            // Java's String.split(":") drops trailing empty parts.
            let mut parts: Vec<&str> = id.id.split(':').collect();
            while parts.last() == Some(&"") {
                parts.pop();
            }
            parts.len() == 2
        }
        "ip" => parse_ip_spec(&id.id).is_some(),
        _ => false,
    }
}

/// Whether a connection identity of this scheme counts as authenticated for `auth` expansion.
fn authenticated_scheme(scheme: &str) -> bool {
    matches!(scheme, "digest" | "sasl" | "x509")
}

/// Validates an ACL list from a create or setACL and expands `auth` entries to the caller's
/// authenticated identities (PrepRequestProcessor.fixupACL). Errors are InvalidACL.
pub fn fixup(acl: Option<&[Acl]>, ids: &[Id]) -> Result<Vec<Acl>, Code> {
    let acl = acl.ok_or(Code::InvalidAcl)?;
    let mut uniq: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    if uniq.is_empty() {
        return Err(Code::InvalidAcl);
    }
    let mut out = Vec::with_capacity(uniq.len());
    for a in uniq {
        if a.id.scheme == "world" && a.id.id == "anyone" {
            out.push(a.clone());
        } else if a.id.scheme == "auth" {
            let mut any = false;
            for i in ids {
                if authenticated_scheme(&i.scheme) {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        id: i.clone(),
                    });
                }
            }
            if !any {
                return Err(Code::InvalidAcl);
            }
        } else if id_valid(&a.id) {
            out.push(a.clone());
        } else {
            return Err(Code::InvalidAcl);
        }
    }
    Ok(out)
}

/// getACL without ADMIN: digest ids are shown as `user:x`.
pub fn redact(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl::new(a.perms, "digest", &format!("{user}:x"))
            } else {
                a.clone()
            }
        })
        .collect()
}

/// `user:` + base64(sha1("user:password")), the digest scheme's identity for `user:password`.
pub fn digest_id(user_password: &str) -> String {
    use base64::Engine;
    let user = user_password.split(':').next().unwrap_or("");
    let hash = sha1_smol::Sha1::from(user_password.as_bytes())
        .digest()
        .bytes();
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// zkCli's permission string, in its `cdrwa` order.
pub fn perm_string(p: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (perms::CREATE, 'c'),
        (perms::DELETE, 'd'),
        (perms::READ, 'r'),
        (perms::WRITE, 'w'),
        (perms::ADMIN, 'a'),
    ] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_zookeeper() {
        assert_eq!(
            digest_id("user1:12345"),
            "user1:+owfoSBn/am19roBPzR1/MfCblE="
        );
        assert_eq!(
            digest_id("super:admin"),
            "super:xQJmxLMiHGwaqBvst5y6rkB6HQs="
        );
        assert_eq!(
            digest_id("zookeeper:admin"),
            "zookeeper:qW/HnTfCSoQpB5G8LgkwT3IbiFc="
        );
    }

    #[test]
    fn ip_cidr() {
        assert!(ip_matches("10.1.2.3", "10.1.0.0/16"));
        assert!(!ip_matches("10.2.2.3", "10.1.0.0/16"));
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(!ip_matches("::1", "127.0.0.1"));
        assert!(ip_matches("10.1.2.3", "0.0.0.0/0"));
        assert!(!id_valid(&Id::new("ip", "10.0.0.0/33")));
    }

    #[test]
    fn fixup_rules() {
        let ids = vec![Id::new("ip", "127.0.0.1")];
        assert_eq!(
            fixup(Some(&[Acl::new(31, "auth", "")]), &ids),
            Err(Code::InvalidAcl)
        );
        let ids2 = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h")];
        assert_eq!(
            fixup(Some(&[Acl::new(31, "auth", "")]), &ids2).unwrap(),
            vec![Acl::new(31, "digest", "u:h")]
        );
        assert_eq!(
            fixup(Some(&[Acl::new(31, "world", "someone")]), &ids),
            Err(Code::InvalidAcl)
        );
        assert_eq!(fixup(Some(&[]), &ids), Err(Code::InvalidAcl));
        assert_eq!(fixup(None, &ids), Err(Code::InvalidAcl));
        assert!(fixup(Some(&[Acl::new(31, "digest", "a:")]), &ids).is_err());
    }

    #[test]
    fn check_rules() {
        let acl = vec![Acl::new(perms::READ, "digest", "u:h")];
        assert!(check(&acl, perms::READ, &[Id::new("digest", "u:h")], false).is_ok());
        assert_eq!(
            check(&acl, perms::WRITE, &[Id::new("digest", "u:h")], false),
            Err(Code::NoAuth)
        );
        assert!(check(&acl, perms::WRITE, &[Id::new("super", "")], false).is_ok());
        assert!(check(&[], perms::WRITE, &[], false).is_ok());
    }

    #[test]
    fn perm_strings() {
        assert_eq!(perm_string(31), "cdrwa");
        assert_eq!(perm_string(perms::READ | perms::ADMIN), "ra");
    }
}
