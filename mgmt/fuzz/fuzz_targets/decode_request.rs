//! Request, params and result decoders: no panic, and anything accepted is canonical.
#![no_main]
use libfuzzer_sys::fuzz_target;
use offcard_mgmt::protocol::{Op, OpOutput, Params, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        assert_eq!(r.encode(), data);
        let _ = r.verify_signature();
    }
    if let Some((&c, rest)) = data.split_first() {
        if let Some(op) = Op::from_code(c) {
            if let Ok(p) = Params::decode(op, rest) {
                assert_eq!(p.encode(), rest);
            }
        }
    }
    if let Ok(o) = OpOutput::decode(data) {
        assert_eq!(o.encode(), data);
    }
    let _ = offcard_mgmt::AuthorizedKeys::parse(&String::from_utf8_lossy(data));
});
