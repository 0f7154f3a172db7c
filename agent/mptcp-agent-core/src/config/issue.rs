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
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..offset].chars().count() + 1)
}

/// Issues found so far, placed in the text they were found in.
pub(super) struct Issues<'a> {
    pub(super) text: &'a str,
    pub(super) list: Vec<Issue>,
}

impl<'a> Issues<'a> {
    pub(super) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = position(self.text, span.start);
        self.list.push(Issue {
            line,
            column,
            message: message.into(),
        });
    }
}
