#!/usr/bin/env bash
# tools/fresh-check.sh — runs the README's Quick start commands on a fresh, minimal Debian 12, as a
# new user would: in a chroot made by `debootstrap --variant=minbase bookworm` (nothing else
# installed), as root, in a clean clone of the committed HEAD. CI runs it on every submission;
# run it yourself before you submit a change to tools/, CMake files or the README.
#
#   bash tools/fresh-check.sh              the Quick start commands, taken from README.md itself
#   bash tools/fresh-check.sh --print      only print the commands it would run
#   bash tools/fresh-check.sh -- CMD       run CMD instead (e.g. 'bash tools/test.sh -R Chan')
#
# Needs root (debootstrap, chroot, mounts) and network access to the Debian archive (the mirror
# apt uses on this machine, else deb.debian.org). The bootstrapped base root is cached in
# $RT_FRESH_CACHE (default /var/cache/rt-csp/fresh-bookworm) and copied for each run, so every run
# starts from a root with nothing installed; installed packages are never cached. If the root
# cannot be bootstrapped the script says so and fails: it never passes without running.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${RT_FRESH_CACHE:-/var/cache/rt-csp/fresh-bookworm}
work=${RT_FRESH_WORK:-/var/tmp/rt-csp-fresh-run}

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

say() { echo "fresh-check: $*"; }
fail() {
  echo "fresh-check: FAILED: $*" >&2
  exit 1
}

# The Quick start commands: the lines of the first ```sh block after "## Quick start" in the
# README, comments stripped. Taking them from the README keeps README and CI from drifting apart.
readme_commands() {
  awk '
    /^## Quick start/ { in_section = 1; next }
    in_section && /^## / { exit }
    in_section && /^```/ { if (in_block) exit; in_block = 1; next }
    in_block {
      sub(/[[:space:]]+#.*$/, "")
      if ($0 ~ /[^[:space:]]/) print
    }
  ' "$root/README.md"
}

print_only=0
custom=""
while [ $# -gt 0 ]; do
  case "$1" in
    --print) print_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; custom="$*"; break ;;
    *) echo "fresh-check: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -n "$custom" ]; then
  commands=("$custom")
else
  mapfile -t commands < <(readme_commands)
  [ ${#commands[@]} -gt 0 ] || fail "found no commands in README.md's Quick start block"
fi
joined=""
for c in "${commands[@]}"; do joined+="${joined:+ && }$c"; done
if [ "$print_only" = 1 ]; then
  printf '%s\n' "${commands[@]}"
  exit 0
fi

[ "$(id -u)" = 0 ] || fail "must run as root (debootstrap, chroot and mounts need it)"
if ! git -C "$root" diff --quiet HEAD 2>/dev/null; then
  say "note: uncommitted changes are not tested (the check clones the committed HEAD)"
fi

# ---- the base root: bootstrapped once, then only ever copied --------------------------------
if [ ! -f "$cache/.rt-fresh-complete" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap on this machine (the host, not the fresh root)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
      >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
          debootstrap >/dev/null 2>&1; } ||
      fail "could not install debootstrap with apt-get (no network to the Debian archive?)"
  fi
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  case "$mirror" in
    *debian-security*|"") mirror=http://deb.debian.org/debian ;;
  esac
  say "bootstrapping a minimal Debian 12 root from $mirror into $cache (once; a few minutes)"
  rm -rf "$cache"
  mkdir -p "$(dirname "$cache")"
  log=$(mktemp)
  if ! debootstrap --variant=minbase bookworm "$cache" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -rf "$cache"
    fail "debootstrap could not build a Debian 12 root (no network to $mirror?); the README's commands were NOT checked"
  fi
  rm -f "$log"
  touch "$cache/.rt-fresh-complete"
fi
grep -q '^12' "$cache/etc/debian_version" || fail "$cache is not a Debian 12 root"

# ---- a fresh copy, a clean clone, the commands ----------------------------------------------
unmount_all() {
  for m in dev/pts dev sys proc; do
    mountpoint -q "$work/$m" 2>/dev/null && umount -l "$work/$m" 2>/dev/null
  done
  return 0
}
cleanup() {
  unmount_all
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
unmount_all
rm -rf --one-file-system "$work"
cp -a "$cache" "$work"
rm -f "$work/.rt-fresh-complete"
cp /etc/resolv.conf "$work/etc/resolv.conf"
git clone -q "$root" "$work/src" || fail "git clone of $root failed"
say "testing commit $(git -C "$work/src" rev-parse --short HEAD) in a fresh Debian $(cat "$work/etc/debian_version")"
mount -t proc proc "$work/proc"
mount --rbind /sys "$work/sys"
mount --rbind /dev "$work/dev"

say "running, as root in /src: $joined"
rc=0
chroot "$work" /usr/bin/env -i HOME=/root TERM=dumb \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash -c "cd /src && $joined" || rc=$?
if [ "$rc" = 0 ]; then
  say "ok: $joined passes on a fresh Debian 12"
else
  say "FAILED (exit $rc): $joined fails on a fresh Debian 12"
fi
exit "$rc"
