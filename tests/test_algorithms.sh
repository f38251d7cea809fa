#!/usr/bin/env bash
#
# test_algorithms.sh: every algorithm end to end.  For each one: create,
# sign a message, sign a digest (ed25519: refused), export the public key
# (PEM and DER), verify every signature with openssl from the exported key
# and with `hsmkey verify`, and check in the token (pkcs11-tool -O) that the
# private key is sensitive and never extractable.

. "$(dirname "$0")/lib.sh"

hk_setup
hk_start || exit 1

MSG=$T/msg
printf 'the quick brown fox signs over the lazy hsm\n' >"$MSG"
printf 'the quick brown fox signs over the lazy hsm!\n' >"$T/tampered"

# der_from_raw RAWFILE DERFILE: r||s -> ECDSA-Sig-Value DER.
der_from_raw()
{
	"$HK_PYTHON" - "$1" "$2" <<'EOF'
import sys
raw = open(sys.argv[1], "rb").read()
n = len(raw) // 2
def integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = integer(raw[:n]) + integer(raw[n:])
if len(body) < 128:
    der = b"\x30" + bytes([len(body)]) + body
else:
    der = b"\x30\x81" + bytes([len(body)]) + body
open(sys.argv[2], "wb").write(der)
EOF
}

# openssl_verify ALG PEM SIGFILE MSGFILE [pkcs1]
openssl_verify()
{
	local alg=$1 pem=$2 sig=$3 msg=$4 mode=${5:-}
	case $alg in
	ecdsa-p256)
		openssl dgst -sha256 -verify "$pem" -signature "$sig" "$msg" ;;
	ecdsa-p384)
		openssl dgst -sha384 -verify "$pem" -signature "$sig" "$msg" ;;
	ed25519)
		openssl pkeyutl -verify -pubin -inkey "$pem" -rawin \
		    -in "$msg" -sigfile "$sig" ;;
	rsa-*)
		if [ "$mode" = pkcs1 ]; then
			openssl dgst -sha256 -verify "$pem" -signature "$sig" \
			    "$msg"
		else
			openssl dgst -sha256 -sigopt rsa_padding_mode:pss \
			    -sigopt rsa_pss_saltlen:32 -verify "$pem" \
			    -signature "$sig" "$msg"
		fi ;;
	esac >"$T/openssl.out" 2>&1
}

# check_openssl DESC ALG PEM SIG MSG [pkcs1]: openssl accepts the signature
# over MSG and rejects it over the tampered message.
check_openssl()
{
	local desc=$1
	shift
	if openssl_verify "$@"; then
		ok "openssl verifies $desc"
	else
		fail "openssl rejects $desc: $(tr '\n' ' ' <"$T/openssl.out")"
	fi
	if openssl_verify "$1" "$2" "$3" "$T/tampered" "${5:-}"; then
		fail "openssl accepts $desc over a tampered message"
	else
		ok "openssl rejects $desc over a tampered message"
	fi
}

# pubkey_type_ok ALG PEM: the exported key is of the algorithm's type.
pubkey_type_ok()
{
	local text
	text=$(openssl pkey -pubin -in "$2" -noout -text 2>&1) || return 1
	case $1 in
	ecdsa-p256) grep -q -E 'prime256v1|P-256' <<<"$text" ;;
	ecdsa-p384) grep -q -E 'secp384r1|P-384' <<<"$text" ;;
	ed25519) grep -q -E 'ED25519' <<<"$text" ;;
	rsa-2048) grep -q -E '\(2048 bit\)' <<<"$text" ;;
	rsa-3072) grep -q -E '\(3072 bit\)' <<<"$text" ;;
	rsa-4096) grep -q -E '\(4096 bit\)' <<<"$text" ;;
	esac
}

sig_len_ok()
{
	local n
	n=$(wc -c <"$2")
	case $1 in
	ed25519) [ "$n" -eq 64 ] ;;
	rsa-2048) [ "$n" -eq 256 ] ;;
	rsa-3072) [ "$n" -eq 384 ] ;;
	rsa-4096) [ "$n" -eq 512 ] ;;
	ecdsa-p256) [ "$n" -ge 8 ] && [ "$n" -le 72 ] ;;
	ecdsa-p384) [ "$n" -ge 8 ] && [ "$n" -le 104 ] ;;
	esac
}

