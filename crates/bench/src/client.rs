//! One keep-alive HTTP/1.1 connection to the server (hyper's low-level client: no pool,
//! no redirects, nothing between the load generator and the socket).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE, HOST, LINK};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Error;

pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    addr: SocketAddr,
    /// Sent as `Accept-Encoding` with every request; none when `None`.
    accept_encoding: Option<HeaderValue>,
}

pub struct Reply {
    pub status: StatusCode,
    /// The `Link` header, if any.
    pub link: Option<String>,
    pub body: Bytes,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Result<Self, Error> {
        Self::connect_accepting(addr, None).await
    }

    /// A connection whose requests accept the response codings `accept_encoding`
    /// (their bodies are read as they come, not decoded).
    pub async fn connect_accepting(
        addr: SocketAddr,
        accept_encoding: Option<HeaderValue>,
    ) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // Drives the socket; it ends when the sender is dropped or the server closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            host: HeaderValue::from_str(&addr.to_string())?,
            addr,
            accept_encoding,
        })
    }

    /// Replaces the connection with a new one, after a transport error.
    pub async fn reconnect(&mut self) -> Result<(), Error> {
        *self = Self::connect_accepting(self.addr, self.accept_encoding.take()).await?;
        Ok(())
    }

    /// Sends one request and reads the whole response.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&HeaderValue>,
        json: Option<Bytes>,
    ) -> Result<Reply, Error> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, token.clone());
        }
        if let Some(accepted) = &self.accept_encoding {
            request = request.header(ACCEPT_ENCODING, accepted.clone());
        }
        let body = match json {
            Some(json) => {
                request =
                    request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                json
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(body))?;
        // The server closes connections left idle past its keep-alive (5 s), e.g. while
        // another dataset's cursors are walked: open a new one then.
        if self.sender.is_closed() {
            self.reconnect().await?;
        }
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let link = response
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply { status, link, body })
    }
}

/// The `Authorization` value for a token.
pub fn bearer(token: &str) -> Result<HeaderValue, Error> {
    Ok(HeaderValue::from_str(&format!("Bearer {token}"))?)
}

/// The target of `Link: <target>; rel="next"`.
pub fn next_link(link: &str) -> Option<&str> {
    let start = link.find('<')? + 1;
    let end = start + link[start..].find('>')?;
    link[end..]
        .contains("rel=\"next\"")
        .then(|| &link[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_next_link() {
        assert_eq!(
            next_link("</tickets?limit=2&cursor=abc>; rel=\"next\""),
            Some("/tickets?limit=2&cursor=abc")
        );
        assert_eq!(next_link("</x>; rel=\"prev\""), None);
        assert_eq!(next_link("nothing"), None);
    }
}
