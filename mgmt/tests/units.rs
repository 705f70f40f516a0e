//! Smaller pieces: replay cache bounds and expiry, time formatting, CLI op
//! parsing, canonical round trips.

use offcard_mgmt::commands::parse_op;
use offcard_mgmt::host::format_utc;
use offcard_mgmt::protocol::{OpOutput, Params, MAX_PATH_ENTRIES};
use offcard_mgmt::replay::{NonceCache, NonceCheck};

#[test]
fn nonce_cache_detects_replays_expires_and_stays_bounded() {
    let mut c = NonceCache::new(3);
    assert_eq!(c.check_and_insert(b"a", 1000, 2000), NonceCheck::Fresh);
    assert_eq!(c.check_and_insert(b"a", 1500, 2500), NonceCheck::Replayed);
    assert_eq!(c.check_and_insert(b"b", 1500, 2500), NonceCheck::Fresh);
    assert_eq!(c.check_and_insert(b"c", 1500, 9000), NonceCheck::Fresh);
    // Full of live nonces: refuse rather than forget one.
    assert_eq!(c.check_and_insert(b"d", 1600, 9000), NonceCheck::Full);
    assert_eq!(c.check_and_insert(b"a", 1600, 9000), NonceCheck::Replayed);
    // Once "a" and "b" expire there is room again, and "a" is forgotten
    // (the freshness window refuses such an old request anyway).
    assert_eq!(c.check_and_insert(b"d", 2600, 9000), NonceCheck::Fresh);
    assert_eq!(c.len(), 2);
    assert_eq!(c.check_and_insert(b"c", 2600, 9000), NonceCheck::Replayed);
    // Out-of-order expiries: a long-lived entry at the front does not hide expired ones behind it.
    let mut c = NonceCache::new(2);
    assert_eq!(c.check_and_insert(b"long", 0, 100_000), NonceCheck::Fresh);
    assert_eq!(c.check_and_insert(b"short", 0, 10), NonceCheck::Fresh);
    assert_eq!(c.check_and_insert(b"new", 20, 1000), NonceCheck::Fresh);
    assert_eq!(c.check_and_insert(b"long", 30, 1000), NonceCheck::Replayed);
}

#[test]
fn utc_formatting() {
    assert_eq!(format_utc(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert_eq!(
        format_utc(1_795_651_200_000 + 3_723_004),
        "2026-11-26T01:02:03.004Z"
    );
}

fn w(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn cli_op_parsing() {
    assert_eq!(parse_op(&w("read-counters")).unwrap(), Params::ReadCounters);
    assert_eq!(
        parse_op(&w("program-way-mask 3 0x0f")).unwrap(),
        Params::ProgramWayMask { tag: 3, mask: 15 }
    );
    assert_eq!(
        parse_op(&w("program-path-table 7 1,2,0x10")).unwrap(),
        Params::ProgramPathTable {
            tenant: 7,
            entries: vec![1, 2, 16]
        }
    );
    assert_eq!(
        parse_op(&w("read-write-records")).unwrap(),
        Params::ReadWriteRecords { max: 64 }
    );
    assert_eq!(
        parse_op(&w("read-host-memory 0x10000000 256")).unwrap(),
        Params::ReadHostMemory {
            addr: 0x1000_0000,
            len: 256
        }
    );
    for bad in [
        "",
        "format-disk",
        "read-counters 1",
        "program-way-mask 70000 1",
        "program-way-mask 1",
        "read-host-memory 0 99999999",
        "read-host-memory 0xffffffffffffffff 16",
        "read-write-records 1000000",
    ] {
        assert!(parse_op(&w(bad)).is_err(), "{bad:?} accepted");
    }
    let too_many = vec!["1"; MAX_PATH_ENTRIES + 1].join(",");
    assert!(parse_op(&w(&format!("program-path-table 1 {too_many}"))).is_err());
}

#[test]
fn canonical_round_trips() {
    for p in [
        Params::ReadCounters,
        Params::ProgramWayMask {
            tag: u16::MAX,
            mask: u64::MAX,
        },
        Params::ProgramPathTable {
            tenant: 1,
            entries: vec![0; MAX_PATH_ENTRIES],
        },
        Params::ReadWriteRecords { max: 0 },
        Params::ReadHostMemory { addr: 5, len: 7 },
    ] {
        let e = p.encode();
        assert_eq!(Params::decode(p.op(), &e).unwrap(), p);
        let mut t = e.clone();
        t.push(0);
        assert!(
            Params::decode(p.op(), &t).is_err(),
            "trailing byte accepted for {p:?}"
        );
    }
    for o in [
        OpOutput::Counters(vec![("x".into(), 1)]),
        OpOutput::Done,
        OpOutput::Bytes(vec![]),
        OpOutput::Failed("e".into()),
    ] {
        let e = o.encode();
        assert_eq!(OpOutput::decode(&e).unwrap(), o);
        assert!(OpOutput::decode(&e[..e.len() - 1]).is_err() || matches!(o, OpOutput::Done));
    }
}
