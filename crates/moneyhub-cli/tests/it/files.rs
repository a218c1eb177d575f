//! Issue 20 #10–#12 and issue 23 #15: what the CLI writes never clobbers what it should not
//! (special files, links, planted names), its own files are private, a config file others
//! can read draws a warning when it holds a secret, and a closed pipe ends quietly.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Stdio;

use serde_json::json;

use crate::support::{banks, Env};

/// A user with a backfilled mirror; returns the database argument.
fn mirrored(env: &Env, bank_ids: &[&str]) -> String {
    let (user, _) = env.user_with(bank_ids);
    let db = env.dir.join("files.db").display().to_string();
    env.ok(&["mirror", "backfill", "--db", &db, "--user", &user]);
    db
}

fn export(env: &Env, db: &str, out: &std::path::Path) -> crate::support::Run {
    env.run(&["mirror", "export", "--db", db, "--format", "csv", "--out", out.to_str().unwrap()])
}

#[test]
fn export_out_never_replaces_special_files_or_links() {
    let env = Env::new();
    let db = mirrored(&env, &[banks::MOCK]);

    // A FIFO is written into, and stays a FIFO.
    let fifo = env.dir.join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            std::fs::File::open(fifo).unwrap().read_to_string(&mut text).unwrap();
            text
        })
    };
    export(&env, &db, &fifo).ok();
    let text = reader.join().unwrap();
    assert!(text.starts_with("id,"), "the export went through the FIFO: {text:.200}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");

    // A link to a device (as /dev/stdout is) stays a link, and the device stays a device.
    let null_link = env.dir.join("null-link.csv");
    std::os::unix::fs::symlink("/dev/null", &null_link).unwrap();
    export(&env, &db, &null_link).ok();
    assert!(std::fs::symlink_metadata(&null_link).unwrap().file_type().is_symlink(), "still a link");
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());

    // `--out /dev/stdout` (a link to a pipe here): the export goes through it.
    let r = env.run(&["mirror", "export", "--db", &db, "--format", "csv", "--out", "/dev/stdout"]);
    r.ok();
    assert!(r.stdout.starts_with("id,"), "{}", r.stdout);

    // A character device made here (`mknod ./null c 1 3`, root only) is written, not replaced.
    let dev = env.dir.join("null");
    if std::process::Command::new("mknod").arg(&dev).args(["c", "1", "3"]).status().is_ok_and(|s| s.success())
    {
        export(&env, &db, &dev).ok();
        assert!(std::fs::symlink_metadata(&dev).unwrap().file_type().is_char_device(), "still a device");
    }

    // A link to a regular file: the file it points to gets the export, the link stays.
    let real = env.dir.join("real.csv");
    std::fs::write(&real, "an earlier export\n").unwrap();
    let link = env.dir.join("link.csv");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    export(&env, &db, &link).ok();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "still a link");
    assert!(std::fs::read_to_string(&real).unwrap().starts_with("id,"));

    // A new export is private (0600), and no temporary file is left behind.
    let fresh = env.dir.join("fresh.csv");
    export(&env, &db, &fresh).ok();
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    let leftovers: Vec<_> = std::fs::read_dir(&env.dir.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A link pointing nowhere and a directory are refused with a clear message.
    let dangling = env.dir.join("dangling.csv");
    std::os::unix::fs::symlink(env.dir.join("no/such/dir/x.csv"), &dangling).unwrap();
    let r = export(&env, &db, &dangling);
    r.code(2);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
}

#[test]
fn the_sync_history_is_private_and_never_written_through_a_link() {
    let env = Env::new();
    let (user, ids) = env.user_with(&[banks::MOCK]);
    let run = |args: &[&str]| {
        let mut cmd = env.command();
        cmd.env("MONEYHUB_SANDBOX_PROBE", "0").args(args);
        crate::support::run_command(cmd)
    };
    run(&["connections", "sync", "--user", &user, "--connection", &ids[0]]).ok();
    let state = env.dir.join("state");
    let file = std::fs::read_dir(&state).unwrap().next().unwrap().unwrap().path();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the history is created 0600, not {mode:o}");

    // A link planted in its place: its target is never written.
    let victim = env.dir.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&victim, &file).unwrap();
    env.advance(json!({"minutes": 31}));
    let r = run(&["connections", "sync", "--user", &user, "--connection", &ids[0]]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n", "{r:?}");
    assert!(r.stderr.contains("symbolic link"), "the warning says why: {}", r.stderr);
}

#[test]
fn a_config_file_others_can_read_draws_a_warning_when_it_holds_a_secret() {
    let env = Env::new();
    let path = env.dir.join("config.toml");
    let s = env.sandbox();
    std::fs::write(
        &path,
        format!(
            "default_profile = \"x\"\n[profiles.x]\nidentity_url = \"{}\"\napi_url = \"{}\"\nclient_id = \"sandbox-client\"\nclient_secret = \"sandbox-secret\"\n",
            s.identity_url(),
            s.api_url_v3()
        ),
    )
    .unwrap();
    let shown = path.display().to_string();
    for (mode, warned) in [(0o644, true), (0o666, true), (0o600, false)] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut cmd = crate::support::command(&env.dir);
        cmd.env("MONEYHUB_CONFIG", &path).args(["users", "list"]);
        let r = crate::support::run_command(cmd);
        r.ok();
        let warning = format!("chmod 600 {shown}");
        assert_eq!(r.stderr.contains(&warning), warned, "mode {mode:o}: {}", r.stderr);
        if warned {
            assert!(r.stderr.contains("client secret") && r.stderr.contains("\"x\""), "{}", r.stderr);
        }
    }
    // Without a secret in it, a readable file is fine.
    std::fs::write(&path, "[profiles.x]\nclient_id = \"sandbox-client\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = crate::support::command(&env.dir);
    cmd.env("MONEYHUB_CONFIG", &path).args(["--sandbox", "users", "list"]);
    let r = crate::support::run_command(cmd);
    assert!(!r.stderr.contains("chmod"), "{}", r.stderr);
}

#[test]
fn a_closed_pipe_ends_quietly_with_success() {
    let env = Env::new();
    let db = mirrored(&env, &[banks::MOCK, banks::MODELO, banks::BARCLAYS]);
    // More than a pipe holds, so that the writes after `head -1` meet the closed pipe.
    let all = env.ok(&["mirror", "export", "--db", &db, "--format", "csv"]);
    assert!(all.stdout.len() > 256 * 1024, "{} bytes only", all.stdout.len());
    for args in [
        &["mirror", "export", "--db", &db, "--format", "csv"][..],
        &["mirror", "export", "--db", &db, "--format", "json"][..],
    ] {
        let mut cmd = env.command();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        // The reading end is closed here, as `head -1` does.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!first.is_empty());
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: quietly: {stderr}");
    }
}
