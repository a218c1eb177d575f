//! `moneyhub mirror run|backfill|reconcile|status|export|retry`: a local copy of transactions kept
//! current from webhooks (the `moneyhub-mirror` crate), on SQLite (`--db sqlite:PATH` or a
//! plain path) or PostgreSQL (`--db postgres://...`).
//!
//! JSON output: `run` prints `{"listening": ADDR, "workers": N, "db": URL}` once started;
//! `backfill` and `reconcile` print `{"users", "errors": [{"user", "error"}], "totals"}`;
//! `status` prints the mirror's status (`users`: at most `--limit` of them, or the `--user`;
//! `usersTotal`, `inboxPending`, `inboxFailed`, `inboxApplied`, `oldestPendingMs`, `lastEvent`,
//! `live`, `tombstones`: the totals of everyone); `export` writes CSV
//! or a JSON array to stdout or `--out`; `retry` prints `{"requeued": N}`.
//!
//! The lifecycle loop (`moneyhub_mirror::lifecycle`): `status` JSON also has `lifecycle`
//! (`byAction`, `byStatus`, `notificationsPending`, `notificationsParked`,
//! `oldestUndeliveredMs`, `dueNow`); `actions` prints an array of `{connectionId, userId, name,
//! type, action, reason, notBefore, rule, unknown, since, dueAt, evaluatedAt, status, error,
//! extendedStatus, statusSince, removed, movedFrom, lastManualSync, connection}` (times in
//! Moneyhub's format, the mirror's clock), or CSV with `--format csv`; `doctor --mirror DB`
//! prints the doctor's rows (see `doctor`). Decisions: `--due-within` counts from the mirror's
//! latest evaluation (its clock, a sandbox's virtual one when it follows one); `actions`
//! takes `--format table|json|csv` (default: as the global `--output`, which has no CSV).

use std::io::Write;
use std::sync::Arc;

use moneyhub::{ConnectionId, UserId};
use moneyhub_mirror::{
    DbUrl, ExportFormat, ExportOptions, Mirror, MirrorConfig, Progress, ReconcileReport, Scope,
};
use serde_json::json;

use crate::cli::{
    ActionsArgs, ActionsFormat, DbArgs, ExportArgs, Format, GlobalArgs, HistoryArgs, LifecycleRunArgs,
    MirrorCommand, OutputArg, RetryArgs, RunArgs, ScopeArgs, StatusArgs,
};
use crate::context::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::table::{Column, Table};
use crate::output::{self, progress, OutputFormat};
use crate::resolve;

fn db_url(args: &DbArgs) -> CmdResult<DbUrl> {
    args.db.parse::<DbUrl>().map_err(|e| Failure::usage(e.to_string()))
}

fn mirror_failure(e: moneyhub_mirror::Error) -> Failure {
    match e {
        moneyhub_mirror::Error::DbUrl { .. } | moneyhub_mirror::Error::Invalid(_) => {
            Failure::usage(e.to_string())
        }
        moneyhub_mirror::Error::Moneyhub(m) => Failure::from_client(&m, chrono::Utc::now()),
        other => Failure::internal(other.to_string()),
    }
}

async fn open(ctx: &Ctx, url: &DbUrl, config: MirrorConfig) -> CmdResult<Mirror> {
    let db = moneyhub_mirror::Db::open_url(url).await.map_err(mirror_failure)?;
    Ok(Mirror::new(ctx.client.clone(), db, config))
}

/// Runs the command.
pub async fn run(global: &GlobalArgs, command: MirrorCommand) -> CmdResult {
    match command {
        MirrorCommand::Run(args) => serve(global, args).await,
        MirrorCommand::Backfill(args) => scope(global, args, false).await,
        MirrorCommand::Reconcile(args) => scope(global, args, true).await,
        MirrorCommand::Status(args) => status(global, args).await,
        MirrorCommand::Export(args) => export(args).await,
        MirrorCommand::Retry(args) => retry(global, args).await,
        MirrorCommand::Actions(args) => actions(global, args).await,
        MirrorCommand::History(args) => history(global, args).await,
    }
}

async fn retry(global: &GlobalArgs, args: RetryArgs) -> CmdResult {
    let url = db_url(&args.db)?;
    if args.notifications {
        return retry_notifications(global, &url).await;
    }
    let user = args.user.as_deref().map(resolve::user).transpose()?;
    let db = moneyhub_mirror::Db::open_url(&url).await.map_err(mirror_failure)?;
    let requeued = db.requeue_parked(user.as_ref().map(UserId::as_str)).await;
    db.close().await;
    let n = requeued.map_err(mirror_failure)?;
    match global.output {
        OutputFormat::Json => output::json(&json!({ "requeued": n })),
        OutputFormat::Table => output::line(&format!(
            "re-queued {}; `moneyhub mirror run` applies them",
            output::count(usize::try_from(n).unwrap_or(usize::MAX), "parked event", "parked events")
        )),
    }
    Ok(())
}

