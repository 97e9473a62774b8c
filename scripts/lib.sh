# shellcheck shell=bash
# What the scripts in this folder share; each sources it after setting `prog`, its name in
# messages. Messages and failing, the usage text from the script's header, the stages of a
# run, setup-deps, cargo's target folder, and where the VM's tools are (vng, the kernel).
# It sets no shell option and changes no folder: that stays with each script.

# This folder, wherever the script was started from.
scripts_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# shellcheck disable=SC2154 # prog is the sourcing script's
log() { echo "$prog: $*" >&2; }

# Fails the script with status die_status: 1 unless the script says otherwise (vm-run: 125).
die() {
  log "error: $*"
  exit "${die_status:-1}"
}

# The running script's header: its comment lines from line 2 up to `set -euo`.
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

# Starts a stage of a long run; $stage names it in a failure message.
# shellcheck disable=SC2034 # stage is the sourcing script's
step() {
  stage=$1
  echo "==> $1" >&2
}

# scripts/setup-deps, unless SKIP_SETUP_DEPS=1.
setup_deps() {
  [[ ${SKIP_SETUP_DEPS:-0} == 1 ]] || "$scripts_dir/setup-deps"
}

# cargo's target folder: CARGO_TARGET_DIR or a cargo config may move it from ./target.
cargo_target_dir() {
  cargo metadata --no-deps --format-version 1 | python3 "$scripts_dir/cargo-json.py" target-dir
}

# Exports VM_RWDIR, the folder vm-run shares writable with the guest, $1 unless the caller set
# one, and makes it. Each script has its own: vm-run keeps the GStreamer registry for the run's
# GST_PLUGIN_PATH there, and a run beside another with the same folder would change it under it.
use_vm_rwdir() {
  export VM_RWDIR=${VM_RWDIR:-$1}
  mkdir -p "$VM_RWDIR"
}

# The newest /boot/vmlinuz-*, the kernel the VM boots (whose modules ship vivid); empty if none.
newest_kernel() {
  printf '%s\n' /boot/vmlinuz-* | grep -v '\*$' | sort -V | tail -n 1 || true
}

# The path of virtme-ng's vng, also where pip put it off PATH; empty if it is nowhere.
find_vng() {
  command -v vng && return 0
  command -v python3 >/dev/null || return 0
  local d
  for d in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)" "$HOME/.local/bin"; do
    if [[ -n $d && -x $d/vng ]]; then
      echo "$d/vng"
      return 0
    fi
  done
}
