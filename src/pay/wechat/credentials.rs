//! The merchant's WeChat Pay credentials, loaded from `payments.wechat.*`: the merchant API
//! key and certificate serial, the APIv3 key, and (public-key mode) the WeChat Pay public key
//! with its `PUB_KEY_ID_…`. Without that public key the client runs in certificate mode.
//! Errors name the configuration key, never secret bytes; `Debug` redacts the APIv3 key.
//! https://pay.weixin.qq.com/doc/v3/merchant/4012791874

use crate::config;
use crate::pay::keys::{KeyError, PrivateKey, PublicKey};
use crate::pay::wechat::sign::PUBLIC_KEY_ID_PREFIX;

/// The merchant's credentials and the keys that verify WeChat Pay.
pub struct WechatCredentials {
    pub mchid: String,
    pub appid: String,
    pub merchant_serial_no: String,
    pub merchant_key: PrivateKey,
    /// The 32-byte APIv3 key (AES-256-GCM key of notification resources).
    pub api_v3_key: [u8; 32],
    /// `PUB_KEY_ID_…` of the WeChat Pay public key (public-key mode); empty if none.
    pub platform_public_key_id: String,
    pub platform_public_key: Option<PublicKey>,
}

impl std::fmt::Debug for WechatCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatCredentials")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("merchant_serial_no", &self.merchant_serial_no)
            .field("api_v3_key", &"[redacted]")
            .field("platform_public_key_id", &self.platform_public_key_id)
            .finish_non_exhaustive()
    }
}

fn key_error(key: &str, problem: &str) -> KeyError {
    KeyError {
        key: key.to_string(),
        problem: problem.to_string(),
    }
}

impl WechatCredentials {
    /// Loads the key files named by `payments.wechat.*`. Without `platform_public_key_path`
    /// the client runs in platform-certificate mode (keys downloaded from `/v3/certificates`).
    pub fn from_config(c: &config::Wechat) -> Result<Self, KeyError> {
        for (key, value) in [
            ("payments.wechat.mchid", &c.mchid),
            ("payments.wechat.appid", &c.appid),
            ("payments.wechat.merchant_serial_no", &c.merchant_serial_no),
        ] {
            if value.trim().is_empty() {
                return Err(key_error(key, "is not set"));
            }
        }
        let api_v3_key: [u8; 32] = c.api_v3_key.expose().as_bytes().try_into().map_err(|_| {
            key_error(
                "payments.wechat.api_v3_key",
                "must be exactly 32 bytes: the APIv3 key set in the merchant platform (API安全)",
            )
        })?;
        let merchant_key = PrivateKey::load(
            &c.merchant_private_key_path,
            "payments.wechat.merchant_private_key_path",
        )?;
        let has_key_file = !c.platform_public_key_path.as_os_str().is_empty();
        let key_id = c.platform_public_key_id.trim();
        let platform_public_key = match (has_key_file, key_id.is_empty()) {
            (false, true) => None,
            (true, false) if key_id.starts_with(PUBLIC_KEY_ID_PREFIX) => Some(PublicKey::load(
                &c.platform_public_key_path,
                "payments.wechat.platform_public_key_path",
            )?),
            (true, false) => {
                return Err(key_error(
                    "payments.wechat.platform_public_key_id",
                    "must start with PUB_KEY_ID_ (the id shown next to the WeChat Pay public key)",
                ));
            }
            (true, true) => {
                return Err(key_error(
                    "payments.wechat.platform_public_key_id",
                    "is not set while platform_public_key_path is; copy the PUB_KEY_ID_… shown with the key",
                ));
            }
            (false, false) => {
                return Err(key_error(
                    "payments.wechat.platform_public_key_path",
                    "is not set while platform_public_key_id is; point it at pub_key.pem",
                ));
            }
        };
        Ok(WechatCredentials {
            mchid: c.mchid.trim().to_string(),
            appid: c.appid.trim().to_string(),
            merchant_serial_no: c.merchant_serial_no.trim().to_string(),
            merchant_key,
            api_v3_key,
            platform_public_key_id: if platform_public_key.is_some() {
                key_id.to_string()
            } else {
                String::new()
            },
            platform_public_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::Secret;
    use crate::pay::wechat::crypto::random_string;

    fn config(dir: &std::path::Path) -> config::Wechat {
        let key_path = dir.join("apiclient_key.pem");
        std::fs::write(&key_path, PrivateKey::generate().to_pkcs8_pem()).unwrap();
        let pub_path = dir.join("pub_key.pem");
        std::fs::write(&pub_path, PrivateKey::generate().public_key_pem()).unwrap();
        config::Wechat {
            mchid: "1900000109".into(),
            appid: "wxd678efh567hg6787".into(),
            merchant_serial_no: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1".into(),
            merchant_private_key_path: key_path,
            api_v3_key: secret("a-32-byte-api-v3-key-for-testing"),
            platform_public_key_path: pub_path,
            platform_public_key_id: "PUB_KEY_ID_0114232134912410000000000001".into(),
            ..config::Wechat::default()
        }
    }

    fn secret(text: &str) -> Secret {
        serde_json::from_value(serde_json::Value::String(text.into())).unwrap()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zhifu-wechat-{name}-{}", random_string(8)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn credentials_load_from_config_in_public_key_mode() {
        let dir = temp_dir("ok");
        let credentials = WechatCredentials::from_config(&config(&dir)).unwrap();
        assert_eq!(&credentials.api_v3_key, b"a-32-byte-api-v3-key-for-testing");
        assert!(credentials.platform_public_key.is_some());
        assert!(
            !format!("{credentials:?}").contains("a-32-byte"),
            "Debug must not show the APIv3 key"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn credentials_without_a_public_key_mean_certificate_mode() {
        let dir = temp_dir("cert");
        let mut c = config(&dir);
        c.platform_public_key_path = PathBuf::new();
        c.platform_public_key_id = String::new();
        let credentials = WechatCredentials::from_config(&c).unwrap();
        assert!(credentials.platform_public_key.is_none());
        assert_eq!(credentials.platform_public_key_id, "");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn credential_errors_name_the_key_and_never_the_secret() {
        let dir = temp_dir("bad");
        let mut c = config(&dir);
        c.api_v3_key = secret("too-short-secret-value");
        let err = WechatCredentials::from_config(&c).unwrap_err();
        assert_eq!(err.key, "payments.wechat.api_v3_key");
        assert!(!err.to_string().contains("too-short-secret-value"), "{err}");

        let mut c = config(&dir);
        c.platform_public_key_id = "0114232134912410000000000001".into();
        assert_eq!(
            WechatCredentials::from_config(&c).unwrap_err().key,
            "payments.wechat.platform_public_key_id"
        );

        let mut c = config(&dir);
        c.platform_public_key_id = String::new();
        assert_eq!(
            WechatCredentials::from_config(&c).unwrap_err().key,
            "payments.wechat.platform_public_key_id"
        );

        let mut c = config(&dir);
        c.platform_public_key_path = PathBuf::new();
        assert_eq!(
            WechatCredentials::from_config(&c).unwrap_err().key,
            "payments.wechat.platform_public_key_path"
        );

        let mut c = config(&dir);
        c.merchant_private_key_path = dir.join("missing.pem");
        let err = WechatCredentials::from_config(&c).unwrap_err();
        assert_eq!(err.key, "payments.wechat.merchant_private_key_path");

        let mut c = config(&dir);
        c.mchid = String::new();
        assert_eq!(
            WechatCredentials::from_config(&c).unwrap_err().key,
            "payments.wechat.mchid"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
