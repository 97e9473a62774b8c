//! vivid's platform device seen from a test: unbinding and binding it (every vivid node goes
//! and comes back, as on a USB unplug), reloading the module as it was, and what this process
//! holds meanwhile (fds, mappings of video nodes, threads, resident memory).

use std::path::Path;

use super::TIMEOUT;

pub const VIVID_DRIVER: &str = "/sys/bus/platform/drivers/vivid";

pub fn bound(platform: &str) -> bool {
    Path::new(VIVID_DRIVER).join(platform).exists()
}

/// The video4linux nodes and their sysfs names, and this process's fds on /dev nodes, for
/// failure messages and the log.
pub fn nodes() -> String {
    let mut out: Vec<String> = std::fs::read_dir("/sys/class/video4linux")
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let name = std::fs::read_to_string(e.path().join("name")).unwrap_or_default();
                    format!("{}={}", e.file_name().to_string_lossy(), name.trim())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    format!("nodes {out:?}, our fds on them {:?}", video_fds())
}

/// The video nodes this process has fds on, one entry per fd.
pub fn video_fds() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                // As text: `Path::starts_with` compares whole components ("video0" is not
                // "video"), which matched nothing.
                .map(|t| t.display().to_string())
                .filter(|t| t.starts_with("/dev/video"))
                .collect()
        })
        .unwrap_or_default()
}

/// Unbinds or binds `platform` (`vivid.0`) from vivid's driver; fails the test if that fails
/// or takes longer than `TIMEOUT` (a file handle the kernel waits for).
pub fn vivid_driver(verb: &'static str, platform: &str) {
    let platform = platform.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let file = Path::new(VIVID_DRIVER).join(verb);
        let _ = tx.send(std::fs::write(&file, &platform).map_err(|e| {
            format!(
                "writing {platform} to {}: {e} (the test needs root: run it through \
                 scripts/vm-run)",
                file.display()
            )
        }));
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(Ok(())) => eprintln!("{verb}: {}", nodes()),
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("{verb} did not finish within {TIMEOUT:?}"),
    }
}

/// Puts vivid's devices back as the rig made them when dropped, also when a test fails, so
/// that the tests after it find their nodes where `common` says.
pub struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        if !bound("vivid.0") {
            let _ = std::fs::write(Path::new(VIVID_DRIVER).join("bind"), "vivid.0");
        }
    }
}

pub fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

pub fn video_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("/dev/video"))
        .count()
}

/// This process's resident memory in KiB (/proc/self/status VmRSS).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Runs `modprobe` with `args`, failing the test if it fails.
pub fn modprobe(args: &[&str]) {
    let status = std::process::Command::new("modprobe")
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("running modprobe {args:?}: {e}"));
    assert!(status.success(), "modprobe {args:?}: {status}; {}", nodes());
    eprintln!("modprobe {args:?}: {}", nodes());
}

/// vivid's module parameters as loaded now, as `modprobe` arguments (its per-instance arrays
/// cut to the instances there are).
pub fn vivid_parameters() -> Vec<String> {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/sys/module/vivid/parameters/{name}"))
            .map(|v| v.trim().to_owned())
            .ok()
    };
    let n_devs = read("n_devs").unwrap_or_else(|| "1".into());
    let instances: usize = n_devs.parse().unwrap_or(1);
    let mut params = vec![format!("n_devs={n_devs}")];
    for name in ["node_types", "multiplanar"] {
        if let Some(value) = read(name) {
            let values: Vec<&str> = value.split(',').take(instances).collect();
            params.push(format!("{name}={}", values.join(",")));
        }
    }
    params
}

/// Loads vivid as it was when dropped, also when the test fails.
pub struct Reload(pub Vec<String>);

impl Drop for Reload {
    fn drop(&mut self) {
        let _ = std::process::Command::new("modprobe")
            .args(["-r", "vivid"])
            .status();
        let _ = std::process::Command::new("modprobe")
            .arg("vivid")
            .args(&self.0)
            .status();
        eprintln!("vivid reloaded with {:?}: {}", self.0, nodes());
    }
}
