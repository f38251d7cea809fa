#!/usr/bin/env bash
#
# tests/auth_bench.sh: what issue 3's auth checks cost in sign throughput.
# Not a test: a measurement, printed.
#
#   tests/auth_bench.sh [BUILD_DIR [THREADS [SECONDS [ROUNDS [PHASE_MS]]]]]
#
# One SoftHSM token, one ecdsa-p256 key, two hsmkeyd on it side by side
# (the same binary, hsmkeyd-hooked, the test build with its hooks; same
# settings, their own sockets and logs): A as configured, B started with
# HSMKEYD_BENCH_SKIP_AUTH=yes-i-am-a-benchmark (no client lookup, MAC, clock, nonce or grant checks, no reply MAC; the
# daemon logs a loud warning).  tests/auth_bench signs with THREADS client
# threads for SECONDS, switching every PHASE_MS between the two services
# (A B B A A B B A ...): the machine's drift, tens of percent from minute to
# minute here, falls on both alike.  Each round starts the pair afresh
# (which one starts first alternates).  Prints each round, then auth's cost
# over all rounds, 1 - rate(A) / rate(B), and how the rounds and the pairs
# of phases spread around it.
#
# HK_AUTH_BENCH_CONTROL=yes is the control: B runs with authentication
# too, so the cost printed is the method's own error (it should be ~0).
# HK_AUTH_BENCH_UNNAMED=yes is a control too, with the admin client given
# HK_AUTH_BENCH_SECRETS secrets (default 3) and A's requests naming none
# (secret_no 0: A checks the MAC with every one): the "cost" is what that
# trial costs against requests that name their secret.
# With it, HK_AUTH_BENCH_B=PATH runs B from another hsmkeyd binary (a build
# of another commit): the "cost" is then how much slower A's build signs
# than B's, measured side by side in the same way.
#
# Defaults: BUILD_DIR build, THREADS 8, SECONDS 30, ROUNDS 2, PHASE_MS 250;
# each daemon has [service] workers = $HK_WORKERS (default 2) and logs at
# info (one line per event, none per sign).

