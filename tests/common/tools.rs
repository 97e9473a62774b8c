//! GStreamer's command-line tools (`gst-launch-1.0`, `gst-inspect-1.0`) run as children on the
//! plugin built with this test executable, the way a user loads it: from a file, through the
//! registry.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// The plugin built together with this test executable. `cargo test` builds the cdylib in
/// target/<profile>/deps, next to the executable, and only `cargo build` copies it up to
/// target/<profile>, so the copy there may be stale.
pub fn built_plugin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let plugin = exe.with_file_name("libgstrustv4l2.so");
    assert!(
        plugin.exists(),
        "{} is missing: build with cargo test first",
        plugin.display()
    );
    plugin
}

/// A folder for tool runs: GST_PLUGIN_PATH at a folder holding only the built plugin
/// (target/<profile> would also be scanned down into deps/, which holds a second copy and the
/// proc-macro libraries), as system plugins only those that provide the elements asked for, and
/// a registry of its own: a full plugin scan takes minutes in the emulated VM, and the rig's
/// registry is frozen (GST_REGISTRY_UPDATE=no). Removed when dropped.
pub struct ToolEnv {
    dir: PathBuf,
}

/// What a tool run left: its exit status (`None` if it ran over its limit and was killed) and
/// what it printed.
pub struct ToolRun {
    pub status: Option<ExitStatus>,
    pub out: String,
    pub err: String,
}

/// A bus message as `gst-launch-1.0 -m` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchMessage {
    /// The message type's name: "error", "warning", "eos", "state-changed", ...
    pub kind: String,
    /// The name of the object that posted it; empty if none.
    pub source: String,
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

impl ToolEnv {
    /// `elements`: the factories the tools may use besides `rustv4l2src` (a caps string between
    /// elements in a launch line is a `capsfilter`).
    pub fn new(elements: &[&str]) -> ToolEnv {
        let dir = std::env::temp_dir().join(format!(
            "rustv4l2-tools-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        ));
        let (system, ours) = (dir.join("system"), dir.join("plugin"));
        std::fs::create_dir_all(&system).expect("create temporary plugin dir");
        std::fs::create_dir_all(&ours).expect("create temporary plugin dir");
        std::os::unix::fs::symlink(built_plugin(), ours.join("libgstrustv4l2.so"))
            .expect("link the plugin");
        for name in elements {
            let file = gst::ElementFactory::find(name)
                .and_then(|f| f.plugin())
                .and_then(|p| p.filename())
                .unwrap_or_else(|| panic!("no installed plugin provides {name}"));
            let link = system.join(file.file_name().expect("plugin file name"));
            if !link.exists() {
                std::os::unix::fs::symlink(&file, &link).expect("link plugin");
            }
        }
        ToolEnv { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `tool args` with `envs` added, killing it after `limit`. GLib warnings and
    /// criticals are fatal in the tool (`G_DEBUG=fatal_warnings`, as in the tests themselves):
    /// one ends it by a signal, which its exit status shows. Output goes to files, which never
    /// fill up and stall the tool as an unread pipe would.
    pub fn run(
        &self,
        tool: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        limit: Duration,
    ) -> ToolRun {
        let n = RUNS.fetch_add(1, Ordering::SeqCst);
        let (out_path, err_path) = (
            self.dir.join(format!("{tool}-{n}.out")),
            self.dir.join(format!("{tool}-{n}.err")),
        );
        let registry = self.dir.join("registry.bin");
        let mut child = Command::new(tool)
            .args(args)
            .env("GST_PLUGIN_PATH", self.dir.join("plugin"))
            .env_remove("GST_PLUGIN_PATH_1_0")
            .env("GST_PLUGIN_SYSTEM_PATH", self.dir.join("system"))
            .env("GST_PLUGIN_SYSTEM_PATH_1_0", self.dir.join("system"))
            .env("GST_REGISTRY", &registry)
            .env("GST_REGISTRY_1_0", &registry)
            .env("GST_REGISTRY_UPDATE", "yes")
            .env("G_DEBUG", "fatal_warnings")
            // gst-launch-1.0's own lines (`-m`) are translated.
            .env("LC_ALL", "C")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("create stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} starts (gstreamer1.0-tools installed?): {e}"));
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the child") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        ToolRun {
            status,
            out: std::fs::read_to_string(&out_path).unwrap_or_default(),
            err: std::fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// `gst-inspect-1.0 rustv4l2src`, failing the test unless it succeeds. The first run of a
    /// tool builds the registry.
    pub fn inspect_rustv4l2src(&self) -> ToolRun {
        let run = self.run(
            "gst-inspect-1.0",
            &["rustv4l2src"],
            &[],
            Duration::from_secs(120),
        );
        assert!(
            run.status.is_some_and(|s| s.success()),
            "{}",
            run.report("gst-inspect-1.0 rustv4l2src")
        );
        run
    }
}

impl Drop for ToolEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl ToolRun {
    /// The bus messages `gst-launch-1.0 -m` listed, in order: each `Got message #N from
    /// element "NAME" (TYPE): ...` line (or from a pad or object, or from nothing).
    pub fn messages(&self) -> Vec<LaunchMessage> {
        self.out
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("Got message #")?;
                let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                let (source, rest) = match rest.strip_prefix(" from ") {
                    Some(from) => {
                        let (_, named) = from.split_once('"')?;
                        let (name, rest) = named.split_once('"')?;
                        (name.to_string(), rest)
                    }
                    None => (String::new(), rest),
                };
                let kind = rest.strip_prefix(" (")?.split_once(')')?.0;
                Some(LaunchMessage {
                    kind: kind.to_string(),
                    source,
                })
            })
            .collect()
    }

    /// The error messages `gst-launch-1.0` reported, also when the pipeline refused to start
    /// (where `-m` lists nothing): each `ERROR: from element PATH: TEXT` line, as (PATH, TEXT).
    pub fn launch_errors(&self) -> Vec<(String, String)> {
        self.err
            .lines()
            .chain(self.out.lines())
            .filter_map(|line| {
                let (path, text) = line
                    .strip_prefix("ERROR: from element ")?
                    .split_once(": ")?;
                Some((path.to_string(), text.to_string()))
            })
            .collect()
    }

    /// The messages of type `kind`.
    pub fn messages_of(&self, kind: &str) -> Vec<LaunchMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.kind == kind)
            .collect()
    }

    /// The run for a failure message: what ran, how it ended, what it printed.
    pub fn report(&self, command: &str) -> String {
        format!(
            "{command}: {}\nstdout:\n{}\nstderr:\n{}",
            self.status
                .map_or_else(|| "ran over its limit".to_string(), |s| s.to_string()),
            self.out,
            self.err
        )
    }
}
