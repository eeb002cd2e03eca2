//! The members of a stored JSON object, each value left as its raw text:
//! what a page of a list needs to copy a row without building it.
//!
//! A stored document was printed by `serde_json`, so it is valid JSON, and
//! finding where a value ends only needs its brackets and strings, not a
//! parse: `serde_json` reading a value as raw still checks every byte of it
//! (numbers, escapes, UTF-8), which was most of what a list page spent per
//! row. A damaged document gives an error here, never a panic; the values
//! a caller reads (numbers, strings it unescapes, fields it keeps) are
//! parsed for real, and the store's blocks carry checksums against the rest.

use std::borrow::Cow;

/// Why a document could not be read.
pub type Broken = String;

/// The members of the object `doc`, in order: the key (unescaped) and the
/// value's raw text.
pub fn members(doc: &str) -> Members<'_> {
    Members {
        doc,
        at: 0,
        started: false,
        done: false,
    }
}

pub struct Members<'a> {
    doc: &'a str,
    at: usize,
    started: bool,
    done: bool,
}

impl<'a> Members<'a> {
    /// The text after the members read so far.
    pub fn rest(&self) -> &'a str {
        self.doc.get(self.at..).unwrap_or_default()
    }

    fn next_member(&mut self) -> Result<Option<(Cow<'a, str>, &'a str)>, Broken> {
        let b = self.doc.as_bytes();
        if !self.started {
            self.started = true;
            self.at = skip_ws(b, 0);
            if b.get(self.at) != Some(&b'{') {
                return Err(broken(self.doc, "not an object"));
            }
            self.at = skip_ws(b, self.at + 1);
            if b.get(self.at) == Some(&b'}') {
                return Ok(None);
            }
        } else {
            match b.get(self.at) {
                Some(b',') => self.at = skip_ws(b, self.at + 1),
                Some(b'}') => return Ok(None),
                _ => return Err(broken(self.doc, "expected `,` or `}`")),
            }
        }
        let (key_end, escaped) =
            string_end(b, self.at).ok_or_else(|| broken(self.doc, "bad key"))?;
        let raw_key = &self.doc[self.at..key_end];
        let key = if escaped {
            unquote(raw_key)?
        } else {
            Cow::Borrowed(&raw_key[1..raw_key.len() - 1])
        };
        let colon = skip_ws(b, key_end);
        if b.get(colon) != Some(&b':') {
            return Err(broken(self.doc, "expected `:`"));
        }
        let start = skip_ws(b, colon + 1);
        let end = value_end(b, start).ok_or_else(|| broken(self.doc, "bad value"))?;
        self.at = skip_ws(b, end);
        Ok(Some((key, &self.doc[start..end])))
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<(Cow<'a, str>, &'a str), Broken>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_member().transpose();
        self.done = !matches!(item, Some(Ok(_)));
        item
    }
}

/// The string a raw JSON string (with its quotes) holds: borrowed unless it
/// has escapes.
pub fn unquote(raw: &str) -> Result<Cow<'_, str>, Broken> {
    let inner = (raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
        .ok_or_else(|| broken(raw, "not a string"))?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw)
            .map(Cow::Owned)
            .map_err(|e| e.to_string())
    } else {
        Ok(Cow::Borrowed(inner))
    }
}

fn broken(doc: &str, why: &str) -> Broken {
    format!("{why}: {doc:.60}")
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Bytes of a string read one at a time before a vectorised search: keys
/// and ids end sooner than its set-up would pay off, long values do not.
const SHORT: usize = 48;

/// Just past the string that starts at `i` (its opening quote), and whether
/// it holds an escape.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (mut j, mut escaped) = (i + 1, false);
    let short = (j + SHORT).min(b.len());
    loop {
        if j >= short {
            j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        }
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
}

/// Just past the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    let (open, close) = match b.get(i)? {
        b'"' => return string_end(b, i).map(|(end, _)| end),
        b'{' => (b'{', b'}'),
        b'[' => (b'[', b']'),
        // A number, `true`, `false` or `null`.
        _ => {
            let n = b[i..]
                .iter()
                .take_while(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                .count();
            return (n > 0).then_some(i + n);
        }
    };
    // Brackets of the other kind nest inside balanced, so counting this
    // kind (outside strings) finds the end.
    let (mut depth, mut j) = (0usize, i);
    loop {
        match *b.get(j)? {
            b'"' => {
                j = string_end(b, j)?.0;
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(doc: &str) -> Result<Vec<(String, String)>, Broken> {
        members(doc)
            .map(|m| m.map(|(k, v)| (k.into_owned(), v.to_owned())))
            .collect()
    }

    /// Each member's value is the text `serde_json` prints for it, whatever
    /// it holds: nested brackets inside strings, escapes, numbers.
    #[test]
    fn members_are_the_values_as_printed() {
        let value = serde_json::json!({
            "a": "x}\"]{[\\",
            "k\"ey\\": [1, -2.5e3, {"b": [[], {}]}, null, true, false],
            "n": 12345678901234567890u64,
            "o": {"}": "{", "s": "\u{1}\u{e9}\n"},
            "": "",
        });
        // Long strings, escapes on either side of where the search changes.
        let mut value = value;
        for at in [0, super::SHORT - 3, super::SHORT - 1, super::SHORT, 200] {
            let text = format!("{}\"\\{}", "x".repeat(at), "y".repeat(300));
            value[format!("long{at}\"")] = serde_json::json!([text, {"k": text}]);
        }
        let doc = serde_json::to_string(&value).expect("print");
        let got = all(&doc).expect("members");
        let map = value.as_object().expect("object");
        assert_eq!(got.len(), map.len());
        for ((k, v), (ek, ev)) in got.iter().zip(map) {
            assert_eq!(k, ek);
            assert_eq!(v, &serde_json::to_string(ev).expect("print"));
        }
        assert_eq!(
            all(" { \"a\" : 1 , \"b\" : [ ] } ").expect("spaced").len(),
            2
        );
        assert!(all("{}").expect("empty").is_empty());
    }

    #[test]
    fn a_damaged_document_is_an_error_not_a_panic() {
        for bad in [
            "",
            "[]",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\":\"x",
            "{\"a\":[1,{}",
            "{\"a\":1 \"b\":2}",
            "{a:1}",
            "{\"a\"1}",
            "{\"a\":}",
            "{\"a\\\":1}",
            "\"s\"",
        ] {
            assert!(all(bad).is_err(), "{bad:?} read as an object");
        }
    }
}
