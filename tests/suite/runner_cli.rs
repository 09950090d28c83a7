//! `publish-guard run` end to end: the binary, a configuration file and the API double on
//! loopback (on the real clock: these runs never wait).

use crate::api_support::schedule;
use publish_guard::api::double::{ApiDouble, CallKind, DoubleConfig};
use publish_guard::effects::clock::Clock;
use std::path::{Path, PathBuf};
use std::process::Output;

const ID_VAR: &str = "PG_RUN_TEST_CLIENT_ID";
const SECRET_VAR: &str = "PG_RUN_TEST_CLIENT_SECRET";

async fn double_with(published: bool) -> ApiDouble {
    let double = match ApiDouble::start(DoubleConfig::default()).await {
        Ok(d) => d,
        Err(e) => panic!("the double did not start: {e}"),
    };
    double.add_schedule(&schedule(), published, 1);
    double
}

/// A configuration pointing at `double`, with the reference rules beside it.
fn write_config(dir: &Path, double: &ApiDouble, extra: &str) -> PathBuf {
    let rules = include_str!("../fixtures/runner/reference.rules");
    let written = std::fs::write(dir.join("policy.rules"), rules);
    assert!(written.is_ok(), "{written:?}");
    let config = format!(
        "backend = \"genesys\"\nrules = \"policy.rules\"\nbusiness_unit = \"bu-1\"\n\
         {extra}[genesys]\nlogin_url = \"{url}\"\napi_url = \"{url}\"\n\
         client_id_env = \"{ID_VAR}\"\nclient_secret_env = \"{SECRET_VAR}\"\n",
        url = double.base_url()
    );
    let path = dir.join("publish-guard.toml");
    let written = std::fs::write(&path, config);
    assert!(written.is_ok(), "{written:?}");
    path
}

async fn run(double: &ApiDouble, config: &Path, extra_args: &[&str], env: bool) -> Output {
    let credentials = env.then(|| (double.client_id(), double.client_secret()));
    run_as(config, extra_args, credentials).await
}

/// `run` with these credentials (client id, secret) in the environment, or none.
async fn run_as(config: &Path, extra_args: &[&str], credentials: Option<(&str, &str)>) -> Output {
    let mut command = run_command(config, credentials);
    command.args(["--schedule", "sched-1", "--source", "manual"]);
    if !extra_args.contains(&"--week") {
        command.args(["--week", "2026-03-02"]);
    }
    command.args(extra_args);
    output(command).await
}

/// `publish-guard run --config CONFIG` with these credentials in the environment, or none.
fn run_command(config: &Path, credentials: Option<(&str, &str)>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_publish-guard"));
    command.arg("run").arg("--config").arg(config);
    // The limiter's shared state goes beside the configuration, not in the machine's.
    if let Some(dir) = config.parent() {
        command.env("XDG_RUNTIME_DIR", dir);
    }
    command.env_remove(ID_VAR).env_remove(SECRET_VAR);
    if let Some((id, secret)) = credentials {
        command.env(ID_VAR, id);
        command.env(SECRET_VAR, secret);
    }
    command
}

async fn output(mut command: tokio::process::Command) -> Output {
    match command.output().await {
        Ok(output) => output,
        Err(e) => panic!("the binary did not run: {e}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A double, a configuration beside the rules in a fresh directory, and one run.
async fn run_fresh(published: bool, extra: &str, args: &[&str], env: bool) -> (ApiDouble, Output) {
    let double = double_with(published).await;
    let dir = tempdir();
    let config = write_config(dir.path(), &double, extra);
    let output = run(&double, &config, args, env).await;
    (double, output)
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("no temporary directory: {e}"),
    }
}

#[tokio::test]
async fn a_dry_run_reads_and_shows_the_decision_without_writing() {
    let (double, output) = run_fresh(false, "", &["--dry-run"], true).await;
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("read: draft at version 1 (HTTP 200)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("trigger phase: rule ready -> publish"),
        "{stdout}"
    );
    assert!(
        stdout.contains("outcome: dry run, would publish"),
        "{stdout}"
    );
    assert_eq!(double.calls(CallKind::GetSchedule), 1);
    assert_eq!(
        double.calls(CallKind::UploadUrl) + double.calls(CallKind::Update),
        0
    );
    assert!(!stdout.contains(double.client_secret()));
}

#[tokio::test]
async fn a_live_run_on_a_published_schedule_skips_and_exits_0() {
    let (double, output) = run_fresh(true, "", &[], true).await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("outcome: skipped, already published"),
        "{stdout}"
    );
    assert_eq!(
        double.calls(CallKind::UploadUrl) + double.calls(CallKind::Update),
        0
    );
}

#[tokio::test]
async fn missing_credentials_and_bad_keys_are_usage_errors_that_say_where() {
    let (_, output) = run_fresh(false, "", &[], false).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(SECRET_VAR) || stderr.contains(ID_VAR),
        "{stderr}"
    );

    let (double, output) = run_fresh(false, "retries = 3\n", &[], true).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("publish-guard.toml:4:1: unknown field `retries`"),
        "{stderr}"
    );
    assert_eq!(double.calls(CallKind::GetSchedule), 0, "nothing was called");
}

