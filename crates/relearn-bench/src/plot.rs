//! PNG plots of `relearn-bench` and `relearn eval` reports (plotters, bitmap backend, an
//! embedded DejaVu Sans so no system font is needed): accuracy (or MAE) over the stream,
//! accuracy matrices, cost vs forgetting and cost vs new-task accuracy (the frontier of
//! `--max-cost` budgets).

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;

use relearn::eval::EvalReport;
use relearn::learn::Task;

use crate::bench::{BenchReport, StreamResult};

static FONT: &[u8] = include_bytes!("../data/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn font() {
    REGISTER.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            tracing::warn!("embedded font rejected; plots will lack text");
        }
    });
}

/// A plot that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("plot {path}: {reason}")]
pub struct PlotError {
    pub path: String,
    pub reason: String,
}

fn err(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> PlotError + '_ {
    move |e| PlotError {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

type Series<'a> = (&'a str, Vec<(f64, f64)>);

/// The y axis of a line plot: an accuracy (up to 1, from a little under the lowest point)
/// or an error (from 0).
#[derive(Debug, Clone, Copy)]
enum Scale {
    Accuracy,
    Error,
}

fn lines(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series<'_>],
    scale: Scale,
) -> Result<(), PlotError> {
    font();
    let e = err(path);
    let xmax = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0, f64::max);
    let ys = || series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (ymin, ymax) = match scale {
        Scale::Accuracy => (ys().fold(1.0, f64::min).clamp(0.0, 0.9) - 0.02, 1.0),
        Scale::Error => (
            0.0,
            ys().filter(|y| y.is_finite()).fold(1e-9, f64::max) * 1.05,
        ),
    };
    let root = BitMapBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, ymin.max(0.0)..ymax)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|x| e(&x))?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

/// `bench-elec2.png`: prequential accuracy over the stream, one line per strategy.
pub fn elec2(results: &[StreamResult], dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let path = dir.join("bench-elec2.png");
    let series: Vec<Series<'_>> = results
        .iter()
        .map(|r| {
            (
                r.strategy.as_str(),
                r.over_time.iter().map(|&(n, a)| (n as f64, a)).collect(),
            )
        })
        .collect();
    lines(
        &path,
        "Elec2: prequential accuracy over time (per ingest batch)",
        "records",
        "accuracy",
        &series,
        Scale::Accuracy,
    )?;
    Ok(vec![path])
}

/// `eval.png`: the accuracy (or MAE) of each strategy of a `relearn eval` report over the
/// stream, in about a hundred windows.
pub fn eval(report: &EvalReport, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let path = dir.join("eval.png");
    let regression = report.task == Task::Regression;
    let span = (report.records / 100).max(100);
    let series: Vec<Series<'_>> = report
        .rows
        .iter()
        .filter_map(|r| {
            let curve = r.curve.as_ref()?;
            let points = curve
                .windows(span, regression)
                .into_iter()
                .map(|(n, v)| (n as f64, v))
                .collect();
            Some((r.strategy.as_str(), points))
        })
        .collect();
    let name = Path::new(&report.file)
        .file_name()
        .map_or_else(|| report.file.clone(), |n| n.to_string_lossy().into_owned());
    let (what, scale) = if regression {
        ("MAE", Scale::Error)
    } else {
        ("accuracy", Scale::Accuracy)
    };
    lines(
        &path,
        &format!("{name}: prequential {what} over the stream (windows of {span} records)"),
        "records",
        what,
        &series,
        scale,
    )?;
    Ok(vec![path])
}

/// `soak.png` from a `scripts/soak.sh` sample file (`soak.csv`: a header, `seconds` first, then
/// one column per measure): one panel per measure over the run, in minutes.
pub fn soak(csv: &Path) -> Result<Vec<PathBuf>, PlotError> {
    font();
    let e = err(csv);
    let text = std::fs::read_to_string(csv).map_err(|x| e(&x))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    if header.first() != Some(&"seconds") || header.len() < 2 {
        return Err(e(
            &"not a soak sample file (the header starts with `seconds`)",
        ));
    }
    let mut columns: Vec<Vec<(f64, f64)>> = vec![Vec::new(); header.len() - 1];
    for (n, line) in lines.enumerate() {
        let values: Vec<f64> = line
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|x| e(&format!("line {}: {x}", n + 2)))?;
        if values.len() != header.len() {
            return Err(e(&format!(
                "line {}: {} values for {} columns",
                n + 2,
                values.len(),
                header.len()
            )));
        }
        for (c, &v) in columns.iter_mut().zip(&values[1..]) {
            if v.is_finite() {
                c.push((values[0] / 60.0, v));
            }
        }
    }
    let path = csv.with_extension("png");
    let p = err(&path);
    let rows = (header.len() - 1).div_ceil(3);
    let root = BitMapBackend::new(&path, (1500, 330 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| p(&x))?;
    let cells = root.split_evenly((rows, 3));
    for ((area, name), points) in cells.iter().zip(&header[1..]).zip(&columns) {
        let xmax = points.iter().map(|q| q.0).fold(1.0 / 60.0, f64::max);
        let ymax = points.iter().map(|q| q.1).fold(1e-9, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(*name, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(|x| p(&x))?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .draw()
            .map_err(|x| p(&x))?;
        chart
            .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))
            .map_err(|x| p(&x))?;
    }
    root.present().map_err(|x| p(&x))?;
    drop(root);
    Ok(vec![path.clone()])
}

