// SPDX-License-Identifier: MIT OR Apache-2.0
//! Shell-style patterns for interface names: `*`, `?`, `[abc]`, `[a-z]`, `[!0-9]`.
//! Written here rather than pulled in as a crate: interface names are at most 15 bytes
//! and this is all the matching the config needs.

use std::fmt;

/// A compiled interface-name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Why a pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("empty pattern")]
    Empty,
    #[error("pattern longer than 64 characters")]
    TooLong,
    #[error("'[' at character {0} is never closed")]
    UnclosedClass(usize),
    #[error("empty character class at character {0}")]
    EmptyClass(usize),
    #[error("range {0}-{1} is backwards")]
    BackwardRange(char, char),
    #[error("character {0:?} cannot appear in an interface name")]
    BadChar(char),
}

impl Pattern {
    pub fn new(text: &str) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.chars().count() > 64 {
            return Err(PatternError::TooLong);
        }
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' => {
                    // Consecutive stars mean the same as one.
                    if tokens.last() != Some(&Token::AnyRun) {
                        tokens.push(Token::AnyRun);
                    }
                }
                '?' => tokens.push(Token::AnyOne),
                '[' => {
                    let start = i;
                    i += 1;
                    let negated = matches!(chars.get(i), Some('!') | Some('^'));
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    let mut first = true;
                    while i < chars.len() {
                        let lo = chars[i];
                        // A ']' right after '[' (or '[!') is a literal member.
                        if lo == ']' && !first {
                            closed = true;
                            break;
                        }
                        first = false;
                        check_name_char(lo)?;
                        if chars.get(i + 1) == Some(&'-')
                            && chars.get(i + 2).is_some_and(|c| *c != ']')
                        {
                            let hi = chars[i + 2];
                            check_name_char(hi)?;
                            if hi < lo {
                                return Err(PatternError::BackwardRange(lo, hi));
                            }
                            ranges.push((lo, hi));
                            i += 3;
                        } else {
                            ranges.push((lo, lo));
                            i += 1;
                        }
                    }
                    if !closed {
                        return Err(PatternError::UnclosedClass(start + 1));
                    }
                    if ranges.is_empty() {
                        return Err(PatternError::EmptyClass(start + 1));
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                c => {
                    check_name_char(c)?;
                    tokens.push(Token::Literal(c));
                }
            }
            i += 1;
        }
        Ok(Pattern {
            text: text.to_string(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        match_from(&self.tokens, &name)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The kernel refuses '/', ':' and whitespace in interface names (dev_valid_name).
fn check_name_char(c: char) -> Result<(), PatternError> {
    if c == '/' || c == ':' || c.is_whitespace() || c.is_control() {
        Err(PatternError::BadChar(c))
    } else {
        Ok(())
    }
}

fn match_from(tokens: &[Token], name: &[char]) -> bool {
    match tokens.split_first() {
        None => name.is_empty(),
        Some((Token::AnyRun, rest)) => (0..=name.len()).any(|skip| match_from(rest, &name[skip..])),
        Some((tok, rest)) => match name.split_first() {
            None => false,
            Some((c, name_rest)) => one_char(tok, *c) && match_from(rest, name_rest),
        },
    }
}

fn one_char(tok: &Token, c: char) -> bool {
    match tok {
        Token::Literal(l) => *l == c,
        Token::AnyOne => true,
        Token::AnyRun => true,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        Pattern::new(p).unwrap().matches(n)
    }

    #[test]
    fn literals_and_wildcards() {
        assert!(m("wlan0", "wlan0"));
        assert!(!m("wlan0", "wlan01"));
        assert!(m("wlan*", "wlan0"));
        assert!(m("wlan*", "wlan"));
        assert!(!m("wlan*", "wwan0"));
        assert!(m("w?an0", "wwan0"));
        assert!(!m("w?an0", "wan0"));
        assert!(m("*", "anything"));
        assert!(m("en*s*", "enp0s3"));
        assert!(m("**x", "abx"));
    }

    #[test]
    fn classes() {
        assert!(m("eth[0-3]", "eth2"));
        assert!(!m("eth[0-3]", "eth4"));
        assert!(m("eth[!0-3]", "eth4"));
        assert!(!m("eth[!0-3]", "eth0"));
        assert!(m("usb[ab]", "usbb"));
        assert!(m("x[]]", "x]"));
    }

    #[test]
    fn errors() {
        assert_eq!(Pattern::new(""), Err(PatternError::Empty));
        assert_eq!(Pattern::new("wl[an"), Err(PatternError::UnclosedClass(3)));
        assert_eq!(
            Pattern::new("x[9-0]"),
            Err(PatternError::BackwardRange('9', '0'))
        );
        assert_eq!(Pattern::new("a/b"), Err(PatternError::BadChar('/')));
        assert_eq!(Pattern::new("a b"), Err(PatternError::BadChar(' ')));
        assert!(matches!(
            Pattern::new(&"x".repeat(65)),
            Err(PatternError::TooLong)
        ));
    }
}
