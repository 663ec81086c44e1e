//! Percent-encoding of untrusted text put into URLs (ids from records, filter values): one
//! definition for the registry client, notification links and the inbox.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Every byte but RFC 3986's unreserved ones (letters, digits, `-`, `.`, `_`, `~`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` as one path segment or query value.
pub fn url_component(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_unreserved_bytes_stay() {
        let table = [
            ("esc-0a1b", "esc-0a1b"),
            ("a b/c?d#e", "a%20b%2Fc%3Fd%23e"),
            ("x\"><script>", "x%22%3E%3Cscript%3E"),
            ("é", "%C3%A9"),
            ("~._-", "~._-"),
        ];
        for (raw, want) in table {
            assert_eq!(super::url_component(raw), want);
        }
    }
}
