//! An X server of a test's own, Xvfb, for the video sinks that need a display: the test then
//! runs wherever the device tests run, and fails rather than passes when there is no display.
//! `scripts/setup-deps` installs Xvfb (package xvfb) on the host, and the VM shares the host's
//! root, so it is there too.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::TIMEOUT;

/// A running Xvfb, stopped with whatever it started when dropped.
pub struct Xvfb {
    child: Child,
    display: String,
    log: PathBuf,
    // The read end of Xvfb's stdout, kept open: a write to a closed pipe would kill it.
    _stdout: Option<BufReader<ChildStdout>>,
}

impl Xvfb {
    /// Starts Xvfb on the first free display number, and returns once it accepts clients.
    /// Fails the test if Xvfb is missing or does not come up within `TIMEOUT`.
    pub fn start() -> Xvfb {
        let log = std::env::temp_dir().join(format!("rustv4l2-xvfb-{}.log", std::process::id()));
        let mut child = Command::new("Xvfb")
            // Xvfb picks a free display itself and writes its number to fd 1 once clients can
            // connect: no race for a number with another server, no polling for the socket.
            .args(["-displayfd", "1", "-nolisten", "tcp", "-noreset"])
            .args(["-screen", "0", "1280x720x24"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create the Xvfb log"))
            // Its own process group, so that stopping it stops anything it started (xkbcomp).
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("Xvfb does not start: {e}. scripts/setup-deps installs it (package xvfb)")
            });
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut xvfb = Xvfb {
            child,
            display: String::new(),
            log,
            _stdout: None,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = stdout;
            let mut line = String::new();
            let read = stdout.read_line(&mut line);
            let _ = tx.send((read.map(|_| line), stdout));
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok((Ok(line), stdout)) if line.trim().parse::<u32>().is_ok() => {
                xvfb.display = format!(":{}", line.trim());
                xvfb._stdout = Some(stdout);
                xvfb
            }
            Ok((read, _)) => panic!(
                "Xvfb gave no display number ({read:?}, exit {:?}):\n{}",
                xvfb.child.try_wait(),
                xvfb.log_text()
            ),
            Err(_) => panic!(
                "Xvfb did not come up within {TIMEOUT:?}:\n{}",
                xvfb.log_text()
            ),
        }
    }

    /// The value for `DISPLAY`: ":N".
    pub fn display(&self) -> &str {
        &self.display
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let group = self.child.id() as i32;
        // SIGTERM first, so that Xvfb removes its socket and lock file.
        for (signal, wait) in [
            (nix::libc::SIGTERM, Duration::from_secs(5)),
            (nix::libc::SIGKILL, TIMEOUT),
        ] {
            // SAFETY: killpg only sends a signal; it reads and writes no memory of this process.
            unsafe { nix::libc::killpg(group, signal) };
            let deadline = Instant::now() + wait;
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    let _ = std::fs::remove_file(&self.log);
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        eprintln!("Xvfb (process group {group}) did not stop");
    }
}
