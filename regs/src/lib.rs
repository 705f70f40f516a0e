//! `offcard-regs`: the card's register map, record formats, configuration-space
//! layout and every constant hardware and host share. No dependencies.
//!
//! This is the single source of truth: the HDL blocks (`offcard-hdl`) take
//! their decode constants and reset values from here (as `Constant` fields),
//! the driver (`offcard-driver`) uses the same names for its accesses and the
//! same [`formats`] for what the card writes into host memory, and
//! `docs/registers.md` is generated from the register tables (a test checks
//! the committed file matches).

pub mod formats;
pub mod net;

/// PCI vendor ID. 0xF0CA is not assigned by the PCI-SIG; it marks an
/// experimental device. A real product replaces it here and nowhere else.
pub const VENDOR_ID: u16 = 0xF0CA;
/// PCI device ID of the Offcard function.
pub const DEVICE_ID: u16 = 0x0C01;
pub const SUBSYSTEM_VENDOR_ID: u16 = VENDOR_ID;
pub const SUBSYSTEM_ID: u16 = 0x0001;
pub const REVISION_ID: u8 = 0x01;
/// Class code 02/00/00: network controller, Ethernet (the card carries VM traffic).
pub const CLASS_CODE: u32 = 0x02_00_00;

/// BAR0 is a 64-bit, non-prefetchable memory BAR of this size.
pub const BAR0_SIZE_LOG2: u32 = 16;
pub const BAR0_SIZE: u64 = 1 << BAR0_SIZE_LOG2;

/// Magic read at `ID`: ASCII "OFFC".
pub const CARD_MAGIC: u32 = 0x4F46_4643;
pub const VERSION_MAJOR: u32 = 0;
pub const VERSION_MINOR: u32 = 1;
pub const VERSION_PATCH: u32 = 0;
pub const CARD_VERSION: u32 = (VERSION_MAJOR << 16) | (VERSION_MINOR << 8) | VERSION_PATCH;
/// Capability bits reported in `CAPS`.
pub const CAP_MSI: u32 = 1 << 0;
pub const CAP_CONFIG_SPACE: u32 = 1 << 1;
pub const CARD_CAPS: u32 = CAP_MSI | CAP_CONFIG_SPACE;

/// How a register behaves when written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read-only constant or status; writes are ignored.
    ReadOnly,
    /// Read/write, every byte lane honours its byte enable.
    ReadWrite,
    /// Read-only counter; any write (any byte enable) clears it to zero.
    CounterWriteClears,
    /// Write-only trigger; reads return 0.
    WriteTrigger,
}

/// One BAR0 register.
#[derive(Clone, Copy, Debug)]
pub struct Register {
    pub name: &'static str,
    pub offset: u32,
    pub access: Access,
    pub reset: u32,
    pub doc: &'static str,
}

macro_rules! registers {
    ($( $ident:ident = $off:expr, $acc:ident, $reset:expr, $doc:expr; )*) => {
        $( pub const $ident: u32 = $off; )*
        /// Every BAR0 register, in offset order.
        pub const BAR0_REGISTERS: &[Register] = &[
            $( Register { name: stringify!($ident), offset: $off, access: Access::$acc, reset: $reset, doc: $doc }, )*
        ];
    };
}

registers! {
    REG_ID = 0x0000, ReadOnly, CARD_MAGIC, "Magic 0x4F464643 (\"OFFC\").";
    REG_VERSION = 0x0004, ReadOnly, CARD_VERSION, "Version: major[23:16] minor[15:8] patch[7:0].";
    REG_CAPS = 0x0008, ReadOnly, CARD_CAPS, "Capability bits: 0 MSI, 1 configuration space in card logic.";
    REG_SCRATCH0 = 0x0010, ReadWrite, 0, "Scratch register 0 (byte-enable aware).";
    REG_SCRATCH1 = 0x0014, ReadWrite, 0, "Scratch register 1.";
    REG_SCRATCH2 = 0x0018, ReadWrite, 0, "Scratch register 2.";
    REG_SCRATCH3 = 0x001C, ReadWrite, 0, "Scratch register 3.";
    REG_CONTROL = 0x0020, ReadWrite, 0, "Control: bit 0 MSI mask (a triggered MSI stays pending while set).";
    REG_STATUS = 0x0024, ReadOnly, 0, "Status: 0 MSI pending, 1 bus master enabled, 2 MSI enabled, 3 memory space enabled.";
    REG_MSI_ADDR_LO = 0x0030, ReadWrite, 0, "MSI address [31:0] (same storage as the MSI capability; bits 1:0 read 0).";
    REG_MSI_ADDR_HI = 0x0034, ReadWrite, 0, "MSI address [63:32].";
    REG_MSI_DATA = 0x0038, ReadWrite, 0, "MSI data [15:0].";
    REG_MSI_TRIGGER = 0x003C, WriteTrigger, 0, "Write any value: the card sends its MSI (a memory write) as soon as allowed.";
    REG_CNT_RX_TLP = 0x0040, CounterWriteClears, 0, "TLPs received (every packet the endpoint decoded).";
    REG_CNT_TX_TLP = 0x0044, CounterWriteClears, 0, "TLPs sent (completions and MSI writes).";
    REG_CNT_UR_CPL = 0x0048, CounterWriteClears, 0, "Completions sent with Unsupported Request status.";
    REG_CNT_POSTED_DROPPED = 0x004C, CounterWriteClears, 0, "Well-formed posted requests dropped as unsupported.";
    REG_CNT_MALFORMED = 0x0050, CounterWriteClears, 0, "Malformed TLPs (bad framing, length mismatch, reserved format/type).";
    REG_CNT_POISONED = 0x0054, CounterWriteClears, 0, "Poisoned (EP=1) TLPs received.";
    REG_CNT_MSG = 0x005C, CounterWriteClears, 0, "Messages received (accepted and ignored).";
    REG_CNT_MSI_SENT = 0x0060, CounterWriteClears, 0, "MSI memory writes sent.";
}

/// Bits of `REG_CONTROL`.
pub const CONTROL_MSI_MASK: u32 = 1 << 0;
/// Bits of `REG_STATUS`.
pub const STATUS_MSI_PENDING: u32 = 1 << 0;
pub const STATUS_BUS_MASTER: u32 = 1 << 1;
pub const STATUS_MSI_ENABLED: u32 = 1 << 2;
pub const STATUS_MEM_ENABLED: u32 = 1 << 3;

/// The register at `offset`, if any.
pub fn register_at(offset: u32) -> Option<&'static Register> {
    BAR0_REGISTERS.iter().find(|r| r.offset == offset)
}

/// Configuration space (type 0 header) layout, byte offsets.
pub mod cfg {
    pub const VENDOR_DEVICE: u16 = 0x00;
    pub const COMMAND_STATUS: u16 = 0x04;
    pub const CLASS_REV: u16 = 0x08;
    pub const HEADER: u16 = 0x0C;
    pub const BAR0: u16 = 0x10;
    pub const BAR1: u16 = 0x14;
    pub const SUBSYSTEM: u16 = 0x2C;
    pub const CAP_PTR: u16 = 0x34;
    pub const INTERRUPT: u16 = 0x3C;
    /// MSI capability (ID 05h), 64-bit capable, one vector.
    pub const MSI_CAP: u16 = 0x40;
    pub const MSI_ADDR_LO: u16 = 0x44;
    pub const MSI_ADDR_HI: u16 = 0x48;
    pub const MSI_DATA: u16 = 0x4C;
    /// PCI Express capability (ID 10h), version 2, endpoint.
    pub const PCIE_CAP: u16 = 0x60;
    pub const PCIE_DEVCAP: u16 = 0x64;
    pub const PCIE_DEVCTL: u16 = 0x68;
    pub const PCIE_LINKCAP: u16 = 0x6C;
    pub const PCIE_LINKCTL: u16 = 0x70;

