//! The card top: everything between the PCIe hard block's TLP stream and the
//! rest of the board. Completions go to the DMA engine, requests to the
//! endpoint; both send TLPs through one arbiter. The DMA engine's registers
//! are the BAR0 region from 0x1000 (the endpoint's `ext` bus), the tagged
//! cache's from 0x3000.
//!
//! Blocks meet through the bundles of [`crate::bus`]: a TLP stream
//! ([`TlpSource`] into [`TlpSink`](crate::bus::TlpSink)) and the BAR0 register bus
//! ([`RegBusController`] into [`RegBusTarget`]), each connected with one
//! `join`. The card's own ports stay flat (`rx_*`, `tx_*`, `net_*`: the
//! simulators' C ABI and the synthesis harness use those names).
//!
//! The network side is an Ethernet port (`net_tx_*` out, `net_rx_*` in;
//! frames without FCS, 64-bit beats). Frames of the DMA engine's TX queues
//! are encapsulated (Geneve, outer UDP source port from the tenant's path
//! policy) on their way out; packets coming in are validated and
//! decapsulated, their VNI picks tenant and RX queue, and they merge with the
//! tagged cache's miss records into the DMA engine's receive port. BAR0:
//! encapsulation 0x2000, decapsulation 0x2800, cache 0x3000.

use crate::bus::{RegBusController, RegBusTarget, TlpSource};
use crate::dma::DmaEngine;
use crate::endpoint::TlpEndpoint;
use crate::geneve_decap::GeneveDecap;
use crate::geneve_encap::GeneveEncap;
use crate::rx_merge::RxMerge;
use crate::tagged_cache::TaggedCache;
use crate::tlp_mux::{RxDemux, TxArbiter};
use rust_hdl::prelude::*;

#[derive(LogicBlock, Default)]
pub struct OffcardTop {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub rx_data: Signal<In, Bits<64>>,
    pub rx_keep: Signal<In, Bits<2>>,
    pub rx_sop: Signal<In, Bit>,
    pub rx_eop: Signal<In, Bit>,
    pub rx_valid: Signal<In, Bit>,
    pub rx_ready: Signal<Out, Bit>,
    pub tx_data: Signal<Out, Bits<64>>,
    pub tx_keep: Signal<Out, Bits<2>>,
    pub tx_sop: Signal<Out, Bit>,
    pub tx_eop: Signal<Out, Bit>,
    pub tx_valid: Signal<Out, Bit>,
    pub tx_ready: Signal<In, Bit>,
    pub net_tx_data: Signal<Out, Bits<64>>,
    pub net_tx_bytes: Signal<Out, Bits<4>>,
    pub net_tx_last: Signal<Out, Bit>,
    pub net_tx_valid: Signal<Out, Bit>,
    pub net_tx_ready: Signal<In, Bit>,
    pub net_rx_data: Signal<In, Bits<64>>,
    pub net_rx_bytes: Signal<In, Bits<4>>,
    pub net_rx_last: Signal<In, Bit>,
    pub net_rx_valid: Signal<In, Bit>,
    pub net_rx_ready: Signal<Out, Bit>,
    endpoint: TlpEndpoint,
    dma: DmaEngine,
    demux: RxDemux,
    arb: TxArbiter,
    cache: TaggedCache,
    encap: GeneveEncap,
    decap: GeneveDecap,
    rxm: RxMerge,
    bar0: Bar0Split,
}

