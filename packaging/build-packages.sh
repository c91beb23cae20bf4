#!/bin/bash
# Builds augur's Debian packages (packaging/debian) into OUT: `make package`.
#   packaging/build-packages.sh OUT [VERSION]
# The working tree (tracked and untracked files, not what .gitignore ignores, so uncommitted
# edits are in) is copied to OUT/augur with packaging/debian as its debian/, and built there
# with dpkg-buildpackage -b. The copy and its build folder are kept, so a rerun recompiles
# only what changed (and ccache serves the rest). VERSION, when given, is put at the top of
# the changelog first (packaging/test-install.sh builds a second, newer version so).
# lintian runs on the packages: an error or a warning (that no override explains) fails.
set -euo pipefail

out=${1:?usage: $0 OUT [VERSION]}
version=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
src="$out/augur"

for tool in dpkg-buildpackage dh lintian rsync; do
  command -v "$tool" >/dev/null || { echo "package: $tool not found (make deps installs it)" >&2; exit 1; }
done

mkdir -p "$src"
# Only what git knows of (or would add), as it is in the working tree now.
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) > "$out/files.list"
rsync -a --from0 --files-from="$out/files.list" "$top/" "$src/"
rm -rf "$src/debian"
cp -r "$top/packaging/debian" "$src/debian"

if [ -n "$version" ]; then
  { printf 'augur (%s) unstable; urgency=medium\n\n  * Rebuilt with a newer version number (packaging/test-install.sh upgrade).\n\n' "$version"
    printf ' -- %s  %s\n\n' "$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$src/debian/changelog" | head -1)" "$(date -R)"
    cat "$src/debian/changelog"; } > "$src/debian/changelog.new"
  mv "$src/debian/changelog.new" "$src/debian/changelog"
fi
pkgver=$(cd "$src" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)

echo "package: building augur $pkgver in $src"
# Two jobs: the machine's cores are shared (PKG_JOBS overrides). The package build does not
# run the test suite (debian/rules says why).
(cd "$src" && AUGUR_DEB_CCACHE=$(command -v ccache >/dev/null && echo 1 || echo 0) \
  DEB_BUILD_OPTIONS="parallel=${PKG_JOBS:-2} nocheck" nice dpkg-buildpackage -us -uc -b -nc) > "$out/build-$pkgver.log" 2>&1 || {
  tail -40 "$out/build-$pkgver.log" >&2
  echo "package: dpkg-buildpackage failed, whole log in $out/build-$pkgver.log" >&2
  exit 1
}
debs=()
for p in augur augur-plugin-libvirt augur-plugin-dev; do
  debs+=("$out/${p}_${pkgver}_${arch}.deb")
  [ -f "${debs[-1]}" ] || { echo "package: ${debs[-1]} was not built" >&2; exit 1; }
done

echo "package: lintian"
if ! lintian --fail-on error,warning --display-info "${debs[@]}" "$out/augur_${pkgver}_${arch}.changes" \
    > "$out/lintian-$pkgver.log" 2>&1; then
  cat "$out/lintian-$pkgver.log" >&2
  echo "package: lintian found errors or warnings" >&2
  exit 1
fi
sed 's/^/  /' "$out/lintian-$pkgver.log"
for d in "${debs[@]}"; do echo "package: $d"; done
