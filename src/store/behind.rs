//! Write-behind: a `KvStore` wrapper whose writer thread applies the ingest path's batches
//! while the ingest thread goes on with the next batch's records.
//!
//! At most one batch is in flight: `write_behind` waits for the batch before it, and returns
//! that batch's error, so a failure is seen one batch later, before anything newer is handed
//! over, and every batch still lands whole and in order (a crash loses the batch in flight
//! whole, offsets included, exactly as a crash before a synchronous write would).
//!
//! A batch may come with a gate, what must hold before it is written (the ingest path's: the
//! broker acknowledged the predictions of its records); the writer waits for it, and a gate
//! that fails leaves its batch unwritten and is reported like a failed write. Reads and
//! synchronous writes, from any thread, first wait for the batch in flight once it is past
//! its gate (a batch without a gate is past it when handed over), so whoever reads sees every
//! batch handed over before without a gate: a file replay's results do not depend on the
//! writer's timing, and no reader waits on a broker.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::{Cf, Gate, KvStore, Pairs, StoreError, StoreMemory, WriteBatch};

/// Batches handed over, past their gate and written, and the first failure not reported yet.
#[derive(Debug, Default)]
struct Flow {
    handed: u64,
    passed: u64,
    written: u64,
    failure: Option<StoreError>,
    /// A write-behind batch failed (and was reported): later ones are refused.
    failed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    flow: Mutex<Flow>,
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Flow> {
        self.flow.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until every batch handed over is written.
    fn drained(&self) -> MutexGuard<'_, Flow> {
        let flow = self.lock();
        self.done
            .wait_while(flow, |f| f.written < f.handed)
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until every batch past its gate is written.
    fn readable(&self) -> MutexGuard<'_, Flow> {
        let flow = self.lock();
        self.done
            .wait_while(flow, |f| f.written < f.passed)
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// A batch and its gate.
type Handed = (WriteBatch, Option<Gate>);

/// `inner` with a writer thread for [`KvStore::write_behind`].
pub struct WriteBehind {
    inner: Arc<dyn KvStore>,
    shared: Arc<Shared>,
    sender: Mutex<Option<Sender<Handed>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl WriteBehind {
    /// Starts the writer thread (`relearn-store-writer`).
    pub fn new(inner: Arc<dyn KvStore>) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared::default());
        let (sender, batches) = channel::<Handed>();
        let writer = {
            let (inner, shared) = (inner.clone(), shared.clone());
            std::thread::Builder::new()
                .name("relearn-store-writer".into())
                .spawn(move || {
                    for (batch, gate) in batches {
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            if let Some(gate) = gate {
                                let passed = gate().map_err(StoreError::Gate);
                                shared.lock().passed += 1;
                                shared.done.notify_all();
                                passed?;
                            }
                            inner.write(batch)
                        }))
                        .unwrap_or_else(|_| {
                            Err(StoreError::Write(
                                "the store's writer thread panicked".into(),
                            ))
                        });
                        let mut flow = shared.lock();
                        flow.written += 1;
                        if let Err(e) = result {
                            flow.failure.get_or_insert(e);
                        }
                        drop(flow);
                        shared.done.notify_all();
                    }
                })
                .map_err(|e| StoreError::Write(Box::new(e)))?
        };
        Ok(Self {
            inner,
            shared,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Takes the failure of a batch handed over, if one failed (reported once, then
    /// `write_behind` refuses).
    fn failure(flow: &mut Flow) -> Result<(), StoreError> {
        if let Some(e) = flow.failure.take() {
            flow.failed = true;
            return Err(e);
        }
        if flow.failed {
            return Err(StoreError::Write(
                "an earlier write-behind batch failed; nothing more is written behind".into(),
            ));
        }
        Ok(())
    }
}

impl KvStore for WriteBehind {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        drop(self.shared.readable());
        self.inner.get(cf, key)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        drop(self.shared.readable());
        self.inner.write(batch)
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Pairs, StoreError> {
        drop(self.shared.readable());
        self.inner.scan_prefix(cf, prefix)
    }

    fn memory(&self) -> Result<StoreMemory, StoreError> {
        self.inner.memory()
    }

    fn write_behind(&self, batch: WriteBatch, gate: Option<Gate>) -> Result<(), StoreError> {
        let mut flow = self.shared.drained();
        Self::failure(&mut flow)?;
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sender) = sender.as_ref() else {
            return Err(StoreError::Write("the store's writer has stopped".into()));
        };
        let gated = gate.is_some();
        if sender.send((batch, gate)).is_err() {
            flow.failed = true;
            return Err(StoreError::Write(
                "the store's writer thread is gone".into(),
            ));
        }
        flow.handed += 1;
        if !gated {
            flow.passed += 1;
        }
        Ok(())
    }

    fn settle(&self) -> Result<(), StoreError> {
        Self::failure(&mut self.shared.drained())
    }
}

impl Drop for WriteBehind {
    /// Lets the writer finish the batch in flight, then stops it.
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn conformance() {
        let store = WriteBehind::new(Arc::new(MemoryStore::new())).unwrap();
        super::super::conformance::run(&store);
    }

    #[test]
    fn reads_see_every_batch_written_behind() {
        let store = WriteBehind::new(Arc::new(MemoryStore::new())).unwrap();
        for i in 0u32..200 {
            let mut b = WriteBatch::new();
            b.put(Cf::Meta, b"n".to_vec(), i.to_be_bytes().to_vec());
            b.put(Cf::Replay, i.to_be_bytes().to_vec(), vec![1]);
            store.write_behind(b, None).unwrap();
            assert_eq!(
                store.get(Cf::Meta, b"n").unwrap(),
                Some(i.to_be_bytes().to_vec())
            );
        }
        assert_eq!(store.scan_prefix(Cf::Replay, b"").unwrap().len(), 200);
        store.settle().unwrap();
    }

    /// Fails every write once `fail` is set.
    struct Failing {
        inner: MemoryStore,
        fail: std::sync::atomic::AtomicBool,
    }

    impl KvStore for Failing {
        fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(cf, key)
        }
        fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Write("disk full".into()));
            }
            self.inner.write(batch)
        }
        fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Pairs, StoreError> {
            self.inner.scan_prefix(cf, prefix)
        }
    }

    #[test]
    fn a_failed_batch_is_reported_by_the_next_call_and_nothing_more_is_written_behind() {
        let failing = Arc::new(Failing {
            inner: MemoryStore::new(),
            fail: false.into(),
        });
        let store = WriteBehind::new(failing.clone()).unwrap();
        let batch = |k: &[u8]| {
            let mut b = WriteBatch::new();
            b.put(Cf::Meta, k.to_vec(), b"v".to_vec());
            b
        };
        store.write_behind(batch(b"a"), None).unwrap();
        store.settle().unwrap();
        failing
            .fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        store.write_behind(batch(b"b"), None).unwrap();
        let err = store.write_behind(batch(b"c"), None).unwrap_err();
        assert!(
            err.source().unwrap().to_string().contains("disk full"),
            "{err}"
        );
        failing
            .fail
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let err = store.settle().unwrap_err();
        assert!(
            err.source().unwrap().to_string().contains("earlier"),
            "{err}"
        );
        assert!(store.write_behind(batch(b"d"), None).is_err());
        assert_eq!(store.get(Cf::Meta, b"a").unwrap(), Some(b"v".to_vec()));
        for k in [b"b", b"c", b"d"] {
            assert_eq!(store.get(Cf::Meta, k).unwrap(), None);
        }
        // Synchronous writes (the retrain thread's) are not refused.
        store.write(batch(b"e")).unwrap();
        assert_eq!(store.get(Cf::Meta, b"e").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn a_gated_batch_is_written_once_its_gate_passes_and_readers_do_not_wait_for_the_gate() {
        let store = WriteBehind::new(Arc::new(MemoryStore::new())).unwrap();
        let batch = |k: &[u8]| {
            let mut b = WriteBatch::new();
            b.put(Cf::Meta, k.to_vec(), b"v".to_vec());
            b
        };
        let (open, opened) = std::sync::mpsc::channel::<bool>();
        let gate: Gate = Box::new(move || match opened.recv() {
            Ok(true) => Ok(()),
            _ => Err("not acknowledged".into()),
        });
        store.write_behind(batch(b"a"), Some(gate)).unwrap();
        // The gate holds: a reader answers without the batch.
        assert_eq!(store.get(Cf::Meta, b"a").unwrap(), None);
        open.send(true).unwrap();
        store.settle().unwrap();
        assert_eq!(store.get(Cf::Meta, b"a").unwrap(), Some(b"v".to_vec()));

        // A gate that fails leaves its batch unwritten and is reported by the next call.
        let gate: Gate = Box::new(|| Err("broker down".into()));
        store.write_behind(batch(b"b"), Some(gate)).unwrap();
        let err = store.settle().unwrap_err();
        assert!(matches!(err, StoreError::Gate(_)), "{err}");
        assert!(err.source().unwrap().to_string().contains("broker down"));
        assert_eq!(store.get(Cf::Meta, b"b").unwrap(), None);
        assert!(store.write_behind(batch(b"c"), None).is_err());
    }

    use std::error::Error as _;
}
