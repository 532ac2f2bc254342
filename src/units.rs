//! Serde adapters that let config sections hold typed values while their TOML keys keep the
//! documented spelling: an empty string is `None` (`store.path = ""`: a temporary store), a
//! number of seconds or milliseconds is a `Duration` (`shutdown.grace_seconds = 20`), and for
//! the keys where 0 means "off", 0 is `None` (`triggers.interval_seconds = 0`). Each adapter
//! writes back exactly what it reads, so `relearn check-config` prints the keys as before.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// `""` ↔ `None` for a string.
pub mod opt_string {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_deref().unwrap_or(""))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = String::deserialize(d)?;
        Ok((!v.is_empty()).then_some(v))
    }
}

/// `""` ↔ `None` for a path.
pub mod opt_path {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(
            &v.as_deref()
                .map(|p| p.to_string_lossy())
                .unwrap_or_default(),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        let v = String::deserialize(d)?;
        Ok((!v.is_empty()).then(|| PathBuf::from(v)))
    }
}

/// Whole seconds ↔ `Duration`.
pub mod seconds {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(v.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

/// Whole milliseconds ↔ `Duration`.
pub mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(v.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Whole seconds ↔ `Duration`, 0 ↔ `None` (off).
pub mod opt_seconds {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(v.map_or(0, |d| d.as_secs()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let v = u64::deserialize(d)?;
        Ok((v > 0).then(|| Duration::from_secs(v)))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Keys {
        #[serde(with = "opt_string")]
        name: Option<String>,
        #[serde(with = "opt_path")]
        path: Option<PathBuf>,
        #[serde(with = "seconds")]
        grace: Duration,
        #[serde(with = "millis")]
        wait: Duration,
        #[serde(with = "opt_seconds")]
        every: Option<Duration>,
    }

    #[test]
    fn keys_read_and_write_as_before() {
        let off = "name = \"\"\npath = \"\"\ngrace = 20\nwait = 100\nevery = 0\n";
        let k: Keys = toml::from_str(off).unwrap();
        assert_eq!(
            k,
            Keys {
                name: None,
                path: None,
                grace: Duration::from_secs(20),
                wait: Duration::from_millis(100),
                every: None,
            }
        );
        assert_eq!(toml::to_string(&k).unwrap(), off);
        let on = "name = \"a\"\npath = \"/tmp/x\"\ngrace = 0\nwait = 1\nevery = 3600\n";
        let k: Keys = toml::from_str(on).unwrap();
        assert_eq!(k.name.as_deref(), Some("a"));
        assert_eq!(k.path, Some(PathBuf::from("/tmp/x")));
        assert_eq!(k.every, Some(Duration::from_secs(3600)));
        assert_eq!(toml::to_string(&k).unwrap(), on);
        assert!(
            toml::from_str::<Keys>("name = 1\npath = \"\"\ngrace = 1\nwait = 1\nevery = 0\n")
                .is_err()
        );
        assert!(toml::from_str::<Keys>(
            "name = \"\"\npath = \"\"\ngrace = -1\nwait = 1\nevery = 0\n"
        )
        .is_err());
    }
}
