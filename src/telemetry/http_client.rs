//! The HTTP client the OTLP exporters post through: hyper with rustls, on the plugin's own
//! Tokio runtime.
//!
//! The SDK's batch span processor and periodic metric reader export from threads of their own
//! and drive the export future with a plain executor, where hyper's connections (which need
//! Tokio's reactor) cannot run. Each request is therefore spawned onto the runtime whose handle
//! the client keeps, and the exporter's thread only waits for its result.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// A collector's answer is a small protobuf message; anything larger is not one.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("loading the system's root certificates for the OTLP endpoint: {0}")]
    Roots(#[source] std::io::Error),
    #[error("there is no Tokio runtime to run the OTLP exporter's requests on")]
    NoRuntime,
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("OTLP request to {uri} timed out after {timeout:?}")]
    Timeout { uri: String, timeout: Duration },
    #[error("OTLP request to {uri}: {source}")]
    Request {
        uri: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("reading the OTLP response from {uri}: {message}")]
    Body { uri: String, message: String },
    #[error("the OTLP request task ended early: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Posts OTLP requests over `http://` or `https://` (the system's root certificates).
#[derive(Debug, Clone)]
pub struct OtlpHttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

impl OtlpHttpClient {
    /// Must be called from within the runtime the requests should run on. With `insecure`
    /// (plain http) a machine without root certificates is no error.
    pub fn new(timeout: Duration, insecure: bool) -> Result<OtlpHttpClient, HttpClientError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| HttpClientError::NoRuntime)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
                Ok(builder) => builder,
                // No usable system roots: plain http still works, and https fails per request
                // (logged as export errors) instead of failing the whole plugin.
                Err(e) if insecure => {
                    let config = rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                        .map_err(|e| HttpClientError::Roots(std::io::Error::other(e)))?
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth();
                    crate::log_debug!("no system root certificates", error = e.to_string());
                    HttpsConnectorBuilder::new().with_tls_config(config)
                }
                Err(e) => return Err(HttpClientError::Roots(e)),
            };
        let connector = builder.https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(OtlpHttpClient {
            client,
            runtime,
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for OtlpHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let task = self.runtime.spawn(async move {
            let uri = request.uri().to_string();
            let request = request.map(Full::new);
            let exchange = async {
                let response =
                    client
                        .request(request)
                        .await
                        .map_err(|source| SendError::Request {
                            uri: uri.clone(),
                            source,
                        })?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_RESPONSE_BYTES)
                    .collect()
                    .await
                    .map_err(|e| SendError::Body {
                        uri: uri.clone(),
                        message: e.to_string(),
                    })?
                    .to_bytes();
                Ok::<_, SendError>(Response::from_parts(parts, body))
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(SendError::Timeout { uri, timeout }),
            }
        });
        match task.await {
            Ok(result) => result.map_err(|e| Box::new(e) as HttpError),
            Err(e) => Err(Box::new(SendError::Task(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TLS set-up (ring, system roots or none) builds inside a runtime and refuses outside.
    #[test]
    fn builds_inside_a_runtime_only() {
        assert!(matches!(
            OtlpHttpClient::new(Duration::from_secs(1), true),
            Err(HttpClientError::NoRuntime)
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        assert!(OtlpHttpClient::new(Duration::from_secs(1), true).is_ok());
    }
}
