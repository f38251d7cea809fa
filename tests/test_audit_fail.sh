#!/usr/bin/env bash
#
# test_audit_fail.sh: fail closed, recover live (README "Audit log").
#
# 1. The audit path is a symlink to /dev/full: the service starts, answers
#    health (audit not ok, exit 5), refuses a rotate (exit 5, "audit log
#    ... cannot be written ...; nothing was done", and nothing is done),
#    returns no signature for a sign, still answers reads.  The test
#    repoints the symlink to a real file: within seconds, without a
#    restart, health is ok and rotate and sign work; audit verify passes.
# 2. The same file stops taking writes mid-run (a file size limit on the
#    running daemon, prlimit): signs fail; once the limit is lifted they
#    work again, and the chain goes on in the same file: audit verify
#    passes over all of it.

. "$(dirname "$0")/lib.sh"

hk_setup
LINK=$T/audit-link.log
ln -s "$T/first.log" "$LINK"
sed -i -e "s|^path = $T/audit.log\$|path = $LINK|" "$T/hsmkeyd.conf"
check "config uses the symlink" grep -q "^path = $LINK\$" "$T/hsmkeyd.conf"
MSG=$T/msg
printf 'fail closed\n' >"$MSG"

# healthy_within_5s: hk health succeeds within 5 s (50 tries 0.1 s apart).
healthy_within_5s()
{
	local i

	for ((i = 0; i < 50; i++)); do
		if hk health >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

hk_start || exit 1
expect_exit 0 hk create fk
expect_exit 0 hk sign fk --in "$MSG"
oldsig=$HK_OUT
expect_exit 0 hk pubkey hsmkey-audit --out "$T/audit.pem"
hk_stop

note "---- the audit path refuses every write"
ln -sfn /dev/full "$LINK"
hk_start || exit 1
# the writer thread finds out on its first write, which may come just
# after "ready": wait for its line (bounded)
logged_within_5s()
{
	local i

	for ((i = 0; i < 50; i++)); do
		if grep -q "$1" "$HK_LOG"; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}
check "the service logged why the audit log cannot be written" \
    logged_within_5s "audit log $LINK cannot be .*: No space left on device"
expect_exit 5 hk health
check "health reports the audit log" \
    grep -q -E "^audit +audit log $LINK cannot be written: No space left on device" "$T/out"
check "health says degraded" grep -q -E '^status +degraded' "$T/out"
expect_exit 5 hk --json health
check "--json health has audit_ok false" grep -q '"audit_ok":false' "$T/out"

expect_exit 5 hk rotate fk && expect_one_line_error
check "the rotate error names the audit log and says nothing was done" \
    grep -q "audit log $LINK cannot be written: No space left on device; nothing was done" "$T/err"
expect_versions fk "primary 1" "v1 active"
expect_exit 5 hk create fk2
expect_exit 4 hk describe fk2
expect_exit 5 hk sign fk --in "$MSG" && expect_one_line_error
check "a sign that cannot be audited prints no signature" test -z "$HK_OUT"
check "the sign error names the audit log" \
    grep -q "audit log $LINK cannot be written.*no signature was returned" "$T/err"
expect_exit 5 hk client add carol --grant sign:fk
# reads are not audited: they still work
expect_exit 0 hk verify fk --sig "$oldsig" --in "$MSG"
expect_exit 0 hk list
check "the daemon is still running" kill -0 "$HK_PID"

note "---- the path works again: no restart"
ln -sfn "$T/second.log" "$LINK"
check "health is ok again within 5 s, same process" healthy_within_5s
check "the service logged the recovery" \
    grep -q "audit log $LINK: writable again" "$HK_LOG"
expect_exit 0 hk rotate fk
expect_versions fk "primary 2" "v1 verify-only" "v2 active"
expect_exit 0 hk sign fk --in "$MSG"
check "the sign after recovery is by v2" test "$(sig_version "$HK_OUT")" = 2
expect_exit 0 hk create fk2
check "the first line after recovery says the log resumed" \
    grep -q '"op":"log-resume"' "$T/second.log"
hk_stop
expect_exit 0 "$HSMKEY" audit verify "$T/second.log" --pubkey "$T/audit.pem"
check "nothing refused was logged as done" \
    test "$(grep -c '"op":"rotate".*"status":"OK"' "$T/second.log")" = 1

note "---- a write error in the middle of a run"
ln -sfn "$T/third.log" "$LINK"
hk_start || exit 1
expect_exit 0 hk sign fk --in "$MSG"
size=$(stat -c %s "$T/third.log")
# (the limit also cuts the daemon's own stderr log file: its lines may be
# cut while it holds)
prlimit --pid "$HK_PID" --fsize="$size":unlimited
expect_exit 5 hk sign fk --in "$MSG"
check "no signature while the file cannot grow" test -z "$HK_OUT"
check "the error says why (file too large)" grep -q 'File too large' "$T/err"
expect_exit 5 hk health
prlimit --pid "$HK_PID" --fsize=unlimited:unlimited
check "health is ok again once the limit is lifted" healthy_within_5s
expect_exit 0 hk sign fk --in "$MSG"
expect_exit 0 hk rotate fk
hk_stop
expect_exit 0 "$HSMKEY" audit verify "$T/third.log" --pubkey "$T/audit.pem"
check "one chain in one file across the failure" grep -q '^intact: ' "$T/out"
check "the failed sign left no line" \
    test "$(grep -c '"op":"sign"' "$T/third.log")" = 2

hk_finish
