//! Issue 13 #8, the habits of a command-line tool: shell completions, a man page, the real
//! terminal width in display columns, `RUST_BACKTRACE`, the platform's config directory, and
//! CSV that a spreadsheet does not run as formulas.

use std::process::Command;

use crate::support::{banks, bare, command, run_command, Env, TempDir};

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _moneyhub"),
        ("zsh", "#compdef moneyhub"),
        ("fish", "complete -c moneyhub"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let r = bare(&["completions", shell]);
        r.ok();
        assert!(r.stdout.contains(marker), "{shell}: {marker:?} missing");
        // Subcommands and their flags are completed.
        for word in ["users", "transactions", "doctor", "output", "completions"] {
            assert!(r.stdout.contains(word), "{shell}: {word:?} missing");
        }
    }
    let r = bare(&["completions", "tcsh"]);
    r.code(2);
    assert!(r.stderr.contains("tcsh"), "{}", r.stderr);
}

#[test]
fn man_page_printed_or_written_per_command() {
    let r = bare(&["man"]);
    r.ok();
    assert!(r.stdout.starts_with(".ie \\n(.g .ds Aq") || r.stdout.contains(".TH moneyhub"), "{}", r.stdout);
    assert!(r.stdout.contains(".TH moneyhub 1"), "{}", &r.stdout[..200.min(r.stdout.len())]);
    assert!(r.stdout.contains("SUBCOMMANDS") && r.stdout.contains("moneyhub\\-users"), "{}", r.stdout);

    let dir = TempDir::new();
    let out = dir.join("man1");
    let r = bare(&["man", "--out-dir", out.to_str().unwrap()]);
    r.ok();
    for page in ["moneyhub.1", "moneyhub-users.1", "moneyhub-users-get.1", "moneyhub-mirror-export.1"] {
        let text = std::fs::read_to_string(out.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
}

/// Runs the binary with `MONEYHUB_DEBUG_PANIC=1` (and `RUST_BACKTRACE` as given).
fn panicking(backtrace: Option<&str>) -> (i32, String) {
    let dir = TempDir::new();
    let mut cmd: Command = command(&dir);
    cmd.env("MONEYHUB_DEBUG_PANIC", "1").args(["users", "list"]);
    if let Some(b) = backtrace {
        cmd.env("RUST_BACKTRACE", b);
    }
    let out = cmd.output().expect("run");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_panic_hook_honours_rust_backtrace() {
    let (code, stderr) = panicking(None);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.starts_with("moneyhub: internal error: MONEYHUB_DEBUG_PANIC=1 asked for a panic"),
        "{stderr}"
    );
    assert!(!stderr.contains("stack backtrace:"), "{stderr}");
    assert!(stderr.contains("RUST_BACKTRACE=1"), "{stderr}");
    for setting in ["1", "full"] {
        let (code, stderr) = panicking(Some(setting));
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("stack backtrace:"), "{setting}: {stderr}");
        assert!(stderr.contains("main"), "frames are named: {stderr}");
    }
    let (_, stderr) = panicking(Some("0"));
    assert!(!stderr.contains("stack backtrace:"), "{stderr}");
}

/// Runs `moneyhub --sandbox catalog` in a pseudo-terminal `cols` wide (util-linux `script`),
/// with `COLUMNS` set or not; returns the widest line it showed, in display columns.
fn widest_on_a_terminal(cols: u16, columns: Option<u16>) -> Option<usize> {
    if Command::new("script").arg("--version").output().is_err() {
        crate::support::skip(
            "pty",
            "tables_fit_the_real_terminal_unless_columns_says_otherwise",
            "no `script` (util-linux) to run the binary in a pseudo-terminal",
        );
        return None;
    }
    let dir = TempDir::new();
    let columns = columns.map_or_else(|| "unset COLUMNS;".to_owned(), |c| format!("export COLUMNS={c};"));
    let inner =
        format!("stty cols {cols} rows 50; {columns} exec '{}' --sandbox catalog", crate::support::bin());
    let mut cmd = Command::new("script");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &dir.0)
        .env("MONEYHUB_STATE_DIR", dir.join("state"))
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .stdin(std::process::Stdio::null());
    let out = cmd.output().expect("script");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success() && text.contains("BANK ID"), "{text}");
    Some(text.lines().map(|l| l.chars().count()).max().unwrap_or(0))
}

