#!/usr/bin/env bash
#
# tests/auth_bench.sh: what issue 3's auth checks cost in sign throughput.
# Not a test: a measurement, printed.
#
#   tests/auth_bench.sh [BUILD_DIR [THREADS [SECONDS [ROUNDS]]]]
#
# One SoftHSM token, one ecdsa-p256 key.  Each round starts hsmkeyd twice
# on that token: normally, and with HSMKEYD_BENCH_SKIP_AUTH=yes-i-am-a-
# benchmark (no client lookup, MAC, clock or nonce checks, no reply MAC;
# the daemon logs a loud warning), and runs tests/auth_bench (THREADS
# clients signing digests over the raw protocol for SECONDS) against each.
# Rounds alternate, and which of the two runs first alternates too, so
# that drift hits both alike.  Prints every run, the
# sums, and auth's cost: 1 - rate(auth) / rate(no auth).
#
# Defaults: BUILD_DIR build, THREADS 4, SECONDS 10, ROUNDS 3; the daemon
# has [service] workers = $HK_WORKERS (default 2) and logs at info (one line per event, none per sign).

BUILD=${1:-build}
THREADS=${2:-4}
SECS=${3:-10}
ROUNDS=${4:-3}
case $BUILD in
/*) ;;
*) BUILD=$PWD/$BUILD ;;
esac
export HSMKEYD=$BUILD/service/hsmkeyd HSMKEY=$BUILD/client/hsmkey
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
hk_stop >/dev/null

# run MODE: one measurement; prints its rate.
run()
{
	local mode=$1 out
	if [ "$mode" = noauth ]; then
		HSMKEYD_BENCH_SKIP_AUTH=yes-i-am-a-benchmark hk_start ||
		    exit 1
		grep -q 'AUTHENTICATION IS OFF' "$HK_LOG" || {
			echo "auth_bench.sh: the switch did not take" >&2
			exit 1
		}
	else
		hk_start || exit 1
	fi
	out=$("$BENCH" "$T/admin.cred" "$HK_SOCK_URL" bench "$THREADS" \
	    "$SECS") || {
		echo "auth_bench.sh: $mode run failed: $out" >&2
		exit 1
	}
	hk_stop >/dev/null
	printf '%s\n' "$out" | sed -n -e 's/.*rate \([0-9.]*\)\/s.*/\1/p'
}

echo "auth_bench: $THREADS client threads, ${SECS} s per run, $ROUNDS" \
    "rounds, ${HK_WORKERS:-2} workers, $(nproc) cores, build $BUILD"
sum_a=0
sum_n=0
for ((i = 1; i <= ROUNDS; i++)); do
	# in turns, which runs first: neither gains from going second
	if ((i % 2)); then
		a=$(run auth)
		n=$(run noauth)
	else
		n=$(run noauth)
		a=$(run auth)
	fi
	printf 'round %d: with auth %8.1f signs/s   without %8.1f signs/s\n' \
	    "$i" "$a" "$n"
	sum_a=$(awk -v s="$sum_a" -v x="$a" 'BEGIN { print s + x }')
	sum_n=$(awk -v s="$sum_n" -v x="$n" 'BEGIN { print s + x }')
done
awk -v a="$sum_a" -v n="$sum_n" -v r="$ROUNDS" 'BEGIN {
	printf "mean:    with auth %8.1f signs/s   without %8.1f signs/s\n",
	    a / r, n / r
	printf "ratio with/without %.4f: auth costs %.2f%% of sign throughput\n",
	    a / n, 100 * (1 - a / n)
}'
HK_PASS=0
HK_FAIL=0
