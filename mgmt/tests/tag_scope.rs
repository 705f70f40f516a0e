//! Tag scope: the tag-scoped operations (program-way-mask, read-tag-counters)
//! run only on tags listed in the caller's `tags=` field; a key without one
//! has no tag access; an out-of-scope tag is refused in the checks, before
//! the backend sees anything.

mod common;
use common::*;
use offcard_mgmt::client::{open_response, prepare, ClientError, PreparedRequest, RequestOptions};
use offcard_mgmt::commands::{self, KeygenOptions};
use offcard_mgmt::{
    AuditLog, AuthorizedKeys, Call, Host, HostConfig, Identity, MemoryBackend, Op, OpOutput,
    Outcome, Params, PrivilegedBackend, TagScope, TAG_COUNTER_NAMES,
};
use std::sync::Arc;

/// A host whose authorized-keys file is `lines` (each with `{key}` replaced by
/// the matching identity's key).
struct Scoped {
    host: Host,
    backend: Arc<MemoryBackend>,
    ids: Vec<Identity>,
}

fn scoped(lines: &[&str]) -> Scoped {
    let ids: Vec<Identity> = lines.iter().map(|_| Identity::generate()).collect();
    let text: String = lines
        .iter()
        .zip(&ids)
        .map(|(l, id)| {
            use base64::Engine;
            let k = base64::engine::general_purpose::STANDARD
                .encode(id.ed25519.verifying_key().to_bytes());
            l.replace("{key}", &k) + "\n"
        })
        .collect();
    let auth = AuthorizedKeys::parse(&text).unwrap();
    let backend = Arc::new(MemoryBackend::new());
    let dynb: Arc<dyn PrivilegedBackend> = backend.clone();
    let host = Host::new(
        Identity::generate(),
        auth,
        dynb,
        HostConfig::default(),
        AuditLog::memory(),
    );
    Scoped { host, backend, ids }
}

fn sealed_to(s: &Scoped) -> RequestOptions {
    RequestOptions {
        seal_params_to: Some(s.host.identity().x25519.public_bytes()),
        ..Default::default()
    }
}

fn call(
    s: &Scoped,
    who: usize,
    p: &Params,
    ro: &RequestOptions,
) -> (PreparedRequest, Outcome, Result<OpOutput, ClientError>) {
    let id = &s.ids[who];
    let req = prepare(id, p, ro).unwrap();
    let (resp, outcome) = s.host.process(&req.bytes);
    let host_vk = s.host.identity().ed25519.verifying_key();
    let opened = open_response(id, &host_vk, &req, &resp);
    (req, outcome, opened)
}

/// Asserts a tag-not-authorized rejection seen by host, client and audit log.
fn assert_tag_rejected(
    s: &Scoped,
    req: &PreparedRequest,
    outcome: &Outcome,
    client: &Result<OpOutput, ClientError>,
    audit_detail: &str,
) {
    match outcome {
        Outcome::Rejected(r) => assert_eq!(r.code(), "tag-not-authorized", "{r}"),
        o => panic!("expected tag-not-authorized, got {o:?}"),
    }
    // The client verified the host's signature on the rejection and reads the reason.
    match client {
        Err(e @ ClientError::Rejected { .. }) => {
            assert_eq!(e.rejection_code(), Some("tag-not-authorized"));
            assert!(
                e.to_string()
                    .contains("not authorized for the requested tag"),
                "{e}"
            );
            // The tag is not echoed in the unsealed rejection (params may have been sealed).
            let ClientError::Rejected { message, .. } = e else {
                unreachable!()
            };
            assert!(
                !message.contains("[tag ") && !message.contains("tags= field]"),
                "{message}"
            );
        }
        other => panic!("client should see tag-not-authorized, got {other:?}"),
    }
    let audit = s.host.audit().lines();
    let last = audit.last().unwrap();
    assert!(
        last.contains("outcome=rejected:tag-not-authorized")
            && last.contains(&hex::encode(req.digest))
            && last.contains(&format!("op={}", req.op))
            && last.contains(audit_detail),
        "audit line {last:?} lacks {audit_detail:?}"
    );
    assert!(
        !audit
            .iter()
            .any(|l| l.contains(&hex::encode(req.digest)) && l.contains("outcome=accepted")),
        "a tag rejection must never reach `accepted`: {audit:?}"
    );
}