    pub const COMMAND_MEM_ENABLE: u16 = 1 << 1;
    pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
    pub const STATUS_CAP_LIST: u16 = 1 << 4;
    pub const MSI_CTRL_ENABLE: u16 = 1 << 0;
    pub const MSI_CTRL_64BIT: u16 = 1 << 7;
    /// BAR0 low bits: memory, 64-bit (type 10b), non-prefetchable.
    pub const BAR0_FLAGS: u32 = 0b0100;
    /// Device Capabilities: Max_Payload_Size Supported = 256 bytes (001b).
    pub const DEVCAP_MPS_256: u32 = 0b001;
    /// Link Capabilities: 5.0 GT/s (Gen2), x1.
    pub const LINKCAP_GEN2_X1: u32 = 0x2 | (1 << 4);
}

/// TLP encodings from the PCI Express Base Specification (section 2.2).
pub mod tlp {
    /// Fmt field values.
    pub const FMT_3DW_NO_DATA: u8 = 0b000;
    pub const FMT_4DW_NO_DATA: u8 = 0b001;
    pub const FMT_3DW_DATA: u8 = 0b010;
    pub const FMT_4DW_DATA: u8 = 0b011;
    pub const FMT_PREFIX: u8 = 0b100;
    /// Type field values.
    pub const TYPE_MEM: u8 = 0b0_0000;
    pub const TYPE_MEM_LOCKED: u8 = 0b0_0001;
    pub const TYPE_IO: u8 = 0b0_0010;
    pub const TYPE_CFG0: u8 = 0b0_0100;
    pub const TYPE_CFG1: u8 = 0b0_0101;
    pub const TYPE_CPL: u8 = 0b0_1010;
    pub const TYPE_CPL_LOCKED: u8 = 0b0_1011;
    /// Message types are 10rrr (routing in the low three bits).
    pub const TYPE_MSG_MASK: u8 = 0b1_1000;
    pub const TYPE_MSG: u8 = 0b1_0000;
    /// Completion status values.
    pub const CPL_SC: u8 = 0b000;
    pub const CPL_UR: u8 = 0b001;
    pub const CPL_CRS: u8 = 0b010;
    pub const CPL_CA: u8 = 0b100;
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn offsets_unique_aligned_and_inside_bar() {
        let mut seen = std::collections::HashSet::new();
        for r in BAR0_REGISTERS {
            assert_eq!(r.offset % 4, 0, "{} unaligned", r.name);
            assert!((r.offset as u64) < BAR0_SIZE);
            assert!(seen.insert(r.offset), "{} overlaps", r.name);
        }
    }
}

/// Encapsulation (transmit) pipeline, BAR0 0x2000-0x27FF: a block of
/// registers per tenant (the mapping table, in RAM: write-only, reads
/// return 0; a write stores the whole DW, bytes whose enable is clear
/// become 0) and global registers. See docs/encap.md.
pub mod encap {
    /// First and last byte offset of the block in BAR0.
    pub const BASE: u32 = 0x2000;
    pub const END: u32 = 0x27FF;
    /// Tenants (VNI mappings); tenant t's block is at `TENANT_BASE + t * TENANT_STRIDE`.
    pub const TENANTS: u32 = 16;
    pub const TENANT_BASE: u32 = 0x2000;
    pub const TENANT_STRIDE: u32 = 0x40;
    /// Per-tenant offsets (relative to the tenant's block).
    /// TTL in [7:0], path policy in [9:8] (`POLICY_*`).
    pub const T_CONFIG: u32 = 0x00;
    /// Flowlet gap in card clock cycles.
    pub const T_FLOWLET_GAP: u32 = 0x04;
    /// Bit i set: path i is bad (no policy uses it while another is healthy).
    pub const T_BAD_PATHS: u32 = 0x08;
    /// VNI in [23:0].
    pub const T_VNI: u32 = 0x0C;
    /// Outer IPv4 addresses as numbers (10.0.0.1 is 0x0A000001).
    pub const T_SRC_IP: u32 = 0x10;
    pub const T_DST_IP: u32 = 0x14;
    /// MACs as numbers: HI holds the first two bytes in [15:0], LO the last four
    /// (02:aa:00:00:00:01 is HI 0x02AA, LO 0x00000001).
    pub const T_SRC_MAC_HI: u32 = 0x18;
    pub const T_SRC_MAC_LO: u32 = 0x1C;
    pub const T_NEXT_HOP_MAC_HI: u32 = 0x20;
    pub const T_NEXT_HOP_MAC_LO: u32 = 0x24;
    /// Path table: entropy values (outer UDP source ports); the DW at
    /// `T_PATHS + 4k` holds entry 2k in [15:0] and entry 2k+1 in [31:16].
    pub const T_PATHS: u32 = 0x28;
    pub const PATHS: u32 = 8;
    /// Context DWs before the path table (they live in two RAMs, even and odd DW).
    pub const T_CONTEXT_DWS: u32 = 10;

    pub const POLICY_PER_FLOW: u32 = 0;
    pub const POLICY_FLOWLET: u32 = 1;
    pub const POLICY_SPRAY: u32 = 2;
    pub const CONFIG_POLICY_SHIFT: u32 = 8;
    /// `T_CONFIG` bit: look each IP frame's inner destination up in the
    /// mapping cache (`regmap::cache`); a hit gives the outer IPv4
    /// destination, a miss uses `T_DST_IP` (the cache queues the miss for
    /// the host).
    pub const CONFIG_USE_MAPPING: u32 = 1 << 10;
    /// Cycles a mapping lookup waits for the cache to accept it (the cache
    /// refuses requests while it reassigns ways) before the frame uses
    /// `T_DST_IP` and `CNT_MAP_TIMEOUT` counts it.
    pub const MAP_READY_TIMEOUT: u32 = 64;

    /// Global registers (absolute BAR0 offsets).
    pub const GLOBAL_BASE: u32 = 0x2400;
    /// Bit t: tenant t is enabled; frames of a disabled tenant are dropped and counted.
    pub const TENANT_ENABLE: u32 = 0x2400;
    /// Bit 0: the flow table is being cleared (after reset; frames wait).
    pub const STATUS: u32 = 0x2404;
    /// The cycle counter flowlet timestamps use (32-bit, wrapping).
    pub const NOW: u32 = 0x2408;
    pub const CNT_FRAMES_OUT: u32 = 0x2410;
    pub const CNT_DROP_DISABLED: u32 = 0x2414;
    pub const CNT_LEN_MISMATCH: u32 = 0x2418;
    pub const CNT_LEN_CLAMPED: u32 = 0x241C;
    pub const CNT_FLOWLET_REPICK: u32 = 0x2420;
    pub const CNT_BAD_PATH_AVOIDED: u32 = 0x2424;
    /// Flow hash of the last frame through the path selector (for checking
    /// the hardware Toeplitz against RSS tools).
    pub const LAST_HASH: u32 = 0x2428;
    /// Mapping lookups (tenants with `CONFIG_USE_MAPPING`, IP frames).
    pub const CNT_MAP_HIT: u32 = 0x242C;
    pub const CNT_MAP_MISS: u32 = 0x2430;
    pub const CNT_MAP_TIMEOUT: u32 = 0x2434;
    pub const STATUS_CLEARING: u32 = 1 << 0;

    /// log2 of the transmit ring (64-bit words between the input and the output).
    pub const RING_LOG2: u32 = 9;
    /// log2 of the flow-state slots per tenant (`offcard_net::path` uses it).
    pub const FLOW_SLOTS_LOG2: u32 = 6;

