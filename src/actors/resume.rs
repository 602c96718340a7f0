//! The resume tokens a node has given out (connection state recovery), as plain data: which
//! client each live token resumes, and why an ended one no longer does. The registry owns one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::protocol::{self, ResumeRefusal};

/// The client a live token resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumable {
    pub system_id: String,
    pub client_id: String,
    /// The userId the client's token fixed (`--client-auth jwt`), if any: a resume must come
    /// with a token of the same user, so that another user's valid token plus a leaked resume
    /// token does not take the client over.
    pub token_user: Option<String>,
}

/// The resume tokens this node has given out.
#[derive(Default)]
pub struct ResumeBook {
    /// resumeToken → the client of each recovery client, connected or away. A token is removed
    /// when it is used or its client is gone: single use.
    live: HashMap<String, Resumable>,
    /// Tokens whose client did not come back, and why: kept for one window after, so that a
    /// late resume hears why rather than `invalid_token`.
    ended: HashMap<String, (ResumeRefusal, Instant)>,
    /// Numbers absences, so that a window's timer ends only the absence it was set for.
    absences: u64,
}

impl ResumeBook {
    /// A fresh token for a client. It starts with whatever precedes the clientId's 32 random
    /// hex digits (in a cluster, the node's id), so that any node knows where it resumes.
    pub fn issue(&mut self, system_id: &str, client_id: &str, token_user: Option<&str>) -> String {
        let node = client_id
            .get(..client_id.len().saturating_sub(32))
            .unwrap_or_default();
        let token = format!("{node}{}", protocol::new_resume_token());
        let resumable = Resumable {
            system_id: system_id.to_owned(),
            client_id: client_id.to_owned(),
            token_user: token_user.map(str::to_owned),
        };
        self.live.insert(token.clone(), resumable);
        token
    }

    /// The client a token resumes, or why it resumes none.
    pub fn lookup(&self, token: &str) -> Result<&Resumable, ResumeRefusal> {
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
        let token = book.issue("s", "c", Some("ann"));
        let resumable = book.lookup(&token).expect("live");
        assert_eq!(
            (resumable.system_id.as_str(), resumable.client_id.as_str()),
            ("s", "c")
        );
        assert_eq!(resumable.token_user.as_deref(), Some("ann"));
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
        let (a, b) = (book.issue("s", "c", None), book.issue("s", "c", None));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
