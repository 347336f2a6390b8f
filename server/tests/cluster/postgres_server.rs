#![allow(dead_code)]
//! A real PostgreSQL of the test's own: `initdb` in a fresh folder, `postgres` on a free
//! port, trust auth, no fsync (a test does not need its data to survive the machine);
//! stopped (immediate) and removed on drop. PostgreSQL refuses to run as root, so as
//! root it runs as the `postgres` user (`runuser`). `scripts/bootstrap.sh test`
//! installs Debian's package when missing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PostgresServer {
    child: Option<Child>,
    dir: PathBuf,
    pub port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0").local_addr().expect("its address").port()
}

fn bin(name: &str) -> PathBuf {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|versions| versions.flatten().map(|v| v.path().join("bin").join(name)).find(|p| p.exists()));
    found.unwrap_or_else(|| PathBuf::from(name))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// `program args…`, as the `postgres` user when this process is root.
fn command(program: PathBuf, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

impl PostgresServer {
    pub fn start() -> PostgresServer {
        let dir = std::env::temp_dir().join(format!("switchboard-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("create the cluster's folder");
        if is_root() {
            let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().expect("chown").success();
            assert!(ok, "chown {} to postgres", dir.display());
        }
        let data = dir.join("data");
        let data_arg = data.display().to_string();
        let out = command(bin("initdb"), &["-D", &data_arg, "-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .expect("initdb runs (scripts/bootstrap.sh test installs it: apt-get install postgresql)");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let mut server = PostgresServer { child: None, dir, port: free_port() };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let data = self.dir.join("data").display().to_string();
        let sockets = self.dir.display().to_string();
        let child = command(
            bin("postgres"),
            &["-D", &data, "-p", &port, "-k", &sockets, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("postgres runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = command(bin("pg_isready"), &["-h", "127.0.0.1", "-p", &port, "-q"]).status().map(|s| s.success()).unwrap_or(false);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "postgres did not get ready on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A new, empty database of this server; its URL.
    pub async fn database(&self, name: &str) -> String {
        use sqlx::Executor;
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.expect("connect to the test's postgres");
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.expect("create the test's database");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops it at once (immediate shutdown): every connection to it is gone.
    pub fn kill(&mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let _ = command(bin("pg_ctl"), &["-D", &data, "stop", "-m", "immediate", "-w"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
