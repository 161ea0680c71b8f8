//! How zkCli reads what it is given, reproduced so that the same input gives the same
//! result and the same error text: the line tokenizer of ZooKeeperMain.MyCommandOptions
//! (whitespace splits, `"..."` and `'...'` group), the option parsing of Apache
//! commons-cli 1.5's DefaultParser that every zkCli command uses (with its exception
//! messages), Java's integer and double parsing with NumberFormatException's wording, and
//! AclParser. Pure functions; nothing here talks to a server or prints.

use crate::proto::consts::perms;
use crate::proto::records::Acl;

/// Java's `\s`: space, tab, newline, vertical tab, form feed, carriage return.
fn java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// Splits a command line as `MyCommandOptions.parseCommand` does with the pattern
/// `\s*([^"']\S*|"[^"]*"|'[^']*')\s*` and `find()`: a word is a run of non-space
/// characters not starting with a quote, or a quoted run whose quotes are removed. An
/// unterminated quote is skipped. A line of blanks yields one blank word, as the regex's
/// backtracking does. Returns `None` for a line with no word at all.
pub fn tokenize(line: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut pos = 0;
    // Matcher.find(): the first start position from `pos` where the pattern matches.
    while let Some((word, end)) = (pos..chars.len()).find_map(|st| match_at(&chars, st)) {
        out.push(word);
        pos = end;
    }
    (!out.is_empty()).then_some(out)
}

/// The pattern matched at `start`: the word and where the match (trailing blanks
/// included) ends. The leading `\s*` is greedy and gives back one blank at a time.
fn match_at(chars: &[char], start: usize) -> Option<(String, usize)> {
    let n = chars.len();
    let mut ws_end = start;
    while ws_end < n && java_space(chars[ws_end]) {
        ws_end += 1;
    }
    for k in (start..=ws_end.min(n.saturating_sub(1))).rev() {
        let c = chars[k];
        let group_end = if c != '"' && c != '\'' {
            let mut e = k + 1;
            while e < n && !java_space(chars[e]) {
                e += 1;
            }
            Some(e)
        } else {
            chars[k + 1..]
                .iter()
                .position(|&d| d == c)
                .map(|off| k + 1 + off + 1)
        };
        let Some(e) = group_end else { continue };
        let word: String = if c == '"' || c == '\'' {
            chars[k + 1..e - 1].iter().collect()
        } else {
            chars[k..e].iter().collect()
        };
        let mut next = e;
        while next < n && java_space(chars[next]) {
            next += 1;
        }
        return Some((word, next));
    }
    None
}

/// One option a command declares (commons-cli `Option`): a name and whether it takes a
/// value. zkCli declares only short options (some with several letters, like `-file`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptSpec {
    pub name: &'static str,
    pub has_arg: bool,
}

/// An option group (`OptionGroup`): at most one member may be given; `required` groups
/// must be given (setquota).
#[derive(Debug, Clone, Copy)]
pub struct GroupSpec {
    pub members: &'static [(&'static str, &'static str)],
    pub required: bool,
}

/// A command's options (commons-cli `Options`).
#[derive(Debug, Clone, Copy)]
pub struct OptionsSpec {
    pub opts: &'static [OptSpec],
    pub group: Option<GroupSpec>,
}

/// The parsed command line (commons-cli `CommandLine`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLine {
    /// Options in the order given, with their values.
    pub opts: Vec<(String, Vec<String>)>,
    /// The words that are not options; the first is the command itself.
    pub args: Vec<String>,
}

impl CommandLine {
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| n == name)
    }

    /// `getOptionValue`: the first value given for the option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.iter())
            .map(String::as_str)
            .next()
    }
}

impl OptionsSpec {
    fn find(&self, name: &str) -> Option<OptSpec> {
        self.opts.iter().copied().find(|o| o.name == name)
    }

