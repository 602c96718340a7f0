//! `History`: the frames a recovery client's session has taken to write, kept so that a
//! resume can replay what came after the last one the client saw (see [`super::outbox`], which
//! keeps one per recovery client, bounded by `--recovery-buffer`).

use std::collections::VecDeque;

use bytestring::ByteString;

use super::away::kept_cost;
use crate::protocol;

/// Frames a recovery client's session has taken to write, oldest first.
#[derive(Default)]
pub(super) struct History {
    frames: VecDeque<ByteString>,
    /// What the frames cost where they are kept ([`kept_cost`]), not only their bytes.
    bytes: usize,
    /// A frame was dropped from the front: a resume must name a frame still held.
    trimmed: bool,
}

/// What a resume takes from the old outbox to the new one.
pub struct HandedOver {
    /// The frame the client named as the last it saw.
    pub last: Option<ByteString>,
    /// What it has not seen, in order.
    pub replay: Vec<ByteString>,
}

impl HandedOver {
    pub fn missed(&self) -> usize {
        self.replay.len()
    }
}

/// Why a resume cannot replay what the client missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastNotHeld;

impl History {
    /// Keeps the frames just taken to write, within `limit` bytes (the oldest go first). Only
    /// pushes carry a messageId that a resume can name (not the welcome): only they are kept.
    pub(super) fn record(&mut self, frames: &VecDeque<ByteString>, limit: usize) {
        for frame in frames
            .iter()
            .filter(|f| protocol::message_id_of(f).is_some())
        {
            self.bytes += kept_cost(frame.len());
            self.frames.push_back(frame.clone());
        }
        self.make_room(0, limit);
    }

    /// What the kept frames cost.
    pub(super) fn cost(&self) -> usize {
        self.bytes
    }

    /// Drops the oldest frames until the history and `beside` more bytes fit in `limit`.
    pub(super) fn make_room(&mut self, beside: usize, limit: usize) {
        while self.bytes + beside > limit {
            let Some(frame) = self.frames.pop_front() else {
                return;
            };
            self.bytes -= kept_cost(frame.len());
            self.trimmed = true;
        }
    }

    /// A resumed session keeps the frame its client named last, so that a later resume may
    /// name it again (and only it: what came before is not held).
    pub(super) fn keep_last(&mut self, last: ByteString) {
        self.bytes += kept_cost(last.len());
        self.frames.push_back(last);
        self.trimmed = true;
    }

    /// The frame named `last` and what came after it (every held frame when `None`).
    pub(super) fn after(
        &self,
        last: Option<&str>,
    ) -> Result<(Option<ByteString>, Vec<ByteString>), LastNotHeld> {
        let start = match last {
            None if self.trimmed => return Err(LastNotHeld),
            None => 0,
            Some(last) => {
                self.frames
                    .iter()
                    .rposition(|frame| protocol::message_id_of(frame) == Some(last))
                    .ok_or(LastNotHeld)?
                    + 1
            }
        };
        let last = start
            .checked_sub(1)
            .and_then(|i| self.frames.get(i).cloned());
        Ok((last, self.frames.iter().skip(start).cloned().collect()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use bytestring::ByteString;

    use super::{History, LastNotHeld};

    fn push(id: &str) -> ByteString {
        ByteString::from(format!(r#"{{"messageId":"{id}","code":1}}"#))
    }

    fn ids(frames: &[ByteString]) -> Vec<&str> {
        frames
            .iter()
            .filter_map(|f| crate::protocol::message_id_of(f))
            .collect()
    }

    #[test]
    fn keeps_pushes_only_within_the_bound_and_replays_after_the_named_one() {
        let mut history = History::default();
        let welcome = ByteString::from(r#"{"code":0,"clientId":"c"}"#);
        let frames: VecDeque<_> = [welcome, push("a"), push("b"), push("c")].into();
        history.record(&frames, 1 << 20);
        let (last, replay) = history.after(Some("a")).unwrap();
        assert_eq!(last, Some(push("a")));
        assert_eq!(ids(&replay), ["b", "c"]);
        // Nothing was dropped: a resume that saw nothing gets everything.
        assert_eq!(ids(&history.after(None).unwrap().1), ["a", "b", "c"]);

        // A bound of two frames drops the oldest: "a" can no longer be named, nor nothing.
        history.make_room(0, 2 * super::kept_cost(push("a").len()));
        assert_eq!(history.after(Some("a")), Err(LastNotHeld));
        assert_eq!(history.after(None), Err(LastNotHeld));
        assert_eq!(ids(&history.after(Some("b")).unwrap().1), ["c"]);
    }
}
