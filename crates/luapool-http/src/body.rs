//! [`Body`]: the body of every response the server sends. A body in memory (the common
//! case, with no allocation beyond its bytes), a list of chunks a handler returned, or
//! a stream (a file) read as the client takes it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

/// A response body.
pub(crate) enum Body {
    /// All of it, in memory (`None` once sent).
    Full(Option<Bytes>),
    /// Chunks sent one frame each; their total length is known.
    Chunks { chunks: VecDeque<Bytes>, left: u64 },
    /// A stream read as it is sent (a file).
    Stream(UnsyncBoxBody<Bytes, std::io::Error>),
    /// Chunks a handler writes while the response is sent (`stream.write`); an error
    /// ends the response without its proper end, so the client sees it cut off.
    Channel(mpsc::Receiver<Result<Bytes, std::io::Error>>),
}

impl Body {
    /// A body of `bytes`.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Body::Full(None)
        } else {
            Body::Full(Some(bytes))
        }
    }

    /// No body.
    pub(crate) fn empty() -> Body {
        Body::Full(None)
    }

    /// A body of `chunks`, one frame each.
    pub(crate) fn chunks(chunks: Vec<Bytes>) -> Body {
        let left = chunks.iter().map(|c| c.len() as u64).sum();
        Body::Chunks {
            chunks: chunks.into_iter().filter(|c| !c.is_empty()).collect(),
            left,
        }
    }

    /// A body read from `body` as it is sent.
    pub(crate) fn stream<B>(body: B) -> Body
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        Body::Stream(
            body.map_err(|e| std::io::Error::other(e.into()))
                .boxed_unsync(),
        )
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Chunks { chunks, left } => Poll::Ready(chunks.pop_front().map(|c| {
                *left -= c.len() as u64;
                Ok(Frame::data(c))
            })),
            Body::Stream(body) => Pin::new(body).poll_frame(cx),
            Body::Channel(rx) => rx.poll_recv(cx).map(|c| c.map(|c| c.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(bytes) => bytes.is_none(),
            Body::Chunks { chunks, .. } => chunks.is_empty(),
            Body::Stream(body) => body.is_end_stream(),
            Body::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Chunks { left, .. } => SizeHint::with_exact(*left),
            Body::Stream(body) => body.size_hint(),
            Body::Channel(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_are_sent_in_order_with_their_total_length() {
        let body = Body::chunks(vec![Bytes::from("ab"), Bytes::new(), Bytes::from("cde")]);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"abcde");
    }

    #[tokio::test]
    async fn a_full_body_has_its_exact_length_and_an_empty_one_ends_at_once() {
        let body = Body::full("hello");
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        assert!(http_body::Body::is_end_stream(&Body::empty()));
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"hello");
    }
}
