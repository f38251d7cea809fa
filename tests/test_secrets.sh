#!/usr/bin/env bash
#
# test_secrets.sh: PINs and client secrets never reach a log line, an error
# message or argv (DESIGN.md, STYLE.md 5).  Runs the daemon at log_level
# debug through successes and failures, then greps every log and every
# captured stderr for the PIN and the secrets (base64 and hex), and reads
# the daemon's argv.  Also: credentials files and the PIN file are 0600,
# and the daemon dumps no core.

. "$(dirname "$0")/lib.sh"

HK_LOG_LEVEL=debug
hk_setup --tcp
hk_start || exit 1

MSG=$T/msg
printf 'secret santa\n' >"$MSG"

expect_exit 0 hk health
expect_exit 0 hk create s1
expect_exit 0 hk create s2 --alg rsa-2048
expect_exit 0 hk sign s1 --in "$MSG"
expect_exit 0 hk verify s1 --sig "$HK_OUT" --in "$MSG"
expect_exit 0 hk rotate s1
expect_exit 0 hk --connect "$HK_TCP_URL" sign s2 --in "$MSG"
expect_exit 0 hk client add svc --grant 'sign:s*' --out "$T/svc.cred"
expect_exit 0 "$HSMKEY" --credentials "$T/svc.cred" sign s1 --in "$MSG"
expect_exit 3 "$HSMKEY" --credentials "$T/svc.cred" create nope
expect_exit 0 hk client rotate svc
expect_exit 0 hk client list
expect_exit 0 hk stats
# Failures that log: a wrong secret, an unknown client, a bad argument.
sed -e "s|^\([[:space:]]*secret[[:space:]]*=\).*|\1 $(openssl rand -base64 32)|" \
    "$T/admin.cred" >"$T/wrong.cred"
chmod 600 "$T/wrong.cred"
expect_exit 3 "$HSMKEY" --credentials "$T/wrong.cred" list
expect_exit 2 hk sign s1 --digest zz
expect_exit 4 hk sign nokey --in "$MSG"

# The PIN and the secrets, in the forms a careless log line would use.
secrets_of()
{
	local s hex
	s=$(cred_value "$1" secret)
	[ -n "$s" ] || return 0
	printf '%s\n' "$s"
	hex=$(printf '%s' "$s" | base64 -d 2>/dev/null | xxd -p -c256)
	[ -n "$hex" ] && printf '%s\n%s\n' "$hex" "${hex^^}"
}
{
	printf '%s\n' "$PIN"
	secrets_of "$T/admin.cred"
	secrets_of "$T/svc.cred"
} >"$T/needles"
check "the needles are not empty" test "$(wc -l <"$T/needles")" -ge 4

not_grep()
{
	! grep -q -F -e "$1" "$2"
}

not_in()
{
	[ -n "$1" ] || return 1
	case $2 in
	*"$1"*) return 1 ;;
	esac
	return 0
}

# no_needles FILE: FILE (if it exists) holds none of the needles.
no_needles()
{
	[ -e "$1" ] || return 0
	! grep -q -F -f "$T/needles" "$1"
}

pid=$HK_PID
# Everything that is meant for humans: daemon logs, bootstrap output, the
# CLI's stderr.  The CLI's stdout is exempt only where a secret is shown
# on purpose (client add / client rotate), so only the PIN is searched
# there.
haystack=("$T"/hsmkeyd.*.log "$T"/hsmkeyd.*.out "$T/bootstrap.log"
    "$T/bootstrap.out" "$T/captured.stderr")
leaks=0
while read -r needle; do
	[ -n "$needle" ] || continue
	if grep -l -F -e "$needle" "${haystack[@]}" 2>/dev/null; then
		leaks=$((leaks + 1))
	fi
done <"$T/needles"
check "no PIN or secret in any log or stderr" test "$leaks" -eq 0
check "no PIN on any stdout" \
    not_grep "$PIN" "$T/captured.stdout"
check "the audit log holds no secret or PIN" \
    no_needles "$T/audit.log"
check "the metrics file holds no secret or PIN" \
    no_needles "$T/hsmkey.prom"

args=$(ps -o args= -p "$pid")
check "hsmkeyd is running: $args" test -n "$args"
check "hsmkeyd argv has no PIN" not_in "$PIN" "$args"
check "hsmkeyd argv has no secret" \
    not_in "$(cred_value "$T/admin.cred" secret)" "$args"
check "hsmkeyd does not dump core (RLIMIT_CORE 0)" \
    grep -q -E '^Max core file size +0 +' "/proc/$pid/limits"

check "PIN file is 0600" test "$(stat -c %a "$T/pin")" = 600
check "admin.cred is 0600" test "$(stat -c %a "$T/admin.cred")" = 600
check "svc.cred is 0600" test "$(stat -c %a "$T/svc.cred")" = 600

hk_stop
# The daemon may log at exit too.
leaks=0
while read -r needle; do
	[ -n "$needle" ] || continue
	if grep -l -F -e "$needle" "$T"/hsmkeyd.*.log 2>/dev/null; then
		leaks=$((leaks + 1))
	fi
done <"$T/needles"
check "no PIN or secret in the log after stop" test "$leaks" -eq 0
hk_finish
