//! The audit log end to end: the writer's chain and guards, `verify` against tampering,
//! deletion and truncation, and the `audit` command's output and exit codes.

use ed25519_dalek::SigningKey;
use jiff::{SignedDuration, Timestamp};
use publish_guard::audit::checkpoint::{CheckpointPolicy, checkpoints_path, key_files_text};
use publish_guard::audit::log::{Appended, AuditError, AuditLog, AuditOptions, Record};
use publish_guard::audit::verify::{Break, Fault, Verified, verify};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A stand-in for the runner's events: the writer takes any `Serialize`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Event {
    TriggerAccepted {
        schedule_id: &'static str,
        receipt: String,
        source: &'static str,
    },
    Decided {
        schedule_id: &'static str,
        rule: &'static str,
        action: &'static str,
        reason: Option<&'static str>,
    },
    Published {
        schedule_id: &'static str,
        version: u32,
    },
}

fn at(minutes: i64) -> Timestamp {
    "2026-03-29T00:30:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(minutes)
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn events() -> Vec<(String, Event)> {
    vec![
        (
            "r1/0".into(),
            Event::TriggerAccepted {
                schedule_id: "s-1",
                receipt: "r1".into(),
                source: "servicenow",
            },
        ),
        (
            "r1/1".into(),
            Event::Decided {
                schedule_id: "s-1",
                rule: "ready",
                action: "publish",
                reason: None,
            },
        ),
        (
            "r2/0".into(),
            Event::TriggerAccepted {
                schedule_id: "s-2",
                receipt: "r2".into(),
                source: "manual",
            },
        ),
        (
            "r2/1".into(),
            Event::Decided {
                schedule_id: "s-2",
                rule: "published",
                action: "skip",
                reason: Some("already published"),
            },
        ),
        (
            "r1/2".into(),
            Event::Published {
                schedule_id: "s-1",
                version: 8,
            },
        ),
        (
            "r3/0".into(),
            Event::TriggerAccepted {
                schedule_id: "s-1",
                receipt: "r3".into(),
                source: "timer",
            },
        ),
    ]
}

/// Write the sample events to `dir/audit.jsonl`, one per minute, signing a checkpoint every
/// two entries when `signed`.
fn write_log(dir: &Path, signed: bool) -> PathBuf {
    let path = dir.join("audit.jsonl");
    let options = AuditOptions {
        checkpoints: signed.then(|| {
            (
                key(),
                CheckpointPolicy {
                    every_entries: 2,
                    every: None,
                },
            )
        }),
        ..AuditOptions::default()
    };
    let mut log = AuditLog::open(&path, options).unwrap();
    for (minute, (step, event)) in (0..).zip(events()) {
        let appended = log.append(&step, at(minute), &event).unwrap();
        assert!(matches!(appended, Appended::Written { seq, .. } if seq == minute as u64 + 1));
    }
    path
}

fn check(path: &Path, key: Option<&SigningKey>) -> Result<Verified, Break> {
    let public = key.map(SigningKey::verifying_key);
    verify(path, &checkpoints_path(path), public.as_ref()).unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn rewrite(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

#[test]
fn a_written_log_verifies_and_its_head_is_the_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    let verified = check(&path, Some(&key())).unwrap();
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    assert_eq!(verified.entries, 6);
    assert_eq!(verified.checkpoints, 3);
    assert!(verified.signed);
    assert_eq!(log.head(), (6, verified.head.as_str()));
}

#[test]
fn reopening_continues_the_chain_and_refuses_a_step_written_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), false);
    let mut log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let event = Event::Published {
        schedule_id: "s-2",
        version: 3,
    };
    assert_eq!(
        log.append("r1/1", at(10), &event).unwrap(),
        Appended::AlreadyWritten { seq: 2 }
    );
    let batch = [
        Record {
            step: "r2/2",
            at: at(11),
            event: &event,
        },
        Record {
            step: "r2/2",
            at: at(11),
            event: &event,
        },
        Record {
            step: "r3/0",
            at: at(11),
            event: &event,
        },
    ];
    let outcomes = log.append_batch(&batch).unwrap();
    assert!(matches!(outcomes[0], Appended::Written { seq: 7, .. }));
    assert_eq!(outcomes[1], Appended::AlreadyWritten { seq: 7 });
    assert_eq!(outcomes[2], Appended::AlreadyWritten { seq: 6 });
    assert_eq!(log.recorded("r2/2"), Some(7));
    assert_eq!(check(&path, None).unwrap().entries, 7);
}