const TAG_OPS: &str = "read-counters,program-way-mask,read-tag-counters";

#[test]
fn key_scoped_to_tag_1_uses_tag_1_only() {
    let s = scoped(&[&format!("{{key}} {TAG_OPS} tags=1 # tenant 1")]);
    s.backend.set_tag_counter(1, "hits", 41);
    s.backend.set_tag_counter(1, "occupancy", 3);
    s.backend.set_tag_counter(2, "hits", 99);
    let ro = RequestOptions::default();

    let (_, o, c) = call(&s, 0, &Params::ReadTagCounters { tag: 1 }, &ro);
    assert_eq!(o, Outcome::Ok);
    let expect: Vec<(String, u64)> = TAG_COUNTER_NAMES
        .iter()
        .map(|n| {
            let v = match *n {
                "hits" => 41,
                "occupancy" => 3,
                "way_mask" => MemoryBackend::RESET_WAY_MASK,
                _ => 0,
            };
            (n.to_string(), v)
        })
        .collect();
    assert_eq!(c.unwrap(), OpOutput::Counters(expect));

    let (_, o, c) = call(&s, 0, &Params::ProgramWayMask { tag: 1, mask: 0x0f }, &ro);
    assert_eq!(o, Outcome::Ok);
    assert_eq!(c.unwrap(), OpOutput::Done);
    assert_eq!(s.backend.way_mask(1), Some(0x0f));
    // The new mask reads back with the counters.
    let (_, _, c) = call(&s, 0, &Params::ReadTagCounters { tag: 1 }, &ro);
    match c.unwrap() {
        OpOutput::Counters(v) => assert_eq!(v.last(), Some(&("way_mask".to_string(), 0x0f))),
        o => panic!("{o:?}"),
    }
    let before = s.backend.calls();
    assert_eq!(
        before,
        vec![
            Call::ReadTagCounters { tag: 1 },
            Call::ProgramWayMask { tag: 1, mask: 0x0f },
            Call::ReadTagCounters { tag: 1 },
        ]
    );

    // The same key on tag 2: refused in the checks, in plain and sealed params,
    // for both tag-scoped ops; the backend sees nothing more.
    for ro in [RequestOptions::default(), sealed_to(&s)] {
        for p in [
            Params::ReadTagCounters { tag: 2 },
            Params::ProgramWayMask { tag: 2, mask: 0xf0 },
        ] {
            let (req, o, c) = call(&s, 0, &p, &ro);
            assert_tag_rejected(&s, &req, &o, &c, "[tag 2]");
        }
    }
    assert_eq!(
        s.backend.calls(),
        before,
        "backend called for an out-of-scope tag"
    );
    assert_eq!(s.backend.way_mask(2), None);

    // Its card-wide op is unaffected by the scope.
    let (_, o, _) = call(&s, 0, &Params::ReadCounters, &RequestOptions::default());
    assert_eq!(o, Outcome::Ok);
}

#[test]
fn key_without_tags_field_has_no_tag_access() {
    let s = scoped(&[
        &format!("{{key}} {TAG_OPS} # no tags= field"),
        "{key} * # also none",
    ]);
    for who in [0, 1] {
        // Plain params: refused with the tag named in the audit line.
        for tag in [0u16, 1, 15] {
            let (req, o, c) = call(
                &s,
                who,
                &Params::ReadTagCounters { tag },
                &RequestOptions::default(),
            );
            assert_tag_rejected(&s, &req, &o, &c, &format!("[tag {tag}]"));
            let p = Params::ProgramWayMask { tag, mask: 1 };
            let (req, o, c) = call(&s, who, &p, &RequestOptions::default());
            assert_tag_rejected(&s, &req, &o, &c, &format!("[tag {tag}]"));
        }
        // Sealed params: refused without opening them.
        let (req, o, c) = call(&s, who, &Params::ReadTagCounters { tag: 3 }, &sealed_to(&s));
        assert_tag_rejected(&s, &req, &o, &c, "[key has no tags= field]");
    }
    assert_eq!(s.backend.calls(), vec![]);
    // What the key had before tags existed still works.
    let (_, o, _) = call(&s, 0, &Params::ReadCounters, &RequestOptions::default());
    assert_eq!(o, Outcome::Ok);
    assert_eq!(s.backend.calls(), vec![Call::ReadCounters]);
}

