#!/usr/bin/env bash
#
# test_rotate.sh: versions and their states.  rotate makes v2 the signer
# while v1 signatures keep verifying; a resent `rotate --expect 1` rotates
# nothing; --stage leaves the new version pending until promote; disable
# stops a version signing and verifying; destroy schedules destruction.

. "$(dirname "$0")/lib.sh"

hk_setup
hk_start || exit 1

MSG=$T/msg
printf 'rotate me\n' >"$MSG"
printf 'rotate me!\n' >"$T/tampered"

# verify_openssl PEM SIGTEXT: ECDSA P-256 signature over $MSG, offline.
verify_openssl()
{
	sig_to_file "$2" "$T/o.sig"
	openssl dgst -sha256 -verify "$1" -signature "$T/o.sig" "$MSG" \
	    >/dev/null 2>&1
}

expect_exit 0 hk create rk
expect_exit 0 hk pubkey rk --version 1 --out "$T/v1.pem"
expect_exit 0 hk sign rk --in "$MSG"
sig1=$HK_OUT
check "first signature is by v1" test "$(sig_version "$sig1")" = 1

# Rotate, compare-and-set on v1.
expect_exit 0 hk rotate rk --expect 1
expect_exit 0 hk sign rk --in "$MSG"
sig2=$HK_OUT
check "after rotate, signatures are by v2" test "$(sig_version "$sig2")" = 2
expect_exit 0 hk verify rk --sig "$sig1" --in "$MSG"
expect_exit 0 hk verify rk --sig "$sig2" --in "$MSG"
expect_exit 1 hk verify rk --sig "$sig1" --in "$T/tampered"
check "v1 signature verifies offline with v1's public key" \
    verify_openssl "$T/v1.pem" "$sig1"
expect_exit 0 hk pubkey rk --out "$T/primary.pem"
check "pubkey (primary) is v2's, not v1's" \
    not_same "$T/primary.pem" "$T/v1.pem"
expect_versions rk "primary 2" "v1 verify-only" "v2 active"

# The same compare-and-set again: it lost, nothing is created.
expect_exit 5 hk rotate rk --expect 1 && expect_one_line_error
expect_versions rk "primary 2" "v1 verify-only" "v2 active"
expect_exit 0 hk sign rk --in "$MSG"
check "a lost compare-and-set changes no signer" \
    test "$(sig_version "$HK_OUT")" = 2

# Two-phase rotation: v3 is published (pubkey) but does not sign.
expect_exit 0 hk rotate rk --expect 2 --stage
expect_versions rk "primary 2" "v1 verify-only" "v2 active" "v3 pending"
expect_exit 0 hk sign rk --in "$MSG"
check "a staged version does not sign: still v2" \
    test "$(sig_version "$HK_OUT")" = 2
expect_exit 0 hk pubkey rk --version 3 --out "$T/v3.pem"
check "the pending v3's public key is published" \
    openssl pkey -pubin -in "$T/v3.pem" -noout
expect_fail hk sign rk --version 3 --in "$MSG"
expect_exit 4 hk promote rk --version 9
expect_exit 0 hk promote rk --version 3
expect_exit 0 hk sign rk --in "$MSG"
sig3=$HK_OUT
check "after promote, signatures are by v3" \
    test "$(sig_version "$sig3")" = 3
check "v3 signature verifies offline with the key published when staged" \
    verify_openssl "$T/v3.pem" "$sig3"
expect_exit 0 hk verify rk --sig "$sig2" --in "$MSG"
expect_exit 0 hk verify rk --sig "$sig3" --in "$MSG"
expect_versions rk "primary 3" "v1 verify-only" "v2 verify-only" \
    "v3 active"
# A version that is not the primary does not sign when asked by number.
expect_fail hk sign rk --version 2 --in "$MSG"

# Disable v1: no signing with it, its old signatures are invalid.
expect_exit 4 hk disable rk --version 9
expect_exit 0 hk disable rk --version 1
expect_fail hk sign rk --version 1 --in "$MSG"
expect_exit 1 hk verify rk --sig "$sig1" --in "$MSG"
expect_exit 0 hk verify rk --sig "$sig2" --in "$MSG"
expect_versions rk "primary 3" "v1 disabled" "v2 verify-only" "v3 active"

# Destroy v1: scheduled (cancellable), the objects are still in the token.
expect_exit 4 hk destroy rk --version 9
expect_exit 0 hk destroy rk --version 1
expect_versions rk "primary 3" "v1 destroy-scheduled" "v2 verify-only" \
    "v3 active"
expect_exit 1 hk verify rk --sig "$sig1" --in "$MSG"
check "destroy-scheduled v1 is still in the token (its private key)" \
    test "$(token_label_count hsmkey:rk:v1)" -eq 1
expect_exit 0 hk sign rk --in "$MSG"
check "signing goes on with v3" test "$(sig_version "$HK_OUT")" = 3

# Errors on unknown keys.
expect_exit 4 hk rotate nokey
expect_exit 4 hk promote nokey --version 1
expect_exit 4 hk disable nokey --version 1
expect_exit 4 hk destroy nokey --version 1

# A rotate with no expectation always makes the next version.
expect_exit 0 hk rotate rk
expect_versions rk "primary 4" "v1 destroy-scheduled" "v2 verify-only" \
    "v3 verify-only" "v4 active"

hk_stop
hk_finish
