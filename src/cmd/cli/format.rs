//! How zkCli prints things, reproduced byte for byte: StatPrinter (hex zxids,
//! java.util.Date times in UTC), ZKUtil.getPermString, the jute `toString` of an ACL's Id,
//! quota data (StatsTrack), netty's prettyHexDump (`get -x`), Java's List.toString, the
//! iteration order of java.util.Properties (a ConcurrentHashMap in Java 9 and later, which
//! decides the order `config -c` lists servers in), and the small JSON writer behind
//! `--json`. Pure: strings in, strings out.

use crate::proto::records::{Id, Stat};
use crate::server::fourlw::java_date;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Long.toHexString: two's complement for negative values, no padding.
pub fn hex(v: i64) -> String {
    format!("{:x}", v as u64)
}

/// StatPrinter.print: eleven `name = value` lines.
pub fn stat_text(s: &Stat) -> String {
    format!(
        "cZxid = 0x{}\nctime = {}\nmZxid = 0x{}\nmtime = {}\npZxid = 0x{}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{}\ndataLength = {}\n\
         numChildren = {}\n",
        hex(s.czxid),
        java_date(s.ctime),
        hex(s.mzxid),
        java_date(s.mtime),
        hex(s.pzxid),
        s.cversion,
        s.version,
        s.aversion,
        hex(s.ephemeral_owner),
        s.data_length,
        s.num_children
    )
}

/// The jute ToStringOutputArchive form of a string: a leading `'` and escapes for the
/// characters the CSV-like format reserves.
fn jute_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// `Id.toString()` as getAcl prints it: `'scheme,'id` and a newline (the record's end).
pub fn jute_id(id: &Id) -> String {
    format!("{},{}\n", jute_string(&id.scheme), jute_string(&id.id))
}

/// Java's `List.toString()` of strings: `[a, b]`.
pub fn java_list(v: &[String]) -> String {
    format!("[{}]", v.join(", "))
}

/// Quota data as StatsTrack holds it: key/value pairs, `count` and `bytes` first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    pub stats: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// StatsTrack(String): pairs split on `,` and `;`, each on `=`. Malformed data makes
    /// Java throw, and zkCli dies with that exception; the error is its text.
    pub fn parse(s: &str) -> Result<StatsTrack, String> {
        let mut t = StatsTrack::default();
        if s.is_empty() {
            return Ok(t);
        }
        let pairs: Vec<&str> = {
            let mut v: Vec<&str> = s.split([',', ';']).collect();
            // Pattern.split drops trailing empty strings; runs of separators count as one.
            v.retain(|p| !p.is_empty());
            v
        };
        for kv in pairs {
            let parts = super::parse::java_split(kv, '=');
            let Some(key) = parts.first() else {
                return Err(
                    "java.lang.ArrayIndexOutOfBoundsException: Index 0 out of bounds for length 0"
                        .to_owned(),
                );
            };
            let Some(v) = parts.get(1) else {
                return Err(format!(
                    "java.lang.ArrayIndexOutOfBoundsException: Index 1 out of bounds for length {}",
                    parts.len()
                ));
            };
            let v = if v.is_empty() { "-1" } else { v.as_str() };
            t.stats
                .insert(key.clone(), super::parse::java_parse_long(v)?);
        }
        Ok(t)
    }

    pub fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, v: i64) {
        self.stats.insert(key.to_owned(), v);
    }
}

