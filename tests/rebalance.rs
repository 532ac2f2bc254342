//! Rebalances: a second daemon joins the group mid-stream. The first makes its open batch
//! durable and commits before it releases partitions, the second starts where the first
//! stopped, and between their two stores every record is processed exactly once.

mod common;

use std::time::Duration;

use common::*;

const PARTITIONS: i32 = 4;
const HALF: usize = 50_000;

fn write_config(
    dir: &std::path::Path,
    name: &str,
    brokers: &str,
    topic: &str,
    group: &str,
    dlq: &str,
) -> (std::path::PathBuf, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\ntopics = [\"{topic}\"]\ngroup_id = \"{group}\"\ndead_letter_topic = \"{dlq}\"\n[kafka.consumer_properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n[schema]\nfeatures = [\"a\"]\nlabel = \"\"\nclasses = []\n[ingest]\nbatch_max_records = 500\n[store]\npath = \"{}\"\n[http]\nlisten = \"{addr}\"\n",
            dir.join(name).display()
        ),
    )
    .unwrap();
    (path, addr)
}

fn records(addr: &str) -> Option<f64> {
    metric(
        &http_get(addr, "/metrics")?.1,
        "relearn_ingest_records_total",
    )
}

fn assigned(addr: &str) -> Option<f64> {
    metric(
        &http_get(addr, "/metrics")?.1,
        "relearn_ingest_assigned_partitions",
    )
}

#[test]
fn second_member_takes_over_partitions_without_loss_or_duplicates() {
    let brokers = broker();
    let topic = unique("rebalance");
    let dlq = unique("rebalance-dead");
    let group = unique("rebalance-group");
    create_topic(&brokers, &topic, PARTITIONS);
    let payloads: Vec<Vec<u8>> = (0..2 * HALF).map(|i| format!("{i}").into_bytes()).collect();
    produce(&brokers, &topic, PARTITIONS, &payloads[..HALF]);

    let dir = tempfile::tempdir().unwrap();
    let (ca, addr_a) = write_config(dir.path(), "a", &brokers, &topic, &group, &dlq);
    let (cb, addr_b) = write_config(dir.path(), "b", &brokers, &topic, &group, &dlq);
    let a = spawn_daemon(&ca, &dir.path().join("a.log"));
    wait_for(Duration::from_secs(60), || {
        records(&addr_a).filter(|&n| n >= HALF as f64)
    })
    .expect("first member processes the first half");
    assert_eq!(assigned(&addr_a), Some(PARTITIONS as f64));

    let b = spawn_daemon(&cb, &dir.path().join("b.log"));
    // Both members hold partitions once the group has rebalanced.
    wait_for(Duration::from_secs(60), || {
        let (x, y) = (assigned(&addr_a)?, assigned(&addr_b)?);
        (x > 0.0 && y > 0.0 && x + y == PARTITIONS as f64).then_some(())
    })
    .expect("the group rebalances over both members");
    produce(&brokers, &topic, PARTITIONS, &payloads[HALF..]);
    wait_for(Duration::from_secs(90), || {
        let total = records(&addr_a)? + records(&addr_b)?;
        (total >= (2 * HALF) as f64).then_some(())
    })
    .expect("both members together process every record");
    let rebalances = metric(
        &http_get(&addr_a, "/metrics").unwrap().1,
        "relearn_ingest_rebalances_total",
    )
    .unwrap();
    assert!(
        rebalances >= 2.0,
        "first member saw assign and revoke: {rebalances}"
    );
    stop_gracefully(a);
    stop_gracefully(b);

    let ra = relearn::inspect::inspect_path(&dir.path().join("a")).unwrap();
    let rb = relearn::inspect::inspect_path(&dir.path().join("b")).unwrap();
    let total = ra.counters["records"] + rb.counters["records"];
    assert_eq!(total, (2 * HALF) as u64, "exactly once across both stores");
    assert!(rb.counters["records"] > 0, "the second member did work");
    // Each partition's end offset is the stored offset of the member that held it last.
    let ends = end_offsets(&brokers, &topic, PARTITIONS);
    for (p, end) in ends.iter().enumerate() {
        let key = format!("{topic}/{p}");
        let last = [ra.offsets.get(&key), rb.offsets.get(&key)]
            .into_iter()
            .flatten()
            .max()
            .copied();
        assert_eq!(last, Some(*end), "partition {p}");
    }
}