async fn serve(global: &GlobalArgs, args: RunArgs) -> CmdResult {
    let url = db_url(&args.db)?;
    let ctx = Ctx::new(global).await?;
    // Before anything is announced: a signal from then on is a graceful stop.
    let shutdown = crate::signals::shutdown();
    let mut config = lifecycle_config(&args.lifecycle)?
        .allow_unsigned_json(args.allow_unsigned_json)
        .free_space_floors(
            args.pause_below_mib.saturating_mul(1024 * 1024),
            args.refuse_below_mib.saturating_mul(1024 * 1024),
        )
        .retention(std::time::Duration::from_secs(args.retention_days.saturating_mul(86_400)))
        .api_requests_per_second(args.api_requests_per_second)
        .http(
            moneyhub_http::ServeConfig::default()
                .shutdown_timeout(std::time::Duration::from_secs(args.shutdown_timeout)),
        );
    match (args.max_webhook_age, ctx.is_sandbox()) {
        (Some(secs), _) => config = config.webhook_iat_window(std::time::Duration::from_secs(secs)),
        // A sandbox's clock can be advanced by days between two webhooks, and this process
        // read its offset once, at start: the `iat` check would refuse everything sent after
        // an advance. Signature, `iss` and `aud` are still checked.
        (None, true) => config = config.webhook_iat_window(std::time::Duration::MAX),
        (None, false) => {}
    }
    // A remote sandbox's clock can be moved at any time: follow it, so that the lifecycle
    // loop's due times are the sandbox's.
    ctx.follow_sandbox_clock();
    let ctx = with_db_guard(ctx, &url, &args.lifecycle).await?;
    let mirror = open(&ctx, &url, config).await?;
    let listener = listen(&args.listen).await?;
    let addr = listener.local_addr().map_err(|e| Failure::internal(e.to_string()))?;
    let embedded = match &ctx.sandbox {
        Some(link) if link.embedded => Some(wire_embedded(&ctx, &link.base_url, addr).await?),
        _ => None,
    };
    match ctx.output {
        OutputFormat::Json => output::json(&json!({
            "listening": addr.to_string(),
            "workers": args.workers,
            "apiRequestsPerSecond": mirror.config().api_requests_per_second,
            "db": url.to_string(),
            "sandbox": embedded,
        })),
        OutputFormat::Table => output::line(&format!(
            "mirror: receiving webhooks on http://{addr}/webhooks, {} workers{}, database {url}; Ctrl-C or SIGTERM stops",
            args.workers,
            match mirror.config().api_requests_per_second {
                Some(n) => format!(" (at most {n} API requests/s)"),
                None => String::new(),
            }
        )),
    }
    if args.allow_unsigned_json {
        output::warn("moneyhub: accepting unsigned JSON webhooks (--allow-unsigned-json)");
    }
    if let Some(base) = &embedded {
        output::warn(&format!(
            "moneyhub: the embedded sandbox at {base} sends its webhooks here; its clock is frozen, so \
             move it on to make activity:\n  moneyhub sandbox clock advance 24h --sandbox-url {base}"
        ));
    }
    tracing::info!(listening = %addr, workers = args.workers, "mirror run started");
    let ran = mirror.run(listener, usize::from(args.workers), shutdown).await;
    mirror.db().close().await;
    ran.map_err(mirror_failure)?;
    tracing::info!("mirror run stopped");
    Ok(())
}

/// Binds the receiver (through `moneyhub_http::bind`: a deep accept queue) on `addr`, a
/// `host:port` that may need resolving.
async fn listen(addr: &str) -> CmdResult<tokio::net::TcpListener> {
    let fail = |e: &dyn std::fmt::Display| Failure::usage(format!("cannot listen on {addr}: {e}"));
    let mut last: Option<std::io::Error> = None;
    for a in tokio::net::lookup_host(addr).await.map_err(|e| fail(&e))? {
        match moneyhub_http::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => fail(&e),
        None => fail(&"the address resolves to nothing"),
    })
}

/// Points the embedded sandbox's webhooks (signed) at this process's receiver, so that
/// `mirror run` with nothing configured has something to mirror; returns the sandbox's URL.
#[cfg(feature = "sandbox")]
async fn wire_embedded(ctx: &Ctx, base: &str, addr: std::net::SocketAddr) -> CmdResult<String> {
    // A receiver on every interface is still reached on loopback.
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    let target = format!("http://{host}:{}/webhooks", addr.port());
    ctx.control()?.set_webhook_target(Some(&target), Some("jwt")).await.map_err(|e| {
        Failure::internal(format!("the embedded sandbox refused the webhook target {target}: {e}"))
    })?;
    Ok(base.to_owned())
}

/// Without the `sandbox` feature there is no embedded sandbox to wire.
#[cfg(not(feature = "sandbox"))]
async fn wire_embedded(_ctx: &Ctx, _base: &str, _addr: std::net::SocketAddr) -> CmdResult<String> {
    Err(crate::commands::missing_feature("sandbox", "an embedded sandbox"))
}

