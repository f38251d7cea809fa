#!/usr/bin/env bash
#
# test_auth.sh: issue 3 on a real hsmkeyd.  Replay (a captured rotate sent
# again executes nothing: the first reply comes back byte for byte, and
# after the clock window UNAUTHENTICATED/REPLAY); a lost reply (a proxy
# drops it, or breaks the connection) is recovered by libhsmkey's
# automatic resend with exactly one version made; timestamps 31 s off and
# every single flipped bit are refused and run nothing; grants; client
# rotate + revoke under a running multi-threaded signer with credential
# reload (no failed request, the old secret refused at once); secret
# expiry; and no secret in any log, error message or argv.

. "$(dirname "$0")/lib.sh"

: "${AUTH_RULES:?AUTH_RULES must name the auth_rules program}"
: "${RESEND_PROXY:?RESEND_PROXY must name the resend_proxy program}"
: "${SIGNER_LOOP:?SIGNER_LOOP must name the signer_loop program}"

hk_setup
hk_start || exit 1
ADMIN_URL=$HK_SOCK_URL

# run_prog NAME CMD...: runs a C checker, passes when it exits 0; shows
# its FAIL lines and stderr otherwise.
run_prog()
{
	local name=$1
	shift
	if "$@" >"$T/$name.out" 2>"$T/$name.err"; then
		ok "$name: $(tail -n 1 "$T/$name.out")"
	else
		fail "$name: $(tail -n 1 "$T/$name.out")"
		grep -v '^ok' "$T/$name.out" | sed -e 's/^/    /' | head -n 30
		sed -e 's/^/    stderr: /' "$T/$name.err" | head -n 10
	fi
	cat "$T/$name.err" >>"$T/captured.stderr"
}

# nversions KEY: how many versions describe shows.
nversions()
{
	key_versions "$1" | grep -c '^v'
}

for k in rk bk pk pay-1 ops-1 loop-1; do
	expect_exit 0 hk create "$k"
done

# ---- replay, clock window, flipped bits (raw protocol) -------------------
run_prog replay "$AUTH_RULES" replay "$T/admin.cred" "$ADMIN_URL" rk
check "rk: exactly one rotation (2 versions)" test "$(nversions rk)" -eq 2
# the config's window (lib.sh: HK_CLOCK_WINDOW, seconds; scripts/memcheck
# widens it)
window=${HK_CLOCK_WINDOW:-30s}
run_prog clock "$AUTH_RULES" clock "$T/admin.cred" "$ADMIN_URL" \
    "$((${window%s} * 1000))"
run_prog bitflip "$AUTH_RULES" bitflip "$T/admin.cred" "$ADMIN_URL" bk
check "bk: only the unflipped rotate ran (2 versions)" \
    test "$(nversions bk)" -eq 2

# ---- the reply is lost; libhsmkey's resend gets the original --------------
# proxy_rotate MODE: hsmkey rotate pk through resend_proxy MODE.
proxy_rotate()
{
	local mode=$1 front="ipc://$T/proxy-$1.sock" pid i before after
	before=$(nversions pk)
	"$RESEND_PROXY" "$mode" "$front" "$ADMIN_URL" \
	    >"$T/proxy-$mode.out" 2>"$T/proxy-$mode.err" &
	pid=$!
	HK_PIDS+=("$pid")
	for ((i = 0; i < 50; i++)); do
		grep -q ready "$T/proxy-$mode.out" 2>/dev/null && break
		sleep 0.1
	done
	expect_exit 0 hk --connect "$front" --json rotate pk
	kill -TERM "$pid"
	hk_wait_exit "$pid" 10
	after=$(nversions pk)
	check "proxy $mode: exactly one version made ($before -> $after)" \
	    test "$after" -eq $((before + 1))
	check "proxy $mode: the request was resent: $(tail -n 1 \
	    "$T/proxy-$mode.out")" \
	    grep -q -E '^requests [2-9]' "$T/proxy-$mode.out"
	if [ "$mode" = drop ]; then
		check "proxy drop: the first reply was dropped" \
		    grep -q -E 'dropped 1$' "$T/proxy-$mode.out"
	fi
}
proxy_rotate drop
proxy_rotate reopen

