"""scripts/bench's statistics, guest-side runner and report; scripts/bench runs it, with
Debian's python3 (the report needs python3-matplotlib for the plots):

  bench.py guest OUTDIR BENCH_BIN REPS STRACE_REPS CALLGRIND_REPS SHORT_S STEADY_S SECTIONS LL_SPAN
                 SCALE_S SCALE_NS SCALE_REPS
      inside the VM: every measurement, into OUTDIR/runs.jsonl, meta.json and strace/; the
      sections "scale", "pair", "counted" and "uvc" each run alone, in a VM of their own
      (vivid n_devs=8, 16 and 8; counted on one vCPU with an instruction clock; uvc with the
      virtual USB cameras), and write scale-meta.json, pair-meta.json, counted-meta.json or
      uvc-meta.json instead of meta.json (scripts/bench_scale.py, scripts/bench_pair.py,
      scripts/bench_counted.py, scripts/bench_uvc.py); "soak" too (vivid n_devs=2; SCALE_S is
      its minutes there), writing soak-meta.json and soak-*.jsonl (scripts/bench_soak.py)
  bench.py qemu-opts
      the QEMU arguments of the counted section's VM
  bench.py report RESDIR DOCDIR COMMAND DATE COMMIT
      on the host: prints the tables, writes results.md and the plots into DOCDIR
      (docs/bench), or into RESDIR when DOCDIR is empty

What is measured and what each column means: the header of scripts/bench.
"""
import json, os, re, shutil, statistics, subprocess, sys
# No __pycache__ in scripts/.
sys.dont_write_bytecode = True

from bench_common import (BARE, ELEMENTS, WANTED_FPS, cell, clocksource, log, parse_strace,
                          probe_rates, pyplot, run_bench)
from bench_counted import COUNTED_TITLE, QEMU_OPTS, guest_counted, report_counted
from bench_pair import PAIR_TITLE, guest_pair, report_pair
from bench_scale import SCALE_TITLE, guest_scale, report_scale
from bench_uvc import UVC_NS, UVC_TITLE, guest_uvc, report_uvc
from bench_soak import SOAK_TITLE, guest_soak, report_soak
from bench_checks import CHAOS_TITLE, VALGRIND_TITLE, report_chaos, report_valgrind

SIZES = [(640, 360), (1280, 720), (1920, 1080)]

# GStreamer's own start-up cost: a live test source through the same pipeline, no device.
PIPELINE_FLOOR = ("videotestsrc is-live", "--pipeline-src", "videotestsrc is-live=true pattern=black")

# The slow-downstream section (values explained in the header).
LL_ELEMENTS = [
    ("rustv4l2src", "--pipeline-src", "rustv4l2src device={dev}"),
    ("rustv4l2src low-latency", "--pipeline-src", "rustv4l2src device={dev} low-latency=true"),
    ("v4l2src mmap", "--pipeline-src", "v4l2src device={dev} io-mode=mmap"),
]
LL_SIZE = (640, 360)
LL_STALL_MS = 150
LL_STALL_EVERY = 30
LL_TITLE = "## low-latency under a slow downstream"


# ---------------------------------------------------------------- guest side


