//! Kinto's admin plugin: the kinto-admin single-page app at `/v1/admin/`,
//! served from `admin_assets_path` (a build fetched by `tools/admin/fetch`,
//! never committed). `/v1/admin` redirects to `/v1/admin/`; `index.html`
//! gets the plugin's own Content-Security-Policy, which lets the app run its
//! scripts and call this server.

use super::message::KResponse;
use crate::config::GatewayConfig;
use kinto_proto::{ErrorKind, KintoError};
use serde_json::{json, Value};
use std::path::{Component, Path, PathBuf};

/// Kinto's CSP for the admin page: local resources only.
const ADMIN_CSP: &str = "default-src 'self'; img-src data: *; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'";

/// Shown when the plugin is on but no build was given, as Kinto's help page.
const HELP: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Kinto Administration</title></head><body><h1>Kinto Administration</h1><p>The admin UI is enabled but its files are missing: run <code>tools/admin/fetch</code> and set <code>admin_assets_path</code> (<code>KINTO_ADMIN_ASSETS_PATH</code>) to the directory it prints.</p></body></html>";

/// The `admin` capability: the version comes from the build's `VERSION` file.
pub fn capability(cfg: &GatewayConfig) -> Value {
    let version = cfg
        .admin_assets_path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(Path::new(p).join("VERSION")).ok())
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    json!({
        "description": "Serves the admin console.",
        "url": "https://github.com/Kinto/kinto-admin/",
        "version": version,
    })
}

/// The file a request path (already percent-decoded) names under the build
/// directory; `None` for any path that could leave it (`..`, absolute parts)
/// or names a hidden file (such as `tools/admin/fetch`'s `.complete` marker):
/// those are simply absent.
fn resolve(root: &Path, subpath: &str) -> Option<PathBuf> {
    let rel = Path::new(subpath);
    let safe = rel.components().all(|c| match c {
        Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
        _ => false,
    });
    (safe && !subpath.contains('\0')).then(|| root.join(rel))
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=UTF-8",
        "js" | "mjs" => "text/javascript; charset=UTF-8",
        "css" => "text/css; charset=UTF-8",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=UTF-8",
        _ => "application/octet-stream",
    }
}

/// `GET /v1/admin<rest>`: `rest` is what follows `/admin` in the path.
pub async fn serve(cfg: &GatewayConfig, rest: &str) -> Result<KResponse, KintoError> {
    if rest.is_empty() {
        return Ok(KResponse::redirect("/v1/admin/"));
    }
    let subpath = rest.trim_start_matches('/');
    let index = subpath.is_empty() || subpath == "index.html";
    let Some(root) = &cfg.admin_assets_path else {
        return match index {
            true => Ok(KResponse::raw(200, "text/html; charset=UTF-8", HELP.into())
                .with("content-security-policy", ADMIN_CSP)),
            false => Err(KintoError::new(ErrorKind::MissingResource)),
        };
    };
    let root = Path::new(root);
    let file = if index {
        Some(root.join("index.html"))
    } else {
        resolve(root, subpath)
    };
    let Some(file) = file else {
        return Err(KintoError::new(ErrorKind::MissingResource));
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let mut resp = KResponse::raw(200, content_type(&file), bytes.into());
            if index {
                resp.set("content-security-policy", ADMIN_CSP);
            } else {
                // Pyramid's static view, which Kinto uses, caches for an
                // hour: not every file name carries a content hash.
                resp.set("cache-control", "max-age=3600");
            }
            Ok(resp)
        }
        Err(_) => Err(KintoError::new(ErrorKind::MissingResource)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_path_leaves_the_build() {
        let root = Path::new("/srv/admin");
        assert_eq!(
            resolve(root, "assets/app.js"),
            Some(PathBuf::from("/srv/admin/assets/app.js"))
        );
        assert_eq!(resolve(root, "../etc/passwd"), None);
        assert_eq!(resolve(root, "assets/../../x"), None);
        assert_eq!(resolve(root, "/etc/passwd"), None);
        assert_eq!(resolve(root, "./x"), None);
        assert_eq!(resolve(root, ".complete"), None);
        assert_eq!(resolve(root, "assets/.hidden"), None);
        assert_eq!(resolve(root, "assets\0.js"), None);
        assert_eq!(
            resolve(root, "assets//x.js"),
            Some(PathBuf::from("/srv/admin/assets/x.js"))
        );
    }

    #[test]
    fn percent_encoded_tricks_are_refused_once_decoded() {
        // The gateway decodes the path before routing (`entry::entry_inner`),
        // so `%2e%2e%2f` arrives here as `../`.
        let root = Path::new("/srv/admin");
        for raw in [
            "%2e%2e/etc/passwd",
            "assets/%2E%2E/%2e%2e/x",
            "..%2fx",
            "%2fetc/passwd",
        ] {
            let decoded = percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map(|s| s.into_owned())
                .unwrap_or_default();
            assert_eq!(resolve(root, &decoded), None, "{raw}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("a.js")),
            "text/javascript; charset=UTF-8"
        );
        assert_eq!(content_type(Path::new("a.css")), "text/css; charset=UTF-8");
        assert_eq!(content_type(Path::new("a.bin")), "application/octet-stream");
    }
}
