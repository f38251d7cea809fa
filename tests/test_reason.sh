#!/usr/bin/env bash
#
# test_reason.sh: `--reason TEXT` (issue 13).  Every command that changes
# something (create, rotate, promote, policy, disable, destroy, client
# add/rotate/revoke) writes its reason into the "reason" member of its
# audit line, and `hsmkey audit verify` passes the log; a reason with a
# newline, a quote, bad UTF-8 or over 200 bytes is refused by the service
# (exit 2, one line, "invalid reason") and nothing is changed; a reason on
# a command that changes nothing is a usage error (exit 2) before any
# request; lines without a reason are unchanged.

. "$(dirname "$0")/lib.sh"

hk_setup
hk_start || exit 1

LOG=$T/audit.log
MSG=$T/msg
printf 'why?\n' >"$MSG"

# changed REASON OP KEY: the audit log has an OK line of OP on KEY whose
# reason is REASON (fixed string), and the line's reason is where the
# format puts it: after "sigs", before "prev".
changed()
{
	local want="\"op\":\"$2\",\"key\":\"$3\""
	check "audit line of $2 $3 carries its reason" \
	    grep -q -F -e "$want" "$LOG"
	grep -F -e "$want" "$LOG" | grep -F '"status":"OK"' |
	    grep -q -F -e "\"reason\":\"$1\",\"prev\":" ||
	    fail "no OK $2 $3 line with reason '$1': $(grep -F -e "$want" "$LOG" | tail -n 1)"
}

R1='INC-4711: key may have leaked'
R2='CHG-12 résumé €'
expect_exit 0 hk --reason "$R1" create r1
expect_exit 0 hk create r2 --reason "$R2"
expect_exit 0 hk --reason "$R1" rotate r1 --stage
expect_exit 0 hk --reason "$R1" promote r1 --version 2
expect_exit 0 hk --reason "$R1" policy r1 --verify-grace 1h
expect_exit 0 hk --reason "$R1" disable r1 --version 1
expect_exit 0 hk --reason "$R1" destroy r1 --version 1
expect_exit 0 hk --reason "$R2" client add svc --grant 'sign:r*' \
    --out "$T/svc.cred"
expect_exit 0 hk --reason "$R2" client rotate svc --out "$T/svc2.cred"
expect_exit 0 hk --reason "$R2" client revoke svc --secret 1
# the audit writer has the lines once the replies are in
changed "$R1" create r1
changed "$R2" create r2
changed "$R1" rotate r1
changed "$R1" promote r1
changed "$R1" policy r1
changed "$R1" disable r1
changed "$R1" destroy r1
changed "$R2" client-add svc
changed "$R2" client-rotate svc
changed "$R2" client-revoke svc
check "the service log says why" \
    grep -q -F "rotate r1 by client admin: reason: $R1" "$HK_LOG"

# Refused reasons: exit 2, one line, and nothing changed.
lines_before=$(wc -l <"$LOG")
long=$(printf 'x%.0s' $(seq 201))
nl=$'two\nlines'
for bad in "$nl" 'say "no"' 'back\slash' "$(printf 'bad \xc3(')" \
    "$(printf 'tab\there')" "$long"; do
	expect_exit 2 hk --reason "$bad" create r3
	expect_one_line_error
	check "says invalid reason" grep -q 'invalid reason' "$T/err"
	expect_exit 2 hk --reason "$bad" rotate r2
done
expect_exit 4 hk describe r3
expect_exit 0 hk --json describe r2
check "r2 still has one version" \
    test "$(printf '%s' "$HK_OUT" | grep -o '"version":[0-9]*' | sort -u | wc -l)" -eq 1
check "no reason refused was written" \
    bash -c "! grep -q -e 'two' -e 'no\\\\\"' -e 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' '$LOG'"
# 200 bytes are enough
expect_exit 0 hk --reason "${long:1}" create r4
changed "${long:1}" create r4

# On commands that change nothing: a usage error, no request made.
for cmd in "list" "describe r2" "sign r2 --in $MSG" "stats" "client list" \
    "health" "pubkey r2"; do
	# shellcheck disable=SC2086
	expect_exit 2 hk --reason "$R1" $cmd
	expect_one_line_error
done
check "a refused --reason names the command" \
    grep -q "not 'sign'" <(hk --reason x sign r2 --in "$MSG" 2>&1)

# Lines without a reason are as before; the log verifies as a whole.
expect_exit 0 hk sign r2 --in "$MSG"
expect_exit 0 hk create r5
check "a change without --reason has no reason member" \
    bash -c "grep -F '\"op\":\"create\",\"key\":\"r5\"' '$LOG' | grep -q -v reason"
check "a sign line has no reason member" \
    bash -c "grep -F '\"op\":\"sign\",\"key\":\"r2\"' '$LOG' | grep -q -v reason"
expect_exit 0 hk pubkey hsmkey-audit --out "$T/audit.pem"
expect_exit 0 hk audit verify "$LOG" --pubkey "$T/audit.pem" \
    --allow-unsigned-tail
note "audit lines: before the refusals $lines_before, now $(wc -l <"$LOG")"

# A changed reason breaks the chain: verify notices.
sed -e 's/INC-4711/INC-4712/' "$LOG" >"$T/forged.log"
expect_exit 1 hk audit verify "$T/forged.log" --pubkey "$T/audit.pem" \
    --allow-unsigned-tail

hk_teardown
hk_finish
