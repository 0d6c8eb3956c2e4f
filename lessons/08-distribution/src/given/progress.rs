//! Progress per layer, as docker shows it, when stderr is a terminal:
//!
//! ```text
//! 3f2a9c1b7e40: Downloading  1.2 MB / 3.4 MB
//! 3f2a9c1b7e40: Pull complete
//! ```
//!
//! Quiet otherwise: a log or a pipe gets no carriage returns.

use std::io::{IsTerminal, Read, Write};
use std::sync::{Arc, Mutex};

pub struct Progress {
    shown: bool,
    /// The label of a line left open by `\r` updates.
    open: Mutex<Option<String>>,
}

impl Progress {
    /// Shown when stderr is a terminal.
    pub fn new() -> Progress {
        Progress::shown(std::io::stderr().is_terminal())
    }

    pub fn shown(shown: bool) -> Progress {
        Progress {
            shown,
            open: Mutex::new(None),
        }
    }

    /// A finished step of one blob: `3f2a9c1b7e40: Already exists`.
    pub fn status(&self, digest: &str, status: &str) {
        if !self.shown {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        if open.take().is_some() {
            let _ = write!(err, "\r\x1b[K");
        }
        let _ = writeln!(err, "{}: {status}", short(digest));
    }

    /// `inner`, reporting its bytes as they pass, on one line kept open.
    pub fn reader<R: Read>(
        self: &Arc<Self>,
        digest: &str,
        verb: &str,
        total: u64,
        inner: R,
    ) -> Counted<R> {
        Counted {
            progress: Arc::clone(self),
            label: short(digest).to_string(),
            verb: verb.to_string(),
            total,
            done: 0,
            last_shown: 0,
            inner,
        }
    }

    fn update(&self, label: &str, verb: &str, done: u64, total: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        if open.is_some() {
            let _ = write!(err, "\r\x1b[K");
        }
        let total = if total > 0 {
            format!(" / {}", human(total))
        } else {
            String::new()
        };
        let _ = write!(err, "{label}: {verb} {:>8}{total}", human(done));
        let _ = err.flush();
        *open = Some(label.to_string());
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// A reader that shows how far it got.
pub struct Counted<R> {
    progress: Arc<Progress>,
    label: String,
    verb: String,
    total: u64,
    done: u64,
    last_shown: u64,
    inner: R,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        // Every 256 KiB, not every read: a terminal is slow.
        if self.progress.shown
            && !self.label.is_empty()
            && self.done - self.last_shown >= 256 * 1024
        {
            self.last_shown = self.done;
            self.progress
                .update(&self.label, &self.verb, self.done, self.total);
        }
        Ok(n)
    }
}

/// The 12 hex digits docker shows of a digest.
pub fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// Bytes as docker shows them: `3.4 MB` (decimal units).
pub fn human(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}
