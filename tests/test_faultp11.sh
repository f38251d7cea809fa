#!/usr/bin/env bash
#
# test_faultp11.sh: a real hsmkeyd whose [pkcs11] module is the
# fault-injecting wrapper (tests/faultp11, $FAULTP11) around SoftHSM.  With
# no rules everything works (create, sign, openssl verifies); `fail C_Sign
# CKR_DEVICE_ERROR` makes a sign fail with exit 5 and a one-line error, and
# once the line is gone signing works again with no restart; `delay C_Sign
# 50ms` makes a sign take at least 50 ms; every fault is in the module's
# log.  Self-healing (reopened sessions, re-initialised module) is not
# asserted here: that is a later piece of issue 11.

. "$(dirname "$0")/lib.sh"

hk_faultp11
hk_setup
# log_count WORDS: lines of the module's log that hold WORDS.
log_count()
{
	grep -c -F -- "$1" "$FAULT_LOG" 2>/dev/null || true
}

fault_rules '# no rules'
hk_start || exit 1

MSG=$T/msg
printf 'signed through a fault-injecting module\n' >"$MSG"

expect_exit 0 hk create fk --alg ecdsa-p256
expect_exit 0 hk pubkey fk --out "$T/fk.pem"
expect_exit 0 hk sign fk --in "$MSG"
sig_to_file "$HK_OUT" "$T/sig1"
check "openssl verifies a signature made through the wrapper" \
    openssl dgst -sha256 -verify "$T/fk.pem" -signature "$T/sig1" "$MSG"
check "no fault logged without rules" [ "$(log_count fail)" -eq 0 ]

# --- a device error on every C_Sign of a key signature
fault_rules 'fail C_Sign CKR_DEVICE_ERROR'
expect_exit 5 hk sign fk --in "$MSG"
expect_one_line_error
expect_exit 5 hk sign fk --in "$MSG"
n=$(log_count 'fail C_Sign CKR_DEVICE_ERROR')
check "the module logged the injected C_Sign errors ($n)" [ "$n" -ge 2 ]
check "hsmkeyd is still running" kill -0 "$HK_PID"

# --- the rule removed: signing works again, same daemon
fault_rules '# healed'
expect_exit 0 hk sign fk --in "$MSG"
sig_to_file "$HK_OUT" "$T/sig2"
check "openssl verifies the signature after the fault" \
    openssl dgst -sha256 -verify "$T/fk.pem" -signature "$T/sig2" "$MSG"
expect_exit 0 hk verify fk --sig "$HK_OUT" --in "$MSG"

# --- the next two C_Sign fail, then it passes by itself
fault_rules 'fail C_Sign CKR_DEVICE_ERROR count 2'
: >"$FAULT_LOG"
expect_exit 5 hk sign fk --in "$MSG"
expect_exit 5 hk sign fk --in "$MSG"
expect_exit 0 hk sign fk --in "$MSG"
check "count 2: exactly 2 faults logged" \
    [ "$(log_count 'fail C_Sign')" -eq 2 ]

# --- a slow HSM: 50 ms per C_Sign
fault_rules 'delay C_Sign 50ms'
: >"$FAULT_LOG"
t0=${EPOCHREALTIME/./}
expect_exit 0 hk sign fk --in "$MSG"
us=$((${EPOCHREALTIME/./} - t0))
check "a sign with delay C_Sign 50ms took $((us / 1000)) ms (>= 50)" \
    [ "$us" -ge 50000 ]
check "the delay is in the module's log" [ "$(log_count 'delay C_Sign')" -ge 1 ]
sig_to_file "$HK_OUT" "$T/sig3"
check "openssl verifies the slow signature" \
    openssl dgst -sha256 -verify "$T/fk.pem" -signature "$T/sig3" "$MSG"

fault_rules ''
expect_exit 0 hk sign fk --in "$MSG"
hk_stop
hk_finish
