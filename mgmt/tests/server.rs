//! End to end over a real Unix socket, keys on disk, the authorized-keys
//! file, the CLI entry points and the benchmark's output format.

mod common;
use common::*;
use offcard_mgmt::commands::{self as cli, KeygenOptions, MgmtOptions, ServeOptions};
use offcard_mgmt::client::{open_response, prepare, ClientError, RequestOptions};
use offcard_mgmt::keys::{ED25519_FILE, PUBLIC_FILE, X25519_FILE};
use offcard_mgmt::net::{self, Connection};
use offcard_mgmt::{
    AuthorizedKeys, Call, Identity, MemoryBackend, Op, OpOutput, Params, PrivilegedBackend,
};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn all_operations_end_to_end_over_unix_socket() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("mgmt.sock");
    f.backend.push_record(0x2000, 64, 1, 0);
    f.backend.push_record(0x3000, 128, 2, 1);
    f.backend.push_record(0x4000, 256, 3, 2);
    f.backend.set_counter("cache.hits", 42);
    rt().block_on(async {
        let listener = net::bind(&sock).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(net::serve_until(listener, f.host.clone(), async {
            let _ = rx.await;
        }));
        let hk = f.host_vk();
        let mut c = Connection::connect(&sock).await.unwrap();
        let o = RequestOptions::default();
        let counters = c.call(&f.caller, &hk, &Params::ReadCounters, &o).await.unwrap();
        assert!(matches!(&counters, OpOutput::Counters(v) if v.contains(&("cache.hits".to_string(), 42))), "{counters:?}");
        assert_eq!(c.call(&f.caller, &hk, &Params::ProgramWayMask { tag: 2, mask: 0x0c }, &o).await.unwrap(), OpOutput::Done);
        assert_eq!(f.backend.way_mask(2), Some(0x0c));
        let pt = Params::ProgramPathTable { tenant: 5, entries: vec![49152, 49153, 49154] };
        assert_eq!(c.call(&f.caller, &hk, &pt, &o).await.unwrap(), OpOutput::Done);
        assert_eq!(f.backend.path_table(5), Some(vec![49152, 49153, 49154]));
        let recs = c.call(&f.caller, &hk, &Params::ReadWriteRecords { max: 2 }, &o).await.unwrap();
        let OpOutput::Bytes(b) = recs else { panic!("{recs:?}") };
        assert_eq!(b.len(), 32);
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 0x3000);
        let mem = c.call(&f.caller, &hk, &Params::ReadHostMemory { addr: 0x1000_1000, len: 4096 }, &o).await.unwrap();
        let OpOutput::Bytes(m) = mem else { panic!() };
        assert_eq!(m.len(), 4096);
        assert_eq!(m[100], f.backend.mem_byte(0x1000_1000 + 100).unwrap());
        // Params sealed to the host.
        let so = RequestOptions { seal_params_to: Some(f.host_x25519()), ..Default::default() };
        assert_eq!(c.call(&f.caller, &hk, &Params::ProgramWayMask { tag: 3, mask: 1 }, &so).await.unwrap(), OpOutput::Done);
        assert_eq!(f.backend.way_mask(3), Some(1));
        // A backend failure comes back sealed as Failed (the request was valid).
        let bad = c.call(&f.caller, &hk, &Params::ReadHostMemory { addr: 0x10, len: 16 }, &o).await.unwrap();
        assert!(matches!(&bad, OpOutput::Failed(m) if m.contains("not mapped")), "{bad:?}");
        // Unauthorized over the socket: refused, nothing ran.
        let before = f.backend.calls().len();
        let e = c.call(&f.reader, &hk, &Params::ProgramWayMask { tag: 9, mask: 1 }, &o).await.unwrap_err();
        assert_eq!(e.downcast_ref::<ClientError>().unwrap().rejection_code(), Some("unauthorized"));
        assert_eq!(f.backend.calls().len(), before);
        assert_eq!(f.backend.way_mask(9), None);
        let audit = f.host.audit().lines();
        assert_eq!(audit.iter().filter(|l| l.contains("outcome=ok")).count(), 6, "{audit:#?}");
        assert_eq!(audit.iter().filter(|l| l.contains("outcome=failed")).count(), 1);
        assert_eq!(audit.iter().filter(|l| l.contains("outcome=rejected:unauthorized")).count(), 1);
        tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    });
}

