#!/usr/bin/env bash
# Prints the CHANGELOG.md section of one version (its "## VERSION" heading excluded), for the
# release workflow's notes. Fails when the section is missing or empty: a release is not cut
# without its notes.
# Usage: tools/release-notes.sh VERSION
set -euo pipefail
version=${1:?usage: $0 VERSION}
changelog=$(dirname "$0")/../CHANGELOG.md
# The heading may carry a date ("## 0.2.0 - 2026-01-31"); the section ends at the next "## ".
notes=$(awk -v v="$version" '
  /^## / { inside = ($2 == v); next }
  inside { print }
' "$changelog" | sed -e '/./,$!d')  # without the leading blank lines
if [[ -z ${notes//[[:space:]]/} ]]; then
  echo "release-notes: no section '## $version' in CHANGELOG.md" >&2
  exit 1
fi
printf '%s\n' "$notes"
