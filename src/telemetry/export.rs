//! The tracer, meter and logger providers, exporting over OTLP/HTTP (protobuf) as the Go plugin
//! SDK does: `--otel-endpoint` is `host:port`, requests go to `/v1/traces`, `/v1/metrics` and
//! `/v1/logs` over https, or http with `--otel-endpoint-insecure`; metrics every 15 s (the Go SDK's period),
//! cumulative (the CLI's receiver keeps each data point's latest value as the total).

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{
    LogExporter, MetricExporter, SpanExporter, WithExportConfig, WithHttpConfig,
};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

use super::http_client::{HttpClientError, OtlpHttpClient};

/// The Go SDK's metric export period.
const METRIC_INTERVAL: Duration = Duration::from_secs(15);
/// The standard variable that overrides it (milliseconds), e.g. for tests.
const METRIC_INTERVAL_ENV: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// One export attempt (with the exporter's retries) gives up after this.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("--otel-endpoint is empty")]
    EmptyEndpoint,
    #[error(transparent)]
    Client(#[from] HttpClientError),
    #[error("building the OTLP {signal} exporter for {url}: {source}")]
    Exporter {
        signal: &'static str,
        url: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

pub struct Providers {
    pub tracer: SdkTracerProvider,
    pub meter: SdkMeterProvider,
    pub logger: SdkLoggerProvider,
}

/// `--otel-endpoint` as the Go SDK takes it (`host:port`, no scheme); a URL with its own
/// `http://` or `https://` is taken as it is. Returns the base URL without a trailing slash.
pub fn base_url(endpoint: &str, insecure: bool) -> Result<String, TelemetryError> {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if endpoint.is_empty() {
        return Err(TelemetryError::EmptyEndpoint);
    }
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        return Ok(endpoint.to_string());
    }
    let scheme = if insecure { "http" } else { "https" };
    Ok(format!("{scheme}://{endpoint}"))
}

/// Must run inside the Tokio runtime the exports should use.
pub fn build(
    endpoint: &str,
    insecure: bool,
    plugin_name: &str,
    plugin_version: &str,
) -> Result<Providers, TelemetryError> {
    let base = base_url(endpoint, insecure)?;
    let client = OtlpHttpClient::new(EXPORT_TIMEOUT, base.starts_with("http://"))?;
    let resource = resource(plugin_name, plugin_version);

    let traces_url = format!("{base}/v1/traces");
    let spans = SpanExporter::builder()
        .with_http()
        .with_http_client(client.clone())
        .with_endpoint(traces_url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|source| TelemetryError::Exporter {
            signal: "trace",
            url: traces_url,
            source,
        })?;
    let tracer = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();

    let metrics_url = format!("{base}/v1/metrics");
    let metrics = MetricExporter::builder()
        .with_http()
        .with_http_client(client.clone())
        .with_endpoint(metrics_url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .with_temporality(Temporality::Cumulative)
        .build()
        .map_err(|source| TelemetryError::Exporter {
            signal: "metric",
            url: metrics_url,
            source,
        })?;
    let reader = PeriodicReader::builder(metrics)
        .with_interval(metric_interval())
        .build();
    let meter = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource.clone())
        .build();

    let logs_url = format!("{base}/v1/logs");
    let logs = LogExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(logs_url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|source| TelemetryError::Exporter {
            signal: "log",
            url: logs_url,
            source,
        })?;
    let logger = SdkLoggerProvider::builder()
        .with_batch_exporter(logs)
        .with_resource(resource)
        .build();
    Ok(Providers {
        tracer,
        meter,
        logger,
    })
}

fn metric_interval() -> Duration {
    std::env::var(METRIC_INTERVAL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(METRIC_INTERVAL, Duration::from_millis)
}

/// The Go SDK's resource: the SDK defaults plus `service.name` `cloudquery-<plugin>`,
/// `service.version` and `cloudquery.plugin.path` `<team>/<kind>/<name>`.
fn resource(plugin_name: &str, plugin_version: &str) -> Resource {
    Resource::builder()
        .with_service_name(format!("cloudquery-{plugin_name}"))
        .with_attributes([
            KeyValue::new("service.version", plugin_version.to_string()),
            KeyValue::new(
                "cloudquery.plugin.path",
                format!("cloudquery/source/{plugin_name}"),
            ),
        ])
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_as_the_go_sdk_takes_it() {
        assert_eq!(
            base_url("localhost:4318", true).ok().as_deref(),
            Some("http://localhost:4318")
        );
        assert_eq!(
            base_url("collector:4318/", false).ok().as_deref(),
            Some("https://collector:4318")
        );
        assert_eq!(
            base_url("http://c:1", false).ok().as_deref(),
            Some("http://c:1")
        );
        assert!(matches!(
            base_url("  ", true),
            Err(TelemetryError::EmptyEndpoint)
        ));
    }
}