    use super::{Access::*, Register};
    const fn r(name: &'static str, offset: u32, access: super::Access, reset: u32, doc: &'static str) -> Register {
        Register { name, offset, access, reset, doc }
    }
    /// Registers of one tenant, offsets relative to `TENANT_BASE + t * TENANT_STRIDE`
    /// (write-only: the mapping table is in RAM).
    pub const TENANT_REGISTERS: &[Register] = &[
        r("T_CONFIG", T_CONFIG, WriteTrigger, 0, "TTL [7:0], policy [9:8]: 0 per-flow, 1 flowlet, 2 spray (3 = per-flow); bit 10: use the mapping cache (outer destination of IP frames from the cache on a hit, T_DST_IP on a miss)."),
        r("T_FLOWLET_GAP", T_FLOWLET_GAP, WriteTrigger, 0, "Flowlet: idle cycles after which a flow's slot moves to the next path."),
        r("T_BAD_PATHS", T_BAD_PATHS, WriteTrigger, 0, "Bit i: path i is bad; traffic moves to the next healthy path."),
        r("T_VNI", T_VNI, WriteTrigger, 0, "Geneve VNI [23:0]."),
        r("T_SRC_IP", T_SRC_IP, WriteTrigger, 0, "Outer IPv4 source address."),
        r("T_DST_IP", T_DST_IP, WriteTrigger, 0, "Outer IPv4 destination address (default tunnel endpoint; with mapping on, used on a miss)."),
        r("T_SRC_MAC_HI", T_SRC_MAC_HI, WriteTrigger, 0, "Outer source MAC, first two bytes [15:0]."),
        r("T_SRC_MAC_LO", T_SRC_MAC_LO, WriteTrigger, 0, "Outer source MAC, last four bytes."),
        r("T_NEXT_HOP_MAC_HI", T_NEXT_HOP_MAC_HI, WriteTrigger, 0, "Next-hop (outer destination) MAC, first two bytes [15:0]."),
        r("T_NEXT_HOP_MAC_LO", T_NEXT_HOP_MAC_LO, WriteTrigger, 0, "Next-hop MAC, last four bytes."),
        r("T_PATHS0", T_PATHS, WriteTrigger, 0, "Path entries 0 [15:0] and 1 [31:16] (outer UDP source ports)."),
        r("T_PATHS1", T_PATHS + 4, WriteTrigger, 0, "Path entries 2 and 3."),
        r("T_PATHS2", T_PATHS + 8, WriteTrigger, 0, "Path entries 4 and 5."),
        r("T_PATHS3", T_PATHS + 12, WriteTrigger, 0, "Path entries 6 and 7."),
    ];
    /// Global encapsulation registers (absolute BAR0 offsets).
    pub const ENCAP_REGISTERS: &[Register] = &[
        r("TENANT_ENABLE", TENANT_ENABLE, ReadWrite, 0, "Bit t: tenant t enabled (frames of disabled tenants are dropped)."),
        r("STATUS", STATUS, ReadOnly, 0, "Bit 0: flow table clearing after reset (input waits)."),
        r("NOW", NOW, ReadOnly, 0, "Cycle counter used for flowlet timestamps (a frame's time is its first beat's)."),
        r("CNT_FRAMES_OUT", CNT_FRAMES_OUT, ReadOnly, 0, "Encapsulated frames sent (last beat accepted downstream)."),
        r("CNT_DROP_DISABLED", CNT_DROP_DISABLED, ReadOnly, 0, "Frames dropped: tenant not enabled."),
        r("CNT_LEN_MISMATCH", CNT_LEN_MISMATCH, ReadOnly, 0, "Frames whose data was longer or shorter than the length used (cut or zero-padded)."),
        r("CNT_LEN_CLAMPED", CNT_LEN_CLAMPED, ReadOnly, 0, "Frames whose in_len was outside 60..9216 (clamped)."),
        r("CNT_FLOWLET_REPICK", CNT_FLOWLET_REPICK, ReadOnly, 0, "Flowlet policy: packets that moved to the next path after an idle gap."),
        r("CNT_BAD_PATH_AVOIDED", CNT_BAD_PATH_AVOIDED, ReadOnly, 0, "Packets whose chosen path was bad and went to the next healthy one."),
        r("LAST_HASH", LAST_HASH, ReadOnly, 0, "Toeplitz flow hash (RSS key) of the last frame through the path selector."),
        r("CNT_MAP_HIT", CNT_MAP_HIT, ReadOnly, 0, "Mapping lookups that hit (outer destination from the cache)."),
        r("CNT_MAP_MISS", CNT_MAP_MISS, ReadOnly, 0, "Mapping lookups that missed (T_DST_IP used; the cache queues the miss for the host)."),
        r("CNT_MAP_TIMEOUT", CNT_MAP_TIMEOUT, ReadOnly, 0, "Mapping lookups the cache did not accept within MAP_READY_TIMEOUT cycles (T_DST_IP used)."),
    ];
}

/// DMA engine: per-queue register blocks and formats in host memory.
pub mod dma {
    /// Number of copy queues (each has a descriptor ring and a completion ring).
    pub const NUM_QUEUES: u32 = 4;
    /// BAR0 offset of queue 0's registers; queue q is at `QUEUE_BASE + q * QUEUE_STRIDE`.
    pub const QUEUE_BASE: u32 = 0x1000;
    pub const QUEUE_STRIDE: u32 = 0x40;
    /// Per-queue register offsets (relative to the queue's block).
    pub const Q_RING_LO: u32 = 0x00;
    pub const Q_RING_HI: u32 = 0x04;
    /// log2 of the number of descriptors (1..=12); the completion ring has as many entries.
    pub const Q_RING_LOG2: u32 = 0x08;
    pub const Q_CPL_LO: u32 = 0x0C;
    pub const Q_CPL_HI: u32 = 0x10;
    /// Producer index the host writes (doorbell), 0..entries-1.
    pub const Q_TAIL: u32 = 0x14;
    /// Consumer index the card advances (read-only).
    pub const Q_HEAD: u32 = 0x18;
    /// Bit 0: tail out of range (queue stopped); bit 1: enabled. Read-only.
    pub const Q_STATUS: u32 = 0x1C;
    /// Bit 0: enable. Writing bit 1 resets head to 0 and clears the error.
    pub const Q_CTRL: u32 = 0x20;
    /// Queue mode (`QMODE_*`): what the queue's descriptors mean.
    pub const Q_MODE: u32 = 0x24;
    /// Copy: read `len` bytes at src, write them at dst.
    pub const QMODE_COPY: u32 = 0;
    /// Host to network (TX): read `len` bytes at src and send them as one
    /// frame on the engine's `ntx_*` port (dst is ignored); tenant from the
    /// descriptor's flags word (`DESC_FLAGS_TENANT_*`).
    pub const QMODE_TX: u32 = 1;
    /// Network to host (RX): descriptors are receive buffers (dst, len = buffer
    /// size); the engine takes one when a frame for this queue arrives on `nrx_*`.
    pub const QMODE_RX: u32 = 2;
    pub const Q_STATUS_TAIL_ERROR: u32 = 1 << 0;
    pub const Q_STATUS_ENABLED: u32 = 1 << 1;
    pub const Q_CTRL_ENABLE: u32 = 1 << 0;
    pub const Q_CTRL_RESET: u32 = 1 << 1;
    /// Reset values the HDL loads (and the register tables list).
    pub const Q_RING_LOG2_RESET: u32 = 1;
    pub const WREC_TIMEOUT_RESET: u32 = 100_000;
    pub const IRQ_COALESCE_RESET: u32 = 1;

