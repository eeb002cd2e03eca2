//! Kinto's URL space under `/v1`, parsed once into a [`Route`].

use kinto_placement::PlacementKey;
use kinto_proto::pb::Kind;

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Hello,
    Heartbeat,
    LbHeartbeat,
    Version,
    /// `GET /contribute.json`: open-source information, as Kinto serves it.
    Contribute,
    Batch,
    /// `POST /__flush__` (only when enabled: see `GatewayConfig`).
    Flush,
    /// `GET /permissions`.
    Permissions,
    /// `GET /__api__`: the OpenAPI description.
    Api,
    /// `GET /__metrics__`: Prometheus metrics (Kinto's prometheus plugin).
    Metrics,
    /// `/admin…`: the admin UI's files; holds what follows `/admin`.
    Admin(String),
    /// `GET /buckets/{bucket}/snapshot/collections/{collection}@{timestamp}`.
    Snapshot {
        bucket: String,
        collection: String,
        timestamp: String,
    },
    /// `DELETE /__user_data__/{principal}`.
    UserData(String),
    /// `GET /openid/{provider}/login` (`token: false`) and
    /// `GET /openid/{provider}/token` (`token: true`): the login flow.
    OpenId {
        provider: String,
        token: bool,
    },
    Resource(ResourcePath),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePath {
    pub kind: Kind,
    pub bucket: String,
    pub collection: String,
    /// `None` for a plural endpoint.
    pub id: Option<String>,
}

impl ResourcePath {
    pub fn resource_name(&self) -> &'static str {
        match self.kind {
            Kind::Bucket => "bucket",
            Kind::Group => "group",
            Kind::Collection => "collection",
            Kind::Account => "account",
            Kind::History => "history",
            _ => "record",
        }
    }

    /// What places the target: its bucket, or for an account its id. `None`
    /// for `/buckets` and `/accounts`, which span every shard.
    pub fn placement(&self) -> Option<PlacementKey<'_>> {
        PlacementKey::of(self.kind == Kind::Account, &self.bucket, self.id.as_deref())
    }

    /// The ids of the parents in the path (bucket, then collection).
    pub fn parent_ids(&self) -> Vec<&str> {
        match self.kind {
            Kind::Bucket | Kind::Account => vec![],
            Kind::Record => vec![&self.bucket, &self.collection],
            _ => vec![&self.bucket],
        }
    }
}