# ---- grants -------------------------------------------------------------
expect_exit 0 hk client add pay --grant 'sign:pay-*' --out "$T/pay.cred"
expect_exit 0 hk client add ver --grant 'verify:*' --out "$T/ver.cred"
PAY=("$HSMKEY" --credentials "$T/pay.cred")
VER=("$HSMKEY" --credentials "$T/ver.cred")
printf 'grant me\n' >"$T/msg"
expect_exit 0 "${PAY[@]}" sign pay-1 --in "$T/msg"
sig=$HK_OUT
expect_exit 3 "${PAY[@]}" sign ops-1 --in "$T/msg"
check "denial names the operation and key: $HK_ERR" \
    grep -q "ops-1" "$T/err"
expect_exit 3 "${PAY[@]}" rotate pay-1
expect_exit 3 "${PAY[@]}" create pay-2
expect_exit 3 "${PAY[@]}" verify pay-1 --sig "$sig" --in "$T/msg"
expect_exit 3 "${PAY[@]}" client list
expect_exit 3 "${PAY[@]}" client add evil --grant 'admin:*'
expect_exit 3 "${VER[@]}" sign pay-1 --in "$T/msg"
expect_exit 3 "${VER[@]}" sign ops-1 --in "$T/msg"
expect_exit 0 "${VER[@]}" verify pay-1 --sig "$sig" --in "$T/msg"
expect_exit 3 "${VER[@]}" rotate ops-1
expect_exit 0 hk sign ops-1 --in "$T/msg"
expect_exit 0 hk sign pay-1 --in "$T/msg"
expect_exit 0 hk verify pay-1 --sig "$sig" --in "$T/msg"
expect_exit 0 hk rotate ops-1
expect_exit 0 hk create adm-1
expect_exit 0 hk client list
expect_versions pay-1 "primary 1" "v1 active"
# grants of every shape: a name, "prefix*", "*", and other globs (fnmatch)
expect_exit 0 hk create pay-x
expect_exit 0 hk client add globs --grant 'sign:p?y-[0-9]' \
    --grant 'verify:ops-1' --grant 'pubkey:*' --out "$T/globs.cred"
GLOBS=("$HSMKEY" --credentials "$T/globs.cred")
expect_exit 0 "${GLOBS[@]}" sign pay-1 --in "$T/msg"
expect_exit 3 "${GLOBS[@]}" sign pay-x --in "$T/msg"
expect_exit 3 "${GLOBS[@]}" sign ops-1 --in "$T/msg"
expect_exit 0 "${GLOBS[@]}" pubkey pay-x
expect_exit 1 "${GLOBS[@]}" verify ops-1 --sig "$sig" --in "$T/msg"
expect_exit 3 "${GLOBS[@]}" verify pay-1 --sig "$sig" --in "$T/msg"

# ---- client rotate + revoke under a running signer ----------------------
expect_exit 0 hk client add svc --grant 'sign:loop-*' --out "$T/svc.cred"
cp -p "$T/svc.cred" "$T/svc-old.cred"
"$SIGNER_LOOP" "$T/svc.cred" loop-1 4 "$T/loop.stop" 90 \
    >"$T/loop.out" 2>"$T/loop.err" &
loop_pid=$!
HK_PIDS+=("$loop_pid")
sleep 1.5
expect_exit 0 hk client rotate svc --out "$T/svc-new.cred"
check "the new credentials are secret 2" \
    test "$(cred_value "$T/svc-new.cred" secret_no)" = 2
# the operator installs the new file atomically over the old one
cp -p "$T/svc-new.cred" "$T/.svc.cred.tmp"
mv "$T/.svc.cred.tmp" "$T/svc.cred"
sleep 2.5
# svc_secrets EXPR: the Python expression EXPR holds for the secrets of
# client svc in `hk --json client list` (s: that list; num(x): a secret's
# number; used(x): whether it has a last use).
svc_secrets()
{
	hk --json client list | "$HK_PYTHON" -c '
import json, sys
def find(o):
    if isinstance(o, dict):
        if o.get("id") == "svc":
            return o
        for v in o.values():
            r = find(v)
            if r: return r
    elif isinstance(o, list):
        for v in o:
            r = find(v)
            if r: return r
s = find(json.load(sys.stdin))["secrets"]
def num(x): return x.get("number", x.get("secret_no"))
def used(x): return bool(x.get("last_used_ms") or x.get("last_used"))
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"
}
check "before the revoke, the signers already use secret 2 (reloaded)" \
    svc_secrets 'any(num(x) == 2 and used(x) for x in s)'