    fn has_short(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    fn in_group(&self, name: &str) -> bool {
        self.group
            .is_some_and(|g| g.members.iter().any(|(m, _)| *m == name))
    }
}

/// DefaultParser.parse(options, args) of commons-cli 1.5 for options that are all short
/// (no long names), which is every zkCli command. The error is the text zkCli prints:
/// the exception's `toString()`, e.g.
/// `org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x`.
pub fn parse_options(spec: &OptionsSpec, args: &[String]) -> Result<CommandLine, String> {
    let mut p = Parser {
        spec,
        cmd: CommandLine::default(),
        current: None,
        skip: false,
        group_selected: None,
    };
    for t in args {
        p.handle_token(t)?;
    }
    p.check_required_args()?;
    if let Some(g) = spec.group {
        if g.required && p.group_selected.is_none() {
            let list: Vec<String> = g.members.iter().map(|(m, d)| format!("-{m} {d}")).collect();
            return Err(format!(
                "org.apache.commons.cli.MissingOptionException: Missing required option: [{}]",
                list.join(", ")
            ));
        }
    }
    Ok(p.cmd)
}

struct Parser<'a> {
    spec: &'a OptionsSpec,
    cmd: CommandLine,
    /// The index in `cmd.opts` of an option still waiting for its value.
    current: Option<usize>,
    skip: bool,
    group_selected: Option<&'static str>,
}

impl Parser<'_> {
    fn current_accepts_arg(&self) -> bool {
        self.current.is_some_and(|i| self.cmd.opts[i].1.is_empty())
    }

    fn check_required_args(&self) -> Result<(), String> {
        if let Some(i) = self.current {
            if self.cmd.opts[i].1.is_empty() {
                return Err(format!(
                    "org.apache.commons.cli.MissingArgumentException: Missing argument for option: {}",
                    self.cmd.opts[i].0
                ));
            }
        }
        Ok(())
    }

    fn handle_option(&mut self, o: OptSpec) -> Result<(), String> {
        self.check_required_args()?;
        if self.spec.in_group(o.name) {
            match self.group_selected {
                Some(sel) if sel != o.name => {
                    return Err(format!(
                        "org.apache.commons.cli.AlreadySelectedException: The option '{}' was \
                         specified but an option from this group has already been selected: '{sel}'",
                        o.name
                    ));
                }
                _ => {
                    self.group_selected = Some(o.name);
                }
            }
        }
        self.cmd.opts.push((o.name.to_owned(), Vec::new()));
        self.current = o.has_arg.then(|| self.cmd.opts.len() - 1);
        Ok(())
    }

    fn add_value(&mut self, v: String) {
        if let Some(i) = self.current {
            self.cmd.opts[i].1.push(v);
        }
    }

    fn handle_unknown(&mut self, token: &str) -> Result<(), String> {
        if token.starts_with('-') && token.chars().count() > 1 {
            return Err(format!(
                "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {token}"
            ));
        }
        self.cmd.args.push(token.to_owned());
        Ok(())
    }

    /// `isShortOption`: the name (before any `=`) is an option, or its first letter is.
    fn is_short_option(&self, token: &str) -> bool {
        if !token.starts_with('-') || token.chars().count() == 1 {
            return false;
        }
        let body = &token[1..];
        let name = body.split('=').next().unwrap_or("");
        if self.spec.has_short(name) {
            return true;
        }
        name.chars()
            .next()
            .is_some_and(|c| self.spec.has_short(&c.to_string()))
    }

    fn is_argument(&self, token: &str) -> bool {
        // No command has long options, so isLongOption is always false here.
        !self.is_short_option(token) || java_is_double(token)
    }

    fn handle_token(&mut self, token: &str) -> Result<(), String> {
        if self.skip {
            self.cmd.args.push(token.to_owned());
        } else if token == "--" {
            self.skip = true;
        } else if self.current_accepts_arg() && self.is_argument(token) {
            self.add_value(strip_quotes(token));
        } else if token.starts_with("--") {
            // handleLongOption: nothing matches, so the token is unknown.
            self.handle_unknown(token)?;
        } else if token.starts_with('-') && token != "-" {
            self.handle_short_and_long(token)?;
        } else {
            self.handle_unknown(token)?;
        }
        if !self.current_accepts_arg() {
            self.current = None;
        }
        Ok(())
    }

    fn handle_short_and_long(&mut self, token: &str) -> Result<(), String> {
        let t = &token[1..];
        match t.find('=') {
            None if t.chars().count() == 1 || self.spec.has_short(t) => match self.spec.find(t) {
                Some(o) => self.handle_option(o),
                None => self.handle_unknown(token),
            },
            None => self.handle_concatenated(token),
            Some(pos) => {
                let (name, value) = (&t[..pos], &t[pos + 1..]);
                match self.spec.find(name) {
                    Some(o) if name.chars().count() == 1 && o.has_arg => {
                        self.handle_option(o)?;
                        self.add_value(value.to_owned());
                        self.current = None;
                        Ok(())
                    }
                    _ => self.handle_unknown(token),
                }
            }
        }
    }

    /// `-abc`: each letter an option until one takes a value, which is the rest.
    fn handle_concatenated(&mut self, token: &str) -> Result<(), String> {
        let chars: Vec<char> = token.chars().collect();
        for i in 1..chars.len() {
            let ch = chars[i].to_string();
            let Some(o) = self.spec.find(&ch) else {
                return self.handle_unknown(token);
            };
            self.handle_option(o)?;
            if self.current.is_some() && chars.len() != i + 1 {
                let rest: String = chars[i + 1..].iter().collect();
                self.add_value(rest);
                break;
            }
        }
        Ok(())
    }
}