    /// Global DMA registers.
    pub const DMA_BASE: u32 = 0x1200;
    pub const DMA_STATUS: u32 = 0x1200;
    pub const WREC_LO: u32 = 0x1204;
    pub const WREC_HI: u32 = 0x1208;
    /// log2 of the number of write records in the ring (1..=16).
    pub const WREC_LOG2: u32 = 0x120C;
    /// Records produced (free-running 32-bit count; slot = count mod entries). Read-only.
    pub const WREC_PROD: u32 = 0x1210;
    /// Records consumed, written by the host (free-running).
    pub const WREC_CONS: u32 = 0x1214;
    /// Write: flush open records, then write the producer count back.
    pub const WREC_FLUSH: u32 = 0x1218;
    /// Cycles a write may stall on a full ring before the card declares overflow.
    pub const WREC_TIMEOUT: u32 = 0x121C;
    /// IOVA where the card writes the producer count (4 bytes) after each flush.
    pub const WREC_WB_LO: u32 = 0x1220;
    pub const WREC_WB_HI: u32 = 0x1224;
    /// Raise the MSI after this many completions (0 or 1: every one); an idle
    /// engine raises it for any completions not yet signalled.
    pub const IRQ_COALESCE: u32 = 0x1228;
    /// Counters (read-only, free-running).
    pub const CNT_DESC_DONE: u32 = 0x1230;
    pub const CNT_DESC_ERROR: u32 = 0x1234;
    pub const CNT_RECORDS: u32 = 0x1238;
    pub const CNT_COALESCED: u32 = 0x123C;
    pub const CNT_STALL_CYCLES: u32 = 0x1240;
    pub const CNT_UNEXPECTED_CPL: u32 = 0x1244;
    /// Frames sent on the network TX port.
    pub const CNT_TX_FRAMES: u32 = 0x1248;
    /// Frames delivered into host receive buffers.
    pub const CNT_RX_FRAMES: u32 = 0x124C;
    /// Frames dropped because their queue was not in RX mode, not enabled,
    /// had no receive buffer posted (or its descriptor was unreadable), or
    /// bus mastering was off.
    pub const CNT_RX_NO_BUFFER: u32 = 0x1250;
    /// Frames longer than the receive buffer they were given (dropped; the
    /// descriptor completes with `CPL_STATUS_RX_TOO_LONG`).
    pub const CNT_RX_TOO_LONG: u32 = 0x1254;
    /// Malformed frames: length 0 or above `MAX_FRAME`, or beats that do not
    /// add up to the announced length (dropped; a descriptor already taken
    /// completes with `CPL_STATUS_BAD_LENGTH`).
    pub const CNT_RX_BAD_FRAME: u32 = 0x1258;

    /// DMA_STATUS bits.
    pub const STATUS_OVERFLOW: u32 = 1 << 0; // write 1 to clear: starts a new epoch
    pub const STATUS_FLUSH_PENDING: u32 = 1 << 1;
    pub const STATUS_BUSY: u32 = 1 << 2;

    /// Descriptor (32 bytes, little endian): src IOVA, dst IOVA, length, flags, cookie.
    pub const DESC_BYTES: u32 = 32;
    /// Largest transfer one descriptor may ask for.
    pub const MAX_TRANSFER: u32 = 65536;
    /// Largest network frame (jumbo) a TX descriptor may send or the RX port
    /// may deliver, in bytes ([`crate::net::MAX_FRAME`]).
    pub const MAX_FRAME: u32 = crate::net::MAX_FRAME as u32;
    /// Descriptor bytes 20..24 (the flags word): in a TX descriptor, the
    /// tenant of the frame in bits 3:0 (sent on `ntx_tenant`). Reserved (0)
    /// in copy and RX descriptors.
    pub const DESC_FLAGS_TENANT_SHIFT: u32 = 0;
    pub const DESC_FLAGS_TENANT_MASK: u32 = 0xF;
    /// Completion record (16 bytes): cookie u64, length u32, status u16, queue u8, flags u8.
    pub const CPL_BYTES: u32 = 16;
    pub const CPL_FLAG_DONE: u8 = 1 << 0;
    /// Completion flags bits 7:4: the tenant (RX: the frame's, from
    /// `nrx_tenant`; TX: the descriptor's; copy: 0). In an RX completion the
    /// length field is the frame's length (also when it did not fit).
    pub const CPL_FLAG_TENANT_SHIFT: u8 = 4;
    pub const CPL_STATUS_OK: u16 = 0;
    /// Length 0 or above MAX_TRANSFER.
    pub const CPL_STATUS_BAD_LENGTH: u16 = 1;
    /// A read of the source returned an error completion (unmapped IOVA).
    pub const CPL_STATUS_READ_ERROR: u16 = 2;
    /// The descriptor itself could not be read (its cookie reads 0).
    pub const CPL_STATUS_DESC_ERROR: u16 = 3;
    /// RX: the frame was longer than the posted buffer; it was dropped.
    pub const CPL_STATUS_RX_TOO_LONG: u16 = 4;

    /// Write record (16 bytes): iova u64, length u32, source u8, flags u8, sequence u16.
    pub const WREC_BYTES: u32 = 16;
    /// Source field: queue in bits 3:0, kind in bits 5:4.
    pub const SRC_KIND_DATA: u8 = 0 << 4;
    pub const SRC_KIND_COMPLETION: u8 = 1 << 4;
    /// A virtqueue engine's write into guest memory (used ring; queue 0..7
    /// of `regmap::virtq` in bits 3:0).
    pub const SRC_KIND_VIRTQ: u8 = 2 << 4;

    use super::{Access::*, Register};
    const fn r(name: &'static str, offset: u32, access: super::Access, reset: u32, doc: &'static str) -> Register {
        Register { name, offset, access, reset, doc }
    }
    /// Registers of one queue, offsets relative to `QUEUE_BASE + q * QUEUE_STRIDE`.
    pub const QUEUE_REGISTERS: &[Register] = &[
        r("Q_RING_LO", Q_RING_LO, ReadWrite, 0, "Descriptor ring IOVA [31:0] (32-byte aligned)."),
        r("Q_RING_HI", Q_RING_HI, ReadWrite, 0, "Descriptor ring IOVA [63:32]."),
        r("Q_RING_LOG2", Q_RING_LOG2, ReadWrite, Q_RING_LOG2_RESET, "log2 of the ring entries, 1..12 (values clamp)."),
        r("Q_CPL_LO", Q_CPL_LO, ReadWrite, 0, "Completion ring IOVA [31:0] (16-byte aligned)."),
        r("Q_CPL_HI", Q_CPL_HI, ReadWrite, 0, "Completion ring IOVA [63:32]."),
        r("Q_TAIL", Q_TAIL, ReadWrite, 0, "Doorbell: producer index. A value outside the ring sets TAIL_ERROR and stops the queue."),
        r("Q_HEAD", Q_HEAD, ReadOnly, 0, "Consumer index (next descriptor the card takes)."),
        r("Q_STATUS", Q_STATUS, ReadOnly, 0, "Bit 0 tail error, bit 1 enabled."),
        r("Q_CTRL", Q_CTRL, ReadWrite, 0, "Bit 0 enable; writing bit 1 resets head, tail and the error."),
        r("Q_MODE", Q_MODE, ReadWrite, 0, "Bits 1:0 queue mode: 0 copy, 1 host-to-network (TX), 2 network-to-host (RX); writes of 3 are ignored."),
    ];
    /// Global DMA registers (absolute BAR0 offsets).
    pub const GLOBAL_REGISTERS: &[Register] = &[
        r("DMA_STATUS", DMA_STATUS, ReadOnly, 0, "Bit 0 record overflow (write 1 to clear: new epoch), bit 1 flush pending, bit 2 busy."),
        r("WREC_LO", WREC_LO, ReadWrite, 0, "Write-record ring IOVA [31:0]."),
        r("WREC_HI", WREC_HI, ReadWrite, 0, "Write-record ring IOVA [63:32]."),
        r("WREC_LOG2", WREC_LOG2, ReadWrite, 0, "log2 of record-ring entries (1..16); 0 disables records."),
        r("WREC_PROD", WREC_PROD, ReadOnly, 0, "Records produced (free-running)."),
        r("WREC_CONS", WREC_CONS, ReadWrite, 0, "Records consumed, written by the host (free-running)."),
        r("WREC_FLUSH", WREC_FLUSH, WriteTrigger, 0, "Write: flush open records, then write WREC_PROD to WREC_WB."),
        r("WREC_TIMEOUT", WREC_TIMEOUT, ReadWrite, WREC_TIMEOUT_RESET, "Cycles a write may wait for a record slot before overflow."),
        r("WREC_WB_LO", WREC_WB_LO, ReadWrite, 0, "Producer write-back IOVA [31:0]."),
        r("WREC_WB_HI", WREC_WB_HI, ReadWrite, 0, "Producer write-back IOVA [63:32]."),
        r("IRQ_COALESCE", IRQ_COALESCE, ReadWrite, IRQ_COALESCE_RESET, "MSI after this many completions (idle engine: at once)."),
        r("CNT_DESC_DONE", CNT_DESC_DONE, ReadOnly, 0, "Descriptors completed successfully."),
        r("CNT_DESC_ERROR", CNT_DESC_ERROR, ReadOnly, 0, "Descriptors completed with an error status."),
        r("CNT_RECORDS", CNT_RECORDS, ReadOnly, 0, "Write records written to the ring."),
        r("CNT_COALESCED", CNT_COALESCED, ReadOnly, 0, "Writes folded into an open record."),
        r("CNT_STALL_CYCLES", CNT_STALL_CYCLES, ReadOnly, 0, "Cycles writes waited for a record slot."),
        r("CNT_UNEXPECTED_CPL", CNT_UNEXPECTED_CPL, ReadOnly, 0, "Completions matching no outstanding read."),
        r("CNT_TX_FRAMES", CNT_TX_FRAMES, ReadOnly, 0, "Frames sent on the network TX port."),
        r("CNT_RX_FRAMES", CNT_RX_FRAMES, ReadOnly, 0, "Frames delivered into host receive buffers."),
        r("CNT_RX_NO_BUFFER", CNT_RX_NO_BUFFER, ReadOnly, 0, "Frames dropped: queue not in RX mode, disabled, no buffer posted, or its descriptor unreadable."),
        r("CNT_RX_TOO_LONG", CNT_RX_TOO_LONG, ReadOnly, 0, "Frames dropped for being longer than their receive buffer."),
        r("CNT_RX_BAD_FRAME", CNT_RX_BAD_FRAME, ReadOnly, 0, "Frames dropped as malformed (length 0 or above MAX_FRAME, beats not matching the length)."),
    ];
}

