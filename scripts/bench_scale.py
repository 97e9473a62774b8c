"""scripts/bench's section "scale": N cameras in one process, and the start-up split.

bench.py calls guest_scale() inside a VM booted with vivid n_devs=8 (capture nodes only), and
report_scale() on the host. Each run is `capture_bench scale`: N sources of one element, one per
vivid capture node, each into its own fakesink, in one pipeline; the measured window starts
SCALE_WARMUP_S after every camera delivered a frame and lasts SCALE_S seconds. Every cell
(size, element, N) runs `scale_reps` times, one run per repetition, all cells of a repetition
before the next one starts, so that drift in the VM hits every element alike. What each field
means: examples/capture_bench/scale.rs; the columns: the header of scripts/bench.
"""
import glob, json, os, re, shutil, statistics, subprocess
from collections import defaultdict

from bench_common import (ELEMENTS, WANTED_FPS, cameras_axis, cell, clocksource, log, parse_strace,
                          probe_rates, pyplot, run_bench)

SCALE_ELEMENTS = ELEMENTS[:3]  # rustv4l2src, v4l2src mmap, v4l2src default
SCALE_SIZES = [(320, 180), (640, 360)]
SCALE_WARMUP_S = 2
SCALE_TITLE = "## scale: N cameras in one process"
META = "scale-meta.json"


def vivid_capture_nodes():
    """/dev/videoN of every vivid-NN-vid-cap node, in vivid's instance order."""
    nodes = []
    for d in glob.glob("/sys/class/video4linux/video*"):
        try:
            name = open(os.path.join(d, "name")).read().strip()
        except OSError:
            continue
        m = re.match(r"^vivid-(\d+)-vid-cap$", name)
        if m:
            nodes.append((int(m.group(1)), "/dev/" + os.path.basename(d)))
    return [n for _, n in sorted(nodes)]


def requests_to_first(trace):
    """{ioctl request: count} up to the first successful VIDIOC_DQBUF of a `strace -f` trace."""
    counts, pending = {}, set()
    line_re = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(.*)$")
    with open(trace, errors="replace") as f:
        for line in f:
            m = line_re.match(line)
            if not m:
                continue
            pid, rest = m.groups()
            done = re.search(r"\)\s*=\s*0\b", rest) is not None
            r = re.match(r"^ioctl\(\d+, ([A-Za-z0-9_]+)", rest)
            if r:
                counts[r.group(1)] = counts.get(r.group(1), 0) + 1
                if r.group(1) == "VIDIOC_DQBUF":
                    if "<unfinished" in rest:
                        pending.add(pid)
                    elif done:
                        break
            elif rest.startswith("<... ioctl resumed>") and pid in pending:
                pending.discard(pid)
                if done:
                    break
    return counts


def scale_configs(node):
    """The section's sizes as {name, caps, fps}, each at WANTED_FPS where `node` offers it."""
    configs = []
    for w, h in SCALE_SIZES:
        rates = probe_rates(node, w, h)
        fps = WANTED_FPS if WANTED_FPS in rates else max(rates)
        configs.append({
            "name": f"{w}x{h}@{float(fps):g}" + ("" if fps == WANTED_FPS else " (max)"),
            "caps": f"video/x-raw,format=YUY2,width={w},height={h},"
                    f"framerate={fps.numerator}/{fps.denominator}",
            "fps": float(fps),
        })
    return configs


def vm_facts(scale_ns, seconds):
    """What every scale-like section's meta says of the VM it ran in."""
    return {"ns": scale_ns, "seconds": seconds, "warmup": SCALE_WARMUP_S,
            "kernel": os.uname().release, "cpus": os.cpu_count(),
            "vivid": open("/sys/module/vivid/parameters/n_devs").read().strip()
            if os.path.exists("/sys/module/vivid/parameters/n_devs") else "?",
            "gstreamer": next((l for l in subprocess.run(
                ["gst-launch-1.0", "--version"], capture_output=True, text=True).stdout.splitlines()
                if l.startswith("GStreamer ")), "GStreamer ?"),
            "clocksource_start": clocksource()}


def scale_command(bench_bin, src, devices, cfg, seconds, warmup, label):
    """The `capture_bench scale` command of one run of `src` (an element description without
    its device) on `devices`, and how long to let it run before it is killed."""
    start_timeout = 120 + 15 * len(devices)
    cmd = [bench_bin, "scale", "--src", src.replace(" device={dev}", ""),
           "--devices", ",".join(devices), "--caps", cfg["caps"], "--seconds", str(seconds),
           "--warmup", str(warmup), "--timeout", str(start_timeout), "--label", label]
    return cmd, start_timeout + seconds + warmup + 120