/// Parses the part of the path after `/v1` (`""` and `"/"` are the hello
/// view). `None` means no such endpoint.
pub fn parse(path: &str) -> Option<Route> {
    match path {
        "/" => return Some(Route::Hello),
        "/__heartbeat__" => return Some(Route::Heartbeat),
        "/__lbheartbeat__" => return Some(Route::LbHeartbeat),
        "/__version__" => return Some(Route::Version),
        "/contribute.json" => return Some(Route::Contribute),
        "/batch" => return Some(Route::Batch),
        "/__flush__" => return Some(Route::Flush),
        "/permissions" => return Some(Route::Permissions),
        "/__api__" => return Some(Route::Api),
        "/__metrics__" => return Some(Route::Metrics),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/admin") {
        if rest.is_empty() || rest.starts_with('/') {
            return Some(Route::Admin(rest.to_owned()));
        }
    }
    if let Some(rest) = path.strip_prefix("/openid/") {
        let (provider, step) = rest.split_once('/')?;
        let token = match step {
            "login" => false,
            "token" => true,
            _ => return None,
        };
        return (!provider.is_empty() && !provider.contains('/')).then(|| Route::OpenId {
            provider: provider.to_owned(),
            token,
        });
    }
    if let Some(principal) = path.strip_prefix("/__user_data__/") {
        return (!principal.is_empty()).then(|| Route::UserData(principal.to_owned()));
    }
    let rest = path.strip_prefix('/')?;
    let seg: Vec<&str> = rest.split('/').collect();
    if seg.first() == Some(&"accounts") {
        let id = match seg.as_slice() {
            [_] => None,
            [_, id] if !id.is_empty() => Some(id.to_string()),
            _ => return None,
        };
        // Accounts are in no bucket: placed by their own id (`placement`).
        return Some(Route::Resource(ResourcePath {
            kind: Kind::Account,
            bucket: String::new(),
            collection: String::new(),
            id,
        }));
    }
    if seg.iter().any(|s| s.is_empty()) || seg.first() != Some(&"buckets") {
        return None;
    }
    let s = |i: usize| seg[i].to_owned();
    let r = |kind, bucket: String, collection: String, id: Option<String>| {
        Some(Route::Resource(ResourcePath {
            kind,
            bucket,
            collection,
            id,
        }))
    };
    match (seg.len(), seg.get(2).copied(), seg.get(4).copied()) {
        (1, _, _) => r(Kind::Bucket, String::new(), String::new(), None),
        (2, _, _) => r(Kind::Bucket, s(1), String::new(), Some(s(1))),
        (3, Some("groups"), _) => r(Kind::Group, s(1), String::new(), None),
        (4, Some("groups"), _) => r(Kind::Group, s(1), String::new(), Some(s(3))),
        (3, Some("collections"), _) => r(Kind::Collection, s(1), String::new(), None),
        (4, Some("collections"), _) => r(Kind::Collection, s(1), String::new(), Some(s(3))),
        (3, Some("history"), _) => r(Kind::History, s(1), String::new(), None),
        (5, Some("snapshot"), _) if seg[3] == "collections" => {
            let (collection, timestamp) = seg[4].split_once('@')?;
            Some(Route::Snapshot {
                bucket: s(1),
                collection: collection.to_owned(),
                timestamp: timestamp.to_owned(),
            })
        }
        (5, Some("collections"), Some("records")) => r(Kind::Record, s(1), s(3), None),
        (6, Some("collections"), Some("records")) => r(Kind::Record, s(1), s(3), Some(s(5))),
        _ => None,
    }
}

/// A coarse, id-free name of the endpoint a path addresses, for logs,
/// spans and metrics (`records`, `record`, `batch`, …).
pub fn label_of(path: &str) -> &'static str {
    let Some(rest) = path.strip_prefix("/v1") else {
        return "unversioned";
    };
    match parse(if rest.is_empty() { "/" } else { rest }) {
        None => "unknown",
        Some(Route::Hello) => "hello",
        Some(Route::Heartbeat) => "heartbeat",
        Some(Route::LbHeartbeat) => "lbheartbeat",
        Some(Route::Version) => "version",
        Some(Route::Contribute) => "contribute",
        Some(Route::Batch) => "batch",
        Some(Route::Flush) => "flush",
        Some(Route::Permissions) => "permissions",
        Some(Route::Api) => "api",
        Some(Route::Metrics) => "metrics",
        Some(Route::Admin(_)) => "admin",
        Some(Route::Snapshot { .. }) => "snapshot",
        Some(Route::UserData(_)) => "user_data",
        Some(Route::OpenId { token: false, .. }) => "openid_login",
        Some(Route::OpenId { token: true, .. }) => "openid_token",
        Some(Route::Resource(p)) => match (p.kind, p.id.is_some()) {
            (Kind::Bucket, false) => "buckets",
            (Kind::Bucket, true) => "bucket",
            (Kind::Group, false) => "groups",
            (Kind::Group, true) => "group",
            (Kind::Collection, false) => "collections",
            (Kind::Collection, true) => "collection",
            (Kind::Record, false) => "records",
            (Kind::Account, false) => "accounts",
            (Kind::Account, true) => "account",
            (Kind::History, _) => "history",
            _ => "record",
        },
    }
}

/// Headers every Kinto service exposes to CORS clients.
const DEFAULT_EXPOSED: &[&str] = &[
    "Alert",
    "Backoff",
    "Content-Length",
    "Content-Type",
    "Retry-After",
];
/// What a read of one object adds.
const OBJECT_READ: &[&str] = &[
    "Cache-Control",
    "ETag",
    "Expires",
    "Last-Modified",
    "Pragma",
];

