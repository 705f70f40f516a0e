//! Port names of the virtqueue engine's blocks, for their test benches
//! (testbench/tests/virtq_*.rs) and the rust-hdl vs Verilator comparison.

crate::named_ports!(offcard_hdl::virtq::chain_fetch::VirtqChainFetch, "virtq_chain_fetch",
    in: [reset, cfg_we, cfg_q, cfg_sel, cfg_data, kick, kick_q, room, one_chain, st_q, rd_ready, rsp_valid, rsp_data, rsp_err, seg_ready],
    out: [st_last_avail, st_err, ev_error, rd_valid, rd_addr, rd_qws, seg_valid, seg_q, seg_head, seg_addr, seg_len,
        seg_write, seg_first, seg_last, seg_abort]);

crate::named_ports!(offcard_hdl::virtq::used::VirtqUsed, "virtq_used",
    in: [reset, cfg_we, cfg_q, cfg_sel, cfg_data, done_valid, done_q, done_head, done_len, st_q, wr_ready, rd_ready,
        rsp_valid, rsp_data, rsp_err],
    out: [done_ready, st_used_idx, wr_valid, wr_addr, wr_data, wr_bytes, rd_valid, rd_addr, irq, irq_q, ev_suppressed,
        ev_read_error]);

crate::named_ports!(offcard_hdl::virtq::tx_frame::VirtqTxFrame, "virtq_tx_frame",
    in: [reset, cfg_we, cfg_q, cfg_sel, cfg_data, seg_valid, seg_q, seg_head, seg_addr, seg_len, seg_write, seg_last,
        seg_abort, job_ready, sent, done_ready],
    out: [seg_ready, job_valid, job_addr, job_len, job_first, job_last, frame_len, frame_tenant, frame_q, done_valid,
        done_q, done_head, ev_drop]);

crate::named_ports!(offcard_hdl::virtq::regs::VirtqRegs, "virtq_regs",
    in: [reset, reg_addr, reg_wr_en, reg_wr_data, reg_wr_mask, st_last_avail, st_err, st_used_idx, ev_tx_frame, ev_tx_drop,
        ev_queue_error, ev_irq, ev_irq_q, ev_suppressed, ev_flag_read_error, ev_rx_frame, ev_rx_drop, ev_rx_bad],
    out: [reg_rd_data, cfg_we, cfg_q, cfg_sel, cfg_data, kick, kick_q, st_q]);

crate::named_ports!(offcard_hdl::virtq::rx::VirtqRx, "virtq_rx",
    in: [reset, cfg_we, cfg_q, cfg_sel, cfg_data, seg_valid, seg_q, seg_head, seg_addr, seg_len, seg_write, seg_first,
        seg_last, seg_abort, lk_tenant, take, take_bytes, rx_done, rx_failed, done_ready],
    out: [seg_ready, room, lk_match, lk_valid, lk_q, lk_addr, lk_len, done_valid, done_q, done_head, done_len, ev_bad]);