impl std::fmt::Display for StatsTrack {
    /// `count=N,bytes=N` and, when other keys exist, `=;key=value...` in sorted key order.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "count={},bytes={}", self.get("count"), self.get("bytes"))?;
        let rest: Vec<(&String, &i64)> = self
            .stats
            .iter()
            .filter(|(k, _)| k.as_str() != "count" && k.as_str() != "bytes")
            .collect();
        if !rest.is_empty() {
            f.write_str("=")?;
            for (k, v) in rest {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

/// netty's ByteBufUtil.prettyHexDump, which `get -x` prints (ZooKeeper 3.8.5+).
pub fn pretty_hex_dump(data: &[u8]) -> String {
    if data.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    s.push_str("         +-------------------------------------------------+\n");
    s.push_str("         |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |\n");
    s.push_str("+--------+-------------------------------------------------+----------------+");
    for (row, chunk) in data.chunks(16).enumerate() {
        let _ = write!(s, "\n|{:08x}|", row * 16);
        for b in chunk {
            let _ = write!(s, " {b:02x}");
        }
        for _ in chunk.len()..16 {
            s.push_str("   ");
        }
        s.push_str(" |");
        for &b in chunk {
            s.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        for _ in chunk.len()..16 {
            s.push(' ');
        }
        s.push('|');
    }
    s.push_str("\n+--------+-------------------------------------------------+----------------+");
    s
}

/// Java's `String.hashCode()` over UTF-16 units.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The order in which a java.util.Properties loaded with `keys` (in insertion order, no
/// duplicates) iterates them: Java 9+ keeps properties in a ConcurrentHashMap created
/// with capacity 8 (a 16-bin table), iterated bin by bin, which resizes at 3/4 full and
/// splits each bin as ConcurrentHashMap.transfer does.
pub fn properties_order(keys: &[String]) -> Vec<String> {
    fn spread(h: i32) -> u32 {
        let h = h as u32;
        (h ^ (h >> 16)) & 0x7fff_ffff
    }
    /// One hash bin: (spread hash, key) in chain order.
    type Bin = Vec<(u32, String)>;
    let mut n = 16usize;
    let mut table: Vec<Bin> = vec![Vec::new(); n];
    let mut count = 0usize;
    for k in keys {
        let h = spread(java_hash(k));
        let bin = &mut table[h as usize & (n - 1)];
        if bin.iter().any(|(_, e)| e == k) {
            continue;
        }
        bin.push((h, k.clone()));
        count += 1;
        if count >= n - (n >> 2) {
            // transfer(): each bin splits into a low and a high list. The longest tail run
            // whose nodes go the same way keeps its order; the nodes before it are pushed
            // to the front of their list one by one.
            let nn = n * 2;
            let mut next: Vec<Bin> = vec![Vec::new(); nn];
            for (i, bin) in table.into_iter().enumerate() {
                if bin.is_empty() {
                    continue;
                }
                let bit = |h: u32| h as usize & n;
                let mut run_start = bin.len() - 1;
                let run_bit = bit(bin[run_start].0);
                while run_start > 0 && bit(bin[run_start - 1].0) == run_bit {
                    run_start -= 1;
                }
                let mut lo: Bin = Vec::new();
                let mut hi: Bin = Vec::new();
                if run_bit == 0 {
                    lo.extend(bin[run_start..].iter().cloned());
                } else {
                    hi.extend(bin[run_start..].iter().cloned());
                }
                for e in bin[..run_start].iter() {
                    if bit(e.0) == 0 {
                        lo.insert(0, e.clone());
                    } else {
                        hi.insert(0, e.clone());
                    }
                }
                next[i] = lo;
                next[i + n] = hi;
            }
            table = next;
            n = nn;
        }
    }
    table.into_iter().flatten().map(|(_, k)| k).collect()
}

/// Reads `java.util.Properties` text: `key=value`, `key:value` or `key value` lines, `#`
/// and `!` comments, trailing-backslash continuations and backslash escapes. Returns the
/// pairs in file order, a later duplicate replacing the earlier value in place.
pub fn load_properties(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut logical = String::new();
    let mut lines = text.split(['\n', '\r']).peekable();
    while let Some(raw) = lines.next() {
        let line = raw.trim_start_matches([' ', '\t', '\u{c}']);
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            if lines.peek().is_some() {
                continue;
            }
        } else {
            logical.push_str(line);
        }
        let entry = std::mem::take(&mut logical);
        let (k, v) = split_property(&entry);
        match out.iter_mut().find(|(ek, _)| *ek == k) {
            Some(e) => e.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

fn split_property(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            key.push(unescape(chars[i + 1]));
            i += 2;
            continue;
        }
        if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\u{c}' {
            break;
        }
        key.push(c);
        i += 1;
    }
    while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\u{c}') {
        i += 1;
    }
    if i < chars.len() && (chars[i] == '=' || chars[i] == ':') {
        i += 1;
    }
    while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\u{c}') {
        i += 1;
    }
    let mut value = String::new();
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            value.push(unescape(chars[i + 1]));
            i += 2;
        } else {
            value.push(chars[i]);
            i += 1;
        }
    }
    (key, value)
}

