#!/usr/bin/env bash
# fresh-root.sh: runs the README's `make test` inside a freshly made Debian 12 root, so that a
# package missing from scripts/debian-packages.txt fails here even when this machine has it.
#
# What the root is: `debootstrap --variant=minbase bookworm` from Debian's archive (the strictest
# Debian 12 base: essential packages plus apt, as in Debian's own container images; a fuller
# install only adds packages). From this machine it gets only what a fresh machine of this
# environment has besides Debian itself: the Debian package sources (debian.sources: Debian's
# archive and security, no third-party repositories), the apt setting that lets apt accept this
# environment's mirror (Check-Valid-Until/Check-Date false), the extra CA certificates of the
# TLS-intercepting egress (/usr/local/share/ca-certificates, which the ca-certificates package adds
# to the bundle when it installs), npm's cafile setting, and resolv.conf. Nothing is installed
# from this machine: inside the root, `scripts/deps.sh build test` installs every package, as root,
# then `make test` runs (CI=true). The sample catalog is bind-mounted read-only at
# ../shared/data relative to the source copy (/src/vitrine), when it is beside the checkout.
#
# Caching (under FRESH_CACHE, default /var/cache/vitrine-fresh):
# - the base root, i.e. the debootstrap result before any install, as a tarball keyed by suite,
#   architecture, variant and the Date of the suite's Release file; each run unpacks it anew.
# - apt's downloaded .deb files (bind-mounted over /var/cache/apt/archives in the root). This only
#   saves download time: apt still resolves everything from scripts/debian-packages.txt against
#   the current package lists and checks each cached file against the lists' hashes before using
#   it; installed packages are never cached. `apt-get autoclean` drops superseded versions.
# FRESH_NO_CACHE=1 uses neither. dpkg runs with force-unsafe-io (no fsync) in the root.
#
# The log goes to build-fresh/fresh.log as well as to the terminal. The unpacked root
# (build-fresh/root) is removed at the end, after every mount under it is gone, on success and
# on failure alike. FRESH=0 skips the whole check (local use); CI always runs it.
# Usage (as root): scripts/fresh-root.sh
set -euo pipefail

if [ "${FRESH:-1}" = 0 ]; then
  echo "fresh-root: FRESH=0: skipped"
  exit 0
fi
cd "$(dirname "$0")/.."
src=$(pwd)
out=$src/build-fresh
log=$out/fresh.log

# Log to build-fresh/fresh.log and the terminal: the script runs itself again behind tee (which
# ignores Ctrl-C so that the clean-up messages still reach the log).
if [ -z "${FRESH_LOGGING:-}" ]; then
  mkdir -p "$out"
  set +e
  FRESH_LOGGING=1 "$0" "$@" 2>&1 | (trap '' INT TERM HUP; tee "$log")
  rc=${PIPESTATUS[0]}
  exit "$rc"
fi

[ "$(id -u)" -eq 0 ] || { echo "fresh-root: must run as root (debootstrap, chroot, mount)" >&2; exit 1; }

suite=bookworm
arch=amd64
variant=minbase
root=$out/root
cache=${FRESH_CACHE:-/var/cache/vitrine-fresh}
sources=/etc/apt/sources.list.d/debian.sources
mirror=$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' "$sources" | head -n1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
data=$(cd "$src/.." && pwd)/shared/data
start=$SECONDS
phase=$SECONDS
step() { echo "== fresh-root: $* (at $((SECONDS - start)) s, previous step $((SECONDS - phase)) s)"; phase=$SECONDS; }

# Unmounts whatever is still mounted under the root (debootstrap's own /proc and /sys after a
# failure, say), then removes it; never removes it while anything is still mounted there.
clear_root() {
  local m
  [ -d "$root" ] || return 0
  findmnt -rn -o TARGET | grep -F "$root/" | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  if findmnt -rn -o TARGET | grep -qF "$root"; then
    echo "fresh-root: mounts are still left under $root; not removing it:" >&2
    findmnt -rn -o TARGET | grep -F "$root" >&2
    return 1
  fi
  rm -rf --one-file-system "$root"
}

