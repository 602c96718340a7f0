//! [`FrameGuard`]: reads the WebSocket frame headers of a client's byte stream as the bytes pass,
//! before the WebSocket decoder buffers them, so that memory per connection stays bounded
//! whatever a client sends.
//!
//! Why it exists: actix-http's frame decoder waits for a whole frame before it checks its size
//! limit, and the session's frame stream ([`crate::actors::connection::ClientFrames`]) reads
//! everything available into one buffer. A header announcing 2^40 bytes, or endless fragments
//! without FIN, would grow that buffer until the process dies. The guard
//! - fails as soon as a header announces a frame over the limit, or a fragmented message's
//!   running total passes it, so nothing past the limit is ever buffered; and
//! - hands the decoder at most one frame at a time (it pauses at each frame boundary and
//!   wakes itself), so the decoder's buffer never holds more than one frame and the HTTP
//!   payload's own back-pressure reaches the socket.
//!
//! Frame syntax beyond the length (masking, opcodes, control-frame rules) is left to the decoder.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

/// Set by the guard when it refused a frame for its size, so the session closes with 1009
/// rather than the 1002 a stream error otherwise means.
#[derive(Debug, Clone, Default)]
pub struct Oversize(Arc<AtomicBool>);

impl Oversize {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self) {
        self.0.store(true, Ordering::Relaxed)
    }
}

/// Longest frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

/// Where in the byte stream the parser is.
#[derive(Debug, Clone, Copy)]
enum Position {
    /// Inside a header; `len` of its bytes are in `header`.
    Header {
        header: [u8; MAX_HEADER],
        len: usize,
    },
    /// Inside a payload, with this many bytes left.
    Payload(u64),
}

/// What one complete header says.
struct FrameHeader {
    fin: bool,
    opcode: u8,
    payload_len: u64,
}

const OPCODE_CONTINUATION: u8 = 0x0;

/// Incremental frame-length reader; pure, so it is unit-tested without a socket.
#[derive(Debug)]
pub struct FrameLimiter {
    max: u64,
    position: Position,
    /// Bytes of the fragmented message in progress (its frames so far), if one is.
    message_so_far: Option<u64>,
}

/// A frame or message over the limit.
#[derive(Debug, PartialEq, Eq)]
pub struct TooBig;

impl FrameLimiter {
    pub fn new(max_frame_size: usize) -> Self {
        FrameLimiter {
            max: max_frame_size as u64,
            position: Position::Header {
                header: [0; MAX_HEADER],
                len: 0,
            },
            message_so_far: None,
        }
    }

    /// Reads `bytes` and returns how many of them may pass now: all of them, or fewer when a
    /// frame ends inside them (the count then ends exactly at that frame's end).
    pub fn advance(&mut self, bytes: &[u8]) -> Result<usize, TooBig> {
        let mut used = 0;
        while used < bytes.len() {
            match &mut self.position {
                Position::Header { header, len } => {
                    header[*len] = bytes[used];
                    *len += 1;
                    used += 1;
                    if let Some(parsed) = parse_header(&header[..*len]) {
                        self.check(&parsed)?;
                        self.position = Position::Payload(parsed.payload_len);
                        if parsed.payload_len == 0 {
                            self.end_frame();
                            return Ok(used);
                        }
                    }
                }
                Position::Payload(left) => {
                    let take = (*left).min((bytes.len() - used) as u64);
                    *left -= take;
                    used += take as usize;
                    if *left == 0 {
                        self.end_frame();
                        return Ok(used);
                    }
                }
            }
        }
        Ok(used)
    }

    /// True between frames.
    fn at_frame_start(&self) -> bool {
        matches!(self.position, Position::Header { len: 0, .. })
    }

    fn end_frame(&mut self) {
        self.position = Position::Header {
            header: [0; MAX_HEADER],
            len: 0,
        };
    }

    fn check(&mut self, frame: &FrameHeader) -> Result<(), TooBig> {
        if frame.payload_len > self.max {
            return Err(TooBig);
        }
        let is_control = frame.opcode & 0x8 != 0;
        if is_control {
            // Control frames may come between fragments and are not part of the message.
            return Ok(());
        }
        let total = if frame.opcode == OPCODE_CONTINUATION {
            self.message_so_far.unwrap_or(0) + frame.payload_len
        } else {
            frame.payload_len
        };
        if total > self.max {
            return Err(TooBig);
        }
        self.message_so_far = (!frame.fin).then_some(total);
        Ok(())
    }
}

