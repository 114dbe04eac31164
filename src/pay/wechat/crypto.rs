//! AEAD_AES_256_GCM, the cipher of every encrypted `resource` WeChat Pay sends (notifications,
//! downloaded platform certificates): key = the 32-byte APIv3 key, nonce = `resource.nonce`
//! (12 ASCII bytes), AAD = `associated_data`, ciphertext = base64 of the sealed bytes with the
//! 16-byte tag at the end. Random nonces and strings for signing live here too.
//! https://pay.weixin.qq.com/wiki/doc/apiv3_partner/wechatpay/wechatpay4_2.shtml (证书和回调报文解密)

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// The only algorithm WeChat Pay uses for resources.
pub const AEAD_AES_256_GCM: &str = "AEAD_AES_256_GCM";

/// An encrypted `resource` object as WeChat Pay sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedResource {
    /// Must be `AEAD_AES_256_GCM`.
    pub algorithm: String,
    /// Base64 of ciphertext ‖ 16-byte tag.
    pub ciphertext: String,
    /// The AAD; WeChat sends `transaction`, `refund`, `certificate` or an empty string.
    #[serde(default)]
    pub associated_data: String,
    /// 12 ASCII characters.
    pub nonce: String,
    /// What the plaintext is (`transaction`, `refund`); absent on certificates.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub original_type: String,
}

/// Why a resource could not be opened. Says nothing about the key or the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the resource algorithm is not AEAD_AES_256_GCM")]
    Algorithm,
    #[error("the resource nonce is not 12 bytes")]
    Nonce,
    #[error("the resource ciphertext is not base64")]
    Base64,
    #[error("the resource does not authenticate under the APIv3 key")]
    Open,
    #[error("the plaintext is too long to seal")]
    Seal,
}

impl EncryptedResource {
    /// Checks the algorithm, then opens the resource with the APIv3 key.
    pub fn decrypt(&self, api_v3_key: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        if self.algorithm != AEAD_AES_256_GCM {
            return Err(CryptoError::Algorithm);
        }
        decrypt(api_v3_key, &self.nonce, &self.associated_data, &self.ciphertext)
    }

    /// Seals `plaintext` under a fresh random nonce (the emulator's side).
    pub fn encrypt(api_v3_key: &[u8; 32], associated_data: &str, original_type: &str, plaintext: &[u8]) -> Self {
        let nonce = random_string(NONCE_LEN);
        let ciphertext = encrypt(api_v3_key, &nonce, associated_data, plaintext)
            .expect("a NONCE_LEN nonce and a plaintext far below AES-GCM's 64 GiB limit seal");
        EncryptedResource {
            algorithm: AEAD_AES_256_GCM.to_string(),
            ciphertext,
            associated_data: associated_data.to_string(),
            nonce,
            original_type: original_type.to_string(),
        }
    }
}

fn aead_key(api_v3_key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, api_v3_key).expect("a 32-byte key is an AES-256 key"))
}

/// Opens base64 `ciphertext` (tag at the end) with `nonce` and `associated_data`.
pub fn decrypt(
    api_v3_key: &[u8; 32],
    nonce: &str,
    associated_data: &str,
    ciphertext: &str,
) -> Result<Vec<u8>, CryptoError> {
    let nonce = Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| CryptoError::Nonce)?;
    let mut sealed = BASE64.decode(ciphertext.trim()).map_err(|_| CryptoError::Base64)?;
    let plaintext = aead_key(api_v3_key)
        .open_in_place(nonce, Aad::from(associated_data.as_bytes()), &mut sealed)
        .map_err(|_| CryptoError::Open)?;
    Ok(plaintext.to_vec())
}

