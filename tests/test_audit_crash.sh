#!/usr/bin/env bash
#
# test_audit_crash.sh: durability of the audit log (README "Audit log").
# Several signers (tests/audit_bench.c, one libhsmkey handle each) sign as
# fast as they can; hsmkeyd is killed with SIGKILL in the middle.  Every
# signature a signer RECEIVED must have its audit line (its "sigs"
# receipt): a reply is sent only after its line was fdatasync'ed.  A torn
# last line (what a crash in the middle of write(2) leaves; appended here
# by hand, as a SIGKILL rarely tears one) is cut at the next start, which
# says so in its log, and `audit verify` passes over the whole file.

. "$(dirname "$0")/lib.sh"

: "${AUDIT_BENCH:?AUDIT_BENCH must name the audit_bench binary}"

hk_setup
hk_start || exit 1
expect_exit 0 hk create ck
expect_exit 0 hk pubkey hsmkey-audit --out "$T/audit.pem"
mkdir "$T/recv"

note "---- 6 signers, then kill -9"
"$AUDIT_BENCH" "$T/admin.cred" ck 30 6 "$T/recv" >"$T/bench.out" \
    2>"$T/bench.err" &
bench=$!
HK_PIDS+=("$bench")
# let the signers get going: wait for some received signatures
for ((i = 0; i < 100; i++)); do
	n=$(cat "$T"/recv/received.* 2>/dev/null | wc -l)
	[ "$n" -ge 200 ] && break
	sleep 0.1
done
kill -KILL "$HK_PID"
hk_wait_exit "$HK_PID" 10
check "hsmkeyd died of SIGKILL" test "$HK_RC" = 137
# the signers notice (three failures each) and end
if ! hk_wait_exit "$bench" 60; then
	kill -KILL "$bench"
	hk_wait_exit "$bench" 5
	fail "audit_bench did not end after the service died"
fi
note "audit_bench: $(cat "$T/bench.out")"
received=$(cat "$T"/recv/received.* | wc -l)
check "the signers received signatures before the kill ($received)" \
    test "$received" -ge 100

# what a crash inside write(2) would leave: half a line
printf '{"seq":999999,"time":"2026-01-0' >>"$T/audit.log"

note "---- restart"
hk_start || exit 1
check "the start cut the torn last line and said so" \
    grep -q "audit log $T/audit.log: removed a torn last line" "$HK_LOG"
expect_exit 0 hk sign ck --in "$T/audit.pem"
hk_stop

audit_receipts "$T/audit.log" "$T"/recv/received.*
expect_exit 0 "$HSMKEY" audit verify "$T/audit.log" --pubkey "$T/audit.pem"
check "the log is intact across the crash" grep -q '^intact: ' "$T/out"

hk_finish