async fn scope(global: &GlobalArgs, args: ScopeArgs, reconcile: bool) -> CmdResult {
    let url = db_url(&args.db)?;
    let users = args.user.iter().map(|u| resolve::user(u)).collect::<CmdResult<Vec<UserId>>>()?;
    let ctx = Ctx::new(global).await?;
    let verb = if reconcile { "reconciling" } else { "backfilling" };
    let bar = progress::counter(format!("{verb}: transactions listed"));
    let shown = bar.clone();
    let last =
        Arc::new(parking_lot::Mutex::new(std::collections::HashMap::<(UserId, ConnectionId), u64>::new()));
    let mirror = open(&ctx, &url, MirrorConfig::default()).await?.on_progress(move |p: &Progress| {
        // `done` counts per listing: add what this listing advanced by.
        let mut seen = last.lock();
        let key = (p.user_id.clone(), p.connection_id.clone());
        let before = seen.get(&key).copied().unwrap_or(0);
        let step = p.done.saturating_sub(before.min(p.done));
        seen.insert(key, p.done);
        shown.inc(step);
        let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
        shown.set_message(output::sanitize_line(&format!(
            "{verb} {} {}: {}{total}",
            output::short_connection(p.connection_id.as_str()),
            p.user_id,
            p.done
        )));
    });
    let mut scope = match users.is_empty() {
        true => Scope::all(),
        false => Scope::users(users),
    };
    scope = scope.discover(args.all_users).concurrency(usize::from(args.concurrency));
    let report =
        if reconcile || args.force { mirror.reconcile(&scope).await } else { mirror.backfill(&scope).await };
    bar.finish_and_clear();
    let report = report.map_err(mirror_failure)?;
    print_report(&ctx, &report, reconcile);
    mirror.db().close().await;
    if report.errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::api(format!("{} of {} users failed", report.errors.len(), report.users)))
    }
}

fn print_report(ctx: &Ctx, r: &ReconcileReport, reconcile: bool) {
    match ctx.output {
        OutputFormat::Json => output::json(&json!({
            "users": r.users,
            "errors": r.errors.iter().map(|(u, e)| json!({"user": u, "error": e})).collect::<Vec<_>>(),
            "totals": r.totals,
        })),
        OutputFormat::Table => {
            for (u, e) in &r.errors {
                output::warn(&format!("moneyhub: user {u}: {e}"));
            }
            let t = &r.totals;
            output::line(&format!(
                "{} {}: {} listed in full ({}), {} written, {} buried, {} purged, {} dropped",
                if reconcile { "reconciled" } else { "backfilled" },
                output::count(r.users, "user", "users"),
                output::count(t.full, "connection", "connections"),
                output::count(t.listed, "transaction", "transactions"),
                t.upserts,
                t.tombstones,
                output::count(t.purged, "connection", "connections"),
                output::count(t.dropped_accounts, "account", "accounts"),
            ));
        }
    }
}

async fn status(global: &GlobalArgs, args: StatusArgs) -> CmdResult {
    let url = db_url(&args.db)?;
    let mut query = moneyhub_mirror::StatusQuery::default();
    query.user = args.user.as_deref().map(resolve::user).transpose()?;
    query.limit = args.limit as usize;
    let db = moneyhub_mirror::Db::open_url(&url).await.map_err(mirror_failure)?;
    let s = db.status(&query).await.map_err(mirror_failure)?;
    let lifecycle = db.lifecycle_counts(chrono::Utc::now().timestamp_millis()).await.map_err(mirror_failure);
    db.close().await;
    let lifecycle = lifecycle?;
    let now = chrono::Utc::now();
    let at = |ms: i64| chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms);
    match global.output {
        OutputFormat::Json => {
            let mut v = serde_json::to_value(&s).map_err(|e| Failure::internal(e.to_string()))?;
            v["lifecycle"] = lifecycle_json(&lifecycle);
            output::json(&v)
        }
        OutputFormat::Table => {
            if !s.users.is_empty() {
                let mut t = Table::new(vec![
                    Column::new("USER"),
                    Column::new("LIVE").right(),
                    Column::new("DELETED").right(),
                    Column::new("CONNECTIONS").right(),
                    Column::new("PENDING").right(),
                    Column::new("LAST EVENT"),
                ]);
                for u in &s.users {
                    t.row(vec![
                        u.user_id.clone(),
                        output::group(u.live.max(0) as u64),
                        output::group(u.tombstones.max(0) as u64),
                        u.connections.to_string(),
                        u.pending.to_string(),
                        u.last_event_ms
                            .and_then(at)
                            .map(|t| output::when_short(now, &t))
                            .unwrap_or_else(|| "-".into()),
                    ]);
                }
                output::table(&t);
            }
            // The list is bounded (a fleet has 100,000 users): say when it was cut.
            let shown = s.users.len();
            let total = usize::try_from(s.users_total).unwrap_or(0);
            let users = match &query.user {
                Some(user) if s.users.is_empty() => {
                    format!("{user} is not known to the mirror ({})", output::count(total, "user", "users"))
                }
                _ if shown < total => format!(
                    "showing {} of {} (--limit N for more, --user ID for one)",
                    output::group(shown as u64),
                    output::count(total, "user", "users")
                ),
                _ => output::count(total, "user", "users"),
            };
            let lag = s
                .oldest_pending_ms
                .and_then(at)
                .map(|t| output::span(now - t))
                .unwrap_or_else(|| "none".into());
            let last = s
                .last_event
                .as_ref()
                .and_then(|e| {
                    at(e.received_ms).map(|t| {
                        format!("{} for {} {}", e.event_type, e.user_id, output::when_short(now, &t))
                    })
                })
                .unwrap_or_else(|| "none".into());
            output::details(&[
                ("users", users),
                (
                    "transactions",
                    format!(
                        "{} live, {} deleted",
                        output::group(s.live.max(0) as u64),
                        output::group(s.tombstones.max(0) as u64)
                    ),
                ),
                (
                    "inbox",
                    format!(
                        "{} pending, {} failed, {} applied; {} webhook ids in the ledger (applied ones \
                         kept for the retention, 7 days unless `mirror run --retention-days`)",
                        s.inbox_pending, s.inbox_failed, s.inbox_applied, s.ledger
                    ),
                ),
                ("lag", lag),
                ("last event", last),
                ("connections", lifecycle_line(&lifecycle)),
                (
                    "notifications",
                    format!(
                        "{} pending, {} parked{}",
                        lifecycle.outbox_pending,
                        lifecycle.outbox_parked,
                        lifecycle
                            .oldest_undelivered_ms
                            .and_then(at)
                            .map(|t| format!(", oldest written {}", output::when(&t)))
                            .unwrap_or_default()
                    ),
                ),
            ]);
        }
    }
    Ok(())
}

