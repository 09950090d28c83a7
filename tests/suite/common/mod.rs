//! Helpers shared by the integration tests.

// Each test crate uses only some of these.
#![allow(dead_code)]

use publish_guard::language::ast;
use publish_guard::language::format::format;
use publish_guard::language::parser::parse;
use publish_guard::policy::Policy;

/// Parse a source that must be valid, and check the formatter on it: the formatted text
/// parses back to an equal tree (spans aside) and formatting it again changes nothing.
/// Panics with the diagnostics or the differing texts otherwise.
pub fn parse_valid(source: &str) -> ast::File {
    let file = match parse(source) {
        Ok(file) => file,
        Err(diagnostics) => panic!("{source}\ndoes not parse: {diagnostics:#?}"),
    };
    let formatted = format(&file);
    let reparsed = match parse(&formatted) {
        Ok(reparsed) => reparsed,
        Err(diagnostics) => panic!("formatted text\n{formatted}\ndoes not parse: {diagnostics:#?}"),
    };
    assert_eq!(reparsed, file, "formatting changed the tree:\n{formatted}");
    let again = format(&reparsed);
    assert_eq!(again, formatted, "formatting is not idempotent");
    file
}

/// Compile a source that must check, after [`parse_valid`] has held the formatter to it:
/// every test that loads a valid policy also proves the format round trip on it.
pub fn compile_valid(source: &str) -> Policy {
    parse_valid(source);
    match publish_guard::compile(source) {
        Ok(checked) => checked.policy,
        Err(diagnostics) => panic!("{source}\ndoes not check: {diagnostics:#?}"),
    }
}

/// A `POST` of the JSON `body` to `url`, signed with `secret` (`whsec_...`) in the Standard
/// Webhooks scheme as delivery `id` at `timestamp` (Unix seconds).
pub fn signed_webhook(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: String,
) -> reqwest::RequestBuilder {
    let secret: publish_guard::relay::webhook_auth::WebhookSecret =
        secret.parse().expect("a valid test secret");
    let timestamp = timestamp.to_string();
    let signature = secret.signature_header(id, &timestamp, body.as_bytes());
    http.post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp)
        .header("webhook-signature", signature)
        .body(body)
}

/// The `publish-guard` binary run with `args` from the project's root: (exit code, stdout,
/// stderr).
pub fn publish_guard(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_publish-guard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
