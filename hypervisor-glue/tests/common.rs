//! Shared helpers for the KVM tests.
#![allow(dead_code)]

/// Print straight to the process's stderr, past the test harness's output capture,
/// so that a skip is visible in every `cargo test` run.
pub fn loud(msg: &str) {
    use std::io::Write;
    let bar = "=".repeat(78);
    let _ = writeln!(std::io::stderr(), "\n{bar}\n{msg}\n{bar}\n");
}

/// Returns false (after a loud SKIPPED message) when /dev/kvm is unusable.
pub fn kvm_or_skip(test: &str) -> bool {
    match offcard_vmm::kvm_available() {
        Ok(()) => true,
        Err(why) => {
            loud(&format!("SKIPPED {test}: {why}. The KVM tests need /dev/kvm."));
            false
        }
    }
}

pub fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("offcard-vmm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 64-bit guest program: increments a counter at 0x200000; every 4096 increments prints
/// '.' on the serial port; when the counter reaches `limit` writes 2 to the debug-exit port.
pub fn counter_program(limit: u32) -> Vec<u8> {
    let mut c = vec![0x48, 0xFF, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00]; // inc qword [0x200000]
    c.extend_from_slice(&[0x48, 0x8B, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00]); // mov rax, [0x200000]
    c.extend_from_slice(&[0xA9, 0xFF, 0x0F, 0x00, 0x00]); // test eax, 0xfff
    c.extend_from_slice(&[0x75, 0xE9]); // jnz 0
    c.extend_from_slice(&[0xB0, 0x2E, 0x66, 0xBA, 0xF8, 0x03, 0xEE]); // mov al,'.'; mov dx,0x3f8; out dx,al
    c.extend_from_slice(&[0x48, 0x3D]);
    c.extend_from_slice(&limit.to_le_bytes()); // cmp rax, limit
    c.extend_from_slice(&[0x72, 0xDA]); // jb 0
    c.extend_from_slice(&[0xB0, 0x02, 0xE6, 0xF4, 0xF4]); // out 0xf4, 2; hlt
    c
}

pub const COUNTER_ADDR: u64 = 0x200000;
pub const CODE_ADDR: u64 = 0x100000;
