//! Pure pieces of authentication: the SASL mechanism choice and the `tls-server-end-point`
//! channel-binding hash (RFC 5929). The exchange itself runs in `connection.rs`; SCRAM and MD5
//! come from postgres-protocol.

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

pub(crate) const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub(crate) const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// RFC 5929 §4.1: hash the server's certificate with the hash of its signature algorithm, except
/// that MD5 and SHA-1 become SHA-256. `None` for algorithms without a defined hash (Ed25519,
/// RSA-PSS): PostgreSQL cannot bind those either.
pub fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    let oid = signature_algorithm_oid(cert_der)?;
    // Content bytes of the DER OIDs.
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    const DSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];
    const DSA_SHA2: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
    enum H {
        S224,
        S256,
        S384,
        S512,
    }
    let h = if let Some(last) = oid.strip_prefix(RSA) {
        match last {
            [4] | [5] | [11] => H::S256, // md5, sha1, sha256 WithRSAEncryption
            [12] => H::S384,
            [13] => H::S512,
            [14] => H::S224,
            _ => return None,
        }
    } else if let Some(last) = oid.strip_prefix(ECDSA_SHA2) {
        match last {
            [1] => H::S224,
            [2] => H::S256,
            [3] => H::S384,
            [4] => H::S512,
            _ => return None,
        }
    } else if oid == ECDSA_SHA1 || oid == DSA_SHA1 {
        H::S256
    } else if let Some(last) = oid.strip_prefix(DSA_SHA2) {
        match last {
            [1] => H::S224,
            [2] => H::S256,
            _ => return None,
        }
    } else {
        return None;
    };
    Some(match h {
        H::S224 => Sha224::digest(cert_der).to_vec(),
        H::S256 => Sha256::digest(cert_der).to_vec(),
        H::S384 => Sha384::digest(cert_der).to_vec(),
        H::S512 => Sha512::digest(cert_der).to_vec(),
    })
}

/// One DER TLV: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, rest.get(n..)?)
    };
    let contents = rest.get(..len)?;
    Some((tag, contents, rest.get(len..)?))
}

/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signature }
fn signature_algorithm_oid(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (tag, cert, _) = der(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _tbs, rest) = der(cert)?;
    let (tag, alg, _) = der(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, oid, _) = der(alg)?;
    (tag == OID).then_some(oid)
}

/// Which SASL mechanism to use: SCRAM-SHA-256-PLUS when offered over TLS and the channel binding
/// can be computed (unless disabled), else SCRAM-SHA-256.
pub(crate) fn choose_mechanism(
    offered: &[&str],
    binding_available: bool,
    binding_disabled: bool,
) -> Option<&'static str> {
    if binding_available && !binding_disabled && offered.contains(&SCRAM_SHA_256_PLUS) {
        Some(SCRAM_SHA_256_PLUS)
    } else if offered.contains(&SCRAM_SHA_256) {
        Some(SCRAM_SHA_256)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_point_hash_follows_signature_algorithm() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        assert_eq!(
            tls_server_end_point(&der).unwrap(),
            Sha384::digest(&der).to_vec()
        );
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        assert_eq!(
            tls_server_end_point(&der).unwrap(),
            Sha256::digest(&der).to_vec()
        );
        assert_eq!(tls_server_end_point(b"\x30\x03garbage"), None);
        assert_eq!(tls_server_end_point(&[]), None);
    }

    #[test]
    fn mechanism_choice() {
        let both = [SCRAM_SHA_256_PLUS, SCRAM_SHA_256];
        assert_eq!(
            choose_mechanism(&both, true, false),
            Some(SCRAM_SHA_256_PLUS)
        );
        assert_eq!(choose_mechanism(&both, false, false), Some(SCRAM_SHA_256));
        assert_eq!(choose_mechanism(&both, true, true), Some(SCRAM_SHA_256));
        assert_eq!(choose_mechanism(&["OTHER"], true, false), None);
    }
}
