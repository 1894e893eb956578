//! The documentation cannot drift from the code: the README's variable
//! table and docs/operations.md's per-concern tables are generated from the
//! one table in `otp_server::vars` (byte for byte; `UPDATE_VAR_TABLES=1`
//! rewrites them), `otp-server env` prints the same, every listed variable is
//! read by a settings builder, and the README opens with exactly the run and
//! test commands.

use crate::support;

use support::run_bin;

const README: &str = "README.md";
const OPERATIONS: &str = "docs/operations.md";
const BUILDERS: &[&str] = &[
    include_str!("../../src/settings/server.rs"),
    include_str!("../../src/settings/http.rs"),
    include_str!("../../src/settings/policy.rs"),
    include_str!("../../src/settings/keys.rs"),
    include_str!("../../src/settings/tokens.rs"),
    include_str!("../../src/settings/limits.rs"),
    include_str!("../../src/settings/sessions.rs"),
    include_str!("../../src/settings/store.rs"),
    include_str!("../../src/settings/delivery.rs"),
    include_str!("../../src/settings/gate.rs"),
    include_str!("../../src/settings/audit.rs"),
    include_str!("../../src/settings/mod.rs"),
];

fn repo_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name)
}

/// Checks that the text between `<!-- {marker}:start -->` and
/// `<!-- {marker}:end -->` in `file` is exactly `generated`; with
/// `UPDATE_VAR_TABLES=1` it rewrites the block instead.
fn generated_block(file: &str, marker: &str, generated: &str) {
    let path = repo_file(file);
    let text = std::fs::read_to_string(&path).expect("read doc");
    let (open, close) = (
        format!("<!-- {marker}:start -->"),
        format!("<!-- {marker}:end -->"),
    );
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("{file} has no {open}"))
        + open.len();
    let end = text
        .find(&close)
        .unwrap_or_else(|| panic!("{file} has no {close}"));
    assert!(start <= end, "{file}: markers out of order");
    let want = format!("\n{generated}");
    if text[start..end] == want {
        return;
    }
    if std::env::var("UPDATE_VAR_TABLES").is_ok_and(|v| v == "1") {
        let updated = format!("{}{want}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).expect("rewrite doc");
        eprintln!("{file}: variable table rewritten");
        return;
    }
    panic!(
        "{file}: the variable table between {open} and {close} is not the generated one.\n\
         Regenerate it: UPDATE_VAR_TABLES=1 cargo test -p otp-server --test server readme::\n\
         Expected:\n{generated}"
    );
}

fn env_output(args: &[&str]) -> String {
    let (code, out, err) = run_bin(args, &[]);
    assert_eq!(code, 0, "{err}");
    out
}

/// Variable names in the first column of Markdown tables.
fn names(tables: &str) -> Vec<String> {
    tables
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(1))
        .map(|c| c.trim().trim_matches('`').to_owned())
        .collect()
}

#[test]
fn readme_variable_table_is_generated_from_the_variable_table() {
    let generated = otp_server::vars::markdown_table();
    assert_eq!(
        env_output(&["env"]),
        generated,
        "`otp-server env` prints the table"
    );
    generated_block(README, "env-table", &generated);
}

#[test]
fn operations_guide_variable_tables_are_generated_from_the_variable_table() {
    let generated = otp_server::vars::markdown_grouped();
    assert_eq!(env_output(&["env", "--grouped"]), generated);
    generated_block(OPERATIONS, "env-tables", &generated);
}

#[test]
fn every_listed_variable_is_read_by_a_settings_builder() {
    let listed = names(&otp_server::vars::markdown_table());
    assert!(listed.len() > 50, "suspiciously short list: {listed:?}");
    let mut seen = std::collections::HashSet::new();
    for name in &listed {
        assert!(seen.insert(name), "{name} listed twice");
        // `<SECRET>_FILE` is read for every secret by settings/raw.rs.
        if let Some(secret) = name
            .strip_suffix("_FILE")
            .filter(|_| otp_server::vars::find(name).is_none())
        {
            assert!(
                otp_server::vars::find(secret).is_some_and(|v| v.secret),
                "{name}"
            );
            continue;
        }
        assert!(
            BUILDERS.iter().any(|b| b.contains(&format!("\"{name}\""))),
            "{name} is documented but no settings builder reads it"
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
fn readme_opens_with_exactly_the_run_and_test_commands() {
    let readme = std::fs::read_to_string(repo_file(README)).expect("README");
    let lines: Vec<&str> = readme.lines().take(6).collect();
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

/// Expands `dir/{a,b}.rs` into `dir/a.rs` and `dir/b.rs`, and a bare file
/// name after a comma (`keys.rs`, `secret.rs`) into the directory of the
/// path before it.
fn expand_paths(cell: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for code in cell.split('`').skip(1).step_by(2) {
        if let (Some(open), Some(close)) = (code.find('{'), code.find('}')) {
            for alt in code[open + 1..close].split(',') {
                out.push(format!("{}{alt}{}", &code[..open], &code[close + 1..]));
            }
        } else if code.starts_with("crates/") {
            out.push(code.to_owned());
        } else if code.ends_with(".rs") && !code.contains('/') {
            if let Some(dir) = out.last().and_then(|p| p.rsplit_once('/')).map(|(d, _)| d) {
                out.push(format!("{dir}/{code}"));
            }
        }
    }
    out.into_iter()
        .map(|p| p.split(' ').next().unwrap_or_default().to_owned())
        .filter(|p| p.starts_with("crates/"))
        .collect()
}

#[test]
fn every_file_the_architecture_guide_names_as_a_rules_home_exists() {
    let text = std::fs::read_to_string(repo_file("docs/architecture.md")).expect("read doc");
    let section = text
        .split("### Where does X live")
        .nth(1)
        .expect("docs/architecture.md has a 'Where does X live' table");
    let section = section.split("\n#").next().unwrap_or_default();
    let mut checked = 0;
    for row in section
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("`crates/"))
    {
        let cell = row.rsplit('|').nth(1).unwrap_or_default();
        for path in expand_paths(cell) {
            let path = path.replace("<concern>", "server");
            assert!(
                repo_file(&path).exists(),
                "docs/architecture.md names {path}, which does not exist (row: {row})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} paths found in the table");
}
