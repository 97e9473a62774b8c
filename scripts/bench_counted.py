"""scripts/bench's section "counted": the scale section's cells, on a guest clock that counts
instructions.

Why: under TCG on a shared 2-core host, a thread's CPU time is host time, which the host's
other work, the other vCPU and vivid's lock stretch: one cell's CPU per frame moves by 10-20%
from run to run, more than the elements differ. Here the VM has one vCPU and QEMU runs with
`-icount shift=0,sleep=on`: the guest's clock advances one nanosecond per guest instruction
executed while it runs (idle, it follows the host's clock), so a process's getrusage (user + sys) counts the
instructions run on its behalf, in user space and in the kernel, and nothing else. One vCPU
also means no thread ever spins on a lock held by another CPU. What is left is the work
itself: a repetition reads within a fraction of a per cent of the one before.

bench.py calls guest_counted() inside that VM (vivid n_devs = the largest N) and
report_counted() on the host.
"""
import os, statistics

from bench_common import cameras_axis, cell, pyplot
from bench_scale import (SCALE_ELEMENTS, SCALE_WARMUP_S, _med, _num, _table, cells, failed_note,
                         load_section, record, scale_run, section_end, section_header,
                         section_start)

COUNTED_TITLE = "## scale, counted: CPU per frame in instructions"
META = "counted-meta.json"
# What scripts/bench gives QEMU for this section.
QEMU_OPTS = "-icount shift=0,sleep=on"


def guest_counted(outdir, bench_bin, scale_s, scale_ns, reps, runs):
    """Every counted run into `runs` (runs.jsonl, open); returns the number of failed runs."""
    nodes, configs, meta = section_start("counted", max(scale_ns), scale_ns, scale_s,
                                         reps=reps, qemu=QEMU_OPTS)
    failures = 0
    for rep, n, cfg, elements in cells(reps, scale_ns, configs):
        for el in elements:
            failures += record(runs, *scale_run(bench_bin, "counted", rep, cfg, el, nodes[:n],
                                                scale_s, SCALE_WARMUP_S))
    section_end(outdir, META, meta)
    return failures


def report_counted(resdir, out, command, date, commit):
    meta, good, bad = load_section(resdir, META, ("counted",))
    configs = [c["name"] for c in meta["configs"]]
    names = [e[0] for e in SCALE_ELEMENTS]
    rust, mmap = names[0], names[1]
    # (config, element, N) -> its runs, and -> {repetition: thousand instructions per frame}
    # (from user_ms and sys_ms: the record's cpu_ms_per_frame is rounded to 3 decimals)
    runs_of, kinstr = {}, {}
    for r in good:
        cell_key = (r["config"], r["element"], r["n"])
        runs_of.setdefault(cell_key, []).append(r)
        if r.get("frames"):
            kinstr.setdefault(cell_key, {})[r["rep"]] = \
                (r["user_ms"] + r["sys_ms"]) * 1e3 / r["frames"]

    def ratios(cfg, n, other):
        mine, them = kinstr.get((cfg, rust, n), {}), kinstr.get((cfg, other, n), {})
        return [mine[k] / them[k] for k in sorted(mine) if them.get(k)]

    rows, notes = [], []
    for cfg in configs:
        for n in meta["ns"]:
            row = [cfg, n]
            for el in names:
                row.append(cell(list(kinstr.get((cfg, el, n), {}).values()), "{:.1f}"))
            row += [cell(ratios(cfg, n, el), "{:.3f}") for el in names[1:]]
            lost = lambda el: _num(_med([r.get("lost") for r in runs_of.get((cfg, el, n), [])]),
                                   "{:g}")
            row.append(" / ".join(lost(el) for el in names))
            rows.append(row)
        by_n = {n: ratios(cfg, n, mmap) for n in meta["ns"]}
        above = [n for n, rs in by_n.items() if not rs or max(rs) > 1]
        notes.append(f"{cfg}: {rust} over {mmap}, every repetition: " +
                     ("at or below 1 at every N." if not above else
                      f"above 1 (or not measured) at N={', '.join(map(str, above))}."))
        base = {el: _med(list(kinstr.get((cfg, el, meta["ns"][0]), {}).values()))
                for el in names}
        top = {el: _med(list(kinstr.get((cfg, el, max(meta["ns"])), {}).values()))
               for el in names}
        notes.append(f"{cfg}: per-frame cost at N={max(meta['ns'])} over N={meta['ns'][0]}: " +
                     ", ".join(f"{el} {top[el] / base[el]:.2f}" for el in names
                               if top[el] and base[el]) + ".")
    table = _table(["config", "N"] + [f"{el} k instr/frame" for el in names] +
                   [f"rust/{el.replace('v4l2src ', '')}" for el in names[1:]] +
                   ["lost (median) " + " / ".join(e.replace("v4l2src ", "") for e in names)],
                   rows)
    notes += failed_note(bad)
    plotted = plot_counted(out, meta, kinstr, names, configs)
    md = [COUNTED_TITLE, ""] + section_header(meta, date, command, commit) + [
        f"The scale section's cells (one process, one element per vivid node, each `! CAPS ! "
        f"fakesink sync=false`, a {meta['seconds']:g} s window opening {meta['warmup']} s after "
        "every camera's first frame), in a VM of one vCPU whose clock counts instructions "
        f"(QEMU `{meta['qemu']}`: while the vCPU runs, one guest instruction is one "
        "nanosecond; idle, the clock follows the host's). The process's getrusage (user + sys) over the window is then the "
        "instructions run on its behalf, in user space and in the kernel (its system calls, "
        "the interrupts that land while it runs), divided here by the frames its sinks "
        "received: thousand instructions per frame. With one vCPU no thread spins on a lock "
        "another CPU holds, and the host's load does not count. "
        f"{meta['reps']} repetition(s), elements interleaved; median [min-max].", ""] + \
        table + [""] + [f"- {n}" for n in notes] + [""]
    if plotted:
        md += [f"![{p}]({p})" for p in plotted] + [""]
    print("\n".join(table + [""] + [f"- {n}" for n in notes]))
    return md, plotted, len(bad)


def plot_counted(out, meta, kinstr, names, configs):
    plt = pyplot()
    if plt is None:
        return []
    colours = dict(zip(names, ["tab:red", "tab:blue", "tab:green"]))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for cfg, style in zip(configs, ["--", "-"]):
        for el in names:
            pts = [(n, statistics.median(v.values())) for n in meta["ns"]
                   if (v := kinstr.get((cfg, el, n)))]
            if pts:
                ax.plot([n for n, _ in pts], [y for _, y in pts], style, marker="o", ms=4,
                        color=colours[el], label=f"{el} {cfg}")
    cameras_axis(ax, meta["ns"])
    ax.set_ylabel("thousand instructions per frame (user + kernel)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("N vivid cameras in one process, counted on one instruction-clocked vCPU",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "counted.png"), dpi=90)
    plt.close(fig)
    return ["counted.png"]
