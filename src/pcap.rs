//! What the demo and `bench encap` put on the card's Ethernet port, as pcap
//! files Wireshark and tcpdump read: a recording wrapper around the demo's
//! far end of the port, and the inner (tenant) frames with real UDP and TCP
//! checksums so a capture's checksums can all be verified.
//!
//! The card's outer UDP checksum is zero: RFC 8926 section 3.3 allows a zero
//! UDP checksum for Geneve over IPv4 (the inner frame carries its own
//! checksums, and the outer IPv4 header has one); see docs/encap.md.

use anyhow::{Context, Result};
use offcard_driver::{CardTransport, DmaCard};
use offcard_net::geneve::internet_checksum;
use offcard_net::pcap::PcapWriter;
use offcard_testbench::driver_suite::FarEnd;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

/// The transport protocol of an inner frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

/// One's-complement sum of `data` as RFC 1071 adds it (not complemented),
/// so the pseudo-header and the segment can be summed separately.
fn sum16(data: &[u8]) -> u32 {
    data.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum()
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The UDP or TCP checksum over the IPv4 pseudo-header and `segment` (its
/// checksum field zero). A UDP result of 0 is sent as 0xffff (RFC 768: zero
/// means "no checksum").
pub fn l4_checksum(src: [u8; 4], dst: [u8; 4], proto: u8, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    let c = fold(sum16(&pseudo) + sum16(segment));
    if proto == 17 && c == 0 {
        0xffff
    } else {
        c
    }
}

/// An Ethernet/IPv4/UDP or TCP frame of `len` bytes (at least the headers)
/// from `src:sport` to `dst:dport`, with valid IPv4, UDP and TCP checksums.
/// A TCP frame is a data segment (ACK|PSH) with sequence number `seq`.
pub fn inner_frame(proto: Proto, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, seq: u32, len: usize) -> Vec<u8> {
    let l4_hdr = match proto {
        Proto::Udp => 8,
        Proto::Tcp => 20,
    };
    let mut f = vec![0u8; len.max(34 + l4_hdr)];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (f.len() - 14) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[18..20].copy_from_slice(&(seq as u16).to_be_bytes()); // identification
    f[22] = 64;
    f[23] = if proto == Proto::Udp { 17 } else { 6 };
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    let c = internet_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    for (i, b) in f[34 + l4_hdr..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_add(seq) as u8;
    }
    match proto {
        Proto::Udp => {
            f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
        }
        Proto::Tcp => {
            f[38..42].copy_from_slice(&seq.to_be_bytes());
            f[42..46].copy_from_slice(&1u32.to_be_bytes()); // acknowledgment number
            f[46] = 5 << 4; // data offset: 5 words, no options
            f[47] = 0x18; // ACK | PSH
            f[48..50].copy_from_slice(&65535u16.to_be_bytes()); // window
        }
    }
    let ck_at = if proto == Proto::Udp { 40 } else { 50 };
    let c = l4_checksum(src, dst, f[23], &f[34..]);
    f[ck_at..ck_at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

/// A pcap file of frames, timestamped from `start`.
pub struct Capture {
    w: PcapWriter<BufWriter<File>>,
    start: Instant,
    pub frames: usize,
}

impl Capture {
    pub fn create(path: &Path) -> Result<Capture> {
        let f = File::create(path).with_context(|| format!("creating the pcap file {}", path.display()))?;
        Ok(Capture { w: PcapWriter::new(BufWriter::new(f))?, start: Instant::now(), frames: 0 })
    }

    /// Records `frame` at `time_ns` (e.g. the card's clock), or at the wall
    /// time since the capture started.
    pub fn frame(&mut self, time_ns: Option<u64>, frame: &[u8]) -> Result<()> {
        let t = time_ns.unwrap_or_else(|| self.start.elapsed().as_nanos() as u64);
        self.w.packet(t, frame)?;
        self.frames += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<usize> {
        self.w.flush()?;
        Ok(self.frames)
    }
}

/// The card's clock in ns (125 MHz), when the carrier can read it.
fn card_time_ns<T: CardTransport>(dma: &mut DmaCard<T>) -> Option<u64> {
    let hz = offcard_regs::net::CARD_CLOCK_HZ;
    dma.transport().card_cycles().map(|c| (c as u128 * 1_000_000_000 / hz as u128) as u64)
}

/// A far end of the card's port that records both directions: what the
/// card sends (collected) and what is sent to it (injected), malformed
/// test packets included, timestamped with the card's clock.
pub struct Recording<'a, P> {
    pub inner: P,
    pub capture: &'a mut Capture,
    /// The first write error (recording must not change what the demo does).
    pub error: Option<anyhow::Error>,
}

impl<P> Recording<'_, P> {
    fn record(&mut self, t: Option<u64>, f: &[u8]) {
        if self.error.is_none() {
            if let Err(e) = self.capture.frame(t, f) {
                self.error = Some(e);
            }
        }
    }
}

impl<T: CardTransport, P: FarEnd<T>> FarEnd<T> for Recording<'_, P> {
    fn inject(&mut self, dma: &mut DmaCard<T>, frame: &[u8]) {
        let t = card_time_ns(dma);
        self.record(t, frame);
        self.inner.inject(dma, frame);
    }
    fn collect(&mut self, dma: &mut DmaCard<T>, n: usize) -> Vec<Vec<u8>> {
        let got = self.inner.collect(dma, n);
        let t = card_time_ns(dma);
        for f in &got {
            self.record(t, f);
        }
        got
    }
    fn idle(&mut self, dma: &mut DmaCard<T>, cycles: u64) {
        self.inner.idle(dma, cycles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked against etherparse, an implementation that shares no code
    /// with this one, for both protocols and odd lengths.
    #[test]
    fn inner_frames_carry_checksums_etherparse_accepts() {
        for (proto, len) in [(Proto::Udp, 42), (Proto::Udp, 201), (Proto::Tcp, 54), (Proto::Tcp, 333)] {
            let f = inner_frame(proto, [10, 0, 1, 1], [10, 0, 1, 2], 40000, 7, 0x1234_5678, len);
            assert_eq!(f.len(), len);
            let (ip, rest) = etherparse::Ipv4Header::from_slice(&f[14..]).unwrap();
            assert_eq!(ip.header_checksum, ip.calc_header_checksum());
            match proto {
                Proto::Udp => {
                    let (u, payload) = etherparse::UdpHeader::from_slice(rest).unwrap();
                    assert_ne!(u.checksum, 0);
                    assert_eq!(u.checksum, u.calc_checksum_ipv4(&ip, payload).unwrap());
                }
                Proto::Tcp => {
                    let (t, payload) = etherparse::TcpHeader::from_slice(rest).unwrap();
                    assert_eq!(t.checksum, t.calc_checksum_ipv4(&ip, payload).unwrap());
                    assert_eq!(t.sequence_number, 0x1234_5678);
                }
            }
        }
    }
}