/// Parses a header once all of its bytes are present.
fn parse_header(bytes: &[u8]) -> Option<FrameHeader> {
    if bytes.len() < 2 {
        return None;
    }
    let masked = bytes[1] & 0x80 != 0;
    let (length_bytes, short_len) = match bytes[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let needed = 2 + length_bytes + if masked { 4 } else { 0 };
    if bytes.len() < needed {
        return None;
    }
    let payload_len = short_len.unwrap_or_else(|| {
        bytes[2..2 + length_bytes]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    });
    Some(FrameHeader {
        fin: bytes[0] & 0x80 != 0,
        opcode: bytes[0] & 0x0f,
        payload_len,
    })
}

/// Wraps a client's request payload; see the module docs.
pub struct FrameGuard<S> {
    inner: S,
    limiter: FrameLimiter,
    /// Bytes read from `inner` and not yet passed on.
    held: Bytes,
    /// A frame just ended: return `Pending` once so the decoder takes it before more arrive.
    pause: bool,
    /// Set after the limit was passed: the stream then ends.
    failed: bool,
    oversize: Oversize,
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, max_frame_size: usize, oversize: Oversize) -> Self {
        FrameGuard {
            inner,
            limiter: FrameLimiter::new(max_frame_size),
            held: Bytes::new(),
            pause: false,
            failed: false,
            oversize,
        }
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        if this.pause {
            this.pause = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.held.is_empty() {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => this.held = bytes,
                other => return other,
            }
        }
        match this.limiter.advance(&this.held) {
            Ok(passed) => {
                let chunk = this.held.split_to(passed);
                // A frame ended inside the chunk (or exactly at its end): let it be decoded.
                this.pause = !this.held.is_empty() || this.limiter.at_frame_start();
                Poll::Ready(Some(Ok(chunk)))
            }
            Err(TooBig) => {
                this.failed = true;
                this.held = Bytes::new();
                this.oversize.set();
                Poll::Ready(Some(Err(PayloadError::Overflow)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
        let mut bytes = vec![(u8::from(fin) << 7) | opcode];
        match len {
            0..=125 => bytes.push(0x80 | len as u8),
            126..=0xffff => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&len.to_be_bytes());
            }
        }
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        bytes
    }

    #[test]
    fn a_header_over_the_limit_fails_before_any_payload() {
        let mut limiter = FrameLimiter::new(8192);
        assert_eq!(limiter.advance(&header(true, 1, 1 << 40)), Err(TooBig));
        let mut limiter = FrameLimiter::new(8192);
        assert_eq!(limiter.advance(&header(true, 2, 8193)), Err(TooBig));
    }

    #[test]
    fn frames_at_the_limit_pass_one_at_a_time() {
        let mut limiter = FrameLimiter::new(8192);
        let mut bytes = header(true, 1, 8192);
        let first_len = bytes.len() + 8192;
        bytes.extend(std::iter::repeat_n(b'a', 8192));
        bytes.extend(header(true, 9, 0));
        assert_eq!(limiter.advance(&bytes), Ok(first_len));
        assert!(limiter.at_frame_start());
        assert_eq!(limiter.advance(&bytes[first_len..]), Ok(6));
    }

    #[test]
    fn fragments_count_towards_one_message() {
        let mut limiter = FrameLimiter::new(100);
        let mut fragment = |fin, opcode| {
            let mut bytes = header(fin, opcode, 40);
            bytes.extend([0u8; 40]);
            limiter.advance(&bytes)
        };
        assert!(fragment(false, 1).is_ok());
        assert!(fragment(false, 0).is_ok());
        assert_eq!(fragment(false, 0), Err(TooBig));
    }

    #[test]
    fn control_frames_between_fragments_do_not_count_and_fin_resets() {
        let mut limiter = FrameLimiter::new(100);
        let mut send = |fin, opcode, len: u64| {
            let mut bytes = header(fin, opcode, len);
            bytes.extend(std::iter::repeat_n(0u8, len as usize));
            limiter.advance(&bytes)
        };
        assert!(send(false, 1, 60).is_ok());
        assert!(send(true, 9, 100).is_ok());
        assert!(send(true, 0, 40).is_ok());
        assert!(send(true, 1, 100).is_ok());
    }

    #[test]
    fn headers_split_across_reads_are_reassembled() {
        let mut limiter = FrameLimiter::new(8192);
        let bytes = header(true, 1, 1 << 20);
        for byte in &bytes[..bytes.len() - 1] {
            assert_eq!(limiter.advance(std::slice::from_ref(byte)), Ok(1));
        }
        assert_eq!(limiter.advance(&bytes[bytes.len() - 1..]), Err(TooBig));
    }
}
