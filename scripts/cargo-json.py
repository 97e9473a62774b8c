"""What the scripts read from cargo's JSON on standard input (scripts/lib.sh, scripts/test).

  python3 scripts/cargo-json.py target-dir      < `cargo metadata --format-version 1`
  python3 scripts/cargo-json.py has-lib         < the same: 1 if a package has a lib target, else 0
  python3 scripts/cargo-json.py test-binaries   < `cargo test --no-run --message-format=json...`:
      one line per integration test binary (target kind "test"): its package folder, a tab,
      the executable; cargo runs each test from its package folder
"""
import json
import os
import sys


def target_dir(metadata):
    print(metadata["target_directory"])


def has_lib(metadata):
    print(int(any(k.endswith("lib") for p in metadata["packages"] for t in p["targets"]
                  for k in t["kind"])))


def test_binaries(lines):
    seen = set()
    for line in lines:
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") != "compiler-artifact" or m["target"]["kind"] != ["test"]:
            continue
        exe = m.get("executable")
        if exe and exe not in seen:
            seen.add(exe)
            print(os.path.dirname(m["manifest_path"]) + "\t" + exe)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) == 2 else None
    if mode == "target-dir":
        target_dir(json.load(sys.stdin))
    elif mode == "has-lib":
        has_lib(json.load(sys.stdin))
    elif mode == "test-binaries":
        test_binaries(sys.stdin)
    else:
        sys.exit("usage: cargo-json.py target-dir | has-lib | test-binaries")
