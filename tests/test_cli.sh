#!/usr/bin/env bash
#
# test_cli.sh: the command line contract (DESIGN.md): help, usage errors
# (exit 2), --json output that parses, credentials and endpoint selection
# (--credentials, $HSMKEY_CREDENTIALS, --connect, $HSMKEY_CONNECT, the
# file's connect), health, stats, policy, and client management with
# default-deny grants.

. "$(dirname "$0")/lib.sh"

hk_setup --tcp
MSG=$T/msg
printf 'cli\n' >"$MSG"

note "---- hsmkeyd flags"
expect_exit 0 "$HSMKEYD" --version
check "hsmkeyd --version prints a version" \
    grep -q -E '[0-9]+\.[0-9]+\.[0-9]+' "$T/out" "$T/err"
expect_exit 0 "$HSMKEYD" --help
check "hsmkeyd --help mentions --config" grep -q -e --config "$T/out" "$T/err"
expect_fail "$HSMKEYD" --no-such-flag
expect_fail "$HSMKEYD" --config "$T/no-such.conf" --foreground
# A second bootstrap is refused: an admin exists.
expect_exit 1 "$HSMKEYD" --config "$T/hsmkeyd.conf" --bootstrap-admin \
    admin2 --credentials-out "$T/admin2.cred" </dev/null
check "refused bootstrap wrote no credentials" test ! -e "$T/admin2.cred"
check "admin.cred has mode 0600" test "$(stat -c %a "$T/admin.cred")" = 600
for k in id secret connect; do
	check "admin.cred has $k" test -n "$(cred_value "$T/admin.cred" "$k")"
done
check "admin.cred connects to the first listen URL" \
    test "$(cred_value "$T/admin.cred" connect)" = "$HK_SOCK_URL"
check "admin.cred secret is base64 of 32 bytes" test \
    "$(cred_value "$T/admin.cred" secret | base64 -d 2>/dev/null | wc -c)" -eq 32

hk_start || exit 1

note "---- help and usage errors"
expect_exit 0 "$HSMKEY" --help
cp "$T/out" "$T/help.txt"
cat "$T/err" >>"$T/help.txt"
for cmd in create list describe sign verify pubkey rotate promote policy \
    disable destroy client stats health; do
	check "hsmkey --help lists $cmd" grep -q -w "$cmd" "$T/help.txt"
done
expect_exit 2 "$HSMKEY"
expect_exit 2 hk no-such-command
expect_exit 2 hk --no-such-flag health
expect_exit 2 hk create
expect_exit 2 hk create a b
expect_exit 2 hk create k --alg rsa-1024
expect_exit 2 hk create k --alg
expect_exit 2 hk sign
expect_exit 2 hk sign k --version abc --in "$MSG"
expect_exit 2 hk sign k --version -1 --in "$MSG"
expect_exit 2 hk verify k --in "$MSG"
expect_exit 2 hk pubkey
expect_exit 2 hk rotate
expect_exit 2 hk rotate k --expect x
expect_exit 2 hk promote k
expect_exit 2 hk disable k
expect_exit 2 hk destroy k
expect_exit 2 hk --timeout xyz health
expect_exit 2 hk --timeout -3 health
expect_exit 2 hk client
expect_exit 2 hk client add
expect_exit 2 hk client add svc --grant nonsense
expect_exit 2 hk client add svc --grant fly:*
expect_exit 2 hk client revoke svc

note "---- health, credentials and endpoints"
expect_exit 0 hk health
check "health output is not empty" test -n "$HK_OUT"
expect_exit 0 env HSMKEY_CREDENTIALS="$T/admin.cred" "$HSMKEY" health
expect_fail env -u HSMKEY_CREDENTIALS "$HSMKEY" health
expect_one_line_error
expect_fail "$HSMKEY" --credentials "$T/no-such.cred" health
expect_exit 0 hk --connect "$HK_TCP_URL" health
expect_exit 0 env HSMKEY_CONNECT="$HK_TCP_URL" "$HSMKEY" \
    --credentials "$T/admin.cred" health
# --connect wins over $HSMKEY_CONNECT, which wins over the file.
expect_exit 0 env HSMKEY_CONNECT="ipc://$T/nothing.sock" "$HSMKEY" \
    --credentials "$T/admin.cred" --connect "$HK_SOCK_URL" health
expect_exit 5 env HSMKEY_CONNECT="ipc://$T/nothing.sock" "$HSMKEY" \
    --credentials "$T/admin.cred" --timeout 2 health
expect_exit 5 hk --connect "ipc://$T/nothing.sock" --timeout 2 health &&
    expect_one_line_error

note "---- --json"
expect_exit 0 hk create jk
expect_exit 0 hk sign jk --in "$MSG"
sig=$HK_OUT
for args in "health" "list" "describe jk" "stats" "client list" \
    "pubkey jk" "rotate jk --expect 1" "policy jk --sign-overlap 1h"; do
	# shellcheck disable=SC2086
	expect_exit 0 hk --json $args
	check "--json $args parses" json_ok <"$T/out"