async fn export(args: ExportArgs) -> CmdResult {
    let url = db_url(&args.db)?;
    let user = args.user.as_deref().map(resolve::user).transpose()?;
    let db = moneyhub_mirror::Db::open_url(&url).await.map_err(mirror_failure)?;
    let format = match args.format {
        Format::Csv => ExportFormat::Csv,
        Format::Json => ExportFormat::Json,
    };
    let mut options = ExportOptions::new().include_deleted(args.include_deleted).raw(args.raw);
    if let Some(u) = user {
        options = options.user(u);
    }
    let result = match &args.out {
        Some(path) => export_to_file(&db, format, &options, path).await,
        None => {
            // Through the terminal-safe writer: a description carrying escape sequences is
            // shown escaped; `--out FILE` keeps the data verbatim. A closed pipe ends quietly.
            let mut out = output::SafeStdout::new();
            let r = moneyhub_mirror::export::export(&db, format, &options, &mut out).await;
            let finished = out.finish();
            r.map_err(mirror_failure).and_then(|n| {
                finished
                    .map(|()| n)
                    .map_err(|e| Failure::internal(format!("could not write the output: {e}")))
            })
        }
    };
    db.close().await;
    let n = result?;
    if let Some(path) = &args.out {
        output::warn(&format!(
            "moneyhub: {} written to {}",
            output::count(n as usize, "transaction", "transactions"),
            path.display()
        ));
    }
    Ok(())
}

/// Exports to `--out PATH`.
///
/// * A regular file (or none yet): into a temporary file created exclusively (`O_EXCL`, mode
///   0600, a name no other process can guess: `.NAME.<random>.partial`) in the same directory,
///   renamed into place once everything is written and flushed. A failed export never leaves a
///   truncated file under the asked name, nor replaces an earlier export. The new file keeps
///   the permissions of the file it replaces, else 0600 (it holds financial data).
/// * A symbolic link: the same, for the file it points to (the link stays a link); a link
///   to a special file is written as that special file.
/// * A special file (a FIFO, a character device such as `/dev/null` or a terminal, a socket):
///   written directly, never replaced.
/// * A directory or a link pointing nowhere: refused.
async fn export_to_file(
    db: &moneyhub_mirror::Db,
    format: ExportFormat,
    options: &ExportOptions,
    path: &std::path::Path,
) -> CmdResult<u64> {
    let cannot =
        |what: &str, e: std::io::Error| Failure::usage(format!("cannot {what} {}: {e}", path.display()));
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let (target, meta) = match std::fs::metadata(path) {
        // A link to a regular file: replace that file. A link to anything else (`/dev/stdout`
        // → `/proc/self/fd/1` → a pipe, which has no path) is opened through the link below.
        Ok(meta) if link && meta.is_file() => {
            (std::fs::canonicalize(path).map_err(|e| cannot("resolve", e))?, Some(meta))
        }
        Ok(meta) => (path.to_path_buf(), Some(meta)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !link => (path.to_path_buf(), None),
        Err(e) if link => {
            return Err(Failure::usage(format!(
                "{} is a symbolic link to nothing that can be written ({e}); remove it or name another file",
                path.display()
            )))
        }
        Err(e) => return Err(cannot("inspect", e)),
    };
    if meta.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(Failure::usage(format!("{} is a directory: name a file", path.display())));
    }
    if meta.as_ref().is_some_and(|m| !m.is_file()) {
        // A FIFO, a device, a socket: write into it as it is.
        let file = std::fs::OpenOptions::new().write(true).open(&target).map_err(|e| cannot("open", e))?;
        let mut out = std::io::BufWriter::new(file);
        let n =
            moneyhub_mirror::export::export(db, format, options, &mut out).await.map_err(mirror_failure)?;
        out.flush().map_err(|e| cannot("write", e))?;
        return Ok(n);
    }
    let name =
        target.file_name().ok_or_else(|| Failure::usage(format!("{} is not a file name", path.display())))?;
    let (partial, file) = create_partial(&target, name, meta.as_ref())
        .map_err(|e| cannot("create a temporary file beside", e))?;
    let mut out = std::io::BufWriter::new(file);
    let finished = moneyhub_mirror::export::export(db, format, options, &mut out)
        .await
        .map_err(mirror_failure)
        .and_then(|n| {
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&partial, &target))
                .map(|()| n)
                .map_err(|e| cannot("write", e))
        });
    if finished.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    finished
}

