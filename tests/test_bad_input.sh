#!/usr/bin/env bash
#
# test_bad_input.sh: every bad input gets its exit code and a one-line
# error, and nothing at all (garbage, random bytes, oversized frames, on ipc
# and tcp) crashes the service.

. "$(dirname "$0")/lib.sh"

hk_setup --tcp
# the largest message libhsmkey sends (1 MiB) needs the largest max_request
printf '\n[service]\nmax_request = 1M\n' >>"$T/hsmkeyd.conf"
hk_start || exit 1

MSG=$T/msg
printf 'hello\n' >"$MSG"
expect_exit 0 hk create good
expect_exit 0 hk create ed --alg ed25519

note "---- not found (4)"
expect_exit 4 hk sign nosuchkey --in "$MSG" && expect_one_line_error
expect_exit 4 hk describe nosuchkey && expect_one_line_error
expect_exit 4 hk pubkey nosuchkey
expect_exit 4 hk pubkey good --version 7
expect_exit 4 hk sign good --version 7 --in "$MSG"

note "---- invalid key names (2)"
for name in 'Bad' 'has space' '-dash' '.dot' '_under' 'a/b' 'a:b' \
    "$(printf 'x%.0s' $(seq 1 65))" 'é'; do
	expect_exit 2 hk create "$name" && expect_one_line_error
done
expect_exit 2 hk create ''
expect_exit 2 hk sign 'Bad' --in "$MSG"
# The longest valid name is accepted.
long=$(printf 'y%.0s' $(seq 1 64))
expect_exit 0 hk create "$long"

note "---- bad digests (2)"
expect_exit 2 hk sign good --digest zz && expect_one_line_error
expect_exit 2 hk sign good --digest abc
expect_exit 2 hk sign good --digest ''
expect_exit 2 hk sign good --digest "$(printf '00%.0s' $(seq 1 16))"
expect_exit 2 hk sign good --digest "$(printf '00%.0s' $(seq 1 64))"
expect_exit 2 hk sign ed --digest "$(printf '00%.0s' $(seq 1 32))"
expect_exit 2 hk sign good --digest 00 --in "$MSG"

note "---- empty and oversized input (2)"
: >"$T/empty"
expect_exit 2 hk sign good --in "$T/empty" && expect_one_line_error
expect_exit 2 hk sign good </dev/null
expect_fail hk sign good --in "$T/no-such-file"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$T/big"
expect_exit 2 hk sign good --in "$T/big" && expect_one_line_error
if grep -q -E '[0-9]{6,}|[0-9] ?[KkMm]i?B' "$T/err"; then
	ok "oversize error states the limit: $HK_ERR"
else
	fail "oversize error does not state the limit: $HK_ERR"
fi
expect_exit 2 hk sign good <"$T/big"
expect_exit 2 hk verify good --sig "hsmkey:v1:AAAA" --in "$T/big"
# Just under one MiB minus framing still signs.
head -c $((1024 * 1024 - 4096)) /dev/zero | tr '\0' 'b' >"$T/almost"
expect_exit 0 hk sign good --in "$T/almost"
expect_exit 0 hk verify good --sig "$HK_OUT" --in "$T/almost"

