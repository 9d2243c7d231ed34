//! rustls client configuration per sslmode (ring provider).
//!
//! libpq's rules: `require` (and `prefer`/`allow`) encrypt without checking the certificate unless a
//! root certificate is given, in which case they check the chain like `verify-ca`; `verify-ca`
//! checks the chain but not the host name; `verify-full` checks both. `sslrootcert=system` uses the
//! operating system's trust store.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::config::{Config, RootCert, SslMode};
use super::error::Error;

fn tls_err(context: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Tls {
        context: context.into(),
        message: message.into(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_roots(root: &RootCert) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // Some system bundles carry certificates webpki cannot parse; libpq skips them too.
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err(tls_err(
                    "loading sslrootcert=system",
                    format!(
                        "no usable certificates in the system trust store ({} errors)",
                        found.errors.len()
                    ),
                ));
            }
        }
        RootCert::File(path) => {
            let ctx = || format!("reading sslrootcert {}", path.display());
            let iter =
                CertificateDer::pem_file_iter(path).map_err(|e| tls_err(ctx(), e.to_string()))?;
            for cert in iter {
                let cert = cert.map_err(|e| tls_err(ctx(), e.to_string()))?;
                store.add(cert).map_err(|e| tls_err(ctx(), e.to_string()))?;
            }
            if store.is_empty() {
                return Err(tls_err(ctx(), "the file holds no PEM certificate"));
            }
        }
    }
    Ok(store)
}

fn load_client_auth(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let cctx = || format!("reading sslcert {}", cert.display());
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls_err(cctx(), e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(cctx(), e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err(cctx(), "the file holds no PEM certificate"));
    }
    let kctx = || format!("reading sslkey {}", key.display());
    let text = std::fs::read(key).map_err(|e| tls_err(kctx(), e.to_string()))?;
    if text.windows(9).any(|w| w == b"ENCRYPTED") {
        return Err(tls_err(
            kctx(),
            "encrypted private keys (sslpassword) are not supported; provide an unencrypted key",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|e| tls_err(kctx(), e.to_string()))?;
    Ok((certs, key))
}

/// The rustls configuration for `cfg`, or `None` when sslmode=disable.
pub(crate) fn client_config(cfg: &Config) -> Result<Option<Arc<ClientConfig>>, Error> {
    if cfg.ssl_mode == SslMode::Disable {
        return Ok(None);
    }
    if cfg.ssl_password().is_some() {
        return Err(tls_err(
            "configuring TLS",
            "sslpassword is not supported: encrypted private keys cannot be used; provide an unencrypted key",
        ));
    }
    let provider = provider();
    let roots = match (&cfg.ssl_root_cert, cfg.ssl_mode) {
        (Some(r), _) => Some(Arc::new(load_roots(r)?)),
        (None, SslMode::VerifyCa | SslMode::VerifyFull) => {
            return Err(tls_err(
                "configuring TLS",
                format!(
                    "sslmode={} needs a root certificate: set sslrootcert to a CA file or to \"system\"",
                    cfg.ssl_mode.as_str()
                ),
            ))
        }
        (None, _) => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        None => Arc::new(NoVerification(provider.clone())),
        Some(roots) => {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| tls_err("configuring TLS", e.to_string()))?;
            if cfg.ssl_mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("configuring TLS", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&cfg.ssl_cert, &cfg.ssl_key) {
        (Some(cert), Some(key)) => {
            let (certs, key) = load_client_auth(cert, key)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_err("loading the client certificate", e.to_string()))?
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(tls_err(
                "configuring TLS",
                "sslcert and sslkey must be given together",
            ))
        }
        (None, None) => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

/// The name the certificate must match (verify-full) and SNI; IP literals stay addresses.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_string())
        .map_err(|e| tls_err(format!("using host name \"{host}\" for TLS"), e.to_string()))
}

/// `require` without a root certificate: encryption without authentication (libpq's rule).
/// Handshake signatures are still checked so the session keys belong to the presented certificate.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// verify-ca: the chain must lead to the root certificate; the host name is not checked. webpki
/// checks the chain before the name, so a name mismatch means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
