//! Error types and helpers shared by the modules: the configuration error every section's
//! check returns, a boxed source type, and a `Display` of an error with every source under it,
//! for logs (`error = %Chain(&e)`).

use std::fmt;

/// The source of an error from another library or a backend the module does not name.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error and its sources, joined by `: ` (what `anyhow`'s `{:#}` prints).
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// A configuration that could not be loaded; every variant names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("config is not valid TOML: {0}")]
    Syntax(#[source] toml::de::Error),
    #[error("config key `{key}`: {reason}")]
    Key { key: String, reason: String },
    #[error("environment override {var}: {reason}")]
    Env { var: String, reason: String },
}

impl ConfigError {
    /// `key` (its dotted path) has a bad value, because of `reason`.
    pub fn key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] BoxError);

    #[test]
    fn a_chain_prints_every_source() {
        let e = Outer(Box::new(std::io::Error::other("disk full")));
        assert_eq!(Chain(&e).to_string(), "outer: disk full");
        let plain = std::io::Error::other("alone");
        assert_eq!(Chain(&plain).to_string(), "alone");
    }
}