// ----- the lifecycle loop: run settings, `mirror actions`, `doctor --mirror` ------------------

/// The mirror's settings from `mirror run`'s lifecycle flags.
fn lifecycle_config(args: &LifecycleRunArgs) -> CmdResult<MirrorConfig> {
    let notify = match (&args.notify_url, &args.notify_secret_file) {
        (Some(url), Some(file)) => {
            let secret = std::fs::read(file).map_err(|e| {
                Failure::usage(format!("--notify-secret-file {}: cannot read it: {e}", file.display()))
            })?;
            let config = moneyhub_mirror::notify::NotifyConfig::new(url, secret)
                .map_err(|e| Failure::usage(format!("--notify-url / --notify-secret-file: {e}")))?;
            Some(config)
        }
        _ => None,
    };
    let auto = args.auto_sync.then(|| moneyhub_mirror::AutoSync::per_minute(args.auto_sync_per_minute));
    Ok(MirrorConfig::default().notify(notify).auto_sync(auto))
}

/// With `--auto-sync`, the manual-sync guard's records move into the mirror's database (every
/// process of the mirror shares them), and the client is rebuilt on them.
async fn with_db_guard(ctx: Ctx, url: &DbUrl, args: &LifecycleRunArgs) -> CmdResult<Ctx> {
    if !args.auto_sync {
        return Ok(ctx);
    }
    let store = moneyhub_mirror::DbGuardStore::open(&url_text(url)).await.map_err(mirror_failure)?;
    crate::guard_store::use_mirror_database(store);
    Ok(ctx)
}

/// The URL as `Db::open` takes it (the password kept: it is not shown).
fn url_text(url: &DbUrl) -> String {
    match url {
        DbUrl::Postgres { url, schema } => match schema {
            Some(s) => format!("{url}{}schema={s}", if url.contains('?') { '&' } else { '?' }),
            None => url.clone(),
        },
        DbUrl::Sqlite { path } => format!("sqlite:{}", path.display()),
    }
}

/// `7d`, `12h`, `90m`, `30s`, or combinations (`1d12h`).
fn parse_span(text: &str) -> CmdResult<chrono::Duration> {
    let bad = || Failure::usage(format!("--due-within {text:?}: use a span such as 7d, 12h, 1d12h or 90m"));
    let mut total = chrono::Duration::zero();
    let mut digits = String::new();
    for ch in text.trim().chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        let unit = match ch {
            'd' => chrono::Duration::try_days(n),
            'h' => chrono::Duration::try_hours(n),
            'm' => chrono::Duration::try_minutes(n),
            's' => chrono::Duration::try_seconds(n),
            _ => None,
        }
        .ok_or_else(bad)?;
        total = total.checked_add(&unit).ok_or_else(bad)?;
    }
    if !digits.is_empty() || total <= chrono::Duration::zero() {
        return Err(bad());
    }
    Ok(total)
}

/// Server-sent text as it may reach a terminal or a spreadsheet: credentials redacted, control
/// characters (escape sequences, line breaks) replaced.
fn shown(text: &str) -> String {
    moneyhub::redact_credentials(text).chars().map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect()
}

fn ms_time(ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
}

/// One connection's advice as `mirror actions` prints it (JSON: camelCase).
fn action_json(s: &moneyhub_mirror::ConnectionState) -> serde_json::Value {
    let ts = |ms: Option<i64>| ms.and_then(ms_time).map(|t| output::ts(&t));
    json!({
        "connectionId": s.connection_id,
        "userId": s.user_id,
        "name": s.connection.get("name"),
        "type": s.connection.get("type"),
        "action": s.action,
        "reason": s.reason,
        "notBefore": ts(s.not_before_ms),
        "rule": s.rule,
        "unknown": s.unknown,
        "since": ts(Some(s.action_since_ms)),
        "dueAt": ts(s.due_ms),
        "evaluatedAt": ts(Some(s.evaluated_ms)),
        "status": s.status(),
        "error": s.error(),
        "extendedStatus": s.extended_status(),
        "statusSince": ts(Some(s.status_since_ms)),
        "removed": s.removed,
        "movedFrom": s.moved_from,
        "lastManualSync": ts(s.last_manual_sync_ms),
        "connection": s.connection,
    })
}

