//! Errors that only happen because a plugin is off say so.
//!
//! Kinto answers a request for a disabled plugin's endpoint as for any
//! unknown path (404) and treats `/buckets/default` as an ordinary bucket id
//! (403: nobody may create it; 404 for a record's missing collection). A newcomer cannot tell that from a bug, so
//! the message names the setting; status, errno and details stay Kinto's.

use super::routes::Route;
use crate::config::GatewayConfig;
use kinto_proto::pb::Kind;
use kinto_proto::{ErrorKind, KintoError};

/// `e` with a hint appended to its message when `route` needs a plugin
/// (or switch) that `cfg` leaves off.
pub fn annotate(cfg: &GatewayConfig, route: Option<&Route>, e: KintoError) -> KintoError {
    let default_off = matches!(route, Some(Route::Resource(p))
        if p.bucket == "default" && !cfg.plugin("default_bucket"));
    let needed = match (route, e.kind) {
        // A record written under it: Kinto finds its collection missing first.
        (
            Some(Route::Resource(_)),
            ErrorKind::Forbidden
            | ErrorKind::Unauthorized
            | ErrorKind::ObjectNotFound
            | ErrorKind::MissingResource,
        ) if default_off => {
            Some("the personal `default` bucket needs kinto.plugins.default_bucket in `includes`")
        }
        (Some(r), ErrorKind::MissingResource) => missing_plugin(cfg, r),
        _ => None,
    };
    match needed {
        Some(hint) => {
            let base = e.message.clone().unwrap_or_default();
            let message = format!("{base} Note: {hint}.").trim_start().to_owned();
            e.with_message(message)
        }
        None => e,
    }
}

fn missing_plugin(cfg: &GatewayConfig, route: &Route) -> Option<&'static str> {
    match route {
        Route::Resource(p) if p.kind == Kind::Account && !cfg.plugin("accounts") => {
            Some("/accounts needs kinto.plugins.accounts in `includes`")
        }
        Route::Resource(p) if p.kind == Kind::History && !cfg.plugin("history") => {
            Some("history needs kinto.plugins.history in `includes`")
        }
        Route::Snapshot { .. } if !cfg.plugin("history") => {
            Some("snapshots need kinto.plugins.history in `includes`")
        }
        Route::Permissions if !cfg.permissions_endpoint() => Some(
            "/permissions needs kinto.plugins.admin in `includes` or experimental_permissions_endpoint",
        ),
        Route::Flush if !(cfg.plugin("flush") || cfg.flush_endpoint_enabled) => {
            Some("/__flush__ needs kinto.plugins.flush in `includes`")
        }
        Route::Metrics if !cfg.plugin("prometheus") => {
            Some("/__metrics__ needs kinto.plugins.prometheus in `includes`")
        }
        Route::Admin(_) if !cfg.plugin("admin") => {
            Some("the admin UI needs kinto.plugins.admin in `includes`")
        }
        _ => None,
    }
}
