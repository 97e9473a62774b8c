//! The driver seen from beside the element: `v4l2-ctl` (vivid's controls and inputs, what the
//! driver really holds) and a node that comes back after vivid disconnected it.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::TIMEOUT;

/// Runs `v4l2-ctl args`, failing the test if it does not finish within `TIMEOUT`.
pub fn v4l2_ctl(args: &[&str]) -> Output {
    let mut child = Command::new("v4l2-ctl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("v4l2-ctl starts (v4l-utils installed?)");
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().expect("wait for v4l2-ctl").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("v4l2-ctl {args:?} ran over {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().expect("v4l2-ctl output")
}

/// As `v4l2_ctl`, failing the test unless it succeeds; returns what it printed.
pub fn v4l2_ctl_ok(args: &[&str]) -> String {
    let out = v4l2_ctl(args);
    assert!(
        out.status.success(),
        "v4l2-ctl {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `device` can be opened again (vivid brings a disconnected node back once every
/// file handle on it is closed). Returns how long that took, or `None` after `limit`.
pub fn wait_for_node(device: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(device)
            .is_ok()
        {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
