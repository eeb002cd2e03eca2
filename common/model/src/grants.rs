//! Who may do what by the settings alone (`bucket_create_principals` and the
//! other `*_principals`), with Kinto's default filled in.

/// The grants as configured, plus Kinto's default for who may create
/// buckets (`system.Authenticated`) when the settings name nobody.
pub fn with_kinto_defaults(
    configured: impl IntoIterator<Item = (String, Vec<String>)>,
) -> foldhash::HashMap<String, Vec<String>> {
    let mut grants: foldhash::HashMap<_, _> = configured.into_iter().collect();
    grants
        .entry("bucket_create_principals".into())
        .or_insert_with(|| vec!["system.Authenticated".into()]);
    grants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_users_create_buckets_unless_configured() {
        let default = with_kinto_defaults([]);
        assert_eq!(
            default["bucket_create_principals"],
            vec!["system.Authenticated".to_owned()]
        );
        let set = with_kinto_defaults([("bucket_create_principals".into(), vec!["a".into()])]);
        assert_eq!(set["bucket_create_principals"], vec!["a".to_owned()]);
    }
}
