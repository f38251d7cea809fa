# tests/softhsm.sh: a throwaway SoftHSM token for the tests and benchmarks.
# Sourced by tests/lib.sh, tests/bench/run.sh and tests/bench/prepare.sh.
#
# The PINs are on softhsm2-util's command line only because the token is a
# throwaway one; hsmkeyd reads the user PIN from a 0600 file.

# hk_free_port: prints a TCP port on 127.0.0.1 that is free right now.
hk_free_port()
{
	"${HK_PYTHON:-python3}" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# hk_softhsm_conf DIR: writes DIR/softhsm2.conf for the token directory
# DIR/tokens.
hk_softhsm_conf()
{
	cat >"$1/softhsm2.conf" <<EOC
directories.tokendir = $(cd "$1" && pwd)/tokens
objectstore.backend = file
log.level = ERROR
EOC
}

# hk_token_init DIR PIN_FILE: makes DIR/tokens (0700) and DIR/softhsm2.conf,
# exports SOFTHSM2_CONF, writes a new random user PIN to PIN_FILE (0600)
# and into $PIN, and initialises a token labelled "hsmkey" in it.  On
# failure prints softhsm2-util's log (DIR/softhsm-init.log) on stderr and
# returns 1.
hk_token_init()
{
	local so_pin

	mkdir -m 0700 "$1/tokens" || return 1
	hk_softhsm_conf "$1"
	export SOFTHSM2_CONF=$1/softhsm2.conf
	PIN=$(openssl rand -hex 12)
	so_pin=$(openssl rand -hex 12)
	(umask 077 && printf '%s\n' "$PIN" >"$2")
	if ! softhsm2-util --init-token --free --label hsmkey \
	    --so-pin "$so_pin" --pin "$PIN" >"$1/softhsm-init.log" 2>&1; then
		cat "$1/softhsm-init.log" >&2
		echo "softhsm2-util --init-token failed" >&2
		return 1
	fi
}
