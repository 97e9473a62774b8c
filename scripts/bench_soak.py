"""scripts/bench's section "soak": hours, measured. rustv4l2src and `v4l2src io-mode=mmap` run
side by side for an hour, then rustv4l2src goes through a hundred unplugs.

Why: every other figure comes from runs of seconds; users leave a pipeline running for days.
What grows slowly (a leak of a few bytes per frame, an fd per renegotiation, a thread per
reconnect) shows only over hours, and only when sampled.

Part 1, in a VM with vivid n_devs=2 (two single-planar capture nodes): two `capture_bench soak`
processes start together, one `rustv4l2src device=NODE1`, one `v4l2src device=NODE2
io-mode=mmap`, each `! video/x-raw,format=YUY2,width=640,height=360,framerate=30/1 ! fakesink
sync=true` (clock-synced, as a display or a recorder is) for --soak-minutes (default 60). Each
samples itself every minute from its first frame: resident set (VmRSS), open fds, threads, user
and system CPU, frames received, frames lost (gaps in the buffer OFFSET, the driver's
sequence). The report gives each element's growth after the first minute (the goal for
rustv4l2src: RSS within 256 KiB, fds and threads constant, no frame lost) and the plot
docs/bench/soak.png.

Part 2, in a VM of its own with vivid's default nodes (the CI test's rig): the device test
`unplug_cycles_leak_no_fd_mapping_thread_or_memory` of tests/reconnect.rs, built in release mode,
with RUSTV4L2_UNPLUG_CYCLES=--soak-cycles (default 100): vivid unbound and bound again that many
times under one `rustv4l2src reconnect=true` pipeline, frames checked after each return, fds,
mappings, threads and RSS at the end against the start. Its log is unplug.log.

bench.py calls guest_soak() inside the first VM and report_soak() on the host; scripts/bench
runs part 2 itself.
"""
import json, os, re, subprocess, threading, time

from bench_common import log
from bench_scale import _table, vivid_capture_nodes, vm_facts

SOAK_TITLE = "## soak: an hour side by side, and a hundred unplugs"
META = "soak-meta.json"
SOAK_CAPS = "video/x-raw,format=YUY2,width=640,height=360,framerate=30/1"
SOAK_ELEMENTS = [("rustv4l2src", "rustv4l2src device={dev}"),
                 ("v4l2src mmap", "v4l2src device={dev} io-mode=mmap")]
# The goals the issue set for rustv4l2src after the first minute.
RSS_GOAL_KIB = 256


def samples_file(outdir, name):
    return os.path.join(outdir, "soak-" + name.replace(" ", "-") + ".jsonl")