def section_start(section, wanted, scale_ns, seconds, **extra):
    """The VM's vivid capture nodes (`section` wants at least `wanted`), the section's sizes
    (scale_configs) and its meta so far: the nodes, the sizes, `extra` and vm_facts()."""
    nodes = vivid_capture_nodes()
    if len(nodes) < wanted:
        raise SystemExit(f"bench: the {section} section wants {wanted} vivid capture nodes, "
                         f"the VM has {len(nodes)}: {nodes}")
    configs = scale_configs(nodes[0])
    return nodes, configs, {"nodes": nodes, "configs": configs, **extra,
                            **vm_facts(scale_ns, seconds)}


def section_end(outdir, meta_name, meta):
    """Writes a section's meta, with the clock source at its end."""
    meta["clocksource_end"] = clocksource()
    with open(os.path.join(outdir, meta_name), "w") as f:
        json.dump(meta, f, indent=1)


def cells(reps, scale_ns, configs):
    """(repetition, N, size, elements in their order) of every cell once per repetition. The
    element order rotates from cell to cell and from one repetition to the next, so that no
    element always runs first (or right after another)."""
    for rep in range(reps):
        for i, n in enumerate(scale_ns):
            for j, cfg in enumerate(configs):
                k = (rep + i + j) % len(SCALE_ELEMENTS)
                yield rep, n, cfg, SCALE_ELEMENTS[k:] + SCALE_ELEMENTS[:k]


def scale_run(bench_bin, pass_, rep, cfg, el, devices, seconds, warmup, strace_dirs=None):
    """One `capture_bench scale` run of element `el` on `devices`: its record (with the
    section's fields), whether it went well, its label and its wall time. With `strace_dirs`
    (scratch, kept) it runs under `strace -f`, and the record gets its syscall counts."""
    name, _, src = el
    label = f"{pass_}-r{rep}-n{len(devices)}-{cfg['name'].split()[0]}-{name.replace(' ', '_')}"
    cmd, timeout = scale_command(bench_bin, src, devices, cfg, seconds, warmup, label)
    trace = os.path.join(strace_dirs[0], label + ".txt") if strace_dirs else None
    if trace:
        cmd = ["strace", "-f", "-C", "-qq", "-o", trace, "--"] + cmd
    rec, ok, _, wall = run_bench(cmd, timeout)
    rec.update({"pass": pass_, "config": cfg["name"], "element": name, "n": len(devices),
                "rep": rep})
    if trace and os.path.exists(trace):
        rec.update(parse_strace(trace, devices[0]))
        rec["requests_to_first"] = requests_to_first(trace)
        shutil.move(trace, os.path.join(strace_dirs[1], label + ".txt"))
    return rec, ok, label, wall


def record(runs, rec, ok, label, wall):
    """Writes a run's record into `runs` (runs.jsonl, open) and logs it; 1 if it failed."""
    runs.write(json.dumps(rec) + "\n")
    runs.flush()
    log(f"{label}: {wall:.1f} s" + ("" if ok else f" FAILED ({rec['error'][-300:]})"))
    return 0 if ok else 1


def load_section(resdir, meta_name, passes):
    """A section's meta, and its runs of `passes`: those that went well, those that failed."""
    meta = json.load(open(os.path.join(resdir, meta_name)))
    recs = [json.loads(l) for l in open(os.path.join(resdir, "runs.jsonl")) if l.strip()]
    recs = [r for r in recs if r["pass"] in passes]
    return meta, [r for r in recs if "error" not in r], [r for r in recs if "error" in r]


def guest_scale(outdir, bench_bin, scale_s, scale_ns, reps, scale_reps, runs):
    """Every scale run into `runs` (runs.jsonl, open); returns the number of failures. `reps`:
    repetitions of the start-up pass; `scale_reps`: of every scale cell."""
    nodes, configs, meta = section_start("scale", max(scale_ns), scale_ns, scale_s,
                                         startup_reps=reps, scale_reps=scale_reps)
    strace_dirs = ("/dev/shm/bench-strace", os.path.join(outdir, "strace"))
    for d in strace_dirs:
        os.makedirs(d, exist_ok=True)
    failures = 0

    def one(pass_, cfg, el, n, seconds, warmup, strace=False, rep=0):
        nonlocal failures
        failures += record(runs, *scale_run(bench_bin, pass_, rep, cfg, el, nodes[:n], seconds,
                                            warmup, strace_dirs if strace else None))

    # Warm-up, discarded: the first load of each plugin over 9p is slow.
    for el in SCALE_ELEMENTS:
        one("scale-warmup", configs[0], el, 1, 1, 0)
    for rep, n, cfg, elements in cells(scale_reps, scale_ns, configs):
        for el in elements:
            one("scale", cfg, el, n, scale_s, SCALE_WARMUP_S, rep=rep)
    # Start-up, one camera, `reps` times: a single start varies by tens of ms under TCG.
    for rep in range(reps):
        for j, cfg in enumerate(configs):
            k = (rep + j) % len(SCALE_ELEMENTS)
            for el in SCALE_ELEMENTS[k:] + SCALE_ELEMENTS[:k]:
                one("scale-startup", cfg, el, 1, 0.5, 0, rep=rep)
    # The ioctls up to the first frame, one camera: strace is very slow under TCG.
    for cfg in configs:
        for el in SCALE_ELEMENTS:
            one("scale-strace", cfg, el, 1, 1, 0.5, strace=True)
    section_end(outdir, META, meta)
    return failures


