//! Firefox Accounts scope matching, as FxA's verifiers do it: does a token
//! granted `provided` scopes allow `required`?
//!
//! * URL scopes (`https://identity.mozilla.com/apps/oldsync`): a granted URL
//!   covers itself and the paths below it; a granted `#fragment` must match
//!   exactly.
//! * Short names (`profile:email:write`): a granted name covers its
//!   sub-names; `:write` is needed for `:write` and covers reading.

pub fn scope_matches(provided: &[String], required: &str) -> bool {
    provided.iter().any(|p| one_matches(p, required))
}

fn one_matches(provided: &str, required: &str) -> bool {
    let is_url = |s: &str| s.starts_with("https:");
    match (is_url(provided), is_url(required)) {
        (true, true) => url_matches(provided, required),
        (false, false) => name_matches(provided, required),
        _ => false,
    }
}

fn url_matches(provided: &str, required: &str) -> bool {
    let (p_url, p_frag) = split_fragment(provided);
    let (r_url, r_frag) = split_fragment(required);
    if p_frag.is_some() && p_frag != r_frag {
        return false;
    }
    match r_url.strip_prefix(p_url) {
        Some("") => true,
        // Below the granted path, on a segment boundary.
        Some(rest) => rest.starts_with('/') || p_url.ends_with('/'),
        None => false,
    }
}

fn split_fragment(s: &str) -> (&str, Option<&str>) {
    match s.split_once('#') {
        Some((url, frag)) => (url, Some(frag)),
        None => (s, None),
    }
}

fn name_matches(provided: &str, required: &str) -> bool {
    let mut p: Vec<&str> = provided.split(':').collect();
    let mut r: Vec<&str> = required.split(':').collect();
    if r.last() == Some(&"write") {
        if p.last() != Some(&"write") {
            return false;
        }
        r.pop();
    }
    if p.last() == Some(&"write") {
        p.pop();
    }
    p.len() <= r.len() && p.iter().zip(&r).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(provided: &[&str], required: &str) -> bool {
        let p: Vec<String> = provided.iter().map(|s| s.to_string()).collect();
        scope_matches(&p, required)
    }

    #[test]
    fn fxa_rules() {
        let sync = "https://identity.mozilla.com/apps/oldsync";
        assert!(m(&[sync], sync));
        assert!(m(&["profile", sync], sync));
        assert!(m(&["https://identity.mozilla.com/apps"], sync));
        assert!(!m(&["https://identity.mozilla.com/app"], sync));
        assert!(!m(&[&format!("{sync}/x")], sync));
        assert!(!m(&[&format!("{sync}#read")], sync));
        assert!(!m(&["profile"], sync));
        assert!(!m(&[], sync));
        assert!(m(&["profile"], "profile:email"));
        assert!(!m(&["profile:email"], "profile"));
        assert!(!m(&["profile"], "profile:write"));
        assert!(m(&["profile:write"], "profile:email"));
        assert!(m(&["profile:write"], "profile:email:write"));
        assert!(!m(&["kinto"], "https://kinto"));
    }
}
