//! A scripted OpenAI-compatible provider: a real HTTP/1.1 server on loopback that answers
//! `POST .../chat/completions` with scripted server-sent events, so the ghost is tested
//! against real sockets without a model. Each request takes the next script (the last one
//! repeats); every request's headers and body are recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest request the fake provider reads: the ghost sends the room's files, bounded
/// far below this.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// How one request is answered.
#[derive(Debug, Clone)]
pub enum Script {
    /// 200 with these text pieces as chat-completion chunks, `delay` apart, then `[DONE]`.
    Stream {
        /// The pieces, in order.
        pieces: Vec<String>,
        /// The pause before each piece.
        delay: Duration,
    },
    /// An HTTP error with this body.
    Status(u16, String),
    /// Read the request, then say nothing until the client gives up.
    Hang,
    /// 200 with this raw body as the event stream (for malformed streams).
    Raw(String),
}

/// One request as the provider received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request line and headers, as sent.
    pub head: String,
    /// The JSON body.
    pub body: serde_json::Value,
}

/// A running scripted provider.
pub struct ScriptedProvider {
    /// The API base URL (`http://127.0.0.1:PORT/v1`).
    pub base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedProvider {
    /// Starts on an ephemeral loopback port.
    pub async fn start(scripts: Vec<Script>) -> anyhow::Result<ScriptedProvider> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}/v1", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let scripts = Arc::new(Mutex::new(scripts));
        let rec = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let script = {
                    let mut s = scripts.lock().unwrap();
                    if s.len() > 1 {
                        s.remove(0)
                    } else {
                        s.first().cloned().unwrap_or(Script::Status(500, "no script".into()))
                    }
                };
                tokio::spawn(serve(sock, script, rec.clone()));
            }
        });
        Ok(ScriptedProvider {
            base_url,
            received,
            task,
        })
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for ScriptedProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The SSE line for one chat-completion chunk carrying `text`.
pub fn sse_chunk(text: &str) -> String {
    format!(
        "data: {}\n\n",
        serde_json::json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})
    )
}

async fn serve(mut sock: TcpStream, script: Script, received: Arc<Mutex<Vec<Received>>>) {
    let Some((head, body)) = read_request(&mut sock).await else {
        return;
    };
    received.lock().unwrap().push(Received {
        head,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let sse_head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
    match script {
        Script::Stream { pieces, delay } => {
            if sock.write_all(sse_head.as_bytes()).await.is_err() {
                return;
            }
            for piece in pieces {
                tokio::time::sleep(delay).await;
                if sock.write_all(sse_chunk(&piece).as_bytes()).await.is_err() {
                    return;
                }
                let _ = sock.flush().await;
            }
            let _ = sock.write_all(b"data: [DONE]\n\n").await;
        }
        Script::Status(code, body) => {
            let reply = format!(
                "HTTP/1.1 {code} Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
        }
        Script::Hang => {
            // Hold the socket open without answering until the client closes it.
            let mut buf = [0u8; 64];
            while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        Script::Raw(body) => {
            let _ = sock.write_all(sse_head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
        }
    }
    let _ = sock.shutdown().await;
}

async fn read_request(sock: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > MAX_REQUEST_BYTES {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
        .min(MAX_REQUEST_BYTES);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..head_end + len].to_vec()))
}