impl Route {
    /// The methods this endpoint answers, in the order of Kinto's `Allow`
    /// header (OPTIONS included: preflights are answered everywhere).
    pub fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::Hello
            | Route::Heartbeat
            | Route::LbHeartbeat
            | Route::Version
            | Route::Contribute
            | Route::Api
            | Route::Metrics
            | Route::Admin(_)
            | Route::OpenId { .. } => &["GET", "HEAD", "OPTIONS"],
            Route::Batch | Route::Flush => &["POST", "OPTIONS"],
            Route::Permissions | Route::Snapshot { .. } => &["GET", "HEAD", "OPTIONS"],
            Route::UserData(_) => &["DELETE", "OPTIONS"],
            Route::Resource(p) if p.kind == Kind::History => &["GET", "HEAD", "DELETE", "OPTIONS"],
            Route::Resource(p) if p.id.is_none() => &["HEAD", "GET", "POST", "DELETE", "OPTIONS"],
            Route::Resource(_) => &["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"],
        }
    }

    /// `Access-Control-Expose-Headers` for a response to `method`, as Kinto
    /// declares them per service and method: only reads expose caching
    /// headers, only plural reads `Next-Page`, only plural HEAD the counts.
    pub fn exposed_headers(&self, method: &str) -> Vec<&'static str> {
        let mut h = DEFAULT_EXPOSED.to_vec();
        if *self == Route::Permissions && matches!(method, "GET" | "HEAD") {
            h.extend_from_slice(OBJECT_READ);
            h.push("Next-Page");
            if method == "HEAD" {
                h.extend_from_slice(&["Total-Objects", "Total-Records"]);
            }
        }
        if let Route::Resource(p) = self {
            if matches!(method, "GET" | "HEAD") {
                h.extend_from_slice(OBJECT_READ);
                if p.id.is_none() {
                    h.push("Next-Page");
                    if method == "HEAD" {
                        h.extend_from_slice(&["Total-Objects", "Total-Records"]);
                    }
                }
            }
        }
        h
    }

    /// Every header any method of this endpoint exposes: what a preflight
    /// allows the client to send, besides the ones it asks for.
    pub fn all_exposed_headers(&self) -> Vec<&'static str> {
        let mut all = self.exposed_headers("HEAD");
        all.sort_unstable();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_resource_tree() {
        assert_eq!(parse("/"), Some(Route::Hello));
        let Some(Route::Resource(r)) = parse("/buckets/b/collections/c/records/r") else {
            panic!("record path not parsed");
        };
        assert_eq!(
            (r.kind, r.bucket.as_str(), r.collection.as_str()),
            (Kind::Record, "b", "c")
        );
        assert_eq!(r.id.as_deref(), Some("r"));
        let Some(Route::Resource(r)) = parse("/buckets") else {
            panic!("plural not parsed");
        };
        assert_eq!((r.kind, r.id), (Kind::Bucket, None));
        assert_eq!(parse("/buckets/b/"), None);
        assert_eq!(parse("/buckets/b/foo"), None);
        assert_eq!(parse("/nothing"), None);
    }

    #[test]
    fn exposed_headers_depend_on_endpoint_and_method() {
        let plural = parse("/buckets/b/collections").expect("plural");
        let object = parse("/buckets/b").expect("object");
        assert!(plural.exposed_headers("HEAD").contains(&"Total-Objects"));
        assert!(!plural.exposed_headers("GET").contains(&"Total-Objects"));
        assert!(plural.exposed_headers("GET").contains(&"Next-Page"));
        assert!(!object.exposed_headers("GET").contains(&"Next-Page"));
        assert!(object.exposed_headers("GET").contains(&"ETag"));
        assert!(!object.exposed_headers("PUT").contains(&"ETag"));
        assert_eq!(Route::Hello.exposed_headers("GET").len(), 5);
        assert!(!object.methods().contains(&"POST"));
        assert!(!plural.methods().contains(&"PUT"));
    }
}