/// Seals `plaintext`; returns base64 of ciphertext ‖ tag. `nonce` must be 12 bytes.
pub fn encrypt(
    api_v3_key: &[u8; 32],
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> Result<String, CryptoError> {
    let nonce = Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| CryptoError::Nonce)?;
    let mut sealed = plaintext.to_vec();
    aead_key(api_v3_key)
        .seal_in_place_append_tag(nonce, Aad::from(associated_data.as_bytes()), &mut sealed)
        .map_err(|_| CryptoError::Seal)?;
    Ok(BASE64.encode(sealed))
}

/// `len` random characters from `[0-9A-Za-z]`, for nonces and ids.
pub fn random_string(len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    random_bytes(len)
        .into_iter()
        // 256 = 4 × 62 + 8: the tiny bias toward the first 8 characters does not matter for
        // nonces, which need uniqueness, not uniformity.
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// `len` random decimal digits.
pub fn random_digits(len: usize) -> String {
    random_bytes(len)
        .into_iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// `len` bytes from the system CSPRNG.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    SystemRandom::new()
        .fill(&mut out)
        .expect("the system random generator does not fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pay::wechat::fixtures;

    #[test]
    fn opens_a_resource_sealed_by_python_cryptography() {
        let plaintext = decrypt(
            fixtures::API_V3_KEY,
            fixtures::GCM_NONCE,
            fixtures::GCM_AAD,
            fixtures::GCM_CIPHERTEXT,
        )
        .unwrap();
        assert_eq!(plaintext, fixtures::GCM_PLAINTEXT.as_bytes());
    }

    #[test]
    fn seals_exactly_as_python_cryptography_does() {
        let sealed = encrypt(
            fixtures::API_V3_KEY,
            fixtures::GCM_NONCE,
            fixtures::GCM_AAD,
            fixtures::GCM_PLAINTEXT.as_bytes(),
        );
        assert_eq!(sealed.as_deref(), Ok(fixtures::GCM_CIPHERTEXT));
        assert_eq!(
            encrypt(fixtures::API_V3_KEY, "short", "", b"x"),
            Err(CryptoError::Nonce)
        );
    }

    #[test]
    fn a_wrong_key_aad_nonce_or_a_flipped_bit_does_not_open() {
        let mut wrong_key = *fixtures::API_V3_KEY;
        wrong_key[0] ^= 1;
        let open = |key: &[u8; 32], nonce: &str, aad: &str, ct: &str| decrypt(key, nonce, aad, ct);
        let k = fixtures::API_V3_KEY;
        let (n, a, c) = (fixtures::GCM_NONCE, fixtures::GCM_AAD, fixtures::GCM_CIPHERTEXT);
        assert_eq!(open(&wrong_key, n, a, c), Err(CryptoError::Open));
        assert_eq!(open(k, n, "refund", c), Err(CryptoError::Open));
        assert_eq!(open(k, "fixtureNoncf", a, c), Err(CryptoError::Open));
        assert_eq!(open(k, "short", a, c), Err(CryptoError::Nonce));
        assert_eq!(open(k, n, a, "not base64!"), Err(CryptoError::Base64));
        let mut bytes = BASE64.decode(c).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;
        assert_eq!(open(k, n, a, &BASE64.encode(&bytes)), Err(CryptoError::Open));
        assert_eq!(open(k, n, a, ""), Err(CryptoError::Open), "shorter than a tag");
    }

    #[test]
    fn a_resource_round_trips_and_refuses_another_algorithm() {
        let key = [7u8; 32];
        let mut resource = EncryptedResource::encrypt(&key, "transaction", "transaction", b"{\"a\":1}");
        assert_eq!(resource.nonce.len(), 12);
        assert_eq!(resource.decrypt(&key).unwrap(), b"{\"a\":1}");
        resource.algorithm = "AEAD_SM4_GCM".into();
        assert_eq!(resource.decrypt(&key), Err(CryptoError::Algorithm));
    }

    #[test]
    fn random_strings_have_the_asked_length_and_alphabet_and_differ() {
        let a = random_string(32);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_string(32));
        assert!(random_digits(20).bytes().all(|b| b.is_ascii_digit()));
    }
}
