//! The provider client against a real HTTP server on loopback (the scripted provider): the
//! bounds and cancellation, which the room-level tests do not reach.

use std::time::{Duration, Instant};

use mesh_ghost::config::{Limits, ProviderConfig};
use mesh_ghost::provider::{http_client, stream_chat, ChatMessage, ProviderError, MAX_ANSWER_BYTES};
use mesh_testkit::provider::{Script, ScriptedProvider};
use tokio::sync::watch;

fn config(p: &ScriptedProvider) -> ProviderConfig {
    ProviderConfig {
        base_url: p.base_url.clone(),
        model: "scripted".into(),
        key: None,
    }
}

fn ask() -> Vec<ChatMessage> {
    vec![ChatMessage {
        role: "user",
        content: "q".into(),
    }]
}

#[tokio::test]
async fn an_endless_answer_is_cut_at_the_limit_without_holding_more() {
    let piece = "x".repeat(8 * 1024);
    let p = ScriptedProvider::start(vec![Script::Stream {
        pieces: vec![piece; MAX_ANSWER_BYTES / (8 * 1024) + 10],
        delay: Duration::ZERO,
    }])
    .await
    .unwrap();
    let (_tx, rx) = watch::channel(false);
    let mut held = 0;
    let got = stream_chat(&http_client(), &config(&p), &Limits::default(), &ask(), rx, |t| {
        held += t.len()
    })
    .await;
    assert!(matches!(got, Err(ProviderError::TooLong)), "{got:?}");
    assert!(held <= MAX_ANSWER_BYTES, "{held}");
}

#[tokio::test]
async fn cancelling_stops_a_streaming_answer_at_once() {
    let p = ScriptedProvider::start(vec![Script::Stream {
        pieces: (0..100).map(|i| format!("{i} ")).collect(),
        delay: Duration::from_millis(100),
    }])
    .await
    .unwrap();
    let (tx, rx) = watch::channel(false);
    let started = Instant::now();
    let mut pieces = 0;
    let cancel_after_two = async {
        // Cancel from outside, as the ghost's loop does, once the answer is flowing.
        tokio::time::sleep(Duration::from_millis(350)).await;
        tx.send(true).unwrap();
    };
    let (http, cfg, limits, messages) = (http_client(), config(&p), Limits::default(), ask());
    let (got, ()) = tokio::join!(
        stream_chat(&http, &cfg, &limits, &messages, rx, |_| pieces += 1),
        cancel_after_two
    );
    assert!(matches!(got, Err(ProviderError::Cancelled)), "{got:?}");
    assert!((1..10).contains(&pieces), "{pieces}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_provider_that_is_not_there_is_named_in_the_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = ProviderConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        model: "m".into(),
        key: None,
    };
    let (_tx, rx) = watch::channel(false);
    let err = stream_chat(&http_client(), &c, &Limits::default(), &ask(), rx, |_| {})
        .await
        .unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains(&format!(
            "cannot reach the provider at http://127.0.0.1:{port}/v1/chat/completions"
        )),
        "{said}"
    );
    assert!(said.contains("check --provider-url"), "{said}");
}
