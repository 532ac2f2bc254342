//! The loop's counter totals as a closed set: which prediction, detection, trigger, retrain,
//! challenger judgement, promotion, reset or skip a total counts. Each [`Total`] is stored in
//! the loop state, served by `/v1/status` and `relearn inspect` under its `family/label` name
//! (`predictions/correct`, `runs/promoted`: the stored format since before this type) and
//! moves one Prometheus counter. Also the other closed sets that are metric labels: why a
//! record was dead-lettered ([`Reason`]) and what a delayed label did ([`JoinOutcome`]). A
//! leaf module: `metrics` takes its label values from here.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::drift::trigger::TriggerKind;
use crate::drift::Detector;

/// How a labeled (or unlabeled) record's prediction counted, for the champion or the
/// challenger (which counts only `Correct` and `Incorrect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scored {
    Correct,
    Incorrect,
    /// A record without a label: served, not scored.
    Unlabeled,
    /// A labeled record no model scored (before the first model).
    Unscored,
}

impl Scored {
    /// Every value, in a stable order (metric labels).
    pub const ALL: [Scored; 4] = [
        Scored::Correct,
        Scored::Incorrect,
        Scored::Unlabeled,
        Scored::Unscored,
    ];
    /// The values a challenger's prediction takes.
    pub const PAIRED: [Scored; 2] = [Scored::Correct, Scored::Incorrect];

    /// Right or wrong.
    pub fn of(hit: bool) -> Scored {
        if hit {
            Scored::Correct
        } else {
            Scored::Incorrect
        }
    }

    /// The stable name: a metric label and the stored total's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Scored::Correct => "correct",
            Scored::Incorrect => "incorrect",
            Scored::Unlabeled => "unlabeled",
            Scored::Unscored => "unscored",
        }
    }
}

/// Why a challenger was reset from the champion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResetReason {
    /// It fell behind the champion by the configured margin.
    Behind,
    /// Its loss became non-finite or exploded.
    Diverged,
}

impl ResetReason {
    /// Every value, in a stable order (metric labels).
    pub const ALL: [ResetReason; 2] = [ResetReason::Behind, ResetReason::Diverged];

    /// The stable name: a metric label and the stored total's label.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::Behind => "behind",
            ResetReason::Diverged => "diverged",
        }
    }
}

/// How a retrain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The candidate became the serving version.
    Promoted,
    /// The gate refused the candidate; the serving version is unchanged.
    Rejected,
    /// Training or writing failed (the report's `detail` says why).
    Failed,
}

impl RunOutcome {
    pub const ALL: [RunOutcome; 3] = [
        RunOutcome::Promoted,
        RunOutcome::Rejected,
        RunOutcome::Failed,
    ];

    /// The stable name: a metric label, a log field, the stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Promoted => "promoted",
            RunOutcome::Rejected => "rejected",
            RunOutcome::Failed => "failed",
        }
    }
}

/// One of the loop's counter totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Total {
    /// The serving model's prequential predictions (`predictions/<scored>`).
    Prediction(Scored),
    /// A detector's alarms (`detections/<detector>`).
    Detection(Detector),
    /// Retrains started, by trigger (`triggers/<kind>`; `challenger`: trips through the gate).
    Trigger(TriggerKind),
    /// Retrains and challenger judgements by outcome (`runs/<outcome>`).
    Run(RunOutcome),
    /// The challenger's prequential predictions (`challenger/correct|incorrect`).
    Challenger(Scored),
    /// Versions promoted, by trigger (`promotions/<kind>`).
    Promotion(TriggerKind),
    /// Challenger resets (`resets/<reason>`).
    Reset(ResetReason),
    /// Records the challenger did not learn from, to keep ingest's pace (`skipped/budget`).
    SkippedForBudget,
    /// Records the challenger did not learn from, since it fits them already
    /// (`skipped/fitted`, `challenger.fitted_loss`).
    SkippedFitted,
}

impl Total {
    /// The total's family (the part before `/`), which names its metric.
    pub fn family(self) -> &'static str {
        match self {
            Total::Prediction(_) => "predictions",
            Total::Detection(_) => "detections",
            Total::Trigger(_) => "triggers",
            Total::Run(_) => "runs",
            Total::Challenger(_) => "challenger",
            Total::Promotion(_) => "promotions",
            Total::Reset(_) => "resets",
            Total::SkippedForBudget | Total::SkippedFitted => "skipped",
        }
    }

    /// The total's label (the part after `/`): its metric's label value.
    pub fn label(self) -> &'static str {
        match self {
            Total::Prediction(s) | Total::Challenger(s) => s.as_str(),
            Total::Detection(d) => d.as_str(),
            Total::Trigger(k) | Total::Promotion(k) => k.as_str(),
            Total::Run(o) => o.as_str(),
            Total::Reset(r) => r.as_str(),
            Total::SkippedForBudget => "budget",
            Total::SkippedFitted => "fitted",
        }
    }
}

