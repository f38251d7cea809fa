#!/usr/bin/env bash
#
# test_manuals.sh: the man pages and the bash completion.
#
# Man pages (build/docs, made by scdoc): each renders with `man -l` and
# `groff -man -ww -z` without a warning; every command and flag that
# `hsmkey help` lists is in hsmkey(1) (the page cannot fall behind the
# command line); every key hsmkeyd.conf(5) documents is in the service's
# table of keys (service/config.c), and every key of the table is
# documented.
#
# Completion (dist/hsmkey.bash, sourced in bash): registered for hsmkey;
# commands, subcommands and flags as `hsmkey help` has them; key names
# from a running hsmkeyd for NAME; files for --in; nothing, quietly and
# fast, when the service cannot be reached.
#
# Skipped (exit 77) only when scdoc is missing (scripts/deps.sh installs
# it): MAN_DIR is then not set.

. "$(dirname "$0")/lib.sh"

if [ -z "${MAN_DIR:-}" ]; then
	echo "SKIP: scdoc not found at configure time: no man pages built" \
	    "(apt-get install scdoc, or scripts/deps.sh)"
	exit 77
fi
: "${SOURCE_DIR:?SOURCE_DIR must name the source tree}"
COMPLETION=$SOURCE_DIR/dist/hsmkey.bash

hk_setup
hk_start || exit 1

# --------------------------------------------------------------- man pages
for page in hsmkey.1 hsmkeyd.8 hsmkeyd.conf.5 hsmkey-admin.8; do
	f=$MAN_DIR/$page
	if [ ! -s "$f" ]; then
		fail "$page was not built"
		continue
	fi
	MANWIDTH=80 man -l "$f" >"$T/$page.txt" 2>"$T/$page.warn"
	check "man -l $page renders without a warning" \
	    test ! -s "$T/$page.warn" -a -s "$T/$page.txt"
	groff -man -ww -z "$f" >"$T/$page.groff" 2>&1
	check "groff -man -ww finds nothing in $page" test ! -s "$T/$page.groff"
	check "$page has NAME, SYNOPSIS and SEE ALSO" \
	    grep -q -x -e NAME -e SYNOPSIS -e 'SEE ALSO' "$T/$page.txt"
done
sed -n '/warning/p' "$T"/*.warn | head -n 5

# the commands of `hsmkey help`, one usage per line (continuations joined)
"$HSMKEY" help >"$T/help.txt"
awk '/^Commands:/ { on = 1; next }
	/^[^ ]/ { if (cur != "") print cur; cur = ""; on = 0 }
	!on { next }
	/^  [a-z]/ { if (cur != "") print cur; sub(/^ +/, ""); cur = $0; next }
	/^    [^ ]/ && cur != "" { sub(/^ +/, ""); cur = cur " " $0 }
	END { if (cur != "") print cur }' "$T/help.txt" >"$T/usages"
check "hsmkey help lists 15 commands or more" \
    test "$(wc -l <"$T/usages")" -ge 15
# a command's words: the first, and the second when it is a subcommand
cmd_of()
{
	awk '{ if ($2 ~ /^[a-z]/) print $1 " " $2; else print $1 }'
}
cmd_of <"$T/usages" >"$T/commands"
# the page's text with the hyphenation man adds taken out
sed -e 's/\xe2\x80\x90$//' "$T/hsmkey.1.txt" | tr -s ' ' >"$T/hsmkey.1.flat"
missing=0
while read -r cmd; do
	if ! grep -q -E "^ ${cmd}( |\$)" "$T/hsmkey.1.flat"; then
		fail "hsmkey(1) has no entry for '$cmd'"
		missing=$((missing + 1))
	fi
done <"$T/commands"
check "every command of hsmkey help has its entry in hsmkey(1)" \
    test "$missing" -eq 0
missing=0
grep -o -E -e '--[a-z][a-z0-9-]*' "$T/help.txt" | sort -u >"$T/flags"
while read -r flag; do
	if ! grep -q -F -e "$flag" "$MAN_DIR/hsmkey.1"; then
		fail "hsmkey(1) never names $flag"
		missing=$((missing + 1))
	fi
done <"$T/flags"
check "every flag of hsmkey help ($(wc -l <"$T/flags")) is in hsmkey(1)" \
    test "$missing" -eq 0

# the config keys: "section key" from the page's source and from the table
awk '/^## \[[a-z0-9]+\]/ { s = substr($2, 2, length($2) - 2); next }
	/^# / { s = "" }
	s != "" && /^\*[a-z_]+\* =/ { k = $1; gsub(/\*/, "", k); print s, k }' \
    "$SOURCE_DIR/docs/hsmkeyd.conf.5.scd" | sort >"$T/keys.page"
sed -n '/^static const struct cfg_key keys\[\] = {/,/^};/p' \
    "$SOURCE_DIR/service/config.c" |
    grep -o -E '"[a-z0-9]+", "[a-z_]+"' | tr -d '",' | sort >"$T/keys.table"
check "hsmkeyd.conf(5) documents 30 keys or more" \
    test "$(wc -l <"$T/keys.page")" -ge 30
comm -23 "$T/keys.page" "$T/keys.table" >"$T/keys.unknown"
comm -13 "$T/keys.page" "$T/keys.table" >"$T/keys.undocumented"
check "every key of hsmkeyd.conf(5) is one hsmkeyd knows" \
    test ! -s "$T/keys.unknown"
