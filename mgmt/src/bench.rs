//! `bench mgmt`: an in-process server over a real Unix socket; a small
//! operation (`read-counters`) signed and sealed, against the same operation
//! over the same framing with no signing, checks or sealing.

use crate::auth::AuthorizedKeys;
use crate::backend::{MemoryBackend, PrivilegedBackend};
use crate::client::{prepare, RequestOptions};
use crate::host::{AuditLog, Host, HostConfig};
use crate::keys::Identity;
use crate::net::{self, Connection};
use crate::protocol::{Op, OpOutput, Params};
use anyhow::{bail, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub sealed_secs: f64,
    pub plain_secs: f64,
    pub host_only_secs: f64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            sealed_secs: 5.0,
            plain_secs: 2.0,
            host_only_secs: 2.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub sealed_requests: usize,
    pub sealed_requests_per_s: f64,
    pub sealed_p50_us: f64,
    pub sealed_p99_us: f64,
    pub plain_requests_per_s: f64,
    pub plain_p50_us: f64,
    /// Host-side work per sealed request (checks, seal, sign; no I/O), one core.
    pub host_us_per_request: f64,
}

impl BenchReport {
    pub fn human(&self) -> String {
        format!(
            "mgmt bench: read-counters over a Unix socket; server and clients in one process, separate runtimes\n\
             latency = one request in flight; req/s = {IN_FLIGHT} connections in flight\n\
             sealed (Ed25519-signed request, full checks, HPKE-sealed + COSE-signed response, client verify+open):\n\
             \x20 {} latency samples, p50 {:.1} us, p99 {:.1} us; {:.0} req/s\n\
             plain (same framing and backend, no security): p50 {:.1} us; {:.0} req/s\n\
             host-side cost of a sealed request (checks + seal + sign, no I/O): {:.1} us -> {:.0} req/s on one core\n\
             cost of security: {:.1}x fewer requests per second than plain\n",
            self.sealed_requests,
            self.sealed_p50_us,
            self.sealed_p99_us,
            self.sealed_requests_per_s,
            self.plain_p50_us,
            self.plain_requests_per_s,
            self.host_us_per_request,
            1e6 / self.host_us_per_request,
            self.plain_requests_per_s / self.sealed_requests_per_s.max(1e-9),
        )
    }

    /// The single JSON line printed last.
    pub fn json(&self) -> String {
        format!(
            "{{\"sealed_requests_per_s\":{:.1},\"sealed_p50_us\":{:.1},\"sealed_p99_us\":{:.1},\"plain_requests_per_s\":{:.1}}}",
            self.sealed_requests_per_s, self.sealed_p50_us, self.sealed_p99_us, self.plain_requests_per_s
        )
    }
}

/// Connections kept busy in the throughput phases.
pub const IN_FLIGHT: usize = 4;

