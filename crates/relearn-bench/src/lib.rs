//! relearn-bench: the continual-learning benchmarks beside the daemon (task sequences built
//! from real data, the Elec2 stream through the daemon's own path) and the PNG plots of their
//! reports and of `relearn eval`'s. The daemon links none of it.

pub mod bench;
pub mod datasets;
pub mod output;
pub mod plot;
