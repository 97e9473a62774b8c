//! What this process holds of a device: its mappings, where a frame's memory lies, the content
//! of a frame, and open file descriptors. Read from /proc/self, so what the tests check is what
//! the kernel sees, not what the element says.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Address ranges where `device` is mapped into this process (from /proc/self/maps).
pub fn device_mappings(device: &str) -> Vec<Range<usize>> {
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

/// The address range of each memory of `buffer`.
pub fn memory_spans(buffer: &gst::BufferRef) -> Vec<Range<usize>> {
    buffer
        .iter_memories()
        .map(|mem| {
            let map = mem.map_readable().expect("capture memory maps readable");
            let start = map.as_ptr() as usize;
            start..start + map.size()
        })
        .collect()
}

/// Whether every memory of `buffer` lies inside one of `device`'s mappings: the frame was lent,
/// not copied.
pub fn in_device_memory(buffer: &gst::BufferRef, device: &str) -> bool {
    lies_in(buffer, &device_mappings(device))
}

/// Whether every memory of `buffer` lies inside one of `mappings` (`device_mappings`, read once
/// for many buffers: under emulation each read of /proc/self/maps takes a while).
pub fn lies_in(buffer: &gst::BufferRef, mappings: &[Range<usize>]) -> bool {
    memory_spans(buffer).iter().all(|span| {
        mappings
            .iter()
            .any(|m| m.start <= span.start && span.end <= m.end)
    })
}

pub fn hash_of(data: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    data.hash(&mut hasher);
    hasher.finish()
}

/// This process's open file descriptors and what each refers to.
pub fn open_fds() -> Vec<(String, PathBuf)> {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), target)
        })
        .collect()
}

/// How many file descriptors of this process are open on `path` (a device node).
pub fn fds_on(path: &str) -> usize {
    open_fds()
        .iter()
        .filter(|(_, target)| target == Path::new(path))
        .count()
}