fn unescape(c: char) -> char {
    match c {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'f' => '\u{c}',
        other => other,
    }
}

/// ConfigUtils.getClientConfigStr: `<version> <clientHost:clientPort>,...` from the
/// text of /zookeeper/config, in Properties iteration order.
pub fn client_config_str(config: &str) -> String {
    let props = load_properties(config);
    let keys: Vec<String> = props.iter().map(|(k, _)| k.clone()).collect();
    let mut version = String::new();
    let mut servers = String::new();
    let mut first = true;
    for k in properties_order(&keys) {
        let v = props
            .iter()
            .find(|(pk, _)| *pk == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        let key = k.trim();
        if key == "version" {
            version = v.clone();
        }
        if !key.starts_with("server.") {
            continue;
        }
        if !first {
            servers.push(',');
        }
        first = false;
        if let Some(client) = v.split_once(';').map(|(_, c)| c.trim()) {
            let (host, port) = match client.rsplit_once(':') {
                Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
                None => ("0.0.0.0", client),
            };
            let _ = write!(servers, "{host}:{port}");
        }
    }
    format!("{version} {servers}")
}

pub use crate::cmd::json::json_str;
pub use crate::tree::acl::perm_string;

/// A JSON array of strings.
pub fn json_strs(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| json_str(s)).collect();
    format!("[{}]", items.join(","))
}

/// A JSON object from `(key, already-encoded value)` pairs, in order.
pub fn json_obj(fields: &[(&str, String)]) -> String {
    let items: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_str(k)))
        .collect();
    format!("{{{}}}", items.join(","))
}

