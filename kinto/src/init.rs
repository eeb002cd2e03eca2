//! The settings `kinto init` writes, as this binary's defaults.
//!
//! Nobody runs Kinto with its code's defaults (every plugin off, anonymous
//! basic auth): `kinto init` writes a configuration that turns on the
//! default bucket, the admin UI and accounts (with `admin` as the account
//! administrator), and signs users in with accounts only. `kinto` starts
//! from the same settings unless `--bare` is given; a settings file and
//! `KINTO_*` variables override any of them.

use kinto_runtime::settings::RawSettings;
use serde_json::{json, Map, Value};
use std::path::Path;

/// Kinto 26's `kinto/config/kinto.tpl`, less what is about its own servers
/// (storage URLs, waitress, logging).
fn template() -> Map<String, Value> {
    let v = json!({
        "includes": "kinto.plugins.default_bucket kinto.plugins.admin kinto.plugins.accounts",
        "multiauth_policies": "account",
        "account_create_principals": "system.Everyone",
        "account_write_principals": "account:admin",
        "bucket_create_principals": "account:admin",
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The secrets `kinto init` generates (`userid_hmac_secret`,
/// `default_bucket_hmac_secret`): made once per data directory and kept in
/// `secrets.json` there, so user and default-bucket ids survive restarts.
fn secrets(data_dir: &Path) -> Result<Map<String, Value>, String> {
    let file = data_dir.join("secrets.json");
    if let Ok(bytes) = std::fs::read(&file) {
        return match serde_json::from_slice(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(format!("{}: not a JSON object", file.display())),
        };
    }
    let mut m = Map::new();
    for key in ["userid_hmac_secret", "default_bucket_hmac_secret"] {
        let bytes: [u8; 32] = rand::random();
        m.insert(key.into(), Value::String(hex::encode(bytes)));
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    write_private(&file, &Value::Object(m.clone()).to_string())?;
    Ok(m)
}

#[cfg(unix)]
fn write_private(file: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))
}

#[cfg(not(unix))]
fn write_private(file: &Path, text: &str) -> Result<(), String> {
    std::fs::write(file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// `raw` with every setting of the template (and its secrets) it lacks.
pub fn with_init_defaults(mut raw: RawSettings, data_dir: &Path) -> Result<RawSettings, String> {
    let mut defaults = template();
    defaults.extend(secrets(data_dir)?);
    for (k, v) in defaults {
        raw.0.entry(k).or_insert(v);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_settings_win_and_secrets_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut raw = RawSettings::default();
        raw.set("multiauth_policies", json!("account basicauth"));
        let a = with_init_defaults(raw.clone(), dir.path()).expect("defaults");
        assert_eq!(a.0["multiauth_policies"], json!("account basicauth"));
        assert_eq!(a.0["bucket_create_principals"], json!("account:admin"));
        let secret = a.0["default_bucket_hmac_secret"].clone();
        assert_eq!(secret.as_str().map(str::len), Some(64));
        let b = with_init_defaults(raw, dir.path()).expect("again");
        assert_eq!(b.0["default_bucket_hmac_secret"], secret);
    }
}
