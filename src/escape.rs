//! Untrusted text made safe where it is shown: percent-encoding for URLs (ids from records,
//! filter values: the registry client, notification links, the inbox), and Markdown table
//! cells for reports.

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

/// `s` as the text of one Markdown table cell: on one line, Markdown's punctuation and HTML's
/// `<` `>` `&` backslash-escaped or encoded, so a name cannot break the table or add markup.
pub fn markdown_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_cells_stay_one_plain_cell() {
        let table = [
            ("ana", "ana"),
            ("a|b", "a\\|b"),
            (
                "<img src=x onerror=alert(1)>",
                "&lt;img src=x onerror=alert(1)&gt;",
            ),
            ("**bold** [l](u)", "\\*\\*bold\\*\\* \\[l\\](u)"),
            ("two\nlines", "two lines"),
            ("a\u{7}b", "ab"),
        ];
        for (raw, want) in table {
            assert_eq!(super::markdown_cell(raw), want, "{raw:?}");
        }
    }

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
