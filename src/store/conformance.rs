//! The behaviour every `KvStore` engine must share; run against each engine's tests.

use super::{Cf, KvStore, WriteBatch};

/// Checks get/put/delete, batch order and atomic visibility, prefix scans and CF isolation.
pub(crate) fn run(store: &dyn KvStore) {
    assert_eq!(store.get(Cf::Meta, b"a").unwrap(), None);

    let mut b = WriteBatch::new();
    b.put(Cf::Meta, b"a".to_vec(), b"1".to_vec());
    b.put(Cf::Meta, b"a".to_vec(), b"2".to_vec());
    b.put(Cf::Replay, b"a".to_vec(), b"r".to_vec());
    b.put(Cf::Meta, b"ab".to_vec(), b"3".to_vec());
    b.put(Cf::Meta, b"b".to_vec(), b"4".to_vec());
    b.put(Cf::Meta, b"gone".to_vec(), b"x".to_vec());
    b.delete(Cf::Meta, b"gone".to_vec());
    assert_eq!(b.len(), 7);
    store.write(b).unwrap();

    assert_eq!(
        store.get(Cf::Meta, b"a").unwrap(),
        Some(b"2".to_vec()),
        "last put wins"
    );
    assert_eq!(store.get(Cf::Replay, b"a").unwrap(), Some(b"r".to_vec()));
    assert_eq!(
        store.get(Cf::Models, b"a").unwrap(),
        None,
        "column families are isolated"
    );
    assert_eq!(
        store.get(Cf::Meta, b"gone").unwrap(),
        None,
        "delete after put removes"
    );

    let scan = store.scan_prefix(Cf::Meta, b"a").unwrap();
    assert_eq!(
        scan,
        vec![
            (b"a".to_vec(), b"2".to_vec()),
            (b"ab".to_vec(), b"3".to_vec())
        ]
    );
    assert_eq!(store.scan_prefix(Cf::Meta, b"").unwrap().len(), 3);
    assert!(store.scan_prefix(Cf::Models, b"").unwrap().is_empty());

    let mut b = WriteBatch::new();
    b.delete(Cf::Meta, b"a".to_vec());
    store.write(b).unwrap();
    assert_eq!(store.get(Cf::Meta, b"a").unwrap(), None);

    store.write(WriteBatch::new()).unwrap();

    // Binary keys sort bytewise.
    let mut b = WriteBatch::new();
    for i in [3u32, 256, 1] {
        b.put(
            Cf::Replay,
            [b"k".as_slice(), &i.to_be_bytes()].concat(),
            vec![0u8; 2],
        );
    }
    store.write(b).unwrap();
    let keys: Vec<Vec<u8>> = store
        .scan_prefix(Cf::Replay, b"k")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        vec![
            [b"k".as_slice(), &1u32.to_be_bytes()].concat(),
            [b"k".as_slice(), &3u32.to_be_bytes()].concat(),
            [b"k".as_slice(), &256u32.to_be_bytes()].concat(),
        ]
    );
}
