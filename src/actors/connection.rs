//! The two streams of a session's connection, and the two transports that carry them.
//!
//! - [`ConnectionBody`] is what is written to the socket. It reads the session's [`Outbox`]
//!   itself: a wake-up (from the thread's flusher, or from the session for a control frame) has
//!   its transport poll it, and one poll takes every waiting frame and encodes them into one
//!   buffer, handed over as one chunk. Nothing runs in between: no actor context, no mailbox, no
//!   message per frame.
//! - [`ClientFrames`] is what the client sends, decoded into WebSocket frames; the session actor
//!   reads it as a stream.
//!
//! The transports: the standalone server takes the upgraded socket from actix-http and serves it
//! here, [`SocketWriter`] writing the body and [`SocketReader`] reading for the session (no
//! actix-http buffers stay with the connection); an embedded `/ws` route leaves the connection
//! to actix-http, which writes the body as the response's and hands the client's bytes over as
//! the request's payload. Either stops polling the body while the socket will not take more.
//!
//! The session actor runs on its own (a plain actix `Context`), beside the body: it is not
//! frozen when its client stops reading (only the body is), so it still handles close requests
//! and its heartbeat.
//!
//! Who ends what: the session ends the body ([`Outbox::end_connection`]) when it stops, after
//! whatever it queued to write last (a close frame, say); the transport then writes that and
//! closes the connection. If the client does not read that far within `--slow-close-grace`, the
//! socket is shut down from outside ([`Outbox::shut_down_socket`]), which ends the connection.
//! The transport drops the body when the connection is gone, and the body's `Drop` tells the
//! session ([`ConnectionGone`]).

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use actix::Recipient;
use actix_codec::{Decoder, Encoder};
use actix_http::ws::{Codec, Frame, Message, ProtocolError};
use actix_web::error::PayloadError;
use actix_web::rt::net::TcpStream;
use actix_web::web::{Bytes, BytesMut};
use futures_util::Stream;
use socket2::SockRef;

use super::messages::ConnectionGone;
use super::outbox::Outbox;
use crate::gate::ConnectionPermit;

/// At most this much of the queue is taken and encoded at a time: the rest stays queued (and
/// counted against the outbound-queue bound) until the transport asks for more, so a session that
/// wakes to a long queue does not copy all of it into its connection's buffers at once.
const BATCH_BYTES: usize = 64 * 1024;

/// What is written to a session's connection, by either transport (see the module docs).
pub struct ConnectionBody {
    outbox: Arc<Outbox>,
    /// Told when the transport drops the body.
    session: Recipient<ConnectionGone>,
    codec: Codec,
    /// Encoded frames not yet handed to the transport.
    buffer: BytesMut,
    /// Keeps the connection counted at the gate for as long as the transport holds it (which can
    /// be after its session has stopped, while the last frames are being written). The session
    /// holds it too (an away client's outbox keeps it after both are gone).
    _permit: Arc<ConnectionPermit>,
}

impl ConnectionBody {
    pub fn new(
        outbox: Arc<Outbox>,
        session: Recipient<ConnectionGone>,
        permit: Arc<ConnectionPermit>,
    ) -> Self {
        ConnectionBody {
            outbox,
            session,
            codec: Codec::new(),
            buffer: BytesMut::new(),
            _permit: permit,
        }
    }

    fn encode(&mut self, message: Message) {
        // Encoding a server's frame only writes a header and copies the payload: it cannot fail.
        if let Err(err) = self.codec.encode(message, &mut self.buffer) {
            log::warn!("could not encode a frame: {err}");
        }
    }

    /// Encodes what is to be written now: pushed frames (up to [`BATCH_BYTES`]; dropped if the
    /// session is closing), then what the session wrote itself. True once the connection is to
    /// end after them (and then no more pushed frames are taken).
    fn encode_waiting(&mut self) -> bool {
        let (own, ended) = self.outbox.take_own_frames();
        if !ended {
            let frames = self.outbox.take(BATCH_BYTES);
            let count = frames.len() as u64;
            if self.outbox.is_closing() {
                self.outbox.metrics().frames_dropped.inc_by(count);
            } else if count > 0 {
                // Room for the whole batch at once; a header is at most 10 bytes.
                self.buffer
                    .reserve(frames.iter().map(|frame| frame.len() + 10).sum());
                for frame in frames {
                    self.encode(Message::Text(frame));
                }
                self.outbox.metrics().frames_delivered.inc_by(count);
            }
        }
        for message in own {
            self.encode(message);
        }
        ended
    }
}

