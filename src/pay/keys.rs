//! RSA keys for the providers: loading PEM (PKCS#8 or PKCS#1 private keys, SPKI or PKCS#1
//! public keys) or the bare base64 bodies the providers' consoles hand out; SHA256withRSA
//! (PKCS#1 v1.5) signing and verification with aws-lc-rs. Errors name the key, never its bytes.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Why a key could not be used; `key` is the configuration key that names the file.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct KeyError {
    pub key: String,
    pub problem: String,
}

fn key_error(key: &str, problem: impl Into<String>) -> KeyError {
    KeyError {
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// A private RSA key that signs SHA256withRSA (PKCS#1 v1.5).
pub struct PrivateKey(KeyPair);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

/// A public RSA key that verifies SHA256withRSA (PKCS#1 v1.5), parsed once.
pub struct PublicKey(ParsedPublicKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey")
    }
}

/// The DER inside PEM armour, or the bytes of a bare base64 body; `Err` names the PEM label
/// when it is one we cannot use.
fn der_from_text(text: &[u8], key: &str, accepted: &[&str]) -> Result<Vec<u8>, KeyError> {
    let text = std::str::from_utf8(text).map_err(|_| key_error(key, "the file is not PEM or base64 text"))?;
    let mut label = None;
    let mut body = String::with_capacity(text.len());
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            if label.is_some() {
                break;
            }
            label = Some(rest.trim_end_matches('-').trim().to_string());
        } else if line.starts_with("-----END ") {
            break;
        } else if label.is_some() || !line.contains(':') {
            body.push_str(line);
        }
    }
    if let Some(label) = &label
        && !accepted.contains(&label.as_str())
    {
        let hint = match label.as_str() {
            "CERTIFICATE" => "; this is a certificate: extract its key with `openssl x509 -pubkey -noout -in FILE`",
            "ENCRYPTED PRIVATE KEY" => "; decrypt it first with `openssl pkcs8 -in FILE -out KEY.pem`",
            _ => "",
        };
        return Err(key_error(
            key,
            format!(
                "holds a PEM \"{label}\" block; expected one of {}{hint}",
                accepted.join(", ")
            ),
        ));
    }
    if body.is_empty() {
        return Err(key_error(key, "the file holds no key"));
    }
    BASE64
        .decode(body.as_bytes())
        .map_err(|_| key_error(key, "the key is neither PEM nor valid base64"))
}

/// Reads `path` for configuration key `key`, with errors that say which key and what to do.
fn read_key_file(path: &Path, key: &str) -> Result<Vec<u8>, KeyError> {
    if path.as_os_str().is_empty() {
        return Err(key_error(key, "is not set; point it at the key file"));
    }
    std::fs::read(path).map_err(|e| key_error(key, format!("cannot read {}: {e}", path.display())))
}

impl PrivateKey {
    /// Parses PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM, or a bare base64 body.
    pub fn from_text(text: &[u8], key: &str) -> Result<Self, KeyError> {
        let der = der_from_text(text, key, &["PRIVATE KEY", "RSA PRIVATE KEY"])?;
        let pair = KeyPair::from_pkcs8(&der)
            .or_else(|_| KeyPair::from_der(&der))
            .map_err(|e| key_error(key, format!("not a usable RSA private key ({e})")))?;
        if pair.public_modulus_len() < 256 {
            return Err(key_error(key, "RSA keys shorter than 2048 bits are refused"));
        }
        Ok(PrivateKey(pair))
    }

    /// Loads the key file named by configuration key `key`.
    pub fn load(path: &Path, key: &str) -> Result<Self, KeyError> {
        Self::from_text(&read_key_file(path, key)?, key)
    }

    /// A new random 2048-bit key (for the sandbox and tests).
    pub fn generate() -> Self {
        PrivateKey(KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation does not fail"))
    }

    /// SHA256withRSA (PKCS#1 v1.5) over `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("signing with a valid key into a buffer of the modulus size does not fail");
        signature
    }

    /// [`sign`](Self::sign), base64-encoded as both providers send it.
    pub fn sign_base64(&self, message: &[u8]) -> String {
        BASE64.encode(self.sign(message))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_der(&self.public_key_der(), "generated key").expect("our own public key parses")
    }

    /// The public key as SPKI DER.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.0
            .public_key()
            .as_der()
            .expect("an RSA public key encodes")
            .as_ref()
            .to_vec()
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> String {
        pem("PUBLIC KEY", &self.public_key_der())
    }

    /// The private key as PKCS#8 PEM (for writing sandbox key files).
    pub fn to_pkcs8_pem(&self) -> String {
        let der = self.0.as_der().expect("an RSA key encodes as PKCS#8");
        pem("PRIVATE KEY", der.as_ref())
    }
}

impl PublicKey {
    /// Parses SPKI (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`) PEM, or a bare base64 body.
    pub fn from_text(text: &[u8], key: &str) -> Result<Self, KeyError> {
        Self::from_der(&der_from_text(text, key, &["PUBLIC KEY", "RSA PUBLIC KEY"])?, key)
    }

    /// Parses SPKI or PKCS#1 DER.
    pub fn from_der(der: &[u8], key: &str) -> Result<Self, KeyError> {
        ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
            .map(PublicKey)
            .map_err(|e| key_error(key, format!("not a usable RSA public key ({e})")))
    }

    /// Loads the key file named by configuration key `key`.
    pub fn load(path: &Path, key: &str) -> Result<Self, KeyError> {
        Self::from_text(&read_key_file(path, key)?, key)
    }

    /// True when `signature` is a valid SHA256withRSA signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify_sig(message, signature).is_ok()
    }

    /// [`verify`](Self::verify) with a base64 signature; malformed base64 is simply invalid.
    pub fn verify_base64(&self, message: &[u8], signature: &str) -> bool {
        BASE64
            .decode(signature.trim())
            .is_ok_and(|sig| self.verify(message, &sig))
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_signs_and_its_public_key_verifies_in_every_encoding() {
        let key = PrivateKey::generate();
        let sig = key.sign_base64(b"message");
        let from_pem = PublicKey::from_text(key.public_key_pem().as_bytes(), "k").unwrap();
        assert!(from_pem.verify_base64(b"message", &sig));
        let bare = BASE64.encode(key.public_key_der());
        let from_bare = PublicKey::from_text(bare.as_bytes(), "k").unwrap();
        assert!(from_bare.verify_base64(b"message", &sig));
        assert!(!from_bare.verify_base64(b"messagE", &sig));
        assert!(!from_bare.verify_base64(b"message", "not base64!"));

        let reloaded = PrivateKey::from_text(key.to_pkcs8_pem().as_bytes(), "k").unwrap();
        assert_eq!(
            reloaded.sign(b"m"),
            key.sign(b"m"),
            "PKCS#1 v1.5 signatures are deterministic"
        );
        let bare_private = key
            .to_pkcs8_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        assert!(PrivateKey::from_text(bare_private.as_bytes(), "k").is_ok());
    }

    #[test]
    fn errors_name_the_key_and_never_the_bytes() {
        let err = PublicKey::from_text(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "payments.x",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("payments.x: "), "{err}");
        assert!(err.to_string().contains("openssl x509"), "{err}");
        let err = PrivateKey::from_text(b"c2VjcmV0LWJ5dGVz", "payments.y").unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
        let err = PrivateKey::load(Path::new(""), "payments.z").unwrap_err();
        assert!(err.to_string().contains("not set"), "{err}");
    }
}
