#!/usr/bin/env bash
# update-apipage.sh: fetch the pinned Swagger UI from npm and copy the few
# files the API page (GET /docs) serves into api/apipage/, where go:embed
# puts them into the binary: the page needs no network at run time.
#
#   scripts/update-apipage.sh          # refresh api/apipage/ (commit the result)
#   scripts/update-apipage.sh --check  # fail if api/apipage/ differs from the pinned package
#
# To move to another version, change VERSION, run the script, look at the
# page (make run, then https://127.0.0.1:8443/docs) and commit.
set -euo pipefail

VERSION=5.35.0
PACKAGE=swagger-ui-dist
# The files the page loads, and the licences that must travel with them.
FILES=(swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt)

repo=$(cd "$(dirname "$0")/.." && pwd)
dest="$repo/api/apipage"
check=false
case "${1:-}" in
--check) check=true ;;
"") ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v npm >/dev/null || { echo "update-apipage: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# npm pack checks the tarball against the registry's integrity hash.
(cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tar -xzf "$tmp/$PACKAGE-$VERSION.tgz" -C "$tmp"

status=0
for f in "${FILES[@]}"; do
	if $check; then
		cmp -s "$tmp/package/$f" "$dest/$f" || { echo "update-apipage: api/apipage/$f differs from $PACKAGE@$VERSION" >&2; status=1; }
	else
		install -m 0644 "$tmp/package/$f" "$dest/$f"
	fi
done
if ! $check; then
	echo "$PACKAGE@$VERSION" >"$dest/VERSION"
	echo "api/apipage: $PACKAGE@$VERSION (${FILES[*]})"
elif [ "$(cat "$dest/VERSION" 2>/dev/null)" != "$PACKAGE@$VERSION" ]; then
	echo "update-apipage: api/apipage/VERSION does not say $PACKAGE@$VERSION" >&2
	status=1
fi
exit $status
