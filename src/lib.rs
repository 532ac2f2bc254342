//! relearn: a continual-learning daemon. Records stream in from Kafka (or a file), are decoded
//! and kept durably in RocksDB with the offsets that produced them; see ARCHITECTURE.md.

pub mod app;
pub mod challenger;
pub mod config;
pub mod datasets;
pub mod drift;
pub mod error;
pub mod eval;
pub mod ingest;
pub mod inspect;
pub mod learn;
pub mod learner;
pub mod metrics;
pub mod record;
pub mod retrain;
pub mod rng;
pub mod serve;
pub mod store;
pub mod totals;
pub mod units;
