"""scripts/bench's sections that run device tests for long or under a checker, each in a VM of
its own with vivid's default nodes (the CI rig's):

"chaos": tests/chaos.rs, the seeded random schedule over one pipeline, for --chaos-minutes
(default 30) rather than CI's 2; CHAOS_SEED replays a run. Its log is chaos.log.

"valgrind": the device tests of every io-mode and of reconnecting (VALGRIND_TESTS below) under
valgrind memcheck, one binary after another. Every error memcheck reports is read from its XML
and attributed to this crate's code when a frame of its stack lies in the repository's src/
(the element and its unsafe v4l2 layer; the test binaries link them), to the tests when one
lies in tests/, else to the rest (GLib, GStreamer, libc, Rust's std). Leaks are not checked: the
process ends with GStreamer's caches alive, and the tests assert fds, mappings and memory
themselves. Under memcheck and TCG the tests run some 30 times slower than they are written
for, so some of their waits time out: the table shows how many passed, but the count that
matters is the errors.

  bench_checks.py valgrind-guest RESDIR DIR EXE [DIR EXE...]   inside the VM
  bench_checks.py report RESDIR                                 prints the sections' markdown

scripts/bench builds the binaries, boots the VMs and calls report_checks() through bench.py.
"""
import json, os, re, subprocess, sys, time
import xml.etree.ElementTree as ET

from bench_scale import _table

CHAOS_TITLE = "## chaos: a seeded random schedule for half an hour"
VALGRIND_TITLE = "## valgrind: the io-mode and reconnect tests under memcheck"
# The test binaries (tests/NAME.rs) the valgrind section runs.
VALGRIND_TESTS = ["iomodes", "dmabuf", "dmabuf_import", "capture", "reconnect", "restart"]


def binary_name(exe):
    """tests/NAME.rs's binary target/.../deps/NAME-HASH: NAME."""
    return os.path.basename(exe).rsplit("-", 1)[0]


def valgrind_guest(resdir, pairs):
    """Runs each binary under memcheck; writes memcheck-NAME.{xml,log} and valgrind-meta.json."""
    runs = []
    for cwd, exe in pairs:
        name = binary_name(exe)
        started = time.monotonic()
        log_path = os.path.join(resdir, f"memcheck-{name}.log")
        cmd = ["timeout", "-k", "10", "3600", "valgrind", "--tool=memcheck", "--error-limit=no",
               "--leak-check=no",
               # vgdb's shared-memory file cannot be mapped from the rig's 9p-shared TMPDIR.
               "--num-callers=40", "--vgdb=no", "--xml=yes",
               f"--xml-file={os.path.join(resdir, f'memcheck-{name}.xml')}",
               exe, "--test-threads=1"]
        print(f"bench: valgrind: {name}", file=sys.stderr, flush=True)
        with open(log_path, "w") as log:
            rc = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "CARGO_MANIFEST_DIR": cwd,
                                     "G_DEBUG": "fatal_warnings", "G_SLICE": "always-malloc",
                                     "RUST_BACKTRACE": "1"}
                                ).returncode
        runs.append({"name": name, "exit": rc, "seconds": round(time.monotonic() - started)})
    with open(os.path.join(resdir, "valgrind-meta.json"), "w") as f:
        json.dump({"runs": runs, "root": os.getcwd(),
                   "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True,
                                              text=True).stdout.strip()}, f, indent=1)
    return 0


def memcheck_errors(xml_path, root):
    """[(kind, what, where, owner)] of every error in a memcheck XML file; owner is "crate"
    (a frame in ROOT/src), "tests" (in ROOT/tests) or "other"."""
    try:
        tree = ET.parse(xml_path)
    except (ET.ParseError, FileNotFoundError):
        return None
    out = []
    for err in tree.getroot().iter("error"):
        kind = err.findtext("kind", "")
        if kind.startswith("Leak_"):
            # Leak records (a run without --leak-check=no): not what the section checks.
            continue
        what = err.findtext("what") or err.findtext("xwhat/text") or ""
        owner, where = "other", ""
        for frame in err.iter("frame"):
            d = frame.findtext("dir", "")
            loc = f"{frame.findtext('fn', '?')} ({frame.findtext('file', '?')}:" \
                  f"{frame.findtext('line', '?')})"
            where = where or loc
            if d.startswith(os.path.join(root, "src")):
                owner, where = "crate", loc
                break
            if d.startswith(os.path.join(root, "tests")) and owner == "other":
                owner, where = "tests", loc
        out.append((kind, what, where, owner))
    return out


