#!/usr/bin/env bash
#
# test_provision.sh: hsmkey-admin init-token on a fresh SoftHSM token
# directory.  The token it makes serves: PIN files of mode 0600, hsmkeyd
# starts with the printed URI and signs; a second init is refused and the
# keys stay, --force wipes them; symbolic links, open SO PIN files, long
# labels, a wrong SO PIN refused with one line; PIN files it made are
# removed when C_InitToken fails (faultp11); no PIN in ps, in the
# environment or in anything it prints.

. "$(dirname "$0")/lib.sh"

: "${HSMKEY_ADMIN:?HSMKEY_ADMIN must name the hsmkey-admin binary}"
: "${FAULTP11:?FAULTP11 must name tests/faultp11/faultp11.so}"

hk_tmpdir
mkdir -m 0700 "$T/tokens" || exit 1
hk_softhsm_conf "$T"
export SOFTHSM2_CONF=$T/softhsm2.conf

# admin_init ARGS...: hsmkey-admin init-token on SoftHSM, label hsmkey
# unless ARGS give another, PIN files $T/so.pin and $T/pin unless ARGS
# give others (the last of each flag wins).
admin_init()
{
	"$HSMKEY_ADMIN" init-token --module "$SOFTHSM_MODULE" --label hsmkey \
	    --so-pin-file "$T/so.pin" --pin-file "$T/pin" "$@"
}

# mode FILE: its permission bits in octal.
mode()
{
	stat -c %a "$1"
}

# --- a new token, both PINs made
expect_exit 0 admin_init
URI=$(head -n 1 "$T/out")
check "prints a pkcs11: URI with the label and the serial" \
    grep -q -E '^pkcs11:.*serial=[0-9a-f]+.*token=hsmkey' <<<"$URI"
check "prints the [pkcs11] lines for hsmkeyd.conf" \
    grep -q -x -F "pin_file = $T/pin" "$T/out"
check "says where the new SO PIN went" \
    grep -q "wrote a new SO PIN to $T/so.pin (mode 0600); keep it offline" \
    "$T/err"
check "user PIN file mode 0600" test "$(mode "$T/pin")" = 600
check "SO PIN file mode 0600" test "$(mode "$T/so.pin")" = 600
PIN=$(cat "$T/pin")
SO_PIN=$(cat "$T/so.pin")
check "the PINs are 32 hex digits and differ" \
    test "${#PIN}" = 32 -a "${#SO_PIN}" = 32 -a "$PIN" != "$SO_PIN"

# --- hsmkeyd serves it with the printed URI
hk_write_config "$T/hsmkeyd.conf" "ipc://$T/hsmkey.sock"
sed -i -e "s|^token = .*|token = $URI|" "$T/hsmkeyd.conf"
check "the config names the printed URI" \
    grep -q -x -F "token = $URI" "$T/hsmkeyd.conf"
hk_bootstrap
hk_start || exit 1
printf 'provisioned\n' >"$T/msg"
expect_exit 0 hk create k1
expect_exit 0 hk pubkey k1 --out "$T/k1.pem"
sign_works k1 1 "$T/msg" "$T/k1.pem"
hk_stop
token_label_list >"$T/objects.before"
check "the token holds k1's objects" grep -q k1 "$T/objects.before"

# --- a second init is refused; the keys stay
expect_exit 5 admin_init
expect_one_line_error
check "the refusal names the token and --force" \
    grep -q 'initialised token "hsmkey": refused (--force' "$T/err"
expect_exit 5 admin_init --slot "$(softhsm2-util --show-slots |
    awk '/^Slot [0-9]/ { s = $2 } /Label: *hsmkey *$/ { print s }')"
token_label_list >"$T/objects.after"
check "the token's objects are still there" \
    cmp -s "$T/objects.before" "$T/objects.after"
hk_start || exit 1
sign_works k1 1 "$T/msg" "$T/k1.pem"
hk_stop