#[test]
fn op_authorization_comes_before_tag_scope() {
    // Tag 1 in scope, but read-tag-counters not among the ops.
    let s = scoped(&["{key} read-counters tags=1"]);
    let (_, o, c) = call(
        &s,
        0,
        &Params::ReadTagCounters { tag: 1 },
        &RequestOptions::default(),
    );
    assert!(
        matches!(o, Outcome::Rejected(ref r) if r.code() == "unauthorized"),
        "{o:?}"
    );
    assert_eq!(c.unwrap_err().rejection_code(), Some("unauthorized"));
    assert_eq!(s.backend.calls(), vec![]);
}

#[test]
fn tag_rejection_spends_no_nonce() {
    // A plain-params tag rejection happens at the authorization step, before
    // the replay cache: the same request runs once the key is granted the tag.
    let s = scoped(&["{key} read-tag-counters tags=1"]);
    let req = prepare(
        &s.ids[0],
        &Params::ReadTagCounters { tag: 2 },
        &RequestOptions::default(),
    )
    .unwrap();
    let (_, o) = s.host.process(&req.bytes);
    assert!(
        matches!(o, Outcome::Rejected(ref r) if r.code() == "tag-not-authorized"),
        "{o:?}"
    );
    let mut a = AuthorizedKeys::default();
    a.allow_tags(
        s.ids[0].ed25519.verifying_key().to_bytes(),
        &[Op::ReadTagCounters],
        TagScope::tags(&[1, 2]),
        "",
    );
    s.host.set_authorized(a);
    let (_, o) = s.host.process(&req.bytes);
    assert_eq!(o, Outcome::Ok);
    assert_eq!(s.backend.calls(), vec![Call::ReadTagCounters { tag: 2 }]);
    // And it is now remembered.
    let (_, o) = s.host.process(&req.bytes);
    assert!(
        matches!(o, Outcome::Rejected(ref r) if r.code() == "replay"),
        "{o:?}"
    );
}

#[test]
fn programmatic_allow_is_deny_by_default_for_tags() {
    let k = Identity::generate().ed25519.verifying_key().to_bytes();
    let mut a = AuthorizedKeys::default();
    a.allow(k, &Op::ALL, "");
    assert!(a.is_allowed(&k, Op::ReadTagCounters));
    assert!((0..=u16::MAX).all(|t| !a.is_tag_allowed(&k, t)));
    a.allow_tags(k, &Op::ALL, TagScope::All, "");
    assert!(a.is_tag_allowed(&k, 0) && a.is_tag_allowed(&k, u16::MAX));
    assert!(!a.is_tag_allowed(&[7; 32], 0), "unknown key");
}

