//! Issue 13 #1: PostgreSQL over TLS. The test starts its own PostgreSQL cluster (initdb and
//! pg_ctl from the machine's PostgreSQL, on a free port, as the `postgres` user when run as
//! root) with `ssl = on`, a throwaway CA and server certificate made here with `rcgen`, and a
//! `pg_hba.conf` that admits TLS connections only. It skips, saying why, where there are no
//! PostgreSQL binaries.
//!
//! Checked: `require` and `prefer` connect (encrypted; the certificate not checked);
//! `verify-full` with the right CA and host connects, with another CA or another host fails
//! with an error that says why; `verify-ca` accepts the right CA whatever the host;
//! `disable` against this server fails with an error saying the server wants TLS.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use moneyhub_mirror::Db;

/// A PostgreSQL cluster of this test; stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Cluster {
    /// Runs a PostgreSQL program (as `postgres` when we are root: initdb refuses root).
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn start(bin: PathBuf, dir: &Path, cert: &str, key: &str) -> Cluster {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let as_postgres = is_root();
        let cluster = Cluster { dir: dir.to_owned(), bin, port, as_postgres };
        let data = dir.join("data");
        std::fs::write(dir.join("server.crt"), cert).unwrap();
        std::fs::write(dir.join("server.key"), key).unwrap();
        if as_postgres {
            let ok = Command::new("chown").args(["-R", "postgres:"]).arg(dir).status().unwrap().success();
            assert!(ok, "chown {}", dir.display());
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let data_s = data.to_str().unwrap();
        cluster.run("initdb", &["-D", data_s, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nssl = on\n\
             ssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n",
            dir.display(),
            dir.join("server.crt").display(),
            dir.join("server.key").display()
        );
        let mut pg_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pg_conf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pg_conf).unwrap();
        // TLS connections only: an unencrypted one matches no line and is refused.
        std::fs::write(data.join("pg_hba.conf"), "hostssl all all 127.0.0.1/32 trust\n").unwrap();
        let log = dir.join("log").to_str().unwrap().to_owned();
        cluster.run("pg_ctl", &["-D", data_s, "-l", &log, "-w", "-t", "60", "start"]);
        cluster
    }

    fn url(&self, host: &str, query: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/postgres?hostaddr=127.0.0.1&connect_timeout=10&{query}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd.args(["-D", data.to_str().unwrap_or(""), "-m", "immediate", "-w", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA (certificate PEM, and the issuer to sign with).
fn ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), rcgen::Issuer::new(params, key))
}

async fn open_error(url: &str) -> String {
    match Db::open(url).await {
        Ok(db) => {
            db.close().await;
            panic!("{url} connected")
        }
        Err(e) => {
            println!("{url}\n  -> {e}");
            e.to_string()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_with_sslmode_and_sslrootcert() {
    let Some(bin) = pg_bin() else {
        crate::support::skip(
            "pg",
            "postgres_over_tls_with_sslmode_and_sslrootcert",
            "no PostgreSQL binaries under /usr/lib/postgresql/*/bin",
        );
        return;
    };
    if is_root() && Command::new("runuser").arg("--help").output().is_err() {
        crate::support::skip(
            "pg",
            "postgres_over_tls_with_sslmode_and_sslrootcert",
            "running as root without runuser",
        );
        return;
    }
    let dir =
        std::env::temp_dir().join(format!("mirror-tls-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_pem, issuer) = ca("moneyhub-mirror test CA");
    let (other_ca_pem, _) = ca("another CA");
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let started = std::time::Instant::now();
    let cluster = Cluster::start(bin, &dir, &server.pem(), &server_key.serialize_pem());
    let ca_file = dir.join("ca.pem");
    let other_file = dir.join("other-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    std::fs::write(&other_file, &other_ca_pem).unwrap();
    let (ca, other) = (ca_file.display().to_string(), other_file.display().to_string());

    // Encrypted, the certificate not checked; and fully verified with the right CA and host;
    // verify-ca ignores the host. Each opens (and migrates) its own schema.
    for (i, url) in [
        cluster.url("127.0.0.1", "sslmode=require"),
        cluster.url("127.0.0.1", "sslmode=prefer"),
        cluster.url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}")),
        cluster.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        cluster.url("127.0.0.1", &format!("sslmode=require&sslrootcert={ca}")),
    ]
    .iter()
    .enumerate()
    {
        let url = format!("{url}&schema=tls_{i}");
        let db = Db::open(&url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        // Migrated to the newest schema.
        assert_eq!(db.schema_version().await.unwrap(), crate::support::TestDb::LATEST_SCHEMA, "{url}");
        db.close().await;
    }

    // Another CA: refused, and the message says it is the certificate.
    for url in [
        cluster.url("localhost", &format!("sslmode=verify-full&sslrootcert={other}")),
        cluster.url("localhost", &format!("sslmode=verify-ca&sslrootcert={other}")),
        cluster.url("localhost", &format!("sslmode=require&sslrootcert={other}")),
    ] {
        let e = open_error(&url).await;
        assert!(e.contains("certificate") && e.contains("sslrootcert"), "{url}: {e}");
    }
    // The right CA, but a host the certificate does not name.
    let url = cluster.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}"));
    let e = open_error(&url).await;
    assert!(e.contains("certificate") && e.contains("host"), "{url}: {e}");
    // No CA given: the Mozilla roots do not know a throwaway CA.
    let e = open_error(&cluster.url("localhost", "sslmode=verify-full")).await;
    assert!(e.contains("certificate"), "{e}");
    // Unencrypted, against a server that admits TLS only.
    let e = open_error(&cluster.url("127.0.0.1", "sslmode=disable")).await;
    assert!(e.contains("no encryption") && e.contains("sslmode=require"), "{e}");
    // A CA file that is not there: a clear error naming it, before connecting.
    let e =
        open_error(&cluster.url("localhost", "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")).await;
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    println!("TLS checks against a fresh cluster took {:?}", started.elapsed());
    drop(cluster);
}