/// PCIe tags the DMA engine uses: 5-bit tags (Extended Tag not required),
/// at most this many reads outstanding.
pub const DMA_MAX_OUTSTANDING: u32 = 16;

/// Tagged cache-way allocator (BAR0 0x3000-0x3FFF): a set-associative cache
/// whose ways belong to tags (tenants). Geometry and the register map.
pub mod cache {
    /// log2 of the number of sets.
    pub const SETS_LOG2: u32 = 6;
    pub const SETS: u32 = 1 << SETS_LOG2;
    pub const WAYS: u32 = 8;
    /// Tags (tenants); a tag is 4 bits.
    pub const TAGS: u32 = 16;
    /// Depth of the on-card miss FIFO (misses waiting for the host).
    pub const MISS_FIFO_DEPTH: u32 = 16;
    /// Cycles the cache needs after reset to clear its RAMs (lines and
    /// replacement state); `CACHE_STATUS_BUSY` is set meanwhile.
    pub const INIT_CYCLES: u32 = 1 << (SETS_LOG2 + 4);

    /// Operations on the request port and in `CACHE_OP`.
    pub const OP_LOOKUP: u32 = 1;
    pub const OP_FILL: u32 = 2;

    pub const CACHE_BASE: u32 = 0x3000;
    pub const CACHE_GEOMETRY: u32 = 0x3000;
    pub const CACHE_CTRL: u32 = 0x3004;
    pub const CACHE_STATUS: u32 = 0x3008;
    pub const CACHE_OP_KEY: u32 = 0x3010;
    pub const CACHE_OP_VALUE: u32 = 0x3014;
    pub const CACHE_OP: u32 = 0x3018;
    pub const CACHE_OP_RESULT: u32 = 0x301C;
    pub const CACHE_OP_RESULT_VALUE: u32 = 0x3020;
    pub const CACHE_CNT_SEL: u32 = 0x3030;
    pub const CACHE_CNT_HITS: u32 = 0x3034;
    pub const CACHE_CNT_MISSES: u32 = 0x3038;
    pub const CACHE_CNT_FILLS: u32 = 0x303C;
    pub const CACHE_CNT_EVICTIONS: u32 = 0x3040;
    pub const CACHE_CNT_OCCUPANCY: u32 = 0x3044;
    pub const CACHE_CNT_MISS_DROPPED: u32 = 0x3048;
    /// Way mask of tag t at `CACHE_MASK_BASE + 4 * t`.
    pub const CACHE_MASK_BASE: u32 = 0x3080;
    pub const CACHE_END: u32 = 0x4000;

    /// `CACHE_CTRL` bit 0: partitioning on (hits, fills and replacement
    /// restricted to the tag's ways and lines). Off: one shared cache.
    pub const CTRL_PARTITION: u32 = 1 << 0;
    /// Reset values the HDL loads: partitioning on, every tag owning every way.
    pub const CTRL_RESET: u32 = CTRL_PARTITION;
    pub const MASK_RESET: u32 = (1 << WAYS) - 1;
    /// `CACHE_STATUS` bits.
    pub const STATUS_BUSY: u32 = 1 << 0;
    pub const STATUS_OP_PENDING: u32 = 1 << 1;
    /// Sticky: a mask write arrived while a reassignment was running and was
    /// ignored (write `CACHE_STATUS` any value to clear).
    pub const STATUS_MASK_DROPPED: u32 = 1 << 2;
    /// `CACHE_OP_RESULT` bits: done, hit; the op's tag in 11:8.
    pub const RESULT_DONE: u32 = 1 << 0;
    pub const RESULT_HIT: u32 = 1 << 1;

    /// A miss as the host receives it: a 16-byte frame on the card-to-host
    /// DMA queue `MISS_QUEUE` (in RX mode), bytes 0..4 the key (little
    /// endian), byte 4 the tag, the rest zero; the completion's tenant field
    /// is the tag too.
    pub const MISS_RECORD_BYTES: u32 = 16;
    /// The DMA queue misses go to (the decapsulation VNI table should not
    /// send tenant traffic to it).
    pub const MISS_QUEUE: u32 = 3;

    /// The set a key maps to: the key's bits XOR-folded to `SETS_LOG2` bits
    /// (cheap in hardware, and neighbouring keys spread over sets).
    pub const fn set_of(key: u32) -> u32 {
        let mut s = 0;
        let mut k = key;
        while k != 0 {
            s ^= k & (SETS - 1);
            k >>= SETS_LOG2;
        }
        s
    }

    use super::{Access::*, Register};
    const fn r(name: &'static str, offset: u32, access: super::Access, reset: u32, doc: &'static str) -> Register {
        Register { name, offset, access, reset, doc }
    }
    pub const CACHE_REGISTERS: &[Register] = &[
        r("CACHE_GEOMETRY", CACHE_GEOMETRY, ReadOnly, SETS_LOG2 | WAYS << 8 | TAGS << 16, "log2 sets [7:0], ways [15:8], tags [23:16]."),
        r("CACHE_CTRL", CACHE_CTRL, ReadWrite, CTRL_RESET, "Bit 0: partitioning on (off: one shared cache, the baseline)."),
        r("CACHE_STATUS", CACHE_STATUS, ReadOnly, STATUS_BUSY, "Bit 0 busy (reset clearing or a mask reassignment), bit 1 op pending, bit 2 mask write dropped (sticky; any write clears)."),
        r("CACHE_OP_KEY", CACHE_OP_KEY, ReadWrite, 0, "Key of the next BAR0 operation."),
        r("CACHE_OP_VALUE", CACHE_OP_VALUE, ReadWrite, 0, "Value a fill stores (the mapping: outer destination IPv4)."),
        r("CACHE_OP", CACHE_OP, WriteTrigger, 0, "Write: op [1:0] (1 lookup, 2 fill), tag [11:8]; runs ahead of pipeline requests."),
        r("CACHE_OP_RESULT", CACHE_OP_RESULT, ReadOnly, 0, "Bit 0 done, bit 1 hit, tag [11:8] of the last BAR0 operation."),
        r("CACHE_OP_RESULT_VALUE", CACHE_OP_RESULT_VALUE, ReadOnly, 0, "Value of the last BAR0 lookup that hit."),
        r("CACHE_CNT_SEL", CACHE_CNT_SEL, ReadWrite, 0, "Tag whose counters the CACHE_CNT_* window shows."),
        r("CACHE_CNT_HITS", CACHE_CNT_HITS, ReadOnly, 0, "Lookups of the selected tag that hit."),
        r("CACHE_CNT_MISSES", CACHE_CNT_MISSES, ReadOnly, 0, "Lookups of the selected tag that missed."),
        r("CACHE_CNT_FILLS", CACHE_CNT_FILLS, ReadOnly, 0, "Lines the selected tag filled."),
        r("CACHE_CNT_EVICTIONS", CACHE_CNT_EVICTIONS, ReadOnly, 0, "Lines of the selected tag evicted by a fill."),
        r("CACHE_CNT_OCCUPANCY", CACHE_CNT_OCCUPANCY, ReadOnly, 0, "Lines the selected tag holds now."),
        r("CACHE_CNT_MISS_DROPPED", CACHE_CNT_MISS_DROPPED, ReadOnly, 0, "Misses not queued to the host because the miss FIFO was full."),
        r("CACHE_MASK_BASE", CACHE_MASK_BASE, ReadWrite, MASK_RESET, "Way mask of tag t at +4t (t < 16). A write reassigns safely: requests stop, changed ways are flushed, then the mask applies."),
    ];
}

