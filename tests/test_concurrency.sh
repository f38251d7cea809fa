#!/usr/bin/env bash
#
# test_concurrency.sh: 8 threads with their own libhsmkey handles sign in a
# loop while the key is rotated 3 times (tests/concurrent_sign.c): no
# request fails, every signature verifies (through the service) with the
# version it names, and a sample per version verifies offline with openssl
# from that version's exported public key.

. "$(dirname "$0")/lib.sh"

: "${CONCURRENT_SIGN:?CONCURRENT_SIGN must name the concurrent_sign program}"

hk_setup
hk_start || exit 1

expect_exit 0 hk create ck
mkdir "$T/samples"
if "$CONCURRENT_SIGN" "$T/admin.cred" "$HK_SOCK_URL" ck "$T/samples" 8 3 \
    >"$T/cs.out" 2>"$T/cs.err"; then
	ok "concurrent_sign: $(tail -n 2 "$T/cs.out" | tr '\n' ' ')"
else
	fail "concurrent_sign failed: $(tail -n 2 "$T/cs.out" | tr '\n' ' ')"
	sed -e 's/^/    /' "$T/cs.err" | head -n 20
fi

expect_versions ck "primary 4" "v1 verify-only" "v2 verify-only" \
    "v3 verify-only" "v4 active"

for v in 1 2 3 4; do
	if [ ! -s "$T/samples/sample-v$v.sig" ]; then
		fail "no sample signature by v$v"
		continue
	fi
	expect_exit 0 hk pubkey ck --version "$v" --out "$T/v$v.pem"
	sig=$(cat "$T/samples/sample-v$v.sig")
	check "sample is by v$v" test "$(sig_version "$sig")" = "$v"
	sig_to_file "$sig" "$T/v$v.der"
	check "openssl verifies the v$v sample with v$v's public key" \
	    openssl dgst -sha256 -verify "$T/v$v.pem" \
	    -signature "$T/v$v.der" "$T/samples/sample-v$v.msg"
	expect_exit 0 hk verify ck --sig "$sig" --in "$T/samples/sample-v$v.msg"
done

# The service is still healthy after the storm.
expect_exit 0 hk health
hk_stop
hk_finish
