// SPDX-License-Identifier: MIT OR Apache-2.0
//! One-pass reading of a commit range: ONE `git log --raw -z` stream, parsed as it arrives,
//! gives ids, parents, dates, tags, subjects, upstream references and changed files of every
//! commit (never one process per commit).

use std::collections::HashMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::Git;
use crate::manifest::parse_version;

/// Record layout of the stream: RS, the side mark (`<`/`>` with --left-right), then
/// US-separated fields, then the raw diff (NUL-separated).
pub const LOG_FORMAT: &str =
    "--format=%x1e%m%x1f%H%x1f%P%x1f%at%x1f%ct%x1f%an <%ae>%x1f%D%x1f%s%x1f%b%x1f";

/// One changed path of a commit (`git log --raw`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// A, M, D, T, R (rename) or C (copy).
    pub status: char,
    pub path: String,
    /// Source path of a rename or copy.
    pub old_path: Option<String>,
}

/// What the plan needs to know about one commit.
#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    pub id: String,
    pub parents: Vec<String>,
    pub author_time: i64,
    pub commit_time: i64,
    pub author: String,
    pub tags: Vec<String>,
    pub subject: String,
    /// Commits this one says it was taken from: `commit X upstream.`, `[ Upstream commit X ]`,
    /// `(cherry picked from commit X)`.
    pub upstream: Vec<String>,
    /// `This reverts commit X.`
    pub reverts: Option<String>,
    pub files: Vec<FileChange>,
    /// `<` for the left side of a `--left-right A...B` walk, `>` for the right side.
    pub side: char,
}

impl Commit {
    /// A merge commit (never exported; kept for release computation).
    pub fn is_merge(&self) -> bool {
        self.parents.len() > 1
    }

    /// Every path the commit changes, including rename sources.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .flat_map(|f| std::iter::once(f.path.as_str()).chain(f.old_path.as_deref()))
    }

    /// The first 12 digits of the id, as the kernel cites commits.
    pub fn short(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// Scan `git log` for `revs` (e.g. `["v5.15.162", "--not", "v5.10.66"]`) in date order,
/// oldest first, with one git process.
pub fn scan(git: &Git, revs: &[&str]) -> Result<Vec<Commit>> {
    let mut args = vec![
        "log",
        "--date-order",
        "--reverse",
        "-z",
        "--raw",
        "-M",
        "--no-abbrev",
        "--no-color",
        "--decorate-refs=refs/tags/",
        LOG_FORMAT,
    ];
    args.extend_from_slice(revs);
    let mut parser = StreamParser::default();
    git.stream(&args, |chunk| parser.feed(chunk))?;
    parser.finish()
}

/// Both sides of `base...target` in ONE walk: (commits only in target = the range, commits
/// only in base = what the BSP's base has and the target lacks), each oldest first.
pub fn scan_sides(git: &Git, base: &str, target: &str) -> Result<(Vec<Commit>, Vec<Commit>)> {
    let sym = format!("{base}...{target}");
    let all = scan(git, &["--left-right", &sym])?;
    let (base_side, range): (Vec<Commit>, Vec<Commit>) =
        all.into_iter().partition(|c| c.side == '<');
    Ok((range, base_side))
}

/// Scan explicit commits (in the given order) with one `git log --no-walk=unsorted`.
pub fn scan_commits(git: &Git, ids: &[String]) -> Result<Vec<Commit>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let input: Vec<u8> = ids
        .iter()
        .flat_map(|c| format!("{c}\n").into_bytes())
        .collect();
    let args = [
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "-z",
        "--raw",
        "-M",
        "--no-abbrev",
        "--no-color",
        "--decorate-refs=refs/tags/",
        LOG_FORMAT,
    ];
    let out = git.pipe(&args, input)?;
    let mut parser = StreamParser::default();
    parser.feed(&out)?;
    parser.finish()
}

/// Incremental parser of the `LOG_FORMAT --raw -z` stream.
#[derive(Default)]
pub struct StreamParser {
    buf: Vec<u8>,
    /// Where to resume looking for the next record separator.
    scan_from: usize,
    commits: Vec<Commit>,
}

