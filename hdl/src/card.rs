//! The card top: everything between the PCIe hard block's TLP stream and the
//! rest of the board. Blocks join here as they land (DMA engine, network
//! pipeline, cache); for now the endpoint serves BAR0 alone and the BAR0 region
//! behind `ext_*` reads as zero.

use crate::endpoint::TlpEndpoint;
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
    endpoint: TlpEndpoint,
}

impl Logic for OffcardTop {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, endpoint);
        self.endpoint.reset.next = self.reset.val();
        self.endpoint.rx_data.next = self.rx_data.val();
        self.endpoint.rx_keep.next = self.rx_keep.val();
        self.endpoint.rx_sop.next = self.rx_sop.val();
        self.endpoint.rx_eop.next = self.rx_eop.val();
        self.endpoint.rx_valid.next = self.rx_valid.val();
        self.rx_ready.next = self.endpoint.rx_ready.val();
        self.tx_data.next = self.endpoint.tx_data.val();
        self.tx_keep.next = self.endpoint.tx_keep.val();
        self.tx_sop.next = self.endpoint.tx_sop.val();
        self.tx_eop.next = self.endpoint.tx_eop.val();
        self.tx_valid.next = self.endpoint.tx_valid.val();
        self.endpoint.tx_ready.next = self.tx_ready.val();
        self.endpoint.ext_rd_data.next = 0.into();
    }
}
