#!/usr/bin/env bash
#
# audit_bench.sh: sign throughput with [audit] signs = yes against signs =
# no, on the same SoftHSM token in one run (issue 4 asks yes >= 0.8 x no).
# A measurement, not a test:
#
#   HSMKEYD=build/service/hsmkeyd HSMKEY=build/client/hsmkey \
#   AUDIT_BENCH=build/tests/audit_bench tests/audit_bench.sh [SECONDS [THREADS [ROUNDS]]]
#
# Each round runs hsmkeyd once with signs = no and once with signs = yes
# (alternating, so that drift hits both) and drives it with THREADS
# signers (tests/audit_bench.c) for SECONDS.  Prints each rate and the
# ratio of the sums.  The audit log is in the test's temp dir ($TMPDIR).
#
# A reply waits for its line's fdatasync, so with audited signs the rate
# is at most (signers in flight) / (time of one write + fdatasync): with
# 2.5 ms per fdatasync, 8 signers cannot pass ~3000/s whatever the CPU.
# Group commit makes the cost per sign small once enough requests are in
# flight, hence 64 signers by default.

. "$(dirname "$0")/lib.sh"

: "${AUDIT_BENCH:?AUDIT_BENCH must name the audit_bench binary}"
SECS=${1:-10}
THREADS=${2:-64}
ROUNDS=${3:-2}

hk_setup
hk_start || exit 1
expect_exit 0 hk create bk
hk_stop

# run SIGNS: one measurement; prints the rate.
run()
{
	sed -i -e '/^signs = /d' -e "s|^\\[audit\\]\$|[audit]\\nsigns = $1|" \
	    "$T/hsmkeyd.conf"
	hk_start >/dev/null || exit 1
	"$AUDIT_BENCH" "$T/admin.cred" bk "$SECS" "$THREADS" >"$T/b.out" ||
	    fail "audit_bench"
	hk_stop >/dev/null
	sed -n -e 's/.*rate \([0-9]*\)\/s.*/\1/p' "$T/b.out"
}

sum_no=0
sum_yes=0
for ((i = 1; i <= ROUNDS; i++)); do
	no=$(run no)
	yes=$(run yes)
	note "round $i: signs = no $no/s, signs = yes $yes/s"
	sum_no=$((sum_no + no))
	sum_yes=$((sum_yes + yes))
done
lines=$(grep -c '"op":"sign"' "$T/audit.log")
note "audit log: $lines sign lines, $(grep -c '"op":"checkpoint"' "$T/audit.log") checkpoints"
note "$THREADS signers, ${SECS}s x $ROUNDS rounds: signs = yes / signs = no = $sum_yes / $sum_no = $(awk -v a="$sum_yes" -v b="$sum_no" 'BEGIN { printf "%.2f", a / b }')"
hk_finish