#[test]
fn a_torn_last_line_fails_verify_and_is_cut_off_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), false);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(r#"{"at":"2026-03-29T00:40:00Z","ev"#);
    std::fs::write(&path, text).unwrap();
    let broken = check(&path, None).unwrap_err();
    assert_eq!((broken.line, broken.fault), (Some(7), Fault::Incomplete));
    let mut log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let event = Event::Published {
        schedule_id: "s-1",
        version: 9,
    };
    assert!(matches!(
        log.append("r3/1", at(12), &event).unwrap(),
        Appended::Written { seq: 7, .. }
    ));
    assert_eq!(check(&path, None).unwrap().entries, 7);
}

#[test]
fn a_damaged_last_entry_stops_the_writer_from_extending_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), false);
    let mut all = lines(&path);
    let last = all.len() - 1;
    all[last] = all[last].replace("timer", "tamer");
    rewrite(&path, &all);
    assert!(matches!(
        AuditLog::open(&path, AuditOptions::default()),
        Err(AuditError::DamagedTail { .. })
    ));
}

#[test]
fn the_step_guard_remembers_a_bounded_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let options = || AuditOptions {
        remembered_steps: 2,
        ..AuditOptions::default()
    };
    let mut log = AuditLog::open(&path, options()).unwrap();
    let event = Event::Published {
        schedule_id: "s-1",
        version: 1,
    };
    for step in ["a", "b", "c"] {
        log.append(step, at(0), &event).unwrap();
    }
    drop(log);
    // Reopening rebuilds the window from the tail: "b" and "c", not "a".
    let log = AuditLog::open(&path, options()).unwrap();
    assert_eq!(
        ["a", "b", "c"].map(|step| log.recorded(step)),
        [None, Some(2), Some(3)]
    );
}

#[test]
fn changing_any_byte_of_a_line_is_named_at_that_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), false);
    let original = lines(&path);
    for index in [0, 2, original.len() - 1] {
        for position in 0..original[index].len() {
            let mut bytes = original[index].clone().into_bytes();
            bytes[position] = if bytes[position] == b'x' { b'y' } else { b'x' };
            let mut tampered = original.clone();
            tampered[index] = String::from_utf8(bytes).unwrap();
            rewrite(&path, &tampered);
            let broken = check(&path, None).unwrap_err();
            assert_eq!(broken.line, Some(index + 1), "byte {position}: {broken}");
        }
    }
}

/// The first failure of each kind of damage, as `verify` reports it.
#[test]
fn verify_names_the_first_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    let original = lines(&path);
    let sidecar = checkpoints_path(&path);
    let checkpoints = std::fs::read_to_string(&sidecar).unwrap();
    let mut report = Vec::new();
    let mut try_damage = |what: &str, damaged: Vec<String>, key: Option<&SigningKey>| {
        rewrite(&path, &damaged);
        let broken = check(&path, key).unwrap_err();
        let shown = broken
            .to_string()
            .replace(&dir.path().display().to_string(), "DIR");
        report.push(format!("{what}:\n  {shown}"));
    };

    let mut one_byte = original.clone();
    one_byte[2] = one_byte[2].replace("manual", "manuel");
    try_damage("one byte changed in line 3", one_byte, None);

    let mut spaced = original.clone();
    spaced[1] = spaced[1].replacen(',', ", ", 1);
    try_damage("whitespace added to line 2", spaced, None);

    let mut deleted = original.clone();
    deleted.remove(3);
    try_damage("line 4 deleted", deleted, None);

    let mut swapped = original.clone();
    swapped.swap(1, 2);
    try_damage("lines 2 and 3 swapped", swapped, None);

    // A forger who recomputes the line's own hash is caught by the next line's `prev`.
    let mut forged = original.clone();
    forged[2] = reseal(&forged[2], "manual", "timer");
    try_damage(
        "line 3 rewritten with a valid hash of its own",
        forged,
        None,
    );

    let mut duplicated = original.clone();
    duplicated.push(reseal_as_next(&original));
    try_damage("a step recorded twice", duplicated, None);

    let mut truncated = original.clone();
    truncated.truncate(5);
    try_damage("last line cut off", truncated, Some(&key()));

    std::fs::write(&sidecar, checkpoints.replace("\"seq\":4", "\"seq\":3")).unwrap();
    try_damage("a checkpoint moved", original.clone(), Some(&key()));

    std::fs::remove_file(&sidecar).unwrap();
    try_damage("checkpoints removed", original.clone(), Some(&key()));

    insta::assert_snapshot!(report.join("\n"));
}

