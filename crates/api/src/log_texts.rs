//! Finished runs' log texts as the API sends them: escaped for JSON once
//! ([`LogText::escaped`]) and copied into every answer that shows them after.
//!
//! A finished run's log no longer changes (nothing is written after a run's end), so its
//! escaped form stays right for as long as the run's log counters are those it was made
//! for. Escaping a run's 1,000 lines was most of what `GET /runs/{id}` cost for it. At
//! most [`CAPACITY_BYTES`] of text are kept, then it starts over.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tlao_domain::{Run, RunId};
use tlao_wire::LogText;

/// The most text kept (each text is also kept escaped: about twice this in memory).
pub(crate) const CAPACITY_BYTES: usize = 16 * 1024 * 1024;

/// Finished runs' escaped log texts, by run.
#[derive(Default)]
pub(crate) struct LogTexts {
    inner: Mutex<Texts>,
}

#[derive(Default)]
struct Texts {
    /// Each with the run's (log bytes, dropped log bytes) it was made for.
    by_run: HashMap<RunId, ((u64, u64), LogText)>,
    bytes: usize,
}

impl LogTexts {
    /// `text`, the log of `run` as read now, to send: for a finished run the one escaped
    /// before (escaped now and kept, the first time); for a run still going, as it is.
    pub(crate) fn to_send(&self, run: &Run, text: String) -> LogText {
        if !run.status.is_terminal() || text.len() > CAPACITY_BYTES {
            return LogText::from(text);
        }
        let stamp = (run.log_bytes, run.dropped_log_bytes);
        if let Some((kept_stamp, kept)) = self.lock().by_run.get(&run.run_id)
            && *kept_stamp == stamp
            && kept.as_str() == text
        {
            return kept.clone();
        }
        // Escaped outside the lock: other requests need not wait for it.
        let escaped = LogText::escaped(&text);
        let mut texts = self.lock();
        if texts.bytes + text.len() > CAPACITY_BYTES {
            texts.by_run.clear();
            texts.bytes = 0;
        }
        texts.bytes += text.len();
        if let Some((_, old)) = texts
            .by_run
            .insert(run.run_id.clone(), (stamp, escaped.clone()))
        {
            texts.bytes -= old.len();
        }
        escaped
    }

    fn lock(&self) -> MutexGuard<'_, Texts> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
