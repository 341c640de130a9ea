//! A program the tests start as a user would, read line by line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running program; killed when dropped.
pub(crate) struct Program {
    pub(crate) child: Child,
    lines: mpsc::Receiver<String>,
}

impl Program {
    /// Starts `command` with its standard output read line by line.
    pub(crate) fn spawn(mut command: Command) -> Program {
        command.stderr(Stdio::null());
        Program::spawn_with_stderr(command)
    }

    /// Starts `command` with its standard output read line by line and
    /// its standard error where `command` says.
    #[allow(dead_code)] // Each test binary uses its part.
    pub(crate) fn spawn_with_stderr(mut command: Command) -> Program {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Program { child, lines }
    }

    /// Starts `bin` with `args`.
    #[allow(dead_code)] // Each test binary uses its part.
    pub(crate) fn start(bin: &str, args: &[&str]) -> Program {
        let mut command = Command::new(bin);
        command.args(args);
        Program::spawn(command)
    }

    /// The rest of the first line (from now on) that starts with `prefix`,
    /// waiting at most 30 s for each line.
    pub(crate) fn wait_for(&self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no line starting {prefix:?}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
