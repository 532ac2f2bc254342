//! The decoded record shared by every stage, and its compact binary form in the store.

/// What a labeled record is labeled with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Label {
    /// Class index into `schema.classes` (`schema.task = "classification"`).
    Class(u32),
    /// The target value, always finite (`schema.task = "regression"`).
    Value(f32),
}

impl Label {
    /// The class index of a classification label.
    pub fn class(self) -> Option<u32> {
        match self {
            Label::Class(c) => Some(c),
            Label::Value(_) => None,
        }
    }

    /// The value of a regression label.
    pub fn value(self) -> Option<f32> {
        match self {
            Label::Value(v) => Some(v),
            Label::Class(_) => None,
        }
    }

    /// The label as a number: the class index or the value (lagged-label features).
    pub fn as_f32(self) -> f32 {
        match self {
            Label::Class(c) => c as f32,
            Label::Value(v) => v,
        }
    }
}

/// One decoded record: input values in the decoder's order and an optional label.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Input values in the decoder's order (numeric features, NaN where missing, then
    /// categorical and indicator blocks).
    pub features: Vec<f32>,
    /// The label; `None` for an unlabeled record.
    pub label: Option<Label>,
    /// The record's key, when the schema names a key field (not stored in the replay buffer).
    pub key: Option<String>,
    /// Event time in milliseconds, when the schema names a timestamp field.
    pub timestamp_ms: Option<i64>,
}

/// A model's output for one record, as served: the predicted class with its probabilities, or
/// the predicted value.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Class { class: u32, probabilities: Vec<f32> },
    Value(f32),
}

/// What the serving model said about a record when its features arrived: kept with a record
/// that waits for its label, produced to the predictions topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The model version that made it.
    pub version: u64,
    pub output: Output,
}

impl Prediction {
    /// The predicted label.
    pub fn label(&self) -> Label {
        match &self.output {
            Output::Class { class, .. } => Label::Class(*class),
            Output::Value(v) => Label::Value(*v),
        }
    }

    /// Appends the binary form: version u64, tag u8 (0 class, 1 value), then class u32, count
    /// u32 and the probabilities, or the value (little-endian).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        match &self.output {
            Output::Class {
                class,
                probabilities,
            } => {
                out.push(0);
                out.extend_from_slice(&class.to_le_bytes());
                out.extend_from_slice(&(probabilities.len() as u32).to_le_bytes());
                for p in probabilities {
                    out.extend_from_slice(&p.to_le_bytes());
                }
            }
            Output::Value(v) => {
                out.push(1);
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }

    /// Decodes what `encode_into` wrote at the start of `bytes`; returns the rest.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Prediction, &[u8]), CorruptRecord> {
        let short = CorruptRecord("prediction too short");
        let (version, rest) = take::<8>(bytes).ok_or(short.clone())?;
        let (&tag, rest) = rest.split_first().ok_or(short.clone())?;
        let version = u64::from_le_bytes(version);
        match tag {
            0 => {
                let (class, rest) = take::<4>(rest).ok_or(short.clone())?;
                let (n, rest) = take::<4>(rest).ok_or(short.clone())?;
                let n = u32::from_le_bytes(n) as usize;
                if rest.len() < 4 * n {
                    return Err(short);
                }
                let (body, rest) = rest.split_at(4 * n);
                let probabilities = body
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect();
                let output = Output::Class {
                    class: u32::from_le_bytes(class),
                    probabilities,
                };
                Ok((Prediction { version, output }, rest))
            }
            1 => {
                let (v, rest) = take::<4>(rest).ok_or(short)?;
                let output = Output::Value(f32::from_le_bytes(v));
                Ok((Prediction { version, output }, rest))
            }
            _ => Err(CorruptRecord("unknown prediction kind")),
        }
    }
}

/// The first `N` bytes of `bytes` and the rest.
fn take<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    if bytes.len() < N {
        return None;
    }
    let (head, rest) = bytes.split_at(N);
    Some((head.try_into().ok()?, rest))
}