for alg in ecdsa-p256 ecdsa-p384 ed25519 rsa-2048 rsa-3072 rsa-4096; do
	k=k-$alg
	note "---- $alg"
	expect_exit 0 hk create "$k" --alg "$alg" || continue
	expect_versions "$k" "primary 1" "v1 active"

	# Public key: PEM on stdout, PEM to a file, DER to a file.
	expect_exit 0 hk pubkey "$k"
	printf '%s\n' "$HK_OUT" >"$T/$k.stdout.pem"
	expect_exit 0 hk pubkey "$k" --out "$T/$k.pem"
	check "$alg: pubkey is a PEM public key" \
	    openssl pkey -pubin -in "$T/$k.pem" -noout
	check "$alg: pubkey on stdout equals --out" \
	    cmp -s "$T/$k.stdout.pem" "$T/$k.pem"
	check "$alg: public key type" pubkey_type_ok "$alg" "$T/$k.pem"
	expect_exit 0 hk pubkey "$k" --der --out "$T/$k.der"
	openssl pkey -pubin -in "$T/$k.pem" -outform DER \
	    -out "$T/$k.openssl.der" 2>/dev/null
	check "$alg: --der equals openssl pkey -pubin -outform DER" \
	    cmp -s "$T/$k.der" "$T/$k.openssl.der"
	expect_exit 0 hk pubkey "$k" --version 1 --out "$T/$k.v1.pem"
	check "$alg: pubkey --version 1 equals the primary's" \
	    cmp -s "$T/$k.v1.pem" "$T/$k.pem"

	# Sign the message (from a file and from stdin).
	expect_exit 0 hk sign "$k" --in "$MSG"
	sig=$HK_OUT
	check "$alg: signature text form hsmkey:v1:..." \
	    test "$(sig_version "$sig")" = 1
	sig_to_file "$sig" "$T/$k.sig"
	check "$alg: signature length" sig_len_ok "$alg" "$T/$k.sig"
	check_openssl "$alg message signature" "$alg" "$T/$k.pem" \
	    "$T/$k.sig" "$MSG"
	expect_exit 0 hk verify "$k" --sig "$sig" --in "$MSG"
	expect_exit 1 hk verify "$k" --sig "$sig" --in "$T/tampered"
	printf '%s\n' "$sig" >"$T/$k.sigtext"
	expect_exit 0 hk verify "$k" --sig "@$T/$k.sigtext" --in "$MSG"

	expect_exit 0 hk sign "$k" <"$MSG"
	sig_to_file "$HK_OUT" "$T/$k.stdin.sig"
	check_openssl "$alg signature of stdin" "$alg" "$T/$k.pem" \
	    "$T/$k.stdin.sig" "$MSG"
	expect_exit 0 hk verify "$k" --sig "$HK_OUT" <"$MSG"

	# Sign a digest.
	case $alg in
	ecdsa-p384) h=sha384 ;;
	*) h=sha256 ;;
	esac
	dg=$(openssl dgst -"$h" -binary "$MSG" | xxd -p -c256)
	if [ "$alg" = ed25519 ]; then
		expect_exit 2 hk sign "$k" --digest "$dg" &&
		    expect_one_line_error
		dg256=$(openssl dgst -sha256 -binary "$MSG" | xxd -p -c256)
		expect_exit 2 hk sign "$k" --digest "$dg256"
	else
		expect_exit 0 hk sign "$k" --digest "$dg"
		dsig=$HK_OUT
		sig_to_file "$dsig" "$T/$k.dsig"
		check_openssl "$alg digest signature" "$alg" "$T/$k.pem" \
		    "$T/$k.dsig" "$MSG"
		expect_exit 0 hk verify "$k" --sig "$dsig" --in "$MSG"
		expect_exit 0 hk verify "$k" --sig "$dsig" --digest "$dg"
		expect_exit 0 hk verify "$k" --sig "$sig" --digest "$dg"
		# The wrong digest length for this algorithm.
		if [ "$h" = sha256 ]; then
			bad=$(openssl dgst -sha384 -binary "$MSG" | xxd -p -c256)
		else
			bad=$(openssl dgst -sha256 -binary "$MSG" | xxd -p -c256)
		fi
		expect_exit 2 hk sign "$k" --digest "$bad"
	fi

	case $alg in
	rsa-*)
		expect_exit 0 hk sign "$k" --pkcs1 --in "$MSG"
		sig_to_file "$HK_OUT" "$T/$k.p1.sig"
		check_openssl "$alg PKCS#1 v1.5 signature" "$alg" \
		    "$T/$k.pem" "$T/$k.p1.sig" "$MSG" pkcs1
		if openssl_verify "$alg" "$T/$k.pem" "$T/$k.sig" "$MSG" \
		    pkcs1; then
			fail "$alg: default signature is PKCS#1, want PSS"
		else
			ok "$alg: default signature is not PKCS#1 v1.5"
		fi
		expect_exit 0 hk sign "$k" --pkcs1 --digest "$dg"
		sig_to_file "$HK_OUT" "$T/$k.p1d.sig"
		check_openssl "$alg PKCS#1 v1.5 digest signature" "$alg" \
		    "$T/$k.pem" "$T/$k.p1d.sig" "$MSG" pkcs1
		;;
	ecdsa-*)
		want=64
		[ "$alg" = ecdsa-p384 ] && want=96
		expect_exit 0 hk sign "$k" --raw --in "$MSG"
		sig_to_file "$HK_OUT" "$T/$k.raw"
		check "$alg: --raw is $want bytes" \
		    test "$(wc -c <"$T/$k.raw")" -eq "$want"
		der_from_raw "$T/$k.raw" "$T/$k.raw.der"
		check_openssl "$alg raw r||s signature" "$alg" "$T/$k.pem" \
		    "$T/$k.raw.der" "$MSG"
		;;
	esac