impl StreamParser {
    /// Add bytes; complete records are parsed right away.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(chunk);
        // `start`: first byte of the current record; records are parsed in place and the
        // buffer is compacted once per chunk (draining per record would be quadratic).
        let mut start = 0usize;
        let mut search = self.scan_from.max(1);
        loop {
            let next = self.buf[search..]
                .iter()
                .position(|&b| b == 0x1e)
                .map(|i| i + search);
            match next {
                Some(end) if is_record_start(&self.buf[end..]) => {
                    let commit = parse_record(&self.buf[start..end])?;
                    self.commits.extend(commit);
                    start = end;
                    search = end + 1;
                }
                // Too short to decide whether this RS starts a record: wait for more bytes.
                Some(end) if self.buf.len() - end < RECORD_START => {
                    search = end;
                    break;
                }
                // An RS byte inside a commit message.
                Some(end) => search = end + 1,
                None => {
                    search = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..start);
        self.scan_from = (search - start).max(1);
        Ok(())
    }

    /// Parse the last record and return all commits.
    pub fn finish(mut self) -> Result<Vec<Commit>> {
        if !self.buf.is_empty() {
            let commit = parse_record(&self.buf)?;
            self.commits.extend(commit);
        }
        Ok(self.commits)
    }
}

fn parse_record(record: &[u8]) -> Result<Option<Commit>> {
    let record = record.strip_prefix(&[0x1e]).unwrap_or(record);
    if record.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
        return Ok(None);
    }
    let mut fields = record.splitn(10, |&b| b == 0x1f);
    let mut next = |name: &str| -> Result<String> {
        fields
            .next()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .ok_or_else(|| Error::parse("git log record", format!("missing field {name}")))
    };
    let side = next("side")?.chars().next().unwrap_or('>');
    let id = next("id")?;
    let parents = next("parents")?;
    let author_time = next("author time")?;
    let commit_time = next("commit time")?;
    let author = next("author")?;
    let decoration = next("decoration")?;
    let subject = next("subject")?;
    let body = next("body")?;
    let raw = fields.next().unwrap_or(&[]);
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::parse(
            "git log record",
            format!("bad commit id `{id}`"),
        ));
    }
    let (upstream, reverts) = references(&body);
    Ok(Some(Commit {
        id,
        parents: parents.split_whitespace().map(str::to_string).collect(),
        author_time: author_time.trim().parse().unwrap_or(0),
        commit_time: commit_time.trim().parse().unwrap_or(0),
        author,
        tags: decoration
            .split(", ")
            .filter_map(|d| d.trim().strip_prefix("tag: "))
            .map(str::to_string)
            .collect(),
        subject,
        upstream,
        reverts,
        files: parse_raw(raw)?,
        side,
    }))
}

/// RS, side mark, US, 40 hex digits, US.
const RECORD_START: usize = 44;

fn is_record_start(bytes: &[u8]) -> bool {
    bytes.len() >= RECORD_START
        && bytes[2] == 0x1f
        && bytes[3..43].iter().all(|b| b.is_ascii_hexdigit())
        && bytes[43] == 0x1f
}

/// Parse `:old new sha sha STATUS\0path\0[path2\0]` entries.
fn parse_raw(raw: &[u8]) -> Result<Vec<FileChange>> {
    let mut files = Vec::new();
    let mut tokens = raw.split(|&b| b == 0).map(|t| {
        let t = t.strip_prefix(b"\n").unwrap_or(t);
        t.strip_suffix(b"\n").unwrap_or(t)
    });
    while let Some(token) = tokens.next() {
        if token.first() != Some(&b':') {
            continue;
        }
        let meta = String::from_utf8_lossy(token);
        let status = meta
            .split_whitespace()
            .last()
            .and_then(|s| s.chars().next())
            .unwrap_or('M');
        let first = tokens
            .next()
            .ok_or_else(|| Error::parse("git log --raw entry", meta.to_string()))?;
        let first = String::from_utf8_lossy(first).into_owned();
        if status == 'R' || status == 'C' {
            let second = tokens
                .next()
                .ok_or_else(|| Error::parse("git log --raw rename", meta.to_string()))?;
            files.push(FileChange {
                status,
                path: String::from_utf8_lossy(second).into_owned(),
                old_path: Some(first),
            });
        } else {
            files.push(FileChange {
                status,
                path: first,
                old_path: None,
            });
        }
    }
    Ok(files)
}

/// Upstream references and revert target in a commit message body.
pub fn references(body: &str) -> (Vec<String>, Option<String>) {
    let mut upstream = Vec::new();
    let mut reverts = None;
    for line in body.lines() {
        let line = line.trim();
        let lower = line.to_ascii_lowercase();
        // "commit X upstream." (stable), "[ Upstream commit X ]", "(cherry picked from commit X)"
        let candidate = if let Some(rest) = lower.strip_prefix("commit ") {
            rest.split_whitespace()
                .next()
                .filter(|_| lower.contains(" upstream"))
        } else if let Some(rest) = lower.strip_prefix("[ upstream commit ") {
            rest.split_whitespace().next()
        } else if let Some(rest) = lower.strip_prefix("(cherry picked from commit ") {
            Some(rest.trim_end_matches(')'))
        } else if let Some(rest) = lower.strip_prefix("this reverts commit ") {
            let id = rest
                .trim_end_matches('.')
                .split_whitespace()
                .next()
                .unwrap_or("");
            if is_full_id(id) {
                reverts = Some(id.to_string());
            }
            None
        } else {
            None
        };
        if let Some(id) = candidate {
            let id = id.trim_end_matches(['.', ')', ']']);
            if is_full_id(id) && !upstream.iter().any(|u| u == id) {
                upstream.push(id.to_string());
            }
        }
    }
    (upstream, reverts)
}

