//! Where the benchmarks' reports go: the markdown, JSON and PNG files of a task-sequence
//! or Elec2 run, and the redrawing of a report's plots. The only module that joins the
//! benchmarks (`bench`) and the plots (`plot`), so neither depends on the other.

use std::path::PathBuf;

use crate::bench::{elec2_markdown, markdown, BenchReport, Scenario, StreamResult};
use crate::plot;

/// Writes `bench-<scenario>.md`, `.json` and the plots (`-acc.png`, `-matrix.png`,
/// `-cost.png`) into `dir`; returns the first two.
pub fn write(report: &BenchReport, dir: &std::path::Path) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let name = scenario_name(report.options.scenario);
    let md = dir.join(format!("bench-{name}.md"));
    let json = dir.join(format!("bench-{name}.json"));
    std::fs::write(&md, markdown(report))?;
    plot::tasks(report, &name, dir).map_err(std::io::Error::other)?;
    std::fs::write(
        &json,
        serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?,
    )?;
    Ok((md, json))
}

/// The scenario's name in file names (`rotated-mnist`).
fn scenario_name(scenario: Scenario) -> String {
    serde_json::to_value(scenario)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "bench".into())
}

/// Redraws the PNG plots of a report next to it: a task-sequence report
/// (`bench-<scenario>.json`), a `relearn eval` report (`eval.json`, its `eval.png`) or a
/// `scripts/soak.sh` sample file (`soak.csv`, its `soak.png`).
pub fn replot(json: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    if json.extension().is_some_and(|e| e == "csv") {
        return plot::soak(json).map_err(std::io::Error::other);
    }
    let bytes = std::fs::read(json)?;
    let dir = json
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    match serde_json::from_slice::<BenchReport>(&bytes) {
        Ok(report) => {
            let name = scenario_name(report.options.scenario);
            plot::tasks(&report, &name, dir).map_err(std::io::Error::other)
        }
        Err(bench) => match serde_json::from_slice::<relearn::eval::EvalReport>(&bytes) {
            Ok(report) => plot::eval(&report, dir).map_err(std::io::Error::other),
            Err(eval) => Err(std::io::Error::other(format!(
                "{} is not a relearn-bench report ({bench}) nor a relearn eval report ({eval})",
                json.display()
            ))),
        },
    }
}

/// Writes `bench-elec2.md`, `.json` and `.png` into `dir`; returns the first two.
pub fn write_elec2(
    results: &[StreamResult],
    dir: &std::path::Path,
) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let md = dir.join("bench-elec2.md");
    let json = dir.join("bench-elec2.json");
    std::fs::write(&md, elec2_markdown(results))?;
    plot::elec2(results, dir).map_err(std::io::Error::other)?;
    std::fs::write(
        &json,
        serde_json::to_vec_pretty(results).map_err(std::io::Error::other)?,
    )?;
    Ok((md, json))
}
