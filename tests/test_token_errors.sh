#!/usr/bin/env bash
#
# test_token_errors.sh: a token error in the middle of a change leaves
# nothing half done (issue 11), provoked from outside with the
# fault-injecting module (tests/faultp11) around SoftHSM:
#   - client revoke whose record write fails: the secret is refused at
#     once, the error says the revocation is not recorded, a retry finishes
#     it, and after a restart the secret stays refused;
#   - rotate whose key generation fails: no phantom version is left, the
#     next `rotate --expect <newest>` works and the versions do not skip a
#     number, also after a restart;
#   - destroy (no delay) killed after the record says destroyed but before
#     the key objects are deleted: the next start removes them;
#   - destroy whose object deletion fails: the ticker tries again until
#     the token deletes them.

. "$(dirname "$0")/lib.sh"

hk_faultp11
hk_setup
printf '\n[keys]\ndestroy_delay = 0\n' >>"$T/hsmkeyd.conf"
MSG=$T/msg
printf 'nothing half done\n' >"$MSG"
fault_rules '# no rules'
hk_start || exit 1

note "---- revoke whose record write fails"
expect_exit 0 hk create rk
expect_exit 0 hk client add svc --grant 'sign:rk' --out "$T/svc.cred"
expect_exit 0 "$HSMKEY" --credentials "$T/svc.cred" sign rk --in "$MSG"
fault_rules 'fail C_CreateObject CKR_DEVICE_ERROR'
expect_exit 5 hk client revoke svc --secret 1
expect_one_line_error
check "the error says the revocation is not recorded" \
    grep -q 'did not record its revocation' "$T/err"
expect_exit 3 "$HSMKEY" --credentials "$T/svc.cred" sign rk --in "$MSG"
check "the failed write was injected" grep -q 'fail C_CreateObject' "$FAULT_LOG"
fault_rules '# healed'
expect_exit 0 hk client revoke svc --secret 1
expect_exit 3 "$HSMKEY" --credentials "$T/svc.cred" sign rk --in "$MSG"

note "---- rotate whose key generation fails"
expect_exit 0 hk create gk
fault_rules 'fail C_GenerateKeyPair CKR_DEVICE_ERROR count 1'
expect_exit 5 hk rotate gk --expect 1
expect_one_line_error
fault_rules '# healed'
expect_exit 0 hk rotate gk --expect 1
key_versions gk >"$T/gk.v"
check "gk: primary v2" grep -q '^primary 2$' "$T/gk.v"
check "gk: versions v1 and v2 only, no phantom" \
    [ "$(grep '^v' "$T/gk.v" | cut -d' ' -f1 | tr '\n' ' ')" = "v1 v2 " ]
expect_exit 0 hk sign gk --in "$MSG"
check "gk signs with v2" [ "${HK_OUT#hsmkey:v2:}" != "$HK_OUT" ]

note "---- destroy killed between the record and the objects"
expect_exit 0 hk create dk
expect_exit 0 hk rotate dk --expect 1
expect_exit 0 hk disable dk --version 1
check "dk v1: its private key is in the token" \
    [ "$(token_label_count hsmkey:dk:v1)" -ge 1 ]
# the record is replaced first (its old object destroyed: call 1), then
# the version's key objects (call 2): die there
fault_rules 'kill C_DestroyObject after 1'
pid=$HK_PID
expect_fail hk --timeout 5 destroy dk --version 1
if hk_wait_exit "$pid" 15 && [ "$HK_RC" -eq 137 ]; then
	ok "hsmkeyd died of SIGKILL in C_DestroyObject"
else
	fail "hsmkeyd did not die in C_DestroyObject (status ${HK_RC:-?})"
fi
hk_forget_pid "$pid"
fault_rules '# no rules'
hk_start || exit 1
check "the start logged the leftover objects it removed" \
    grep -q 'key dk v1: destroyed, but its key objects' "$HK_LOG"
check "dk v1: no key object left in the token" \
    [ "$(token_label_count hsmkey:dk:v1)" -eq 0 ]
key_versions dk >"$T/dk.v"
check "dk v1 destroyed, v2 primary" \
    grep -q '^v1 destroyed$' "$T/dk.v"
expect_exit 0 hk sign dk --in "$MSG"

note "---- destroy whose object deletion fails: the tick finishes it"
expect_exit 0 hk create ek
expect_exit 0 hk rotate ek --expect 1
expect_exit 0 hk disable ek --version 1
# call 1 replaces the record; the version's key objects then fail three
# times: once in the destroy, twice more in the tick
fault_rules 'fail C_DestroyObject CKR_DEVICE_ERROR after 1 count 3'
expect_exit 0 hk destroy ek --version 1
for ((i = 0; i < 50; i++)); do
	[ "$(token_label_count hsmkey:ek:v1)" -eq 0 ] && break
	sleep 0.2
done
check "ek v1: the tick deleted its key objects after the failures" \
    [ "$(token_label_count hsmkey:ek:v1)" -eq 0 ]
check "the failures were injected" \
    [ "$(grep -c 'fail C_DestroyObject' "$FAULT_LOG")" -eq 3 ]
check "the service said it would try again" \
    grep -q 'ek v1: the token did not delete its key objects' "$HK_LOG"
check "... and that it did" grep -q 'ek v1: its key objects are deleted now' "$HK_LOG"
fault_rules '# no rules'

note "---- after a restart"
hk_stop
hk_start || exit 1
expect_exit 3 "$HSMKEY" --credentials "$T/svc.cred" sign rk --in "$MSG"
key_versions gk >"$T/gk2.v"
check "gk still v1 and v2 only after the restart" \
    [ "$(grep '^v' "$T/gk2.v" | cut -d' ' -f1 | tr '\n' ' ')" = "v1 v2 " ]
expect_exit 0 hk audit verify "$T/audit.log"
hk_stop
hk_finish