mounted=()
cleanup() {
  local rc=$? p m
  trap - EXIT INT TERM HUP
  set +e
  # Processes still running inside the root (a test's server, say) would keep mounts busy.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}"
  done
  clear_root || rc=1
  [ $rc -eq 0 ] || echo "fresh-root: FAILED (exit $rc after $((SECONDS - start)) s); log: $log"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

bind() {   # bind SRC DEST [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounted+=("$2")
  mount --make-private "$2"
  [ "${3:-}" != ro ] || mount -o remount,bind,ro "$2"
}

step "Debian 12 ($suite, $arch, $variant) from $mirror; source $src"
export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null 2>&1; then
  step "installing debootstrap on this machine"
  apt-get install -y -q --no-install-recommends debootstrap || {
    apt-get update -q && apt-get install -y -q --no-install-recommends debootstrap; }
fi

# One run at a time per machine: the caches are shared.
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -n 9 || { step "waiting for another run on this machine"; flock 9; }

# Leftovers of a run that was killed hard.
[ ! -e "$root" ] || { echo "fresh-root: removing the leftover $root"; clear_root; }
mkdir -p "$root"

# The base root: from the cache when the suite's Release date matches, else debootstrap.
key=
if [ -z "${FRESH_NO_CACHE:-}" ]; then
  rel=$(mktemp)
  if /usr/lib/apt/apt-helper download-file "$mirror/dists/$suite/Release" "$rel" >/dev/null 2>&1; then
    date=$(sed -n 's/^Date: *//p' "$rel" | head -n1)
    [ -z "$date" ] || key=$suite-$arch-$variant-$(date -u -d "$date" +%Y%m%dT%H%M%SZ)
  fi
  rm -f "$rel"
fi
base=${key:+$cache/base-$key.tar.gz}
if [ -n "$base" ] && [ -s "$base" ]; then
  step "unpacking the cached base root $base"
  tar -C "$root" --numeric-owner -xpzf "$base"
else
  step "debootstrap (no cached base root${key:+ for $key})"
  debootstrap --arch="$arch" --variant="$variant" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$suite" "$root" "$mirror"
  # The base holds no trace of this machine and no package lists: each run reads current ones.
  rm -f "$root/etc/resolv.conf" "$root/etc/hostname" "$root/etc/apt/sources.list"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  if [ -n "$base" ]; then
    step "caching the base root as $base"
    rm -f "$cache"/base-"$suite-$arch-$variant"-*.tar.gz
    tar -C "$root" --numeric-owner -cpzf "$base.tmp" .
    mv "$base.tmp" "$base"
  fi
fi

step "configuring the root (sources, apt setting, dpkg unsafe-io, CA certificates, npm cafile, DNS)"
cp "$sources" "$root/etc/apt/sources.list.d/debian.sources"
cat >"$root/etc/apt/apt.conf.d/99fresh-mirror" <<'EOF'
// this environment's Debian mirror serves Release files past their Valid-Until date
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
EOF
# dpkg without fsync, as in Debian's own container images: the root is thrown away after the run,
# and this changes nothing of what gets installed, only how long unpacking takes.
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/fresh-unsafe-io"
mkdir -p "$root/usr/local/share/ca-certificates"
for c in /usr/local/share/ca-certificates/*.crt; do
  [ -e "$c" ] && cp "$c" "$root/usr/local/share/ca-certificates/"
done
# Present only if the base has the ca-certificates package; otherwise its installation by
# deps.sh adds these certificates to the bundle.
[ ! -x "$root/usr/sbin/update-ca-certificates" ] || chroot "$root" update-ca-certificates
npmrc='cafile=/etc/ssl/certs/ca-certificates.crt'
printf '%s\n' "$npmrc" >"$root/etc/npmrc"
mkdir -p "$root/usr/etc" && printf '%s\n' "$npmrc" >"$root/usr/etc/npmrc"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
[ -s "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

step "copying the source (tracked and untracked, not ignored files) to /src/vitrine"
mkdir -p "$root/src/vitrine"
git -C "$src" ls-files -co --exclude-standard -z |
  while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done |
  tar -C "$src" --null -T - -cf - | tar -C "$root/src/vitrine" -xpf -

mount -t proc proc "$root/proc"; mounted+=("$root/proc")
bind /dev "$root/dev"
bind /dev/pts "$root/dev/pts"
mkdir -p "$root/dev/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"; mounted+=("$root/dev/shm")
if [ -d "$data" ]; then
  bind "$data" "$root/src/shared/data" ro
else
  echo "fresh-root: no $data beside the checkout: the tests run without the sample catalog"
fi
if [ -z "${FRESH_NO_CACHE:-}" ]; then
  mkdir -p "$cache/apt-archives/partial"
  bind "$cache/apt-archives" "$root/var/cache/apt/archives"
fi

# A clean environment, as on a fresh machine; OPENBLAS_* is part of this environment's machines
# (older OpenBLAS builds misbehave on some processors without it).
envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
      TERM=dumb CI=true DEBIAN_FRONTEND=noninteractive)
while IFS= read -r v; do envs+=("$v"); done < <(env | grep '^OPENBLAS_' || true)

step "scripts/deps.sh build test (inside the root)"
chroot "$root" /usr/bin/env -i "${envs[@]}" /bin/bash -c 'cd /src/vitrine && scripts/deps.sh build test'
step "make test (inside the root)"
chroot "$root" /usr/bin/env -i "${envs[@]}" /bin/bash -c 'cd /src/vitrine && make test'
step "make test passed"
[ -n "${FRESH_NO_CACHE:-}" ] || chroot "$root" apt-get autoclean -q >/dev/null || true
echo "fresh-root: PASSED: make test in a fresh Debian 12 root, $((SECONDS - start)) s"
