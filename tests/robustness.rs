//! Reliability and security: nothing is lost or corrupted
//! under crashes, contention and hostile input; files stay private; nothing
//! touches the network. docs/reliability.md maps each guarantee to the test
//! here that proves it and to the figures measured.
//!
//! Every module drives the real `csm` binary or the library's public API on
//! temp dirs (see tests/support).

mod support;

#[path = "robustness/concurrency.rs"]
mod concurrency;
#[path = "robustness/contention.rs"]
mod contention;
#[path = "robustness/crash.rs"]
mod crash;
#[path = "robustness/fuzz_regressions.rs"]
mod fuzz_regressions;
#[path = "robustness/garbage.rs"]
mod garbage;
#[path = "robustness/hostile.rs"]
mod hostile;
#[path = "robustness/network.rs"]
mod network;
#[path = "robustness/oracles.rs"]
mod oracles;
#[path = "robustness/permissions.rs"]
mod permissions;
#[path = "robustness/properties.rs"]
mod properties;
#[path = "robustness/tools.rs"]
mod tools;