def guest(outdir, bench_bin, reps, strace_reps, cg_reps, short_s, steady_s, sections, ll_span,
          scale_s, scale_ns, scale_reps):
    if sections == ["scale"]:
        with open(os.path.join(outdir, "runs.jsonl"), "a") as runs:
            return 1 if guest_scale(outdir, bench_bin, scale_s, scale_ns, reps, scale_reps,
                                    runs) else 0
    if sections == ["pair"]:
        with open(os.path.join(outdir, "runs.jsonl"), "a") as runs:
            return 1 if guest_pair(outdir, bench_bin, scale_s, scale_ns, scale_reps, runs) else 0
    if sections == ["counted"]:
        with open(os.path.join(outdir, "runs.jsonl"), "a") as runs:
            return 1 if guest_counted(outdir, bench_bin, scale_s, scale_ns, scale_reps,
                                      runs) else 0
    if sections == ["uvc"]:
        with open(os.path.join(outdir, "runs.jsonl"), "a") as runs:
            return 1 if guest_uvc(outdir, bench_bin, scale_s, UVC_NS, scale_reps, runs) else 0
    if sections == ["soak"]:
        # scripts/bench passes the soak's minutes where the others take their window's seconds.
        return 1 if guest_soak(outdir, bench_bin, scale_s) else 0
    if {"scale", "pair", "counted", "uvc", "soak"} & set(sections):
        raise SystemExit("bench: the scale, pair, counted, uvc and soak sections run in VMs of "
                         "their own")
    dev = os.environ.get("RUSTV4L2_VIVID_SP") or ""
    if not dev:
        raise SystemExit("bench: the VM has no vivid single-planar capture node")
    plugin_dir = os.path.realpath(os.environ.get("GST_PLUGIN_PATH", ""))
    configs = []
    for w, h in SIZES if "main" in sections else []:
        rates = probe_rates(dev, w, h)
        fps = WANTED_FPS if WANTED_FPS in rates else max(rates)
        short = max(5, round(float(fps) * short_s))
        long_ = short + max(25, round(float(fps) * steady_s))
        fps_text = f"{fps.numerator}/{fps.denominator}"
        configs.append({
            "name": f"{w}x{h}@{float(fps):g}" + ("" if fps == WANTED_FPS else " (max)"),
            "caps": f"video/x-raw,format=YUY2,width={w},height={h},framerate={fps_text}",
            "fps": float(fps), "short": short, "long": long_,
            "rates": [float(r) for r in rates],
        })
    ll = None
    if "low-latency" in sections:
        w, h = LL_SIZE
        if WANTED_FPS not in probe_rates(dev, w, h):
            raise SystemExit(f"bench: vivid does not offer {WANTED_FPS} fps at {w}x{h}")
        ll = {"name": f"{w}x{h}@{float(WANTED_FPS):g}", "fps": float(WANTED_FPS),
              "caps": f"video/x-raw,format=YUY2,width={w},height={h},framerate={WANTED_FPS}/1",
              "stall_ms": LL_STALL_MS, "stall_every": LL_STALL_EVERY, "span": ll_span}
    meta = {
        "sections": sections, "low_latency": ll,
        "device": dev, "configs": configs, "reps": reps, "strace_reps": strace_reps,
        "callgrind_reps": cg_reps,
        "kernel": os.uname().release, "cpus": os.cpu_count(),
        "gstreamer": next((l for l in subprocess.run(
            ["gst-launch-1.0", "--version"], capture_output=True, text=True).stdout.splitlines()
            if l.startswith("GStreamer ")), "GStreamer ?"),
        "clocksource_start": clocksource(),
    }
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)

    # strace output goes to tmpfs: writing it line by line over 9p costs more than the
    # traced program.
    scratch = "/dev/shm/bench-strace"
    os.makedirs(scratch, exist_ok=True)
    os.makedirs(os.path.join(outdir, "strace"), exist_ok=True)
    runs = open(os.path.join(outdir, "runs.jsonl"), "a")
    failures = 0

    def one(pass_, rep, cfg, el, kind, frames, extra=()):
        nonlocal failures
        name, option, src = el
        src = src.format(dev=dev)
        label = f"{pass_}-r{rep}-{cfg['name'].split()[0]}-{name.replace(' ', '_')}-{kind}"
        timeout = int(frames / cfg["fps"] * 4 + 120) + (600 if pass_ == "callgrind" else 0)
        cmd = [bench_bin, option, src, "--caps", cfg["caps"], "--frames", str(frames),
               "--timeout", str(timeout), "--label", label, *extra]
        trace = None
        if pass_ == "strace":
            # Timing runs leave copy counting off: it turns on every debug statement.
            cmd.append("--count-copies")
            trace = os.path.join(scratch, label + ".txt")
            cmd = ["strace", "-f", "-C", "-qq", "-o", trace, "--"] + cmd
        elif pass_ == "callgrind":
            cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                   "--vgdb=no"] + cmd
        rec, ok, err, wall = run_bench(cmd, timeout + 60)
        rec.update({"pass": pass_, "rep": rep, "config": cfg["name"], "element": name,
                    "kind": kind})
        if not ok:
            failures += 1
        if pass_ == "callgrind":
            counted = re.findall(r"^==\d+== Collected : (\d+)", err, re.M)
            rec["instructions"] = int(counted[-1]) if counted else None
        if trace and os.path.exists(trace):
            rec.update(parse_strace(trace, dev))
            shutil.move(trace, os.path.join(outdir, "strace", label + ".txt"))
        runs.write(json.dumps(rec) + "\n")
        runs.flush()
        log(f"{label}: {frames} frames, {wall:.1f} s" + ("" if ok else f" FAILED ({rec['error'][-300:]})"))
        if ok and name.startswith("rustv4l2src") and plugin_dir and \
                not os.path.realpath(rec.get("plugin_file") or "").startswith(plugin_dir + os.sep):
            raise SystemExit(f"bench: rustv4l2src came from {rec.get('plugin_file')}, not {plugin_dir}")

    # Warm-up, discarded: the first load of each plugin over 9p is slow.
    for el in ELEMENTS if configs else LL_ELEMENTS[::2]:
        cfg = configs[0] if configs else ll
        one("warmup", 0, cfg, el, "short", max(5, round(cfg["fps"] * short_s)))
    def short_and_long(pass_, reps, cfgs):
        """A short and a long run of every element at each configuration, once per repetition,
        the element order rotating from one repetition and configuration to the next."""
        for rep in range(reps):
            for ci, cfg in enumerate(cfgs):
                k = (rep + ci) % len(ELEMENTS)
                for el in ELEMENTS[k:] + ELEMENTS[:k]:
                    one(pass_, rep, cfg, el, "short", cfg["short"])
                    one(pass_, rep, cfg, el, "long", cfg["long"])

    short_and_long("time", reps, configs)
    # The pipeline's own time to a first frame, once per repetition at the first configuration.
    for rep in range(reps if configs else 0):
        one("floor", rep, configs[0], PIPELINE_FLOOR, "short", configs[0]["short"])
    # The slow downstream. --frames is only a bound: the span ends each run.
    for rep in range(reps if ll else 0):
        k = rep % len(LL_ELEMENTS)
        for el in LL_ELEMENTS[k:] + LL_ELEMENTS[:k]:
            one("lowlat", rep, ll, el, "span", ll["span"],
                ["--span", str(ll["span"]), "--stall-ms", str(ll["stall_ms"]),
                 "--stall-every", str(ll["stall_every"])])
    short_and_long("strace", strace_reps, configs)
    # Instructions in user space, counted by callgrind: much steadier than CPU time under TCG.
    # At the first configuration only: each run costs a minute.
    short_and_long("callgrind", cg_reps, configs[:1])
    runs.close()
    # The kernel's watchdog may demote the TSC when the host stalls the VM; clock_gettime then
    # stops being served by the vDSO and shows up in the syscall counts.
    meta["clocksource_end"] = clocksource()
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return 1 if failures else 0