#[test]
fn oversized_frames_rejected_without_running() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("mgmt.sock");
    rt().block_on(async {
        let listener = net::bind(&sock).unwrap();
        tokio::spawn(net::serve(listener, f.host.clone()));
        let req = prepare(&f.caller, &Params::ProgramWayMask { tag: 1, mask: 1 }, &RequestOptions::default()).unwrap();
        // Header announcing 2 MiB, no body: refused from the header alone, then the connection closes.
        let mut c = Connection::connect(&sock).await.unwrap();
        let resp = c.send_header_only(2 << 20).await.unwrap();
        let e = open_response(&f.caller, &f.host_vk(), &req, &resp).unwrap_err();
        assert_eq!(e.rejection_code(), Some("oversized"), "{e}");
        assert!(e.to_string().contains("2097152 bytes exceeds"), "{e}");
        assert!(c.roundtrip(&req.bytes).await.is_err(), "connection should be closed");
        // A frame within the transport limit but above the request limit.
        let mut c = Connection::connect(&sock).await.unwrap();
        let mut big = req.bytes.clone();
        big.resize(200_000, 0x41);
        let resp = c.roundtrip(&big).await.unwrap();
        let e = open_response(&f.caller, &f.host_vk(), &req, &resp).unwrap_err();
        assert!(matches!(e, ClientError::Unbound(_) | ClientError::Rejected { .. }));
        let p = offcard_mgmt::envelope::verify_envelope(&f.host_vk(), &resp).unwrap();
        assert!(matches!(p.status, offcard_mgmt::envelope::Status::Rejected { ref code, .. } if code == "oversized"));
        assert_eq!(f.backend.calls(), vec![]);
        // The same connection still serves a valid request afterwards.
        assert_eq!(c.call_prepared(&f.caller, &f.host_vk(), &req).await.unwrap(), OpOutput::Done);
        assert_eq!(f.backend.calls(), vec![Call::ProgramWayMask { tag: 1, mask: 1 }]);
    });
}