sed -e 's/^/    unknown: /' "$T/keys.unknown"
check "every key hsmkeyd knows is in hsmkeyd.conf(5)" \
    test ! -s "$T/keys.undocumented"
sed -e 's/^/    undocumented: /' "$T/keys.undocumented"

# -------------------------------------------------------------- completion
expect_exit 0 hk create alpha
expect_exit 0 hk create beta --alg ed25519
mkdir "$T/files" && : >"$T/files/msg-one" && : >"$T/files/msg-two"

# comp WORD...: COMPREPLY, one per line, for the command line "hsmkey
# WORD..." with the cursor at the end of the last WORD (the environment's
# HSMKEY_CREDENTIALS is the admin's).
comp()
{
	HSMKEY_CREDENTIALS=${COMP_CRED:-$T/admin.cred} bash -c '
		. "$1" || exit 1
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_hsmkey
		printf "%s\n" "${COMPREPLY[@]}"' _ "$COMPLETION" "$HSMKEY" "$@" |
	    sed -e '/^$/d' | sort
}

check "complete -p hsmkey: registered as _hsmkey" \
    bash -c '. "$1" && complete -p hsmkey | grep -q -e "-F _hsmkey hsmkey"' \
    _ "$COMPLETION"
check "hsmkey ro<TAB>: rotate" test "$(comp ro)" = rotate
check "hsmkey <TAB>: every command" \
    test "$(comp '')" = "$(awk '{ print $1 }' "$T/commands" | sort -u)"
check "hsmkey client <TAB>: the client subcommands" \
    test "$(comp client '')" = "$(awk '$1 == "client" { print $2 }' \
    "$T/commands" | sort)"
want=$(awk '$1 == "rotate"' "$T/usages" | grep -o -E -e '--e[a-z-]*' |
    sort -u)
note "hsmkey rotate --e<TAB> gives: $(comp rotate --e | tr '\n' ' ')"
check "hsmkey rotate --e<TAB>: the --e flags of rotate (--expect among them)" \
    test "$(comp rotate --e)" = "$want" -a -n "$(comp rotate --e |
    grep -x -e --expect)"
bad=0
while read -r line; do
	cmd=$(cmd_of <<<"$line")
	want=$(grep -o -E -e '--[a-z][a-z0-9-]*' <<<"$line" | sort -u)
	read -r -a cmdw <<<"$cmd"
	got=$(comp "${cmdw[@]}" -- | grep -x -F -f <(printf '%s\n' "$want"))
	if [ "$got" != "$want" ]; then
		fail "hsmkey $cmd --<TAB> lacks some of: ${want//$'\n'/ }"
		bad=1
	fi
done <"$T/usages"
check "every command's flags complete after --" test "$bad" -eq 0
check "hsmkey --cred<TAB>: --credentials" \
    test "$(comp --cred)" = --credentials
check "hsmkey create k --alg e<TAB>: the ECDSA and Ed25519 algorithms" \
    test "$(comp create k --alg e | tr '\n' ' ')" = \
    "ecdsa-p256 ecdsa-p384 ed25519 "
t0=${EPOCHREALTIME/./}
names=$(comp sign '')
note "hsmkey sign <TAB> with the service up: $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
check "hsmkey sign <TAB>: the keys made here" \
    bash -c 'grep -q -x alpha <<<"$1" && grep -q -x beta <<<"$1"' _ "$names"
check "hsmkey sign al<TAB>: alpha" test "$(comp sign al)" = alpha
check "hsmkey verify b<TAB> after --sig X: beta" \
    test "$(comp verify --sig X b)" = beta
check "hsmkey rotate --expect 1 a<TAB>: alpha" \
    test "$(comp rotate --expect 1 a)" = alpha
expect_exit 0 hk client add svc-one --grant 'sign:alpha' --out "$T/svc.cred"
check "hsmkey client revoke s<TAB>: the client made here" \
    test "$(comp client revoke s)" = svc-one
check "hsmkey client add s<TAB>: nothing (a new id)" \
    test -z "$(comp client add s)"
check "hsmkey sign alpha <TAB>: nothing (one NAME)" test -z "$(comp sign alpha '')"
check "hsmkey sign --in .../msg-<TAB>: the files" \
    test "$(comp sign --in "$T/files/msg-" | tr '\n' ' ')" = \
    "$T/files/msg-one $T/files/msg-two "
check "hsmkey audit verify .../msg-o<TAB>: a file" \
    test "$(comp audit verify "$T/files/msg-o")" = "$T/files/msg-one"

# the service away: no names, nothing printed, within the 1 s connect timeout
sed -e "s|^connect *=.*|connect = ipc://$T/nobody.sock|" "$T/admin.cred" \
    >"$T/away.cred"
chmod 600 "$T/away.cred"
t0=${EPOCHREALTIME/./}
COMP_CRED=$T/away.cred comp sign '' >"$T/away.out" 2>"$T/away.err"
ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
note "completion with the service away: ${ms} ms"
check "service away: no completion, nothing on stdout or stderr" \
    test ! -s "$T/away.out" -a ! -s "$T/away.err"
check "service away: back within 2.5 s" test "$ms" -lt 2500

hk_stop
hk_finish
