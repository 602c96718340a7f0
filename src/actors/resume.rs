//! The resume tokens a node has given out (connection state recovery), as plain data: which
//! client each live token resumes, and why an ended one no longer does. The registry owns one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::protocol::{self, ResumeRefusal};

/// The resume tokens this node has given out.
#[derive(Default)]
pub struct ResumeBook {
    /// resumeToken → (systemId, clientId) of each recovery client, connected or away. A token
    /// is removed when it is used or its client is gone: single use.
    live: HashMap<String, (String, String)>,
    /// Tokens whose client did not come back, and why: kept for one window after, so that a
    /// late resume hears why rather than `invalid_token`.
    ended: HashMap<String, (ResumeRefusal, Instant)>,
    /// Numbers absences, so that a window's timer ends only the absence it was set for.
    absences: u64,
}

impl ResumeBook {
    /// A fresh token for a client. It starts with whatever precedes the clientId's 32 random
    /// hex digits (in a cluster, the node's id), so that any node knows where it resumes.
    pub fn issue(&mut self, system_id: &str, client_id: &str) -> String {
        let node = client_id
            .get(..client_id.len().saturating_sub(32))
            .unwrap_or_default();
        let token = format!("{node}{}", protocol::new_resume_token());
        self.live
            .insert(token.clone(), (system_id.to_owned(), client_id.to_owned()));
        token
    }

    /// The client a token resumes, or why it resumes none.
    pub fn lookup(&self, token: &str) -> Result<&(String, String), ResumeRefusal> {
        self.live.get(token).ok_or_else(|| {
            self.ended
                .get(token)
                .map_or(ResumeRefusal::InvalidToken, |(why, _)| *why)
        })
    }

    /// The token no longer resumes anything.
    pub fn forget(&mut self, token: &str) {
        self.live.remove(token);
    }

    /// The token's client did not come back, because of `why`; said to resumes for `keep`.
    pub fn remember(&mut self, token: String, why: ResumeRefusal, keep: Duration) {
        self.ended.retain(|_, (_, at)| at.elapsed() < keep);
        self.ended.insert(token, (why, Instant::now()));
    }

    pub fn next_absence(&mut self) -> u64 {
        self.absences += 1;
        self.absences
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::ResumeBook;
    use crate::protocol::ResumeRefusal;

    #[test]
    fn a_token_resumes_its_client_until_forgotten_and_then_says_why() {
        let mut book = ResumeBook::default();
        let token = book.issue("s", "c");
        assert_eq!(book.lookup(&token), Ok(&("s".to_owned(), "c".to_owned())));
        book.forget(&token);
        assert_eq!(book.lookup(&token), Err(ResumeRefusal::InvalidToken));
        book.remember(
            token.clone(),
            ResumeRefusal::Expired,
            Duration::from_secs(60),
        );
        assert_eq!(book.lookup(&token), Err(ResumeRefusal::Expired));
        assert_eq!(book.lookup("made-up"), Err(ResumeRefusal::InvalidToken));
    }

    #[test]
    fn ended_tokens_are_forgotten_after_a_window() {
        let mut book = ResumeBook::default();
        book.remember("old".into(), ResumeRefusal::Expired, Duration::ZERO);
        book.remember("new".into(), ResumeRefusal::BoundPassed, Duration::ZERO);
        assert_eq!(book.lookup("old"), Err(ResumeRefusal::InvalidToken));
        assert_eq!(book.ended.len(), 1);
    }

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let mut book = ResumeBook::default();
        let (a, b) = (book.issue("s", "c"), book.issue("s", "c"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
