//! The start-up check of files that hold secrets: the providers' private keys, and the
//! configuration file when the APIv3 key or a database password is written in it. One that
//! group or others can read is logged as a warning naming the file, its mode and the fix.
//! It warns rather than refuses: a shared-group deployment may be deliberate.

use std::path::{Path, PathBuf};

use crate::config::{Config, Settings};

/// A secret-holding file that group or others can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LooseFile {
    /// The configuration key that names the file (or `--config` for the file itself).
    pub key: &'static str,
    pub path: PathBuf,
    /// The permission bits, e.g. `0o644`.
    pub mode: u32,
}

impl std::fmt::Display for LooseFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path.display();
        write!(
            f,
            "{path} ({}) has mode {:04o}: group or others can read a secret; fix: chmod 600 {path}",
            self.key, self.mode
        )
    }
}

/// The files that hold secrets under `settings` (key files only where their channel is on and
/// the sandbox is off; the config file only when a secret is written in it).
pub fn secret_files(settings: &Settings, config_file: Option<&Path>) -> Vec<(&'static str, PathBuf)> {
    let mut files = Vec::new();
    let payments = &settings.payments;
    if !payments.sandbox {
        let wechat = &payments.wechat;
        if wechat.enabled && !wechat.merchant_private_key_path.as_os_str().is_empty() {
            files.push((
                "payments.wechat.merchant_private_key_path",
                wechat.merchant_private_key_path.clone(),
            ));
        }
        let alipay = &payments.alipay;
        if alipay.enabled && !alipay.app_private_key_path.as_os_str().is_empty() {
            files.push((
                "payments.alipay.app_private_key_path",
                alipay.app_private_key_path.clone(),
            ));
        }
    }
    if let Some(file) = config_file
        && file_holds_a_secret(file)
    {
        files.push(("--config", file.to_path_buf()));
    }
    files
}

/// True when the configuration file itself (not the environment) sets the APIv3 key or a
/// database URL with a password.
fn file_holds_a_secret(file: &Path) -> bool {
    let Ok(read) = config::Config::builder()
        .add_source(config::File::from(file).format(config::FileFormat::Yaml))
        .build()
    else {
        return false;
    };
    let set = |key: &str| read.get_string(key).is_ok_and(|v| !v.trim().is_empty());
    let url_has_password = read.get_string("database.url").is_ok_and(|url| {
        url.parse::<tokio_postgres::Config>()
            .is_ok_and(|c| c.get_password().is_some_and(|p| !p.is_empty()))
    });
    set("payments.wechat.api_v3_key") || url_has_password
}

/// Those of `files` that group or others can read. Files that cannot be inspected are left to
/// the loading code, which names them in its own error.
pub fn loose(files: Vec<(&'static str, PathBuf)>) -> Vec<LooseFile> {
    use std::os::unix::fs::PermissionsExt;
    files
        .into_iter()
        .filter_map(|(key, path)| {
            let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o7777;
            (mode & 0o044 != 0).then_some(LooseFile { key, path, mode })
        })
        .collect()
}

/// Logs one warning per secret-holding file that group or others can read.
pub fn warn_loose(config: &Config) {
    for file in loose(secret_files(&config.settings, config.file.as_deref())) {
        tracing::warn!("{file}");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zhifu-secret-files-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn real_mode(merchant: &Path, app: &Path) -> Settings {
        let mut settings = Settings::default();
        settings.payments.sandbox = false;
        settings.payments.wechat.merchant_private_key_path = merchant.to_path_buf();
        settings.payments.alipay.app_private_key_path = app.to_path_buf();
        settings
    }

    #[test]
    fn private_keys_readable_by_group_or_others_are_named_with_mode_and_fix() {
        let dir = temp_dir("keys");
        let merchant = write(&dir, "apiclient_key.pem", "fake", 0o644);
        let app = write(&dir, "app_private_key.pem", "fake", 0o600);
        let found = loose(secret_files(&real_mode(&merchant, &app), None));
        assert_eq!(
            found,
            [LooseFile {
                key: "payments.wechat.merchant_private_key_path",
                path: merchant.clone(),
                mode: 0o644
            }]
        );
        let line = found[0].to_string();
        assert!(line.contains("0644"), "{line}");
        assert!(line.contains(&format!("chmod 600 {}", merchant.display())), "{line}");

        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&merchant, std::fs::Permissions::from_mode(0o400)).unwrap();
        let found = loose(secret_files(&real_mode(&merchant, &app), None));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, "payments.alipay.app_private_key_path");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_sandbox_and_disabled_channels_have_no_key_files_to_check() {
        let dir = temp_dir("sandbox");
        let merchant = write(&dir, "apiclient_key.pem", "fake", 0o644);
        let mut settings = real_mode(&merchant, &merchant);
        settings.payments.sandbox = true;
        assert!(secret_files(&settings, None).is_empty());
        settings.payments.sandbox = false;
        settings.payments.wechat.enabled = false;
        settings.payments.alipay.enabled = false;
        assert!(secret_files(&settings, None).is_empty());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_config_file_is_checked_only_when_it_holds_a_secret() {
        let dir = temp_dir("config");
        let plain = write(&dir, "plain.yaml", "server:\n  listen: 127.0.0.1:8080\n", 0o644);
        let with_key = write(
            &dir,
            "key.yaml",
            "payments:\n  wechat:\n    api_v3_key: fake-apiv3-key\n",
            0o644,
        );
        let with_password = write(
            &dir,
            "db.yaml",
            "database:\n  url: postgres://zhifu:pw@db/zhifu\n",
            0o604,
        );
        let without_password = write(
            &dir,
            "nopw.yaml",
            "database:\n  url: postgres://zhifu@db/zhifu\n",
            0o644,
        );
        let settings = Settings::default();
        assert!(loose(secret_files(&settings, Some(&plain))).is_empty());
        assert!(loose(secret_files(&settings, Some(&without_password))).is_empty());
        let found = loose(secret_files(&settings, Some(&with_key)));
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].key, found[0].mode), ("--config", 0o644));
        assert_eq!(loose(secret_files(&settings, Some(&with_password)))[0].mode, 0o604);
        std::fs::set_permissions(&with_key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(loose(secret_files(&settings, Some(&with_key))).is_empty());
        std::fs::remove_dir_all(dir).ok();
    }
}
