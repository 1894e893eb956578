//! Responses written at the end of the worker's turn: [`Coalesced`], the
//! connection type the server's HTTP/1 dispatcher writes to.
//!
//! A worker runs its connections' tasks one after another on one thread.
//! When a request finishes, actix-http writes its response and "flushes"
//! it; on a plain `TcpStream` that is one `send(2)` per response, at once.
//! Each such `send` to a client that sleeps in `epoll_wait` wakes it, and
//! when the client runs on another core that wake-up is an inter-processor
//! interrupt (a VM exit on a virtual machine): under load, with the server
//! the slower side, that is paid once per response, and it was the largest
//! single item of a POST route's CPU (docs/benchmarks.md, "Responses sent
//! at the end of the turn").
//!
//! [`Coalesced`] accepts the response into a per-connection buffer and
//! queues the connection on its thread's [`flusher`] task, which the first
//! queued connection wakes. The flusher runs behind the connection tasks
//! that were already ready (the other connections whose requests arrived
//! in the same turn) and sends every queued response one after another.
//! The client is woken by the first of them and finds the rest ready. In a
//! copy of bench/floor with 15 µs of work per request, 64 connections,
//! each run of the flusher sent 38.6 connections' responses on average.
//! tokio serves a `LocalSet`'s own wake-ups before those from outside it
//! except every 31st pick, so when connection tasks are woken from another
//! thread the batches are smaller; nothing is lost. With one request in
//! flight, the flusher runs right after it: no wait but one task switch.
//!
//! What the dispatcher relies on still holds:
//! - bytes are sent in the order they were written, and none are dropped
//!   while the client reads: the dispatcher may drop a connection right
//!   after writing (an error answer, then the end, without a shutdown), and
//!   what it still had queued is sent by the flusher and then, if the
//!   socket is full, by a task of its own for at most [`LINGER`];
//! - back-pressure: when a send would block (a full socket buffer) or more
//!   than [`MAX_QUEUED`] bytes wait, writes go straight to the socket
//!   through the connection's own task, which then waits for the socket to
//!   be writable as it would without this type;
//! - a send error reaches the dispatcher on its next write or flush;
//! - shutting the connection down sends what is queued first.
//!
//! Everything runs on the worker's thread (`Rc`, `RefCell`): no locks.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes a connection may have queued before its writes go straight to the
/// socket (a large answer, e.g. the OpenAPI document, is not copied twice).
pub const MAX_QUEUED: usize = 64 * 1024;

/// A connection's state, shared by its [`Coalesced`] and, while queued,
/// its thread's flusher.
struct Conn {
    io: TcpStream,
    /// Bytes accepted but not yet sent.
    queued: BytesMut,
    /// In the flusher's queue.
    in_queue: bool,
    /// A send would have blocked: the connection's task sends what is
    /// queued (and waits for the socket) on its next write or flush.
    blocked: bool,
    /// A send of the flusher failed; reported by the next write or flush.
    error: Option<io::Error>,
    /// The connection's task: woken when the flusher leaves bytes behind.
    waker: Option<Waker>,
    /// Its [`Coalesced`] was dropped: what is queued is the flusher's to send.
    dropped: bool,
}

