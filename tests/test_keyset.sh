#!/usr/bin/env bash
#
# test_keyset.sh: what verifiers get.  sign --jws output of every
# algorithm verifies with the JWK that jwks gives, checked by
# implementations nobody here wrote (Debian's python3-jwcrypto under
# /usr/bin/python3, and openssl after turning the JWK into a
# SubjectPublicKeyInfo and r||s into DER); a changed payload does not.  A
# staged version is in the set and in pubkey --all but signs nothing until
# promote; a disabled one leaves the set.  The signed set verifies with
# hsmkey pubkey hsmkey-keyset's key and not after a changed byte; no
# client may sign with that key.

. "$(dirname "$0")/lib.sh"

hk_need_jwcrypto

hk_setup
hk_start || exit 1

# not CMD...: CMD fails.
not()
{
	! "$@"
}

MSG=$T/msg
printf 'pay 100 to alice\n' >"$MSG"

# jws_payload_swapped JWS OUT: JWS with another payload, same signature.
jws_payload_swapped()
{
	local other
	other=$(printf 'pay 900 to mallory\n' | base64 -w0 | tr '+/' '-_' |
	    tr -d '=')
	awk -F. -v p="$other" '{ print $1 "." p "." $3 }' "$1" >"$2"
}

# jws_byte_flipped JWS OUT: JWS with one character of its payload changed.
jws_byte_flipped()
{
	awk -F. '{ c = substr($2, 5, 1); n = (c == "A") ? "B" : "A";
	    print $1 "." substr($2, 1, 4) n substr($2, 6) "." $3 }' "$1" >"$2"
}

# jwk_field JWKS KID FIELD: a member of the JWK KID ("" if none).
jwk_field()
{
	"$PY" -c '
import json, sys
for k in json.load(open(sys.argv[1]))["keys"]:
    if k["kid"] == sys.argv[2]:
        v = k.get(sys.argv[3])
        print("null" if v is None else v)' "$@"
}

# kids JWKS: the kids of a set, in order, on one line.
kids()
{
	"$PY" -c '
import json, sys
print(" ".join(k["kid"] for k in json.load(open(sys.argv[1]))["keys"]))' "$1"
}

# jose_verifies JWKS JWS: jwcrypto verifies JWS with the key of its kid and
# gives back $MSG.
jose_verifies()
{
	"$PY" "$JWS_CHECK" verify "$1" "$2" >"$T/payload" 2>"$T/py.err" &&
	    cmp -s "$T/payload" "$MSG"
}

# openssl_verifies JWKS KID JWS HASH PEM: the JWK KID as an SPKI is the
# key of PEM, and openssl verifies the r||s signature of JWS (as DER).
openssl_verifies()
{
	"$PY" "$JWS_CHECK" pem "$1" "$2" "$T/jwk.pem" &&
	    openssl pkey -pubin -in "$T/jwk.pem" -outform DER >"$T/a.der" &&
	    openssl pkey -pubin -in "$5" -outform DER >"$T/b.der" &&
	    cmp -s "$T/a.der" "$T/b.der" &&
	    "$PY" "$JWS_CHECK" split "$3" "$T/input" "$T/sig.der" &&
	    openssl dgst "-$4" -verify "$T/jwk.pem" -signature "$T/sig.der" \
		"$T/input" >/dev/null 2>&1
}

# sign --jws with every algorithm, checked against jwks.
for ka in "ec256 ecdsa-p256 ES256" "ec384 ecdsa-p384 ES384" \
    "ed ed25519 EdDSA" "rsa rsa-2048 PS256"; do
	set -- $ka
	expect_exit 0 hk create "$1" --alg "$2"
	expect_exit 0 hk sign "$1" --jws --in "$MSG"
	printf '%s\n' "$HK_OUT" >"$T/$1.jws"
	expect_exit 0 hk jwks "$1" --out "$T/$1.jwks"
	check "$1: the JWK says alg $3, kid $1/v1" \
	    test "$(jwk_field "$T/$1.jwks" "$1/v1" alg)" = "$3"
	check "$1: jwcrypto verifies the JWS with the JWK from jwks" \
	    jose_verifies "$T/$1.jwks" "$T/$1.jws"
	jws_payload_swapped "$T/$1.jws" "$T/$1.bad"
	check "$1: a changed payload does not verify" \
	    not jose_verifies "$T/$1.jwks" "$T/$1.bad"
