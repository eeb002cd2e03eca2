//! Is a login flow's `callback` URL trusted? Tokens are sent to it, so it is
//! compared with allow-list patterns (`*` is the only wildcard, in host,
//! port and the rest), after refusing any URL a browser could read
//! differently from us (spaces, credentials, odd host characters, dot
//! segments), as Kinto 26.5 does.

const HOST_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789.-*";
const IPV6_CHARS: &str = "0123456789abcdef:.";

/// `(scheme, host, port, rest)`, normalised, or `None` for a URL we refuse.
fn parts(url: &str) -> Option<(&str, String, String, String)> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, after) = url.split_once("://")?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let end = after.find(['/', '?', '#', '\\']).unwrap_or(after.len());
    let (netloc, rest) = after.split_at(end);
    if netloc.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = netloc.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let host = host.to_ascii_lowercase();
        if !host.chars().all(|c| IPV6_CHARS.contains(c)) {
            return None;
        }
        (host, after.strip_prefix(':').unwrap_or(after).to_owned())
    } else {
        let (host, port) = netloc.split_once(':').unwrap_or((netloc, ""));
        let host = host.to_ascii_lowercase();
        if !host.chars().all(|c| HOST_CHARS.contains(c)) {
            return None;
        }
        (host, port.to_owned())
    };
    if host.is_empty() || !port.chars().all(|c| c.is_ascii_digit() || c == '*') {
        return None;
    }
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let path = rest[..path_end]
        .to_ascii_lowercase()
        .replace("%2e", ".")
        .replace('\\', "/");
    if path.split('/').any(|s| s == "." || s == "..") {
        return None;
    }
    let port = if port.is_empty() {
        default_port.to_owned()
    } else {
        port
    };
    let rest = if rest.is_empty() {
        "/".to_owned()
    } else {
        rest.to_owned()
    };
    Some((scheme, host, port, rest))
}

/// Shell-style matching with `*` as the only wildcard.
fn glob(value: &str, pattern: &str) -> bool {
    let (v, p) = (value.as_bytes(), pattern.as_bytes());
    let (mut vi, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, vi));
            pi += 1;
        } else if pi < p.len() && p[pi] == v[vi] {
            vi += 1;
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

pub fn is_trusted(callback: &str, patterns: &[String]) -> bool {
    let Some((scheme, host, port, rest)) = parts(callback) else {
        return false;
    };
    patterns.iter().any(|pattern| {
        parts(pattern).is_some_and(|(s, h, p, r)| {
            s == scheme && glob(&host, &h) && glob(&port, &p) && glob(&rest, &r)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kintos_rules() {
        let local: Vec<String> = ["http://localhost:*/*", "http://127.0.0.1:*/*"]
            .map(String::from)
            .to_vec();
        assert!(is_trusted("http://localhost:3000/#tokens=", &local));
        assert!(is_trusted("http://127.0.0.1:8888/v1/admin/#auth/", &local));
        assert!(!is_trusted(
            "http://localhost/",
            &[String::from("http://localhost:*/x*")]
        ));
        assert!(!is_trusted("https://localhost:3000/", &local));
        assert!(!is_trusted("http://evil.com\\.localhost:3000/", &local));
        assert!(!is_trusted("http://user@localhost:3000/", &local));
        assert!(!is_trusted("http://localhost:3000/a/../b", &local));
        assert!(!is_trusted("http://localhost:3000/a/%2E%2E/b", &local));
        assert!(!is_trusted("http://localhost.evil.com:3000/", &local));
        assert!(!is_trusted("http://local host:3000/", &local));
        let admin = vec![String::from("https://kinto.example.com/v1/admin/*")];
        assert!(is_trusted(
            "https://kinto.example.com/v1/admin/#auth",
            &admin
        ));
        assert!(is_trusted(
            "https://kinto.example.com:443/v1/admin/",
            &admin
        ));
        assert!(!is_trusted("https://kinto.example.com/v1/other", &admin));
    }
}