# ---------------------------------------------------------------- statistics
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    i = (len(xs) - 1) * q
    lo = int(i)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def steady_cpu(run, i):
    """User (i=0) or system (i=1) CPU ms from the first to the last frame of a run: the
    differencing of a long and a short run then cancels the fixed cost of those frames, and
    start-up (which under TCG varies by seconds from run to run) never enters."""
    a, b = run.get("cpu_at_first_ms"), run.get("cpu_at_last_ms")
    if not a or not b or a[i] is None or b[i] is None:
        return None
    return b[i] - a[i]


def in_run_cpu(run):
    """CPU per frame between the first and the last frame of one run."""
    a, b = run.get("cpu_at_first_ms"), run.get("cpu_at_last_ms")
    if not a or not b or None in a + b or run["frames"] < 2:
        return None
    return (sum(b) - sum(a)) / (run["frames"] - 1)


def diff_per_frame(short, long_, get):
    df = long_["frames"] - short["frames"]
    a, b = get(short), get(long_)
    if df <= 0 or a is None or b is None or a is False or b is False:
        return None
    return (b - a) / df


# ---------------------------------------------------------------- report
def timestamp_notes(good):
    """One note per element that distrusted vivid's timestamps in any of these runs."""
    warned = sorted({r["element"] for r in good
                     if any("ignoring driver timestamps" in k for k in r.get("warnings") or {})})
    return [f"{el} distrusts vivid's buffer timestamps here (it warns 'ignoring driver "
            "timestamps') and then stamps each frame with the clock at dequeue minus "
            "one frame duration: its latency includes one frame period by "
            "construction, and is not a slower delivery." for el in warned]


def source_line(meta, commit):
    return (f"Source: {commit}; {meta['gstreamer']}; guest kernel {meta['kernel']} "
            f"(vivid, {meta['device']}; clocksource {meta.get('clocksource_start', '?')} at the "
            f"start, {meta.get('clocksource_end', '?')} at the end) under QEMU TCG with "
            f"{meta['cpus']} vCPUs on a shared 2-core host.")


PROPERTIES_TITLE = "## properties: the property tests at a million cases"