/// Util.stripLeadingAndTrailingQuotes of commons-cli 1.5.
fn strip_quotes(s: &str) -> String {
    if s.len() > 1 && s.starts_with('"') && s.ends_with('"') && !s[1..s.len() - 1].contains('"') {
        s[1..s.len() - 1].to_owned()
    } else {
        s.to_owned()
    }
}

/// NumberFormatException's message for a string Integer/Long parsing refused.
fn nfe(s: &str) -> String {
    format!("java.lang.NumberFormatException: For input string: \"{s}\"")
}

/// Long.parseLong(s, radix); the error is the exception as zkCli's crash prints it.
pub fn java_parse_long_radix(s: &str, radix: u32) -> Result<i64, String> {
    let err = || {
        if radix == 10 {
            nfe(s)
        } else {
            format!("{} under radix {radix}", nfe(s))
        }
    };
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(err());
    }
    let mut v: i128 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix).ok_or_else(err)?;
        v = v * radix as i128 + d as i128;
        if v > i64::MAX as i128 + 1 {
            return Err(err());
        }
    }
    let v = if neg { -v } else { v };
    i64::try_from(v).map_err(|_| err())
}

pub fn java_parse_long(s: &str) -> Result<i64, String> {
    java_parse_long_radix(s, 10)
}

/// Integer.parseInt(s).
pub fn java_parse_int(s: &str) -> Result<i32, String> {
    let v = java_parse_long(s)?;
    i32::try_from(v).map_err(|_| nfe(s))
}

/// Integer.decode(s): an optional sign, then `0x`/`0X`/`#` for hex, a leading `0` for
/// octal, else decimal.
pub fn java_integer_decode(s: &str) -> Result<i32, String> {
    if s.is_empty() {
        return Err("java.lang.NumberFormatException: Zero length string".to_owned());
    }
    let (neg, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) =
        if let Some(h) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            (16, h)
        } else if let Some(h) = rest.strip_prefix('#') {
            (16, h)
        } else if rest.starts_with('0') && rest.len() > 1 {
            (8, &rest[1..])
        } else {
            (10, rest)
        };
    if digits.starts_with('-') || digits.starts_with('+') {
        return Err("java.lang.NumberFormatException: Sign character in wrong position".to_owned());
    }
    let signed = if neg {
        format!("-{digits}")
    } else {
        digits.to_owned()
    };
    let v = java_parse_long_radix(&signed, radix).map_err(|_| {
        if radix == 10 {
            nfe(&signed)
        } else {
            format!("{} under radix {radix}", nfe(&signed))
        }
    })?;
    i32::try_from(v).map_err(|_| nfe(&signed))
}

/// Whether Double.parseDouble accepts `s` (commons-cli uses it to let `-5` be a value).
pub fn java_is_double(s: &str) -> bool {
    let t = s.trim_matches(|c: char| c <= ' ');
    let body = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
    let unsigned = body.strip_prefix(['+', '-']).unwrap_or(body);
    if unsigned == "NaN" || unsigned == "Infinity" {
        return true;
    }
    // Java accepts what Rust's f64 parser accepts except the words inf/nan and the like.
    unsigned
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && unsigned.chars().any(|c| c.is_ascii_digit())
        && body.parse::<f64>().is_ok()
}

/// Java's `String.split(String)` for a one-character separator: trailing empty strings
/// are dropped, and an empty input gives one empty string.
pub fn java_split(s: &str, sep: char) -> Vec<String> {
    if s.is_empty() {
        return vec![String::new()];
    }
    let mut v: Vec<String> = s.split(sep).map(str::to_owned).collect();
    while v.last().is_some_and(String::is_empty) {
        v.pop();
    }
    v
}

