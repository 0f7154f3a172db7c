// SPDX-License-Identifier: MIT OR Apache-2.0
//! Text shared by the verbs: columns and words wrapped to a width.

pub(super) fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

pub(super) fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut out = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                out.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// The width `status` fits in.
pub const WIDTH: usize = 80;

/// Words filled into lines of at most `width` characters, each starting with `indent`
/// (the first with `first`); a word longer than a line stands alone.
pub fn wrap(text: &str, first: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if !empty && len + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_fits_the_width() {
        let text = "a ".repeat(100) + &"x".repeat(90);
        let w = wrap(&text, "  ", "    ", 20);
        for l in w.lines() {
            assert!(l.chars().count() <= 20 || !l.trim().contains(' '), "{l:?}");
        }
        assert!(w.starts_with("  a a"));
        assert!(w.lines().nth(1).unwrap().starts_with("    a"));
        assert_eq!(wrap("short", "> ", "  ", 80), "> short\n");
    }
}