/// A CSV cell: quoted when needed, and a text starting with a formula character prefixed with
/// `'` (as `mirror export` does).
fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{v}") } else { v.to_owned() };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// `--output table|json|csv` (or the hidden `--format`, which wins when given).
fn actions_format(global: &GlobalArgs, format: Option<ActionsFormat>) -> ActionsFormat {
    format.unwrap_or(match global.output_arg {
        OutputArg::Json => ActionsFormat::Json,
        OutputArg::Table => ActionsFormat::Table,
        OutputArg::Csv => ActionsFormat::Csv,
    })
}

/// A CSV text: the header, then the rows' cells (each through [`csv_cell`]).
fn csv_text(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut text = header.join(",");
    text.push('\n');
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    text
}

/// The connection `raw` designates in the mirror (see [`HistoryArgs::connection`]).
async fn mirror_connection(db: &moneyhub_mirror::Db, raw: &str, user: Option<&UserId>) -> CmdResult<String> {
    let raw = raw.trim();
    if raw.is_empty()
        || raw.len() > 200
        || !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':')
    {
        return Err(Failure::usage(
            "--connection: a connection id, or a part of one (letters, digits, `-` and `:` only)",
        ));
    }
    let found = db
        .find_connections(&raw.to_ascii_lowercase(), user.map(UserId::as_str), 11)
        .await
        .map_err(mirror_failure)?;
    if let Some(exact) = found.iter().find(|id| id.as_str() == raw) {
        return Ok(exact.clone());
    }
    let needle = raw.to_ascii_lowercase();
    let matches: Vec<&String> = found
        .iter()
        .filter(|id| {
            let id = id.to_ascii_lowercase();
            let uuid = id.rsplit_once(':').map_or(id.as_str(), |(_, u)| u);
            uuid.starts_with(&needle) || (needle.len() >= 8 && id.contains(&needle))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Failure::usage(format!("connection {} is not in the mirror", shown(raw)))),
        many => Err(Failure::usage(format!(
            "--connection {:?} is ambiguous: it matches {}{}",
            shown(raw),
            many.iter().take(10).map(|c| shown(c)).collect::<Vec<_>>().join(", "),
            if many.len() > 10 { ", …" } else { "" }
        ))),
    }
}

/// `mirror history`: one connection's states, oldest first, each with when it was entered and
/// left (the next entry's time; the current one has none). Read from the database alone.
async fn history(global: &GlobalArgs, args: HistoryArgs) -> CmdResult {
    let url = db_url(&args.db)?;
    let user = args.user.as_deref().map(resolve::user).transpose()?;
    let db = moneyhub_mirror::Db::open_url(&url).await.map_err(mirror_failure)?;
    let found = async {
        let id = mirror_connection(&db, &args.connection, user.as_ref()).await?;
        let entries = db.connection_history(&id).await.map_err(mirror_failure)?;
        let state = db
            .connection_states(
                &moneyhub_mirror::ActionFilter::all().include_removed(true).connection(id.clone()),
            )
            .await
            .map_err(mirror_failure)?
            .into_iter()
            .find(|s| s.connection_id == id);
        Ok::<_, Failure>((id, entries, state))
    }
    .await;
    db.close().await;
    let (id, entries, state) = found?;
    let ts = |ms: Option<i64>| ms.and_then(ms_time).map(|t| output::ts(&t));
    let rows: Vec<serde_json::Value> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let left = entries.get(i + 1).map(|n| n.entered_ms);
            json!({
                "connectionId": shown(&e.connection_id),
                "userId": state.as_ref().map(|s| shown(&s.user_id)),
                "enteredAt": ts(Some(e.entered_ms)),
                "leftAt": ts(left),
                "durationMs": left.map(|l| l.saturating_sub(e.entered_ms)),
                "status": e.status.as_deref().map(shown),
                "error": e.error.as_deref().map(shown),
                "extendedStatus": e.extended_status.as_deref().map(shown),
                "action": e.action.as_deref().map(shown),
            })
        })
        .collect();
    match actions_format(global, None) {
        ActionsFormat::Json => output::json(&rows),
        ActionsFormat::Csv => {
            let keys = [
                "connectionId",
                "enteredAt",
                "leftAt",
                "durationMs",
                "status",
                "error",
                "extendedStatus",
                "action",
            ];
            let text = csv_text(
                &[
                    "connection_id",
                    "entered_at",
                    "left_at",
                    "duration_ms",
                    "status",
                    "error",
                    "extended_status",
                    "action",
                ],
                rows.iter().map(|r| {
                    keys.iter()
                        .map(|k| match &r[*k] {
                            serde_json::Value::Null => String::new(),
                            serde_json::Value::String(x) => x.clone(),
                            other => other.to_string(),
                        })
                        .collect()
                }),
            );
            output::emit(&text);
        }
        ActionsFormat::Table => {
            if entries.is_empty() {
                output::line(&format!("No history for {} in the mirror.", shown(&id)));
                return Ok(());
            }
            // "Now" is the mirror's: its latest evaluation of the connection.
            let now = state
                .as_ref()
                .and_then(|s| ms_time(s.evaluated_ms))
                .or_else(|| entries.last().and_then(|e| ms_time(e.entered_ms)))
                .unwrap_or_else(chrono::Utc::now);
            let mut t = Table::new(vec![
                Column::new("ENTERED"),
                Column::new("FOR"),
                Column::new("STATUS"),
                Column::new("ERROR").elide_end(8),
                Column::new("ACTION"),
            ]);
            for (i, e) in entries.iter().enumerate() {
                let until = entries.get(i + 1).map_or(now.timestamp_millis(), |n| n.entered_ms);
                let span = chrono::Duration::milliseconds(until.saturating_sub(e.entered_ms).max(0));
                let error = e.extended_status.as_deref().or(e.error.as_deref()).map(shown);
                t.row(vec![
                    ms_time(e.entered_ms).map_or_else(|| "-".into(), |t| output::ts(&t)),
                    format!("{}{}", human_span(span), if i + 1 == entries.len() { " (current)" } else { "" }),
                    e.status.as_deref().map_or_else(|| "-".into(), shown),
                    error.unwrap_or_else(|| "-".into()),
                    e.action.as_deref().map_or_else(|| "removed".into(), shown),
                ]);
            }
            output::line(&format!(
                "{} (user {})",
                shown(&id),
                state.as_ref().map_or_else(|| "unknown".into(), |s| shown(&s.user_id))
            ));
            output::table(&t);
        }
    }
    Ok(())
}

