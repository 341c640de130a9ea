//! The hub and the agents run as child processes of this program; each
//! reports its state in lines on its standard output.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pki::Error;

/// A child process and the last value of each thing it reported.
pub(crate) struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    state: Arc<Mutex<Vec<(String, String)>>>,
}

impl Process {
    /// Starts this program again with `args`.
    pub(crate) fn start(args: &[String]) -> Result<Process, Error> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take();
        let state = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&state);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let mut words = line.split_whitespace();
                while let (Some(key), Some(value)) = (words.next(), words.next()) {
                    let mut state = lines.lock().expect("not poisoned");
                    match state.iter_mut().find(|(k, _)| k == key) {
                        Some(slot) => slot.1 = value.to_owned(),
                        None => state.push((key.to_owned(), value.to_owned())),
                    }
                }
            }
        });
        Ok(Process { child, stdin, state })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last value reported for `key`.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        let state = self.state.lock().expect("not poisoned");
        state.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// The last number reported for `key` (0 before any).
    pub(crate) fn number(&self, key: &str) -> u64 {
        self.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// Waits until `done` holds of this process, or `limit` passes.
    pub(crate) fn wait_until(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&Process) -> bool,
    ) -> Result<Duration, Error> {
        let start = Instant::now();
        while !done(self) {
            if start.elapsed() > limit {
                return Err(format!("{what}: not within {limit:?}").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(start.elapsed())
    }

    /// Sends a line to the process.
    pub(crate) fn send(&mut self, line: &str) -> Result<(), Error> {
        let stdin = self.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