done
expect_exit 0 hk --json sign jk --in "$MSG"
check "--json sign parses" json_ok <"$T/out"
check "--json sign contains the text form" grep -q 'hsmkey:v2:' "$T/out"
expect_exit 0 hk --json verify jk --sig "$sig" --in "$MSG"
check "--json verify parses" json_ok <"$T/out"
printf 'tampered\n' >"$T/tampered"
expect_exit 1 hk --json verify jk --sig "$sig" --in "$T/tampered"
check "--json verify (invalid) parses" json_ok <"$T/out"
expect_exit 4 hk --json describe nokey

note "---- plain output"
expect_exit 0 hk list
check "list shows jk" grep -q -w jk "$T/out"
check "list is a table: a header, then one line a key" \
    grep -q -E '^NAME +ALG +PRIMARY +VERSIONS +NEXT-ROTATION +NOTE$' "$T/out"
check "list: jk's line has its algorithm, primary and versions by state" \
    grep -q -E '^jk +ecdsa-p256 +v2 +1 active, 1 verify-only +off$' "$T/out"
check "list: the audit key is marked as the service's own" \
    grep -q -E '^hsmkey-audit +ecdsa-p256 +v1 +1 active +off +service key' \
    "$T/out"
lines=$(wc -l <"$T/out")
expect_exit 0 hk --json list
check "list: one line a key (+ the header)" \
    test "$lines" -eq $(($(grep -o '"service_key":' "$T/out" | wc -l) + 1))
expect_exit 0 hk describe jk
check "describe shows both versions" grep -q -E '(^|[^0-9])2([^0-9]|$)' "$T/out"
expect_exit 0 hk sign jk --in "$MSG"
check "sign prints exactly one line hsmkey:v2:<base64>" \
    grep -q -x -E 'hsmkey:v2:[A-Za-z0-9+/]+=*' "$T/out"
check "sign prints one line" test "$(wc -l <"$T/out")" -eq 1
expect_exit 0 hk verify jk --sig "$HK_OUT" --in "$MSG"
expect_exit 0 hk stats
expect_exit 0 hk pubkey jk
check "pubkey prints PEM" grep -q -e '-----BEGIN PUBLIC KEY-----' "$T/out"

note "---- policy"
expect_exit 0 hk policy jk --sign-overlap 10m --verify-grace 30d \
    --rotate-every 90d
expect_exit 2 hk policy jk --verify-grace soon
expect_exit 4 hk policy nokey --verify-grace 1d

note "---- clients and grants"
expect_exit 0 hk create svc-a
expect_exit 0 hk create private
expect_exit 0 hk client add svc1 --grant 'sign:svc-*' --grant 'pubkey:*' \
    --out "$T/svc1.cred"
check "client add --out wrote mode 0600" \
    test "$(stat -c %a "$T/svc1.cred" 2>/dev/null)" = 600
check "client add --out wrote a secret" \
    test -n "$(cred_value "$T/svc1.cred" secret 2>/dev/null)"
expect_exit 5 hk client add svc1 --grant 'sign:*'
svc()
{
	"$HSMKEY" --credentials "$T/svc1.cred" "$@"
}
expect_exit 0 svc sign svc-a --in "$MSG"
expect_exit 0 svc pubkey private
expect_exit 3 svc sign private --in "$MSG" && expect_one_line_error
expect_exit 3 svc verify svc-a --sig "$sig" --in "$MSG"
expect_exit 3 svc create svc-b
expect_exit 3 svc rotate svc-a
expect_exit 3 svc client list
expect_exit 0 hk client list
check "client list shows svc1" grep -q -w svc1 "$T/out"
check "client list shows admin" grep -q -w admin "$T/out"
expect_exit 0 hk client rotate svc1 --out "$T/svc1b.cred"
check "client rotate --out wrote mode 0600" \
    test "$(stat -c %a "$T/svc1b.cred" 2>/dev/null)" = 600
check "client rotate gave a new secret" test \
    "$(cred_value "$T/svc1b.cred" secret)" != "$(cred_value "$T/svc1.cred" secret)"
# Both secrets work until the old one is revoked.
expect_exit 0 svc sign svc-a --in "$MSG"
expect_exit 0 "$HSMKEY" --credentials "$T/svc1b.cred" sign svc-a --in "$MSG"
expect_exit 0 hk client revoke svc1 --secret 1
expect_exit 3 svc sign svc-a --in "$MSG"
expect_exit 0 "$HSMKEY" --credentials "$T/svc1b.cred" sign svc-a --in "$MSG"
expect_exit 4 hk client rotate nobody
expect_exit 4 hk client revoke svc1 --secret 9

hk_stop
hk_finish
