//! Error/univariate drift detectors on the TCPD change-point series (van den Burg & Williams
//! 2020) against their human annotations: F1 with a 5-step margin and detection delay.
//! `cargo bench --bench tcpd`; `benches/river_tcpd.py` runs River's ADWIN and PageHinkley on
//! the same series and columns for a side-by-side table.
//!
//! Each series is fed as its first value column (the column after the time stamp).

use std::collections::BTreeMap;
use std::io::Read;

use relearn::drift::eval::{detection_delay, f_measure};
use relearn::drift::{Adwin, DriftState, PageHinkley, StreamDetector};

fn series(name: &str) -> Vec<f64> {
    let path = format!("{}/data/tcpd/{name}.gz", env!("CARGO_MANIFEST_DIR"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("series file"))
        .read_to_string(&mut text)
        .expect("gzip");
    text.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(1)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(f64::NAN)
        })
        .collect()
}

fn detections(det: &mut dyn StreamDetector, xs: &[f64]) -> Vec<usize> {
    xs.iter()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .filter_map(|(i, &x)| (det.update(x) == DriftState::Drift).then_some(i))
        .collect()
}

fn main() {
    let path = format!("{}/data/tcpd/annotations.json", env!("CARGO_MANIFEST_DIR"));
    let ann: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("annotations")).expect("json");
    println!("| series | n | relearn ADWIN F1 | delay | relearn PageHinkley F1 | delay | detections (ADWIN / PH) |");
    println!("|---|---|---|---|---|---|---|");
    let (mut fa, mut fp) = (0.0, 0.0);
    for (file, meta) in &ann {
        let xs = series(file);
        let annotators: Vec<Vec<usize>> = meta["annotations_by_annotator"]
            .as_object()
            .expect("annotators")
            .values()
            .map(|v| {
                v.as_array()
                    .expect("list")
                    .iter()
                    .filter_map(|x| x.as_u64().map(|x| x as usize))
                    .collect()
            })
            .collect();
        let a = detections(&mut Adwin::default(), &xs);
        let p = detections(&mut PageHinkley::default(), &xs);
        let (_, _, f1a) = f_measure(&annotators, &a, 5);
        let (_, _, f1p) = f_measure(&annotators, &p, 5);
        let (da, _) = detection_delay(&annotators, &a);
        let (dp, _) = detection_delay(&annotators, &p);
        let fmt = |d: Option<f64>| d.map_or("-".to_string(), |d| format!("{d:.1}"));
        fa += f1a;
        fp += f1p;
        println!(
            "| {} | {} | {f1a:.3} | {} | {f1p:.3} | {} | {} / {} |",
            file.trim_end_matches(".csv"),
            xs.len(),
            fmt(da),
            fmt(dp),
            a.len(),
            p.len()
        );
    }
    let k = ann.len() as f64;
    println!("| mean | | {:.3} | | {:.3} | | |", fa / k, fp / k);
}