/// A Stat as a JSON object with StatPrinter's field names; zxids and the owner as hex
/// strings (session ids exceed what JSON numbers hold exactly), times in epoch ms.
pub fn json_stat(s: &Stat) -> String {
    json_obj(&[
        ("cZxid", json_str(&format!("0x{}", hex(s.czxid)))),
        ("ctime", s.ctime.to_string()),
        ("mZxid", json_str(&format!("0x{}", hex(s.mzxid)))),
        ("mtime", s.mtime.to_string()),
        ("pZxid", json_str(&format!("0x{}", hex(s.pzxid)))),
        ("cversion", s.cversion.to_string()),
        ("dataVersion", s.version.to_string()),
        ("aclVersion", s.aversion.to_string()),
        (
            "ephemeralOwner",
            json_str(&format!("0x{}", hex(s.ephemeral_owner))),
        ),
        ("dataLength", s.data_length.to_string()),
        ("numChildren", s.num_children.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_block_is_stat_printer() {
        let s = Stat {
            czxid: 0x1a,
            mzxid: 0x1b,
            ctime: 1_551_957_547_000,
            mtime: 0,
            version: 2,
            cversion: -1,
            aversion: 0,
            ephemeral_owner: i64::MIN,
            data_length: 5,
            num_children: 1,
            pzxid: 0,
        };
        assert_eq!(
            stat_text(&s),
            "cZxid = 0x1a\nctime = Thu Mar 07 11:19:07 UTC 2019\nmZxid = 0x1b\n\
             mtime = Thu Jan 01 00:00:00 UTC 1970\npZxid = 0x0\ncversion = -1\n\
             dataVersion = 2\naclVersion = 0\nephemeralOwner = 0x8000000000000000\n\
             dataLength = 5\nnumChildren = 1\n"
        );
    }

    #[test]
    fn perms_and_ids() {
        assert_eq!(perm_string(31), "cdrwa");
        assert_eq!(perm_string(1), "r");
        assert_eq!(perm_string(3), "rw");
        assert_eq!(perm_string(0), "");
        assert_eq!(perm_string(12), "cd");
        assert_eq!(jute_id(&Id::new("world", "anyone")), "'world,'anyone\n");
        assert_eq!(
            jute_id(&Id::new("digest", "u:a,b%}\n")),
            "'digest,'u:a%2Cb%25%7D%0A\n"
        );
        assert_eq!(java_list(&[]), "[]");
        assert_eq!(java_list(&["/a".into(), "/b".into()]), "[/a, /b]");
    }

    #[test]
    fn quota_data() {
        let t = StatsTrack::parse("count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1").unwrap();
        assert_eq!(t.get("count"), 5);
        assert_eq!(t.get("bytes"), -1);
        assert_eq!(
            t.to_string(),
            "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
        );
        let t = StatsTrack::parse("count=3,bytes=5").unwrap();
        assert_eq!(t.to_string(), "count=3,bytes=5");
        assert_eq!(StatsTrack::default().to_string(), "count=-1,bytes=-1");
        assert!(StatsTrack::parse("count").is_err());
        assert!(StatsTrack::parse("count=x").is_err());
    }

    #[test]
    fn hexdump_matches_netty() {
        assert_eq!(pretty_hex_dump(b""), "");
        assert_eq!(
            pretty_hex_dump(b"hello\n"),
            "         +-------------------------------------------------+\n\
             \x20        |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |\n\
             +--------+-------------------------------------------------+----------------+\n\
             |00000000| 68 65 6c 6c 6f 0a                               |hello.          |\n\
             +--------+-------------------------------------------------+----------------+"
        );
    }

    #[test]
    fn properties_iterate_in_concurrent_hash_map_order() {
        assert_eq!(
            java_hash("server.1"),
            "server.1"
                .encode_utf16()
                .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
        );
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        // Bins by (h ^ h>>>16) & 15; within a bin, insertion order.
        let keys: Vec<String> = ["server.1", "server.2", "server.3", "version"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let order = properties_order(&keys);
        assert_eq!(order.len(), 4);
        let bin = |k: &str| {
            let h = java_hash(k) as u32;
            ((h ^ (h >> 16)) & 15) as usize
        };
        let mut expect = keys.clone();
        expect.sort_by_key(|k| bin(k));
        assert_eq!(order, expect);
        // Thirteen keys force one resize; every key survives it exactly once.
        let many: Vec<String> = (1..=13).map(|i| format!("server.{i}")).collect();
        let mut o = properties_order(&many);
        o.sort();
        let mut m = many.clone();
        m.sort();
        assert_eq!(o, m);
    }

    #[test]
    fn client_config_string() {
        assert_eq!(client_config_str(""), " ");
        let cfg = "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=100000000";
        assert_eq!(client_config_str(cfg), "100000000 0.0.0.0:2181");
        let props = load_properties("a = 1\n# c\nb:2\\\n  3\nc\td\n a=4");
        assert_eq!(
            props,
            vec![
                ("a".to_owned(), "4".to_owned()),
                ("b".to_owned(), "23".to_owned()),
                ("c".to_owned(), "d".to_owned())
            ]
        );
    }

    #[test]
    fn json() {
        assert_eq!(json_str("a\"b\\\n\u{1}é"), "\"a\\\"b\\\\\\n\\u0001é\"");
        assert_eq!(json_strs(&["x".into()]), "[\"x\"]");
        assert_eq!(
            json_obj(&[("n", "1".into()), ("s", json_str("v"))]),
            "{\"n\":1,\"s\":\"v\"}"
        );
    }
}