/// `bench-<scenario>-acc.png` (mean accuracy on the tasks seen so far, after each task),
/// `-matrix.png` (accuracy matrices) and `-cost.png` (cost vs forgetting).
pub fn tasks(report: &BenchReport, name: &str, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    font();
    let acc_path = dir.join(format!("bench-{name}-acc.png"));
    let series: Vec<Series<'_>> = report
        .results
        .iter()
        .map(|r| {
            let pts = r
                .matrix
                .iter()
                .enumerate()
                .map(|(i, row)| (i as f64, row[..=i].iter().sum::<f64>() / (i + 1) as f64))
                .collect();
            (r.strategy.as_str(), pts)
        })
        .collect();
    lines(
        &acc_path,
        &format!("{name}: mean accuracy on the tasks seen so far"),
        "after task",
        "accuracy",
        &series,
        Scale::Accuracy,
    )?;

    let matrix_path = dir.join(format!("bench-{name}-matrix.png"));
    matrices(report, &matrix_path)?;

    let cost_path = dir.join(format!("bench-{name}-cost.png"));
    let points = |y: fn(&crate::bench::StrategyResult) -> f64| -> Vec<(String, f64, f64)> {
        report
            .results
            .iter()
            .map(|r| (r.strategy.clone(), r.cost_ratio, y(r)))
            .collect()
    };
    scatter(
        &cost_path,
        &format!("{name}: cost vs forgetting"),
        "forgetting",
        &points(|r| r.forgetting),
    )?;
    let frontier_path = dir.join(format!("bench-{name}-frontier.png"));
    scatter(
        &frontier_path,
        &format!("{name}: cost vs new-task accuracy"),
        "new-task accuracy",
        &points(|r| r.new_task_acc),
    )?;
    Ok(vec![acc_path, matrix_path, cost_path, frontier_path])
}

/// The accuracy matrix of each strategy (after task i, on test task j), one panel each,
/// values written in the cells up to 10 tasks.
fn matrices(report: &BenchReport, matrix_path: &Path) -> Result<(), PlotError> {
    let e = err(matrix_path);
    let root = BitMapBackend::new(matrix_path, (1200, 820)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let cells = root.split_evenly((2, 3));
    for (area, r) in cells.iter().zip(&report.results) {
        let t = r.matrix.len();
        let mut chart = ChartBuilder::on(area)
            .caption(&r.strategy, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(30)
            .build_cartesian_2d((0..t - 1).into_segmented(), (0..t - 1).into_segmented())
            .map_err(|x| e(&x))?;
        // Labels at cell centres: test task j left to right, "after task" i top to bottom.
        let centre = |v: &SegmentValue<usize>, flip: bool| match v {
            SegmentValue::CenterOf(k) if *k < t => (if flip { t - 1 - k } else { *k }).to_string(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(t)
            .y_labels(t)
            .x_label_formatter(&|v| centre(v, false))
            .y_label_formatter(&|v| centre(v, true))
            .x_desc("test task")
            .y_desc("after task")
            .draw()
            .map_err(|x| e(&x))?;
        chart
            .draw_series(r.matrix.iter().enumerate().flat_map(|(i, row)| {
                row.iter().enumerate().map(move |(j, &a)| {
                    let v = (a.clamp(0.0, 1.0) * 255.0) as u8;
                    Rectangle::new(
                        [
                            (SegmentValue::Exact(j), SegmentValue::Exact(t - 1 - i)),
                            (SegmentValue::Exact(j + 1), SegmentValue::Exact(t - i)),
                        ],
                        RGBColor(255 - v, 255 - v / 2, 255).filled(),
                    )
                })
            }))
            .map_err(|x| e(&x))?;
        if t <= 10 {
            chart
                .draw_series(r.matrix.iter().enumerate().flat_map(|(i, row)| {
                    row.iter().enumerate().map(move |(j, &a)| {
                        Text::new(
                            format!("{:.2}", a),
                            (SegmentValue::Exact(j), SegmentValue::Exact(t - i)),
                            ("sans-serif", 11),
                        )
                    })
                }))
                .map_err(|x| e(&x))?;
        }
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Labelled points (strategy, cost ratio, y); the budgets of one strategy (`partial@0.25`,
/// `partial@1`, ...) are joined by a line in cost order.
fn scatter(
    path: &Path,
    title: &str,
    y_desc: &str,
    points: &[(String, f64, f64)],
) -> Result<(), PlotError> {
    let e = err(path);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let xmax = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.35;
    let ymax = points.iter().map(|p| p.2).fold(0.05, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.05..xmax, -0.02..ymax)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("training FLOPs / full retraining")
        .y_desc(y_desc)
        .draw()
        .map_err(|x| e(&x))?;
    let base = |name: &str| name.split('@').next().unwrap_or(name).to_string();
    let mut bases: Vec<String> = Vec::new();
    for (name, _, _) in points {
        if !bases.contains(&base(name)) {
            bases.push(base(name));
        }
    }
    for (i, b) in bases.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut line: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| &base(&p.0) == b)
            .map(|p| (p.1, p.2))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        if line.len() > 1 {
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))
                .map_err(|x| e(&x))?;
        }
        // Budgets that led to the same run share one point and one label ("partial@0.25, 1").
        let mut labelled: Vec<(f64, f64, String)> = Vec::new();
        for (name, x, y) in points.iter().filter(|p| &base(&p.0) == b) {
            match labelled.iter_mut().find(|l| l.0 == *x && l.1 == *y) {
                Some(l) => {
                    l.2.push_str(", ");
                    l.2.push_str(name.split_once('@').map_or(name.as_str(), |s| s.1));
                }
                None => labelled.push((*x, *y, name.clone())),
            }
        }
        for (x, y, label) in labelled {
            chart
                .draw_series([Circle::new((x, y), 6, color.filled())])
                .map_err(|x| e(&x))?;
            chart
                .draw_series([Text::new(label, (x, y), ("sans-serif", 14))])
                .map_err(|x| e(&x))?;
        }
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
