//! Password hashing: Argon2id with the crate's default parameters (19 MiB, 2 passes), a
//! random 16-byte salt, stored as a PHC string. Hashing takes tens of milliseconds, so it runs
//! on the blocking pool, never on the async threads.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Shortest and longest password accepted, in characters.
pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 128;

/// Why a new password is refused (the message says what to do).
pub fn check_strength(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err("the password must have at least 10 characters");
    }
    if chars > MAX_LEN {
        return Err("the password must have at most 128 characters");
    }
    if password.chars().any(char::is_control) {
        return Err("the password must not contain control characters");
    }
    Ok(())
}

/// The PHC string of `password` (blocking; call through [`hash`]).
fn hash_now(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    let hash = Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
    Ok(hash.to_string())
}

/// Hashes `password` on the blocking pool.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_now(&password)).await?
}

/// True when `password` matches `phc` (blocking; call through [`verify`]). An unreadable hash
/// never matches.
fn verify_now(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// Checks `password` against `phc` on the blocking pool. With no stored hash (unknown user)
/// it still spends the same work on a fixed hash, so timing does not tell who exists.
pub async fn verify(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify_now(&password, &phc),
        None => {
            verify_now(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, made once, for [`verify`] of unknown users.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 24];
        let _ = SystemRandom::new().fill(&mut random);
        let text: String = random.iter().map(|b| format!("{b:02x}")).collect();
        hash_now(&text).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse battery".into(), Some(phc.clone())).await);
        assert!(!verify("correct horse batterY".into(), Some(phc.clone())).await);
        assert!(!verify("".into(), Some(phc)).await);
        assert!(!verify("anything".into(), None).await);
        assert!(!verify("anything".into(), Some("not a phc string".into())).await);
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let a = hash("same password 1".into()).await.unwrap();
        let b = hash("same password 1".into()).await.unwrap();
        assert_ne!(a, b, "salts must differ");
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        assert!(check_strength("short").is_err());
        assert!(check_strength(&"x".repeat(129)).is_err());
        assert!(check_strength("has\u{0}nul char").is_err());
        assert!(check_strength("long enough pass").is_ok());
    }
}
