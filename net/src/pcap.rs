//! pcap files (the classic format Wireshark and tcpdump read).

use std::io::Write;

pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Global header: microsecond timestamps, Ethernet link type.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&65535u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        Ok(PcapWriter { out })
    }

    pub fn packet(&mut self, time_ns: u64, data: &[u8]) -> std::io::Result<()> {
        self.out.write_all(&((time_ns / 1_000_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&((time_ns / 1000 % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&(data.len() as u32).to_le_bytes())?;
        self.out.write_all(&(data.len() as u32).to_le_bytes())?;
        self.out.write_all(data)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}