note "---- malformed signatures"
expect_exit 2 hk verify good --sig 'not a signature' --in "$MSG"
expect_exit 2 hk verify good --sig 'hsmkey:vX:AAAA' --in "$MSG"
expect_exit 2 hk verify good --sig 'hsmkey:v1:!!!!' --in "$MSG"
expect_fail hk verify good --sig "@$T/no-such-file" --in "$MSG"
expect_exit 0 hk sign good --in "$MSG"
good_sig=$HK_OUT
# A valid signature of another key is invalid for this one.
expect_exit 0 hk create other
expect_exit 0 hk sign other --in "$MSG"
expect_exit 1 hk verify good --sig "$HK_OUT" --in "$MSG"
# Flip bytes in the middle of the signature.
raw=${good_sig##*:}
flipped=$(printf '%s' "$raw" | base64 -d | xxd -p -c256 |
    sed -e 's/^\(.\{20\}\)\(..\)/\1ff/' | xxd -r -p | base64 -w0)
if [ "$flipped" != "$raw" ]; then
	expect_exit 1 hk verify good --sig "hsmkey:v1:$flipped" --in "$MSG"
fi

note "---- wrong credentials (3)"
secret=$(cred_value "$T/admin.cred" secret)
sed -e "s|^\([[:space:]]*secret[[:space:]]*=\).*|\1 $(openssl rand -base64 32)|" \
    "$T/admin.cred" >"$T/wrong.cred"
chmod 600 "$T/wrong.cred"
check "wrong.cred has another secret" \
    test "$(cred_value "$T/wrong.cred" secret)" != "$secret"
expect_exit 3 "$HSMKEY" --credentials "$T/wrong.cred" list &&
    expect_one_line_error
expect_exit 3 "$HSMKEY" --credentials "$T/wrong.cred" sign good --in "$MSG"
sed -e 's|^\([[:space:]]*id[[:space:]]*=\).*|\1 nobody|' \
    "$T/admin.cred" >"$T/nobody.cred"
chmod 600 "$T/nobody.cred"
expect_exit 3 "$HSMKEY" --credentials "$T/nobody.cred" list
sed -e 's|^\([[:space:]]*secret_no[[:space:]]*=\).*|\1 9|' \
    "$T/admin.cred" >"$T/secno.cred"
chmod 600 "$T/secno.cred"
# a wrong secret_no with a live secret: the library, refused, asks once
# more naming no secret, and the service finds it (a pasted secret)
if grep -q secret_no "$T/secno.cred"; then
	expect_exit 0 "$HSMKEY" --credentials "$T/secno.cred" list
fi
expect_exit 0 hk list

note "---- garbage on the sockets"
# nanocat --req waits for a reply; the service may answer with an error or
# drop the request, so only the service's survival is asserted.
garbage()
{
	timeout 5 nanocat --req --connect "$1" --recv-timeout 1 \
	    --send-timeout 1 --raw "${@:2}" >/dev/null 2>&1
	return 0
}
head -c 4096 /dev/urandom >"$T/random.bin"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/random-big.bin"
printf '\x0a\x05hello\x12\xff\xff\xff\xff\x0f' >"$T/proto-ish.bin"
printf '\x08\x01\x12\x05admin\x18\x01\x22\x10AAAAAAAAAAAAAAAA\x28\x01\x32\x00\x3a\x20AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' >"$T/envelope-ish.bin"
for url in "$HK_SOCK_URL" "$HK_TCP_URL"; do
	garbage "$url" --data 'garbage'
	garbage "$url" --data ''
	garbage "$url" --file "$T/random.bin"
	garbage "$url" --file "$T/random-big.bin"
	garbage "$url" --file "$T/proto-ish.bin"
	garbage "$url" --file "$T/envelope-ish.bin"
	for i in 1 2 3 4 5; do
		head -c $((RANDOM % 512 + 1)) /dev/urandom >"$T/r.bin"
		garbage "$url" --file "$T/r.bin"
	done
	check "hsmkeyd alive after garbage on $url" kill -0 "$HK_PID"
	expect_exit 0 hk --connect "$url" health
done
# Raw bytes on the tcp port, not even the SP header.
port=${HK_TCP_URL##*:}
for n in 1 8 100 70000; do
	if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
		head -c "$n" /dev/urandom >&3 2>/dev/null
		exec 3>&-
	fi
done
# An SP header that announces a huge message.
if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
	printf '\x00SP\x00\x00\x30\x00\x00\x7f\xff\xff\xff\xff\xff\xff\xff' >&3 2>/dev/null
	sleep 0.2
	exec 3>&-
fi
sleep 0.5
check "hsmkeyd alive after raw bytes on tcp" kill -0 "$HK_PID"
expect_exit 0 hk health
expect_exit 0 hk sign good --in "$MSG"
expect_exit 0 hk verify good --sig "$HK_OUT" --in "$MSG"
expect_exit 0 hk --connect "$HK_TCP_URL" sign good --in "$MSG"

hk_stop
hk_finish