def guest_soak(outdir, bench_bin, minutes):
    """Both soak processes at once; returns how many failed."""
    nodes = vivid_capture_nodes()
    if len(nodes) < 2:
        raise SystemExit(f"bench: the soak section wants 2 vivid capture nodes, the VM has {nodes}")
    meta = {"nodes": nodes[:2], "caps": SOAK_CAPS, "minutes": minutes,
            "elements": [name for name, _ in SOAK_ELEMENTS], **vm_facts([1], minutes * 60)}
    failures = []

    def one(name, src, node):
        cmd = [bench_bin, "soak", "--src", src.format(dev=node), "--caps", SOAK_CAPS,
               "--minutes", str(minutes), "--label", name]
        log(f"soak: {' '.join(cmd)}")
        with open(samples_file(outdir, name), "w") as out:
            try:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, text=True,
                                    timeout=minutes * 60 + 300)
            except subprocess.TimeoutExpired:
                failures.append(f"{name}: did not end within {minutes} minutes + 5")
                return
        if rc.returncode:
            failures.append(f"{name}: exit {rc.returncode}: {rc.stderr.strip()[-2000:]}")

    threads = [threading.Thread(target=one, args=(name, src, node))
               for (name, src), node in zip(SOAK_ELEMENTS, nodes)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meta["wall_s"] = round(time.monotonic() - started)
    meta["failures"] = failures
    for f in failures:
        log(f"soak: {f}")
    with open(os.path.join(outdir, META), "w") as f:
        json.dump(meta, f, indent=1)
    return len(failures)


def load(resdir, name):
    path = samples_file(resdir, name)
    if not os.path.exists(path):
        return [], None, None
    lines = [json.loads(l) for l in open(path) if l.strip()]
    samples = [l for l in lines if "sample" in l]
    before = next((l for l in lines if l.get("phase") == "before"), None)
    end = next((l for l in lines if l.get("phase") == "end"), None)
    return samples, before, end


def growth(samples):
    """What changed from the sample at one minute to the last: a dict of figures, or None."""
    if len(samples) < 3:
        return None
    a, z = samples[1], samples[-1]
    after = samples[1:]
    frames = z["frames"] - a["frames"]
    cpu = (z["user_ms"] + z["sys_ms"]) - (a["user_ms"] + a["sys_ms"])
    return {
        "minutes": z["t_s"] / 60,
        "frames": z["frames"],
        "fps": frames / max(z["t_s"] - a["t_s"], 1e-9),
        "lost": z["lost"],
        "lost_after_1": z["lost"] - a["lost"],
        "backwards": z["pts_backwards"],
        "rss_first_kib": a["rss_kib"],
        "rss_growth_kib": z["rss_kib"] - a["rss_kib"],
        "rss_max_growth_kib": max(s["rss_kib"] for s in after) - a["rss_kib"],
        "fds": sorted({s["fds"] for s in after}),
        "threads": sorted({s["threads"] for s in after}),
        "cpu_ms_per_frame": cpu / frames if frames else None,
    }


def unplug_summary(resdir):
    """(cycles seen, the test's verdict, the last 'after cycle' line) from unplug.log."""
    path = os.path.join(resdir, "unplug.log")
    if not os.path.exists(path):
        return None
    text = open(path, errors="replace").read()
    cycles = re.findall(r"^after cycle (\d+): (.*)$", text, re.M)
    verdict = re.search(r"^test result: (\w+)\. (\d+) passed; (\d+) failed", text, re.M)
    meta_path = os.path.join(resdir, "unplug-meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    return {"cycles": len(cycles), "ok": bool(verdict and verdict.group(1) == "ok"),
            "first": cycles[0][1] if cycles else None, "last": cycles[-1][1] if cycles else None,
            "panic": next(iter(re.findall(r"^thread .* panicked at .*\n.*$", text, re.M)), None),
            **meta}


def report_soak(resdir, out, command, date, commit):
    from bench_common import pyplot
    meta_path = os.path.join(resdir, META)
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else None
    md = [SOAK_TITLE, "", f"Date: {date}  ", f"Command: `{command}`  "]
    bad, plotted = 0, []
    if meta:
        md += [f"Source: {commit}; {meta['gstreamer']}; guest kernel {meta['kernel']}, vivid "
               f"n_devs={meta['vivid']} (nodes {', '.join(meta['nodes'])}), QEMU TCG with "
               f"{meta['cpus']} vCPUs on a shared 2-core host.", "",
               f"Both elements at once, each in its own `capture_bench soak` process: "
               f"`ELEMENT ! {meta['caps']} ! fakesink sync=true` for {meta['minutes']:g} "
               f"minutes, sampled every minute from the first frame. Growth is from the sample "
               f"at one minute to the last; fds and threads list every value seen after the "
               f"first minute. Lost: gaps in the buffer OFFSET (vivid's sequence).", ""]
        rows, per = [], {}
        for name in meta["elements"]:
            samples, before, end = load(resdir, name)
            g = growth(samples)
            per[name] = samples
            if g is None:
                rows.append([name, "no samples"] + [""] * 9)
                bad += 1
                continue
            rows.append([
                name, f"{g['minutes']:.1f}", f"{g['frames']:,}", f"{g['fps']:.2f}",
                f"{g['lost']:g} ({g['lost_after_1']:g})", f"{g['rss_first_kib'] / 1024:.1f}",
                f"{g['rss_growth_kib']:+g} (max {g['rss_max_growth_kib']:+g})",
                "/".join(f"{x:g}" for x in g["fds"]), "/".join(f"{x:g}" for x in g["threads"]),
                f"{g['cpu_ms_per_frame']:.3f}" if g["cpu_ms_per_frame"] is not None else "-",
                (f"{end['fds']:g} fds, {end['threads']:g} threads"
                 if end and before else "-") + (f" (before: {before['fds']:g}, "
                                                 f"{before['threads']:g})" if before else ""),
            ])
        md += _table(["element", "minutes", "frames", "frames/s after 1 min",
                      "lost (after 1 min)", "RSS at 1 min MiB", "RSS growth KiB",
                      "fds after 1 min", "threads after 1 min", "cpu ms/frame after 1 min",
                      "after NULL"], rows)
        md.append("")
        g = growth(per.get(meta["elements"][0], []))
        if g:
            ok = (abs(g["rss_growth_kib"]) <= RSS_GOAL_KIB and len(g["fds"]) == 1
                  and len(g["threads"]) == 1 and g["lost_after_1"] == 0)
            md.append(f"- rustv4l2src against the goals (RSS within {RSS_GOAL_KIB} KiB, fds and "
                      f"threads constant, no frame lost after the first minute): "
                      f"{'met' if ok else 'NOT met'}.")
        for f in meta.get("failures", []):
            md.append(f"- failed: {f}")
            bad += 1
        plt = pyplot()
        if plt and any(per.values()):
            fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
            for name, samples in per.items():
                t = [s["t_s"] / 60 for s in samples]
                axes[0].plot(t, [s["rss_kib"] / 1024 for s in samples], marker=".", label=name)
                axes[1].plot(t, [s["fds"] for s in samples], marker=".", label=name)
                axes[2].plot(t, [s["threads"] for s in samples], marker=".", label=name)
            axes[0].set_ylabel("RSS MiB")
            axes[1].set_ylabel("open fds")
            axes[2].set_ylabel("threads")
            axes[2].set_xlabel("minutes since the first frame")
            axes[0].legend()
            axes[0].set_title(f"soak: 640x360@30 into fakesink sync=true, {meta['minutes']:g} min")
            fig.tight_layout()
            fig.savefig(os.path.join(out, "soak.png"), dpi=90)
            plt.close(fig)
            plotted.append("soak.png")
            md += ["", "![soak](soak.png)"]
    u = unplug_summary(resdir)
    if u:
        md += ["", "### A hundred unplugs", "",
               f"`RUSTV4L2_UNPLUG_CYCLES={u.get('cycles_wanted', '?')}` "
               f"tests/reconnect.rs `unplug_cycles_leak_no_fd_mapping_thread_or_memory` (release "
               f"build) in a VM with vivid's default nodes, {u.get('seconds', '?')} s: "
               f"{u['cycles']} cycles logged, test {'passed' if u['ok'] else 'FAILED'}.", ""]
        if u["first"]:
            md.append(f"- after cycle 1: {u['first']}")
        if u["last"]:
            md.append(f"- after cycle {u['cycles']}: {u['last']}")
        if u["panic"]:
            md.append(f"- {u['panic']}")
        if not u["ok"]:
            bad += 1
    md.append("")
    print("\n".join(md))
    return md, plotted, bad
