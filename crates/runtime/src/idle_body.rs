//! A request body with a read timeout: a client that sends nothing for a while, when
//! the app is waiting for its body, is cut off (slowloris), rather than holding a
//! request slot until the request's own deadline.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::Error as BodyError;

/// `inner`, failing with `ConnectionReadTimeout` once the app has waited `idle` for its
/// next frame. Only time spent waiting counts: an app busy elsewhere, or a client held
/// back by flow control while the app does not read, is never cut.
pub(crate) struct IdleBody<B> {
    inner: Pin<Box<B>>,
    idle: Duration,
    /// Armed while the app waits for a frame.
    timer: Pin<Box<Sleep>>,
    waiting: bool,
    /// Set when the timeout cut the body, so the client can be told 408.
    fired: Arc<AtomicBool>,
}

impl<B> IdleBody<B> {
    /// Wraps `inner`; `fired` is set when the timeout cuts it.
    pub(crate) fn new(inner: B, idle: Duration, fired: Arc<AtomicBool>) -> IdleBody<B> {
        IdleBody {
            inner: Box::pin(inner),
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
            fired,
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes, Error = BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = this.inner.as_mut().poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame);
        }
        if !this.waiting {
            this.waiting = true;
            let at = Instant::now() + this.idle;
            this.timer.as_mut().reset(at);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.fired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(BodyError::ConnectionReadTimeout)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body whose frames come from a channel.
    struct Chan(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for Chan {
        type Data = Bytes;
        type Error = BodyError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
            self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_silent_client_is_cut_and_a_busy_app_is_not() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let fired = Arc::new(AtomicBool::new(false));
        let idle = Duration::from_millis(50);
        let mut body = IdleBody::new(Chan(rx), idle, fired.clone());
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        // The app does not read for longer than the timeout: that is not the client's.
        tokio::time::sleep(idle * 4).await;
        assert!(body.frame().await.unwrap().is_ok());
        assert!(!fired.load(Ordering::Relaxed));
        // Now the app waits and the client is silent.
        let cut = body.frame().await.unwrap();
        assert!(matches!(cut, Err(BodyError::ConnectionReadTimeout)));
        assert!(fired.load(Ordering::Relaxed));
        drop(tx);
    }
}