expect_exit 0 hk client revoke svc --secret 1
# at once: the very next request with the old secret is refused
expect_exit 3 "$HSMKEY" --credentials "$T/svc-old.cred" sign loop-1 \
    --in "$T/msg"
check "the refusal says only 'not authenticated': $HK_ERR" \
    sh -c 'grep -q "not authenticated" "$1" && ! grep -q -i "unknown-secret\|revoked" "$1"' sh "$T/err"
check "the service log says the secret is unknown (or revoked)" \
    grep -q "svc' secret 1: unknown-secret" "$HK_LOG"
expect_exit 0 "$HSMKEY" --credentials "$T/svc-new.cred" sign loop-1 \
    --in "$T/msg"
sleep 1.5
signer_loop_end "$loop_pid" "$T/loop.stop" "$T/loop.out" "$T/loop.err" \
    "across rotate + revoke"
check "svc holds only secret 2 now, and it was used" svc_secrets \
    '[num(x) for x in s] == [2] and any(used(x) for x in s)'

# ---- no secret in logs, error messages or argv --------------------------
ps -eo args >"$T/ps.txt"
{
	printf '%s\n' "$PIN"
	for f in "$T"/*.cred; do
		s=$(cred_value "$f" secret)
		[ -n "$s" ] || continue
		printf '%s\n' "$s"
		printf '%s' "$s" | base64 -d 2>/dev/null | xxd -p -c256
	done
} | sort -u | grep -v '^$' >"$T/needles"
check "needles: the PIN and every secret ($(wc -l <"$T/needles"))" \
    test "$(wc -l <"$T/needles")" -ge 9
check "no PIN or secret in any daemon log, stderr or ps output" \
    sh -c '! grep -l -F -f "$1/needles" "$1"/hsmkeyd.*.log \
    "$1/captured.stderr" "$1/ps.txt" "$1"/*.err 2>/dev/null' sh "$T"
hk_stop

# ---- after the clock window: the captured rotate is refused ------------
sed -e 's/^clock_window = .*/clock_window = 2s/' "$T/hsmkeyd.conf" \
    >"$T/window2.conf"
hk_start "$T/window2.conf" || exit 1
run_prog late "$AUTH_RULES" late "$T/admin.cred" "$ADMIN_URL" rk 2500
check "rk: the late replays made no version (3 versions)" \
    test "$(nversions rk)" -eq 3
# up for 5 s now: -1 s passes, +-2.5 s and +-3 s do not
run_prog clock2 "$AUTH_RULES" clock "$T/admin.cred" "$ADMIN_URL" 2000
hk_stop

# ---- an expired secret is refused -------------------------------------
sed -e 's/^secret_lifetime = .*/secret_lifetime = 3s/' "$T/hsmkeyd.conf" \
    >"$T/life3.conf"
hk_start "$T/life3.conf" || exit 1
expect_exit 0 hk client add brief --grant 'sign:pay-*' --out "$T/brief.cred"
expect_exit 0 "$HSMKEY" --credentials "$T/brief.cred" sign pay-1 \
    --in "$T/msg"
sleep 4
expect_exit 3 "$HSMKEY" --credentials "$T/brief.cred" sign pay-1 \
    --in "$T/msg"
check "the refusal does not say that the secret expired: $HK_ERR" \
    sh -c 'grep -q "not authenticated" "$1" && ! grep -q "secret-expired" "$1"' sh "$T/err"
check "the service log says it expired" \
    grep -q "brief' secret 1: secret-expired" "$HK_LOG"
expect_exit 0 hk sign pay-1 --in "$T/msg"
hk_stop
hk_finish
