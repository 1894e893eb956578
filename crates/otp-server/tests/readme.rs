//! The documentation cannot drift from the code: the README's variable table
//! is exactly what `otp-server env` prints, every listed variable is read by
//! the configuration code, docs/operations.md names every variable, and the
//! README opens with exactly the run and test commands.

mod support;

use support::run_bin;

const README: &str = include_str!("../../../README.md");
const SETTINGS: &str = include_str!("../src/settings.rs");

fn readme_table() -> String {
    let start = README
        .find("<!-- env-table:start -->")
        .expect("README has <!-- env-table:start -->");
    let end = README
        .find("<!-- env-table:end -->")
        .expect("README has <!-- env-table:end -->");
    assert!(start < end, "markers out of order");
    README[start + "<!-- env-table:start -->".len()..end]
        .trim()
        .to_owned()
}

fn env_output() -> String {
    let (code, out, err) = run_bin(&["env"], &[]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_owned()
}

/// Variable names in the first column of a Markdown table.
fn names(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(2)
        .filter_map(|l| l.split('|').nth(1))
        .map(|c| c.trim().trim_matches('`').to_owned())
        .collect()
}

#[test]
fn readme_env_table_matches_otp_server_env_exactly() {
    let readme = readme_table();
    let generated = env_output();
    if readme != generated {
        let r: Vec<&str> = readme.lines().collect();
        let g: Vec<&str> = generated.lines().collect();
        let first = r
            .iter()
            .zip(&g)
            .position(|(a, b)| a != b)
            .unwrap_or(r.len().min(g.len()));
        panic!(
            "README env table differs from `otp-server env` at row {first}:\n  README: {:?}\n  code:   {:?}\n\
             Regenerate it: cargo run -q -p otp-server -- env, and paste between the markers.",
            r.get(first),
            g.get(first)
        );
    }
}

#[test]
fn every_listed_variable_is_read_by_the_configuration_code() {
    let listed = names(&env_output());
    assert!(listed.len() > 50, "suspiciously short list: {listed:?}");
    let mut seen = std::collections::HashSet::new();
    for name in &listed {
        assert!(seen.insert(name), "{name} listed twice");
        assert!(
            SETTINGS.contains(&format!("\"{name}\"")),
            "{name} is documented but settings.rs never reads it"
        );
    }
    // The Python service's variables keep their names.
    for name in [
        "OTP_SECRET_KEY",
        "OTP_WINDOW_SECONDS",
        "JWT_SECRET",
        "ACCESS_TOKEN_TTL",
        "RATE_REQUEST_OTP_MAX",
        "RATE_VERIFY_OTP_MAX",
        "DELIVERY_BACKEND",
        "SMTP_HOST",
        "SMTP_USE_TLS",
        "TWILIO_ACCOUNT_SID",
        "WEBHOOK_URL",
        "REDIS_URL",
    ] {
        assert!(listed.iter().any(|n| n == name), "{name} missing");
    }
}

#[test]
fn operations_guide_names_every_variable() {
    let ops = include_str!("../../../docs/operations.md");
    for name in names(&env_output()) {
        assert!(
            ops.contains(&format!("`{name}`")),
            "docs/operations.md does not mention `{name}`"
        );
    }
}

#[test]
fn readme_opens_with_exactly_the_run_and_test_commands() {
    let lines: Vec<&str> = README.lines().take(6).collect();
    assert_eq!(lines[0], "# stateless-otp");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "```sh");
    let cmd = |l: &str| l.split('#').next().unwrap_or("").trim().to_owned();
    assert_eq!(cmd(lines[3]), "cargo run -p otp-server -- serve --dev");
    assert!(lines[3].contains("# run"), "{}", lines[3]);
    assert_eq!(cmd(lines[4]), "cargo test --workspace --all-features");
    assert!(lines[4].contains("# test"), "{}", lines[4]);
    assert_eq!(lines[5], "```");
}
