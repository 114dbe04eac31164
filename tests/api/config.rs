//! Configuration errors as ops see them: `zhifu check-config` names every bad key at once.

use std::process::Command;

fn zhifu() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    // The shipped config.yaml, whatever the test's working directory.
    cmd.arg("--config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ZHIFU")) {
        cmd.env_remove(key);
    }
    cmd
}

#[test]
fn the_shipped_config_is_valid() {
    let out = zhifu().arg("check-config").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(stdout.contains("sandbox"), "{stdout}");
}

#[test]
fn every_bad_key_is_named_with_a_fix_and_the_exit_status_is_2() {
    let out = zhifu()
        .arg("check-config")
        .env("ZHIFU__SERVER__LISTEN", "not-an-address")
        .env("ZHIFU__PAYMENTS__MAX_AMOUNT", "-5")
        .env("ZHIFU__DATABASE__URL", "postgres://zhifu:s3cret-pw@db:5432/zhifu")
        .env("ZHIFU__DATABASE__POOL_SIZE", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in ["server.listen", "payments.max_amount", "database.pool_size"] {
        assert!(stderr.contains(key), "{key} missing from: {stderr}");
    }
    assert!(stderr.contains("fix:"), "{stderr}");
    assert!(
        !stderr.contains("s3cret-pw"),
        "a secret leaked into the error: {stderr}"
    );
}

#[test]
fn a_missing_config_file_is_an_error_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .args(["--config", "/nonexistent/zhifu.yaml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/zhifu.yaml"));
}

#[test]
fn help_lists_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for command in ["serve", "migrate", "check-config", "--config"] {
        assert!(text.contains(command), "{command} missing from --help: {text}");
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_all_listed_each_with_a_fix() {
    let dir = crate::helpers::scratch_dir("check-config");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        "server:\n  listn: \"127.0.0.1:8080\"\n  max_connections: lots\n\
         database:\n  pool_size: [1, 2]\n\
         payments:\n  sandbox: maybe\n  min_amount: \"0.5\"\n\
         rankngs:\n  timezone: Asia/Shanghai\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .arg("--config")
        .arg(&file)
        .arg("check-config")
        .env("ZHIFU__LIMITS__LOGIN_BURST", "five")
        .env("ZHIFU__PAYMENTS__MAX_AMOUNT", "0.1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.trim_start().starts_with("- ")).collect();
    for (key, fix) in [
        ("server.listn", "did you mean server.listen?"),
        ("server.max_connections", "write a whole number, e.g. 10000"),
        ("database.pool_size", "write a whole number, e.g. 16"),
        ("payments.sandbox", "write true or false"),
        ("rankngs", "did you mean rankings?"),
        ("limits.login_burst", "write a whole number, e.g. 5"),
        // A value problem, found in the same run as the shape problems.
        ("payments.max_amount", "make max_amount at least min_amount"),
    ] {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("- {key}: ")))
            .unwrap_or_else(|| panic!("{key} is not listed: {stderr}"));
        assert!(line.contains(&format!("(fix: {fix}")), "{line}");
    }
    assert_eq!(lines.len(), 7, "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