def report_properties(resdir, command, date, commit):
    """The properties section: each property test's result, from `cargo test`'s log."""
    meta = json.load(open(os.path.join(resdir, "properties-meta.json")))
    log_text = open(os.path.join(resdir, "properties.log"), errors="replace").read()
    results = re.findall(r"^test (properties::\S+) \.\.\. (\w+)", log_text, re.M)
    rows = [[name.removeprefix("properties::"), result] for name, result in results]
    widths = [max(len(r[i]) for r in rows + [["test", "result"]]) for i in range(2)]
    fmt = lambda r: "| " + " | ".join(x.ljust(w) for x, w in zip(r, widths)) + " |"
    table = [fmt(["test", "result"]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + \
        [fmt(r) for r in rows]
    failed = sum(r[1] != "ok" for r in rows)
    md = [PROPERTIES_TITLE, "", f"Date: {date}  ", f"Command: `{command}`  ",
          f"Source: {commit}; on the host, `cargo test --release --lib properties` with "
          f"PROPTEST_CASES={meta['cases']}: {meta['cases']:,} cases of each property test "
          f"(the ones with a fixed input run once), {meta['seconds']} s in all.", ""] + table + [
          "", f"- {len(rows) - failed} of {len(rows)} passed." +
          ("" if not failed else " See properties.log in the raw results."), ""]
    print("\n".join(table))
    return md, [], failed


def report(resdir, docdir, command, date, commit):
    runs_path = os.path.join(resdir, "runs.jsonl")
    recs = [json.loads(l) for l in open(runs_path) if l.strip()] if os.path.exists(runs_path) else []
    meta_path = os.path.join(resdir, "meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {"sections": []}
    sections = meta.get("sections", ["main"])
    out = docdir or resdir
    os.makedirs(out, exist_ok=True)
    bad, plotted, md = 0, [], None
    new = {}  # title -> lines of the sections after the main one that this run measured
    if "main" in sections:
        md, p, b = report_main(meta, [r for r in recs if r["pass"] not in
                                      ("lowlat", "scale", "scale-strace", "scale-warmup",
                                       "scale-startup", "pair", "counted", "uvc",
                                       "uvc-warmup")],
                               out, command, date, commit)
        bad, plotted = bad + b, plotted + p
    if "low-latency" in sections:
        new[LL_TITLE], p, b = report_low_latency(
            meta, [r for r in recs if r["pass"] == "lowlat"], out, command, date, commit)
        bad, plotted = bad + b, plotted + p
    if os.path.exists(os.path.join(resdir, "scale-meta.json")):
        new[SCALE_TITLE], p, b = report_scale(resdir, out, command, date, commit)
        bad, plotted = bad + b, plotted + p
    if os.path.exists(os.path.join(resdir, "pair-meta.json")):
        new[PAIR_TITLE], p, b = report_pair(resdir, command, date, commit)
        bad, plotted = bad + b, plotted + p
    if os.path.exists(os.path.join(resdir, "counted-meta.json")):
        new[COUNTED_TITLE], p, b = report_counted(resdir, out, command, date, commit)
        bad, plotted = bad + b, plotted + p
    if os.path.exists(os.path.join(resdir, "uvc-meta.json")):
        new[UVC_TITLE], p, b = report_uvc(resdir, command, date, commit)
        bad, plotted = bad + b, plotted + p
    if os.path.exists(os.path.join(resdir, "soak-meta.json")) or \
            os.path.exists(os.path.join(resdir, "unplug.log")):
        new[SOAK_TITLE], p, b = report_soak(resdir, out, command, date, commit)
        bad, plotted = bad + b, plotted + p
    if os.path.exists(os.path.join(resdir, "chaos.log")):
        new[CHAOS_TITLE], p, b = report_chaos(resdir, command, date, commit)
        bad, plotted = bad + b, plotted + p
    if os.path.exists(os.path.join(resdir, "valgrind-meta.json")):
        new[VALGRIND_TITLE], p, b = report_valgrind(resdir, command, date, commit)
        bad, plotted = bad + b, plotted + p
    if os.path.exists(os.path.join(resdir, "properties-meta.json")):
        new[PROPERTIES_TITLE], p, b = report_properties(resdir, command, date, commit)
        bad, plotted = bad + b, plotted + p
    # With --only, the sections that did not run stay as an earlier run wrote them. A titled
    # section runs from its title to the next titled one (its own sub-headings are "### ").
    titled = (LL_TITLE, SCALE_TITLE, PAIR_TITLE, COUNTED_TITLE, UVC_TITLE, PROPERTIES_TITLE,
              SOAK_TITLE, CHAOS_TITLE, VALGRIND_TITLE)
    path = os.path.join(out, "results.md")
    try:
        old = open(path).read().rstrip("\n").split("\n")
    except FileNotFoundError:
        old = ["# rustv4l2src benchmark", ""]
    old_sections = {}
    for title in titled:
        if title in old:
            start = old.index(title)
            end = next((i for i in range(start + 1, len(old)) if old[i] in titled), len(old))
            old_sections[title] = old[start:end]
            old = old[:start] + old[end:]
    if md is None:
        md = old
        while md and not md[-1]:
            md.pop()
        md.append("")
    for title in titled:
        section = new.get(title) or old_sections.get(title, [])
        if section and md and md[-1]:
            md.append("")
        md += section
    with open(path, "w") as f:
        f.write("\n".join(md).rstrip("\n") + "\n")
    log(f"wrote {path}" + "".join(f", {os.path.join(out, p)}" for p in plotted))
    return 1 if bad else 0


def report_main(meta, recs, outdir, command, date, commit):
    good = [r for r in recs if "error" not in r]
    bad = [r for r in recs if "error" in r]
    configs = [c["name"] for c in meta["configs"]]
    cfg_by_name = {c["name"]: c for c in meta["configs"]}
    names = [e[0] for e in ELEMENTS]

    def pairs(pass_, cfg, el):
        """{rep: (short, long)} for the runs that both succeeded."""
        out = {}
        for r in good:
            if r["pass"] == pass_ and r["config"] == cfg and r["element"] == el:
                out.setdefault(r["rep"], {})[r["kind"]] = r
        return {rep: (d["short"], d["long"]) for rep, d in out.items() if len(d) == 2}

    cpu = lambda r: steady_cpu(r, 0) + steady_cpu(r, 1)
    sysc = lambda r: r.get("syscalls") and sum(r["syscalls"].values())
    rows, breakdown, plots = [], [], {}
    for cfg in configs:
        c = cfg_by_name[cfg]
        per_el = {}
        for el in names:
            tp = pairs("time", cfg, el)
            sp = pairs("strace", cfg, el)
            cp = pairs("callgrind", cfg, el)
            per_el[el] = {
                "total": {rep: diff_per_frame(s, l, cpu) for rep, (s, l) in tp.items()},
                "sysc": {rep: diff_per_frame(s, l, sysc) for rep, (s, l) in sp.items()},
                "instr": {rep: diff_per_frame(s, l, lambda r: r.get("instructions"))
                          for rep, (s, l) in cp.items()},
            }
        for el in names:
            tp = pairs("time", cfg, el)
            sp = pairs("strace", cfg, el)
            longs = [l for _, l in tp.values()]
            lat50, lat90 = [], []
            for s, l in tp.values():
                steady = [x for x in l["latency_ms"][c["short"]:] if x is not None]
                if steady:
                    lat50.append(pct(steady, 0.5))
                    lat90.append(pct(steady, 0.9))
            runs = [r for r in good if r["pass"] == "time" and r["config"] == cfg
                    and r["element"] == el]
            first_ms = [r["first_frame_ms"] for r in runs]
            ratio_cpu, ratio_sys, ratio_instr = [], [], []
            if el != "rustv4l2src":
                for key, out in (("total", ratio_cpu), ("sysc", ratio_sys),
                                 ("instr", ratio_instr)):
                    mine, rust = per_el[el][key], per_el["rustv4l2src"][key]
                    for rep in mine:
                        if rep in rust and mine[rep] and rust[rep] is not None:
                            out.append(rust[rep] / mine[rep])
            strace_runs = [r for r in good if r["pass"] == "strace" and r["config"] == cfg
                           and r["element"] == el and r["kind"] == "short"]
            strace_longs = [l for _, l in sp.values()]
            io_dev = [r.get("ioctls_to_first_dev") for r in strace_runs]
            io_all = [r.get("ioctls_to_first_all") for r in strace_runs]
            lost = [l.get("lost") for l in longs]
            lost_cell = "n/a" if not [x for x in lost if x is not None] else \
                f"{med(lost):g} [{max(x for x in lost if x is not None):g}]"
            rows.append([
                cfg, el,
                cell([diff_per_frame(s, l, lambda r: steady_cpu(r, 0)) for s, l in tp.values()]),
                cell([diff_per_frame(s, l, lambda r: steady_cpu(r, 1)) for s, l in tp.values()]),
                cell(list(per_el[el]["total"].values())),
                cell([in_run_cpu(l) for l in longs]),
                cell([sum(r["cpu_at_first_ms"]) for r in runs if r.get("cpu_at_first_ms")], "{:.0f}"),
                "-" if el == "rustv4l2src" else cell(ratio_cpu, "{:.2f}"),
                cell([x / 1000 for x in per_el[el]["instr"].values() if x is not None],
                     "{:.1f}k"),
                "-" if el == "rustv4l2src" else cell(ratio_instr, "{:.2f}"),
                cell(list(per_el[el]["sysc"].values()), "{:.1f}"),
                "-" if el == "rustv4l2src" else cell(ratio_sys, "{:.2f}"),
                f"{cell(io_dev, '{:.0f}', False)} / {cell(io_all, '{:.0f}', False)}",
                cell(first_ms, "{:.0f}"),
                cell(lat50, "{:.1f}"), cell(lat90, "{:.1f}"),
                cell([l["copies"] * l["frame_bytes"] / l["frames"] for l in strace_longs
                      if l.get("copies") is not None], "{:.0f}"),
                cell([l["peak_rss_kib"] / 1024 for l in longs if l.get("peak_rss_kib")], "{:.1f}"),
                lost_cell,
            ])
            # Per-syscall and per-ioctl-request steady-state counts.
            for what, key in (("syscalls", "syscalls"), ("ioctls", "ioctl_requests")):
                per = {}
                for s, l in sp.values():
                    df = l["frames"] - s["frames"]
                    for n in set(s.get(key, {})) | set(l.get(key, {})):
                        per.setdefault(n, []).append(
                            (l.get(key, {}).get(n, 0) - s.get(key, {}).get(n, 0)) / df)
                items = sorted(((med(v), n) for n, v in per.items()), reverse=True)
                items = [f"{n} {v:.2f}" for v, n in items if abs(v) >= 0.05]
                breakdown.append((cfg, el, what, ", ".join(items) or "none"))
            # One long run per element and configuration for the plot: the first repetition's.
            # The bare loop's latency is the driver timestamp's age at dequeue: no sink, no
            # pipeline clock, so it stays out of the latency plot.
            if tp and el != BARE:
                l = tp[min(tp)][1]
                plots.setdefault(cfg, []).append((el, l["arrival_ms"], l["latency_ms"]))
            breakdown_extra = [r for r in strace_runs if r.get("ioctl_requests", {}).get("VIDIOC_EXPBUF")]
            if breakdown_extra:
                breakdown.append((cfg, el, "note", "VIDIOC_EXPBUF seen: buffers exported as DMABUF"))

    header = ["config", "element", "cpu user ms/frame", "cpu sys ms/frame", "cpu total ms/frame",
              "cpu in-run ms/frame", "cpu to 1st frame ms", "rust/this cpu", "user instr/frame",
              "rust/this instr", "syscalls/frame", "rust/this syscalls", "ioctls to 1st (dev / all)",
              "ms to 1st frame", "latency p50 ms", "latency p90 ms", "copied B/frame",
              "peak RSS MiB", "lost [max]"]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt_row = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"
    table = [fmt_row(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    table += [fmt_row(r) for r in rows]

    notes = []
    for c in meta["configs"]:
        if c["name"].endswith("(max)"):
            notes.append(f"{c['name'].split()[0]}: vivid does not offer 30 fps at this size; the "
                         f"highest rate it enumerates is used (offered: "
                         f"{', '.join(f'{r:g}' for r in c['rates'])} fps).")
    frames = ", ".join(f"{c['name'].split()[0]}: {c['short']}/{c['long']}" for c in meta["configs"])
    notes.append(f"Frames per short/long run: {frames}. Timing repetitions: {meta['reps']}; "
                 f"strace repetitions: {meta['strace_reps']}; callgrind repetitions (at "
                 f"{configs[0].split()[0]} only): {meta.get('callgrind_reps', 0)}.")
    copies_from = sorted({(r["element"], r.get("copies_from")) for r in good
                          if r["pass"] == "strace"})
    notes.append("Copies counted from: " + ", ".join(f"{e}: {s}" for e, s in copies_from) + ".")
    # Log messages by element: {element: {message: runs that logged it}}, out of n_runs.
    logged = {"perf_other": {}, "warnings": {}}
    n_runs = {}
    for r in good:
        n_runs[r["element"]] = n_runs.get(r["element"], 0) + 1
        for key, by_el in logged.items():
            for k in r.get(key) or {}:
                d = by_el.setdefault(r["element"], {})
                d[k] = d.get(k, 0) + 1
    floor = [r["first_frame_ms"] for r in good if r["pass"] == "floor"]
    if floor:
        notes.append(f"Time to first frame of GStreamer itself: `{PIPELINE_FLOOR[2]}` through the "
                     f"same pipeline at {configs[0].split()[0]} (no device, a source that has "
                     f"its first frame at once): {cell(floor, '{:.0f}')} ms over {len(floor)} "
                     "runs. State changes, the streaming thread and negotiation cost this much "
                     "under TCG whatever the source; the bare loop row is the kernel's side.")
    notes += timestamp_notes(good)
    if bad:
        notes.append(f"{len(bad)} run(s) FAILED and are left out: " +
                     "; ".join(f"{r.get('label') or r['config'] + ' ' + r['element']}: "
                               f"{r['error'][-200:]}" for r in bad[:5]))

    text = "\n".join(table)
    print(text)
    print()
    for n in notes:
        print("- " + n)
    print()
    print("Steady-state syscalls and ioctl requests per frame (strace, long - short run):")
    for cfg, el, what, items in breakdown:
        print(f"  {cfg:20} {el:16} {what:8} {items}")
    log_lines = []
    for key, title in (("warnings", "Warnings"), ("perf_other", "Other GST_PERFORMANCE messages")):
        log_lines += ["", f"## {title} (runs that logged it / runs)", ""]
        log_lines += [f"- {el}: " + "; ".join(f"'{k}' {v}/{n_runs[el]}" for k, v in sorted(d.items()))
                      for el, d in sorted(logged[key].items())] or ["- none"]
    print("\n".join(log_lines))

    plotted = plot(outdir, plots, rows, configs, names)
    md = [
        "# rustv4l2src benchmark",
        "",
        f"Date: {date}  ",
        f"Command: `{command}`  ",
        source_line(meta, commit),
        "",
        "Each cell is the median over repetitions, with [min-max] when they differ. Ratios are "
        "rustv4l2src divided by the row's element, taken within each repetition. Column meanings "
        "are in the header of `scripts/bench`.",
        "",
        text,
        "",
    ] + [f"- {n}" for n in notes] + [
        "",
        "## Syscalls and ioctl requests per frame",
        "",
        "Steady state from `strace -f -C` (long run minus short run, divided by the frame "
        "difference); entries below 0.05 per frame are left out.",
        "",
        "| config | element | what | per frame |",
        "|---|---|---|---|",
    ] + [f"| {c} | {e} | {w} | {i} |" for c, e, w, i in breakdown] + log_lines + [""]
    if plotted:
        md += ["## Plots", ""] + [f"![{p}]({p})" for p in plotted] + [""]
    return md, plotted, len(bad)


def seq_wait(run, period_ms):
    """Per frame: arrival - OFFSET x period, less its median over the run. vivid counts its
    sequence in ideal frame slots (skipped ones included), so this is how much later than the
    run's typical frame each frame arrived, from sequence numbers alone. The median, not the
    minimum: the first frames of a run come irregularly, and vivid's ticks jitter by a few ms
    under TCG, so the single earliest frame is no fair zero."""
    raw = [None if a is None or o is None else a - o * period_ms
           for a, o in zip(run["arrival_ms"], run["offsets"])]
    base = med(raw)
    return [None if x is None or base is None else x - base for x in raw]


def report_low_latency(meta, recs, out, command, date, commit):
    ll = meta["low_latency"]
    good = [r for r in recs if "error" not in r]
    bad = [r for r in recs if "error" in r]
    names = [e[0] for e in LL_ELEMENTS]
    period_ms = 1e3 / ll["fps"]
    rows, per_rep, understated = [], {}, {}
    for el in names:
        runs = sorted((r for r in good if r["element"] == el), key=lambda r: r["rep"])
        stats = {k: [] for k in ("l50", "l90", "lmax", "w90", "wmax", "n", "drop", "lost")}
        for r in runs:
            lat = [x for x in r["latency_ms"] if x is not None]
            wait = seq_wait(r, period_ms)
            if lat:
                stats["l50"].append(pct(lat, 0.5))
                stats["l90"].append(pct(lat, 0.9))
                stats["lmax"].append(max(lat))
            if [x for x in wait if x is not None]:
                stats["w90"].append(pct([x for x in wait if x is not None], 0.9))
                stats["wmax"].append(max(x for x in wait if x is not None))
            # Frames whose latency shows a wait: by how much the two measures differ.
            understated.setdefault(el, []).extend(
                w - l for w, l in zip(wait, r["latency_ms"])
                if w is not None and l is not None and l > 10)
            stats["n"].append(r["frames"])
            dropped = r.get("frames_dropped")
            stats["drop"].append(dropped)
            if r.get("lost") is not None:
                stats["lost"].append(r["lost"] - (dropped or 0))
            per_rep.setdefault(r["rep"], {})[el] = r
        rows.append([el] + [cell(stats[k], "{:.1f}") for k in
                            ("l50", "l90", "lmax", "w90", "wmax")] +
                    [cell(stats[k], "{:.0f}") for k in ("n", "drop", "lost")])
    header = ["element", "latency p50 ms", "latency p90 ms", "latency max ms",
              "wait p90 ms (seq)", "wait max ms (seq)", "delivered", "dropped", "lost"]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt_row = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"
    table = "\n".join([fmt_row(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] +
                      [fmt_row(r) for r in rows])

    # The plot shows the repetition where rustv4l2src's (default) p90 latency is the median one.
    full = {rep: d for rep, d in per_rep.items() if len(d) == len(names)}
    shown = None
    if full:
        p90 = lambda rep: pct([x for x in full[rep][names[0]]["latency_ms"] if x is not None], 0.9)
        order = sorted(full, key=lambda rep: (p90(rep) is None, p90(rep) or 0))
        shown = order[(len(order) - 1) // 2]
    plotted = plot_low_latency(out, full.get(shown, {}), names, ll, shown)

    notes = [
        f"{ll['name']} YUY2; the sink sleeps {ll['stall_ms']} ms after every "
        f"{ll['stall_every']}th frame it receives; each run ends after {ll['span']} frames of "
        f"the driver's sequence. Repetitions: {meta['reps']}, one run of each element per "
        "repetition, interleaved.",
    ] + [n + " The time a frame waited in the driver's queue during a stall is therefore not "
         "in its latency at all; the wait columns (from sequence numbers) show it."
         for n in timestamp_notes(good)]
    gaps = [f"{el} {med(d):.1f} [{min(d):.1f}-{max(d):.1f}] over {len(d)} frames"
            for el, d in understated.items() if el.startswith("rustv4l2src") and d]
    if gaps:
        notes.append(
            "vivid stamps a frame's end 0.9 frame period "
            f"({0.9 * period_ms:.0f} ms) after its tick, ahead of the clock when it is dequeued "
            "at once; rustv4l2src's PTS is that stamp less one frame (the start of the capture), "
            "so its latency reads about 0.1 frame for a prompt frame and less than the queue "
            "wait for a stalled one: the wait columns are the fairer measure of staleness. "
            "Wait (seq) - latency on the frames whose latency exceeds 10 ms, median [min-max] ms: "
            + "; ".join(gaps) + ".")
    if bad:
        notes.append(f"{len(bad)} run(s) FAILED and are left out: " +
                     "; ".join(f"{r.get('label') or r['element']}: {r['error'][-200:]}"
                               for r in bad[:5]))
    print(table)
    print()
    for n in notes:
        print("- " + n)
    md = [
        LL_TITLE,
        "",
        f"Date: {date}  ",
        f"Command: `{command}`  ",
        source_line(meta, commit),
        "",
        "Downstream is briefly slow: what `low-latency=true` changes. Each cell is the median "
        "over repetitions, with [min-max] when they differ; column meanings are in the header "
        "of `scripts/bench`.",
        "",
        table,
        "",
    ] + [f"- {n}" for n in notes] + [""]
    if plotted:
        md += [f"![{p}]({p})" for p in plotted] + [""]
    return md, plotted, len(bad)


def plot_low_latency(out, runs, names, ll, rep):
    if not runs:
        return []
    plt = pyplot()
    if plt is None:
        return []
    colours = dict(zip(names, ["tab:red", "tab:purple", "tab:blue"]))
    # One scale for all rows: the point is how high each one goes.
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.6 * len(names)), sharex=True,
                             sharey=True, squeeze=False)
    for ax, el in zip(axes[:, 0], names):
        r = runs[el]
        t = r["arrival_ms"]
        # The line breaks at each stall (NaN) rather than draw a slope through it.
        pts = []
        for i, (a, b) in enumerate(zip(t, r["latency_ms"])):
            if a is not None and b is not None:
                pts.append((a / 1e3, b))
            if (i + 1) % ll["stall_every"] == 0 and pts:
                pts.append((pts[-1][0], float("nan")))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], ".-", ms=3, lw=0.8,
                color=colours.get(el), label="latency (sink clock - base time - PTS)")
        wait = seq_wait(r, 1e3 / ll["fps"])
        pts = [(a / 1e3, b) for a, b in zip(t, wait) if a is not None and b is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "x", ms=3, color="black", alpha=0.5,
                label="wait from sequence number")
        # The sink sleeps right after every stall_every-th frame.
        for i in range(ll["stall_every"] - 1, len(t) - 1, ll["stall_every"]):
            ax.axvspan(t[i] / 1e3, (t[i] + ll["stall_ms"]) / 1e3, color="orange", alpha=0.3,
                       lw=0)
        dropped = r.get("frames_dropped")
        ax.set_title(f"{el}: {r['frames']} delivered"
                     + ("" if dropped is None else f", {dropped} dropped"), fontsize=10)
        ax.set_ylabel("ms")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since set_state(PLAYING); orange: the sink stalls")
    fig.suptitle(f"{ll['name']}, sink stalls {ll['stall_ms']} ms every {ll['stall_every']} "
                 f"frames (repetition {rep}: median p90 of rustv4l2src)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "low-latency.png"), dpi=90)
    plt.close(fig)
    return ["low-latency.png"]


def plot(out, plots, rows, configs, names):
    plt = pyplot()
    if plt is None:
        return []
    colours = dict(zip(names, ["tab:red", "tab:blue", "tab:green", "tab:gray"]))
    fig, axes = plt.subplots(len(configs), 1, figsize=(9, 3 * len(configs)), squeeze=False)
    for ax, cfg in zip(axes[:, 0], configs):
        for el, t, lat in plots.get(cfg, []):
            pts = [(a / 1e3, b) for a, b in zip(t, lat) if a is not None and b is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], ".-", ms=3, lw=0.8,
                    label=el, color=colours.get(el))
        ax.set_title(cfg)
        ax.set_ylabel("latency ms")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("seconds since set_state(PLAYING)")
    fig.suptitle("Capture-to-sink latency (sink clock - base time - PTS), first long run")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "latency.png"), dpi=90)
    plt.close(fig)

    def parse(c):
        m = re.match(r"([\d.]+)(?: \[([\d.]+)-([\d.]+)\])?", c)
        if not m:
            return None
        v = float(m.group(1))
        return v, float(m.group(2) or v), float(m.group(3) or v)

    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(names)
    for i, el in enumerate(names):
        xs, user, sys_, lo, hi = [], [], [], [], []
        for j, cfg in enumerate(configs):
            row = next((r for r in rows if r[0] == cfg and r[1] == el), None)
            u, s, t = (parse(row[k]) if row else None for k in (2, 3, 4))
            if not (u and s and t):
                continue
            xs.append(j + (i - (len(names) - 1) / 2) * width)
            user.append(u[0]); sys_.append(s[0])
            lo.append(t[0] - t[1]); hi.append(t[2] - t[0])
        ax.bar(xs, user, width, color=colours.get(el), label=f"{el} user")
        ax.bar(xs, sys_, width, bottom=user, color=colours.get(el), alpha=0.45,
               label=f"{el} sys")
        ax.errorbar(xs, [a + b for a, b in zip(user, sys_)], yerr=[lo, hi], fmt="none",
                    ecolor="black", capsize=3, lw=0.8)
    ax.set_xticks(range(len(configs)))
    ax.set_xticklabels(configs)
    ax.set_ylabel("CPU ms per frame (steady state)")
    ax.set_title("CPU per frame: user (solid) + sys (light), bars = min-max of total")
    ax.legend(fontsize=7, ncol=3)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "cpu.png"), dpi=90)
    plt.close(fig)
    return ["latency.png", "cpu.png"]


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "guest":
        (outdir, bench_bin, reps, strace_reps, cg_reps, short_s, steady_s, sections,
         ll_span, scale_s, scale_ns, scale_reps) = sys.argv[2:14]
        sys.exit(guest(outdir, bench_bin, int(reps), int(strace_reps), int(cg_reps),
                       float(short_s), float(steady_s), sections.split(","), int(ll_span),
                       float(scale_s), [int(n) for n in scale_ns.split(",")], int(scale_reps)))
    elif mode == "qemu-opts":
        print(QEMU_OPTS)
        sys.exit(0)
    elif mode == "report":
        resdir, docdir, command, date, commit = sys.argv[2:7]
        sys.exit(report(resdir, docdir, command, date, commit))
    sys.exit(f"unknown mode {mode}")