/// Geneve decapsulation (receive) pipeline: BAR0 0x2800-0x2FFF. See docs/decap.md.
pub mod decap {
    use super::{Access::*, Register};

    /// First and one-past-last byte offset of the block's BAR0 range.
    pub const BASE: u32 = 0x2800;
    pub const END: u32 = 0x3000;
    /// Largest inner frame delivered (bytes; [`crate::net::MAX_FRAME`]);
    /// longer ones are dropped as too long.
    pub const MAX_FRAME_LEN: u32 = crate::net::MAX_FRAME as u32;
    /// Frame buffer size in bytes (8-byte words in a RAM; store-and-forward).
    pub const BUF_BYTES: u32 = 16384;
    /// log2 of the frame buffer's words.
    pub const BUF_WORDS_LOG2: u32 = 11;
    /// Outer headers the block strips before the options (Ethernet + IPv4 + UDP + Geneve).
    pub const OUTER_LEN: u32 = crate::net::OVERHEAD as u32;
    /// UDP destination port of Geneve, Geneve protocol of an Ethernet payload.
    pub const GENEVE_PORT: u32 = crate::net::GENEVE_PORT as u32;
    pub const PROTO_ETHERNET: u32 = crate::net::PROTO_ETHERNET as u32;
    pub const ETHERTYPE_IPV4: u32 = crate::net::ETHERTYPE_IPV4 as u32;

    /// Read-only information and status (`INFO_MAX_FRAME` reads [`MAX_FRAME_LEN`]).
    pub const INFO_MAX_FRAME: u32 = 0x2800;
    pub const BUF_SIZE: u32 = 0x2804;
    pub const BUF_USED: u32 = 0x2808;

    /// Counters (32-bit; a write clears). Event counters saturate, the
    /// byte counter wraps (hosts take differences modulo 2^32).
    pub const CNT_FRAMES: u32 = 0x2840;
    pub const CNT_BYTES: u32 = 0x2844;
    pub const CNT_DROP_TRUNCATED: u32 = 0x2848;
    pub const CNT_DROP_NOT_IPV4: u32 = 0x284C;
    pub const CNT_DROP_BAD_IP_HEADER: u32 = 0x2850;
    pub const CNT_DROP_BAD_CHECKSUM: u32 = 0x2854;
    pub const CNT_DROP_NOT_GENEVE: u32 = 0x2858;
    pub const CNT_DROP_BAD_LENGTH: u32 = 0x285C;
    pub const CNT_DROP_BAD_GENEVE: u32 = 0x2860;
    pub const CNT_DROP_TOO_LONG: u32 = 0x2864;
    pub const CNT_DROP_UNKNOWN_VNI: u32 = 0x2868;
    pub const CNT_DROP_NO_SPACE: u32 = 0x286C;
    /// The drop counters in check order (`offcard_net::geneve::DropReason::ALL` order).
    pub const DROP_COUNTERS: [u32; 10] = [
        CNT_DROP_TRUNCATED,
        CNT_DROP_NOT_IPV4,
        CNT_DROP_BAD_IP_HEADER,
        CNT_DROP_BAD_CHECKSUM,
        CNT_DROP_NOT_GENEVE,
        CNT_DROP_BAD_LENGTH,
        CNT_DROP_BAD_GENEVE,
        CNT_DROP_TOO_LONG,
        CNT_DROP_UNKNOWN_VNI,
        CNT_DROP_NO_SPACE,
    ];

    /// VNI table: entry i at `VNI_TABLE + 4 * i`, one register each so an
    /// entry changes in one write: VNI [23:0], tenant [27:24], card-to-host
    /// queue [29:28], valid [31]. Matched in parallel; the lowest matching
    /// entry wins.
    pub const VNI_TABLE: u32 = 0x2900;
    pub const VNI_ENTRIES: u32 = 16;
    pub const VNI_MASK: u32 = 0x00FF_FFFF;
    pub const VNI_TENANT_SHIFT: u32 = 24;
    pub const VNI_QUEUE_SHIFT: u32 = 28;
    pub const VNI_VALID: u32 = 1 << 31;

    /// The register value of a valid VNI table entry.
    pub const fn vni_entry(vni: u32, tenant: u32, queue: u32) -> u32 {
        VNI_VALID | ((queue & 3) << VNI_QUEUE_SHIFT) | ((tenant & 0xF) << VNI_TENANT_SHIFT) | (vni & VNI_MASK)
    }

    const fn r(name: &'static str, offset: u32, access: super::Access, reset: u32, doc: &'static str) -> Register {
        Register { name, offset, access, reset, doc }
    }
    const VNI_DOC: &str = "VNI table entry: VNI [23:0], tenant [27:24], queue [29:28], valid [31].";
    /// Every register of the block (absolute BAR0 offsets).
    pub const DECAP_REGISTERS: &[Register] = &[
        r("DECAP_MAX_FRAME", INFO_MAX_FRAME, ReadOnly, MAX_FRAME_LEN, "Largest inner frame delivered, bytes."),
        r("DECAP_BUF_SIZE", BUF_SIZE, ReadOnly, BUF_BYTES, "Frame buffer size, bytes."),
        r("DECAP_BUF_USED", BUF_USED, ReadOnly, 0, "Bytes of committed frames (8-byte words, one header word each) not yet sent to DMA."),
        r("DECAP_CNT_FRAMES", CNT_FRAMES, CounterWriteClears, 0, "Frames accepted (validated and committed to the buffer)."),
        r("DECAP_CNT_BYTES", CNT_BYTES, CounterWriteClears, 0, "Inner-frame bytes accepted (wraps)."),
        r("DECAP_CNT_DROP_TRUNCATED", CNT_DROP_TRUNCATED, CounterWriteClears, 0, "Dropped: shorter than the outer headers, or a partial beat before the last."),
        r("DECAP_CNT_DROP_NOT_IPV4", CNT_DROP_NOT_IPV4, CounterWriteClears, 0, "Dropped: EtherType not IPv4."),
        r("DECAP_CNT_DROP_BAD_IP_HEADER", CNT_DROP_BAD_IP_HEADER, CounterWriteClears, 0, "Dropped: IPv4 version not 4 or IHL not 5."),
        r("DECAP_CNT_DROP_BAD_CHECKSUM", CNT_DROP_BAD_CHECKSUM, CounterWriteClears, 0, "Dropped: bad IPv4 header checksum."),
        r("DECAP_CNT_DROP_NOT_GENEVE", CNT_DROP_NOT_GENEVE, CounterWriteClears, 0, "Dropped: not UDP, or UDP destination port not 6081."),
        r("DECAP_CNT_DROP_BAD_LENGTH", CNT_DROP_BAD_LENGTH, CounterWriteClears, 0, "Dropped: IPv4 total length beyond the packet, or UDP length not total - 20 or below 16."),
        r("DECAP_CNT_DROP_BAD_GENEVE", CNT_DROP_BAD_GENEVE, CounterWriteClears, 0, "Dropped: Geneve version not 0, protocol not 0x6558, or options leave no inner Ethernet header."),
        r("DECAP_CNT_DROP_TOO_LONG", CNT_DROP_TOO_LONG, CounterWriteClears, 0, "Dropped: inner frame longer than DECAP_MAX_FRAME."),
        r("DECAP_CNT_DROP_UNKNOWN_VNI", CNT_DROP_UNKNOWN_VNI, CounterWriteClears, 0, "Dropped: no valid VNI table entry matches."),
        r("DECAP_CNT_DROP_NO_SPACE", CNT_DROP_NO_SPACE, CounterWriteClears, 0, "Dropped: valid, but the frame buffer had no room."),
        r("DECAP_VNI_0", VNI_TABLE, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_1", VNI_TABLE + 0x04, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_2", VNI_TABLE + 0x08, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_3", VNI_TABLE + 0x0C, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_4", VNI_TABLE + 0x10, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_5", VNI_TABLE + 0x14, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_6", VNI_TABLE + 0x18, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_7", VNI_TABLE + 0x1C, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_8", VNI_TABLE + 0x20, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_9", VNI_TABLE + 0x24, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_10", VNI_TABLE + 0x28, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_11", VNI_TABLE + 0x2C, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_12", VNI_TABLE + 0x30, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_13", VNI_TABLE + 0x34, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_14", VNI_TABLE + 0x38, ReadWrite, 0, VNI_DOC),
        r("DECAP_VNI_15", VNI_TABLE + 0x3C, ReadWrite, 0, VNI_DOC),
    ];