# --- refusals: one line each, nothing made
ln -s "$T/pin" "$T/link.pin"
expect_exit 3 admin_init --label other --pin-file "$T/link.pin"
expect_one_line_error
check "the link is named" grep -q 'link.pin is a symbolic link' "$T/err"
cp "$T/so.pin" "$T/so640.pin" && chmod 0640 "$T/so640.pin"
expect_exit 3 admin_init --label other --so-pin-file "$T/so640.pin" \
    --pin-file "$T/other.pin"
expect_one_line_error
check "no user PIN file made after a refusal" test ! -e "$T/other.pin"
expect_exit 2 admin_init --label 123456789012345678901234567890123 \
    --pin-file "$T/other.pin"
expect_one_line_error
expect_exit 2 admin_init --label other --so-pin-file "$T/pin"
expect_exit 2 "$HSMKEY_ADMIN" init-token --label other
expect_exit 4 admin_init --label other --slot 4242 --pin-file "$T/other.pin"
expect_one_line_error
printf 'not-the-so-pin\n' >"$T/wrong.so" && chmod 0600 "$T/wrong.so"
expect_exit 3 admin_init --force --so-pin-file "$T/wrong.so"
expect_one_line_error
check "no token labelled other was made" \
    bash -c '! softhsm2-util --show-slots | grep -q "Label: *other *$"'

# --- C_InitToken fails (faultp11): the PIN files it made are gone again
fault_rules "module $SOFTHSM_MODULE" "fail C_InitToken CKR_DEVICE_ERROR"
expect_exit 5 "$HSMKEY_ADMIN" init-token --module "$FAULTP11" --label f1 \
    --so-pin-file "$T/f1.so" --pin-file "$T/f1.pin"
check "no PIN file left after a failed C_InitToken" \
    test ! -e "$T/f1.so" -a ! -e "$T/f1.pin"

# --- no PIN in ps or the environment while it runs (C_InitToken delayed)
fault_rules "module $SOFTHSM_MODULE" "delay C_InitToken 1500ms"
"$HSMKEY_ADMIN" init-token --module "$FAULTP11" --label slow \
    --so-pin-file "$T/slow.so" --pin-file "$T/slow.pin" \
    >"$T/slow.out" 2>"$T/slow.err" &
ADMIN_PID=$!
HK_PIDS+=("$ADMIN_PID")
sleep 0.7
ps -eo args >"$T/ps.txt"
tr '\0' '\n' <"/proc/$ADMIN_PID/environ" >"$T/environ.txt" 2>/dev/null
check "hsmkey-admin is in the ps listing" grep -q 'label slow' "$T/ps.txt"
if hk_wait_exit "$ADMIN_PID" 20 && [ "$HK_RC" -eq 0 ]; then
	ok "the delayed init-token succeeded"
else
	fail "the delayed init-token: exit $HK_RC"
fi
cat "$T/slow.out" >>"$T/captured.stdout"
cat "$T/slow.err" >>"$T/captured.stderr"

# --- --force re-initialises: same PINs, keys gone
expect_exit 0 admin_init --force
check "same token (serial) after --force" \
    test "$(head -n 1 "$T/out")" = "$URI"
check "the user PIN file is unchanged" test "$(cat "$T/pin")" = "$PIN"
token_label_list >"$T/objects.forced"
check "k1's objects are gone" bash -c "! grep -q k1 '$T/objects.forced'"
rm -f "$T/admin.cred"
hk_bootstrap
hk_start || exit 1
expect_exit 4 hk describe k1
expect_exit 0 hk create k2
hk_stop

# --- the PINs appear nowhere
{
	printf '%s\n%s\n' "$PIN" "$SO_PIN"
	cat "$T/slow.pin" "$T/slow.so"
} >"$T/needles"
for f in "$T/captured.stdout" "$T/captured.stderr" "$T/ps.txt" \
    "$T/environ.txt" "$T"/hsmkeyd.*.log; do
	check "no PIN in ${f#"$T"/}" bash -c '! grep -q -F -f "$1" "$2"' _ \
	    "$T/needles" "$f"
done
hk_finish
