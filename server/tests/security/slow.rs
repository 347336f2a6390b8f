//! Slow and idle HTTP clients: 200 connections that never finish their headers are
//! closed after the header timeout, and a kept-alive connection idle that long too,
//! while others are served; one address holds at most its share of connections.

use crate::common::{http, start_server_with};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the server closed the connection (EOF or reset) within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // a 408 or the like before the close
        }
    }
}

#[tokio::test]
async fn two_hundred_half_open_requests_are_closed_and_others_are_served() {
    let server = start_server_with(|c| {
        c.http.header_timeout_ms = 1_000;
        c.http.idle_timeout_ms = 1_500;
    })
    .await;
    let mut half_open = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Slow: ", server.addr).as_bytes()).await.unwrap();
        half_open.push(s);
    }
    let started = Instant::now();
    let ok = http().get(server.http_url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200, "served while 200 requests hang");
    for s in &mut half_open {
        assert!(closed_within(s, Duration::from_secs(5)).await, "a half-open request was left open");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "closed after the 1 s header timeout");

    // a kept-alive connection that sends nothing more is closed after the idle timeout
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes()).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await, "an idle keep-alive connection is closed");
    // but one that is used keeps going past the first request's timeout
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..3 {
        kept.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes()).await.unwrap();
        let n = kept.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "kept alive");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_connections() {
    let server = start_server_with(|c| c.http.max_connections_per_ip = 20).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut c = crate::common::Client::connect(&server.ws_url("/ws")).await;
        c.expect_type("hello").await;
        held.push(c);
    }
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let _ = extra.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503") && answer.contains("too_many_connections"), "{answer}");
    let metrics_before_release = held.len();
    for c in held.drain(..) {
        c.close().await;
    }
    assert_eq!(metrics_before_release, 20);
    // the WebSockets' places are given back when they close
    let mut served = false;
    for _ in 0..50 {
        if http().get(server.http_url("/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "served again once the address's connections closed");
    server.stop().await;
}