impl Stream for ConnectionBody {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // Register before looking, so a push that lands in between still wakes us.
        this.outbox.register(cx.waker());
        let ended = this.encode_waiting();
        if !this.buffer.is_empty() {
            // A fresh buffer each time (not `split()`): a whole buffer freezes into `Bytes`
            // without a shared header, and nothing stays allocated while the connection idles.
            return Poll::Ready(Some(Ok(std::mem::take(&mut this.buffer).freeze())));
        }
        if ended {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl Drop for ConnectionBody {
    fn drop(&mut self) {
        // Both transports close the socket only after dropping the body: forget it first.
        self.outbox.forget_socket();
        self.session.do_send(ConnectionGone);
    }
}

/// What the client sends, decoded: WebSocket frames, in order. It hands the decoder everything
/// the payload has; [`super::frame_guard::FrameGuard`] keeps that to one frame at a time.
pub struct ClientFrames<S> {
    payload: S,
    codec: Codec,
    buffer: BytesMut,
    ended: bool,
}

impl<S> ClientFrames<S> {
    pub fn new(payload: S, max_frame_size: usize) -> Self {
        ClientFrames {
            payload,
            codec: Codec::new().max_size(max_frame_size),
            buffer: BytesMut::new(),
            ended: false,
        }
    }
}

impl<S> Stream for ClientFrames<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Frame, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        while !this.ended {
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.buffer.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(err))) => {
                    let err = io::Error::other(err.to_string());
                    return Poll::Ready(Some(Err(ProtocolError::Io(err))));
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => break,
            }
        }
        match this.codec.decode(&mut this.buffer) {
            Ok(Some(frame)) => Poll::Ready(Some(Ok(frame))),
            Ok(None) if this.ended => Poll::Ready(None),
            Ok(None) => Poll::Pending,
            Err(err) => Poll::Ready(Some(Err(err))),
        }
    }
}

/// Most a [`SocketReader`] reads at a time; on the stack, so an idle connection holds no read
/// buffer.
const READ_CHUNK: usize = 8 * 1024;

/// What the client sends, read straight from the upgraded socket (the standalone server's
/// transport; see [`crate::http::ws::upgrade`]): the session's payload, as actix-http's request
/// payload is for an embedded `/ws`. It reads only when the session asks, so the frame guard's
/// one-frame-at-a-time back-pressure reaches the socket.
pub struct SocketReader {
    socket: Rc<TcpStream>,
    /// What arrived behind the upgrade request, handed over first.
    early: Bytes,
    ended: bool,
}

impl SocketReader {
    pub fn new(socket: Rc<TcpStream>, early: Bytes) -> Self {
        SocketReader {
            socket,
            early,
            ended: false,
        }
    }
}

impl Stream for SocketReader {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.early.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut this.early))));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            if let Err(err) = ready!(this.socket.poll_read_ready(cx)) {
                this.ended = true;
                return Poll::Ready(Some(Err(PayloadError::Io(err))));
            }
            match this.socket.try_read(&mut chunk) {
                Ok(0) => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Ok(read) => return Poll::Ready(Some(Ok(Bytes::copy_from_slice(&chunk[..read])))),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(PayloadError::Io(err))));
                }
            }
        }
    }
}

/// The body is asked for more while less than this is waiting for the socket: what actix-http
/// does for an embedded `/ws` (its `h1_write_buffer_size`), so a client whose socket is full
/// for a moment is not held to its outbound bound any sooner than there.
const WRITE_AHEAD: usize = 32 * 1024;

/// Most chunks handed to one `writev`.
const MAX_SLICES: usize = 16;

/// Writes a [`ConnectionBody`] to the upgraded socket (the standalone server's transport),
/// asking the body for more while less than `WRITE_AHEAD` (32 KiB) waits for the socket, as
/// actix-http does. Done when the body ends (the socket's write side is then shut down, after
/// what was waiting) or the socket fails. actix-server's connection task runs it, so the server
/// still counts the connection and waits for it on a graceful stop.
pub struct SocketWriter {
    // Dropped before `socket`: the body's `Drop` forgets the descriptor before it can close.
    body: ConnectionBody,
    socket: Rc<TcpStream>,
    /// Chunks the socket has not taken yet (the first one perhaps in part).
    unwritten: VecDeque<Bytes>,
    unwritten_bytes: usize,
    body_ended: bool,
    /// The body's last poll found nothing: it wakes this task when there is more, so it need
    /// not be asked again until then.
    body_idle: bool,
}

impl SocketWriter {
    pub fn new(body: ConnectionBody, socket: Rc<TcpStream>) -> Self {
        SocketWriter {
            body,
            socket,
            unwritten: VecDeque::new(),
            unwritten_bytes: 0,
            body_ended: false,
            body_idle: false,
        }
    }

