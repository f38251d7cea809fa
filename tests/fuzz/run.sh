#!/usr/bin/env bash
#
# tests/fuzz/run.sh EXE SEEDS SECONDS [ARTIFACTS]: runs the libFuzzer target
# EXE for SECONDS from the seed corpus SEEDS (read only: new inputs go to a
# temp dir, removed at the end) and exits non-zero on a crash, a leak,
# undefined behaviour or a timeout.  The input that failed is kept in
# ARTIFACTS (default: the current directory) and named on the last line.
# Prints libFuzzer's final stats (#N DONE ... exec/s).

set -uo pipefail
if [ "$#" -lt 3 ]; then
	echo "usage: run.sh EXE SEEDS SECONDS [ARTIFACTS]" >&2
	exit 2
fi
exe=$1 seeds=$2 secs=$3 art=${4:-$PWD}
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$exe")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hk-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/corpus" "$tmp/tmp" "$art" || exit 1

# The token's temp dirs go under $tmp, so a crash leaves none behind.
# Leaks inside SoftHSM and p11-kit are theirs (tests/lsan.supp), and one
# that LeakSanitizer cannot see is not a leak (tests/fuzz/lsan.supp);
# matching them needs whole malloc stacks (OpenSSL has no frame pointers).
export TMPDIR=$tmp/tmp
cat "$here/../lsan.supp" "$here/lsan.supp" >"$tmp/lsan.supp" || exit 1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0
export LSAN_OPTIONS=suppressions=$tmp/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

"$exe" -max_total_time="$secs" -timeout=60 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$art/$name-" \
    "$tmp/corpus" "$seeds" >"$tmp/log" 2>&1
rc=$?
# the start, every crash report, and the final stats
sed -e '/Recommended dictionary/,/End of recommended dictionary/d' \
    -e '/^#[0-9]*[[:space:]]*\(NEW\|REDUCE\|pulse\)/d' \
    -e '/^[[:space:]]*NEW_FUNC/d' "$tmp/log" | tail -n 60
grep -E '^#[0-9]+[[:space:]]+DONE' "$tmp/log" | sed "s/^/$name: /"
if [ "$rc" -ne 0 ]; then
	echo "$name: FAILED (exit $rc); the input is in $art/$name-*" >&2
fi
exit "$rc"
