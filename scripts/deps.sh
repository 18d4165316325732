#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/debian-packages.txt that are missing.
# As root it runs apt-get; otherwise it prints the exact command to run.
# Usage: scripts/deps.sh [TAG...]   (tags: build test peer web; default: build test)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tags=("$@")
[ ${#tags[@]} -gt 0 ] || tags=(build test)
want=()
while read -r name tag extra _; do
  case "$name" in ''|'#'*) continue ;; esac
  case "$extra" in if-missing=*) command -v "${extra#if-missing=}" >/dev/null 2>&1 && continue ;; esac
  for t in "${tags[@]}"; do
    if [ "$t" = "$tag" ]; then want+=("$name"); fi
  done
done < "$here/debian-packages.txt"
missing=()
for p in "${want[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done
# npm packages of the browser test (playwright-core drives Debian's chromium; no browser download).
# Installed when absent or not the version tests/browser/package.json pins; a failure is an error:
# the browser test is part of the suite, not optional.
npm_deps() {
  [[ " ${tags[*]} " == *" test "* ]] || return 0
  local dir=$here/../tests/browser want have
  want=$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' "$dir/package.json")
  have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/playwright-core/package.json" 2>/dev/null | head -n1 || true)
  [ "$have" = "$want" ] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "deps: npm is missing: cannot install playwright-core for the browser test" >&2
    return 1
  fi
  echo "deps: npm ci in tests/browser (playwright-core $want)"
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null) || {
    echo "deps: npm ci in tests/browser failed (node $(node --version 2>/dev/null)); see the messages above" >&2
    return 1
  }
}
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#want[@]} packages for [${tags[*]}] are installed"
  npm_deps
  exit 0
fi
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are absent or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
  apt-get update -q
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
npm_deps
