#!/usr/bin/env bash
# Installs code-server 4.100.3 (VS Code 1.100.3; the newest that accepts Node 20) into
# .cache/code-server/, outside the repository's node_modules, for the editor tests
# (test/editor/*.test.ts). Idempotent: a second run only checks. As ../shared/RECIPES.md:
# Debian's build headers and ripgrep, and @vscode/ripgrep fed Debian's rg from its download cache
# (its install script would otherwise fetch rg from GitHub).
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=.cache/code-server
bin=$prefix/node_modules/.bin/code-server
if [ -x "$bin" ]; then
  echo "code-server: $("$bin" --version 2>/dev/null | tail -1) in $prefix"
  exit 0
fi
started=$(date +%s)
missing=()
for pkg in pkg-config libx11-dev libxkbfile-dev libsecret-1-dev libkrb5-dev ripgrep chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "code-server setup: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
ripgrep_version=1.15.11   # the @vscode/ripgrep code-server 4.100.3 resolves to
tmp=$(node -p 'require("os").tmpdir()')
cache=$tmp/vscode-ripgrep-cache-$ripgrep_version
archive=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz
if [ ! -f "$cache/$archive" ]; then
  work=$(mktemp -d)
  cp "$(command -v rg)" "$work/rg"
  (cd "$work" && tar czf "$archive" rg)
  mkdir -p "$cache" && cp "$work/$archive" "$cache/"
  rm -rf "$work"
fi
mkdir -p "$prefix"
[ -f "$prefix/package.json" ] || echo '{"name":"code-server-cache","private":true}' > "$prefix/package.json"
npm_config_yes=true npm_config_unsafe_perm=true npm install --prefix "$prefix" --no-fund --no-audit --loglevel=error code-server@4.100.3
echo "code-server: $("$bin" --version 2>/dev/null | tail -1) installed in $prefix in $(( $(date +%s) - started )) s"