/// Runs `IN_FLIGHT` client tasks until `secs` have passed; returns requests per second.
async fn throughput<F, Fut>(secs: f64, mk: F) -> Result<f64>
where
    F: Fn(Instant) -> Fut,
    Fut: std::future::Future<Output = Result<usize>> + Send + 'static,
{
    let t = Instant::now();
    let deadline = t + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..IN_FLIGHT).map(|_| tokio::spawn(mk(deadline))).collect();
    let mut n = 0;
    for h in tasks {
        n += h.await??;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

pub fn run_bench(cfg: BenchConfig) -> Result<BenchReport> {
    let dir = std::env::temp_dir().join(format!(
        "offcard-mgmt-bench-{}-{}",
        std::process::id(),
        crate::host::now_ms()
    ));
    std::fs::create_dir_all(&dir)?;
    let res = run_in(&dir, &cfg);
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn run_in(dir: &std::path::Path, cfg: &BenchConfig) -> Result<BenchReport> {
    let host_id = Identity::generate();
    let caller = Identity::generate();
    let host_vk = host_id.ed25519.verifying_key();
    let mut auth = AuthorizedKeys::default();
    auth.allow(
        caller.ed25519.verifying_key().to_bytes(),
        &[Op::ReadCounters],
        "bench",
    );
    let backend: Arc<dyn PrivilegedBackend> = Arc::new(MemoryBackend::new());
    let config = HostConfig {
        nonce_capacity: 1_000_000,
        ..HostConfig::default()
    };
    let host = Arc::new(Host::new(
        host_id,
        auth,
        backend.clone(),
        config,
        AuditLog::open(&dir.join("audit.log"))?,
    ));

    let sealed_sock = dir.join("sealed.sock");
    let plain_sock = dir.join("plain.sock");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
    let server = {
        let (host, backend, s1, s2) = (
            host.clone(),
            backend.clone(),
            sealed_sock.clone(),
            plain_sock.clone(),
        );
        std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let (l1, l2) = match (net::bind(&s1), net::bind(&s2)) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return Ok(());
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let stop = async {
                    let _ = stop_rx.await;
                };
                tokio::select! {
                    r = net::serve_until(l1, host, stop) => r,
                    r = net::serve_plain_until(l2, backend, std::future::pending()) => r,
                }
            })
        })
    };
    ready_rx.recv()??;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        // Sealed path, latency: one request in flight.
        let mut conn = Connection::connect(&sealed_sock).await?;
        for _ in 0..200 {
            conn.call(
                &caller,
                &host_vk,
                &Params::ReadCounters,
                &RequestOptions::default(),
            )
            .await?;
        }
        let mut lat = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs_f64(cfg.sealed_secs / 2.0) {
            let t = Instant::now();
            let out = conn
                .call(
                    &caller,
                    &host_vk,
                    &Params::ReadCounters,
                    &RequestOptions::default(),
                )
                .await?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            if !matches!(out, OpOutput::Counters(_)) {
                bail!("unexpected sealed result {out:?}");
            }
        }
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
        // Sealed path, throughput: IN_FLIGHT connections so the server thread never waits on the client.
        let sealed_rate = throughput(cfg.sealed_secs / 2.0, |deadline| {
            let (sock, caller) = (sealed_sock.clone(), caller.clone());
            async move {
                let mut c = Connection::connect(&sock).await?;
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let out = c
                        .call(
                            &caller,
                            &host_vk,
                            &Params::ReadCounters,
                            &RequestOptions::default(),
                        )
                        .await?;
                    if !matches!(out, OpOutput::Counters(_)) {
                        bail!("unexpected sealed result {out:?}");
                    }
                    n += 1;
                }
                Ok(n)
            }
        })
        .await?;

        // Plain path: latency, then throughput the same way.
        let mut plain = Connection::connect(&plain_sock).await?;
        let frame = [Op::ReadCounters.code()];
        let mut plat = Vec::new();
        let t1 = Instant::now();
        while t1.elapsed() < Duration::from_secs_f64(cfg.plain_secs / 2.0) {
            let t = Instant::now();
            let r = plain.roundtrip(&frame).await?;
            plat.push(t.elapsed().as_secs_f64() * 1e6);
            if !matches!(OpOutput::decode(&r)?, OpOutput::Counters(_)) {
                bail!("unexpected plain result");
            }
        }
        plat.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let plain_rate = throughput(cfg.plain_secs / 2.0, |deadline| {
            let sock = plain_sock.clone();
            async move {
                let mut c = Connection::connect(&sock).await?;
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let r = c.roundtrip(&[Op::ReadCounters.code()]).await?;
                    if !matches!(OpOutput::decode(&r)?, OpOutput::Counters(_)) {
                        bail!("unexpected plain result");
                    }
                    n += 1;
                }
                Ok(n)
            }
        })
        .await?;
        Ok::<_, anyhow::Error>((lat, sealed_rate, plat, plain_rate))
    });
    let _ = stop_tx.send(());
    let (lat, sealed_rate, plat, plain_rate) = report?;
    drop(rt);
    // The server thread exits once the sealed server stops (select! returns).
    let _ = server.join();

    // Host-only cost: prepared requests processed in a loop on this thread.
    let mut host_us = 0.0;
    let batch = 500;
    let mut n = 0usize;
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.host_only_secs);
    while Instant::now() < deadline {
        let reqs: Vec<_> = (0..batch)
            .map(|_| prepare(&caller, &Params::ReadCounters, &RequestOptions::default()))
            .collect::<Result<_, _>>()?;
        let t = Instant::now();
        for r in &reqs {
            let (_, o) = host.process(&r.bytes);
            if o != crate::host::Outcome::Ok {
                bail!("host-only bench: {o:?}");
            }
        }
        host_us += t.elapsed().as_secs_f64() * 1e6;
        n += batch;
    }

    Ok(BenchReport {
        sealed_requests: lat.len(),
        sealed_requests_per_s: sealed_rate,
        sealed_p50_us: percentile(&lat, 0.50),
        sealed_p99_us: percentile(&lat, 0.99),
        plain_requests_per_s: plain_rate,
        plain_p50_us: percentile(&plat, 0.50),
        host_us_per_request: host_us / n.max(1) as f64,
    })
}
