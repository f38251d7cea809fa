#!/usr/bin/env bash
#
# test_heal.sh: hsmkeyd heals itself (issue 11).  Every fault is provoked
# from outside with the fault-injecting module (tests/faultp11) around the
# real SoftHSM, against a running shipped hsmkeyd; the README's "Failure
# behaviour" table has one row per part here:
#   - a session the token forgot: reopened, the signature tried again; the
#     client sees nothing;
#   - errors of each kind the issue names (device error, session handle
#     invalid, token not present, user not logged in, device memory,
#     function failed) on C_Sign: the client gets UNAVAILABLE or a good
#     signature, never a bad one;
#   - the HSM restarts (every session and the login gone): the request in
#     flight gets UNAVAILABLE, the service logs in again by itself;
#   - the HSM goes away (every call fails) and comes back: requests fail
#     fast with UNAVAILABLE, health and metrics say down and since when,
#     verify keeps working, the module is finalised and initialised again
#     and requests succeed with no restart; after it, every key signs with
#     the version the reply names (handles were remade);
#   - a wrong PIN at the new login: never tried a second time;
#   - an idle connection the HSM drops after 2 s: the keepalive probe keeps
#     it, the first request after a quiet spell works (and without the
#     keepalive it would not: the control);
#   - random faults under a stream of signs and verifies: no wrong answer.
# Each part prints what clients saw ("saw:" lines; the closing note of
# issue 11 quotes them).

. "$(dirname "$0")/lib.sh"

hk_faultp11
hk_setup
printf '\n[pkcs11]\nkeepalive = 1s\nreconnect_max = 1s\n' >>"$T/hsmkeyd.conf"
sed -i -e "s/^\[metrics\]$/[metrics]\ninterval = 1s/" "$T/hsmkeyd.conf"
MSG=$T/msg
printf 'heal thyself\n' >"$MSG"
ALL_OK=0
fault_rules '# no rules'
hk_start || exit 1

expect_exit 0 hk create ka
expect_exit 0 hk rotate ka --expect 1
expect_exit 0 hk create kb
expect_exit 0 hk pubkey ka --version 2 --out "$T/ka.v2.pem"
expect_exit 0 hk pubkey kb --version 1 --out "$T/kb.v1.pem"

# ms_since T0: milliseconds since $EPOCHREALTIME was T0.
ms_since()
{
	echo $(((${EPOCHREALTIME/./} - ${1/./}) / 1000))
}

# signs_verify KEY PEM VERSION: hk sign KEY works, names VERSION, and
# openssl verifies the signature with PEM.
signs_verify()
{
	local key=$1 pem=$2 want=$3
	expect_exit 0 hk sign "$key" --in "$MSG" || return 1
	ALL_OK=$((ALL_OK + 1))
	check "$key: signed by v$want" [ "$(sig_version "$HK_OUT")" = "$want" ]
	sig_to_file "$HK_OUT" "$T/sig.der"
	check "$key v$want: openssl verifies the signature" \
	    openssl dgst -sha256 -verify "$pem" -signature "$T/sig.der" "$MSG"
}

# sign_loop KEY PEM N V: N signs of KEY; counts the outcomes in SAW_OK,
# SAW_UNAVAIL and SAW_OTHER, and fails for any signature that is not by
# version V or that openssl does not verify with PEM.
sign_loop()
{
	local key=$1 pem=$2 n=$3 i v
	SAW_OK=0 SAW_UNAVAIL=0 SAW_OTHER=0
	for ((i = 0; i < n; i++)); do
		hk_run hk sign "$key" --in "$MSG"
		case $HK_RC in
		0)
			sig_to_file "$HK_OUT" "$T/sig.der"
			v=$(sig_version "$HK_OUT")
			if openssl dgst -sha256 -verify "$pem" -signature \
			    "$T/sig.der" "$MSG" >/dev/null 2>&1 &&
			    [ "$v" = "$4" ]; then
				SAW_OK=$((SAW_OK + 1))
				ALL_OK=$((ALL_OK + 1))
			else
				fail "$key: a signature by v$v that does not verify"
			fi ;;
		5)
			if grep -q 'unavailable\|token failed\|reconnect' "$T/err"; then
				SAW_UNAVAIL=$((SAW_UNAVAIL + 1))
			else
				SAW_OTHER=$((SAW_OTHER + 1))
				note "unexpected error: $HK_ERR"
			fi ;;
		*)
			SAW_OTHER=$((SAW_OTHER + 1))
			note "unexpected exit $HK_RC: $HK_ERR" ;;
		esac
	done
}

# sign_again KEY TRIES PAUSE: signs KEY until it works (HK_RC 0) or TRIES
# attempts PAUSE seconds apart have failed.
sign_again()
{
	local i
	for ((i = 0; i < $2; i++)); do
		hk_run hk sign "$1" --in "$MSG"
		[ "$HK_RC" -eq 0 ] && return 0
		sleep "$3"
	done
	return 1
}

