# shellcheck shell=bash
#
# bash completion for hsmkey(1): commands, client/audit subcommands, each
# command's flags, key names for NAME (from `hsmkey --json list`), client
# ids for ID (`hsmkey --json client list`; not for client add), files for
# FILE arguments and for --in, --out, --credentials, --pubkey.
#
# The commands and flags come from `hsmkey help` of the hsmkey being
# completed (the word typed: hsmkey, ./build/client/hsmkey), read once per
# binary and shell, so this file never falls behind the command line.  Key
# names and client ids ask the service with short timeouts (--connect-timeout 1
# --timeout 2) and the --credentials/--connect given on the line; when it
# cannot be reached nothing is offered and nothing is printed.
#
# Installed as bash-completion's completions/hsmkey; or `. dist/hsmkey.bash`.

# _hsmkey_help BIN: `BIN help`, cached in _hsmkey_help_text.
_hsmkey_help()
{
	if [ "${_hsmkey_help_bin:-}" != "$1" ] ||
	    [ -z "${_hsmkey_help_text:-}" ]; then
		_hsmkey_help_text=$("$1" help 2>/dev/null) || _hsmkey_help_text=
		_hsmkey_help_bin=$1
	fi
}

# _hsmkey_usages: one line per command, "NAME WORDS..." (its usage line
# and the continuation lines joined), from the "Commands:" part of help.
_hsmkey_usages()
{
	printf '%s\n' "$_hsmkey_help_text" | awk '
		/^Commands:/ { on = 1; next }
		/^[^ ]/ { if (cur != "") print cur; cur = ""; on = 0 }
		!on { next }
		/^  [a-z]/ { if (cur != "") print cur; sub(/^ +/, ""); cur = $0; next }
		/^    [^ ]/ && cur != "" { sub(/^ +/, ""); cur = cur " " $0 }
		END { if (cur != "") print cur }'
}

# _hsmkey_global_flags: the global options of help's usage and options.
_hsmkey_global_flags()
{
	printf '%s\n' "$_hsmkey_help_text" | awk '
		/^usage:/ { u = 1 } /^$/ { u = 0 }
		/^Global options/ { g = 1; next }
		u || (g && /^  --/) { print }' |
	    grep -o -E -e '--[a-z][a-z0-9-]*' | sort -u
}

# _hsmkey_names BIN FIELD COMMAND WORDS...: the FIELD values of `BIN
# --json COMMAND` (list: "name", client list: "id"), using the global
# --credentials/--connect among WORDS; nothing when it cannot be reached.
_hsmkey_names()
{
	local bin=$1 field=$2 sub=() args=() i
	read -r -a sub <<<"$3"
	shift 3
	for ((i = 1; i < $#; i++)); do
		case ${!i} in
		--credentials | --connect)
			args+=("${!i}")
			i=$((i + 1))
			args+=("${!i}")
			;;
		esac
	done
	"$bin" "${args[@]}" --connect-timeout 1 --timeout 2 --json "${sub[@]}" \
	    2>/dev/null </dev/null |
	    grep -o -E "\"$field\" *: *\"[^\"]*\"" |
	    sed -e 's/.*"\([^"]*\)"$/\1/'
}

_hsmkey()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev='' bin=${COMP_WORDS[0]}
	local words=() w i cmd='' usage=() u flags npos nw metas meta valued
	COMPREPLY=()
	[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
	_hsmkey_help "$bin"
	[ -n "$_hsmkey_help_text" ] || return 0

	# the words before the cursor, less global options and their values
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--credentials | --connect | --timeout | --connect-timeout | \
		    --reason)
			i=$((i + 1))
			;;
		*) words+=("$w") ;;
		esac
	done
	case $prev in
	--credentials | --in | --out | --pubkey)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0
		;;
	--alg)
		mapfile -t COMPREPLY < <(compgen -W "$(printf '%s\n' \
		    "$_hsmkey_help_text" | grep -o -E \
		    '(ecdsa-p[0-9]+|ed25519|rsa-[0-9]+)' | sort -u)" -- "$cur")
		return 0
		;;
	--connect | --timeout | --connect-timeout | --reason | --version | \
	    --expect | --digest | --sig | --grant | --secret | --sign-overlap | \
	    --verify-grace | --rotate-every | --expires | --checkpoint-*)
		return 0
		;;
	esac

	# the command: one word, or two ("client add")
	while read -r -a u; do
		if [ "${words[0]:-}" = "${u[0]}" ] &&
		    [[ ${u[1]:-} == [a-z]* ]]; then
			[ "${words[1]:-}" = "${u[1]}" ] || continue
			cmd="${u[0]} ${u[1]}"
		elif [ "${words[0]:-}" = "${u[0]}" ]; then
			cmd=${u[0]}
		else
			continue
		fi
		usage=("${u[@]}")
		break
	done < <(_hsmkey_usages)

	if [ -z "$cmd" ]; then
		if [ "${#words[@]}" -eq 0 ] && [[ $cur == -* ]]; then
			flags=$(_hsmkey_global_flags)
		elif [ "${#words[@]}" -eq 0 ]; then
			flags=$(_hsmkey_usages | awk '{ print $1 }' | sort -u)
		elif [ "${#words[@]}" -eq 1 ]; then
			# a group: its subcommands
			flags=$(_hsmkey_usages | awk -v g="${words[0]}" \
			    '$1 == g && $2 ~ /^[a-z]/ { print $2 }')
		fi
		mapfile -t COMPREPLY < <(compgen -W "$flags" -- "$cur")
		return 0
	fi

	if [[ $cur == -* ]]; then
		flags="$(printf '%s\n' "${usage[@]}" |
		    grep -o -E -e '--[a-z][a-z0-9-]*' | sort -u)
$(_hsmkey_global_flags)"
		mapfile -t COMPREPLY < <(compgen -W "$flags" -- "$cur")
		return 0
	fi

	# a positional argument: the usage's metavariables in order (NAME,
	# ID, FILE...), less those of flags; the words typed, less flags and
	# their values
	nw=$(wc -w <<<"$cmd")
	metas=()
	valued=" "
	for ((i = nw; i < ${#usage[@]}; i++)); do
		w=${usage[i]#[}
		if [[ $w == --* && ${usage[i + 1]:-} == [A-Z]* ]]; then
			valued+="${w%]} "
			i=$((i + 1))
		elif [[ $w == [A-Z]* ]]; then
			metas+=("$w")
		fi
	done
	npos=0
	for ((i = nw; i < ${#words[@]}; i++)); do
		w=${words[i]}
		if [[ $w == -* ]]; then
			[[ $valued == *" $w "* ]] && i=$((i + 1))
			continue
		fi
		npos=$((npos + 1))
	done
	meta=
	if [ "${#metas[@]}" -gt 0 ]; then
		if [ "$npos" -lt "${#metas[@]}" ]; then
			meta=${metas[npos]}
		elif [[ ${metas[-1]} == *... ]]; then
			meta=${metas[-1]}
		fi
	fi
	case $meta in
	NAME*)
		mapfile -t COMPREPLY < <(compgen -W "$(_hsmkey_names "$bin" \
		    name list "${COMP_WORDS[@]:0:COMP_CWORD}")" -- "$cur")
		;;
	ID)
		[ "$cmd" = "client add" ] && return 0
		mapfile -t COMPREPLY < <(compgen -W "$(_hsmkey_names "$bin" \
		    id "client list" "${COMP_WORDS[@]:0:COMP_CWORD}")" -- "$cur")
		;;
	FILE*)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		;;
	esac
	return 0
}

complete -F _hsmkey hsmkey
