#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short while (FUZZTIME, default
# 5s each), for make test. A target that finds a failure stops the script;
# go test writes the failing input under the package's testdata/fuzz, where
# it then runs as an ordinary test case.
set -euo pipefail

cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
fuzztime="${FUZZTIME:-5s}"

# "pkgdir name" for each `func FuzzXxx(` in a _test.go file.
mapfile -t targets < <(
	grep -rE --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*\(' . |
		grep -v '^\./\.cache/' |
		sed -E 's|^(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\($|\1 \2|' |
		sort -u
)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz-short: no fuzz targets found"
	exit 0
fi
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	echo "fuzz-short: $dir $name ($fuzztime)"
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$dir"
done
echo "fuzz-short: ${#targets[@]} targets passed"