# ---------------------------------------------------------------- report
def section_header(meta, date, command, commit):
    """The lines that open a section run in a VM of its own: when, how and on what."""
    return [
        f"Date: {date}  ",
        f"Command: `{command}`  ",
        f"Source: {commit}; {meta['gstreamer']}; guest kernel {meta['kernel']} (vivid n_devs="
        f"{meta['vivid']}, capture nodes only: {', '.join(meta['nodes'])}; clocksource "
        f"{meta.get('clocksource_start', '?')} at the start, {meta.get('clocksource_end', '?')} "
        f"at the end) under QEMU TCG with {meta['cpus']} vCPUs on a shared 2-core host.",
        "",
    ]


def failed_note(bad):
    """A note on the runs that failed, as a list of none or one line."""
    if not bad:
        return []
    return [f"{len(bad)} run(s) FAILED and are left out: " + "; ".join(
        f"{r.get('label') or r['element']}: {r['error'][-200:]}" for r in bad[:5])]


def _table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt_row = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"
    return [fmt_row(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + \
        [fmt_row(r) for r in rows]


def _num(x, fmt):
    return "n/a" if x is None else fmt.format(x)


def startup_split(r, i=0):
    """(ms to the first frame at the sink, the element's part, of which opening, the
    pipeline's part) for camera i of a run: the element's part runs from its NULL->READY start
    to its first buffer pushed; the pipeline's is the rest."""
    get = lambda k: (r.get(k) or [None] * (i + 1))[i]
    begin, ready, pushed, sink = (get(k) for k in ("start_begin_ms", "start_ready_ms",
                                                    "start_pushed_ms", "start_sink_ms"))
    if None in (begin, ready, pushed, sink):
        return None, None, None, None
    return sink, pushed - begin, ready - begin, sink - (pushed - begin)


def _med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def report_scale(resdir, out, command, date, commit):
    meta, good, bad = load_section(resdir, META, ("scale", "scale-startup", "scale-strace"))
    configs = [c["name"] for c in meta["configs"]]
    names = [e[0] for e in SCALE_ELEMENTS]
    fps = {c["name"]: c["fps"] for c in meta["configs"]}
    scale_reps = meta.get("scale_reps", 1)
    # (config, element, N) -> {repetition: run}
    run = defaultdict(dict)
    for r in good:
        if r["pass"] == "scale":
            run[(r["config"], r["element"], r["n"])][r.get("rep", 0)] = r
    per_rep = lambda cfg, el, n, key: {k: r.get(key) for k, r in run.get((cfg, el, n), {}).items()}
    cpfs = lambda cfg, el, n: list(per_rep(cfg, el, n, "cpu_ms_per_frame").values())
    cpf = lambda cfg, el, n: _med(cpfs(cfg, el, n))

    def ratios(cfg, n, other):
        """rustv4l2src's CPU per frame over `other`'s, per repetition (same VM, same minutes)."""
        rust, them = per_rep(cfg, "rustv4l2src", n, "cpu_ms_per_frame"), \
            per_rep(cfg, other, n, "cpu_ms_per_frame")
        return [rust[k] / them[k] for k in sorted(rust) if rust[k] and them.get(k)]

    rows, notes = [], []
    for cfg in configs:
        for el in names:
            for n in meta["ns"]:
                rs = list(run.get((cfg, el, n), {}).values())
                if not rs:
                    rows.append([cfg, el, n, 0] + ["FAILED"] + [""] * 11)
                    continue
                each = lambda f: [f(r) for r in rs]
                per_frame = lambda k: each(lambda r: r[k] / r["frames"] if r["frames"] else None)
                base, mine = cpf(cfg, el, meta["ns"][0]), cpf(cfg, el, n)
                lost_max = max((x for r in rs for x in r["lost_per_cam"] if x is not None),
                               default=None)
                rows.append([
                    cfg, el, n, len(rs),
                    f"{_num(_med(each(lambda r: r['frames'] / (r['window_ms'] / 1e3) / n)), '{:.1f}')}"
                    f" / {fps[cfg]:g}",
                    cell(cpfs(cfg, el, n), "{:.3f}"),
                    _num(_med(per_frame("user_ms")), "{:.3f}"),
                    _num(_med(per_frame("sys_ms")), "{:.3f}"),
                    _num(mine / base if mine and base else None, "{:.2f}"),
                    "-" if el == "rustv4l2src" else cell(ratios(cfg, n, el), "{:.2f}"),
                    f"{_num(_med(each(lambda r: r.get('lost'))), '{:g}')} "
                    f"[{_num(lost_max, '{:g}')}]",
                    _num(_med(each(lambda r: r.get("age_p99_ms"))), "{:.1f}"),
                    _num(_med(each(lambda r: r.get("age_max_ms"))), "{:.1f}"),
                    _num(_med(each(lambda r: r["peak_rss_kib"] / 1024
                                   if r.get("peak_rss_kib") else None)), "{:.1f}"),
                    _num(_med(each(lambda r: r.get("threads"))), "{:g}"),
                    _num(_med(each(lambda r: r.get("all_first_ms"))), "{:.0f}"),
                ])
    table = _table(["config", "element", "N", "runs", "frames/s per camera (of)",
                    "cpu ms/frame", "user ms/frame", "sys ms/frame", "per-frame cost / N=1",
                    "rust/this cpu", "lost [max per camera]", "age p99 ms", "age max ms",
                    "peak RSS MiB", "threads", "ms to all first frames"], rows)

    # The targets, read off the table: CPU per frame against v4l2src mmap's by the
    # ratio taken within each repetition, which cancels the drift between repetitions.
    top = max(meta["ns"])
    for cfg in configs:
        lost = {el: _med(per_rep(cfg, el, top, "lost").values()) for el in names}
        notes.append(f"{cfg}, N={top}, frames lost in the window (median): " +
                     ", ".join(f"{el} {_num(v, '{:g}')}" for el, v in lost.items()) + ".")
        by_n = {n: ratios(cfg, n, "v4l2src mmap") for n in meta["ns"]}
        above = [n for n, rs in by_n.items() if rs and _med(rs) > 1]
        always = [n for n, rs in by_n.items() if rs and min(rs) > 1]
        never = [n for n, rs in by_n.items() if rs and max(rs) <= 1]
        notes.append(
            f"{cfg}: rustv4l2src's CPU per frame / v4l2src mmap's, per repetition, median "
            "[min-max]: " + ", ".join(f"N={n} {cell(rs, '{:.2f}')}" for n, rs in by_n.items()
                                      if rs) + ". " +
            (f"Above 1 at N={', '.join(map(str, above))}" if above else
             "At or below 1 at every N") +
            (f"; above 1 in every repetition at N={', '.join(map(str, always))}"
             if always and scale_reps > 1 else "") +
            (f"; at or below 1 in every repetition at N={', '.join(map(str, never))}"
             if never and scale_reps > 1 else "") + ".")
        flat = [(el, cpf(cfg, el, top), cpf(cfg, el, meta["ns"][0])) for el in names]
        notes.append(f"{cfg}: CPU per frame at N={top} over N={meta['ns'][0]} (medians): " +
                     ", ".join(f"{el} {a / b:.2f}" for el, a, b in flat if a and b) + ".")

    # Start-up: one camera, over the start-up pass's repetitions; ioctls from the strace pass.
    srows, req_notes = [], []
    for cfg in configs:
        for el in names:
            rs = [r for r in good if r["pass"] == "scale-startup" and r["config"] == cfg
                  and r["element"] == el]
            st = next((x for x in good if x["pass"] == "scale-strace" and x["config"] == cfg
                       and x["element"] == el), {})
            splits = [startup_split(r) for r in rs]
            col = lambda i: [s[i] for s in splits]
            mile = lambda k: cell([(r.get(k) or [None])[0] for r in rs], "{:.0f}", False)
            srows.append([cfg, el, cell(col(0), "{:.0f}"), cell(col(1), "{:.0f}"),
                          cell(col(2), "{:.0f}"),
                          cell([a - b for a, b in zip(col(1), col(2)) if None not in (a, b)],
                               "{:.0f}"),
                          cell(col(3), "{:.0f}"),
                          " / ".join(mile(k) for k in (
                              "start_begin_ms", "start_ready_ms", "start_paused_ms",
                              "start_caps_ms", "start_playing_ms", "start_pushed_ms",
                              "start_sink_ms")),
                          f"{_num(st.get('ioctls_to_first_dev'), '{:g}')} / "
                          f"{_num(st.get('ioctls_to_first_all'), '{:g}')}"])
            reqs = st.get("requests_to_first")
            if reqs and cfg == configs[-1]:
                top = sorted(reqs.items(), key=lambda kv: -kv[1])
                req_notes.append(f"{el} at {cfg}, ioctls up to the first frame by request: "
                                 + ", ".join(f"{k.replace('VIDIOC_', '')} {v}"
                                             for k, v in top) + ".")
    stable = _table(["config", "element", "ms to 1st frame", "element's part ms",
                     "of which open ms", "of which start to 1st push ms", "pipeline's part ms",
                     "begin / READY / PAUSED / caps / PLAYING / pushed / sink (ms)",
                     "ioctls to 1st (dev / all)"], srows)

    plotted = plot_scale(out, meta, run, names, configs)
    notes += failed_note(bad)
    header_notes = section_header(meta, date, command, commit) + [
        f"One process, one element per vivid node, each `! CAPS ! fakesink sync=false`; the "
        f"window starts {meta['warmup']} s after every camera delivered a frame and lasts "
        f"{meta['seconds']:g} s. Each cell ran {scale_reps} time(s), once per repetition: a "
        "repetition runs every cell, elements interleaved (the order rotating), before the "
        "next starts. CPU is getrusage (user + sys) of the whole process over the window "
        "divided by the frames all sinks received in it; cpu ms/frame and rust/this cpu are "
        "the median [min-max] over the repetitions (rust/this taken within each repetition), "
        "the other columns medians. Column meanings are in the header of `scripts/bench`.",
        "",
    ]
    md = [SCALE_TITLE, ""] + header_notes + table + [""] + [f"- {n}" for n in notes] + [
        "", "### start-up split (N=1)", "",
        "Time to a first frame split at the source: its own part runs from the start of its "
        "NULL->READY change (both elements open and query the device there) to its first "
        "buffer pushed; the pipeline's is the rest (the other elements' state changes before "
        "it, and the way from its pad to the sink). Milestones in ms since "
        "`set_state(PLAYING)`; medians over "
        f"{meta.get('startup_reps', 1)} runs of 0.5 s, [min-max]; ioctls from one "
        "`strace -f` run of the same command.", "",
    ] + stable + [""] + [f"- {n}" for n in req_notes] + [""]
    if plotted:
        md += [f"![{p}]({p})" for p in plotted] + [""]
    print("\n".join(table + [""] + [f"- {n}" for n in notes] + [""] + stable + [""] +
                    [f"- {n}" for n in req_notes]))
    return md, plotted, len(bad)


def plot_scale(out, meta, run, names, configs):
    plt = pyplot()
    if plt is None:
        return []
    colours = dict(zip(names, ["tab:red", "tab:blue", "tab:green"]))
    styles = ["--", "-", ":"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for c, (cfg, style) in enumerate(zip(configs, styles)):
        for e, el in enumerate(names):
            for ax, key in zip(axes, ("cpu_ms_per_frame", "age_p99_ms")):
                pts = []
                for n in meta["ns"]:
                    ys = [r.get(key) for r in run.get((cfg, el, n), {}).values()
                          if r.get(key) is not None]
                    if ys:
                        pts.append((n, statistics.median(ys), min(ys), max(ys)))
                if not pts:
                    continue
                # Nudged sideways a little so that whiskers at one N do not hide each other.
                nudge = 2 ** ((c * len(names) + e - 2.5) * 0.02)
                xs = [n * nudge for n, _, _, _ in pts]
                ax.errorbar(xs, [m for _, m, _, _ in pts],
                            yerr=[[m - lo for _, m, lo, _ in pts], [hi - m for _, m, _, hi in pts]],
                            fmt=style, marker="o", ms=4, capsize=2, color=colours[el],
                            label=f"{el} {cfg}")
    reps = meta.get("scale_reps", 1)
    for ax, what in zip(axes, ("CPU ms per frame (user + sys, whole process)",
                               "frame age at the sink, p99 ms")):
        cameras_axis(ax, meta["ns"])
        ax.set_ylabel(what)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("N vivid cameras in one process, one element each into a fakesink"
                 + (f": median of {reps} runs, whiskers min-max" if reps > 1 else ""))
    fig.tight_layout()
    fig.savefig(os.path.join(out, "scale.png"), dpi=90)
    plt.close(fig)
    return ["scale.png"]