def test_counts(log_path):
    """(passed, failed) over the libtest summaries in a log."""
    text = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
    p = f = 0
    for m in re.finditer(r"test result: \w+\. (\d+) passed; (\d+) failed", text):
        p, f = p + int(m.group(1)), f + int(m.group(2))
    return p, f


def report_valgrind(resdir, command, date, commit):
    meta = json.load(open(os.path.join(resdir, "valgrind-meta.json")))
    rows, crate_errors, notes = [], 0, []
    for run in meta["runs"]:
        name = run["name"]
        errors = memcheck_errors(os.path.join(resdir, f"memcheck-{name}.xml"), meta["root"])
        passed, failed = test_counts(os.path.join(resdir, f"memcheck-{name}.log"))
        if errors is None:
            rows.append([name, f"{passed}/{passed + failed}", str(run["seconds"]), "no XML", "",
                         ""])
            crate_errors += 1
            continue
        by = {o: [e for e in errors if e[3] == o] for o in ("crate", "tests", "other")}
        crate_errors += len(by["crate"])
        rows.append([name, f"{passed}/{passed + failed}", str(run["seconds"]),
                     str(len(by["crate"])), str(len(by["tests"])), str(len(by["other"]))])
        for kind, what, where, owner in by["crate"] + by["tests"]:
            notes.append(f"{name}, {owner}: {kind}: {what} at {where}")
        kinds = sorted({e[0] for e in by["other"]})
        if kinds:
            notes.append(f"{name}, outside this repository: {', '.join(kinds)} "
                         f"(first: {by['other'][0][1]} at {by['other'][0][2]})")
    header = ["test binary", "tests passed", "seconds", "errors in src/", "errors in tests/",
              "errors elsewhere"]
    table = _table(header, rows)
    md = [VALGRIND_TITLE, "", f"Date: {date}  ", f"Command: `{command}`  ",
          f"Source: {commit}; {meta['valgrind']}, in the VM (vivid's default nodes, QEMU TCG). "
          "Each binary: `valgrind --tool=memcheck --error-limit=no BINARY --test-threads=1`; "
          "an error is this crate's when a frame of its stack is in src/. Tests passed: under "
          "memcheck the tests' waits (20 s) are often too short; the errors are the finding.",
          ""] + table + ["", f"- errors attributed to src/: {crate_errors}."] + \
        [f"- {n}" for n in notes] + [""]
    print("\n".join(md))
    return md, [], 1 if crate_errors else 0


def report_chaos(resdir, command, date, commit):
    text = open(os.path.join(resdir, "chaos.log"), errors="replace").read()
    meta_path = os.path.join(resdir, "chaos-meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    # The first line shares its start with the test harness's "test NAME ... ".
    seed = re.search(r"chaos: seed (\d+) \(", text)
    summary = re.search(r"^chaos: seed \d+: (.*)$", text, re.M)
    verdict = re.search(r"^test result: (\w+)\.", text, re.M)
    ok = bool(verdict and verdict.group(1) == "ok")
    problems = re.findall(r"^chaos: PROBLEM: (.*)$", text, re.M)
    explained = len(re.findall(r"^chaos: .*: explained by ", text, re.M))
    actions = {}
    for what in re.findall(r"^chaos: +[\d.]+ s: (.*)$", text, re.M):
        if " came back as " in what:
            key = "came back under another number"
        elif what.startswith("explained by "):
            key = "errors explained"
        else:
            key = what.split()[0].split("=")[0].rstrip(":").replace("->", "state")
        actions[key] = actions.get(key, 0) + 1
    md = [CHAOS_TITLE, "", f"Date: {date}  ", f"Command: `{command}`  ",
          f"Source: {commit}; tests/chaos.rs with CHAOS_SECONDS={meta.get('seconds', '?')} in a "
          f"VM with vivid's default nodes (QEMU TCG), {meta.get('wall', '?')} s in all.", "",
          f"- seed {seed.group(1) if seed else '?'} (`CHAOS_SEED=` replays it); "
          f"{summary.group(1) if summary else 'no summary line'}.",
          f"- test {'passed' if ok else 'FAILED'}; {len(problems)} problem(s); {explained} "
          f"error(s) explained by an injection.",
          "- actions by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(actions.items())) + "."]
    md += [f"- problem: {p}" for p in problems[:20]]
    panic = re.search(r"^thread .* panicked at .*\n.*$", text, re.M)
    if panic and not ok:
        md.append(f"- {panic.group(0)}")
    md.append("")
    print("\n".join(md))
    return md, [], 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "valgrind-guest":
        args = sys.argv[3:]
        sys.exit(valgrind_guest(sys.argv[2], list(zip(args[::2], args[1::2]))))
    sys.exit(f"unknown mode {sys.argv[1]}")
