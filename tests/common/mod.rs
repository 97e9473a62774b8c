//! What every device test needs: GStreamer with the plugin registered, and vivid's nodes.
//!
//! The rig (`scripts/vm-run`) sets `RUSTV4L2_EXPECT_DEVICE=1` and the node paths. Where a device
//! is expected and missing, the test fails; it never passes by skipping.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::sync::Once;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstrustv4l2::plugin_register_static().expect("plugin registers");
    });
}

/// The vivid node whose sysfs name is `name` ("vivid-000-vid-cap"), found through `env_var`
/// when the rig exported it, else by scanning sysfs.
fn vivid_node(env_var: &str, name: &str) -> PathBuf {
    let expected = std::env::var("RUSTV4L2_EXPECT_DEVICE").is_ok_and(|v| v == "1");
    if let Ok(path) = std::env::var(env_var)
        && !path.is_empty()
    {
        return PathBuf::from(path);
    }
    if let Ok(entries) = std::fs::read_dir("/sys/class/video4linux") {
        for entry in entries.flatten() {
            let found = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
            if found.trim() == name {
                return Path::new("/dev").join(entry.file_name());
            }
        }
    }
    if expected {
        panic!("the test rig promised vivid, but no node named {name} exists");
    }
    panic!(
        "device tests need vivid's {name}: run them through scripts/vm-run (see README), \
         or set {env_var} to a capture node"
    );
}

/// vivid's single-planar capture node.
pub fn vivid_sp() -> String {
    vivid_node("RUSTV4L2_VIVID_SP", "vivid-000-vid-cap")
        .display()
        .to_string()
}

/// vivid's multi-planar capture node (`multiplanar=2` on the second instance).
pub fn vivid_mp() -> String {
    vivid_node("RUSTV4L2_VIVID_MP", "vivid-001-vid-cap")
        .display()
        .to_string()
}

/// vivid's output node: a V4L2 device that cannot capture.
pub fn vivid_out() -> String {
    vivid_node("RUSTV4L2_VIVID_OUT", "vivid-001-vid-out")
        .display()
        .to_string()
}

/// Address ranges where `device` is mapped into this process (from /proc/self/maps).
pub fn device_mappings(device: &str) -> Vec<std::ops::Range<usize>> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    maps.lines()
        .filter(|line| line.split_whitespace().nth(5) == Some(device))
        .filter_map(|line| {
            let range = line.split_whitespace().next()?;
            let (start, end) = range.split_once('-')?;
            Some(usize::from_str_radix(start, 16).ok()?..usize::from_str_radix(end, 16).ok()?)
        })
        .collect()
}