BUILD=${1:-build}
THREADS=${2:-8}
SECS=${3:-30}
ROUNDS=${4:-2}
PHASE_MS=${5:-250}
case $BUILD in
/*) ;;
*) BUILD=$PWD/$BUILD ;;
esac
# A and B run the same binary, the test build with its hooks
# (service/testhooks.h); only B has the switch set.  The control needs no
# hook: there both run the shipped hsmkeyd (B: HK_AUTH_BENCH_B if set).
export HSMKEYD=$BUILD/service/hsmkeyd-hooked HSMKEY=$BUILD/client/hsmkey
if [ "${HK_AUTH_BENCH_UNNAMED:-no}" = yes ]; then
	export HK_AUTH_BENCH_CONTROL=yes HK_AUTH_BENCH_A_UNNAMED=yes
fi
if [ "${HK_AUTH_BENCH_CONTROL:-no}" = yes ]; then
	HSMKEYD=$BUILD/service/hsmkeyd
fi
BENCH=$BUILD/tests/auth_bench
for p in "$HSMKEYD" "$HSMKEY" "$BENCH"; do
	[ -x "$p" ] || {
		echo "auth_bench.sh: $p missing: build $BUILD first" >&2
		exit 2
	}
done
HK_LOG_LEVEL=${HK_LOG_LEVEL:-info}
# signs are not audited here: an fdatasync per batch would swamp what the
# auth checks cost (audit_bench.sh measures the audit log)
export HK_AUDIT_SIGNS=${HK_AUDIT_SIGNS:-no}

. "$(dirname "$0")/lib.sh"

hk_setup >/dev/null
hk_start || exit 1
hk create bench --alg ecdsa-p256 >/dev/null || exit 1
if [ "${HK_AUTH_BENCH_UNNAMED:-no}" = yes ]; then
	for ((i = 1; i < ${HK_AUTH_BENCH_SECRETS:-3}; i++)); do
		hk client rotate admin --out "$T/admin-$i.cred" >/dev/null ||
		    exit 1
	done
fi
hk_stop >/dev/null

# the second service: its own socket, audit log and metrics file
B_URL="ipc://$T/hsmkey-b.sock"
HK_STATE_TAG=-b hk_write_config "$T/b.conf" "$B_URL"

start_b()
{
	if [ "${HK_AUTH_BENCH_CONTROL:-no}" = yes ]; then
		HSMKEYD=${HK_AUTH_BENCH_B:-$HSMKEYD} hk_start "$T/b.conf" ||
		    exit 1
		B_PID=$HK_PID
		return
	fi
	HSMKEYD_BENCH_SKIP_AUTH=yes-i-am-a-benchmark hk_start "$T/b.conf" ||
	    exit 1
	grep -q 'AUTHENTICATION IS OFF' "$HK_LOG" || {
		echo "auth_bench.sh: the switch did not take" >&2
		exit 1
	}
	B_PID=$HK_PID
}

start_a()
{
	hk_start || exit 1
	grep -q 'AUTHENTICATION IS OFF' "$HK_LOG" && {
		echo "auth_bench.sh: A runs without authentication" >&2
		exit 1
	}
	A_PID=$HK_PID
}

B_NAME=without
A_NAME="with auth"
COST_OF=auth
if [ "${HK_AUTH_BENCH_CONTROL:-no}" = yes ]; then
	echo "auth_bench: CONTROL RUN: both services authenticate"
	B_NAME="B (auth)"
	if [ "${HK_AUTH_BENCH_UNNAMED:-no}" = yes ]; then
		echo "auth_bench: A's requests name no secret" \
		    "(${HK_AUTH_BENCH_SECRETS:-3} live), B's name theirs"
		A_NAME="A (secret_no 0)"
		B_NAME="B (named)"
		COST_OF="naming no secret"
	fi
	if [ -n "${HK_AUTH_BENCH_B:-}" ]; then
		[ -x "$HK_AUTH_BENCH_B" ] || {
			echo "auth_bench.sh: HK_AUTH_BENCH_B=$HK_AUTH_BENCH_B" \
			    "is not an executable" >&2
			exit 2
		}
		echo "auth_bench: A is $HSMKEYD, B is $HK_AUTH_BENCH_B"
		B_NAME="B (other build)"
		A_NAME="A (this build)"
		COST_OF="A's build"
	fi
fi
echo "auth_bench: $THREADS client threads, $ROUNDS rounds of ${SECS} s," \
    "phases of ${PHASE_MS} ms, ${HK_WORKERS:-2} workers, $(nproc) cores," \
    "build $BUILD"
: >"$T/pairs"
: >"$T/totals"
for ((i = 1; i <= ROUNDS; i++)); do
	if ((i % 2)); then
		start_a
		start_b
	else
		start_b
		start_a
	fi
	out=$("$BENCH" "$T/admin.cred" "$HK_SOCK_URL" "$B_URL" bench \
	    "$THREADS" "$SECS" "$PHASE_MS") || {
		echo "auth_bench.sh: round $i failed: $out" >&2
		exit 1
	}
	hk_stop "$A_PID" >/dev/null
	hk_stop "$B_PID" >/dev/null
	printf '%s\n' "$out" | grep '^pair ' >>"$T/pairs"
	printf '%s\n' "$out" | grep '^total ' | tee -a "$T/totals" |
	    awk -v i="$i" -v a="$A_NAME" -v b="$B_NAME" '{ printf "round %d: " \
	    "%s %8.1f signs/s   %s %8.1f signs/s   cost %5.2f%%\n", i, a,
	    $3 / $4, b, $6 / $7, 100 * (1 - ($3 / $4) / ($6 / $7)) }'
done
# how the rounds spread: their costs' standard deviation and the standard
# error of their mean
awk '{ c = 100 * (1 - ($3 / $4) / ($6 / $7)); s += c; q += c * c; n++ }
END { if (n > 1) {
	sd = sqrt((q - s * s / n) / (n - 1))
	printf "rounds: cost per round mean %.2f%%, standard deviation " \
	    "%.2f%%, standard error of the mean %.2f%%\n", s / n, sd,
	    sd / sqrt(n)
} }' "$T/totals"
awk -v an="$A_NAME" -v name="$B_NAME" -v what="$COST_OF" \
    '{ a += $3; as += $4; b += $6; bs += $7 } END {
	printf "all rounds: %s %8.1f signs/s   %s %8.1f signs/s\n",
	    an, a / as, name, b / bs
	printf "ratio A/B %.4f: %s costs %.2f%% of sign " \
	    "throughput\n", (a / as) / (b / bs), what,
	    100 * (1 - (a / as) / (b / bs))
}' "$T/totals"
# the spread: each pair of phases' own cost, sorted
awk '$6 > 0 { printf "%.6f\n", 100 * (1 - $4 / $6) }' "$T/pairs" |
    sort -g >"$T/costs"
awk '{ c[NR] = $1; if ($1 > 0) slower++ } END {
	printf "pairs of phases: %d; cost per pair: median %.2f%%, " \
	    "quartiles %.2f%% .. %.2f%%; A slower in %d%% of pairs\n",
	    NR, c[int((NR + 1) / 2)], c[int((NR + 3) / 4)],
	    c[int((3 * NR + 3) / 4)], 100 * slower / NR
}' "$T/costs"
HK_PASS=0
HK_FAIL=0
