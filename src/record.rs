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

/// Bytes that are not a stored record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt stored record: {0}")]
pub struct CorruptRecord(pub &'static str);

/// Version 2 adds `HAS_VALUE`; version 1 records (classes only) still decode.
const VERSION: u8 = 2;
const HAS_LABEL: u8 = 1;
const HAS_TIMESTAMP: u8 = 2;
/// With `HAS_LABEL`: the label is a regression value (its f32 bits), not a class index.
const HAS_VALUE: u8 = 4;

impl Record {
    /// Encodes features, label and timestamp (little-endian): version, flags, label (u32 class
    /// or f32 value bits), timestamp i64, count u32, then `count` f32 values.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + 4 * self.features.len());
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
        out.extend_from_slice(&(self.features.len() as u32).to_le_bytes());
        for x in &self.features {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }

    /// Decodes what `encode` wrote.
    pub fn decode(bytes: &[u8]) -> Result<Record, CorruptRecord> {
        if bytes.len() < 18 {
            return Err(CorruptRecord("too short"));
        }
        if bytes[0] != VERSION && bytes[0] != 1 {
            return Err(CorruptRecord("unknown version"));
        }
        let flags = bytes[1];
        let label = u32::from_le_bytes(bytes[2..6].try_into().expect("4 bytes"));
        let ts = i64::from_le_bytes(bytes[6..14].try_into().expect("8 bytes"));
        let n = u32::from_le_bytes(bytes[14..18].try_into().expect("4 bytes")) as usize;
        let body = &bytes[18..];
        if body.len() != 4 * n {
            return Err(CorruptRecord("feature count does not match length"));
        }
        let features = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
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
        // A version 1 record (before regression labels) still decodes.
        let mut v1 = r.encode();
        v1[0] = 1;
        assert_eq!(Record::decode(&v1).unwrap(), r);
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
}
