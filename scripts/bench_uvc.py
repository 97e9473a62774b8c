"""scripts/bench's section "uvc": the virtual USB camera (examples/uvc_camera) through the
kernel's uvcvideo driver, rustv4l2src against `v4l2src io-mode=mmap` in the same window.

Why: every other section measures vivid, whose frames appear in the kernel's memory at no cost
to anyone. A webcam's frames are assembled by uvcvideo from USB payloads (here: bulk URBs that
vhci-hcd completes from the camera program's socket), MJPEG frames change size every frame, and
uvcvideo stamps a frame when its first payload arrives. The section answers what users of
webcams ask: what each element costs per frame on that driver, how many frames each loses, and
how old a frame is when it reaches the sink.

As in the pair section, two `capture_bench scale` processes start together, N cameras each: one
of `rustv4l2src`, one of `v4l2src io-mode=mmap`, on disjoint halves of 2N virtual cameras (the
halves swap from one pair to the next), each `! CAPS ! fakesink sync=false`. Both see the same
host, the same guest and the same load: 2N cameras streaming, the camera program's own work
included (its CPU is its own process's, counted by neither element). The camera program is
started here, inside the VM, with its cameras plugged in before the first pair.

bench.py calls guest_uvc() inside a VM of its own and report_uvc() on the host.
"""
import os, subprocess, threading, time

from bench_common import ELEMENTS, cell, log
from bench_scale import (_med, _num, _table, failed_note, load_section, record, scale_run,
                         section_end, vm_facts)

UVC_ELEMENTS = [ELEMENTS[0], ELEMENTS[1]]  # rustv4l2src, v4l2src mmap
UVC_TITLE = "## uvc: the virtual USB camera through uvcvideo"
META = "uvc-meta.json"
# The camera's formats at the sizes the section uses (examples/uvc_camera offers YUY2 160x120
# and 320x180, MJPEG 320x180 and 640x360, each at 30 and 15 fps).
UVC_CONFIGS = [
    {"name": "YUY2 320x180@30", "fps": 30.0,
     "caps": "video/x-raw,format=YUY2,width=320,height=180,framerate=30/1"},
    {"name": "MJPEG 640x360@30", "fps": 30.0,
     "caps": "image/jpeg,width=640,height=360,framerate=30/1"},
]
# Cameras per process.
UVC_NS = [1, 2]
SOCKET = "uvc-camera-bench"