done
expect_exit 0 hk sign rsa --jws --pkcs1 --in "$MSG"
printf '%s\n' "$HK_OUT" >"$T/rs256.jws"
check "rsa --pkcs1: the header says RS256" \
    grep -q "$(printf '{"alg":"RS256"' | base64 -w0 | cut -c1-16)" \
    "$T/rs256.jws"
check "rsa --pkcs1: jwcrypto verifies RS256" \
    jose_verifies "$T/rsa.jwks" "$T/rs256.jws"

expect_exit 0 hk pubkey ec256 --version 1 --out "$T/ec256.v1.pem"
expect_exit 0 hk pubkey ec384 --version 1 --out "$T/ec384.v1.pem"
check "openssl: the ES256 JWK is v1's key and verifies the JWS" \
    openssl_verifies "$T/ec256.jwks" ec256/v1 "$T/ec256.jws" sha256 \
    "$T/ec256.v1.pem"
check "openssl: the ES384 JWK is v1's key and verifies the JWS" \
    openssl_verifies "$T/ec384.jwks" ec384/v1 "$T/ec384.jws" sha384 \
    "$T/ec384.v1.pem"
check "openssl: the changed ES256 payload does not verify" \
    not openssl_verifies "$T/ec256.jwks" ec256/v1 "$T/ec256.bad" sha256 \
    "$T/ec256.v1.pem"

expect_exit 2 hk sign ec256 --jws --raw --in "$MSG"
expect_exit 2 hk sign ec256 --jws --digest \
    "$(sha256sum "$MSG" | cut -c1-64)"
expect_exit 2 hk sign ec256 --jws --version 1 --in "$MSG"
expect_exit 2 hk pubkey ec256 --all --der

# A staged version: in the set and in pubkey --all, signs nothing.
expect_exit 0 hk rotate ec256 --stage
expect_exit 0 hk jwks ec256 --out "$T/staged.jwks"
check "the set lists v1 and the pending v2" \
    test "$(kids "$T/staged.jwks")" = "ec256/v1 ec256/v2"
check "v2 is pending in the set" \
    test "$(jwk_field "$T/staged.jwks" ec256/v2 hsmkey_state)" = pending
check "v1 is active in the set" \
    test "$(jwk_field "$T/staged.jwks" ec256/v1 hsmkey_state)" = active
expect_exit 0 hk pubkey ec256 --all --out "$T/all.pem"
expect_exit 0 hk pubkey ec256 --version 2 --out "$T/ec256.v2.pem"
cat "$T/ec256.v1.pem" "$T/ec256.v2.pem" >"$T/both.pem"
check "pubkey --all: v1's then v2's PEM" cmp -s "$T/all.pem" "$T/both.pem"
expect_exit 0 hk --json pubkey ec256 --all
check "pubkey --all --json: versions and states" test "$(printf '%s' \
    "$HK_OUT" | "$PY" -c 'import json, sys
print(" ".join("%d:%s" % (e["version"], e["state"])
               for e in json.load(sys.stdin)))')" = "1:active 2:pending"
expect_exit 0 hk sign ec256 --jws --in "$MSG"
printf '%s\n' "$HK_OUT" >"$T/staged.jws"
check "the pending v2 signs nothing: the JWS is v1's" \
    test "$("$PY" "$JWS_CHECK" verify "$T/staged.jwks" "$T/staged.jws" \
    2>&1 >/dev/null; cut -d. -f1 "$T/staged.jws" | base64 -d 2>/dev/null)" \
    = '{"alg":"ES256","kid":"ec256/v1"}'