#[test]
fn tags_beyond_the_cache_get_a_clear_error() {
    // With every tag in scope the request passes the checks and the backend,
    // which mirrors the card (16 tags, 8 ways), refuses it with a clear error.
    let s = scoped(&["{key} * tags=*"]);
    let ro = RequestOptions::default();
    for (p, msg) in [
        (
            Params::ReadTagCounters { tag: 16 },
            "tag 16 out of range (the cache has 16 tags",
        ),
        (
            Params::ProgramWayMask { tag: 300, mask: 1 },
            "tag 300 out of range",
        ),
        (
            Params::ProgramWayMask {
                tag: 3,
                mask: 0x1ff,
            },
            "mask 0x1ff names ways beyond the 8",
        ),
    ] {
        let (_, o, c) = call(&s, 0, &p, &ro);
        assert!(
            matches!(o, Outcome::Failed(ref m) if m.contains(msg)),
            "{o:?}"
        );
        match c.unwrap() {
            OpOutput::Failed(m) => assert!(m.contains(msg), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.backend.way_mask(3), None);
    assert_eq!(s.backend.way_mask(300), None);
    // Tag 15, all 8 ways: fine.
    let (_, o, _) = call(
        &s,
        0,
        &Params::ProgramWayMask {
            tag: 15,
            mask: 0xff,
        },
        &ro,
    );
    assert_eq!(o, Outcome::Ok);
    assert_eq!(s.backend.way_mask(15), Some(0xff));
}

#[test]
fn tags_field_format() {
    let k = Identity::generate().ed25519.verifying_key().to_bytes();
    let hk = hex::encode(k);
    let a = AuthorizedKeys::parse(&format!(
        "{hk} program-way-mask,read-tag-counters tags=1,2,5 # t\n"
    ))
    .unwrap();
    assert_eq!(a.tag_scope(&k), Some(&TagScope::tags(&[1, 2, 5])));
    assert!([1, 2, 5].iter().all(|&t| a.is_tag_allowed(&k, t)));
    assert!([0, 3, 4, 6, 15].iter().all(|&t| !a.is_tag_allowed(&k, t)));
    let a = AuthorizedKeys::parse(&format!("{hk} * tags=*")).unwrap();
    assert_eq!(a.tag_scope(&k), Some(&TagScope::All));
    let a = AuthorizedKeys::parse(&format!("{hk} *")).unwrap();
    assert_eq!(a.tag_scope(&k), Some(&TagScope::None));
    for (bad, why) in [
        (format!("{hk} * tags="), "not a decimal number"),
        (format!("{hk} * tags=1,,2"), "not a decimal number"),
        (format!("{hk} * tags=one"), "not a decimal number"),
        (format!("{hk} * tags=-1"), "not a decimal number"),
        (format!("{hk} * tags=70000"), "out of range"),
        (format!("{hk} * tags=1,1"), "listed twice"),
        (format!("{hk} * tag=1"), "optional third field is tags="),
        (format!("{hk} * tags=1 extra"), "unexpected \"extra\""),
        (format!("{hk} * tags=1 tags=2"), "unexpected"),
    ] {
        let e = AuthorizedKeys::parse(&bad).unwrap_err();
        assert!(format!("{e:#}").contains(why), "{bad:?}: {e:#}");
        assert!(format!("{e:#}").contains("line 1"), "{e:#}");
    }
    // Formatting round-trips through the parser.
    for scope in [TagScope::None, TagScope::All, TagScope::tags(&[9, 0, 3])] {
        let line = AuthorizedKeys::format_line_scoped(&k, &[Op::ReadTagCounters], &scope, "c");
        assert_eq!(line.contains("tags="), scope != TagScope::None, "{line}");
        let a = AuthorizedKeys::parse(&line).unwrap();
        assert_eq!(a.tag_scope(&k), Some(&scope), "{line}");
        assert!(a.is_allowed(&k, Op::ReadTagCounters) && !a.is_allowed(&k, Op::ProgramWayMask));
    }
    assert!(AuthorizedKeys::format_line_scoped(
        &k,
        &[Op::ReadTagCounters],
        &TagScope::tags(&[9, 0, 3]),
        ""
    )
    .ends_with(" read-tag-counters tags=0,3,9"));
}

#[test]
fn read_tag_counters_wire_and_cli() {
    assert_eq!(
        Op::from_name("read-tag-counters"),
        Some(Op::ReadTagCounters)
    );
    assert_eq!(Op::ReadTagCounters.code(), 6);
    assert_eq!(Op::from_code(6), Some(Op::ReadTagCounters));
    assert!(Op::ReadTagCounters.is_tag_scoped() && Op::ProgramWayMask.is_tag_scoped());
    assert!(Op::ALL.iter().filter(|o| o.is_tag_scoped()).count() == 2);
    let p = Params::ReadTagCounters { tag: 0x0102 };
    // CBOR {"tag": 258}: map(1), text(3) "tag", uint16 0x0102.
    let cbor = vec![0xa1, 0x63, b't', b'a', b'g', 0x19, 1, 2];
    assert_eq!(p.encode(), cbor);
    assert_eq!(Params::decode(Op::ReadTagCounters, &cbor).unwrap(), p);
    assert!(Params::decode(Op::ReadTagCounters, &cbor[..7]).is_err());
    assert!(Params::decode(Op::ReadTagCounters, &[&cbor[..], &[0]].concat()).is_err());
    // 0x10000 does not fit a tag.
    assert!(Params::decode(Op::ReadTagCounters, &[0xa1, 0x63, b't', b'a', b'g', 0x1a, 0, 1, 0, 0]).is_err());
    let w = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        commands::parse_op(&w("read-tag-counters 5")).unwrap(),
        Params::ReadTagCounters { tag: 5 }
    );
    assert_eq!(
        commands::parse_op(&w("read-tag-counters 0x0f")).unwrap(),
        Params::ReadTagCounters { tag: 15 }
    );
    for bad in [
        "read-tag-counters",
        "read-tag-counters 1 2",
        "read-tag-counters 70000",
        "read-tag-counters x",
    ] {
        assert!(commands::parse_op(&w(bad)).is_err(), "{bad}");
    }
}

#[test]
fn keygen_line_carries_the_tags_field() {
    let k = Identity::generate().ed25519.verifying_key().to_bytes();
    let l = commands::authorized_line(
        &k,
        "read-counters,read-tag-counters",
        Some("1,2"),
        "this key",
    )
    .unwrap();
    assert!(
        l.ends_with(" read-counters,read-tag-counters tags=1,2 # this key"),
        "{l}"
    );
    let l = commands::authorized_line(&k, "*", Some("*"), "").unwrap();
    assert!(l.ends_with(" tags=*"), "{l}");
    assert_eq!(
        AuthorizedKeys::parse(&l).unwrap().tag_scope(&k),
        Some(&TagScope::All)
    );
    let l = commands::authorized_line(&k, "read-counters", None, "this key").unwrap();
    assert!(!l.contains("tags="), "{l}");
    assert!(commands::authorized_line(&k, "read-counter", None, "").is_err());
    assert!(commands::authorized_line(&k, "read-counters", Some("1,x"), "").is_err());

    // The keygen command prints it, and --show prints it for the existing key.
    let dir = tempfile::tempdir().unwrap();
    let o = KeygenOptions {
        dir: dir.path().join("k"),
        ops: "read-tag-counters".into(),
        tags: Some("3".into()),
        ..KeygenOptions::default()
    };
    let out = commands::keygen(&o).unwrap();
    assert!(out.contains("wrote keys to"), "{out}");
    assert!(out.trim_end().ends_with(" read-tag-counters tags=3 # this key"), "{out}");
    let shown = commands::keygen(&KeygenOptions {
        show: true,
        tags: Some("4,5".into()),
        ..o.clone()
    })
    .unwrap();
    assert!(!shown.contains("wrote keys"), "{shown}");
    assert!(shown.trim_end().ends_with(" read-tag-counters tags=4,5 # this key"), "{shown}");
    // --show takes no --force.
    assert!(commands::keygen(&KeygenOptions { show: true, force: true, ..o.clone() }).is_err());
    // A bad --tags generates nothing.
    let d2 = dir.path().join("k2");
    assert!(commands::keygen(&KeygenOptions {
        dir: d2.clone(),
        tags: Some("x".into()),
        ..KeygenOptions::default()
    })
    .is_err());
    assert!(!d2.exists());
}

#[test]
fn operator_fixture_still_has_every_tag() {
    // The shared fixture's operator line carries tags=*; the monitor's has none.
    let f = fixture();
    let ro = RequestOptions::default();
    let r = prepare(&f.caller, &Params::ReadTagCounters { tag: 15 }, &ro).unwrap();
    let (_, o) = f.host.process(&r.bytes);
    assert_eq!(o, Outcome::Ok);
    let r = prepare(&f.reader, &Params::ReadTagCounters { tag: 0 }, &ro).unwrap();
    let (_, o) = f.host.process(&r.bytes);
    assert!(
        matches!(o, Outcome::Rejected(ref r) if r.code() == "unauthorized"),
        "{o:?}"
    );
}
