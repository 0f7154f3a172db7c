// SPDX-License-Identifier: MIT OR Apache-2.0
//! Which config is in force and why: the choice at start, the check of a reloaded file,
//! the outcome of its transaction (kept as last good, or rejected), and how that is told
//! (log, sd_notify, and notices and [`ConfigInfo`] the daemon puts on D-Bus). The
//! transaction itself runs in the daemon's loop.

use std::{path::PathBuf, time::Duration};

use mptcp_agent_core::{config::SCHEMA_VERSION, Config, Observed};

use super::store::{built_in, load, save_if_changed, Loaded, LAST_GOOD_FILE};
use crate::{
    notify::Notifier,
    service::{AgentError, ConfigInfo, ConfigSource, Notice},
    walltime::now_usec,
};

pub struct Options {
    pub config: PathBuf,
    pub state_dir: PathBuf,
}

/// What a reload found in the file.
pub enum Checked {
    /// A file event for the text already in force (touch, chmod): nothing to do.
    Unchanged(String),
    /// A valid config to apply as one transaction.
    New(Loaded),
}

/// How a transaction ended, as the daemon reports it.
pub enum Outcome {
    Committed {
        /// Kernel operations carried out.
        ops: usize,
        /// The agent had not read the kernel yet: the config takes effect at the first
        /// reconciliation.
        deferred: bool,
        took: Duration,
    },
    /// Rolled back; the text says what failed and what was undone.
    RolledBack(String),
}

pub struct Lifecycle {
    path: PathBuf,
    state_dir: PathBuf,
    pub(crate) info: ConfigInfo,
    /// Config outcomes not told on D-Bus yet.
    notices: Vec<Notice>,
    notify: Notifier,
    ready_sent: bool,
}

impl Lifecycle {
    /// The config to start with: the file, else the last good one, else the built-in.
    pub fn start(opts: Options) -> (Lifecycle, Config) {
        let path_shown = opts.config.display().to_string();
        let mut info = ConfigInfo {
            path: path_shown.clone(),
            schema_version: u32::try_from(SCHEMA_VERSION).unwrap_or(0),
            applied_at: now_usec(),
            ..ConfigInfo::default()
        };
        let mut rejected = None;
        let loaded = match load(&opts.config) {
            Ok(l) => {
                log::info!("config {path_shown} ({})", l.digest);
                if let Err(e) = save_if_changed(&opts.state_dir, &l.text) {
                    log::warn!(
                        "keeping the last good config in {}: {e}",
                        opts.state_dir.display()
                    );
                }
                l
            }
            Err(e) => {
                let why = e.to_string();
                let last_good = opts.state_dir.join(LAST_GOOD_FILE);
                let fallback = match load(&last_good) {
                    Ok(l) => {
                        log::error!(
                            "config {path_shown} rejected; running on the last good config {} ({}):\n{why}",
                            last_good.display(),
                            l.digest
                        );
                        info.source = ConfigSource::LastGood;
                        l
                    }
                    Err(e2) => {
                        let l = built_in();
                        log::error!(
                            "config {path_shown} rejected, and no usable last good config ({e2}); running on the built-in default ({}):\n{why}",
                            l.digest
                        );
                        info.source = ConfigSource::BuiltIn;
                        l
                    }
                };
                info.last_error = why.clone();
                rejected = Some(why);
                fallback
            }
        };
        info.digest = loaded.digest.clone();

        let mut lc = Lifecycle {
            path: opts.config,
            state_dir: opts.state_dir,
            info,
            notices: Vec::new(),
            notify: Notifier::from_env(),
            ready_sent: false,
        };
        if let Some(reason) = rejected {
            lc.notice(Notice::Rejected {
                path: path_shown,
                stage: "check".into(),
                reason,
            });
        }
        (lc, loaded.config)
    }

    /// The config in force: where from, its digest, the last rejection.
    pub fn info(&self) -> &ConfigInfo {
        &self.info
    }

    fn notice(&mut self, n: Notice) {
        self.notices.push(n);
    }

