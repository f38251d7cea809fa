#!/usr/bin/env bash
#
# test_credentials.sh: credentials files without secret_no (issue 13,
# DESIGN.md): a [client] file with only id, secret and connect works for
# whichever of the client's secrets it holds.  After `client rotate`:
#   - a file with id + the new secret + connect signs, and the audit line
#     and stats name secret 2, the one that matched;
#   - an old file with the new secret pasted in (its secret_no line
#     removed, or left naming the old number) signs;
#   - a wrong secret is refused with the one "not authenticated" message;
#   - a revoked secret in such a file is refused, the live one still signs;
#   - a file that names secret_no works as before;
#   - one handle names the secret after the first reply: a signer loop's
#     requests are not all tried against every secret (service debug log),
#     and it keeps signing with no failure while its file is replaced by
#     the new secret (no secret_no) and the old secret is revoked.

. "$(dirname "$0")/lib.sh"

: "${SIGNER_LOOP:?SIGNER_LOOP must name the signer_loop program}"

HK_LOG_LEVEL=debug
hk_setup
hk_start || exit 1

MSG=$T/msg
printf 'which secret?\n' >"$MSG"
LOG=$T/audit.log

# unnamed OUT ID SECRET: a credentials file with id, secret and connect.
unnamed()
{
	printf '[client]\nid = %s\nsecret = %s\nconnect = %s\n' "$2" "$3" \
	    "$HK_SOCK_URL" >"$1"
	chmod 600 "$1"
}

# last_sign_secret KEY: the "secret" of the last sign line of KEY.
last_sign_secret()
{
	grep -F "\"op\":\"sign\",\"key\":\"$1\"" "$LOG" | tail -n 1 |
	    sed -n -e 's/.*"secret":\([0-9]*\),.*/\1/p'
}

expect_exit 0 hk create c1
expect_exit 0 hk client add svc --grant 'sign:c*' --out "$T/svc1.cred"
expect_exit 0 hk client rotate svc --out "$T/svc2.cred"
S1=$(cred_value "$T/svc1.cred" secret)
S2=$(cred_value "$T/svc2.cred" secret)
check "client rotate gives secret 2" \
    test "$(cred_value "$T/svc2.cred" secret_no)" = 2

# id + new secret + connect
unnamed "$T/new.cred" svc "$S2"
expect_exit 0 "$HSMKEY" --credentials "$T/new.cred" sign c1 --in "$MSG"
check "the audit line names secret 2, the one that matched" \
    test "$(last_sign_secret c1)" = 2
expect_exit 0 hk verify c1 --sig "$HK_OUT" --in "$MSG"
expect_exit 0 hk --json stats
check "stats count the request against secret 2" \
    "$HK_PYTHON" -c '
import json, sys
s = [x for x in json.load(open(sys.argv[1]))["secrets"]
     if x["client"] == "svc" and x["secret"] == 2]
sys.exit(0 if s and s[0]["requests"] >= 1 else 1)' "$T/out"

# the old file with the new secret pasted in, its secret_no line removed
sed -e "s|^secret = .*|secret = $S2|" -e '/^secret_no/d' "$T/svc1.cred" \
    >"$T/pasted.cred"
chmod 600 "$T/pasted.cred"
check "the pasted file names no secret_no" \
    test -z "$(cred_value "$T/pasted.cred" secret_no)"
expect_exit 0 "$HSMKEY" --credentials "$T/pasted.cred" sign c1 --in "$MSG"
# ... and with its secret_no line left as it was (it names secret 1)
sed -e "s|^secret = .*|secret = $S2|" "$T/svc1.cred" >"$T/pasted1.cred"
chmod 600 "$T/pasted1.cred"
check "the file pasted into still names secret 1" \
    test "$(cred_value "$T/pasted1.cred" secret_no)" = 1
