// SPDX-License-Identifier: MIT OR Apache-2.0
//! Problems found in a config file, each with its position.

use std::{fmt, ops::Range};

/// One problem in a config file, with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Every problem found in a config file (parsing stops at the first syntax error;
/// validation reports all it finds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render(None))]
pub struct ConfigError {
    pub issues: Vec<Issue>,
}

impl ConfigError {
    /// One issue per line, prefixed `ORIGIN:LINE:COLUMN: ` when `origin` (a file path) is
    /// given, the way compilers print positions.
    pub fn render(&self, origin: Option<&str>) -> String {
        let mut out = Vec::new();
        for i in &self.issues {
            out.push(match origin {
                Some(o) => format!("{o}:{}:{}: {}", i.line, i.column, i.message),
                None => i.to_string(),
            });
        }
        out.join("\n")
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    positions(text, &[offset])[0]
}

/// 1-based line and column of each byte offset (one inside a character counts as its
/// start), in one pass over the text: a hostile file with thousands of problems must not
/// cost thousands of passes.
fn positions(text: &str, offsets: &[usize]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_by_key(|&i| offsets[i]);
    let mut out = vec![(1, 1); offsets.len()];
    let (mut line, mut column) = (1, 1);
    let mut chars = text.char_indices().peekable();
    for i in order {
        while let Some(&(at, c)) = chars.peek() {
            if at + c.len_utf8() > offsets[i] {
                break;
            }
            if c == '\n' {
                (line, column) = (line + 1, 1);
            } else {
                column += 1;
            }
            chars.next();
        }
        out[i] = (line, column);
    }
    out
}

/// Issues found so far, placed in the text they were found in. Positions are worked out
/// once, by [`Issues::into_list`].
pub(super) struct Issues<'a> {
    text: &'a str,
    list: Vec<(usize, String)>,
}

impl<'a> Issues<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Issues {
            text,
            list: Vec::new(),
        }
    }

    pub(super) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.list.push((span.start, message.into()));
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(super) fn into_list(self) -> Vec<Issue> {
        let offsets: Vec<usize> = self.list.iter().map(|(o, _)| *o).collect();
        positions(self.text, &offsets)
            .into_iter()
            .zip(self.list)
            .map(|((line, column), (_, message))| Issue {
                line,
                column,
                message,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Line and column of one offset by counting from the start, as positions were found
    /// before they were found in one pass.
    fn by_counting(text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (
            before.matches('\n').count() + 1,
            text[line_start..offset].chars().count() + 1,
        )
    }

    #[test]
    fn one_pass_places_every_offset_as_counting_does() {
        let text = "a = 1\n\n[l\u{e9}]\nn\u{e4}me = \"\u{1f600}x\"\n\tz = 2";
        // Every byte offset (inside characters too), past the end, out of order, repeated.
        let mut offsets: Vec<usize> = (0..=text.len() + 3).rev().collect();
        offsets.extend([7, 7, 0]);
        let got = positions(text, &offsets);
        for (o, p) in offsets.iter().zip(got) {
            assert_eq!(p, by_counting(text, *o), "offset {o}");
        }
    }
}
