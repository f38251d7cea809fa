#!/usr/bin/env bash
#
# test_hygiene.sh: secret hygiene and planted files (issue 12).
#   - a revoked secret is refused at once although its day key was cached
#     by the request before;
#   - the day keys live in locked pages core dumps leave out: a mapping of
#     the running hsmkeyd with "lo" and "dd" in its VmFlags, VmLck > 0;
#   - the metrics file: symlinks planted at PATH.tmp (the old temp name,
#     pointing at the audit log) and at PATH itself (pointing at a victim)
#     are never written through; the file is written; a directory others
#     may write is warned about, with and without the sticky bit;
#   - client rotate / client revoke refuse an invalid client id in the CLI
#     (exit 2, one line, before any request) and in the service.

. "$(dirname "$0")/lib.sh"

hk_setup
DIR=$T/textfile
PROM=$DIR/hsmkey.prom
mkdir -m 0777 "$DIR" || exit 1
chmod 0777 "$DIR" # whatever the umask
sed -i -e "s|^path = $T/hsmkey.prom\$|path = $PROM\\ninterval = 1s|" \
    "$T/hsmkeyd.conf"
printf 'precious\n' >"$T/victim"
ln -s "$T/audit.log" "$PROM.tmp"
ln -s "$T/victim" "$PROM"
printf 'sign me\n' >"$T/msg"
hk_start || exit 1

note "---- a revoked secret, its day key cached"
expect_exit 0 hk create hy
expect_exit 0 hk client add bob --grant sign:hy --out "$T/bob1.cred"
expect_exit 0 "$HSMKEY" --credentials "$T/bob1.cred" sign hy --in "$T/msg"
expect_exit 0 hk client rotate bob --out "$T/bob2.cred"
expect_exit 0 "$HSMKEY" --credentials "$T/bob1.cred" sign hy --in "$T/msg"
expect_exit 0 hk client revoke bob --secret 1
expect_exit 3 "$HSMKEY" --credentials "$T/bob1.cred" sign hy --in "$T/msg"
expect_one_line_error
expect_exit 0 "$HSMKEY" --credentials "$T/bob2.cred" sign hy --in "$T/msg"

note "---- locked, undumpable day keys"
check "a mapping of hsmkeyd is left out of dumps" \
    grep -q -E '^VmFlags:.* dd( |$)' "/proc/$HK_PID/smaps"
# ASan's mlock() interceptor locks nothing; without CAP_IPC_LOCK a
# RLIMIT_MEMLOCK of 0 refuses every lock (secmem.h: best effort)
if hk_asan_build; then
	note "under ASan: mlock is a no-op, lock figures not checked"
elif [ "$(id -u)" -ne 0 ] && [ "$(ulimit -l)" = 0 ]; then
	note "RLIMIT_MEMLOCK is 0 here: lock figures not checked"
else
	check "a mapping of hsmkeyd is locked and left out of dumps" \
	    grep -q -E '^VmFlags:.* lo( |$).* dd( |$)' "/proc/$HK_PID/smaps"
	lck=$(sed -n -e 's/^VmLck:[[:space:]]*\([0-9]*\) kB/\1/p' \
	    "/proc/$HK_PID/status")
	check "VmLck of hsmkeyd is ${lck:-?} kB (> 0)" test "${lck:-0}" -gt 0
fi

note "---- the metrics file and planted links"
for ((i = 0; i < 50; i++)); do
	[ -f "$PROM" ] && [ ! -L "$PROM" ] && break
	sleep 0.1
done
check "the metrics file is a file of its own (the link at it replaced)" \
    test -f "$PROM" -a ! -L "$PROM"
check "the metrics file is written" grep -q '^hsmkey_up 1' "$PROM"
check "the victim of the link at PATH is intact" \
    test "$(cat "$T/victim")" = precious
check "the link at PATH.tmp is left alone" test -L "$PROM.tmp"
check "the audit log it points at has no metrics in it" \
    test "$(grep -c '^# HELP' "$T/audit.log")" -eq 0
expect_exit 0 hk audit verify "$T/audit.log"
check "no temp file is left beside it" \
    test "$(find "$DIR" -name 'hsmkey.prom.tmp.*' | wc -l)" -eq 0
check "the file is readable by others (node_exporter)" \
    test "$(stat -c %a "$PROM")" = 644
check "a directory others may write is warned about" \
    grep -q "metrics: directory $DIR is writable by others: they may" \
    "$HK_LOG"
hk_stop
chmod 1777 "$DIR"
hk_start || exit 1
check "... with the sticky bit too, saying what is left" \
    grep -q "metrics: directory $DIR is writable by others (sticky)" \
    "$HK_LOG"

note "---- client ids in client rotate / client revoke"
for id in 'bad id!' 'a/../b' "x$(printf '%064d' 0)"; do
	# nothing listens there: the CLI refuses before any request
	expect_exit 2 "$HSMKEY" --credentials "$T/admin.cred" \
	    --connect "ipc://$T/nobody.sock" --timeout 2 client rotate "$id"
	expect_one_line_error
	expect_exit 2 "$HSMKEY" --credentials "$T/admin.cred" \
	    --connect "ipc://$T/nobody.sock" --timeout 2 \
	    client revoke "$id" --secret 1
	expect_one_line_error
done
check "the CLI names the id and the rule" \
    grep -q "invalid client id 'x0*': use" "$T/err"
hk_stop
hk_finish
