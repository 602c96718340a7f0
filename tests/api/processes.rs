//! Processes a test runs beside its in-process servers: the real `wshub` binary (to kill it,
//! read its log or its memory from outside) and a private Redis or Mosquitto (to take it away).

use std::time::Duration;

use crate::helpers::{SECRET, WAIT};

/// The built `wshub` binary running as a child process; killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    /// `host:port` it listens on, read from its log.
    pub address: String,
    /// What it logged before it said where it listens.
    pub log: Vec<String>,
    /// What it logged since, as it comes.
    later_log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `wshub --port 0 --workers 1 <args>` (`--ephemeral` unless `args` name a
    /// `--data-dir`) with [`SECRET`] (unless `env` overrides) and
    /// waits for the address in its log; the rest of the log is drained on a thread.
    pub fn start(args: &[&str], env: &[(&str, Option<&str>)]) -> ServerProcess {
        Self::start_with_log_level(args, env, "warn,wshub::server=info")
    }

    /// Like [`start`](Self::start) with every warning kept in [`log`](Self::log).
    pub fn start_logging(args: &[&str], env: &[(&str, Option<&str>)]) -> ServerProcess {
        Self::start_with_log_level(args, env, "info")
    }

    fn start_with_log_level(
        args: &[&str],
        env: &[(&str, Option<&str>)],
        level: &str,
    ) -> ServerProcess {
        use std::io::{BufRead, BufReader};
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wshub"));
        command.args(["--port", "0", "--workers", "1"]).args(args);
        // Tests that run several servers must not share the default data directory.
        if !args.contains(&"--data-dir") {
            command.arg("--ephemeral");
        }
        command
            .env("WSHUB_JWT_SECRET", SECRET)
            .env("RUST_LOG", level)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        for (key, value) in env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let mut child = command.spawn().expect("wshub starts");
        let mut log = BufReader::new(child.stderr.take().expect("stderr piped"));
        let mut lines = Vec::new();
        let address = loop {
            let mut line = String::new();
            assert!(
                log.read_line(&mut line).unwrap() > 0,
                "server exited early: {lines:?}"
            );
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            lines.push(line);
        };
        let later_log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = later_log.clone();
        std::thread::spawn(move || {
            for line in log.lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        ServerProcess {
            child,
            address,
            log: lines,
            later_log,
        }
    }

    /// Every line logged so far, start-up included.
    pub fn all_lines(&self) -> Vec<String> {
        let later = self.later_log.lock().unwrap();
        self.log.iter().chain(later.iter()).cloned().collect()
    }

    /// Lines logged after start-up that contain `needle`.
    pub fn later_lines_with(&self, needle: &str) -> Vec<String> {
        let lines = self.later_log.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server of the test's own (a private Redis or Mosquitto) on a free port, that the test can
/// stop and start again; stopped when dropped.
pub struct OwnServer {
    pub port: u16,
    program: String,
    /// Its arguments, `{port}` standing for the port.
    args: Vec<String>,
    child: Option<std::process::Child>,
}

impl OwnServer {
    /// Starts `program args` on a free port; `None` if it cannot be started.
    pub fn start(program: &str, args: &[&str]) -> Option<OwnServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut server = OwnServer {
            port,
            program: program.to_owned(),
            args: args.iter().map(|a| a.to_string()).collect(),
            child: None,
        };
        server.restart()?;
        Some(server)
    }

    /// Starts it again on the same port and waits until it accepts connections.
    pub fn restart(&mut self) -> Option<()> {
        let port = self.port.to_string();
        let child = std::process::Command::new(&self.program)
            .args(self.args.iter().map(|a| a.replace("{port}", &port)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        self.child = Some(child);
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if std::time::Instant::now() > deadline {
                self.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(())
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}
