// SPDX-License-Identifier: MIT OR Apache-2.0
//! The one `git fast-import` process a history is written through: branches, commits,
//! merges and tags.

use super::*;

/// A file change.
#[derive(Debug, Clone)]
pub enum Change {
    /// Set line `line` (0-based) of `path`.
    Edit {
        path: String,
        line: usize,
        text: String,
    },
    /// Insert lines before `line`.
    Insert {
        path: String,
        line: usize,
        lines: Vec<String>,
    },
    /// Create or replace a whole file.
    Write {
        path: String,
        lines: Vec<String>,
    },
    Rename {
        from: String,
        to: String,
    },
    Delete {
        path: String,
    },
}

#[derive(Clone, Default)]
pub(super) struct Branch {
    pub(super) head: Option<u64>,
    pub(super) files: BTreeMap<String, Vec<String>>,
}

/// Low-level writer of a fast-import stream with per-branch file state.
pub struct Synth {
    pub(super) child: Child,
    pub(super) input: BufWriter<ChildStdin>,
    pub(super) output: BufReader<ChildStdout>,
    pub(super) branches: BTreeMap<String, Branch>,
    pub(super) mark: u64,
    pub(super) time: i64,
}

impl Synth {
    /// `git init` a repository at `path` and start fast-import into it.
    pub fn create(path: &Path) -> Result<Synth> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let st = Command::new("git")
            .args(["init", "-q", "-b", "master"])
            .arg(path)
            .status()
            .map_err(|e| Error::Command {
                command: "git init".into(),
                message: e.to_string(),
            })?;
        if !st.success() {
            return Err(Error::Command {
                command: "git init".into(),
                message: format!("failed in {}", path.display()),
            });
        }
        let mut child = Command::new("git")
            .arg("-C")
            .arg(path)
            .args(["fast-import", "--quiet", "--done"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Command {
                command: "git fast-import".into(),
                message: e.to_string(),
            })?;
        let input = BufWriter::with_capacity(
            1 << 20,
            child
                .stdin
                .take()
                .ok_or_else(|| Error::parse("fast-import", "no stdin"))?,
        );
        let output = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| Error::parse("fast-import", "no stdout"))?,
        );
        Ok(Synth {
            child,
            input,
            output,
            branches: BTreeMap::new(),
            mark: 0,
            time: 1_607_860_800, /* 2020-12-13 */
        })
    }

    pub(super) fn io(e: std::io::Error) -> Error {
        Error::Command {
            command: "git fast-import".into(),
            message: e.to_string(),
        }
    }

    /// Start branch `name` at the head of `from` (same files).
    pub fn branch(&mut self, name: &str, from: &str) {
        let b = self.branches.get(from).cloned().unwrap_or_default();
        self.branches.insert(name.to_string(), b);
    }

    /// Content of a file on a branch.
    pub fn file(&self, branch: &str, path: &str) -> Option<&Vec<String>> {
        self.branches.get(branch).and_then(|b| b.files.get(path))
    }

    /// Commit `changes` on `branch`; returns the mark. `merge` adds a second parent (the
    /// head of that branch) and copies `merge_paths` from it.
    pub fn commit(
        &mut self,
        branch: &str,
        author: &str,
        message: &str,
        changes: &[Change],
    ) -> Result<u64> {
        self.commit_merge(branch, author, message, changes, None, &[])
    }

    pub(super) fn commit_merge(
        &mut self,
        branch: &str,
        author: &str,
        message: &str,
        changes: &[Change],
        merge: Option<&str>,
        merge_paths: &[String],
    ) -> Result<u64> {
        self.mark += 1;
        self.time += 60;
        let mark = self.mark;
        let merge_head = merge
            .and_then(|m| self.branches.get(m))
            .and_then(|b| b.head);
        let merged: Vec<(String, Vec<String>)> = match merge {
            Some(m) => {
                let other = self.branches.get(m).cloned().unwrap_or_default();
                merge_paths
                    .iter()
                    .filter_map(|p| other.files.get(p).map(|c| (p.clone(), c.clone())))
                    .collect()
            }
            None => Vec::new(),
        };
        let b = self.branches.entry(branch.to_string()).or_default();
        let mut s = Vec::with_capacity(4096);
        let (name, email) = author
            .split_once(" <")
            .map(|(n, e)| (n, e.trim_end_matches('>')))
            .unwrap_or((author, "dev@example.org"));
        let _ = write!(s, "commit refs/heads/{branch}\nmark :{mark}\nauthor {name} <{email}> {} +0000\ncommitter {name} <{email}> {} +0000\n", self.time, self.time);
        let _ = write!(s, "data {}\n{}\n", message.len(), message);
        if let Some(h) = b.head {
            let _ = writeln!(s, "from :{h}");
        }
        if let Some(m) = merge_head {
            let _ = writeln!(s, "merge :{m}");
        }
        let mut touched: Vec<String> = Vec::new();
        for (p, c) in merged {
            b.files.insert(p.clone(), c);
            touched.push(p);
        }
        for ch in changes {
            match ch {
                Change::Edit { path, line, text } => {
                    let f = b.files.entry(path.clone()).or_default();
                    if f.len() <= *line {
                        f.resize(line + 1, String::new());
                    }
                    f[*line] = text.clone();
                    touched.push(path.clone());
                }
                Change::Insert { path, line, lines } => {
                    let f = b.files.entry(path.clone()).or_default();
                    let at = (*line).min(f.len());
                    f.splice(at..at, lines.iter().cloned());
                    touched.push(path.clone());
                }
                Change::Write { path, lines } => {
                    b.files.insert(path.clone(), lines.clone());
                    touched.push(path.clone());
                }
                Change::Rename { from, to } => {
                    if let Some(c) = b.files.remove(from) {
                        b.files.insert(to.clone(), c);
                    }
                    let _ = writeln!(s, "R {from} {to}");
                }
                Change::Delete { path } => {
                    b.files.remove(path);
                    let _ = writeln!(s, "D {path}");
                }
            }
        }
        touched.sort();
        touched.dedup();
        for p in touched {
            if let Some(content) = b.files.get(&p) {
                let mut text = content.join("\n");
                text.push('\n');
                let _ = write!(s, "M 100644 inline {p}\ndata {}\n{}\n", text.len(), text);
            }
        }
        s.push(b'\n');
        b.head = Some(mark);
        self.input.write_all(&s).map_err(Self::io)?;
        Ok(mark)
    }

    /// Merge `other` into `branch`, taking `paths` from `other`.
    pub fn merge(
        &mut self,
        branch: &str,
        other: &str,
        message: &str,
        paths: &[String],
    ) -> Result<u64> {
        self.commit_merge(
            branch,
            "Merger <merge@example.org>",
            message,
            &[],
            Some(other),
            paths,
        )
    }

    /// Lightweight tag at a mark.
    pub fn tag(&mut self, name: &str, mark: u64) -> Result<()> {
        write!(self.input, "reset refs/tags/{name}\nfrom :{mark}\n\n").map_err(Self::io)
    }

    /// Head mark of a branch.
    pub fn head(&self, branch: &str) -> Option<u64> {
        self.branches.get(branch).and_then(|b| b.head)
    }

    /// Object id of a mark (fast-import `get-mark`).
    pub fn sha(&mut self, mark: u64) -> Result<String> {
        writeln!(self.input, "get-mark :{mark}").map_err(Self::io)?;
        self.input.flush().map_err(Self::io)?;
        let mut line = String::new();
        self.output.read_line(&mut line).map_err(Self::io)?;
        let id = line.trim().to_string();
        if id.len() != 40 {
            return Err(Error::parse("fast-import get-mark", line));
        }
        Ok(id)
    }

    /// Finish the import.
    pub fn finish(mut self) -> Result<()> {
        self.input.write_all(b"done\n").map_err(Self::io)?;
        self.input.flush().map_err(Self::io)?;
        drop(self.input);
        let st = self.child.wait().map_err(Self::io)?;
        if !st.success() {
            return Err(Error::Command {
                command: "git fast-import".into(),
                message: format!("exit {st}"),
            });
        }
        Ok(())
    }
}
