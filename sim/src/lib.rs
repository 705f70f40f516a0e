//! The simulated card: the Verilator model of the generated Verilog and the
//! root-complex model (host memory, configuration and BAR accesses as TLPs,
//! completions matched by tag, MSI notifications) around it.

pub mod block;
pub mod model;
pub use block::{BlockSim, VerilatedBlock};
pub use model::{CardInputs, CardModel, CardOutputs, CardSim, Recording};
pub mod host_memory;
pub mod root_complex;
pub mod tlp;
pub use host_memory::{HostMemory, MemError};
pub use root_complex::{Enumerated, NetFrame, NetPort, RootComplex, SimError, Timing};
pub mod transport;
pub use transport::{sim_err, SimNetwork, SimTransport, SIM_BAR0_ADDR, SIM_CLOCK_HZ, SIM_IOVA_BASE};
pub mod card_process;