note "---- a session the token forgot"
fault_rules 'fail C_SignInit CKR_SESSION_HANDLE_INVALID count 1'
signs_verify ka "$T/ka.v2.pem" 2
check "the lost session was injected" \
    grep -q 'fail C_SignInit CKR_SESSION_HANDLE_INVALID' "$FAULT_LOG"
check "the service opened it again" grep -q 'lost session was opened again' "$HK_LOG"
echo "saw: session handle invalid once: the client saw nothing (sign ok)"

note "---- each kind of C_Sign error, 3 in a row"
for rv in CKR_DEVICE_ERROR CKR_SESSION_HANDLE_INVALID CKR_TOKEN_NOT_PRESENT \
    CKR_USER_NOT_LOGGED_IN CKR_DEVICE_MEMORY CKR_FUNCTION_FAILED; do
	fault_rules "fail C_Sign $rv count 3"
	sign_loop ka "$T/ka.v2.pem" 8 2
	injected=$(grep -c "fail C_Sign $rv" "$FAULT_LOG")
	echo "saw: $rv x$injected: $SAW_OK ok, $SAW_UNAVAIL unavailable," \
	    "$SAW_OTHER other"
	check "$rv: no other outcome than a good signature or UNAVAILABLE" \
	    [ "$SAW_OTHER" -eq 0 ]
	check "$rv: the last signs work again" [ "$SAW_OK" -ge 4 ]
	check "$rv: a client saw at most one failure per injected error" \
	    [ "$SAW_UNAVAIL" -le 3 ]
done
fault_rules '# none'
# the healer has probed and repaired; nothing is down
sleep 0.5
expect_exit 0 hk health

note "---- the HSM restarts: every session and the login are gone"
fault_rules 'drop C_SignInit count 1'
t0=$EPOCHREALTIME
sign_loop ka "$T/ka.v2.pem" 1 2
first=$SAW_UNAVAIL
sign_again ka 50 0.1
echo "saw: HSM restart: the request in flight: $first unavailable;" \
    "signing again after $(ms_since "$t0") ms"
check "after the restart of the HSM a sign works again" [ "$HK_RC" -eq 0 ]
check "the service logged in again" grep -q 'the login was lost' "$HK_LOG"
signs_verify ka "$T/ka.v2.pem" 2
signs_verify kb "$T/kb.v1.pem" 1

note "---- the HSM goes away and comes back"
hk sign ka --in "$MSG" >"$T/before.sig" || fail "sign before the outage"
fault_rules 'fail * CKR_DEVICE_ERROR'
# the first failure sends the healer in; the token is down within a second
for ((i = 0; i < 20; i++)); do
	hk_run hk sign ka --in "$MSG"
	hk_run hk health
	[ "$HK_RC" -eq 5 ] && grep -q 'down since' "$T/out" && break
	sleep 0.1
done
check "health exits 5 while the token is away" [ "$HK_RC" -eq 5 ]
check "health says since when" grep -q 'down since' "$T/out"
worst=0
for ((i = 0; i < 10; i++)); do
	t1=$EPOCHREALTIME
	hk_run hk sign ka --in "$MSG"
	ms=$(ms_since "$t1")
	[ "$ms" -gt "$worst" ] && worst=$ms
	[ "$HK_RC" -eq 5 ] || fail "sign while the token is away: exit $HK_RC"
done
echo "saw: token away: 10 signs, all UNAVAILABLE, slowest answer $worst ms"
check "a sign fails fast while the token is away (slowest $worst ms)" \
    [ "$worst" -lt 1500 ]
expect_one_line_error
check "the error says the token is unavailable" grep -q 'unavailable' "$T/err"
expect_exit 0 hk verify ka --in "$MSG" --sig "@$T/before.sig"
echo "saw: token away: verify still works (in memory, OpenSSL)"
check "metrics: token down" \
    sh -c "sleep 1.2; grep -q '^hsmkey_token_up 0' '$T/hsmkey.prom'"
check "metrics: since when" \
    grep -q '^hsmkey_token_down_since_seconds [1-9]' "$T/hsmkey.prom"
sleep 2
t0=$EPOCHREALTIME
fault_rules '# the HSM is back'
sign_again ka 100 0.05
echo "saw: token back: signing again after $(ms_since "$t0") ms"
check "once the token is back, signs work with no restart" [ "$HK_RC" -eq 0 ]
check "the module was finalised and initialised again" \
    grep -q 'finalising the PKCS#11 module' "$HK_LOG"