impl Logic for OffcardTop {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, endpoint, dma, demux, arb, cache, encap, decap, rxm, bar0);
        self.endpoint.reset.next = self.reset.val();
        self.dma.reset.next = self.reset.val();
        self.demux.reset.next = self.reset.val();
        self.arb.reset.next = self.reset.val();
        self.cache.reset.next = self.reset.val();
        self.encap.reset.next = self.reset.val();
        self.decap.reset.next = self.reset.val();
        self.rxm.reset.next = self.reset.val();
        // RX: one stream, two consumers
        self.demux.rx.data.next = self.rx_data.val();
        self.demux.rx.keep.next = self.rx_keep.val();
        self.demux.rx.sop.next = self.rx_sop.val();
        self.demux.rx.eop.next = self.rx_eop.val();
        self.demux.rx.valid.next = self.rx_valid.val();
        self.rx_ready.next = self.demux.rx.ready.val();
        TlpSource::join(&mut self.demux.ep, &mut self.endpoint.rx);
        TlpSource::join(&mut self.demux.dma, &mut self.dma.cpl);
        // TX: endpoint (a) and DMA (b) share the link
        TlpSource::join(&mut self.endpoint.tx, &mut self.arb.a);
        TlpSource::join(&mut self.dma.tx, &mut self.arb.b);
        self.tx_data.next = self.arb.out.data.val();
        self.tx_keep.next = self.arb.out.keep.val();
        self.tx_sop.next = self.arb.out.sop.val();
        self.tx_eop.next = self.arb.out.eop.val();
        self.tx_valid.next = self.arb.out.valid.val();
        self.arb.out.ready.next = self.tx_ready.val();
        // BAR0 from 0x1000: the endpoint's bus to the four blocks. Each
        // block decodes its own range and reads 0 outside it.
        RegBusController::join(&mut self.endpoint.ext, &mut self.bar0.host);
        RegBusController::join(&mut self.bar0.dma, &mut self.dma.bar);
        RegBusController::join(&mut self.bar0.cache, &mut self.cache.bar);
        RegBusController::join(&mut self.bar0.encap, &mut self.encap.bar);
        RegBusController::join(&mut self.bar0.decap, &mut self.decap.bar);
        // The cache's data-path client: the encapsulation pipeline looks up
        // each frame's inner destination (tagged by tenant) for its outer one.
        self.cache.req_valid.next = self.encap.map_req_valid.val();
        self.cache.req_op.next = self.encap.map_req_op.val();
        self.cache.req_tag.next = self.encap.map_req_tag.val();
        self.cache.req_key.next = self.encap.map_req_key.val();
        self.cache.req_value.next = self.encap.map_req_value.val();
        self.encap.map_req_ready.next = self.cache.req_ready.val();
        self.encap.map_rsp_valid.next = self.cache.rsp_valid.val();
        self.encap.map_rsp_hit.next = self.cache.rsp_hit.val();
        self.encap.map_rsp_value.next = self.cache.rsp_value.val();
        self.dma.requester_id.next = self.endpoint.completer_id.val();
        self.dma.bus_master.next = self.endpoint.bus_master.val();
        self.dma.max_payload.next = self.endpoint.max_payload.val();
        self.dma.max_read_req.next = self.endpoint.max_read_req.val();
        self.endpoint.irq_request.next = self.dma.irq.val();
        // TX: DMA engine -> encapsulation -> the port
        self.encap.in_data.next = self.dma.ntx_data.val();
        self.encap.in_bytes.next = self.dma.ntx_bytes.val();
        self.encap.in_last.next = self.dma.ntx_last.val();
        self.encap.in_valid.next = self.dma.ntx_valid.val();
        self.encap.in_tenant.next = self.dma.ntx_tenant.val();
        self.encap.in_len.next = self.dma.ntx_len.val();
        self.dma.ntx_ready.next = self.encap.in_ready.val();
        self.net_tx_data.next = self.encap.out_data.val();
        self.net_tx_bytes.next = self.encap.out_bytes.val();
        self.net_tx_last.next = self.encap.out_last.val();
        self.net_tx_valid.next = self.encap.out_valid.val();
        self.encap.out_ready.next = self.net_tx_ready.val();
        // RX: the port -> decapsulation -> merge with cache misses -> DMA engine
        self.decap.in_data.next = self.net_rx_data.val();
        self.decap.in_bytes.next = self.net_rx_bytes.val();
        self.decap.in_last.next = self.net_rx_last.val();
        self.decap.in_valid.next = self.net_rx_valid.val();
        self.net_rx_ready.next = self.decap.in_ready.val();
        self.rxm.a_data.next = self.decap.out_data.val();
        self.rxm.a_bytes.next = self.decap.out_bytes.val();
        self.rxm.a_last.next = self.decap.out_last.val();
        self.rxm.a_valid.next = self.decap.out_valid.val();
        self.rxm.a_queue.next = self.decap.out_queue.val();
        self.rxm.a_tenant.next = self.decap.out_tenant.val();
        self.rxm.a_len.next = self.decap.out_len.val();
        self.decap.out_ready.next = self.rxm.a_ready.val();
        self.rxm.miss_valid.next = self.cache.miss_valid.val();
        self.rxm.miss_tag.next = self.cache.miss_tag.val();
        self.rxm.miss_key.next = self.cache.miss_key.val();
        self.cache.miss_ready.next = self.rxm.miss_ready.val();
        self.dma.nrx_data.next = self.rxm.out_data.val();
        self.dma.nrx_bytes.next = self.rxm.out_bytes.val();
        self.dma.nrx_last.next = self.rxm.out_last.val();
        self.dma.nrx_valid.next = self.rxm.out_valid.val();
        self.dma.nrx_queue.next = self.rxm.out_queue.val();
        self.dma.nrx_tenant.next = self.rxm.out_tenant.val();
        self.dma.nrx_len.next = self.rxm.out_len.val();
        self.rxm.out_ready.next = self.dma.nrx_ready.val();
    }
}

