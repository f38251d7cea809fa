#!/usr/bin/env bash
#
# test_harden.sh: hsmkeyd refuses to start on what it must not trust
# (issue 12, hardening), each time at once, with exit 3 and one line
# naming the file:
#   - a PIN file open to group or others (0644, 0640, 0604), a symbolic
#     link to a good PIN file, a PIN file owned by another user (as root);
#   - a wrong PIN: no retry, no "ready"; also without --foreground, where
#     the command that daemonises waits: exit 3 and the line, or exit 0
#     once the daemon serves;
#   - a module that is not on [pkcs11] allowed_modules (compared after
#     realpath(): a list naming a link to the module takes it), or that
#     group or others may write (the same file 0755 is loaded);
# and, built with libsystemd, the Type=notify protocol: READY=1 arrives
# once, only when the ipc listener accepts connections and the service
# answers, STOPPING=1 at SIGTERM, and nothing when the start is refused.

. "$(dirname "$0")/lib.sh"

hk_setup
cp "$T/pin" "$T/pin.good"

# refused_start WHAT NEEDLE [CONF]: hsmkeyd exits 3 within 10 s
# without getting ready, with one line on stderr that holds NEEDLE.
refused_start()
{
	local what=$1 needle=$2 conf=${3:-$T/hsmkeyd.conf} t0
	t0=${EPOCHREALTIME/./}
	hk_run timeout $((10 * HK_TIME_SCALE)) "$HSMKEYD" --config "$conf" \
	    --foreground </dev/null
	if [ "$HK_RC" -ne 3 ]; then
		hk_run_failed "$what: hsmkeyd exited $HK_RC, want 3 (refused)"
		return 1
	fi
	ok "$what: refused (exit $HK_RC) in $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
	expect_one_line_error
	check "$what: the line names $needle" grep -q -F -- "$needle" "$T/err"
	check "$what: never ready" not_grep ready "$T/err"
}

not_grep()
{
	! grep -q -F -- "$1" "$2"
}

note "---- the PIN file"
for mode in 644 640 604; do
	chmod "$mode" "$T/pin"
	refused_start "PIN file mode $mode" "$T/pin"
	check "mode $mode: the line says why" grep -q 'open to group or others' "$T/err"
done
chmod 600 "$T/pin"
mv "$T/pin" "$T/pin.real"
ln -s "$T/pin.real" "$T/pin"
refused_start "PIN file a symbolic link" "$T/pin"
check "symlink: the line says so" grep -q 'symbolic link' "$T/err"
rm -f "$T/pin"
mv "$T/pin.real" "$T/pin"
if [ "$(id -u)" -eq 0 ]; then
	chown 4242:4242 "$T/pin"
	refused_start "PIN file of another user" "$T/pin"
	chown 0:0 "$T/pin"
else
	note "not root: the owner check is not exercised"
fi

note "---- a wrong PIN"
(umask 077 && printf 'not-the-pin\n' >"$T/pin")
refused_start "wrong PIN" "refused the PIN in $T/pin"
check "wrong PIN: the PIN is not in the line" not_grep "$PIN" "$T/err"
cp "$T/pin.good" "$T/pin"

note "---- without --foreground: the command waits for ready, or fails"
(umask 077 && printf 'not-the-pin\n' >"$T/pin")
t0=${EPOCHREALTIME/./}
hk_run timeout $((10 * HK_TIME_SCALE)) "$HSMKEYD" --config "$T/hsmkeyd.conf" </dev/null
check "daemonising with a wrong PIN exits 3 (exit $HK_RC)" test "$HK_RC" -eq 3
expect_one_line_error
check "... naming the PIN file" grep -q -F "refused the PIN in $T/pin" "$T/err"
cp "$T/pin.good" "$T/pin"
hk_run timeout $((10 * HK_TIME_SCALE)) "$HSMKEYD" --config "$T/hsmkeyd.conf" </dev/null
ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
check "daemonising with the right PIN exits 0 once ready (exit $HK_RC, $ms ms for both)" \
    test "$HK_RC" -eq 0