#[test]
fn keygen_permissions_and_no_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let kd = dir.path().join("keys");
    let p = cli::run_keygen(&kd, false).unwrap();
    let mode = |f: &str| std::fs::metadata(kd.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        std::fs::metadata(&kd).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(mode(ED25519_FILE), 0o600);
    assert_eq!(mode(X25519_FILE), 0o600);
    assert_eq!(mode(PUBLIC_FILE), 0o644);
    let loaded = Identity::load(&kd).unwrap();
    assert_eq!(loaded.public(), p);
    assert_eq!(
        offcard_mgmt::PublicIdentity::load(&kd.join(PUBLIC_FILE)).unwrap(),
        p
    );
    // Refuses to overwrite; keys unchanged.
    let e = cli::run_keygen(&kd, false).unwrap_err();
    assert!(e.to_string().contains("refusing to overwrite"), "{e}");
    assert_eq!(Identity::load(&kd).unwrap().public(), p);
    // Through the keygen command as well.
    let o = KeygenOptions {
        dir: kd.clone(),
        ..KeygenOptions::default()
    };
    assert!(cli::keygen(&o).is_err());
    // --force replaces them, with the same safe modes.
    cli::keygen(&KeygenOptions { force: true, ..o }).unwrap();
    assert_ne!(Identity::load(&kd).unwrap().public(), p);
    assert_eq!(mode(ED25519_FILE), 0o600);
    // A secret readable by others is refused.
    std::fs::set_permissions(
        kd.join(ED25519_FILE),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let e = Identity::load(&kd).err().unwrap();
    assert!(e.to_string().contains("accessible by group/others"), "{e}");
}

#[test]
fn authorized_keys_file_format() {
    let a = Identity::generate().ed25519.verifying_key().to_bytes();
    let b = Identity::generate().ed25519.verifying_key().to_bytes();
    use base64::Engine;
    let text = format!(
        "# operators\n\n{}  read-counters,program-way-mask   # alice's laptop\n  {} *\n",
        hex::encode(a),
        base64::engine::general_purpose::STANDARD.encode(b)
    );
    let k = AuthorizedKeys::parse(&text).unwrap();
    assert_eq!(k.len(), 2);
    assert!(k.is_allowed(&a, Op::ReadCounters) && k.is_allowed(&a, Op::ProgramWayMask));
    assert!(!k.is_allowed(&a, Op::ReadHostMemory));
    assert!(Op::ALL.iter().all(|&o| k.is_allowed(&b, o)));
    assert!(!k.is_allowed(&[9; 32], Op::ReadCounters));
    let ha = hex::encode(a);
    for (bad, why) in [
        (ha.to_string(), "missing operation list"),
        (format!("{ha} read-counter"), "unknown operation"),
        (format!("{ha} read-counters extra"), "unexpected"),
        (
            format!("{} read-counters", &ha[..62]),
            "neither 64 hex digits nor base64",
        ),
        (format!("{ha} read-counters\n{ha} *"), "listed twice"),
        ("AAAA read-counters".to_string(), "not 32 bytes"),
    ] {
        let e = AuthorizedKeys::parse(&bad).unwrap_err();
        assert!(format!("{e:#}").contains(why), "{bad:?}: {e:#}");
    }
}

#[test]
fn cli_mgmt_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host_keys = d.join("host");
    let client_keys = d.join("client");
    cli::run_keygen(&host_keys, false).unwrap();
    let client = cli::run_keygen(&client_keys, false).unwrap();
    std::fs::write(
        d.join("authorized_keys"),
        format!(
            "{}\n",
            AuthorizedKeys::format_line(
                &client.ed25519.to_bytes(),
                &[Op::ReadCounters, Op::ProgramPathTable],
                "cli test"
            )
        ),
    )
    .unwrap();
    let opts = ServeOptions {
        socket: d.join("mgmt.sock"),
        keys: host_keys.clone(),
        authorized: d.join("authorized_keys"),
        audit: d.join("audit.log"),
        window_secs: 30,
    };
    let backend = Arc::new(MemoryBackend::new());
    let dynb: Arc<dyn PrivilegedBackend> = backend.clone();
    let host = Arc::new(cli::load_host(&opts, dynb).unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let sock = opts.socket.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        rt().block_on(async move {
            let l = net::bind(&sock).unwrap();
            ready_tx.send(()).unwrap();
            net::serve_until(l, host, async {
                let _ = rx.await;
            })
            .await
        })
    });
    ready_rx.recv().unwrap();
    // What `offcard mgmt <op> [args] --socket .. --keys .. --host-pub .. [--seal-params]` runs.
    let mo = MgmtOptions {
        socket: opts.socket.clone(),
        keys: client_keys.clone(),
        host_pub: Some(host_keys.join(PUBLIC_FILE)),
        seal_params: false,
    };
    let w = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let out = cli::run_mgmt(&mo, &cli::parse_op(&w("read-counters")).unwrap()).unwrap();
    assert!(cli::format_output(&out).lines().count() > 0, "{out:?}");
    let sealed = MgmtOptions { seal_params: true, ..mo.clone() };
    let out = cli::run_mgmt(&sealed, &cli::parse_op(&w("program-path-table 7 1,2,0x10")).unwrap()).unwrap();
    assert_eq!(cli::format_output(&out), "ok\n");
    assert_eq!(backend.path_table(7), Some(vec![1, 2, 16]));
    let e = cli::run_mgmt(&mo, &cli::parse_op(&w("program-way-mask 1 0xff")).unwrap()).unwrap_err();
    assert!(format!("{e:#}").contains("[unauthorized]"), "{e:#}");
    assert_eq!(backend.way_mask(1), None);
    // Wrong host public key: the client refuses the answer.
    let wrong = MgmtOptions { host_pub: Some(client_keys.join(PUBLIC_FILE)), ..mo.clone() };
    let e = cli::run_mgmt(&wrong, &cli::parse_op(&w("read-counters")).unwrap()).unwrap_err();
    assert!(
        format!("{e:#}").contains("not signed by the expected host key"),
        "{e:#}"
    );
    assert!(cli::parse_op(&w("no-such-op")).is_err());
    tx.send(()).unwrap();
    server.join().unwrap().unwrap();
    let audit = std::fs::read_to_string(d.join("audit.log")).unwrap();
    assert_eq!(audit.lines().count(), 7, "{audit}"); // 3 accepted+ok pairs, 1 rejection
    assert_eq!(
        std::fs::metadata(d.join("audit.log"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    for l in audit.lines() {
        assert!(
            l.contains(" digest=")
                && l.contains(" caller=")
                && l.contains(" op=")
                && l.contains(" outcome="),
            "{l}"
        );
    }
}

#[test]
fn bench_prints_json_last() {
    let r = offcard_mgmt::bench::run_bench(offcard_mgmt::bench::BenchConfig {
        sealed_secs: 0.2,
        plain_secs: 0.1,
        host_only_secs: 0.1,
    })
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    for k in [
        "sealed_requests_per_s",
        "sealed_p50_us",
        "sealed_p99_us",
        "plain_requests_per_s",
    ] {
        assert!(v[k].as_f64().unwrap() > 0.0, "{k}");
    }
    assert!(v["sealed_p99_us"].as_f64() >= v["sealed_p50_us"].as_f64());
    assert!(!r.json().contains('\n'));
    assert!(r.human().contains("req/s"));
}

#[test]
fn authorized_keys_reload_and_fail_closed() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authorized_keys");
    let ro = RequestOptions::default();
    let way = Params::ProgramWayMask { tag: 4, mask: 2 };
    // Grant the stranger program-way-mask on tag 4.
    let line = AuthorizedKeys::format_line_scoped(
        &f.stranger.ed25519.verifying_key().to_bytes(),
        &[Op::ProgramWayMask],
        &offcard_mgmt::TagScope::tags(&[4]),
        "",
    );
    std::fs::write(&path, format!("{line}\n")).unwrap();
    assert_eq!(cli::reload_authorized(&f.host, &path).unwrap(), 1);
    let r = prepare(&f.stranger, &way, &ro).unwrap();
    assert_eq!(
        open_response(&f.stranger, &f.host_vk(), &r, &f.host.handle(&r.bytes)).unwrap(),
        OpOutput::Done
    );
    // The old operator is no longer listed.
    let r = prepare(&f.caller, &Params::ReadCounters, &ro).unwrap();
    let e = open_response(&f.caller, &f.host_vk(), &r, &f.host.handle(&r.bytes)).unwrap_err();
    assert_eq!(e.rejection_code(), Some("unauthorized"));
    // A broken edit revokes everybody.
    std::fs::write(&path, format!("{line}\nthis is not a key\n")).unwrap();
    assert!(cli::reload_authorized(&f.host, &path).is_err());
    let r = prepare(&f.stranger, &way, &ro).unwrap();
    let e = open_response(&f.stranger, &f.host_vk(), &r, &f.host.handle(&r.bytes)).unwrap_err();
    assert_eq!(e.rejection_code(), Some("unauthorized"));
    assert_eq!(
        f.backend.calls(),
        vec![Call::ProgramWayMask { tag: 4, mask: 2 }]
    );
}

#[test]
fn serve_refuses_to_start_without_valid_keys_or_authorized_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut opts = ServeOptions {
        socket: d.join("s.sock"),
        keys: d.join("keys"),
        authorized: d.join("authorized_keys"),
        audit: d.join("audit.log"),
        window_secs: 30,
    };
    let b: Arc<dyn PrivilegedBackend> = Arc::new(MemoryBackend::new());
    let err = |o: &ServeOptions| {
        format!(
            "{:#}",
            cli::load_host(o, b.clone()).err().expect("host started")
        )
    };
    assert!(err(&opts).contains("run `offcard keygen`"));
    cli::run_keygen(&opts.keys, false).unwrap();
    assert!(err(&opts).contains("authorized-keys file"));
    std::fs::write(&opts.authorized, "garbage line\n").unwrap();
    assert!(err(&opts).contains("line 1"));
    std::fs::write(&opts.authorized, "# nobody yet\n").unwrap();
    assert!(cli::load_host(&opts, b.clone()).is_ok());
    opts.keys = d.join("missing");
    assert!(err(&opts).contains("loading host keys"));
}

#[test]
fn client_refuses_oversized_response_frame() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("evil.sock");
    rt().block_on(async {
        let l = net::bind(&sock).unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(&(64u32 << 20).to_be_bytes()).await;
        });
        let f = fixture();
        let mut c = Connection::connect(&sock).await.unwrap();
        let e = c
            .call(
                &f.caller,
                &f.host_vk(),
                &Params::ReadCounters,
                &RequestOptions::default(),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
    });
}