fn is_full_id(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// For each commit, the first release tag that contains it (e.g. `v5.11-rc1`), computed from
/// the parents and tags already in the stream: tags in version order, each claiming the
/// not-yet-claimed ancestors it reaches inside the range.
pub fn first_releases(commits: &[Commit]) -> Vec<Option<String>> {
    let index: HashMap<&str, usize> = commits
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let mut tags: Vec<(crate::manifest::Version, &str, usize)> = commits
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.tags
                .iter()
                .filter_map(move |t| parse_version(t).map(|v| (v, t.as_str(), i)))
        })
        .collect();
    tags.sort_by_key(|(v, _, _)| v.key());
    let mut release: Vec<Option<String>> = vec![None; commits.len()];
    let mut stack = Vec::new();
    for (_, tag, start) in tags {
        if release[start].is_some() {
            continue;
        }
        stack.clear();
        stack.push(start);
        while let Some(i) = stack.pop() {
            if release[i].is_some() {
                continue;
            }
            release[i] = Some(tag.to_string());
            for p in &commits[i].parents {
                if let Some(&pi) = index.get(p.as_str()) {
                    if release[pi].is_none() {
                        stack.push(pi);
                    }
                }
            }
        }
    }
    release
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        let d = "d".repeat(40);
        let body = format!(
            "commit {a} upstream.\n\n[ Upstream commit {b} ]\nfoo\n(cherry picked from commit {c})\nThis reverts commit {d}.\npartial backport of upstream commit 4d54cc32112d\n"
        );
        let (up, rev) = references(&body);
        assert_eq!(up, vec![a, b, c]);
        assert_eq!(rev, Some(d));
        assert!(references("commit 0123456 upstream.").0.is_empty());
    }

    #[test]
    fn stream_parser_handles_split_chunks_and_renames() {
        let id1 = "1".repeat(40);
        let id2 = "2".repeat(40);
        let mut stream = Vec::new();
        stream.extend_from_slice(
            format!("\x1e>\x1f{id1}\x1f\x1f10\x1f11\x1fA <a@x>\x1ftag: v1\x1finit\x1f\x1f\0\n")
                .as_bytes(),
        );
        stream.extend_from_slice(b":000000 100644 0000 1111 A\0d/y.c\0");
        stream.extend_from_slice(format!("\x1e<\x1f{id2}\x1f{id1}\x1f20\x1f21\x1fB <b@x>\x1f\x1ftwo\x1fbody \x1e inside\n\x1f\0\n").as_bytes());
        stream.extend_from_slice(
            b":100644 100644 1111 1111 R100\0d/y.c\0d/z.c\0:100644 100644 2 3 M\0f.txt\0",
        );
        // Feed in small pieces to exercise record boundaries.
        let mut parser = StreamParser::default();
        for piece in stream.chunks(7) {
            parser.feed(piece).unwrap();
        }
        let commits = parser.finish().unwrap();
        assert_eq!(commits.len(), 2);
        assert_eq!(commits[0].tags, vec!["v1".to_string()]);
        assert_eq!(
            commits[0].files,
            vec![FileChange {
                status: 'A',
                path: "d/y.c".into(),
                old_path: None
            }]
        );
        assert_eq!(commits[1].parents, vec![id1]);
        assert_eq!((commits[0].side, commits[1].side), ('>', '<'));
        assert_eq!(
            commits[1].files[0],
            FileChange {
                status: 'R',
                path: "d/z.c".into(),
                old_path: Some("d/y.c".into())
            }
        );
        assert_eq!(commits[1].files[1].path, "f.txt");
    }

    #[test]
    fn releases_follow_tag_order() {
        let mk = |id: char, parents: &[char], tags: &[&str]| Commit {
            id: id.to_string().repeat(40),
            parents: parents.iter().map(|p| p.to_string().repeat(40)).collect(),
            author_time: 0,
            commit_time: 0,
            author: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            subject: String::new(),
            upstream: Vec::new(),
            reverts: None,
            files: Vec::new(),
            side: '>',
        };
        // a - b(v5.11-rc1) - c - d(v5.11) ; e (stable on top of d, v5.11.1)
        let commits = vec![
            mk('a', &[], &[]),
            mk('b', &['a'], &["v5.11-rc1"]),
            mk('c', &['b'], &[]),
            mk('d', &['c'], &["v5.11"]),
            mk('e', &['d'], &["v5.11.1"]),
        ];
        let r = first_releases(&commits);
        assert_eq!(r[0].as_deref(), Some("v5.11-rc1"));
        assert_eq!(r[2].as_deref(), Some("v5.11"));
        assert_eq!(r[4].as_deref(), Some("v5.11.1"));
    }
}
