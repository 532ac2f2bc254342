//! A JSON record's top-level fields borrowed from the payload: the decoder reads a few named
//! fields of each record, so it parses into this map instead of `serde_json::Value` (no
//! allocation for a key or a string without escapes, nothing kept of nested values).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Number;

/// One top-level field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    /// An array (its elements are skipped).
    Array,
    /// An object (its fields are skipped).
    Object,
}

impl Field<'_> {
    /// What the value is, for error messages ("a string", "an array", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Field::Null => "null",
            Field::Bool(_) => "a boolean",
            Field::Number(_) => "a number",
            Field::Str(_) => "a string",
            Field::Array => "an array",
            Field::Object => "an object",
        }
    }
}

/// Past this many fields a record's fields are found through a hash map; below it a linear
/// search over short names is faster than hashing them (a flight record has 10 fields).
const INDEXED_FROM: usize = 16;

/// The fields of a JSON object by name (a repeated name keeps its last value, as
/// `serde_json::Value` does), in the order their names first appeared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields<'a> {
    entries: Vec<(Cow<'a, str>, Field<'a>)>,
    /// Where each name is in `entries`, once there are `INDEXED_FROM` of them.
    index: Option<HashMap<Cow<'a, str>, usize>>,
}

impl<'a> Fields<'a> {
    /// The value of the field `name`, if the object has it.
    pub fn get(&self, name: &str) -> Option<&Field<'a>> {
        let at = match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.entries.iter().position(|(k, _)| k == name),
        };
        at.map(|i| &self.entries[i].1)
    }

    /// How many distinct names.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn insert(&mut self, name: Cow<'a, str>, value: Field<'a>) {
        let at = match &self.index {
            Some(index) => index.get(&name).copied(),
            None => self.entries.iter().position(|(k, _)| *k == name),
        };
        if let Some(i) = at {
            self.entries[i].1 = value;
            return;
        }
        if let Some(index) = self.index.as_mut() {
            index.insert(name.clone(), self.entries.len());
        }
        self.entries.push((name, value));
        if self.index.is_none() && self.entries.len() >= INDEXED_FROM {
            self.index = Some(
                self.entries
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.clone(), i))
                    .collect(),
            );
        }
    }
}

/// Parses `payload` as one JSON object; `Ok(None)` for valid JSON that is not an object.
pub fn parse_object(payload: &[u8]) -> Result<Option<Fields<'_>>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let top = de.deserialize_any(TopVisitor)?;
    de.end()?;
    Ok(top)
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Option<Fields<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Fields {
            entries: Vec::with_capacity(map.size_hint().unwrap_or(INDEXED_FROM)),
            index: None,
        };
        while let Some(Key(k)) = map.next_key()? {
            let v: Field<'de> = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Some(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An object key, borrowed unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Field<'de>, E> {
                Ok(Field::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Field<'de>, E> {
                Ok(Field::Null)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Field<'de>, E> {
                Ok(Field::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Field<'de>, E> {
                Ok(Field::Number(n.into()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Field<'de>, E> {
                Ok(Field::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Field<'de>, E> {
                // serde_json hands over finite numbers only.
                Ok(Number::from_f64(n).map_or(Field::Null, Field::Number))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Object)
            }
        }
        d.deserialize_any(FieldVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every top-level field reads as `serde_json::Value` reads it; strings without escapes
    /// are borrowed; nested values are skipped; a repeated key keeps its last value.
    #[test]
    fn fields_read_as_serde_json_values() {
        let payload =
            br#"{"a": 1.5, "b": -3, "c": 18446744073709551615, "d": "x", "e\u00e9": "q\"r",
            "f": null, "g": true, "h": [1, {"z": 2}], "i": {"j": [3]}, "d": "last", "k": 1e300}"#;
        let fields = parse_object(payload).unwrap().expect("an object");
        let value: serde_json::Value = serde_json::from_slice(payload).unwrap();
        let serde_json::Value::Object(map) = value else {
            panic!("an object")
        };
        assert_eq!(fields.len(), map.len());
        for (k, v) in &map {
            let got = fields.get(k.as_str()).expect("every field");
            let same = match (v, got) {
                (serde_json::Value::Null, Field::Null) => true,
                (serde_json::Value::Bool(a), Field::Bool(b)) => a == b,
                (serde_json::Value::Number(a), Field::Number(b)) => a.to_string() == b.to_string(),
                (serde_json::Value::String(a), Field::Str(b)) => a == b,
                (serde_json::Value::Array(_), Field::Array) => true,
                (serde_json::Value::Object(_), Field::Object) => true,
                _ => false,
            };
            assert!(same, "{k}: {v} read as {got:?}");
        }
        assert!(matches!(
            fields.get("d"),
            Some(Field::Str(Cow::Borrowed("last")))
        ));
        assert!(matches!(fields.get("eé"), Some(Field::Str(Cow::Owned(s))) if s == "q\"r"));
        assert_eq!(fields.get("z"), None, "a nested name is not a field");
    }

    /// Past `INDEXED_FROM` fields the names go through a hash map: the same answers.
    #[test]
    fn a_wide_object_reads_every_field_and_the_last_of_a_repeated_name() {
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"f{i}\": {i}, "));
        }
        // Repeats before and after the index is built.
        text.push_str("\"f3\": \"three\", \"f39\": null, \"g\": true}");
        let fields = parse_object(text.as_bytes()).unwrap().expect("an object");
        assert_eq!(fields.len(), 41);
        for i in (0..39).filter(|&i| i != 3) {
            let want = Field::Number(Number::from(i));
            assert_eq!(fields.get(&format!("f{i}")), Some(&want), "f{i}");
        }
        assert_eq!(fields.get("f3"), Some(&Field::Str(Cow::Borrowed("three"))));
        assert_eq!(fields.get("f39"), Some(&Field::Null));
        assert_eq!(fields.get("g"), Some(&Field::Bool(true)));
        assert_eq!(fields.get("f40"), None);
        // Below the bound, a repeated name keeps its last value too.
        let few = parse_object(br#"{"a": 1, "b": 2, "a": 3}"#)
            .unwrap()
            .unwrap();
        assert_eq!(few.len(), 2);
        assert_eq!(few.get("a"), Some(&Field::Number(Number::from(3))));
    }

    #[test]
    fn anything_but_an_object_is_none_and_bad_json_an_error() {
        for ok in [&b"[1, 2]"[..], b"3", b"\"s\"", b"null", b"true"] {
            assert_eq!(
                parse_object(ok).unwrap(),
                None,
                "{}",
                String::from_utf8_lossy(ok)
            );
        }
        for bad in [&b"{"[..], b"{\"a\": }", b"{} x", b"", b"{\"a\": 1,}"] {
            assert!(
                parse_object(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
