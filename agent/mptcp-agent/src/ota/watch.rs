// SPDX-License-Identifier: MIT OR Apache-2.0
//! The config file watch: inotify on the file's directory, filtered to its name and
//! debounced. The daemon turns each change into an input of its loop.

use std::{
    ffi::OsString,
    io,
    os::fd::{AsFd, AsRawFd, RawFd},
    path::{Path, PathBuf},
    time::Duration,
};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;

/// Quiet time after the last change of the file before it is read: an in-place write
/// arrives as several events.
pub(super) const DEBOUNCE: Duration = Duration::from_millis(100);
/// A file that keeps changing is read at the latest this long after its first change.
const DEBOUNCE_MAX: Duration = Duration::from_secs(1);
/// How often to try watching the config directory again when it is missing.
pub(super) const REWATCH: Duration = Duration::from_secs(2);

/// `AsyncFd` wants `AsRawFd`; nix's Inotify offers `AsFd`.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// An inotify watch on the config file's directory, filtered to the file's name.
pub struct Watcher {
    fd: AsyncFd<InotifyFd>,
    dir: PathBuf,
    name: OsString,
    wd: Option<WatchDescriptor>,
    /// (first change, last change) not yet acted on.
    pending: Option<(tokio::time::Instant, tokio::time::Instant)>,
    rewatch_at: Option<tokio::time::Instant>,
}

impl Watcher {
    pub fn new(path: &Path) -> io::Result<Watcher> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "config path has no file name")
            })?
            .to_os_string();
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        // `new` is deprecated from tokio 1.5x on in favour of the unsafe `register`, which
        // older tokio lacks; the fd is owned by `Inotify` and lives as long as the AsyncFd.
        #[allow(deprecated)]
        let fd = AsyncFd::new(InotifyFd(ino))?;
        let mut w = Watcher {
            fd,
            dir,
            name,
            wd: None,
            pending: None,
            rewatch_at: None,
        };
        if let Err(e) = w.watch() {
            log::warn!(
                "watching {}: {e}; trying again every {}s",
                w.dir.display(),
                REWATCH.as_secs()
            );
            w.rewatch_at = Some(tokio::time::Instant::now() + REWATCH);
        }
        Ok(w)
    }

    fn watch(&mut self) -> io::Result<()> {
        let flags = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        let wd = self.fd.get_ref().0.add_watch(&self.dir, flags)?;
        self.wd = Some(wd);
        Ok(())
    }

    fn touched(&mut self) {
        let now = tokio::time::Instant::now();
        self.pending = Some(match self.pending {
            Some((first, _)) => (first, now),
            None => (now, now),
        });
    }

    /// Wait until the file has changed and then stayed quiet (or the directory could be
    /// watched again). Cancel-safe: all state is in `self`.
    pub async fn changed(&mut self) {
        loop {
            let due = self
                .pending
                .map(|(first, last)| (last + DEBOUNCE).min(first + DEBOUNCE_MAX));
            let rewatch = self.rewatch_at;
            tokio::select! {
                guard = self.fd.readable() => {
                    let Ok(mut guard) = guard else {
                        std::future::pending::<()>().await;
                        return;
                    };
                    match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from)) {
                        Ok(Ok(events)) => {
                            for ev in events {
                                if ev.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF | AddWatchFlags::IN_IGNORED) {
                                    if self.wd == Some(ev.wd) {
                                        log::warn!("{} went away; watching for it to come back", self.dir.display());
                                        if let Some(wd) = self.wd.take() {
                                            // Moved elsewhere, the old watch would report a stranger's files.
                                            let _ = self.fd.get_ref().0.rm_watch(wd);
                                        }
                                        self.rewatch_at = Some(tokio::time::Instant::now() + REWATCH);
                                    }
                                } else if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) || ev.name.as_deref() == Some(self.name.as_os_str()) {
                                    self.touched();
                                }
                            }
                        }
                        Ok(Err(e)) => log::warn!("reading inotify events: {e}"),
                        Err(_would_block) => {}
                    }
                }
                _ = sleep_until(due), if due.is_some() => {
                    self.pending = None;
                    return;
                }
                _ = sleep_until(rewatch), if rewatch.is_some() => {
                    match self.watch() {
                        Ok(()) => {
                            log::info!("watching {} again", self.dir.display());
                            self.rewatch_at = None;
                            self.touched();
                        }
                        Err(_) => self.rewatch_at = Some(tokio::time::Instant::now() + REWATCH),
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