DPID=$(pgrep -f -x "$HSMKEYD --config $T/hsmkeyd.conf" | head -n 1)
if check "the daemon runs: ${DPID:-none}" test -n "$DPID"; then
	HK_PIDS+=("$DPID")
	expect_exit 0 hk health
	kill -TERM "$DPID"
	check "the daemon stops on SIGTERM" hk_wait_exit "$DPID" 15
fi

note "---- [pkcs11] allowed_modules"
cp "$T/hsmkeyd.conf" "$T/off-list.conf"
printf '[pkcs11]\nallowed_modules = %s\n' "$T/nonesuch.so" >>"$T/off-list.conf"
refused_start "module off the list" "$SOFTHSM_MODULE" "$T/off-list.conf"
check "off the list: the line says so" grep -q 'not on the configured list' "$T/err"
ln -s "$(readlink -f "$SOFTHSM_MODULE")" "$T/module-link.so"
cp "$T/hsmkeyd.conf" "$T/on-list.conf"
printf '[pkcs11]\nallowed_modules = %s %s\n' "$T/nonesuch.so" \
    "$T/module-link.so" >>"$T/on-list.conf"
if hk_start "$T/on-list.conf"; then
	ok "a module on the list (by a link to it) is loaded"
	expect_exit 0 hk health
	hk_stop
fi

note "---- a module others may write"
cp "$(readlink -f "$SOFTHSM_MODULE")" "$T/open-module.so"
chmod 0666 "$T/open-module.so"
sed -e "s|^module = .*|module = $T/open-module.so|" "$T/hsmkeyd.conf" \
    >"$T/open-module.conf"
refused_start "module of mode 0666" "$T/open-module.so" "$T/open-module.conf"
check "mode 0666 module: the line says why" grep -q 'only root or' "$T/err"
chmod 0755 "$T/open-module.so"
if hk_start "$T/open-module.conf"; then
	ok "the same module of mode 0755 is loaded"
	hk_stop
fi

note "---- sd_notify readiness (NOTIFY_SOCKET)"
if [ "${HK_SYSTEMD:-0}" != 1 ]; then
	note "SKIP: built without libsystemd (-Dsystemd=disabled)"
	hk_finish
fi
# listen NAME: a notify_listen.py on $T/NAME.sock writing $T/NAME.out;
# its PID in $LPID once it listens.
listen()
{
	local i
	"$HK_PYTHON" "$(dirname "$0")/notify_listen.py" "$T/$1.sock" \
	    "$T/$1.out" "$T/hsmkey.sock" $((60 * HK_TIME_SCALE)) &
	LPID=$!
	HK_PIDS+=("$LPID")
	for ((i = 0; i < 100; i++)); do
		grep -q listening "$T/$1.out" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "notify_listen.py did not start"
	return 1
}

listen refused || exit 1
(umask 077 && printf 'not-the-pin\n' >"$T/pin")
NOTIFY_SOCKET=$T/refused.sock refused_start "wrong PIN under systemd" "$T/pin"
cp "$T/pin.good" "$T/pin"
check "a refused start sends no READY=1" not_grep READY=1 "$T/refused.out"
kill "$LPID" 2>/dev/null
hk_wait_exit "$LPID" 5

listen notify || exit 1
NOTIFY_SOCKET=$T/notify.sock hk_start || exit 1
for ((i = 0; i < 100; i++)); do
	grep -q '^connect' "$T/notify.out" && break
	sleep 0.05
done
check "READY=1 arrived" grep -q -x 'READY=1' "$T/notify.out"
check "READY=1 came when the ipc listener accepted connections" \
    grep -q -x 'connect ok' "$T/notify.out"
expect_exit 0 hk health
hk_stop
if hk_wait_exit "$LPID" 5; then
	ok "the listener ended at STOPPING=1"
else
	fail "no STOPPING=1 within 5 s"
fi
check "STOPPING=1 arrived at SIGTERM" grep -q -x 'STOPPING=1' "$T/notify.out"
check "READY=1 was sent once" [ "$(grep -c -x 'READY=1' "$T/notify.out")" -eq 1 ]
sed -e 's/^/    notify: /' "$T/notify.out"
hk_finish