impl fmt::Display for Total {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.family(), self.label())
    }
}

/// A stored total's name that no [`Total`] has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown loop total {0:?}")]
pub struct UnknownTotal(pub String);

impl FromStr for Total {
    type Err = UnknownTotal;

    fn from_str(s: &str) -> Result<Total, UnknownTotal> {
        let unknown = || UnknownTotal(s.to_string());
        let (family, label) = s.split_once('/').ok_or_else(unknown)?;
        let scored = || Scored::ALL.into_iter().find(|v| v.as_str() == label);
        let kind = || TriggerKind::ALL.into_iter().find(|v| v.as_str() == label);
        let total = match family {
            "predictions" => scored().map(Total::Prediction),
            "challenger" => scored()
                .filter(|s| Scored::PAIRED.contains(s))
                .map(Total::Challenger),
            "detections" => Detector::ALL
                .into_iter()
                .find(|v| v.as_str() == label)
                .map(Total::Detection),
            "triggers" => kind().map(Total::Trigger),
            "promotions" => kind().map(Total::Promotion),
            "runs" => RunOutcome::ALL
                .into_iter()
                .find(|v| v.as_str() == label)
                .map(Total::Run),
            "resets" => ResetReason::ALL
                .into_iter()
                .find(|v| v.as_str() == label)
                .map(Total::Reset),
            "skipped" if label == "budget" => Some(Total::SkippedForBudget),
            "skipped" if label == "fitted" => Some(Total::SkippedFitted),
            _ => None,
        };
        total.ok_or_else(unknown)
    }
}

impl Serialize for Total {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Total {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Total, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Reads stored totals, leaving out (with a warning) a name this build does not know, so a
/// store written by a later build, or with a total since retired, still opens.
pub fn deserialize_totals<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<Total, u64>, D::Error> {
    let raw = BTreeMap::<String, u64>::deserialize(d)?;
    let mut totals = BTreeMap::new();
    for (name, n) in raw {
        match name.parse::<Total>() {
            Ok(t) => {
                totals.insert(t, n);
            }
            Err(e) => tracing::warn!(error = %e, count = n, "stored loop total left out"),
        }
    }
    Ok(totals)
}

/// Why a record was refused. The names are stable: they are metric labels and DLQ headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The payload is not valid JSON, or not a JSON object.
    InvalidJson,
    /// The payload is not a valid CSV line (bad quoting, not UTF-8).
    InvalidCsv,
    /// A feature field is absent, null, empty or a missing token, and `schema.missing` is
    /// `reject` (or a CSV schema names a field that is not a column).
    MissingField,
    /// A feature value is not a number.
    NonNumeric,
    /// A feature value is NaN or infinite (or overflows f32).
    NonFinite,
    /// A CSV line has a different number of fields than the schema's columns.
    WrongFieldCount,
    /// The label is not one of the configured classes.
    UnknownLabel,
    /// The payload is larger than `schema.max_record_bytes`.
    TooLarge,
    /// A categorical field holds a JSON array or object (not a string, number or boolean).
    InvalidCategory,
    /// A regression target is not a number, or not finite.
    InvalidTarget,
    /// A label record (delayed labels) has no `schema.key`.
    MissingKey,
    /// A record on a label topic has no label.
    MissingLabel,
    /// A `schema.time` field holds something that is no date or time.
    InvalidTime,
}

impl Reason {
    /// Every reason, in a stable order.
    pub const ALL: [Reason; 13] = [
        Reason::InvalidJson,
        Reason::InvalidCsv,
        Reason::MissingField,
        Reason::NonNumeric,
        Reason::NonFinite,
        Reason::WrongFieldCount,
        Reason::UnknownLabel,
        Reason::TooLarge,
        Reason::InvalidCategory,
        Reason::InvalidTarget,
        Reason::MissingKey,
        Reason::MissingLabel,
        Reason::InvalidTime,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::InvalidCsv => "invalid_csv",
            Reason::MissingField => "missing_field",
            Reason::NonNumeric => "non_numeric",
            Reason::NonFinite => "non_finite",
            Reason::WrongFieldCount => "wrong_field_count",
            Reason::UnknownLabel => "unknown_label",
            Reason::TooLarge => "too_large",
            Reason::InvalidCategory => "invalid_category",
            Reason::InvalidTarget => "invalid_target",
            Reason::MissingKey => "missing_key",
            Reason::MissingLabel => "missing_label",
            Reason::InvalidTime => "invalid_time",
        }
    }