def camera(camera_bin, *args):
    """`uvc_camera ARGS` against the section's daemon: its answer."""
    out = subprocess.run([camera_bin, *args], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "UVC_CAMERA_SOCKET": SOCKET})
    if out.returncode:
        raise SystemExit(f"bench: uvc_camera {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


def start_cameras(camera_bin, count):
    """The camera daemon and `count` cameras (serials BENCH1...); (daemon, nodes)."""
    daemon = subprocess.Popen([camera_bin, "serve", "--with-parent"], stdin=subprocess.DEVNULL,
                              env={**os.environ, "UVC_CAMERA_SOCKET": SOCKET})
    deadline = time.monotonic() + 20
    while True:
        probe = subprocess.run([camera_bin, "state", "none"], capture_output=True, text=True,
                               env={**os.environ, "UVC_CAMERA_SOCKET": SOCKET})
        # An answer about the unknown serial (not "no daemon on socket") means it listens.
        if "no daemon" not in probe.stderr:
            break
        if time.monotonic() > deadline or daemon.poll() is not None:
            raise SystemExit("bench: the uvc camera daemon did not start")
        time.sleep(0.1)
    nodes = [camera(camera_bin, "add", f"BENCH{i + 1}", "--formats", "yuy2,mjpeg")
             for i in range(count)]
    # uvcvideo's node must be openable before the first run (udev may still be at it).
    for node in nodes:
        deadline = time.monotonic() + 20
        while not os.path.exists(node) and time.monotonic() < deadline:
            time.sleep(0.1)
    log(f"uvc cameras: {', '.join(nodes)}")
    return daemon, nodes


def guest_uvc(outdir, bench_bin, seconds, ns, reps, runs):
    """Every pair into `runs` (runs.jsonl, open); returns the number of failed runs."""
    camera_bin = os.path.join(os.path.dirname(bench_bin), "uvc_camera")
    if not os.access(camera_bin, os.X_OK):
        raise SystemExit(f"bench: {camera_bin} is missing (cargo build --release --examples)")
    daemon, nodes = start_cameras(camera_bin, 2 * max(ns))
    meta = {"nodes": nodes, "configs": UVC_CONFIGS, "reps": reps, **vm_facts(ns, seconds)}
    failures = 0
    try:
        # Warm-up, discarded: the first load of each plugin over 9p is slow.
        for el in UVC_ELEMENTS:
            failures += record(runs, *scale_run(bench_bin, "uvc-warmup", 0, UVC_CONFIGS[0], el,
                                                nodes[:1], 1, 0))
        for rep in range(reps):
            for i, n in enumerate(ns):
                for j, cfg in enumerate(UVC_CONFIGS):
                    halves = [nodes[:n], nodes[n:2 * n]]
                    if (rep + i + j) % 2:
                        halves.reverse()
                    done = []
                    threads = [threading.Thread(target=lambda el=el, devs=devs: done.append(
                        scale_run(bench_bin, "uvc", rep, cfg, el, devs, seconds, 2)))
                               for el, devs in zip(UVC_ELEMENTS, halves)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    for result in done:
                        failures += record(runs, *result)
        meta["frames_sent"] = {n: camera(camera_bin, "state", f"BENCH{k + 1}")
                               for k, n in enumerate(nodes)}
    finally:
        subprocess.run([camera_bin, "stop"], capture_output=True,
                       env={**os.environ, "UVC_CAMERA_SOCKET": SOCKET})
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    section_end(outdir, META, meta)
    return failures


def report_uvc(resdir, command, date, commit):
    meta, good, bad = load_section(resdir, META, ("uvc",))
    rust, mmap = UVC_ELEMENTS[0][0], UVC_ELEMENTS[1][0]
    # (config, N) -> {repetition: {element: run}}
    pairs = {}
    for r in good:
        pairs.setdefault((r["config"], r["n"]), {}).setdefault(r["rep"], {})[r["element"]] = r
    rows, notes = [], []
    for cfg in meta["configs"]:
        name = cfg["name"]
        for n in meta["ns"]:
            both = [p for p in pairs.get((name, n), {}).values() if rust in p and mmap in p]
            col = lambda el, k: [p[el].get(k) for p in both]
            fps = lambda el: _med([p[el]["frames"] / (p[el]["window_ms"] / 1e3) / n
                                   for p in both if p[el].get("window_ms")])
            ratios = [p[rust]["cpu_ms_per_frame"] / p[mmap]["cpu_ms_per_frame"] for p in both
                      if p[mmap]["cpu_ms_per_frame"]]
            rows.append([
                name, n, len(both),
                f"{_num(fps(rust), '{:.1f}')} / {_num(fps(mmap), '{:.1f}')}",
                cell(col(rust, "cpu_ms_per_frame"), "{:.3f}"),
                cell(col(mmap, "cpu_ms_per_frame"), "{:.3f}"),
                cell(ratios, "{:.2f}"),
                f"{_num(_med(col(rust, 'lost')), '{:g}')} / {_num(_med(col(mmap, 'lost')), '{:g}')}",
                f"{_num(_med(col(rust, 'age_p50_ms')), '{:.1f}')} / "
                f"{_num(_med(col(mmap, 'age_p50_ms')), '{:.1f}')}",
                f"{_num(_med(col(rust, 'age_p99_ms')), '{:.1f}')} / "
                f"{_num(_med(col(mmap, 'age_p99_ms')), '{:.1f}')}",
                f"{_num(_med([x / 1024 for x in col(rust, 'peak_rss_kib') if x]), '{:.1f}')} / "
                f"{_num(_med([x / 1024 for x in col(mmap, 'peak_rss_kib') if x]), '{:.1f}')}",
            ])
            if ratios:
                notes.append(f"{name}, N={n}: rustv4l2src's CPU per frame over v4l2src mmap's "
                             f"within a pair, median {_med(ratios):.2f}, at or below 1 in "
                             f"{sum(x <= 1 for x in ratios)} of {len(ratios)} pairs.")
    table = _table(["config", "N per process", "pairs", "frames/s per camera rust / mmap",
                    f"{rust} cpu ms/frame", f"{mmap} cpu ms/frame", "rust/mmap within a pair",
                    "lost rust / mmap", "age p50 ms rust / mmap", "age p99 ms rust / mmap",
                    "peak RSS MiB rust / mmap"], rows)
    notes += failed_note(bad)
    md = [UVC_TITLE, "",
          f"Date: {date}  ", f"Command: `{command}`  ",
          f"Source: {commit}; {meta['gstreamer']}; guest kernel {meta['kernel']}: uvcvideo "
          f"bound to {2 * max(meta['ns'])} virtual cameras of examples/uvc_camera (USB/IP over "
          f"vhci-hcd, bulk streaming), nodes {', '.join(meta['nodes'])}, under QEMU TCG with "
          f"{meta['cpus']} vCPUs on a shared 2-core host.", "",
          "Two `capture_bench scale` processes at once, N cameras each: one of `rustv4l2src`, "
          "one of `v4l2src io-mode=mmap`, on disjoint halves of 2N cameras (swapped from one "
          "pair to the next), each `! CAPS ! fakesink sync=false` (MJPEG not decoded); each "
          f"measures its own getrusage over a {meta['seconds']:g} s window opening "
          f"{meta['warmup']} s after its cameras' first frames. CPU per frame is the capture "
          "process's own (the camera program's work is its own process's). Lost: gaps in the "
          "buffer OFFSET (uvcvideo's sequence). Age: sink clock - base time - PTS, with "
          "uvcvideo's stamp taken when a frame's first payload arrives. "
          f"{meta['reps']} pair(s) per cell; CPU columns median [min-max], the others medians.",
          ""] + table + [""] + [f"- {n}" for n in notes] + [""]
    print("\n".join(table + [""] + [f"- {n}" for n in notes]))
    return md, [], len(bad)