#[test]
fn tables_fit_the_real_terminal_unless_columns_says_otherwise() {
    // Piped: 80 columns, as before.
    let piped = bare(&["--sandbox", "catalog"]);
    piped.ok();
    crate::support::fits_80(&piped.stdout);
    let Some(wide) = widest_on_a_terminal(130, None) else { return };
    assert!(wide > 80 && wide <= 130, "a 130-column terminal is used: widest line {wide}");
    let narrower = widest_on_a_terminal(90, None).unwrap();
    assert!(narrower > 80 && narrower <= 90, "a 90-column terminal: widest line {narrower}");
    let overridden = widest_on_a_terminal(130, Some(70)).unwrap();
    assert!(overridden <= 70, "COLUMNS=70 wins over the terminal: widest line {overridden}");
}

#[test]
fn the_config_file_follows_xdg_config_home() {
    let env = Env::new();
    env.user_with(&[banks::MOCK]);
    let xdg = env.dir.join("xdg");
    std::fs::create_dir_all(xdg.join("moneyhub")).unwrap();
    let s = env.sandbox();
    std::fs::write(
        xdg.join("moneyhub").join("config.toml"),
        format!(
            "default_profile = \"x\"\n[profiles.x]\nidentity_url = \"{}\"\napi_url = \"{}\"\nclient_id = \"sandbox-client\"\nclient_secret = \"sandbox-secret\"\n",
            s.identity_url(),
            s.api_url_v3()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        xdg.join("moneyhub").join("config.toml"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut cmd = command(&env.dir);
    cmd.env("XDG_CONFIG_HOME", &xdg).args(["users", "list", "-o", "json"]);
    let r = run_command(cmd);
    r.ok();
    assert!(r.stderr.is_empty(), "the profile was used, not the embedded sandbox: {}", r.stderr);
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));
}

#[test]
fn csv_export_neutralises_spreadsheet_formulas_unless_raw() {
    let env = Env::new();
    let (user, _) = env.user_with(&[banks::MOCK]);
    let db = env.dir.join("formulas.db").display().to_string();
    env.ok(&["mirror", "backfill", "--db", &db, "--user", &user]);
    // A bank's descriptions are not ours: plant formulas in one stored transaction.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let id: String =
        conn.query_row("SELECT id FROM mirror_transactions ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
    conn.execute(
        "UPDATE mirror_transactions SET raw = json_set(raw, '$.shortDescription', '=HYPERLINK(\"http://evil\",\"x\")',
                '$.longDescription', '@SUM(1+1)*cmd|'' /C calc''!A0', '$.categoryId', '+cmd') WHERE id = ?1",
        [&id],
    )
    .unwrap();
    drop(conn);
    let row = |raw: bool| {
        let mut args = vec!["mirror", "export", "--db", &db, "--format", "csv"];
        if raw {
            args.push("--raw");
        }
        let r = env.ok(&args);
        r.stdout.lines().find(|l| l.starts_with(&id)).expect("the row").to_owned()
    };
    let safe = row(false);
    assert!(
        safe.contains(",'+cmd,\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",'@SUM(1+1)*cmd|' /C calc'!A0,"),
        "{safe}"
    );
    // The amount keeps its minus sign: it is a number, not text.
    let amount = safe.split(',').nth(7).unwrap();
    assert!(amount.parse::<i64>().is_ok(), "{safe}");
    let raw = row(true);
    assert!(
        raw.contains(",+cmd,\"=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",@SUM(1+1)*cmd|' /C calc'!A0,"),
        "{raw}"
    );
    // No cell of the neutralised export starts a formula.
    let r = env.ok(&["mirror", "export", "--db", &db, "--format", "csv"]);
    for line in r.stdout.lines().skip(1) {
        for (i, cell) in line.split(',').enumerate() {
            let cell = cell.trim_start_matches('"');
            if i != 7 {
                assert!(!cell.starts_with(['=', '+', '@']), "{line}");
            }
        }
    }
}