    /// Takes what the body has, up to [`WRITE_AHEAD`].
    fn fill(&mut self, cx: &mut Context<'_>) {
        self.body_idle = false;
        while !self.body_ended && self.unwritten_bytes < WRITE_AHEAD {
            match Pin::new(&mut self.body).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.unwritten_bytes += chunk.len();
                    self.unwritten.push_back(chunk);
                }
                Poll::Ready(Some(Err(_)) | None) => self.body_ended = true,
                Poll::Pending => {
                    self.body_idle = true;
                    break;
                }
            }
        }
    }

    /// Drops the `written` bytes from the front.
    fn consume(&mut self, mut written: usize) {
        self.unwritten_bytes -= written;
        while written > 0 {
            let Some(front) = self.unwritten.front_mut() else {
                return;
            };
            if front.len() > written {
                let _ = front.split_to(written);
                return;
            }
            written -= front.len();
            self.unwritten.pop_front();
        }
    }
}

impl Future for SocketWriter {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            this.fill(cx);
            if this.unwritten.is_empty() {
                if this.body_ended {
                    // The client reads what was written, then end of stream.
                    let _ = SockRef::from(&*this.socket).shutdown(Shutdown::Write);
                    return Poll::Ready(());
                }
                return Poll::Pending;
            }
            if ready!(this.socket.poll_write_ready(cx)).is_err() {
                return Poll::Ready(());
            }
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slice, chunk) in slices.iter_mut().zip(&this.unwritten) {
                *slice = IoSlice::new(chunk);
                count += 1;
            }
            let written = match &slices[..count] {
                [one] => this.socket.try_write(one),
                many => this.socket.try_write_vectored(many),
            };
            match written {
                // A socket that takes nothing of a non-empty write will take nothing more.
                Ok(0) => return Poll::Ready(()),
                Ok(written) => {
                    this.consume(written);
                    // All written and the body had nothing more: its wake-up brings us back.
                    if this.unwritten.is_empty() && this.body_idle {
                        return Poll::Pending;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => return Poll::Ready(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix::{Actor, Context, Handler};
    use actix_codec::Decoder;
    use actix_http::ws::{Codec, Frame};
    use actix_web::web::BytesMut;
    use bytestring::ByteString;
    use futures_util::{FutureExt, StreamExt};

    use super::{ConnectionBody, BATCH_BYTES};
    use crate::actors::messages::ConnectionGone;
    use crate::actors::outbox::{Outbox, SessionCommand, SessionHandle};
    use crate::gate::ConnectionGate;
    use crate::metrics::Metrics;

    /// Stands in for the session: the body only needs someone to tell.
    struct NoSession;
    impl Actor for NoSession {
        type Context = Context<Self>;
    }
    impl Handler<SessionCommand> for NoSession {
        type Result = ();
        fn handle(&mut self, _: SessionCommand, _: &mut Context<Self>) {}
    }
    impl Handler<ConnectionGone> for NoSession {
        type Result = ();
        fn handle(&mut self, _: ConnectionGone, _: &mut Context<Self>) {}
    }

    #[actix_web::test]
    async fn a_long_queue_is_written_in_bounded_chunks_in_order_then_the_end() {
        let metrics = Arc::new(Metrics::new());
        let outbox = Outbox::new("c".into(), 1 << 20, None, None, metrics.clone());
        let gate = Arc::new(ConnectionGate::new(10, None, metrics));
        let permit = gate.admit(Some("s")).expect("room at the gate");
        let session = NoSession.start();
        let handle = SessionHandle::new(session.clone().recipient(), outbox.clone());
        let pad = "x".repeat(1000);
        for i in 0..200 {
            handle.push(&ByteString::from(format!("{i} {pad}")));
        }
        outbox.write_own(actix_http::ws::Message::Ping(Default::default()));
        let mut body = ConnectionBody::new(outbox.clone(), session.recipient(), Arc::new(permit));

        let mut written = BytesMut::new();
        let mut chunks = 0;
        while let Some(Some(chunk)) = body.next().now_or_never() {
            let chunk = chunk.expect("a chunk");
            assert!(chunk.len() <= BATCH_BYTES + 1100, "{} bytes", chunk.len());
            written.extend_from_slice(&chunk);
            chunks += 1;
        }
        assert!(chunks >= 3, "{chunks} chunks");

        // What a client reads: the frames in push order, and the ping.
        let mut client = Codec::new().client_mode().max_size(1 << 20);
        let mut texts = Vec::new();
        let mut pings = 0;
        while let Some(frame) = client.decode(&mut written).expect("valid frames") {
            match frame {
                Frame::Text(text) => texts.push(text),
                Frame::Ping(_) => pings += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(pings, 1);
        assert_eq!(texts.len(), 200);
        for (i, text) in texts.iter().enumerate() {
            assert!(text.starts_with(format!("{i} ").as_bytes()));
        }

        outbox.end_connection();
        assert!(matches!(body.next().now_or_never(), Some(None)));
        // The connection counts at the gate until the transport lets go of it.
        assert_eq!(gate.open(), 1);
        drop(body);
        assert_eq!(gate.open(), 0);
    }
}
