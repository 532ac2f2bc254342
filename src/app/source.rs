//! Where records come from: a Kafka consumer group or the file source, chosen once from the
//! config ([`of`]). Everything that differs between them is a method of [`Source`], so the
//! wiring in [`super::run`] has no branches on it, and a new source is one more
//! implementation.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::ingest::file::{FileEnd, FileSource};
use crate::ingest::kafka::{client_config, Assignment, ClientRole, KafkaSource, Liveness};
use crate::ingest::predictions::{FilePredictions, KafkaPredictions, PredictionSink};
use crate::ingest::{DeadLetterSink, FileDeadLetters, IngestError, KafkaDeadLetters, Pipeline};
use crate::learner::Pace;
use crate::metrics::Metrics;
use crate::serve;

/// How a source's run ended, when it ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Shutdown was requested.
    Stopped,
    /// The whole input was processed (a file; a consumer group has no end).
    EndOfInput,
}

/// A source of records and what comes with it: where malformed records and predictions go,
/// how records reach the learning loop, the probes, and the consuming itself.
pub trait Source: Send {
    /// How records reach the learning loop.
    fn pace(&self) -> Pace;

    /// Where malformed records go.
    fn dead_letters(
        &self,
        config: &Config,
        store_path: &Path,
    ) -> Result<Box<dyn DeadLetterSink>, IngestError>;

    /// Where predictions go, if configured.
    fn predictions(&self, config: &Config) -> Result<Option<Box<dyn PredictionSink>>, IngestError>;

    /// How often the progress line is logged.
    fn summary_every(&self) -> Duration;

    /// `/readyz` and `/healthz`.
    fn probes(&self) -> (serve::Probe, serve::Probe);

    /// Consumes until `stop` is cancelled, an error, or the end of its input.
    fn run(
        self: Box<Self>,
        config: &Config,
        pipeline: Arc<Mutex<Pipeline>>,
        metrics: Metrics,
        stop: &CancellationToken,
    ) -> Result<Ended, IngestError>;
}

/// The configured source: Kafka when `kafka.brokers` is set, else the file source.
pub fn of(config: &Config) -> Box<dyn Source> {
    if config.uses_kafka() {
        Box::new(Kafka {
            assignment: Arc::new(Assignment::default()),
            liveness: Arc::new(Liveness::new(config.kafka.stall_timeout)),
        })
    } else {
        Box::new(File)
    }
}

/// A member of the consumer group (`[kafka]`), with the partitions it holds and the stall
/// watch that `/readyz` and `/healthz` read.
pub struct Kafka {
    assignment: Arc<Assignment>,
    liveness: Arc<Liveness>,
}

impl Source for Kafka {
    /// Live: records arrive on their own time, a retrain runs on the worker thread.
    fn pace(&self) -> Pace {
        Pace::Live
    }

    /// The dead-letter topic.
    fn dead_letters(
        &self,
        config: &Config,
        _store_path: &Path,
    ) -> Result<Box<dyn DeadLetterSink>, IngestError> {
        Ok(Box::new(KafkaDeadLetters::new(
            client_config(&config.kafka, ClientRole::Producer),
            &config.kafka.dead_letter_topic,
            config.kafka.dead_letter_max_bytes,
        )?))
    }

    /// `kafka.predictions_topic`.
    fn predictions(&self, config: &Config) -> Result<Option<Box<dyn PredictionSink>>, IngestError> {
        Ok(match &config.kafka.predictions_topic {
            Some(topic) => Some(Box::new(KafkaPredictions::new(
                client_config(&config.kafka, ClientRole::Producer),
                topic,
            )?)),
            None => None,
        })
    }

    /// Every 30 s.
    fn summary_every(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// Ready once partitions are assigned, healthy while ingest is not stalled.
    fn probes(&self) -> (serve::Probe, serve::Probe) {
        let (a, l) = (self.assignment.clone(), self.liveness.clone());
        (
            Arc::new(move || a.count() > 0),
            Arc::new(move || l.healthy()),
        )
    }

    fn run(
        self: Box<Self>,
        config: &Config,
        pipeline: Arc<Mutex<Pipeline>>,
        metrics: Metrics,
        stop: &CancellationToken,
    ) -> Result<Ended, IngestError> {
        let source = config.kafka_source();
        KafkaSource::new(&source, pipeline, metrics, self.assignment, self.liveness)?.run(stop)?;
        Ok(Ended::Stopped)
    }
}

/// A file, standard input or the embedded Elec2 stream (`[file]`).
pub struct File;

impl Source for File {
    /// Replay: a triggered retrain runs inline, so a replay is reproducible.
    fn pace(&self) -> Pace {
        Pace::Replay
    }

    /// `file.dead_letter_path`, by default `dead-letter.jsonl` beside the store.
    fn dead_letters(
        &self,
        config: &Config,
        store_path: &Path,
    ) -> Result<Box<dyn DeadLetterSink>, IngestError> {
        let path = match &config.file.dead_letter_path {
            Some(path) => path.clone(),
            None => store_path.join("dead-letter.jsonl"),
        };
        Ok(Box::new(FileDeadLetters::open(path)?))
    }

    /// `file.predictions_path`.
    fn predictions(&self, config: &Config) -> Result<Option<Box<dyn PredictionSink>>, IngestError> {
        Ok(match &config.file.predictions_path {
            Some(path) => Some(Box::new(FilePredictions::open(path.clone())?)),
            None => None,
        })
    }

    /// Every second.
    fn summary_every(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Always ready and healthy.
    fn probes(&self) -> (serve::Probe, serve::Probe) {
        (Arc::new(|| true), Arc::new(|| true))
    }

    fn run(
        self: Box<Self>,
        config: &Config,
        pipeline: Arc<Mutex<Pipeline>>,
        _metrics: Metrics,
        stop: &CancellationToken,
    ) -> Result<Ended, IngestError> {
        let source = FileSource::open(&config.file, &config.schema, &config.ingest)?;
        tracing::info!(source = source.name(), "reading the file source");
        Ok(match source.run(&pipeline, stop)? {
            FileEnd::EndOfInput => Ended::EndOfInput,
            FileEnd::Cancelled => Ended::Stopped,
        })
    }
}