    #[cfg(test)]
    mod tests {
        use super::*;
        #[test]
        fn decap_registers_inside_range_aligned_unique() {
            let mut seen = std::collections::HashSet::new();
            for r in DECAP_REGISTERS {
                assert!(r.offset >= BASE && r.offset < END && r.offset % 4 == 0, "{}", r.name);
                assert!(seen.insert(r.offset), "{} overlaps", r.name);
            }
            assert_eq!(DECAP_REGISTERS.iter().filter(|r| r.name.starts_with("DECAP_VNI_")).count() as u32, VNI_ENTRIES);
            assert_eq!(1u32 << BUF_WORDS_LOG2, BUF_BYTES / 8);
            assert!(MAX_FRAME_LEN + 8 + 8 <= BUF_BYTES, "a largest frame must fit an empty buffer");
        }
    }
}

/// The simulated card's status region: a device-specific vfio-user region
/// (index [`sim_status::REGION_INDEX`], after the nine standard PCI regions)
/// that a card process (`offcard card`) serves beside the configuration
/// space and BAR0. It tells a driver the card's simulated time (so timeouts
/// are counted in card time, as on a real card) and the DMA accesses the
/// simulated IOMMU refused. A real card has no such region.
pub mod sim_status {
    /// Region index (VFIO_PCI_NUM_REGIONS).
    pub const REGION_INDEX: u32 = 9;
    pub const REGION_SIZE: u64 = 0x200;
    /// u64 at 0: "OFFCSIM1" as little-endian bytes.
    pub const MAGIC: u32 = 0x00;
    pub const MAGIC_VALUE: u64 = u64::from_le_bytes(*b"OFFCSIM1");
    /// u64: card clock cycles since the card process started.
    pub const CYCLES: u32 = 0x08;
    /// u64: DMA accesses the IOMMU refused (free-running count).
    pub const IOMMU_FAULTS: u32 = 0x10;
    /// The last [`FAULT_SLOTS`] refused accesses, fault n at slot n mod
    /// FAULT_SLOTS: IOVA u64, then u64 holding `n << 1 | is_write` (the
    /// sequence number lets a reader detect a slot overwritten while it read).
    pub const FAULT_LOG: u32 = 0x20;
    pub const FAULT_SLOTS: u32 = 16;
    pub const FAULT_BYTES: u32 = 16;
    /// u64 counters of the card's Ethernet port: frames sent, received,
    /// and received frames dropped because the card's input queue was full.
    pub const PORT_TX_FRAMES: u32 = 0x120;
    pub const PORT_RX_FRAMES: u32 = 0x128;
    pub const PORT_RX_DROPPED: u32 = 0x130;
    const _: () = assert!(FAULT_LOG + FAULT_SLOTS * FAULT_BYTES <= PORT_TX_FRAMES);
    const _: () = assert!((PORT_RX_DROPPED as u64) + 8 <= REGION_SIZE);
}

/// The virtqueue engine (issue 13): the card walks virtio split queues
/// (virtio 1.x, section 2.7) in guest memory itself. The ring layout
/// constants are the virtio specification's (a test checks them against
/// rust-vmm's `virtio-bindings`); the rest is the engine's own.
pub mod virtq {
    /// Queues the engine serves: four pairs (RX, TX), one VM's virtio-net
    /// device each; queue `2p` is pair p's RX (receiveq), `2p + 1` its TX.
    pub const NUM_QUEUES: usize = 8;
    /// Largest queue size, log2 (virtio allows 32768).
    pub const MAX_SIZE_LOG2: u32 = 15;

    // ---- the virtio split-queue layout (virtio 1.x 2.7) ----
    /// Descriptor: addr u64, len u32, flags u16, next u16.
    pub const DESC_BYTES: u64 = 16;
    pub const DESC_F_NEXT: u16 = 1;
    pub const DESC_F_WRITE: u16 = 2;
    pub const DESC_F_INDIRECT: u16 = 4;
    /// Available ring: flags u16, idx u16, ring[size] u16 (, used_event u16).
    pub const AVAIL_IDX: u64 = 2;
    pub const AVAIL_RING: u64 = 4;
    pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
    /// Used ring: flags u16, idx u16, ring[size] {id u32, len u32}.
    pub const USED_IDX: u64 = 2;
    pub const USED_RING: u64 = 4;
    pub const USED_ELEM_BYTES: u64 = 8;
    /// The virtio-net header the card skips on TX and writes on RX
    /// (`virtio_net_hdr_v1`, VIRTIO_F_VERSION_1).
    pub const NET_HDR_BYTES: u32 = 12;

    // ---- the engine's configuration port (`hdl/src/virtq/`) ----
    /// Which queue field a configuration write sets.
    pub const CFG_DESC: u64 = 0;
    pub const CFG_AVAIL: u64 = 1;
    /// bits 3:0 size log2, bit 8 enable, bit 9 reset (last_avail_idx and
    /// the error to 0).
    pub const CFG_CTRL: u64 = 2;
    pub const CTRL_SIZE_LOG2_MASK: u64 = 0xF;
    pub const CTRL_ENABLE: u64 = 1 << 8;
    pub const CTRL_RESET: u64 = 1 << 9;
    /// bits 15:12 (a transmitq's `CFG_CTRL`): the pair's tenant, the
    /// encapsulation context its frames get.
    pub const CTRL_TENANT_SHIFT: u32 = 12;
    pub const CTRL_TENANT_MASK: u64 = 0xF;
    /// Most descriptors a transmit chain may have (Linux uses up to
    /// MAX_SKB_FRAGS + 2 = 19); a longer chain is dropped and counted.
    pub const TX_MAX_SEGS: usize = 32;
    /// Largest frame a transmit chain may carry after its header (the
    /// card's frame limit).
    pub const TX_MAX_FRAME: u32 = crate::net::MAX_FRAME as u32;
    /// bits 15:0: the queue's `last_avail_idx` (a migrated queue resumes
    /// where the source stopped).
    pub const CFG_LAST_AVAIL: u64 = 3;
    /// The used ring's address (`hdl/src/virtq/used.rs`).
    pub const CFG_USED: u64 = 4;
    /// bits 15:0: the queue's used index (migration, as `CFG_LAST_AVAIL`).
    pub const CFG_USED_IDX: u64 = 5;
    /// Configuration field ids are 3 bits; the blocks of the engine share
    /// one configuration port and each takes the fields it needs.
    pub const CFG_SEL_BITS: u32 = 3;

