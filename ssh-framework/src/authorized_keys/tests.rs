//! Lines written by hand for every option, keys made by OpenSSH's ssh-keygen.

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;

/// A fresh key of `args` (`-t ed25519`, ...) made by ssh-keygen: its `.pub`
/// line.
fn keygen(dir: &Path, name: &str, args: &[&str]) -> String {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", "made by ssh-keygen", "-f"])
        .arg(&path)
        .args(args)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    std::fs::read_to_string(path.with_extension("pub")).unwrap().trim_end().to_owned()
}

fn ed25519() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let line = keygen(dir.path(), "id", &["-t", "ed25519"]);
    (dir, line)
}

/// The options of `options KEY` (the key made by ssh-keygen).
fn options_of(options: &str) -> Result<KeyOptions, ParseError> {
    let (_dir, key) = ed25519();
    let keys = AuthorizedKeys::parse(&format!("{options} {key}\n"))?;
    Ok(keys.entries()[0].options.clone())
}

fn refused(options: &str) -> ParseError {
    match options_of(options) {
        Ok(parsed) => panic!("{options:?} parsed as {parsed:?}"),
        Err(e) => e,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn reads_every_key_type_ssh_keygen_makes_with_and_without_options() {
    let dir = tempfile::tempdir().unwrap();
    let kinds: &[&[&str]] = &[
        &["-t", "ed25519"],
        &["-t", "rsa", "-b", "2048"],
        &["-t", "ecdsa", "-b", "256"],
        &["-t", "ecdsa", "-b", "384"],
        &["-t", "ecdsa", "-b", "521"],
    ];
    let lines: Vec<String> =
        kinds.iter().enumerate().map(|(i, args)| keygen(dir.path(), &format!("k{i}"), args)).collect();
    let mut file = String::from("# a comment line\n\n   \t\n");
    for line in &lines {
        file.push_str(line);
        file.push('\n');
        file.push_str(&format!("  no-pty,command=\"echo a b\"\t{line}\r\n"));
    }
    let path = dir.path().join("authorized_keys");
    std::fs::write(&path, &file).unwrap();
    let keys = AuthorizedKeys::read(&path).unwrap();
    assert!(keys.errors().is_empty(), "{:?}", keys.errors());
    assert_eq!(keys.entries().len(), 2 * lines.len());
    for (i, line) in lines.iter().enumerate() {
        let expected = PublicKey::from_openssh(line).unwrap();
        let (plain, restricted) = (&keys.entries()[2 * i], &keys.entries()[2 * i + 1]);
        assert_eq!(plain.key.key_data(), expected.key_data());
        assert_eq!(plain.comment, "made by ssh-keygen");
        assert_eq!(plain.key.comment().as_bytes(), b"made by ssh-keygen");
        assert_eq!(plain.options, KeyOptions::default());
        assert_eq!(plain.line, 4 + 2 * i);
        assert_eq!(restricted.key.key_data(), expected.key_data());
        assert_eq!(restricted.options.command.as_deref(), Some("echo a b"));
        assert!(!restricted.options.allows_pty());
        assert_eq!(keys.matching(expected.key_data()).count(), 2);
    }
}

#[test]
fn parses_every_option() {
    let o = options_of(concat!(
        r#"from="10.0.0.0/8,!10.1.2.3",command="run \"it\"",restrict,pty,port-forwarding,"#,
        r#"agent-forwarding,x11-forwarding,user-rc,permitopen="localhost:22",permitopen="*:*","#,
        r#"permitopen="[::1]:8080",permitlisten="8022",permitlisten="localhost:*","#,
        r#"environment="LANG=C.UTF-8",environment="EMPTY=",expiry-time="20300101Z","#,
        r#"principals="ops,dev",cert-authority,no-touch-required,verify-required"#
    ))
    .unwrap();
    assert_eq!(
        o.from,
        Some(vec![
            HostPattern::Network { net: "10.0.0.0/8".parse().unwrap(), negated: false },
            HostPattern::Network { net: "10.1.2.3/32".parse().unwrap(), negated: true },
        ])
    );
    assert_eq!(o.command.as_deref(), Some(r#"run "it""#));
    assert!(o.restrict);
    assert_eq!(
        (o.pty, o.port_forwarding, o.agent_forwarding, o.x11_forwarding, o.user_rc),
        (Some(true), Some(true), Some(true), Some(true), Some(true))
    );
    assert_eq!(
        o.permitopen,
        vec![
            PermitOpen { host: "localhost".into(), port: PermitPort::Port(22) },
            PermitOpen { host: "*".into(), port: PermitPort::Any },
            PermitOpen { host: "::1".into(), port: PermitPort::Port(8080) },
        ]
    );
    assert_eq!(
        o.permitlisten,
        vec![
            PermitListen { host: None, port: PermitPort::Port(8022) },
            PermitListen { host: Some("localhost".into()), port: PermitPort::Any },
        ]
    );
    assert_eq!(o.environment, vec![("LANG".into(), "C.UTF-8".into()), ("EMPTY".into(), String::new())]);
    assert_eq!(o.expiry_time, Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000)));
    assert_eq!(o.principals, Some(vec!["ops".to_owned(), "dev".to_owned()]));
    assert!(o.cert_authority && o.no_touch_required && o.verify_required);

    let negated = options_of(
        "no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc,touch-required,no-verify-required",
    )
    .unwrap();
    assert_eq!(
        (negated.pty, negated.port_forwarding, negated.agent_forwarding, negated.x11_forwarding, negated.user_rc),
        (Some(false), Some(false), Some(false), Some(false), Some(false))
    );
    assert!(!negated.no_touch_required && !negated.verify_required && !negated.restrict);
}

#[test]
fn option_names_ignore_case_and_values_keep_it() {
    let o = options_of(r#"NO-PTY,Command="Echo HI",FROM="Host.Example""#).unwrap();
    assert_eq!(o.pty, Some(false));
    assert_eq!(o.command.as_deref(), Some("Echo HI"));
    assert_eq!(o.from, Some(vec![HostPattern::Wildcard { pattern: "Host.Example".into(), negated: false }]));
}

#[test]
fn quotes_and_escapes_as_openssh() {
    // Blanks and commas inside quotes belong to the value; `\"` is a quote;
    // any other backslash stays.
    let o = options_of(r#"command="a, b\tc \"d\" e\\f \n",environment="X=1 2""#).unwrap();
    assert_eq!(o.command.as_deref(), Some(r#"a, b\tc "d" e\\f \n"#));
    assert_eq!(o.environment, vec![("X".into(), "1 2".into())]);
    // `#` inside an option is not a comment.
    assert_eq!(
        options_of(r#"command="echo # not a comment""#).unwrap().command.as_deref(),
        Some("echo # not a comment")
    );
    // The first duplicate of an environment name wins, as in OpenSSH.
    let o = options_of(r#"environment="A=1",environment="A=2""#).unwrap();
    assert_eq!(o.environment, vec![("A".into(), "1".into())]);
    // The earliest expiry wins.
    let o = options_of(r#"expiry-time="20300101Z",expiry-time="20290101Z",expiry-time="20310101Z""#).unwrap();
    assert_eq!(o.expiry_time, Some(UNIX_EPOCH + Duration::from_secs(1_861_920_000)));
}

#[test]
fn refuses_bad_options_naming_line_and_option() {
    let cases: &[(&str, &str, &str)] = &[
        ("frobnicate", "frobnicate", "unknown key option"),
        ("no-pty,frob=\"x\"", "frob", "unknown key option"),
        ("restrictive", "restrictive", "unknown key option"),
        ("cert-authority=\"x\"", "cert-authority", "unknown key option"),
        ("no-cert-authority", "no-cert-authority", "unknown key option"),
        ("no-restrict", "no-restrict", "unknown key option"),
        ("tunnel=\"1\"", "tunnel", "not supported (no tun forwarding)"),
        ("command", "command", "missing value"),
        ("command=echo", "command", "missing start quote"),
        ("command=\"a\"x", "command", "unknown key option"),
        ("command=\"a\",command=\"b\"", "command", "multiple \"command\" clauses"),
        ("from=\"a\",from=\"b\"", "from", "multiple \"from\" clauses"),
        ("principals=\"a\",principals=\"b\"", "principals", "multiple \"principals\" clauses"),
        ("from=\"\"", "from", "empty entry in pattern list"),
        ("from=\"10.0.0.1,,10.0.0.2\"", "from", "empty entry in pattern list"),
        ("from=\"!\"", "from", "empty entry in pattern list"),
        ("from=\"10.0.0.1/8\"", "from", "inconsistent mask length for network"),
        ("from=\"10.0.0.0/33\"", "from", "inconsistent mask length for network"),
        ("from=\"::/129\"", "from", "inconsistent mask length for network"),
        ("permitopen=\"localhost\"", "permitopen", "invalid permission port"),
        ("permitopen=\"localhost:0\"", "permitopen", "invalid permission port"),
        ("permitopen=\"localhost:65536\"", "permitopen", "invalid permission port"),
        ("permitopen=\"localhost:ssh\"", "permitopen", "invalid permission port"),
        ("permitopen=\"localhost:+22\"", "permitopen", "invalid permission port"),
        ("permitopen=\"[::1]\"", "permitopen", "invalid permission port"),
        ("permitopen=\"[::1\"", "permitopen", "invalid permission hostname"),
        ("permitopen=\"[::1]x:22\"", "permitopen", "invalid permission hostname"),
        ("permitopen=\"::1:22\"", "permitopen", "invalid permission port"),
        ("permitlisten=\"x\"", "permitlisten", "invalid permission port"),
        ("environment=\"NOEQUALS\"", "environment", "invalid environment string"),
        ("environment=\"=x\"", "environment", "invalid environment string"),
        ("environment=\"A-B=x\"", "environment", "invalid environment string"),
        ("expiry-time=\"2030\"", "expiry-time", "invalid expires time"),
        ("expiry-time=\"20300231\"", "expiry-time", "invalid expires time"),
        ("expiry-time=\"203001011260\"", "expiry-time", "invalid expires time"),
        ("expiry-time=\"19700101Z\"", "expiry-time", "invalid expires time"),
        ("expiry-time=\"tomorrow\"", "expiry-time", "invalid expires time"),
        ("no-pty,", "no-pty", "unexpected end-of-options"),
    ];
    for &(options, option, reason) in cases {
        let e = refused(options);
        assert_eq!(e.line(), 1, "{options}");
        assert_eq!(e.option(), Some(option), "{options}");
        match e.kind() {
            ParseErrorKind::InvalidOption(o) => assert_eq!(o.reason(), reason, "{options}"),
            other => panic!("{options}: {other:?}"),
        }
        assert!(e.to_string().starts_with("line 1: option `"), "{e}");
    }
}

#[test]
fn refuses_malformed_lines() {
    let (_dir, key) = ed25519();
    let (key_type, base64) = key.split_once(' ').unwrap();
    let base64 = base64.split(' ').next().unwrap();
    let cases: Vec<(String, ParseErrorKind)> = vec![
        (format!("command=\"echo {key}"), ParseErrorKind::UnterminatedQuote),
        ("no-pty".to_owned(), ParseErrorKind::MissingKey),
        (format!("no-pty {key_type}"), ParseErrorKind::MissingKey),
        (format!("{key_type}-cert-v01@openssh.com {base64}"), ParseErrorKind::Certificate),
    ];
    for (line, kind) in cases {
        let e = AuthorizedKeys::parse(&format!("\n{line}\n")).unwrap_err();
        assert_eq!((e.line(), e.kind()), (2, &kind), "{line}");
    }
    // Broken base64, and a key whose type does not match its data.
    for line in [format!("{key_type} AAAA{base64}"), format!("ssh-rsa {base64}")] {
        let e = AuthorizedKeys::parse(&line).unwrap_err();
        assert!(matches!(e.kind(), ParseErrorKind::InvalidKey(_)), "{line}: {e:?}");
    }
    // A key type misspelt reads as options, as in sshd.
    let e = AuthorizedKeys::parse(&format!("ssh-ed25519x {base64}")).unwrap_err();
    assert_eq!(e.option(), Some("ssh-ed25519x"));
}

#[test]
fn lenient_parse_keeps_good_lines_and_lists_bad_ones() {
    let (_dir, key) = ed25519();
    let file = format!("{key}\nfrobnicate {key}\n#x\ntunnel=\"0\" {key}\nrestrict {key}\n");
    let keys = AuthorizedKeys::parse_lenient(&file);
    assert_eq!(keys.entries().iter().map(|e| e.line).collect::<Vec<_>>(), vec![1, 5]);
    let errors: Vec<(usize, Option<&str>)> = keys.errors().iter().map(|e| (e.line(), e.option())).collect();
    assert_eq!(errors, vec![(2, Some("frobnicate")), (4, Some("tunnel"))]);
    assert_eq!(AuthorizedKeys::parse(&file).unwrap_err().line(), 2);
}

#[test]
fn read_refuses_oversized_files_and_reports_non_utf8_lines() {
    let (dir, key) = ed25519();
    let path = dir.path().join("authorized_keys");
    let mut bytes = format!("{key}\n").into_bytes();
    bytes.extend_from_slice(b"command=\"\xff\" ");
    bytes.extend_from_slice(key.as_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let keys = AuthorizedKeys::read(&path).unwrap();
    assert_eq!(keys.entries().len(), 1);
    assert_eq!((keys.errors()[0].line(), keys.errors()[0].kind()), (2, &ParseErrorKind::NotUtf8));

    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_FILE_LEN + 1).unwrap();
    let e = AuthorizedKeys::read(&path).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    std::fs::File::create(&path).unwrap().set_len(MAX_FILE_LEN).unwrap();
    // At the limit the file is read: one line of NUL bytes, one error.
    let keys = AuthorizedKeys::read(&path).unwrap();
    assert_eq!((keys.entries().len(), keys.errors().len()), (0, 1));
}

#[test]
fn restrict_turns_everything_off_unless_turned_back_on_after_it() {
    let all = |o: &KeyOptions| {
        [
            o.allows_pty(),
            o.allows_port_forwarding(),
            o.allows_agent_forwarding(),
            o.allows_x11_forwarding(),
            o.allows_user_rc(),
        ]
    };
    let parse = |s: &str| s.parse::<KeyOptions>().unwrap();
    assert_eq!(all(&parse("")), [true; 5]);
    assert_eq!(all(&parse("restrict")), [false; 5]);
    assert_eq!(all(&parse("restrict,pty")), [true, false, false, false, false]);
    assert_eq!(all(&parse("pty,restrict")), [false; 5]);
    assert_eq!(
        all(&parse("restrict,port-forwarding,agent-forwarding,X11-forwarding,user-rc")),
        [false, true, true, true, true]
    );
    assert_eq!(all(&parse("no-pty,no-X11-forwarding")), [false, true, true, false, true]);
    assert_eq!(all(&parse("no-pty,pty")), [true; 5]);
    assert_eq!(parse("pty,restrict"), parse("restrict"));
    // `restrict` does not lift a forced command or other limits.
    let o = parse(r#"command="true",restrict,pty"#);
    assert_eq!(o.command.as_deref(), Some("true"));
}

#[test]
fn from_matches_networks_wildcards_and_negations() {
    let o: KeyOptions =
        r#"from="192.0.2.0/24,!192.0.2.7,10.*.1.?,2001:db8::/32,!2001:db8::bad,::1,*.example.com""#.parse().unwrap();
    for (addr, allowed) in [
        ("192.0.2.1", true),
        ("192.0.2.255", true),
        ("192.0.2.7", false),
        ("192.0.3.1", false),
        ("10.20.1.5", true),
        ("10.20.1.55", false),
        ("2001:db8::1", true),
        ("2001:db8::bad", false),
        ("2001:db9::1", false),
        ("::1", true),
        ("::ffff:192.0.2.1", true),
        ("::ffff:192.0.2.7", false),
        ("127.0.0.1", false),
    ] {
        assert_eq!(o.from_allows(ip(addr)), allowed, "{addr}");
    }
    // A negation alone allows nobody (no positive match), as in OpenSSH.
    let only_not: KeyOptions = r#"from="!10.0.0.1""#.parse().unwrap();
    assert!(!only_not.from_allows(ip("10.0.0.2")));
    // Host names never match an address; wildcards ignore case.
    let names: KeyOptions = r#"from="localhost,*.EXAMPLE.com""#.parse().unwrap();
    assert!(!names.from_allows(ip("127.0.0.1")));
    let v6: KeyOptions = r#"from="2001:DB8::*""#.parse().unwrap();
    assert!(v6.from_allows(ip("2001:db8::5")));
    assert!(KeyOptions::default().from_allows(ip("203.0.113.9")));
}

#[test]
fn expired_after_the_named_second() {
    let o: KeyOptions = r#"expiry-time="20300101000000Z""#.parse().unwrap();
    let at = UNIX_EPOCH + Duration::from_secs(1_893_456_000);
    assert!(!o.expired(at - Duration::from_secs(1)));
    assert!(!o.expired(at + Duration::from_millis(999)));
    assert!(o.expired(at + Duration::from_secs(1)));
    let past: KeyOptions = r#"expiry-time="20000101""#.parse().unwrap();
    assert!(past.expired(SystemTime::now()));
    assert!(!KeyOptions::default().expired(SystemTime::now()));
}

#[test]
fn permitopen_and_permitlisten_limit_forwarding() {
    let o: KeyOptions =
        r#"permitopen="db:5432",permitopen="[::1]:*",permitlisten="8080",permitlisten="LOCAL*:9000""#.parse().unwrap();
    assert!(o.permits_open("db", 5432));
    assert!(!o.permits_open("db", 5433));
    assert!(!o.permits_open("DB", 5432));
    assert!(o.permits_open("::1", 1));
    assert!(!o.permits_open("127.0.0.1", 1));
    assert!(o.permits_listen("0.0.0.0", 8080));
    assert!(!o.permits_listen("0.0.0.0", 8081));
    assert!(!o.permits_listen("localhost", 9000)); // the pattern is not lowercased
    let o: KeyOptions = r#"permitlisten="local*:9000""#.parse().unwrap();
    assert!(o.permits_listen("LocalHost", 9000));
    let any: KeyOptions = "".parse().unwrap();
    assert!(any.permits_open("anything", 1) && any.permits_listen("", 2));
    let none: KeyOptions = r#"no-port-forwarding,permitopen="db:5432""#.parse().unwrap();
    assert!(!none.permits_open("db", 5432));
}

#[test]
fn lists_are_bounded_as_in_openssh() {
    let many = vec![r#"permitopen="h:1""#; MAX_PERMITS].join(",");
    assert_eq!(many.parse::<KeyOptions>().unwrap().permitopen.len(), MAX_PERMITS);
    let e = format!(r#"{many},permitopen="h:2""#).parse::<KeyOptions>().unwrap_err();
    assert_eq!(e.reason(), "too many permission directives");
    let env: Vec<String> = (0..=MAX_ENVIRONMENT).map(|i| format!(r#"environment="V{i}=x""#)).collect();
    let e = env.join(",").parse::<KeyOptions>().unwrap_err();
    assert_eq!(e.reason(), "too many environment strings");
}

#[test]
fn display_writes_what_parses_back() {
    let text = r#"restrict,cert-authority,pty,no-agent-forwarding,command="say \"hi\", ok",principals="a,b",from="10.0.0.0/8,!*.x",expiry-time="20300101000000Z",environment="A=b c",permitopen="[::1]:22",permitlisten="*:*",permitlisten="80""#;
    let o: KeyOptions = text.parse().unwrap();
    assert_eq!(o.to_string(), text);
    assert_eq!(KeyOptions::default().to_string(), "");
}

fn value() -> impl Strategy<Value = String> {
    // Anything OpenSSH can write: no line break, not ending in a backslash.
    "[ -~\u{e9}]{0,12}".prop_filter("ends in a backslash", |s| !s.ends_with('\\'))
}

fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.*?-]{1,10}"
}

fn permit_port() -> impl Strategy<Value = PermitPort> {
    prop_oneof![Just(PermitPort::Any), (1u16..).prop_map(PermitPort::Port)]
}

fn host_pattern() -> impl Strategy<Value = HostPattern> {
    prop_oneof![
        (any::<u32>(), 0u8..=32, any::<bool>()).prop_map(|(a, len, negated)| {
            HostPattern::Network { net: IpNet::new(IpAddr::from(a.to_be_bytes()), len).unwrap().trunc(), negated }
        }),
        (any::<u128>(), 0u8..=128, any::<bool>()).prop_map(|(a, len, negated)| {
            HostPattern::Network { net: IpNet::new(IpAddr::from(a.to_be_bytes()), len).unwrap().trunc(), negated }
        }),
        ("[a-z*?][a-z0-9.*?-]{0,10}", any::<bool>())
            .prop_map(|(pattern, negated)| HostPattern::Wildcard { pattern, negated }),
    ]
}

use ipnet::IpNet;

fn key_options() -> impl Strategy<Value = KeyOptions> {
    let flags = (
        any::<bool>(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    let values = (
        proptest::option::of(proptest::collection::vec(host_pattern(), 1..4)),
        proptest::option::of(value()),
        proptest::collection::vec((word(), permit_port()), 0..3),
        proptest::collection::vec((proptest::option::of(word()), permit_port()), 0..3),
        proptest::collection::btree_map("[A-Z_][A-Z0-9_]{0,6}", value(), 0..3),
        proptest::option::of(1u64..253_402_300_799),
        proptest::option::of(proptest::collection::vec("[a-z0-9@.-]{0,8}", 1..3)),
    );
    (flags, values).prop_map(|(f, v)| {
        let mut o = KeyOptions::default();
        (o.restrict, o.pty, o.port_forwarding, o.agent_forwarding, o.x11_forwarding, o.user_rc) =
            (f.0, f.1, f.2, f.3, f.4, f.5);
        (o.cert_authority, o.no_touch_required, o.verify_required) = (f.6, f.7, f.8);
        o.from = v.0;
        o.command = v.1;
        o.permitopen = v.2.into_iter().map(|(host, port)| PermitOpen { host, port }).collect();
        o.permitlisten = v.3.into_iter().map(|(host, port)| PermitListen { host, port }).collect();
        o.environment = v.4.into_iter().collect();
        o.expiry_time = v.5.map(|s| UNIX_EPOCH + Duration::from_secs(s));
        o.principals = v.6;
        o
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_line_parses_or_errors_without_panicking(line in "(?s).{0,200}") {
        let keys = AuthorizedKeys::parse_lenient(&line);
        prop_assert!(keys.entries().len() + keys.errors().len() <= line.split('\n').count());
        let _ = line.parse::<KeyOptions>();
    }

    #[test]
    fn any_option_soup_parses_or_errors_without_panicking(
        parts in proptest::collection::vec(prop_oneof![
            Just("restrict".to_owned()), Just("no-pty".to_owned()), Just("from=\"".to_owned()),
            Just("permitopen=\"".to_owned()), Just("expiry-time=\"".to_owned()), Just("\\\"".to_owned()),
            Just("\"".to_owned()), Just(",".to_owned()), Just(" ".to_owned()), "[ -~]{0,6}",
        ], 0..12)
    ) {
        let text = parts.concat();
        let _ = text.parse::<KeyOptions>();
        let _ = AuthorizedKeys::parse_lenient(&format!("{text} ssh-ed25519 AAAA"));
    }

    #[test]
    fn options_display_parses_back_to_the_same_value(options in key_options()) {
        let text = options.to_string();
        let parsed: KeyOptions = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed, options, "{}", text);
    }
}