impl Conn {
    /// Sends what is queued through the connection's own task: `Pending`
    /// (with the socket's writability registered) while it cannot.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.queued.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.queued) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.queued.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.blocked = true;
                    return Poll::Pending;
                }
            }
        }
        self.blocked = false;
        Poll::Ready(Ok(()))
    }

    /// The flusher's send: as much as the socket takes now, without a task
    /// context. Leaves the rest to the connection's task (woken).
    fn send_now(&mut self) {
        while !self.queued.is_empty() {
            match self.io.try_write(&self.queued) {
                Ok(0) => {
                    self.error = Some(io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => self.queued.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        if self.blocked || self.error.is_some() {
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }

    fn take_error(&mut self) -> io::Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn remember(&mut self, cx: &Context<'_>) {
        match &self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.waker = Some(cx.waker().clone()),
        }
    }
}

/// The connections queued on this thread, and its flusher task.
#[derive(Default)]
struct Queue {
    conns: Vec<Rc<RefCell<Conn>>>,
    /// The flusher, while it waits for a connection to be queued.
    waker: Option<Waker>,
    /// The flusher task runs on this thread.
    running: bool,
}

impl Queue {
    /// Queues `conn` and wakes the flusher if it waits.
    fn push(&mut self, conn: &Rc<RefCell<Conn>>) {
        self.conns.push(conn.clone());
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

/// Queues `conn` on this thread's flusher (spawned on first use) and wakes it.
fn enqueue(conn: &Rc<RefCell<Conn>>) {
    let spawn = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        q.push(conn);
        !std::mem::replace(&mut q.running, true)
    });
    if spawn {
        // the guard travels in the task: dropped with it, even unpolled
        tokio::task::spawn_local(flusher(Running));
    }
}

/// Queues a connection its owner dropped with bytes still queued, without
/// spawning (a drop may run while the worker stops); the flusher that sent
/// its earlier bytes sends these (see [`Coalesced`]'s `Drop`).
fn enqueue_dropped(conn: &Rc<RefCell<Conn>>) {
    let _ = QUEUE.try_with(|q| {
        if let Ok(mut q) = q.try_borrow_mut() {
            q.push(conn);
        }
    });
}

/// How long the bytes of a connection dropped with bytes still queued are
/// sent for, at most, before the socket is closed without them (a plain
/// socket's close leaves them to the kernel; these are ours to send).
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// Sends the rest of a dropped connection's bytes as its socket drains, for
/// at most [`LINGER`]; the socket closes when this ends.
async fn linger(conn: Rc<RefCell<Conn>>) {
    let _ = tokio::time::timeout(
        LINGER,
        std::future::poll_fn(|cx| conn.borrow_mut().poll_drain(cx)),
    )
    .await;
}

/// Marks the thread's flusher as gone when its task is dropped (the worker
/// stopping, even before the task first ran), so that a later connection
/// on the thread spawns a new one. Queued connections stay queued for it.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        // `try_with`: the thread-local may already be gone at thread exit
        let _ = QUEUE.try_with(|q| {
            if let Ok(mut q) = q.try_borrow_mut() {
                q.running = false;
                q.waker = None;
            }
        });
    }
}

/// One per worker thread: sends every queued connection's bytes each time
/// it runs, that is once per turn of the worker's run queue.
async fn flusher(_running: Running) {
    let mut batch: Vec<Rc<RefCell<Conn>>> = Vec::new();
    loop {
        std::future::poll_fn(|cx| {
            QUEUE.with(|q| {
                let mut q = q.borrow_mut();
                if q.conns.is_empty() {
                    q.waker = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    std::mem::swap(&mut batch, &mut q.conns);
                    Poll::Ready(())
                }
            })
        })
        .await;
        for conn in batch.drain(..) {
            let mut c = conn.borrow_mut();
            c.in_queue = false;
            if !c.blocked && c.error.is_none() {
                c.send_now();
            }
            let left = c.dropped && c.error.is_none() && !c.queued.is_empty();
            drop(c);
            if left {
                // its owner is gone: a task of its own waits for the socket
                tokio::task::spawn_local(linger(conn));
            }
        }
    }
}

/// A TCP connection whose writes are sent at the end of the worker's turn
/// (module docs). Reads go straight to the socket.
pub struct Coalesced(Rc<RefCell<Conn>>);

impl Coalesced {
    /// Wraps an accepted connection.
    pub fn new(io: TcpStream) -> Self {
        Coalesced(Rc::new(RefCell::new(Conn {
            io,
            queued: BytesMut::new(),
            in_queue: false,
            blocked: false,
            error: None,
            waker: None,
            dropped: false,
        })))
    }
}

impl Drop for Coalesced {
    /// The dispatcher may end a connection right after handing it a
    /// response (an error answer, then the end, without a shutdown): what
    /// is still queued is sent by the flusher, then by [`linger`].
    fn drop(&mut self) {
        let Ok(mut c) = self.0.try_borrow_mut() else {
            return;
        };
        c.dropped = true;
        c.waker = None;
        if c.queued.is_empty() || c.error.is_some() || c.in_queue {
            return;
        }
        c.in_queue = true;
        drop(c);
        enqueue_dropped(&self.0);
    }
}

impl AsyncRead for Coalesced {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0.borrow_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Coalesced {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut c = self.0.borrow_mut();
        c.take_error()?;
        c.remember(cx);
        if c.blocked || c.queued.len() + buf.len() > MAX_QUEUED {
            // back-pressure: what is queued first, then this write, both
            // through this task
            std::task::ready!(c.poll_drain(cx))?;
            return Pin::new(&mut c.io).poll_write(cx, buf);
        }
        c.queued.extend_from_slice(buf);
        if !c.in_queue {
            c.in_queue = true;
            drop(c);
            enqueue(&self.0);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut c = self.0.borrow_mut();
        c.take_error()?;
        c.remember(cx);
        if c.blocked {
            std::task::ready!(c.poll_drain(cx))?;
        }
        // queued bytes go out at the end of this turn
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut c = self.0.borrow_mut();
        c.take_error()?;
        std::task::ready!(c.poll_drain(cx))?;
        Pin::new(&mut c.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::{poll_fn, Future};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket};

    /// A connected pair with small buffers on both sides (no autotuning):
    /// a few kilobytes fill them.
    async fn small_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpSocket::new_v4().unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        let client = client
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&server)
            .set_send_buffer_size(4096)
            .unwrap();
        (server, client)
    }

    fn chunk(i: usize) -> Vec<u8> {
        format!("{i:06}:").bytes().cycle().take(200).collect()
    }

    fn local<F: Future<Output = ()>>(f: F) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f);
    }

    #[test]
    fn bytes_wait_for_the_end_of_the_turn_then_go_out_in_order() {
        local(async {
            let (server, mut client) = small_pair().await;
            let mut w = Coalesced::new(server);
            w.write_all(b"first ").await.unwrap();
            w.flush().await.unwrap();
            w.write_all(b"second").await.unwrap();
            w.flush().await.unwrap();
            // still this task's turn: queued, not sent
            assert_eq!(w.0.borrow().queued.len(), 12);
            tokio::task::yield_now().await;
            assert!(w.0.borrow().queued.is_empty(), "sent by the flusher");
            let mut got = [0; 12];
            client.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"first second");
        });
    }

    /// Writes `chunks` (yielding the turn after each `every`-th), then
    /// stays as an idle keep-alive connection does in actix's dispatcher:
    /// it flushes each time it is woken, and never ends.
    async fn write_then_idle(server: TcpStream, n: usize, every: usize) {
        let mut w = Coalesced::new(server);
        for i in 0..n {
            w.write_all(&chunk(i)).await.unwrap();
            w.flush().await.unwrap();
            if i % every == every - 1 {
                tokio::task::yield_now().await;
            }
        }
        poll_fn(|cx| {
            let _ = Pin::new(&mut w).poll_flush(cx);
            Poll::<()>::Pending
        })
        .await;
    }

    /// The client reads `n` chunks after a pause (with `to_end`, then the
    /// end of the stream); they arrive whole and in order.
    async fn read_after_a_pause(client: &mut TcpStream, n: usize, to_end: bool) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut got = vec![0; n * 200];
        let read = async {
            client.read_exact(&mut got).await?;
            let mut rest = Vec::new();
            if to_end {
                client.read_to_end(&mut rest).await?;
            }
            Ok::<_, io::Error>(rest)
        };
        let rest = tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .expect("every byte arrives")
            .unwrap();
        assert!(rest.is_empty(), "nothing after the chunks");
        for i in 0..n {
            assert!(
                got[i * 200..(i + 1) * 200] == chunk(i),
                "chunk {i} in order"
            );
        }
    }

    #[test]
    fn what_the_flusher_could_not_send_goes_out_from_the_connection() {
        local(async {
            let (server, mut client) = small_pair().await;
            // 60 kB queued in one turn (under MAX_QUEUED) against buffers
            // of a few kB, the connection idle before the flusher runs: the
            // flusher's send stops early, and the connection, woken, sends
            // the rest when the socket drains
            let n = 300;
            let writer = tokio::task::spawn_local(write_then_idle(server, n, usize::MAX));
            read_after_a_pause(&mut client, n, false).await;
            writer.abort();
        });
    }

    #[test]
    fn a_long_run_through_a_full_socket_arrives_whole_and_in_order() {
        local(async {
            let (server, mut client) = small_pair().await;
            let n = 2000; // 400 kB
            let writer = tokio::task::spawn_local(write_then_idle(server, n, 7));
            read_after_a_pause(&mut client, n, false).await;
            writer.abort();
        });
    }

    #[test]
    fn a_connection_dropped_with_bytes_queued_still_sends_them() {
        // dropped before the flusher ran, and dropped after it found the
        // socket full: 60 kB against buffers of a few kB either way
        for flushed_first in [false, true] {
            local(async move {
                let (server, mut client) = small_pair().await;
                let n = 300;
                let mut w = Coalesced::new(server);
                for i in 0..n {
                    w.write_all(&chunk(i)).await.unwrap();
                }
                w.flush().await.unwrap();
                if flushed_first {
                    tokio::task::yield_now().await;
                    assert!(w.0.borrow().blocked, "the socket is full");
                }
                drop(w);
                read_after_a_pause(&mut client, n, true).await;
            });
        }
    }

    #[test]
    fn a_flusher_dropped_before_it_ran_is_replaced() {
        // a worker whose LocalSet ends right after its first write: its
        // flusher never runs, and the thread's next worker gets a new one
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let first = tokio::task::LocalSet::new();
        let (server, _client) = first.block_on(&rt, small_pair());
        let mut w = Coalesced::new(server);
        first.block_on(&rt, async {
            // queue without yielding: the flusher is spawned, never polled
            poll_fn(|cx| Pin::new(&mut w).poll_write(cx, b"lost"))
                .await
                .unwrap();
        });
        drop(first);
        drop(w);
        assert!(!QUEUE.with(|q| q.borrow().running), "the flusher is gone");
        tokio::task::LocalSet::new().block_on(&rt, async {
            let (server, mut client) = small_pair().await;
            let mut w = Coalesced::new(server);
            w.write_all(b"sent").await.unwrap();
            w.flush().await.unwrap();
            let mut got = [0; 4];
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                client.read_exact(&mut got),
            )
            .await
            .expect("a new flusher sends it")
            .unwrap();
            assert_eq!(&got, b"sent");
        });
    }

    #[test]
    fn shutdown_sends_what_is_queued_first() {
        local(async {
            let (server, mut client) = small_pair().await;
            let mut w = Coalesced::new(server);
            let data: Vec<u8> = (0..300).flat_map(chunk).collect();
            let reader = tokio::task::spawn_local(async move {
                let mut got = Vec::new();
                client.read_to_end(&mut got).await.unwrap();
                got
            });
            for i in 0..300 {
                w.write_all(&chunk(i)).await.unwrap();
            }
            w.shutdown().await.unwrap();
            assert!(reader.await.unwrap() == data);
        });
    }

    #[test]
    fn writes_to_a_reset_connection_fail_instead_of_queueing_forever() {
        local(async {
            let (server, client) = small_pair().await;
            // the peer resets the connection
            socket2::SockRef::from(&client)
                .set_linger(Some(std::time::Duration::ZERO))
                .unwrap();
            drop(client);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut w = Coalesced::new(server);
            let mut failed = false;
            for i in 0..100 {
                if w.write_all(&chunk(i)).await.is_err() || w.flush().await.is_err() {
                    failed = true;
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert!(failed, "a reset connection's writes fail");
        });
    }
}