    /// A queue's error state (0 none). A queue in error fetches nothing
    /// until it is reset; the others go on.
    pub const ERR_NONE: u64 = 0;
    /// `avail.idx` moved more than the queue size past `last_avail_idx`.
    pub const ERR_AVAIL_JUMP: u64 = 1;
    /// A head or `next` index is not below the queue size.
    pub const ERR_INDEX: u64 = 2;
    /// A chain has more descriptors than the queue size (a loop).
    pub const ERR_CHAIN_LOOP: u64 = 3;
    /// An indirect descriptor (VIRTIO_F_INDIRECT_DESC is not offered).
    pub const ERR_INDIRECT: u64 = 4;
    /// A ring or descriptor read failed (an address outside mapped memory).
    pub const ERR_READ: u64 = 5;
    const _: () = assert!(NUM_QUEUES == 8 && MAX_SIZE_LOG2 == 15);

    // ---- BAR0: the engine's registers (in the DMA engine's window) ----
    /// Queue q's registers at `VQ_BASE + q * VQ_STRIDE` (q < [`NUM_QUEUES`]).
    pub const VQ_BASE: u32 = 0x4000;
    pub const VQ_STRIDE: u32 = 0x40;
    /// First and one-past-last byte offset of the engine's register range
    /// (queues, then the global registers).
    pub const END: u32 = 0x4400;
    /// Ring addresses: write the low DW first (it is staged), then the high
    /// DW (the 64-bit address applies then). Write-only.
    pub const Q_DESC_LO: u32 = 0x00;
    pub const Q_DESC_HI: u32 = 0x04;
    pub const Q_AVAIL_LO: u32 = 0x08;
    pub const Q_AVAIL_HI: u32 = 0x0C;
    pub const Q_USED_LO: u32 = 0x10;
    pub const Q_USED_HI: u32 = 0x14;
    /// The `CFG_CTRL` word (size log2, enable, reset, tenant). Write-only.
    pub const Q_CTRL: u32 = 0x18;
    /// `last_avail_idx` (bits 15:0): reads the card's, a write sets it.
    pub const Q_LAST_AVAIL: u32 = 0x1C;
    /// The used index (bits 15:0): reads the card's, a write sets it.
    pub const Q_USED_IDX: u32 = 0x20;
    /// The queue's error state (`ERR_*`), read-only; `CTRL_RESET` clears it.
    pub const Q_ERROR: u32 = 0x24;
    /// Global registers.
    pub const VQ_GLOBAL: u32 = 0x4200;
    /// Interrupts raised per queue (bit q), sticky; write 1s to clear.
    pub const VQ_IRQ_STATUS: u32 = 0x4200;
    pub const VQ_CNT_TX_FRAMES: u32 = 0x4204;
    pub const VQ_CNT_TX_DROPS: u32 = 0x4208;
    pub const VQ_CNT_QUEUE_ERRORS: u32 = 0x420C;
    pub const VQ_CNT_IRQS: u32 = 0x4210;
    pub const VQ_CNT_IRQ_SUPPRESSED: u32 = 0x4214;
    pub const VQ_CNT_FLAG_READ_ERRORS: u32 = 0x4218;
    pub const VQ_CNT_RX_FRAMES: u32 = 0x421C;
    pub const VQ_CNT_RX_DROPS: u32 = 0x4220;
    pub const VQ_CNT_RX_BAD_BUFFERS: u32 = 0x4224;
    /// Doorbells: any write to queue q's page (`NOTIFY_BASE + q *
    /// NOTIFY_STRIDE`, one page each, so a hypervisor can map one VM's
    /// doorbells into it and no other's) tells the card the queue has new
    /// available entries; the value is ignored (virtio-pci's notify data
    /// without VIRTIO_F_NOTIFICATION_DATA).
    pub const NOTIFY_BASE: u32 = 0x8000;
    pub const NOTIFY_STRIDE: u32 = 0x1000;

    const fn r(name: &'static str, offset: u32, access: super::Access, doc: &'static str) -> super::Register {
        super::Register { name, offset, access, reset: 0, doc }
    }
    use super::Access::*;
    /// Registers of one queue, offsets relative to `VQ_BASE + q * VQ_STRIDE`.
    pub const QUEUE_REGISTERS: &[super::Register] = &[
        r("VQ_Q_DESC_LO", Q_DESC_LO, WriteTrigger, "Descriptor table address [31:0], staged until Q_DESC_HI is written. Write-only."),
        r("VQ_Q_DESC_HI", Q_DESC_HI, WriteTrigger, "Descriptor table address [63:32]; the 64-bit address applies. Write-only."),
        r("VQ_Q_AVAIL_LO", Q_AVAIL_LO, WriteTrigger, "Available ring address [31:0] (staged). Write-only."),
        r("VQ_Q_AVAIL_HI", Q_AVAIL_HI, WriteTrigger, "Available ring address [63:32]; applies. Write-only."),
        r("VQ_Q_USED_LO", Q_USED_LO, WriteTrigger, "Used ring address [31:0] (staged). Write-only."),
        r("VQ_Q_USED_HI", Q_USED_HI, WriteTrigger, "Used ring address [63:32]; applies. Write-only."),
        r("VQ_Q_CTRL", Q_CTRL, WriteTrigger, "Size log2 [3:0], enable [8], reset [9] (indices and error to 0), the pair's tenant [15:12] (transmitq). Write-only."),
        r("VQ_Q_LAST_AVAIL", Q_LAST_AVAIL, ReadWrite, "The card's last_avail_idx [15:0]; a write sets it (migration)."),
        r("VQ_Q_USED_IDX", Q_USED_IDX, ReadWrite, "The card's used index [15:0]; a write sets it (migration)."),
        r("VQ_Q_ERROR", Q_ERROR, ReadOnly, "Error state: 0 none, 1 avail jump, 2 index, 3 chain loop, 4 indirect, 5 read error (docs/virtio.md)."),
    ];
    /// Global registers of the engine (absolute BAR0 offsets).
    pub const GLOBAL_REGISTERS: &[super::Register] = &[
        r("VQ_IRQ_STATUS", VQ_IRQ_STATUS, ReadWrite, "Interrupts raised, bit q for queue q (sticky; write 1s to clear). Each also raises the card's MSI."),
        r("VQ_CNT_TX_FRAMES", VQ_CNT_TX_FRAMES, CounterWriteClears, "Frames sent from transmitqs."),
        r("VQ_CNT_TX_DROPS", VQ_CNT_TX_DROPS, CounterWriteClears, "Transmit chains dropped (device-writable buffer, too many buffers, no frame, frame too long)."),
        r("VQ_CNT_QUEUE_ERRORS", VQ_CNT_QUEUE_ERRORS, CounterWriteClears, "Queues that went into an error state."),
        r("VQ_CNT_IRQS", VQ_CNT_IRQS, CounterWriteClears, "Queue interrupts raised."),
        r("VQ_CNT_IRQ_SUPPRESSED", VQ_CNT_IRQ_SUPPRESSED, CounterWriteClears, "Interrupts not raised: the driver set VIRTQ_AVAIL_F_NO_INTERRUPT."),
        r("VQ_CNT_FLAG_READ_ERRORS", VQ_CNT_FLAG_READ_ERRORS, CounterWriteClears, "Reads of avail.flags that failed (no interrupt)."),
        r("VQ_CNT_RX_FRAMES", VQ_CNT_RX_FRAMES, CounterWriteClears, "Frames written into receiveq buffers."),
        r("VQ_CNT_RX_DROPS", VQ_CNT_RX_DROPS, CounterWriteClears, "Frames for a pair's tenant dropped: no buffer posted, the buffer too small, or the frame malformed."),
        r("VQ_CNT_RX_BAD_BUFFERS", VQ_CNT_RX_BAD_BUFFERS, CounterWriteClears, "Receive chains whose first buffer is not device-writable, handed back unused."),
    ];
}
