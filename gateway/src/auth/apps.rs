//! Per-app users (Test Pilot): a deployment maps OAuth client ids to app
//! names, and a token's user id gets its app as a suffix, as kinto-fxa names
//! users of several clients (`<uid>-<app>`). So one person has a distinct
//! user id, default bucket and principals in each app, and one app's token
//! can never act on another app's data. With apps configured, a token of a
//! client that is not mapped (or whose client is unknown) is refused.

use super::token_cache::Verified;
use crate::identity_config::Apps;

/// `(user id without prefix, app)`, or `None` when `apps` refuses it.
pub fn scoped(apps: &Apps, v: &Verified) -> Option<(String, Option<String>)> {
    if apps.is_empty() {
        return Some((v.user.clone(), None));
    }
    let app = apps.get(v.client_id.as_deref()?)?;
    Some((format!("{}-{app}", v.user), Some(app.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_per_app_and_unknown_clients_refused() {
        let apps = Apps::from([
            ("id-a".into(), "notes".into()),
            ("id-b".into(), "send".into()),
        ]);
        let v = |client: Option<&str>| Verified {
            user: "u1".into(),
            client_id: client.map(str::to_owned),
            expires_at: None,
        };
        assert_eq!(
            scoped(&apps, &v(Some("id-a"))),
            Some(("u1-notes".into(), Some("notes".into())))
        );
        assert_eq!(
            scoped(&apps, &v(Some("id-b"))),
            Some(("u1-send".into(), Some("send".into())))
        );
        assert_eq!(scoped(&apps, &v(Some("id-c"))), None);
        assert_eq!(scoped(&apps, &v(None)), None);
        assert_eq!(scoped(&Apps::new(), &v(None)), Some(("u1".into(), None)));
    }
}