#[tokio::test]
async fn a_week_off_the_business_units_start_day_is_a_usage_error_naming_the_right_week() {
    let double = double_with(false).await;
    double.set_week_settings(
        "bu-1",
        publish_guard::api::week::WeekSettings {
            start_day: jiff::civil::Weekday::Sunday,
            time_zone: jiff::tz::TimeZone::get("America/Chicago").ok(),
        },
    );
    let dir = tempdir();
    let config = write_config(dir.path(), &double, "");
    let output = run(&double, &config, &["--week", "2026-12-01"], true).await;
    assert_eq!(output.status.code(), Some(2));
    // The test policy's warnings (W205) come first; the error is the last line.
    assert_eq!(
        text(&output.stderr)
            .trim()
            .lines()
            .last()
            .unwrap_or_default(),
        "error: --week 2026-12-01: week 2026-12-01 is a Tuesday, but the business unit's weeks start on Sunday: the week must start on Sunday 2026-11-29"
    );
    assert_eq!(double.calls(CallKind::GetSchedule), 0, "nothing was read");
}

#[tokio::test]
async fn a_wrong_client_secret_exits_1_naming_the_client_id_and_never_the_secret() {
    let double = double_with(false).await;
    let dir = tempdir();
    let config = write_config(dir.path(), &double, "");
    let wrong = "wr0ng-s3cret-never-printed";
    let output = run_as(&config, &[], Some((double.client_id(), wrong))).await;
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains(double.client_id()), "{all}");
    assert!(!all.contains(wrong), "{all}");
    assert!(!all.contains(double.client_secret()), "{all}");
    assert!(
        all.contains("outcome: FAILED, not authorized"),
        "not a policy matter: {all}"
    );
    assert_eq!(
        double.calls(CallKind::UploadUrl) + double.calls(CallKind::Update),
        0,
        "nothing was written"
    );
}

