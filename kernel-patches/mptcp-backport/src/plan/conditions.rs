// SPDX-License-Identifier: MIT OR Apache-2.0
//! Manifest conditions, evaluated on the base tag or the real BSP tree.

use std::collections::HashMap;
use std::path::Path;

use crate::error::Result;
use crate::git::Git;
use crate::manifest::{Condition, Manifest};

/// Files of the base (or BSP) tree that manifest conditions look at, read once.
pub struct Conditions {
    files: HashMap<String, Option<Vec<u8>>>,
}

impl Conditions {
    /// Read every file named by a condition, from `tree` if given, else from the base commit.
    pub fn load(
        git: &Git,
        manifest: &Manifest,
        base_commit: &str,
        tree: Option<&Path>,
    ) -> Result<Conditions> {
        let mut names: Vec<String> = manifest
            .extra
            .iter()
            .filter_map(|e| e.when.as_ref())
            .chain(manifest.fixup.iter().filter_map(|f| f.when.as_ref()))
            .chain(
                manifest
                    .known_conflict
                    .iter()
                    .filter_map(|k| k.when.as_ref()),
            )
            .map(|c| c.file.clone())
            .collect();
        names.sort();
        names.dedup();
        let mut files = HashMap::new();
        match tree {
            Some(dir) => {
                for n in names {
                    let content = std::fs::read(dir.join(&n)).ok();
                    files.insert(n, content);
                }
            }
            None => {
                let specs: Vec<String> =
                    names.iter().map(|n| format!("{base_commit}:{n}")).collect();
                let blobs = git.read_blobs(&specs)?;
                files.extend(names.into_iter().zip(blobs));
            }
        }
        Ok(Conditions { files })
    }

    /// Evaluate one condition.
    pub fn holds(&self, cond: &Condition) -> bool {
        cond.holds(self.files.get(&cond.file).and_then(|c| c.as_deref()))
    }
}