expect_exit 0 "$HSMKEY" --credentials "$T/pasted1.cred" sign c1 --in "$MSG"
# the first secret without secret_no, too
unnamed "$T/first.cred" svc "$S1"
expect_exit 0 "$HSMKEY" --credentials "$T/first.cred" sign c1 --in "$MSG"
check "the audit line names secret 1" test "$(last_sign_secret c1)" = 1
# a file that names its secret works as before
expect_exit 0 "$HSMKEY" --credentials "$T/svc2.cred" sign c1 --in "$MSG"
expect_exit 0 "$HSMKEY" --credentials "$T/svc1.cred" sign c1 --in "$MSG"

# a wrong secret: the one message, one line, exit 3
unnamed "$T/wrong.cred" svc "$(openssl rand -base64 32)"
expect_exit 3 "$HSMKEY" --credentials "$T/wrong.cred" sign c1 --in "$MSG"
expect_one_line_error
check "the refusal says only 'not authenticated'" \
    grep -q "request not authenticated (unknown client or secret" "$T/err"
check "the service log says no live secret matched" \
    grep -q "bad MAC from client 'svc' (no secret named), live 2" "$HK_LOG"
unnamed "$T/nobody.cred" nobody "$S2"
expect_exit 3 "$HSMKEY" --credentials "$T/nobody.cred" sign c1 --in "$MSG"
check "an unknown client gets the same message" \
    grep -q "request not authenticated (unknown client or secret" "$T/err"

# one handle, many requests: the secret is named after the first reply
tried_before=$(grep -c "client 'svc' named no secret" "$HK_LOG")
"$SIGNER_LOOP" "$T/first.cred" c1 2 "$T/stop1" 2 >"$T/loop1.out" \
    2>"$T/loop1.err"
loop_signs=$(sed -n -e 's/^signs \([0-9]*\) .*/\1/p' "$T/loop1.out")
tried=$(($(grep -c "client 'svc' named no secret" "$HK_LOG") - tried_before))
check "the signer loop signed ($loop_signs)" test "${loop_signs:-0}" -ge 20
check "only the first request of each handle named no secret ($tried)" \
    test "$tried" -le 2

# rotate + revoke under a running signer whose file names no secret_no
expect_exit 0 hk client rotate svc --out "$T/svc3.cred"
S3=$(cred_value "$T/svc3.cred" secret)
unnamed "$T/run.cred" svc "$S2"
"$SIGNER_LOOP" "$T/run.cred" c1 2 "$T/stop2" 60 >"$T/loop2.out" \
    2>"$T/loop2.err" &
loop_pid=$!
HK_PIDS+=("$loop_pid")
sleep 1
unnamed "$T/.run.tmp" svc "$S3"
mv "$T/.run.tmp" "$T/run.cred"
sleep 2
expect_exit 0 hk client revoke svc --secret 2
sleep 1
signer_loop_end "$loop_pid" "$T/stop2" "$T/loop2.out" "$T/loop2.err" \
    "across a new unnamed secret + revoke"
check "its last signs were made with secret 3" \
    test "$(last_sign_secret c1)" = 3

# the revoked secret, in a file without secret_no: refused
unnamed "$T/revoked.cred" svc "$S2"
expect_exit 3 "$HSMKEY" --credentials "$T/revoked.cred" sign c1 --in "$MSG"
check "the revoked secret gets the one message" \
    grep -q "request not authenticated (unknown client or secret" "$T/err"
expect_exit 0 "$HSMKEY" --credentials "$T/first.cred" sign c1 --in "$MSG"
unnamed "$T/third.cred" svc "$S3"
expect_exit 0 "$HSMKEY" --credentials "$T/third.cred" sign c1 --in "$MSG"
expect_exit 0 hk pubkey hsmkey-audit --out "$T/audit.pem"
expect_exit 0 hk audit verify "$LOG" --pubkey "$T/audit.pem" \
    --allow-unsigned-tail

hk_teardown
hk_finish
