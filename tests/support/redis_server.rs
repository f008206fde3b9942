//! Real Redis servers for the shared-state tests (issue 11): Debian's `redis-server`, started by
//! the test on a free loopback port in a temp dir of its own, never the system service. Each
//! server keeps nothing on disk (`--save '' --appendonly no`) and is killed when dropped.
//!
//! - [`RedisServer::start`]: one server; [`RedisServer::kill`] / [`RedisServer::restart`] (same
//!   port, empty data) and [`RedisServer::stall`] (SIGSTOP until the guard drops: connections
//!   are accepted by the kernel but nothing answers) for the degradation tests.
//! - [`RedisCluster::start`]: a 3-master Redis Cluster on loopback ports, every slot covered.
//!
//! A missing `redis-server` or `redis-cli` makes these helpers panic with the reason: build.rs
//! marks the tests that use them ignored (`pc_missing_redis`) unless `CI` is set, so CI fails
//! instead of passing without Redis.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prompt_config::state::{RedisSettings, RedisState};

use super::temp_dir::TempDir;

/// Timeouts for tests that assert on the state, not on its speed: generous, since the test
/// machine is shared and a loaded server may take far longer than a production one.
pub const PATIENT: Duration = Duration::from_secs(5);

/// The server binary: `$REDIS_SERVER` or `redis-server` on `PATH`.
fn server_binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

/// The client binary: `$REDIS_CLI` or `redis-cli` on `PATH`.
fn cli_binary() -> String {
    std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_string())
}

/// How long a fresh server may take to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One `redis-server` process of this test, on `127.0.0.1:port`.
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    extra: Vec<String>,
    child: Option<Child>,
    stalled: bool,
}

impl RedisServer {
    /// Starts a standalone server on a free loopback port and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `--option value` arguments (the cluster's nodes use this).
    /// A port taken between choosing and binding (another test's server) is retried with
    /// another port.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|arg| arg.to_string()).collect();
        let mut last_error = String::new();
        for _ in 0..20 {
            let port = free_port(extra.iter().any(|arg| arg == "--cluster-enabled"));
            let dir = TempDir::new("redis");
            let mut server = RedisServer {
                port,
                dir,
                extra: extra.clone(),
                child: None,
                stalled: false,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("could not start redis-server: {last_error}");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A [`RedisState`] on this server with `PATIENT` timeouts and a prefix of its own.
    pub fn state(&self) -> RedisState {
        RedisState::new(
            RedisSettings::new(&self.url())
                .unwrap()
                .with_timeouts(PATIENT, PATIENT),
        )
        .unwrap()
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL, as a crash or an OOM kill would) and waits for it to exit;
    /// clients see their connections reset and new connections refused.
    pub fn kill(&mut self) {
        self.resume();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (with empty data) after [`RedisServer::kill`],
    /// and waits until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The old socket may linger for a moment after SIGKILL.
                Err(error) if Instant::now() > deadline => {
                    panic!(
                        "could not restart redis-server on port {}: {error}",
                        self.port
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Freezes the server (SIGSTOP) until the returned guard is dropped (SIGCONT): the kernel
    /// still accepts connections, but no command is answered, as with a server stuck in a
    /// long command or swapping. Clients see their command timeouts.
    pub fn stall(&mut self) -> Stall<'_> {
        self.signal(libc::SIGSTOP);
        self.stalled = true;
        Stall { server: self }
    }

    fn resume(&mut self) {
        if self.stalled {
            self.signal(libc::SIGCONT);
            self.stalled = false;
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.pid().expect("the redis server is not running");
        // SAFETY: kill(2) with the pid of our own child process, which we have not reaped yet
        // (so the pid cannot belong to another process).
        let status = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(status, 0, "kill({pid}, {signal}) failed");
    }

    /// Runs `redis-cli -p PORT ARGS...` against this server and returns its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }

    /// Sends one inline command over a fresh connection and returns the raw reply (`+PONG\r\n`,
    /// `:3\r\n`, ...); `None` if the server does not answer within `timeout`.
    pub fn raw(&self, command: &str, timeout: Duration) -> Option<String> {
        raw_command(self.port, command, timeout)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.path().join("redis.log");
        let mut command = Command::new(server_binary());
        command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|error| {
            format!(
                "cannot run `{}`: {error} (Debian: apt-get install redis-server redis-tools; \
                 build.rs marks the Redis tests ignored when it is missing, unless CI is set)",
                server_binary()
            )
        })?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "redis-server on port {} exited with {status}: {stderr}{}",
                    self.port,
                    tail(&log)
                ));
            }
            if raw_command(self.port, "PING", Duration::from_millis(200))
                .is_some_and(|reply| reply.starts_with("+PONG"))
            {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "redis-server on port {} did not answer PING",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A server frozen by [`RedisServer::stall`]; dropping it lets the server go on.
pub struct Stall<'a> {
    server: &'a mut RedisServer,
}

impl Stall<'_> {
    /// The stalled server (its port and URL, to aim a client at it meanwhile).
    pub fn server(&self) -> &RedisServer {
        self.server
    }
}

impl Drop for Stall<'_> {
    fn drop(&mut self) {
        self.server.resume();
    }
}

/// Three master nodes forming one Redis Cluster on loopback ports (no replicas), every one of
/// the 16384 slots assigned and `cluster_state:ok` on each node.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three nodes, joins them with `redis-cli --cluster create` and waits for
    /// `cluster_state:ok` everywhere.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = Command::new(cli_binary())
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run `{}`: {error}", cli_binary()));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes };
        let deadline = Instant::now() + START_TIMEOUT;
        while !cluster
            .nodes
            .iter()
            .all(|node| node.cli(&["cluster", "info"]).contains("cluster_state:ok"))
        {
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The nodes, each a master owning about a third of the slots.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// A cluster [`RedisState`] seeded with every node, with `PATIENT` timeouts.
    pub fn state(&self) -> RedisState {
        RedisState::new(
            RedisSettings::new(&self.urls().join(","))
                .unwrap()
                .with_timeouts(PATIENT, PATIENT),
        )
        .unwrap()
    }

    /// One `redis://127.0.0.1:PORT/` per node: the seed list for a cluster client.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// Runs `redis-cli -p PORT ARGS...` and returns its standard output.
fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new(cli_binary())
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run `{}`: {error} (Debian: apt-get install redis-tools)",
                cli_binary()
            )
        });
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Sends one inline command and reads one reply, or `None` on refusal, reset or timeout.
fn raw_command(port: u16, command: &str, timeout: Duration) -> Option<String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut buffer = [0u8; 512];
    let read = stream.read(&mut buffer).ok()?;
    (read > 0).then(|| String::from_utf8_lossy(&buffer[..read]).into_owned())
}

/// A port free on 127.0.0.1 right now (bind port 0, read the port, release it). A cluster node
/// also needs `port + 10000` (its cluster bus) free, so it draws from 20000-29999 instead.
fn free_port(cluster_bus: bool) -> u16 {
    if !cluster_bus {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        return listener.local_addr().expect("local address").port();
    }
    // A pseudo-random start so parallel tests and processes try different ports.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|time| time.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(7919);
    for attempt in 0..10_000u32 {
        let port = 20_000 + ((seed.wrapping_add(attempt.wrapping_mul(7))) % 10_000) as u16;
        let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
    panic!("no free port pair for a cluster node");
}

/// The last lines of a server log, for a start failure's message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(5);
    lines[start..].join("\n")
}