/// The BAR0 bus from the endpoint (`host`) to the blocks behind it: the
/// endpoint's address, write enable, data and mask go to all four; each
/// block's read data is registered (the blocks decode the endpoint's
/// registered address and mux their registers, the OR of the four flops
/// reaches the endpoint a cycle later: the endpoint waits for it).
#[derive(LogicBlock, Default)]
pub struct Bar0Split {
    pub clock: Signal<In, Clock>,
    pub host: RegBusTarget,
    pub dma: RegBusController,
    pub cache: RegBusController,
    pub encap: RegBusController,
    pub decap: RegBusController,
    rd_dma: DFF<Bits<32>>,
    rd_cache: DFF<Bits<32>>,
    rd_encap: DFF<Bits<32>>,
    rd_decap: DFF<Bits<32>>,
}

impl Logic for Bar0Split {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, rd_dma, rd_cache, rd_encap, rd_decap);
        self.dma.addr.next = self.host.addr.val();
        self.dma.wr_en.next = self.host.wr_en.val();
        self.dma.wr_data.next = self.host.wr_data.val();
        self.dma.wr_mask.next = self.host.wr_mask.val();
        self.cache.addr.next = self.host.addr.val();
        self.cache.wr_en.next = self.host.wr_en.val();
        self.cache.wr_data.next = self.host.wr_data.val();
        self.cache.wr_mask.next = self.host.wr_mask.val();
        self.encap.addr.next = self.host.addr.val();
        self.encap.wr_en.next = self.host.wr_en.val();
        self.encap.wr_data.next = self.host.wr_data.val();
        self.encap.wr_mask.next = self.host.wr_mask.val();
        self.decap.addr.next = self.host.addr.val();
        self.decap.wr_en.next = self.host.wr_en.val();
        self.decap.wr_data.next = self.host.wr_data.val();
        self.decap.wr_mask.next = self.host.wr_mask.val();
        self.rd_dma.d.next = self.dma.rd_data.val();
        self.rd_cache.d.next = self.cache.rd_data.val();
        self.rd_encap.d.next = self.encap.rd_data.val();
        self.rd_decap.d.next = self.decap.rd_data.val();
        self.host.rd_data.next = self.rd_dma.q.val() | self.rd_cache.q.val() | self.rd_encap.q.val() | self.rd_decap.q.val();
    }
}
