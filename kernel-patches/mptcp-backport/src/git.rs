// SPDX-License-Identifier: MIT OR Apache-2.0
//! Thin driver of the `git` command line.
//!
//! Every operation here is one git process (or one two-process pipeline) for any number of
//! commits: the plan must stay fast on histories of 100,000 commits, so nothing runs per commit.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};

use crate::error::{Error, Result};

/// A git repository (a clone or a work tree) driven through the `git` CLI.
#[derive(Debug, Clone)]
pub struct Git {
    repo: PathBuf,
}

/// What `git cat-file --batch-check` says about one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The full object id of the commit.
    Commit(String),
    /// Not in the repository, or not a commit.
    Missing,
}

impl Git {
    /// Open `path`, checking that it is inside a git repository.
    pub fn open(path: &Path) -> Result<Git> {
        let git = Git {
            repo: path.to_path_buf(),
        };
        let out = git
            .command(&["rev-parse", "--git-dir"])
            .output()
            .map_err(|e| spawn_error(&e))?;
        if !out.status.success() {
            return Err(Error::NotARepo(path.to_path_buf()));
        }
        Ok(git)
    }

    /// The repository path given at open.
    pub fn path(&self) -> &Path {
        &self.repo
    }

    /// A `git -C repo ARGS` command with a stable, locale-independent environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.repo);
        // Paths as bytes, no pager, no colour, no terminal prompts, English messages to parse.
        cmd.args([
            "-c",
            "core.quotepath=off",
            "-c",
            "color.ui=false",
            "-c",
            "log.showSignature=false",
        ]);
        cmd.args(args);
        cmd.env("LC_ALL", "C")
            .env("GIT_PAGER", "cat")
            .env("GIT_TERMINAL_PROMPT", "0");
        cmd
    }

    /// Run git and return stdout; a non-zero exit is an error carrying stderr.
    pub fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| spawn_error(&e))?;
        if !out.status.success() {
            return Err(self.error(args, &out.stderr));
        }
        Ok(out.stdout)
    }

    /// Run git and return stdout as (lossy) UTF-8 text.
    pub fn run_text(&self, args: &[&str]) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.run(args)?).into_owned())
    }

    /// Build the error for a failed git command.
    pub fn error(&self, args: &[&str], stderr: &[u8]) -> Error {
        Error::Git {
            repo: self.repo.clone(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(stderr).trim().to_string(),
        }
    }

    /// Resolve revisions to commit ids with one `git cat-file --batch-check`.
    pub fn resolve_commits(&self, revs: &[String]) -> Result<Vec<Resolved>> {
        if revs.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = Vec::new();
        for rev in revs {
            // A newline inside a revision would desynchronise the batch protocol.
            let rev = rev.replace(['\n', '\r'], "");
            input.extend_from_slice(format!("{rev}^{{commit}}\n").as_bytes());
        }
        let out = self.pipe(
            &["cat-file", "--batch-check=%(objectname) %(objecttype)"],
            input,
        )?;
        let text = String::from_utf8_lossy(&out);
        let mut result = Vec::with_capacity(revs.len());
        for line in text.lines() {
            let mut it = line.split_whitespace();
            match (it.next(), it.next()) {
                (Some(id), Some("commit")) => result.push(Resolved::Commit(id.to_string())),
                _ => result.push(Resolved::Missing),
            }
        }
        if result.len() != revs.len() {
            return Err(Error::parse(
                "git cat-file --batch-check output",
                format!("{} answers for {} revisions", result.len(), revs.len()),
            ));
        }
        Ok(result)
    }

    /// Contents of `rev:path` objects with one `git cat-file --batch`; `None` when missing.
    pub fn read_blobs(&self, specs: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = Vec::new();
        for spec in specs {
            input.extend_from_slice(spec.replace(['\n', '\r'], "").as_bytes());
            input.push(b'\n');
        }
        let out = self.pipe(&["cat-file", "--batch"], input)?;
        let mut result = Vec::with_capacity(specs.len());
        let mut pos = 0usize;
        while pos < out.len() && result.len() < specs.len() {
            let eol = match out[pos..].iter().position(|&b| b == b'\n') {
                Some(i) => pos + i,
                None => break,
            };
            let header = String::from_utf8_lossy(&out[pos..eol]).into_owned();
            pos = eol + 1;
            let fields: Vec<&str> = header.split(' ').collect();
            if fields.len() == 3 && fields[1] != "missing" {
                let size: usize = fields[2]
                    .parse()
                    .map_err(|_| Error::parse("git cat-file --batch header", header.clone()))?;
                let end = pos + size;
                if end > out.len() {
                    return Err(Error::parse(
                        "git cat-file --batch output",
                        "truncated object",
                    ));
                }
                result.push(Some(out[pos..end].to_vec()));
                pos = end + 1; // object content is followed by a newline
            } else {
                result.push(None);
            }
        }
        if result.len() != specs.len() {
            return Err(Error::parse(
                "git cat-file --batch output",
                format!("{} objects for {} requests", result.len(), specs.len()),
            ));
        }
        Ok(result)
    }

    /// Feed `input` to git's stdin and collect stdout, writing from a thread so that a large
    /// batch never deadlocks on full pipes.
    pub fn pipe(&self, args: &[&str], input: Vec<u8>) -> Result<Vec<u8>> {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(&e))?;
        let writer = feed_stdin(&mut child, "git stdin", input)?;
        let err_reader = collect_stderr(&mut child, "git stderr")?;
        let mut out = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            stdout
                .read_to_end(&mut out)
                .map_err(|e| Error::io(&self.repo, e))?;
        }
        let _ = writer.join();
        let err = err_reader.join().unwrap_or_default();
        let status = child.wait().map_err(|e| Error::io(&self.repo, e))?;
        if !status.success() {
            return Err(self.error(args, &err));
        }
        Ok(out)
    }

    /// Stream the stdout of a long git command to `each_chunk` without holding it in memory.
    pub fn stream<F>(&self, args: &[&str], mut each_chunk: F) -> Result<()>
    where
        F: FnMut(&[u8]) -> Result<()>,
    {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(&e))?;
        let err_reader = collect_stderr(&mut child, "git stderr")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::parse("git stdout", "not captured"))?;
        let mut reader = BufReader::with_capacity(1 << 20, stdout);
        let mut result = Ok(());
        loop {
            let n = {
                let buf = match reader.fill_buf() {
                    Ok(buf) => buf,
                    Err(e) => {
                        result = Err(Error::io(&self.repo, e));
                        break;
                    }
                };
                if buf.is_empty() {
                    break;
                }
                if let Err(e) = each_chunk(buf) {
                    result = Err(e);
                    break;
                }
                buf.len()
            };
            reader.consume(n);
        }
        if result.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().map_err(|e| Error::io(&self.repo, e))?;
        let err = err_reader.join().unwrap_or_default();
        result?;
        if !status.success() {
            return Err(self.error(args, &err));
        }
        Ok(())
    }

    /// Stable patch-ids of `commits` with ONE pipeline:
    /// `git diff-tree --stdin -p | git patch-id --stable`. Commits without a diff (empty,
    /// merges) have no patch-id.
    pub fn patch_ids(&self, commits: &[String]) -> Result<HashMap<String, String>> {
        let mut ids = HashMap::new();
        if commits.is_empty() {
            return Ok(ids);
        }
        let mut diff_tree = self
            .command(&["diff-tree", "--stdin", "-p", "--no-renames", "--no-color"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(&e))?;
        let diff_out = diff_tree
            .stdout
            .take()
            .ok_or_else(|| Error::parse("git diff-tree stdout", "not captured"))?;
        let mut patch_id = self
            .command(&["patch-id", "--stable"])
            .stdin(Stdio::from(diff_out))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(&e))?;
        let input: Vec<u8> = commits
            .iter()
            .flat_map(|c| format!("{c}\n").into_bytes())
            .collect();
        let writer = feed_stdin(&mut diff_tree, "git diff-tree stdin", input)?;
        let dt_err_reader = collect_stderr(&mut diff_tree, "git diff-tree stderr")?;
        let pi_err_reader = collect_stderr(&mut patch_id, "git patch-id stderr")?;
        let mut out = String::new();
        if let Some(mut stdout) = patch_id.stdout.take() {
            stdout
                .read_to_string(&mut out)
                .map_err(|e| Error::io(&self.repo, e))?;
        }
        let _ = writer.join();
        let dt_status = diff_tree.wait().map_err(|e| Error::io(&self.repo, e))?;
        let pi_status = patch_id.wait().map_err(|e| Error::io(&self.repo, e))?;
        let dt_err = dt_err_reader.join().unwrap_or_default();
        let pi_err = pi_err_reader.join().unwrap_or_default();
        if !dt_status.success() {
            return Err(self.error(&["diff-tree", "--stdin", "-p"], &dt_err));
        }
        if !pi_status.success() {
            return Err(self.error(&["patch-id", "--stable"], &pi_err));
        }
        for line in out.lines() {
            let mut it = line.split_whitespace();
            if let (Some(pid), Some(commit)) = (it.next(), it.next()) {
                ids.insert(commit.to_string(), pid.to_string());
            }
        }
        Ok(ids)
    }

    /// `git status --porcelain` (tracked files only), one line per modified path.
    pub fn dirty_files(&self) -> Result<Vec<String>> {
        let text = self.run_text(&["status", "--porcelain", "--untracked-files=no"])?;
        Ok(text
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// The repository's git directory (absolute).
    pub fn git_dir(&self) -> Result<PathBuf> {
        let text = self.run_text(&["rev-parse", "--absolute-git-dir"])?;
        Ok(PathBuf::from(text.trim()))
    }

    /// Whether `ancestor` is an ancestor of (or equal to) `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool> {
        let status = self
            .command(&["merge-base", "--is-ancestor", ancestor, descendant])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| spawn_error(&e))?;
        Ok(status.success())
    }
}

/// Writes `input` to the child's stdin on a thread of its own (then closes it), so the
/// child never waits on us while we read its stdout.
fn feed_stdin(child: &mut Child, what: &str, input: Vec<u8>) -> Result<JoinHandle<()>> {
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::parse(what, "not captured"))?;
    Ok(thread::spawn(move || {
        let _ = stdin.write_all(&input);
    }))
}

/// Reads the child's stderr to its end on a thread of its own: a full stderr pipe would
/// stop the child while we read its stdout.
fn collect_stderr(child: &mut Child, what: &str) -> Result<JoinHandle<Vec<u8>>> {
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| Error::parse(what, "not captured"))?;
    Ok(thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    }))
}

fn spawn_error(e: &std::io::Error) -> Error {
    Error::Command {
        command: "git".into(),
        message: format!("cannot run git: {e} (is git installed?)"),
    }
}

/// True for a (possibly abbreviated) hexadecimal object id of at least 7 digits.
pub fn is_object_id(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}
