# shellcheck shell=bash
#
# deps.sh: the packages hsmkey needs on Debian 12, installed when missing.
# Sourced by scripts/test and scripts/quickstart:
#
#	. scripts/deps.sh
#	hk_install_deps
#
# Runs `apt-get update` only when something is missing, then installs
# exactly the missing packages.  Needs root (or sudo) only then.

HK_DEB_PACKAGES=(
	gcc
	libc6-dev
	meson
	ninja-build
	pkg-config
	softhsm2
	p11-kit
	libp11-kit-dev
	libssl-dev
	openssl
	libprotobuf-c-dev
	protobuf-c-compiler
	libnanomsg-dev
	nanomsg-utils
	libinih-dev
	opensc
	python3
	python3-cryptography
	python3-jwcrypto
	xxd
	procps
	clang-format
	libsystemd-dev
	systemd
	strace
	clang
	scdoc
	man-db
	groff-base
	bash-completion
)

# hk_missing_deps: prints the packages that are not installed.
hk_missing_deps()
{
	local p status
	for p in "${HK_DEB_PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)
		case $status in
		ii*) ;;
		*) printf '%s\n' "$p" ;;
		esac
	done
}

hk_install_deps()
{
	local missing sudo=
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "deps: not a Debian system; install by hand:" \
		    "${HK_DEB_PACKAGES[*]}" >&2
		return 0
	fi
	missing=$(hk_missing_deps)
	[ -n "$missing" ] || return 0
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo=sudo
		else
			echo "deps: missing packages and not root:" $missing >&2
			return 1
		fi
	fi
	echo "deps: installing" $missing >&2
	$sudo apt-get update -q >&2 || return 1
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
	    --no-install-recommends $missing >&2
}