    /// Config outcomes (applied, rejected) since the last call, for D-Bus signals.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Check the file again. `skip_unchanged`: a file event for the text already in force
    /// (touch, chmod) does nothing. A rejected file changes nothing but the report.
    pub fn check(&mut self, why: &str, skip_unchanged: bool) -> Result<Checked, AgentError> {
        let shown = self.path.display().to_string();
        let loaded = match load(&self.path) {
            Ok(l) => l,
            Err(e) => {
                let reason = e.to_string();
                log::error!(
                    "{why}: config {shown} rejected, keeping the running config ({}):\n{reason}",
                    self.info.digest
                );
                self.info.last_error = reason.clone();
                self.file_rejected();
                self.notice(Notice::Rejected {
                    path: shown,
                    stage: "check".into(),
                    reason: reason.clone(),
                });
                return Err(AgentError::ConfigRejected(reason));
            }
        };
        if skip_unchanged
            && loaded.digest == self.info.digest
            && self.info.source == ConfigSource::File
        {
            log::debug!("{why}: {shown} unchanged ({})", loaded.digest);
            return Ok(Checked::Unchanged(loaded.digest));
        }
        self.notify.reloading();
        Ok(Checked::New(loaded))
    }

    /// The transaction for `loaded` ended: keep it as last good, or say why not. Returns
    /// the reply to a D-Bus Reload.
    pub fn finished(
        &mut self,
        why: &str,
        loaded: &Loaded,
        outcome: Outcome,
        obs: &Observed,
    ) -> Result<String, AgentError> {
        let shown = self.path.display().to_string();
        let reply = match outcome {
            Outcome::Committed {
                ops,
                deferred,
                took,
            } => {
                log::info!(
                    "{why}: config {shown} applied ({}, {ops} kernel operation(s) in {} ms{})",
                    loaded.digest,
                    took.as_millis(),
                    if deferred {
                        ", takes effect at the first reconciliation"
                    } else {
                        ""
                    }
                );
                self.info.digest = loaded.digest.clone();
                self.info.source = ConfigSource::File;
                self.info.last_error.clear();
                self.info.applied_at = now_usec();
                if let Err(e) = save_if_changed(&self.state_dir, &loaded.text) {
                    log::warn!(
                        "keeping the last good config in {}: {e}",
                        self.state_dir.display()
                    );
                }
                self.notice(Notice::Applied {
                    path: shown,
                    digest: loaded.digest.clone(),
                    source: ConfigSource::File.name().into(),
                });
                Ok(loaded.digest.clone())
            }
            Outcome::RolledBack(rb) => {
                let reason = format!(
                    "{shown}: applying it failed, the previous config stays in force: {rb}"
                );
                log::error!("{why}: {reason}");
                self.info.last_error = reason.clone();
                self.file_rejected();
                self.notice(Notice::Rejected {
                    path: shown,
                    stage: "apply".into(),
                    reason: reason.clone(),
                });
                Err(AgentError::ApplyFailed(reason))
            }
        };
        self.notify.ready(&self.status_line(obs));
        reply
    }

    /// The file on disk is not what runs: the running config is now the last good one
    /// (unless it already is the built-in default).
    fn file_rejected(&mut self) {
        if self.info.source == ConfigSource::File {
            self.info.source = ConfigSource::LastGood;
        }
    }

    fn status_line(&self, obs: &Observed) -> String {
        let eps = obs.endpoints.as_ref().map_or(0, |m| m.len());
        let src = match self.info.source {
            ConfigSource::File => String::new(),
            s => format!(", running on the {} config", s.name()),
        };
        format!("{eps} endpoint(s), config {}{src}", self.info.digest)
    }

    /// After each reconciliation: READY=1 the first time the agent has acted.
    pub fn reconciled(&mut self, obs: &Observed) {
        if obs.ready() && !self.ready_sent {
            self.ready_sent = true;
            self.notify.ready(&self.status_line(obs));
        }
    }
}