/// AclParser.parse: `scheme:id:perms[,...]`, split at the first and last colon. Entries
/// without two colons and unknown permission letters are reported (the returned lines
/// go to stderr, as zkCli prints them) and skipped.
pub fn parse_acl(s: &str) -> (Vec<Acl>, Vec<String>) {
    let mut acl = Vec::new();
    let mut warnings = Vec::new();
    for a in java_split(s, ',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            warnings.push(format!("{a} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            warnings.push(format!("{a} does not have the form scheme:id:perm"));
            continue;
        }
        let mut p = 0;
        for c in a[last + 1..].chars() {
            match c {
                'r' => p |= perms::READ,
                'w' => p |= perms::WRITE,
                'c' => p |= perms::CREATE,
                'd' => p |= perms::DELETE,
                'a' => p |= perms::ADMIN,
                other => warnings.push(format!("Unknown perm type: {other}")),
            }
        }
        acl.push(Acl::new(p, &a[..first], &a[first + 1..last]));
    }
    (acl, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        tokenize(s).unwrap_or_default()
    }

    #[test]
    fn tokenizer_matches_zkcli() {
        assert_eq!(words("ls /"), ["ls", "/"]);
        assert_eq!(words("  create   /a  hello "), ["create", "/a", "hello"]);
        assert_eq!(
            words("create /quoted \"hello  world\""),
            ["create", "/quoted", "hello  world"]
        );
        assert_eq!(
            words("create /sq 'single quoted'"),
            ["create", "/sq", "single quoted"]
        );
        assert_eq!(words("create /e \"\""), ["create", "/e", ""]);
        // quotes inside a word stay; a quoted run ends a word
        assert_eq!(words("set /a x\"y\"z"), ["set", "/a", "x\"y\"z"]);
        assert_eq!(words("set /a \"b c\"d"), ["set", "/a", "b c", "d"]);
        // an unterminated quote is dropped
        assert_eq!(words("create /x \"hello"), ["create", "/x", "hello"]);
        assert_eq!(words("create /x 'a \"b' c"), ["create", "/x", "a \"b", "c"]);
        // a blank line is one blank word (the regex backtracks into the blanks)
        assert_eq!(words("   "), [" "]);
        assert_eq!(words("\t"), ["\t"]);
        assert_eq!(tokenize(""), None);
        assert_eq!(words("get /héllo€"), ["get", "/héllo€"]);
    }

    const CREATE: OptionsSpec = OptionsSpec {
        opts: &[
            OptSpec {
                name: "e",
                has_arg: false,
            },
            OptSpec {
                name: "s",
                has_arg: false,
            },
            OptSpec {
                name: "c",
                has_arg: false,
            },
            OptSpec {
                name: "t",
                has_arg: true,
            },
        ],
        group: None,
    };

    const SETQUOTA: OptionsSpec = OptionsSpec {
        opts: &[
            OptSpec {
                name: "n",
                has_arg: true,
            },
            OptSpec {
                name: "b",
                has_arg: true,
            },
            OptSpec {
                name: "N",
                has_arg: true,
            },
            OptSpec {
                name: "B",
                has_arg: true,
            },
        ],
        group: Some(GroupSpec {
            members: &[
                ("n", "num soft quota"),
                ("b", "bytes soft quota"),
                ("N", "num hard quota"),
                ("B", "bytes hard quota"),
            ],
            required: true,
        }),
    };

    fn parse(spec: &OptionsSpec, s: &str) -> Result<CommandLine, String> {
        let v: Vec<String> = s.split(' ').map(str::to_owned).collect();
        parse_options(spec, &v)
    }

    #[test]
    fn options_parse_like_commons_cli() {
        let c = parse(&CREATE, "create -s -e /a data").unwrap();
        assert!(c.has("s") && c.has("e") && !c.has("c"));
        assert_eq!(c.args, ["create", "/a", "data"]);
        // options may follow the path, and letters may be joined
        let c = parse(&CREATE, "create /a -se").unwrap();
        assert!(c.has("s") && c.has("e"));
        assert_eq!(c.args, ["create", "/a"]);
        // a value joined to its option, after =, or a negative number
        assert_eq!(
            parse(&CREATE, "create -t500 /a").unwrap().value("t"),
            Some("500")
        );
        assert_eq!(
            parse(&CREATE, "create -t=7 /a").unwrap().value("t"),
            Some("7")
        );
        assert_eq!(
            parse(&CREATE, "create -t -5 /a").unwrap().value("t"),
            Some("-5")
        );
        assert_eq!(
            parse(&CREATE, "create -t abc /a").unwrap().value("t"),
            Some("abc")
        );
        // after --, everything is an argument
        assert_eq!(
            parse(&CREATE, "create -- -s").unwrap().args,
            ["create", "-s"]
        );
        assert_eq!(
            parse(&CREATE, "create -x /a").unwrap_err(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x"
        );
        assert_eq!(
            parse(&CREATE, "create -sx /a").unwrap_err(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -sx"
        );
        assert_eq!(
            parse(&CREATE, "create --s /a").unwrap_err(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: --s"
        );
        assert_eq!(
            parse(&CREATE, "create /a -t").unwrap_err(),
            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: t"
        );
        assert_eq!(
            parse(&CREATE, "create -t -e /a").unwrap_err(),
            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: t"
        );
        assert_eq!(
            parse(&CREATE, "create - /a").unwrap().args,
            ["create", "-", "/a"]
        );
    }

    #[test]
    fn option_groups() {
        assert_eq!(
            parse(&SETQUOTA, "setquota /q").unwrap_err(),
            "org.apache.commons.cli.MissingOptionException: Missing required option: \
             [-n num soft quota, -b bytes soft quota, -N num hard quota, -B bytes hard quota]"
        );
        assert_eq!(
            parse(&SETQUOTA, "setquota -n 5 -b 5 /q").unwrap_err(),
            "org.apache.commons.cli.AlreadySelectedException: The option 'b' was specified but \
             an option from this group has already been selected: 'n'"
        );
        let c = parse(&SETQUOTA, "setquota -n 5 -n 6 /q").unwrap();
        assert_eq!(c.value("n"), Some("5"));
        assert_eq!(
            parse(&SETQUOTA, "setquota -b -1 /q").unwrap().value("b"),
            Some("-1")
        );
    }

    #[test]
    fn java_numbers() {
        assert_eq!(java_parse_int("42"), Ok(42));
        assert_eq!(java_parse_int("+7"), Ok(7));
        assert_eq!(java_parse_int("-2147483648"), Ok(i32::MIN));
        assert_eq!(
            java_parse_int("2147483648").unwrap_err(),
            "java.lang.NumberFormatException: For input string: \"2147483648\""
        );
        assert_eq!(
            java_parse_int("abc").unwrap_err(),
            "java.lang.NumberFormatException: For input string: \"abc\""
        );
        assert!(java_parse_int("").is_err());
        assert!(java_parse_int("-").is_err());
        assert_eq!(java_parse_long("1099511627776"), Ok(1_099_511_627_776));
        assert_eq!(java_parse_long_radix("ff", 16), Ok(255));
        assert!(java_parse_long_radix("xyz", 16).is_err());
        assert_eq!(java_integer_decode("0x10"), Ok(16));
        assert_eq!(java_integer_decode("010"), Ok(8));
        assert_eq!(java_integer_decode("-1"), Ok(-1));
        assert_eq!(java_integer_decode("#f"), Ok(15));
        assert_eq!(
            java_integer_decode("abc").unwrap_err(),
            "java.lang.NumberFormatException: For input string: \"abc\""
        );
        assert!(java_is_double("-5"));
        assert!(java_is_double("-1.5e3"));
        assert!(java_is_double("-NaN"));
        assert!(!java_is_double("-s"));
        assert!(!java_is_double("-e"));
    }

    #[test]
    fn acl_strings() {
        let (acl, w) = parse_acl("world:anyone:cdrwa");
        assert_eq!(acl, vec![Acl::new(31, "world", "anyone")]);
        assert!(w.is_empty());
        // split at the first and the last colon, so digest ids keep theirs
        let (acl, _) = parse_acl("digest:alice:aYXl=:rw,ip:10.0.0.0/8:r");
        assert_eq!(
            acl,
            vec![
                Acl::new(3, "digest", "alice:aYXl="),
                Acl::new(1, "ip", "10.0.0.0/8")
            ]
        );
        let (acl, w) = parse_acl("world:anyone");
        assert!(acl.is_empty());
        assert_eq!(w, ["world:anyone does not have the form scheme:id:perm"]);
        let (acl, w) = parse_acl("world:anyone:rq");
        assert_eq!(acl, vec![Acl::new(1, "world", "anyone")]);
        assert_eq!(w, ["Unknown perm type: q"]);
        let (acl, w) = parse_acl("auth::");
        assert_eq!(acl, vec![Acl::new(0, "auth", "")]);
        assert!(w.is_empty());
        assert_eq!(java_split("a,,b,,", ','), ["a", "", "b"]);
        assert_eq!(java_split("", ','), [""]);
        assert!(java_split(",", ',').is_empty());
    }
}