expect_exit 0 hk promote ec256 --version 2
expect_exit 0 hk sign ec256 --jws --in "$MSG"
printf '%s\n' "$HK_OUT" >"$T/promoted.jws"
expect_exit 0 hk jwks ec256 --out "$T/promoted.jwks"
check "after promote, v2 signs and its JWS verifies" \
    jose_verifies "$T/promoted.jwks" "$T/promoted.jws"
check "after promote, v1 is verify-only with an end" test "$(jwk_field \
    "$T/promoted.jwks" ec256/v1 hsmkey_state) $(jwk_field \
    "$T/promoted.jwks" ec256/v1 hsmkey_verify_until | tr -d 0-9)" = \
    "verify-only "
check "v1's JWS still verifies with the new set" \
    jose_verifies "$T/promoted.jwks" "$T/ec256.jws"

# After disable, the version leaves the set.
expect_exit 0 hk disable ec256 --version 1
expect_exit 0 hk jwks ec256 ed --out "$T/disabled.jwks"
check "after disable, the set holds v2 only (and ed's v1)" \
    test "$(kids "$T/disabled.jwks")" = "ec256/v2 ed/v1"
check "v1's JWS no longer finds its key" \
    not jose_verifies "$T/disabled.jwks" "$T/ec256.jws"
expect_exit 0 hk pubkey ec256 --all --out "$T/all.pem"
check "pubkey --all: v2's PEM only" cmp -s "$T/all.pem" "$T/ec256.v2.pem"

# The signed set: by hsmkey-keyset, checked offline.
expect_exit 0 hk jwks ec256 ed --signed --out "$T/set.jws"
expect_exit 0 hk pubkey hsmkey-keyset --out "$T/keyset.pem"
# set_verifies JWS: jwcrypto verifies the signed set JWS with the exported
# key of hsmkey-keyset; the set in $T/set.json.
set_verifies()
{
	"$PY" "$JWS_CHECK" verify-pem "$T/keyset.pem" "$1" >"$T/set.json"
}

# set_openssl JWS: openssl verifies it (ES256, r||s turned into DER).
set_openssl()
{
	"$PY" "$JWS_CHECK" split "$1" "$T/input" "$T/sig.der" &&
	    openssl dgst -sha256 -verify "$T/keyset.pem" \
		-signature "$T/sig.der" "$T/input" >/dev/null
}

check "jwcrypto verifies the signed set with hsmkey-keyset's key" \
    set_verifies "$T/set.jws"
check "the signed set names the same versions" \
    test "$(kids "$T/set.json")" = "ec256/v2 ed/v1"
check "openssl verifies the signed set" set_openssl "$T/set.jws"
jws_byte_flipped "$T/set.jws" "$T/set.bad"
check "a signed set with a changed byte does not verify (jwcrypto)" \
    not set_verifies "$T/set.bad"
check "a signed set with a changed byte does not verify (openssl)" \
    not set_openssl "$T/set.bad"

# Grants: pubkey on every name; no client signs with a service key.
expect_exit 0 hk client add signer --grant 'sign:*' --grant 'pubkey:ec*' \
    --out "$T/signer.cred"
SIGNER=("$HSMKEY" --credentials "$T/signer.cred")
expect_exit 3 "${SIGNER[@]}" sign hsmkey-keyset --in "$MSG"
check "the refusal names the key set key" grep -q hsmkey-keyset "$T/err"
expect_exit 3 "${SIGNER[@]}" sign hsmkey-keyset --jws --in "$MSG"
expect_exit 0 "${SIGNER[@]}" jwks ec256 ec384
expect_exit 3 "${SIGNER[@]}" jwks ec256 ed
check "the refusal names the first key not granted" grep -q "'ed'" "$T/err"
expect_one_line_error
expect_exit 4 hk jwks ec256 nosuch
expect_exit 2 hk jwks ec256 ec256
expect_exit 2 hk jwks 'Bad Name'

hk_finish