/// `line` with `from` replaced by `to` and its own hash recomputed (what a careful forger does).
fn reseal(line: &str, from: &str, to: &str) -> String {
    use publish_guard::audit::entry::Entry;
    let mut value: serde_json::Value = serde_json::from_str(&line.replace(from, to)).unwrap();
    value.as_object_mut().unwrap().remove("hash");
    let entry: Entry<serde_json::Value> = serde_json::from_value(value).unwrap();
    entry.seal().unwrap().0
}

/// A correctly chained seventh entry that repeats the first line's step.
fn reseal_as_next(lines: &[String]) -> String {
    use publish_guard::audit::entry::{Entry, check_line};
    let last = check_line(lines.last().unwrap()).unwrap();
    let first = check_line(&lines[0]).unwrap();
    let entry = Entry {
        seq: 7,
        prev: last.hash,
        at: at(9),
        step: first.entry.step,
        event: first.entry.event,
    };
    entry.seal().unwrap().0
}

fn run_cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_publish-guard"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn audit_verify_exit_codes_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    let (secret, public) = key_files_text(&key());
    std::fs::write(dir.path().join("audit.pub"), public).unwrap();
    drop(secret);
    let verify_args = ["audit", "verify", "audit.jsonl", "--key", "audit.pub"];
    let (ok_code, ok_out, _) = run_cli(dir.path(), &verify_args);
    let (plain_code, plain_out, _) = run_cli(dir.path(), &["audit", "verify", "audit.jsonl"]);
    let mut all = lines(&path);
    all[4] = all[4].replace("\"version\":8", "\"version\":9");
    rewrite(&path, &all);
    let (bad_code, bad_out, _) = run_cli(dir.path(), &verify_args);
    let (io_code, _, io_err) = run_cli(dir.path(), &["audit", "verify", "missing.jsonl"]);
    assert_eq!((ok_code, plain_code, bad_code, io_code), (0, 0, 1, 2));
    assert!(io_err.starts_with("error: missing.jsonl:"), "{io_err}");
    insta::assert_snapshot!(format!("{ok_out}{plain_out}{bad_out}"));
}

#[test]
fn audit_show_prints_readable_lines_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), false);
    let (code, all, _) = run_cli(dir.path(), &["audit", "show", "audit.jsonl"]);
    let (_, one, _) = run_cli(
        dir.path(),
        &["audit", "show", "audit.jsonl", "--schedule", "s-1"],
    );
    let (_, late, _) = run_cli(
        dir.path(),
        &[
            "audit",
            "show",
            "audit.jsonl",
            "--since",
            "2026-03-29T00:33:00Z",
        ],
    );
    let (bad_code, _, bad_err) = run_cli(
        dir.path(),
        &["audit", "show", "audit.jsonl", "--since", "yesterday"],
    );
    assert_eq!((code, bad_code), (0, 2));
    assert!(bad_err.contains("--since \"yesterday\""), "{bad_err}");
    insta::assert_snapshot!(format!(
        "== all\n{all}== --schedule s-1\n{one}== --since 2026-03-29T00:33:00Z\n{late}"
    ));
}