/// Wait (bounded, real time: `run` is another process) until `double` has seen `count`
/// schedule updates.
async fn until_updates(double: &ApiDouble, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while double.calls(CallKind::Update) < count {
        assert!(std::time::Instant::now() < deadline, "no update {count}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_edit_right_after_our_publish_completes_ends_the_run_and_the_next_run_publishes_it() {
    // The double's clock is the test's: a publish completes when the test says, and on a
    // current-thread runtime no call is served between the two steps below.
    let api_clock = publish_guard::effects::clock::ManualClock::new(jiff::Timestamp::now());
    let config = DoubleConfig {
        model: publish_guard::api::model::ModelConfig {
            processing_time: jiff::SignedDuration::from_secs(20),
            ..Default::default()
        },
        clock: std::sync::Arc::new(api_clock.clone()),
        ..DoubleConfig::default()
    };
    let double = match ApiDouble::start(config).await {
        Ok(d) => d,
        Err(e) => panic!("the double did not start: {e}"),
    };
    double.add_schedule(&schedule(), false, 1);
    let dir = tempdir();
    let config = write_config(dir.path(), &double, "");
    let edit_after_completion = async {
        until_updates(&double, 1).await;
        api_clock.set(api_clock.now() + jiff::SignedDuration::from_secs(21));
        assert!(double.person_edit(&schedule()).is_ok());
    };
    let (first, ()) = tokio::join!(run(&double, &config, &[], true), edit_after_completion);
    let first_out = text(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{first_out}");
    assert!(
        first_out.contains("landed, then the schedule changed"),
        "{first_out}"
    );
    let complete = async {
        until_updates(&double, 2).await;
        api_clock.set(api_clock.now() + jiff::SignedDuration::from_secs(21));
    };
    let (second, ()) = tokio::join!(run(&double, &config, &[], true), complete);
    let second_out = text(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{second_out}");
    assert!(second_out.contains("outcome: published"), "{second_out}");
    assert_eq!(double.calls(CallKind::Update), 2);
    assert_eq!(double.conflicts(), 0);
    assert!(!format!("{first_out}{second_out}").contains("FAILED"));
}

#[tokio::test]
async fn twelve_runs_at_once_against_30_requests_a_minute_all_publish_with_at_most_one_429() {
    // Twelve processes, as a script publishing twelve weeks at once starts them, with one
    // OAuth client: they share its budget through the limiter's file (here in the test's
    // directory, as `run_command` points XDG_RUNTIME_DIR there), so the server's count and a 429 one of them meets hold them all.
    // On the real clock: 30 a minute makes this test wait a minute or two.
    let config = DoubleConfig {
        model: publish_guard::api::model::ModelConfig {
            processing_time: jiff::SignedDuration::ZERO,
            requests_per_minute: 30,
            ..Default::default()
        },
        ..DoubleConfig::default()
    };
    let double = match ApiDouble::start(config).await {
        Ok(d) => d,
        Err(e) => panic!("the double did not start: {e}"),
    };
    let weeks: Vec<_> = (0..12)
        .map(|n| {
            let mut week = schedule();
            week.week += jiff::Span::new().weeks(n);
            week.schedule_id = format!("sched-w{n:02}");
            week
        })
        .collect();
    for week in &weeks {
        double.add_schedule(week, false, 1);
    }
    let dir = tempdir();
    let config = write_config(dir.path(), &double, "");
    let runs = weeks.iter().map(|week| {
        let mut command = run_command(&config, Some((double.client_id(), double.client_secret())));
        command.args(["--schedule", &week.schedule_id, "--source", "manual"]);
        command.args(["--week", &week.week.to_string()]);
        output(command)
    });
    let outputs = futures_util::future::join_all(runs).await;
    for out in &outputs {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{all}");
        assert!(all.contains("outcome: published"), "{all}");
    }
    for week in &weeks {
        let published = double.schedule(week).is_some_and(|v| v.snapshot.published);
        assert!(published, "{} not published", week.schedule_id);
    }
    let throttled = double
        .call_log()
        .iter()
        .filter(|c| c.status == Some(429))
        .count();
    assert!(throttled <= 1, "{throttled} answers were 429");
    assert_eq!(double.calls(CallKind::Update), 12);
    assert_eq!(double.conflicts(), 0);
    let shared: Vec<_> = match std::fs::read_dir(dir.path().join("publish-guard")) {
        Ok(files) => files.flatten().map(|f| f.file_name()).collect(),
        Err(e) => panic!("no shared limiter state: {e}"),
    };
    assert_eq!(shared.len(), 1, "one file for one OAuth client: {shared:?}");
}

/// A double whose first schedule read is answered 429 with a `Retry-After` of four hours
/// (a daily limit), and a configuration for it in a fresh directory.
async fn on_a_daily_limit() -> (ApiDouble, tempfile::TempDir, PathBuf) {
    let double = double_with(false).await;
    double.add_fault(
        publish_guard::api::double::Fault::throttled(4 * 3600)
            .on(CallKind::GetSchedule)
            .times(1),
    );
    let dir = tempdir();
    let config = write_config(dir.path(), &double, "");
    (double, dir, config)
}

#[tokio::test]
async fn a_run_after_another_met_a_daily_limit_fails_at_once_without_calling() {
    let (double, _dir, config) = on_a_daily_limit().await;
    let credentials = Some((double.client_id(), double.client_secret()));
    let run_here = || {
        let mut command = run_command(&config, credentials);
        command.args(["--schedule", "sched-1", "--week", "2026-03-02"]);
        output(command)
    };
    let first = run_here().await;
    let first_out = format!("{}{}", text(&first.stdout), text(&first.stderr));
    assert!(
        first_out.contains("retry after 4h: daily limit?"),
        "{first_out}"
    );
    let calls = double.call_log().len();
    let second = run_here().await;
    let second_err = text(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{second_err}");
    assert!(
        second_err.contains("the API asked this client to wait 3h 59m 5")
            && second_err.contains("nothing was called"),
        "{second_err}"
    );
    assert_eq!(
        double.call_log().len(),
        calls,
        "the second run called nothing"
    );
}

#[tokio::test]
async fn a_daily_limit_met_during_a_run_fails_its_retries_at_once_rather_than_wait_hours() {
    // The default policy backs off an unreadable state and reads again: that read would
    // sit silent for the four-hour hold. A run someone watches fails it at once, saying how
    // long is left, and the policy's backoff goes on in view (the run is stopped here).
    use tokio::io::AsyncBufReadExt;
    let (double, dir, config) = on_a_daily_limit().await;
    let rules = std::fs::write(
        dir.path().join("policy.rules"),
        include_str!("../../rules/default.rules"),
    );
    assert!(rules.is_ok(), "{rules:?}");
    let mut command = run_command(&config, Some((double.client_id(), double.client_secret())));
    command.args(["--schedule", "sched-1", "--week", "2026-03-02"]);
    command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => panic!("the binary did not run: {e}"),
    };
    let Some(stdout) = child.stdout.take() else {
        panic!("no stdout")
    };
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let retried = async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.contains("retry after 3h 59m");
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    };
    // The first backoff waits 5 to 10 s of the real clock.
    let in_time = tokio::time::timeout(std::time::Duration::from_secs(60), retried).await;
    assert_eq!(in_time, Ok(true), "{}", seen.join("\n"));
    assert!(
        seen.iter()
            .any(|l| l.contains("retry after 4h: daily limit?")),
        "{}",
        seen.join("\n")
    );
    assert_eq!(
        double.calls(CallKind::GetSchedule),
        1,
        "the retry called nothing"
    );
    let killed = child.kill().await;
    assert!(killed.is_ok(), "{killed:?}");
}
