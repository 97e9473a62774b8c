"""scripts/bench's section "pair": the scale section's cameras-per-process comparison, with
`rustv4l2src` and `v4l2src io-mode=mmap` measured in the same window.

Why: the scale section runs one element at a time, and under TCG on a shared 2-core host the
same cell's CPU per frame moves by 10-20% between runs a minute apart, more than the two
elements differ. Here two `capture_bench scale` processes start together, N cameras each, one
with `rustv4l2src` and one with `v4l2src io-mode=mmap`, on two disjoint halves of 2N vivid
capture nodes (the halves swap from one repetition to the next); each reports its own
getrusage over its own window. Both see the same host, the same guest scheduler and the same
load (2N cameras in the VM), so the ratio of the two within a pair leaves out what moves
between runs.

bench.py calls guest_pair() inside a VM booted with vivid n_devs = 2 * the largest N, and
report_pair() on the host.
"""
import threading

from bench_common import ELEMENTS, cell
from bench_scale import (_med, _num, _table, failed_note, load_section, record, scale_run,
                         section_end, section_header, section_start)

PAIR_ELEMENTS = [ELEMENTS[0], ELEMENTS[1]]  # rustv4l2src, v4l2src mmap
PAIR_TITLE = "## scale, paired: both elements in the same window"
META = "pair-meta.json"


def guest_pair(outdir, bench_bin, scale_s, scale_ns, scale_reps, runs):
    """Every pair into `runs` (runs.jsonl, open); returns the number of failed runs."""
    nodes, configs, meta = section_start("pair", 2 * max(scale_ns), scale_ns, scale_s,
                                         scale_reps=scale_reps)
    failures = 0
    for rep in range(scale_reps):
        for i, n in enumerate(scale_ns):
            for j, cfg in enumerate(configs):
                halves = [nodes[:n], nodes[n:2 * n]]
                if (rep + i + j) % 2:
                    halves.reverse()
                done = []
                threads = [threading.Thread(target=lambda el=el, devs=devs: done.append(
                    scale_run(bench_bin, "pair", rep, cfg, el, devs, scale_s, meta["warmup"])))
                           for el, devs in zip(PAIR_ELEMENTS, halves)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                for result in done:
                    failures += record(runs, *result)
    section_end(outdir, META, meta)
    return failures


def report_pair(resdir, command, date, commit):
    meta, good, bad = load_section(resdir, META, ("pair",))
    rust, mmap = PAIR_ELEMENTS[0][0], PAIR_ELEMENTS[1][0]
    # (config, N) -> {repetition: {element: run}}
    pairs = {}
    for r in good:
        pairs.setdefault((r["config"], r["n"]), {}).setdefault(r["rep"], {})[r["element"]] = r
    rows, notes = [], []
    for cfg in [c["name"] for c in meta["configs"]]:
        below_all = True
        for n in meta["ns"]:
            both = [p for p in pairs.get((cfg, n), {}).values() if rust in p and mmap in p]
            cpu = lambda el: [p[el]["cpu_ms_per_frame"] for p in both]
            ratios = [p[rust]["cpu_ms_per_frame"] / p[mmap]["cpu_ms_per_frame"] for p in both
                      if p[mmap]["cpu_ms_per_frame"]]
            lost = lambda el: _num(_med([p[el].get("lost") for p in both]), "{:g}")
            below_all &= bool(ratios) and _med(ratios) <= 1
            rows.append([cfg, n, len(both), cell(cpu(rust), "{:.3f}"), cell(cpu(mmap), "{:.3f}"),
                         cell(ratios, "{:.2f}"),
                         f"{sum(x <= 1 for x in ratios)} of {len(ratios)}",
                         f"{lost(rust)} / {lost(mmap)}"])
        notes.append(f"{cfg}: the median of rustv4l2src's CPU per frame over v4l2src mmap's, "
                     "taken within each pair, is " +
                     ("at or below 1 at every N." if below_all else "above 1 at some N."))
    table = _table(["config", "N per process", "pairs", f"{rust} cpu ms/frame",
                    f"{mmap} cpu ms/frame", "rust/mmap within a pair", "pairs at or below 1",
                    "lost rust / mmap (median)"], rows)
    notes += failed_note(bad)
    md = [PAIR_TITLE, ""] + section_header(meta, date, command, commit) + [
          "Two `capture_bench scale` processes at once, N cameras each: one of `rustv4l2src`, "
          "one of `v4l2src io-mode=mmap`, on disjoint halves of 2N vivid nodes (swapped from "
          "one pair to the next), each `! CAPS ! fakesink sync=false`; each measures its own "
          f"getrusage over a {meta['seconds']:g} s window opening {meta['warmup']} s after its "
          "cameras' first frames. Both run in the same minutes under the same load, so the "
          "ratio within a pair leaves out the drift between runs that the scale section's "
          f"one-element-at-a-time cells carry. {meta['scale_reps']} pair(s) per cell; CPU "
          "columns median [min-max].", ""] + table + [""] + [f"- {n}" for n in notes] + [""]
    print("\n".join(table + [""] + [f"- {n}" for n in notes]))
    return md, [], len(bad)
