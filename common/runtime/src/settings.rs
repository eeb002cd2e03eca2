//! Settings from a TOML file and `KINTO_*` environment variables.
//!
//! Both sources become one flat JSON map (environment winning), from which
//! each binary deserialises its own typed settings struct. Values from the
//! environment are parsed as JSON when they are JSON (`KINTO_PAGINATE_BY=5`
//! is a number), else kept as strings, which is what Kinto does with its
//! `KINTO_*` variables. docs/configuration.md lists every key.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::path::Path;

/// The merged raw settings.
#[derive(Debug, Clone, Default)]
pub struct RawSettings(pub Map<String, Value>);

impl RawSettings {
    /// Reads `file` (if any), then overlays the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut map = Map::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let table: toml::Table =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let json = serde_json::to_value(table).map_err(|e| e.to_string())?;
            if let Value::Object(m) = json {
                map.extend(m);
            }
        }
        Ok(RawSettings(map).with_env(std::env::vars()))
    }

    /// Overlays `KINTO_*` variables.
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        for (k, v) in vars {
            if let Some(key) = k.strip_prefix("KINTO_") {
                let value = serde_json::from_str(&v).unwrap_or(Value::String(v));
                self.0.insert(key.to_ascii_lowercase(), value);
            }
        }
        self
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.0.insert(key.to_owned(), value);
    }

    /// The typed settings of one binary; unknown keys are ignored (they
    /// belong to another binary).
    /// An error names the setting at fault, so a bad value stops start-up
    /// with a message an operator can act on.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(Value::Object(self.0.clone())).map_err(|e| {
            // serde_json does not say which key failed: the one that fails
            // the same way on its own is it (this runs only on the error path).
            let message = e.to_string();
            let culprit = self.0.iter().find(|(k, v)| {
                let alone = Map::from_iter([((*k).clone(), (*v).clone())]);
                serde_json::from_value::<T>(Value::Object(alone))
                    .is_err_and(|e| e.to_string() == message)
            });
            match culprit {
                Some((key, _)) => format!("setting {key}: {message}"),
                None => message,
            }
        })
    }

    /// Every `<resource>_<permission>_principals` grant.
    pub fn grants(&self) -> std::collections::HashMap<String, Vec<String>> {
        self.0
            .iter()
            .filter(|(k, _)| k.ends_with("_principals"))
            .map(|(k, v)| (k.clone(), principal_list(v)))
            .collect()
    }
}

/// A list of principals: an array, or a comma/space-separated string.
pub fn principal_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => s
            .split([',', ' ', '\n'])
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Serde helper for fields holding a principal or string list.
/// Is Kinto's built-in plugin `name` (e.g. `"history"`) in `includes`? Kinto
/// names plugins as modules (`kinto.plugins.history`); the short name works too.
pub fn plugin_enabled(includes: &[String], name: &str) -> bool {
    includes
        .iter()
        .any(|i| i == name || i.strip_prefix("kinto.plugins.") == Some(name))
}

pub fn de_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(principal_list(&Value::deserialize(d)?))
}

/// Serde helper: a setting that may arrive as a number or as a string
/// (`KINTO_X="10"` stays a string when quoted).
pub fn de_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_u64()),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a number"))),
        other => Err(serde::de::Error::custom(format!("{other} is not a number"))),
    }
}

/// Serde helper: any scalar as a string (`KINTO_EOS=2030-01-01` may look numeric).
pub fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Ok(Some(other.to_string())),
    }
}

/// Serde helper: a string that may arrive as a JSON scalar from the environment.
pub fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(de_opt_string(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_is_named_in_the_error() {
        #[derive(serde::Deserialize, Debug)]
        struct S {
            #[serde(default)]
            _flag: bool,
            #[serde(default)]
            _other: bool,
        }
        let raw = RawSettings::default().with_env([
            ("KINTO__OTHER".to_owned(), "true".to_owned()),
            ("KINTO__FLAG".to_owned(), "maybe".to_owned()),
        ]);
        let err = raw.parse::<S>().err().unwrap_or_default();
        assert!(err.starts_with("setting _flag: "), "{err}");
    }

    #[derive(Deserialize)]
    struct S {
        #[serde(default, deserialize_with = "de_opt_u64")]
        paginate_by: Option<u64>,
        #[serde(default, deserialize_with = "de_string")]
        userid_hmac_secret: String,
    }

    #[test]
    fn env_values_are_json_when_they_can_be() {
        let raw = RawSettings::default().with_env([
            ("KINTO_PAGINATE_BY".to_string(), "5".to_string()),
            ("KINTO_USERID_HMAC_SECRET".to_string(), "12345".to_string()),
            (
                "KINTO_BUCKET_CREATE_PRINCIPALS".to_string(),
                "a, b".to_string(),
            ),
            ("OTHER".to_string(), "x".to_string()),
        ]);
        let s: S = raw.parse().expect("parses");
        assert_eq!(s.paginate_by, Some(5));
        assert_eq!(s.userid_hmac_secret, "12345");
        assert_eq!(raw.grants()["bucket_create_principals"], vec!["a", "b"]);
    }
}
