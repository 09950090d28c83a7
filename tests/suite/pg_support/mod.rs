//! A real PostgreSQL server for the tests: the one `.ci/run` started (its connection string
//! in `PUBLISH_GUARD_TEST_PG`), else one this test process starts with `.ci/postgres.sh` and
//! a watcher stops when the process ends. Each test gets a database of its own. When no
//! server can start, a test skips with a loud message, unless `PUBLISH_GUARD_REQUIRE_PG` is
//! set (CI), where it fails.

#![allow(dead_code)] // each test file uses its own part of this

use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The server's connection string (database `postgres`), once per test process.
fn server() -> Option<&'static str> {
    static SERVER: OnceLock<Option<String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("PUBLISH_GUARD_TEST_PG") {
                return Some(url);
            }
            match start_server() {
                Ok(url) => Some(url),
                Err(why) => {
                    assert!(
                        std::env::var_os("PUBLISH_GUARD_REQUIRE_PG").is_none(),
                        "PostgreSQL is required here but did not start: {why}"
                    );
                    eprintln!(
                        "\n!!!!!!!!!! SKIPPING POSTGRESQL TESTS: no server could start: {why} !!!!!!!!!!\n"
                    );
                    None
                }
            }
        })
        .as_deref()
}

/// Start a throwaway cluster; a watcher stops it once this process is gone.
fn start_server() -> Result<String, String> {
    let output = Command::new("bash")
        .args([".ci/postgres.sh", "start"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!(".ci/postgres.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(".ci/postgres.sh start: {}", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("export {name}='")))
            .and_then(|rest| rest.strip_suffix('\''))
            .map(str::to_owned)
            .ok_or_else(|| format!("no {name} in {text:?}"))
    };
    let url = value("PUBLISH_GUARD_TEST_PG")?;
    let dir = value("PUBLISH_GUARD_TEST_PG_DIR")?;
    let watcher = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; bash .ci/postgres.sh stop '{dir}'",
        pid = std::process::id()
    );
    Command::new("bash")
        .args(["-c", &watcher])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("the watcher: {e}"))?;
    Ok(url)
}

/// A fresh, empty database: its connection string, or `None` (skip) without a server.
pub async fn database() -> Option<String> {
    let server = server()?;
    let name = format!("test_{:016x}", rand::random::<u64>());
    let client = publish_guard::pg::connect(server).await.unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    Some(server.replace("dbname=postgres", &format!("dbname={name}")))
}

/// Run SQL on `url` directly (not through the code under test); the rows' first columns as
/// text.
pub async fn query_texts(url: &str, sql: &str) -> Vec<String> {
    let client = publish_guard::pg::connect(url).await.unwrap();
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect()
}