/// Bytes that are not a stored record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt stored record: {0}")]
pub struct CorruptRecord(pub &'static str);

/// Version 3 stores only the non-zero features (a bitmap, then their values): one-hot
/// blocks of categorical fields are mostly zeros, and every record is written to the
/// recent ring, the replay buffer or the pending store. Version 2 (every feature) and
/// version 1 (before `HAS_VALUE`) still decode.
const VERSION: u8 = 3;
const HAS_LABEL: u8 = 1;
const HAS_TIMESTAMP: u8 = 2;
/// With `HAS_LABEL`: the label is a regression value (its f32 bits), not a class index.
const HAS_VALUE: u8 = 4;

impl Record {
    /// Encodes features, label and timestamp (little-endian): version, flags, label (u32 class
    /// or f32 value bits), timestamp i64, count u32, then a bitmap of `count` bits (bit `i`:
    /// feature `i` is not +0.0) and those features' f32 values in order.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.features.len();
        let mut out = Vec::with_capacity(18 + n.div_ceil(8) + 4 * n);
        let mut flags = 0;
        let label = match self.label {
            Some(Label::Class(c)) => {
                flags |= HAS_LABEL;
                c
            }
            Some(Label::Value(v)) => {
                flags |= HAS_LABEL | HAS_VALUE;
                v.to_bits()
            }
            None => 0,
        };
        if self.timestamp_ms.is_some() {
            flags |= HAS_TIMESTAMP;
        }
        out.push(VERSION);
        out.push(flags);
        out.extend_from_slice(&label.to_le_bytes());
        out.extend_from_slice(&self.timestamp_ms.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        let map_at = out.len();
        out.resize(map_at + n.div_ceil(8), 0);
        for (i, x) in self.features.iter().enumerate() {
            if x.to_bits() != 0 {
                out[map_at + i / 8] |= 1 << (i % 8);
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// Decodes what `encode` wrote.
    pub fn decode(bytes: &[u8]) -> Result<Record, CorruptRecord> {
        if bytes.len() < 18 {
            return Err(CorruptRecord("too short"));
        }
        if !(1..=VERSION).contains(&bytes[0]) {
            return Err(CorruptRecord("unknown version"));
        }
        let flags = bytes[1];
        let label = u32::from_le_bytes(bytes[2..6].try_into().expect("4 bytes"));
        let ts = i64::from_le_bytes(bytes[6..14].try_into().expect("8 bytes"));
        let n = u32::from_le_bytes(bytes[14..18].try_into().expect("4 bytes")) as usize;
        let body = &bytes[18..];
        let features = if bytes[0] >= 3 {
            let map = body
                .get(..n.div_ceil(8))
                .ok_or(CorruptRecord("feature count does not match length"))?;
            let set = map.iter().map(|b| b.count_ones() as usize).sum::<usize>();
            let values = &body[map.len()..];
            if values.len() != 4 * set {
                return Err(CorruptRecord("feature count does not match length"));
            }
            let mut values = values
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")));
            (0..n)
                .map(|i| match map[i / 8] & (1 << (i % 8)) {
                    0 => Some(0.0),
                    _ => values.next(),
                })
                .collect::<Option<Vec<f32>>>()
                .ok_or(CorruptRecord("feature count does not match length"))?
        } else {
            if body.len() != 4 * n {
                return Err(CorruptRecord("feature count does not match length"));
            }
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        };
        Ok(Record {
            features,
            label: (flags & HAS_LABEL != 0).then_some(if flags & HAS_VALUE != 0 {
                Label::Value(f32::from_bits(label))
            } else {
                Label::Class(label)
            }),
            key: None,
            timestamp_ms: (flags & HAS_TIMESTAMP != 0).then_some(ts),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = Record {
            features: vec![1.5, -0.0, f32::MIN_POSITIVE],
            label: Some(Label::Class(3)),
            key: None,
            timestamp_ms: Some(-5),
        };
        assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        let v = Record {
            label: Some(Label::Value(-12.25)),
            ..r.clone()
        };
        assert_eq!(Record::decode(&v.encode()).unwrap(), v);
        // Version 1 and 2 records (every feature stored) still decode.
        let dense = |r: &Record, version: u8| {
            let mut b = r.encode()[..18].to_vec();
            b[0] = version;
            for x in &r.features {
                b.extend_from_slice(&x.to_le_bytes());
            }
            b
        };
        assert_eq!(Record::decode(&dense(&r, 1)).unwrap(), r);
        assert_eq!(Record::decode(&dense(&v, 2)).unwrap(), v);
        // Zeros take no value bytes; -0.0, NaN (a missing value) and the rest keep their bits.
        let sparse = Record {
            features: vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.0, f32::NAN, 0.0],
            label: None,
            key: None,
            timestamp_ms: None,
        };
        let bytes = sparse.encode();
        assert_eq!(bytes.len(), 18 + 2 + 4 * 3);
        let back = Record::decode(&bytes).unwrap();
        assert_eq!(
            back.features
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>(),
            sparse
                .features
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        );
        let mut short = bytes.clone();
        short.pop();
        assert!(Record::decode(&short).is_err());
        let u = Record {
            features: vec![],
            label: None,
            key: None,
            timestamp_ms: None,
        };
        assert_eq!(Record::decode(&u.encode()).unwrap(), u);
        assert!(Record::decode(&r.encode()[..20]).is_err());
        assert!(Record::decode(b"").is_err());
    }

    #[test]
    fn prediction_round_trip() {
        for p in [
            Prediction {
                version: 7,
                output: Output::Class {
                    class: 1,
                    probabilities: vec![0.25, 0.75],
                },
            },
            Prediction {
                version: u64::MAX,
                output: Output::Value(-3.5),
            },
        ] {
            let mut bytes = p.encode_into_vec();
            bytes.extend_from_slice(b"tail");
            let (back, rest) = Prediction::decode_prefix(&bytes).unwrap();
            assert_eq!(back, p);
            assert_eq!(rest, b"tail");
            assert!(Prediction::decode_prefix(&bytes[..5]).is_err());
        }
        assert!(Prediction::decode_prefix(&[0; 9]).is_err());
    }

    impl Prediction {
        fn encode_into_vec(&self) -> Vec<u8> {
            let mut v = Vec::new();
            self.encode_into(&mut v);
            v
        }
    }
}