/// A span as people read it: `3d 4h`, `5h 2m`, `40s`.
fn human_span(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

async fn actions(global: &GlobalArgs, args: ActionsArgs) -> CmdResult {
    let url = db_url(&args.db)?;
    for a in &args.action {
        if !moneyhub::health::Action::ALL.iter().any(|x| x.as_str() == a) {
            return Err(Failure::usage(format!(
                "--action {a:?}: one of none, sync, reauth, reconsent, refresh, remove, contact_support"
            )));
        }
    }
    let user = args.user.as_deref().map(resolve::user).transpose()?;
    let span = args.due_within.as_deref().map(parse_span).transpose()?;
    let db = moneyhub_mirror::Db::open_url(&url).await.map_err(mirror_failure)?;
    let mut filter = moneyhub_mirror::ActionFilter::all().include_removed(args.include_removed);
    for a in &args.action {
        filter = filter.action(a.clone());
    }
    if let Some(u) = &user {
        filter = filter.user(u.as_str());
    }
    // "Now" is the mirror's: the time of its latest evaluation (a sandbox's virtual clock
    // when it follows one), else this machine's.
    let states = moneyhub_mirror::lifecycle::actions(&db, &filter).await.map_err(mirror_failure);
    let states = match (states, span) {
        (Ok(all), Some(span)) => {
            let now = all
                .iter()
                .map(|s| s.evaluated_ms)
                .max()
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
            let by = now.saturating_add(span.num_milliseconds());
            moneyhub_mirror::lifecycle::actions(&db, &filter.due_by(by)).await.map_err(mirror_failure)
        }
        (r, _) => r,
    };
    db.close().await;
    let states = states?;
    let format = actions_format(global, args.format);
    match format {
        ActionsFormat::Json => output::json(&states.iter().map(action_json).collect::<Vec<_>>()),
        ActionsFormat::Csv => {
            let mut text = String::from(
                "connection_id,user_id,action,reason,not_before,rule,since,due_at,status,error,extended_status\n",
            );
            for s in &states {
                let v = action_json(s);
                let cell = |k: &str| match &v[k] {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(x) => csv_cell(&shown(x)),
                    other => csv_cell(&other.to_string()),
                };
                let row: Vec<String> = [
                    "connectionId",
                    "userId",
                    "action",
                    "reason",
                    "notBefore",
                    "rule",
                    "since",
                    "dueAt",
                    "status",
                    "error",
                    "extendedStatus",
                ]
                .iter()
                .map(|k| cell(k))
                .collect();
                text.push_str(&row.join(","));
                text.push('\n');
            }
            output::emit(&text);
        }
        ActionsFormat::Table => {
            if states.is_empty() {
                output::line("No connections.");
                return Ok(());
            }
            let now =
                states.iter().filter_map(|s| ms_time(s.evaluated_ms)).max().unwrap_or_else(chrono::Utc::now);
            let mut t = Table::new(vec![
                Column::new("USER"),
                Column::new("CONNECTION"),
                Column::new("STATUS"),
                Column::new("ERROR").elide_end(8),
                Column::new("ACTION"),
                Column::new("NOT BEFORE"),
                Column::new("SINCE"),
            ]);
            for s in &states {
                let error = s.extended_status().or(s.error()).map(shown);
                t.row_with_note(
                    vec![
                        shown(&s.user_id),
                        output::short_connection(&shown(&s.connection_id)),
                        shown(s.status().unwrap_or("-")),
                        error.unwrap_or_else(|| "-".into()),
                        s.action.clone().unwrap_or_else(|| "removed".into()),
                        s.not_before_ms
                            .and_then(ms_time)
                            .map_or_else(|| "-".into(), |t| output::when_short(now, &t)),
                        ms_time(s.action_since_ms)
                            .map_or_else(|| "-".into(), |t| output::when_short(now, &t)),
                    ],
                    shown(&s.reason),
                );
            }
            output::table(&t);
        }
    }
    Ok(())
}

async fn retry_notifications(global: &GlobalArgs, url: &DbUrl) -> CmdResult {
    let db = moneyhub_mirror::Db::open_url(url).await.map_err(mirror_failure)?;
    let n = db.requeue_parked_notifications(chrono::Utc::now().timestamp_millis()).await;
    db.close().await;
    let n = n.map_err(mirror_failure)?;
    match global.output {
        OutputFormat::Json => output::json(&json!({ "requeued": n })),
        OutputFormat::Table => output::line(&format!(
            "re-queued {}; `moneyhub mirror run --notify-url …` delivers them",
            output::count(
                usize::try_from(n).unwrap_or(usize::MAX),
                "parked notification",
                "parked notifications"
            )
        )),
    }
    Ok(())
}

fn lifecycle_json(c: &moneyhub_mirror::LifecycleCounts) -> serde_json::Value {
    json!({
        "byAction": c.by_action,
        "byStatus": c.by_status.iter().map(|((s, e), n)| json!({"status": s, "error": e, "connections": n})).collect::<Vec<_>>(),
        "notificationsPending": c.outbox_pending,
        "notificationsParked": c.outbox_parked,
        "oldestUndeliveredMs": c.oldest_undelivered_ms,
        "dueNow": c.due_now,
    })
}

fn lifecycle_line(c: &moneyhub_mirror::LifecycleCounts) -> String {
    if c.by_action.is_empty() {
        return "none evaluated yet".to_owned();
    }
    c.by_action.iter().map(|(a, n)| format!("{n} {a}")).collect::<Vec<_>>().join(", ")
}

/// `moneyhub doctor --mirror DB`: the doctor's report from the mirror's stored connections and
/// knowledge, with no API request. Each connection is advised as of the mirror's last
/// evaluation of it (or `--now`), with the same rules and output as `doctor --user`.
pub async fn doctor(global: &GlobalArgs, args: crate::cli::DoctorArgs) -> CmdResult {
    let raw = args.mirror.clone().unwrap_or_default();
    let url = raw.parse::<DbUrl>().map_err(|e| Failure::usage(format!("--mirror: {e}")))?;
    let fixed = args.now.as_deref().map(|t| resolve::time("--now", t)).transpose()?;
    let user = args.user.as_deref().map(resolve::user).transpose()?;
    let db = moneyhub_mirror::Db::open_url(&url).await.map_err(mirror_failure)?;
    let mut filter = moneyhub_mirror::ActionFilter::all();
    if let Some(u) = &user {
        filter = filter.user(u.as_str());
    }
    let states = db.connection_states(&filter).await.map_err(mirror_failure);
    db.close().await;
    let states = states?;
    let mut rows = Vec::with_capacity(states.len());
    let mut latest = None;
    for s in &states {
        let connection: moneyhub::Connection = serde_json::from_value(s.connection.clone()).map_err(|e| {
            Failure::internal(format!("the mirror's record of {} is unreadable: {e}", s.connection_id))
        })?;
        let now = fixed.or_else(|| ms_time(s.evaluated_ms)).unwrap_or_else(chrono::Utc::now);
        latest = latest.max(Some(now));
        let types: Vec<moneyhub_types::AccountType> =
            s.account_types.values().map(|t| moneyhub_types::AccountType::from(t.as_str())).collect();
        let context = crate::advice::context_for(now, (!types.is_empty()).then_some(&types))
            .with_last_manual_sync(s.last_manual_sync_ms.and_then(ms_time))
            .with_sync_allowed_at(s.sync_allowed_ms.and_then(ms_time));
        let user_id = s.user_id.parse::<UserId>().ok();
        let row = crate::advice::diagnose(&connection, user_id.as_ref(), &context);
        if !args.actionable || row.action != moneyhub::health::Action::None {
            rows.push(row);
        }
    }
    crate::advice::print(&rows, global.output, latest.unwrap_or_else(chrono::Utc::now), user.is_none());
    Ok(())
}

/// Creates `.NAME.<random>.partial` beside `target`: exclusively (`O_EXCL`, so a planted file
/// or link is never opened), mode 0600 (then the replaced file's mode, if any), with 64 random
/// bits from the standard library's per-process random keys; a taken name is tried again.
fn create_partial(
    target: &std::path::Path,
    name: &std::ffi::OsStr,
    replaced: Option<&std::fs::Metadata>,
) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new();
    for attempt in 0u32..32 {
        let mut h = random.build_hasher();
        h.write_u32(std::process::id());
        h.write_u32(attempt);
        h.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
        );
        let mut partial_name = std::ffi::OsString::from(".");
        partial_name.push(name);
        partial_name.push(format!(".{:016x}.partial", h.finish()));
        let partial = target.with_file_name(partial_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&partial) {
            Ok(file) => {
                if let Some(meta) = replaced {
                    file.set_permissions(meta.permissions())?;
                }
                return Ok((partial, file));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary name after 32 attempts"))
}
