"""What scripts/bench.py (one camera) and scripts/bench_scale.py (many) share: the elements
compared, the frame rate asked for, logging, the guest's probes and strace parsing, and the
table cell format. Imported by both; imports neither."""
import json, re, statistics, subprocess, sys, time
from fractions import Fraction


# The bare poll/DQBUF/QBUF loop: the floor under every element, not a competitor.
BARE = "bare V4L2 loop"


# (name, capture_bench option, its value): a source element, or the bare loop.
ELEMENTS = [
    ("rustv4l2src", "--pipeline-src", "rustv4l2src device={dev}"),
    ("v4l2src mmap", "--pipeline-src", "v4l2src device={dev} io-mode=mmap"),
    ("v4l2src default", "--pipeline-src", "v4l2src device={dev}"),
    (BARE, "--bare", "{dev}"),
]


WANTED_FPS = Fraction(30)


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def pyplot():
    """matplotlib.pyplot drawing into files, or None (with a warning) when it is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("warning: python3-matplotlib is missing (scripts/setup-deps installs it): no plots")
        return None
    return plt


def cameras_axis(ax, ns):
    """`ax`'s x axis as the number of cameras in the process, `ns` ticks on a log2 scale."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) for n in ns])
    ax.set_xlabel("cameras in the process (N)")


def probe_rates(dev, w, h):
    out = subprocess.run(
        ["v4l2-ctl", "-d", dev, "--list-frameintervals", f"width={w},height={h},pixelformat=YUYV"],
        capture_output=True, text=True, check=True).stdout
    rates = [Fraction(m).limit_denominator(1001) for m in re.findall(r"\(([\d.]+) fps\)", out)]
    if not rates:
        raise SystemExit(f"vivid lists no frame interval for YUYV {w}x{h}:\n{out}")
    return rates


def parse_strace(path, dev):
    """Syscall counts from the -C summary, ioctl requests and the ioctls up to the first
    successful VIDIOC_DQBUF from the trace. The device's descriptors are followed through
    openat/close rather than with strace -y, which doubles strace's cost under TCG."""
    calls, errors, requests = {}, {}, {}
    first_all = first_dev = 0
    first_found = False
    pending = {}  # pid -> what its unfinished call was: ("ioctl", is_dqbuf) or ("openat", path)
    dev_fds = set()
    # Also reads traces taken with -tt/-y: an optional timestamp, an optional <path> after fds.
    line_re = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(?:[\d:.]+\s+)?(.*)$")
    req_re = re.compile(r"^ioctl\((\d+)(?:<[^>]*>)?, ([A-Za-z0-9_]+)")
    open_re = re.compile(r'^openat\([^,]+, "([^"]*)"')
    result_re = re.compile(r"\)\s*=\s*(-?\d+)")
    in_summary = False
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("% time"):
                in_summary = True
                continue
            if in_summary:
                fields = line.split()
                if len(fields) < 5 or fields[0].startswith("-") or fields[-1] == "total":
                    continue
                calls[fields[-1]] = int(fields[3])
                if len(fields) == 6:
                    errors[fields[-1]] = int(fields[4])
                continue
            m = line_re.match(line)
            if not m:
                continue
            pid, rest = m.group(1), m.group(2)
            result = result_re.search(rest)
            result = int(result.group(1)) if result else None
            o = open_re.match(rest)
            if o:
                if "<unfinished" in rest:
                    pending[pid] = ("openat", o.group(1))
                elif o.group(1) == dev and result is not None and result >= 0:
                    dev_fds.add(result)
                continue
            if rest.startswith("<... openat resumed>"):
                what = pending.pop(pid, None)
                if what == ("openat", dev) and result is not None and result >= 0:
                    dev_fds.add(result)
                continue
            d = re.match(r"^(?:dup[23]?|fcntl)\((\d+)", rest)
            if d and (not rest.startswith("fcntl") or "F_DUPFD" in rest):
                if int(d.group(1)) in dev_fds and result is not None and result >= 0:
                    dev_fds.add(result)
                continue
            c = re.match(r"^close\((\d+)", rest)
            if c:
                dev_fds.discard(int(c.group(1)))
                continue
            r = req_re.match(rest)
            if r:
                requests[r.group(2)] = requests.get(r.group(2), 0) + 1
                if first_found:
                    continue
                first_all += 1
                if int(r.group(1)) in dev_fds:
                    first_dev += 1
                is_dqbuf = r.group(2) == "VIDIOC_DQBUF"
                if "<unfinished" in rest:
                    pending[pid] = ("ioctl", is_dqbuf)
                elif is_dqbuf and result == 0:
                    first_found = True
            elif rest.startswith("<... ioctl resumed>") and not first_found:
                if pending.pop(pid, None) == ("ioctl", True) and result == 0:
                    first_found = True
    return {
        "syscalls": calls, "errors": errors, "ioctl_requests": requests,
        "ioctls_to_first_all": first_all if first_found else None,
        "ioctls_to_first_dev": first_dev if first_found else None,
    }


def clocksource():
    try:
        with open("/sys/devices/system/clocksource/clocksource0/current_clocksource") as f:
            return f.read().strip()
    except OSError:
        return "?"


def cell(xs, fmt="{:.3f}", spread=True):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    m = fmt.format(statistics.median(xs))
    lo, hi = fmt.format(min(xs)), fmt.format(max(xs))
    return m if not spread or lo == hi else f"{m} [{lo}-{hi}]"


def run_bench(cmd, timeout):
    """Runs one capture_bench command (maybe under strace or valgrind). Returns its record (the
    JSON of its last line, the element's factory as "factory", the wall time as "wall_s", and
    on failure "error"), whether it ran well, its stderr and the wall time in seconds."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = "timeout", "", "killed after the timeout"
    wall = time.monotonic() - t0
    try:
        rec = json.loads(out.strip().splitlines()[-1])
        ok = rc == 0
    except (ValueError, IndexError):
        rec, ok = {}, False
    rec["factory"] = rec.pop("element", None)
    rec["wall_s"] = round(wall, 2)
    if not ok:
        rec["error"] = f"exit {rc}: {err.strip()[-2000:]}"
    return rec, ok, err, wall