    /// Parses a name written by `as_str`.
    pub fn parse(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        let name = String::deserialize(d)?;
        Reason::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown dead-letter reason `{name}`")))
    }
}

/// What a label record or an expiry did. The names are stable metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JoinOutcome {
    /// A label met its waiting record.
    Joined,
    /// A waiting record's delay bound passed without a label; it is dropped.
    Expired,
    /// A label for a key that was already joined (first label wins).
    Duplicate,
    /// A label for a key whose record had expired.
    Late,
    /// A label for a key never seen (or resolved longer ago than the delay bound).
    Orphan,
    /// A record arrived with the key of a record still waiting; the newer one waits.
    Superseded,
}

impl JoinOutcome {
    /// Every outcome, in a stable order.
    pub const ALL: [JoinOutcome; 6] = [
        JoinOutcome::Joined,
        JoinOutcome::Expired,
        JoinOutcome::Duplicate,
        JoinOutcome::Late,
        JoinOutcome::Orphan,
        JoinOutcome::Superseded,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            JoinOutcome::Joined => "joined",
            JoinOutcome::Expired => "expired",
            JoinOutcome::Duplicate => "duplicate",
            JoinOutcome::Late => "late",
            JoinOutcome::Orphan => "orphan",
            JoinOutcome::Superseded => "superseded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every total, for the round-trip test.
    fn every() -> Vec<Total> {
        let mut all: Vec<Total> = Scored::ALL.into_iter().map(Total::Prediction).collect();
        all.extend(Scored::PAIRED.into_iter().map(Total::Challenger));
        all.extend(Detector::ALL.into_iter().map(Total::Detection));
        all.extend(TriggerKind::ALL.into_iter().map(Total::Trigger));
        all.extend(TriggerKind::ALL.into_iter().map(Total::Promotion));
        all.extend(RunOutcome::ALL.into_iter().map(Total::Run));
        all.extend(ResetReason::ALL.into_iter().map(Total::Reset));
        all.push(Total::SkippedForBudget);
        all.push(Total::SkippedFitted);
        all
    }

    #[test]
    fn names_are_the_stored_format() {
        assert_eq!(
            Total::Prediction(Scored::Correct).to_string(),
            "predictions/correct"
        );
        assert_eq!(
            Total::Run(RunOutcome::Promoted).to_string(),
            "runs/promoted"
        );
        assert_eq!(
            Total::Promotion(TriggerKind::AccuracyDrop).to_string(),
            "promotions/accuracy_drop"
        );
        assert_eq!(
            Total::Detection(Detector::PageHinkley).to_string(),
            "detections/page_hinkley"
        );
        assert_eq!(
            Total::Reset(ResetReason::Diverged).to_string(),
            "resets/diverged"
        );
        assert_eq!(Total::SkippedForBudget.to_string(), "skipped/budget");
        assert_eq!(Total::SkippedFitted.to_string(), "skipped/fitted");
        assert_eq!(
            Total::Challenger(Scored::Incorrect).to_string(),
            "challenger/incorrect"
        );
    }

    #[test]
    fn every_total_round_trips_through_its_name() {
        for t in every() {
            assert_eq!(t.to_string().parse::<Total>(), Ok(t), "{t}");
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<Total>(&json).unwrap(), t);
        }
        for bad in [
            "predictions",
            "predictions/maybe",
            "challenger/unscored",
            "x/y",
            "",
        ] {
            assert!(bad.parse::<Total>().is_err(), "{bad}");
        }
    }

    #[test]
    fn stored_totals_open_and_unknown_names_are_left_out() {
        #[derive(Deserialize)]
        struct State {
            #[serde(deserialize_with = "deserialize_totals")]
            totals: BTreeMap<Total, u64>,
        }
        let stored = r#"{"totals":{"predictions/correct":7,"runs/promoted":2,"retired/x":1}}"#;
        let s: State = serde_json::from_str(stored).unwrap();
        assert_eq!(s.totals.len(), 2);
        assert_eq!(s.totals[&Total::Prediction(Scored::Correct)], 7);
        assert_eq!(s.totals[&Total::Run(RunOutcome::Promoted)], 2);
    }
}
