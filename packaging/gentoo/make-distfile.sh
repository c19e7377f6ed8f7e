#!/usr/bin/env bash
# Produces the release distfile the versioned kinstall ebuild fetches: kinstall-VERSION.tar.gz, holding
# kinstall-VERSION/ with what `npm pack` ships (package.json's "files": dist/, hooks.d/, man/, units/,
# completion/, README.md) plus the production dependencies in node_modules/, installed from
# package-lock.json. The ebuild then needs neither npm nor the network.
#   bash packaging/gentoo/make-distfile.sh [OUTDIR]     (default OUTDIR: the current directory)
# Builds dist/ first (npm ci, npm run build). npm may answer from its cache: NPM_CONFIG_PREFER_OFFLINE=true.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
outdir=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
version=$(node -p 'require(process.argv[1]).version' "$top/package.json")
name=kinstall-$version
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$top"
[ -f dist/src/cli/kinstall.js ] || { npm ci --no-audit --no-fund && npm run build; }
# --ignore-scripts: dist/ is built; npm pack would otherwise run "prepare", which empties and
# rebuilds dist/ in place under anything running from it (the test suite does).
npm pack --silent --ignore-scripts --pack-destination "$work" >/dev/null
mkdir "$work/$name"
tar -xzf "$work/$name.tgz" -C "$work/$name" --strip-components=1
cp package-lock.json "$work/$name/"
# --ignore-scripts: the tarball's dist/ is already built (the prepare script would need tsc).
(cd "$work/$name" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
# npm still installs typescript as cosmiconfig's optional peer (devOptional in the lock file); it
# serves only .ts config files, which kinstall does not search for: 23 MB left out.
rm -rf "$work/$name/package-lock.json" "$work/$name/node_modules/typescript" "$work/$name/node_modules/.bin/"{tsc,tsserver}
tar --sort=name --owner=0 --group=0 --numeric-owner -czf "$outdir/$name.tar.gz" -C "$work" "$name"
echo "$outdir/$name.tar.gz"
