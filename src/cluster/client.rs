//! kube clients whose connections send each write at once (TCP_NODELAY).
//!
//! kube-client 5 leaves Nagle's algorithm on (kube-rs/kube#2056, open). A request
//! that leaves in two writes (a TLS handshake with a client certificate, headers then
//! a body) then holds the second until the API server ACKs the first, and the server
//! delays that ACK by 40 ms. Measured here: the first request on a connection took
//! 44–49 ms, the next 1–2 ms; a LocalSubjectAccessReview 42–52 ms. So kubelab builds
//! the client stack kube's `ClientBuilder` builds (minus its tracing spans, which
//! nothing here reads), on a connector with TCP_NODELAY, as Go's net/http always has.

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::client::retry::RetryPolicy;
use tower::ServiceBuilder;
use tower::retry::RetryLayer;

/// A client for `config`, as `kube::Client::try_from` makes it, whose connections
/// send at once. Through a proxy, kube's own client (its proxy connectors).
pub fn from_config(config: kube::Config) -> Result<kube::Client, kube::Error> {
    if config.proxy_url.is_some() {
        return kube::Client::try_from(config);
    }
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let https = config.rustls_https_connector_with_connector(tcp)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(http);
    Ok(kube::Client::new(service, config.default_namespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// The client's connection has TCP_NODELAY: a plain-HTTP server reads the request
    /// and checks the option on its peer's socket through /proc (the client side is
    /// in this process), then answers as the API server would.
    #[tokio::test]
    async fn the_clients_connections_have_nodelay() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, peer) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).unwrap();
            let nodelay = client_socket_nodelay(peer.port());
            let body = r#"{"major":"1","minor":"35","gitVersion":"v1.35.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            nodelay
        });
        let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
        let client = from_config(config).unwrap();
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(version.git_version, "v1.35.0");
        assert_eq!(server.join().unwrap(), Some(true));
    }

    /// Whether this process's socket bound to local port `port` has TCP_NODELAY.
    fn client_socket_nodelay(port: u16) -> Option<bool> {
        for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
            let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if !is_socket {
                continue;
            }
            // SAFETY: the fd is only asked about (getsockname, getsockopt); should
            // another test close it meanwhile, those calls fail, nothing else.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let socket = socket2::SockRef::from(&fd);
            let local = socket.local_addr().ok().and_then(|a| a.as_socket());
            if local.map(|a| a.port()) == Some(port) {
                return socket.tcp_nodelay().ok();
            }
        }
        None
    }
}