check "the service says how long it was down" grep -q 'is back after' "$HK_LOG"
expect_exit 0 hk health
check "health counts the repairs" grep -q 'reconnected' "$T/out"
# the new module gave new handles: each key signs with its own version
signs_verify ka "$T/ka.v2.pem" 2
signs_verify kb "$T/kb.v1.pem" 1
expect_exit 0 hk rotate kb --expect 1
expect_exit 0 hk pubkey kb --version 2 --out "$T/kb.v2.pem"
signs_verify kb "$T/kb.v2.pem" 2
expect_exit 0 hk client add svc --grant 'sign:ka' --out "$T/svc.cred"
expect_exit 0 "$HSMKEY" --credentials "$T/svc.cred" sign ka --in "$MSG"

note "---- random faults under signs and verifies: no wrong answer"
fault_rules 'seed 7' 'fail C_Sign CKR_DEVICE_ERROR prob 0.2' \
    'fail C_SignInit CKR_FUNCTION_FAILED prob 0.1' \
    'fail C_GetAttributeValue CKR_DEVICE_MEMORY prob 0.2'
sign_loop kb "$T/kb.v2.pem" 40 2
injected=$(grep -c '^fail' "$FAULT_LOG")
echo "saw: random faults x$injected in 40 signs: $SAW_OK ok," \
    "$SAW_UNAVAIL unavailable, $SAW_OTHER other"
check "random faults: only good signatures or UNAVAILABLE" [ "$SAW_OTHER" -eq 0 ]
check "random faults: most signs still work" [ "$SAW_OK" -ge 20 ]
printf 'tampered\n' >"$T/tampered"
hk sign kb --in "$MSG" >"$T/good.sig" 2>/dev/null ||
    hk sign kb --in "$MSG" >"$T/good.sig" 2>/dev/null ||
    hk sign kb --in "$MSG" >"$T/good.sig"
invalid=0
for ((i = 0; i < 10; i++)); do
	hk_run hk verify kb --in "$T/tampered" --sig "@$T/good.sig"
	[ "$HK_RC" -eq 1 ] && invalid=$((invalid + 1))
done
check "random faults: a bad signature is invalid (exit 1) every time" \
    [ "$invalid" -eq 10 ]
expect_exit 0 hk verify kb --in "$MSG" --sig "@$T/good.sig"
fault_rules '# none'

note "---- an idle connection the HSM drops after 2 s"
fault_rules 'idle 2s'
sleep 4.5
expect_exit 0 hk sign ka --in "$MSG"
check "no session was dropped (the keepalive kept it)" \
    sh -c "! grep -q '^idle' '$FAULT_LOG'"
echo "saw: idle 4.5 s with keepalive 1 s: the first sign works"
hk_stop
# the control: without the keepalive the same quiet spell breaks it
sed -i -e 's/^keepalive = 1s/keepalive = 0/' "$T/hsmkeyd.conf"
fault_rules '# none'
hk_start || exit 1
fault_rules 'idle 2s'
expect_exit 0 hk sign ka --in "$MSG"
sleep 3
hk_run hk sign ka --in "$MSG"
check "control: without the keepalive the HSM dropped the sessions" \
    grep -q '^idle' "$FAULT_LOG"
echo "saw: idle without keepalive: first sign after the drop exit $HK_RC"
sign_again ka 30 0.1
check "control: and the service healed itself" [ "$HK_RC" -eq 0 ]
fault_rules '# none'

note "---- the audit log lost nothing"
expect_exit 0 hk audit verify "$T/audit.log"
audited=$(grep '"op":"sign"' "$T/audit.log" | grep -c '"status":"OK"')
echo "saw: $ALL_OK signatures counted by the test, $audited in the audit log"
check "every signature made through the faults is in the audit log" \
    test "$audited" -ge "$ALL_OK" -a "$ALL_OK" -ge 40

note "---- a wrong PIN at the new login is never tried twice"
fault_rules 'drop C_SignInit count 1' 'fail C_Login CKR_PIN_INCORRECT'
hk_run hk sign ka --in "$MSG"
sleep 3
hk_run hk health
check "health: the token refused the PIN" grep -q 'refused the PIN' "$T/out"
logins=$(grep -c 'fail C_Login' "$FAULT_LOG")
echo "saw: wrong PIN: C_Login tried $logins time(s) in 3 s"
check "C_Login was tried exactly once" [ "$logins" -eq 1 ]
expect_exit 5 hk sign ka --in "$MSG"
expect_one_line_error
hk_stop

note "---- the token is away when the service starts"
fault_rules 'fail * CKR_TOKEN_NOT_PRESENT'
hk_run timeout 20 "$HSMKEYD" --config "$T/hsmkeyd.conf" --foreground
check "hsmkeyd refuses to start without its token (exit $HK_RC)" \
    test "$HK_RC" -ne 0 -a "$HK_RC" -ne 124
check "... and says why" grep -q 'cannot open the token' "$T/err"
fault_rules '# back'
hk_start || exit 1
expect_exit 0 hk sign ka --in "$MSG"
hk_stop
hk_finish