done

# The private halves in the token: sensitive, never extractable, no
# capability beyond signing.
note "---- token objects"
token_objects >"$T/objects.txt"
check "no public key objects: public keys live in the key records" \
    test "$(grep -c '^Public Key Object' "$T/objects.txt")" -eq 0
check "pkcs11-tool lists the private keys" \
    test "$(grep -c '^Private Key Object' "$T/objects.txt")" -ge 6
for alg in ecdsa-p256 ecdsa-p384 ed25519 rsa-2048 rsa-3072 rsa-4096; do
	label="hsmkey:k-$alg:v1"
	awk -v l="$label" '
		/^[^ \t]/ { if (keep) exit; block = $0 "\n"; next }
		{ block = block $0 "\n" }
		/^[ \t]*label:/ {
			v = $0; sub(/^[ \t]*label:[ \t]*/, "", v)
			sub(/[ \t]*$/, "", v)
			if (v == l && block ~ /^Private Key Object/) keep = 1
		}
		END { if (keep) printf "%s", block }
	' "$T/objects.txt" >"$T/priv.txt"
	# The awk above stops at the next header; print what it kept.
	if [ ! -s "$T/priv.txt" ]; then
		fail "$alg: no private key object labelled $label in the token"
		continue
	fi
	access=$(sed -n -e 's/^[[:space:]]*Access:[[:space:]]*//p' "$T/priv.txt")
	usage=$(sed -n -e 's/^[[:space:]]*Usage:[[:space:]]*//p' "$T/priv.txt")
	items=$(printf '%s\n' "$access" | tr ',' '\n' | sed -e 's/^ *//' -e 's/ *$//')
	if grep -qx 'sensitive' <<<"$items" &&
	    grep -qx 'never extractable' <<<"$items" &&
	    ! grep -qx 'extractable' <<<"$items"; then
		ok "$alg: private key Access: $access"
	else
		fail "$alg: private key Access: '$access', want sensitive," \
		    "never extractable, not extractable"
	fi
	if grep -q -E 'decrypt|unwrap|derive|wrap' <<<"$usage"; then
		fail "$alg: private key Usage: '$usage' (more than sign)"
	elif grep -q sign <<<"$usage"; then
		ok "$alg: private key Usage: $usage"
	else
		fail "$alg: private key Usage: '$usage', want sign"
	fi
	# the public half lives in the key's record (pubkey above), not as
	# a token object: one object per version
	check "$alg: exactly one object, the private key, labelled $label" \
	    test "$(token_label_count "$label")" -eq 1
done
check "the metadata object of each key is in the token" \
    test "$(token_labels_with_prefix 'hsmkey-key:k-' | wc -l)" -eq 6

hk_stop
hk_finish