#[test]
fn audit_keygen_writes_a_usable_pair_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run_cli(dir.path(), &["audit", "keygen", "--out", "signer"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "wrote signer.key (keep it secret) and signer.pub\n")
    );
    let secret =
        publish_guard::audit::checkpoint::load_signing_key(&dir.path().join("signer.key")).unwrap();
    let public =
        publish_guard::audit::checkpoint::load_verifying_key(&dir.path().join("signer.pub"))
            .unwrap();
    assert_eq!(secret.verifying_key(), public);
    let (again, _, _) = run_cli(dir.path(), &["audit", "keygen", "--out", "signer"]);
    assert_eq!(again, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_writer_records_concurrent_steps_once_each_in_few_syncs() {
    use publish_guard::audit::writer::AuditWriter;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let writer = std::sync::Arc::new(AuditWriter::start(log).unwrap());
    let tasks: Vec<_> = (0..300)
        .map(|n| {
            let writer = std::sync::Arc::clone(&writer);
            // Steps 3, 6, ..., 297 are retries of the step before them: 99 repeats, 201 steps.
            let step = format!("t{}", n - n / 3);
            tokio::spawn(async move {
                let event = Event::Published {
                    schedule_id: "s-1",
                    version: n,
                };
                writer.record(&step, at(0), &event).await
            })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        if let Appended::Written { .. } = task.await.unwrap().unwrap() {
            written += 1;
        }
    }
    let verified = check(&path, None).unwrap();
    assert_eq!((written, verified.entries), (201, 201));
    // Group commit: steps that queue up during a sync share the next one.
    assert!(
        writer.syncs() < 150,
        "{} syncs for 201 entries",
        writer.syncs()
    );
}

#[test]
fn audit_show_escapes_control_characters_a_webhook_could_smuggle_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    // A webhook's event field: clear the screen, set the title, reorder the text shown.
    let event = serde_json::json!({
        "kind": "trigger_received",
        "event": "case.updated\u{1b}[2J\u{1b}]0;owned\u{7}",
        "source": "servicenow\u{202e}",
        "note\u{1b}[31m": "red",
    });
    log.append("rcpt_1/received", at(0), &event).unwrap();
    drop(log);
    let (code, shown, _) = run_cli(dir.path(), &["audit", "show", "audit.jsonl"]);
    assert_eq!(code, 0);
    assert!(
        !shown
            .chars()
            .any(|c| c.is_control() && c != '\n' || c == '\u{202e}'),
        "{shown:?}"
    );
    insta::assert_snapshot!(shown);
}

#[test]
fn a_second_writer_is_refused_with_the_first_ones_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), false);
    let first = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let second = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert!(matches!(second, AuditError::Locked(_)), "{second:?}");
    let message = second.to_string();
    assert!(
        message.contains(&format!("in use by PID {}", std::process::id())),
        "{message}"
    );
    drop(first);
    AuditLog::open(&path, AuditOptions::default()).unwrap();
}

#[test]
fn a_chain_that_does_not_verify_is_not_appended_to_and_the_error_says_how_to_recover() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), false);
    let mut damaged = lines(&path);
    damaged.remove(1);
    rewrite(&path, &damaged);
    let before = std::fs::read(&path).unwrap();
    let refused = AuditLog::open_verified(&path, AuditOptions::default()).unwrap_err();
    let message = refused.to_string();
    assert!(
        matches!(refused, AuditError::BrokenChain { .. }),
        "{message}"
    );
    assert!(message.contains("sequence gap"), "{message}");
    assert!(
        message.contains("mv audit.jsonl audit.jsonl.broken"),
        "{message}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing appended");
    // An intact one opens, and so does a new chain once the broken one is moved aside.
    std::fs::rename(&path, dir.path().join("audit.jsonl.broken")).unwrap();
    AuditLog::open_verified(&path, AuditOptions::default()).unwrap();
}
