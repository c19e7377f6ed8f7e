#!/usr/bin/env bash
# Runs an ebuild's phase functions without portage, for the packaging tests.
#   ebuild-runner.sh build EBUILD ENVFILE PHASE...   source EBUILD, run the src_* phases, then save
#                                                    the environment to ENVFILE (portage keeps it with
#                                                    the package for its pkg_* phases)
#   ebuild-runner.sh pkg ENVFILE PHASE...            source a saved environment, run pkg_* phases
# Input variables: WORKDIR, T, D (the image), ROOT (pkg phases: a scratch root, never /), USE,
# REPLACING_VERSIONS, REPLACED_BY_VERSION. The stand-ins below do the real file operation into
# ${ED} or report; a command that is neither a stand-in nor installed stops the run (exit 127).
# The stand-ins are called by the sourced ebuild, which shellcheck cannot see.
# shellcheck disable=SC2317
set -uo pipefail
shopt -s extglob

mode=$1
shift

die() {
	echo "die: ${*:-(no message)}" >&2
	exit 1
}

_unknown_marker=${T:?T must be set}/.ebuild-runner-unknown
rm -f "${_unknown_marker}"
command_not_found_handle() {
	echo "ebuild-runner: no stand-in for '$1' (a portage helper the runner does not know)" >&2
	echo "$1" >>"${_unknown_marker}"
	return 127
}

# Output: one tagged line each, so tests can assert on them.
elog() { echo "elog: $*" >&2; }
einfo() { echo "einfo: $*" >&2; }
ewarn() { echo "ewarn: $*" >&2; }
eerror() { echo "eerror: $*" >&2; }
ebegin() { echo "ebegin: $*" >&2; }
eend() {
	local status=${1:-0}
	shift
	echo "eend: ${status}${*:+ $*}" >&2
	return "${status}"
}

use() {
	local flag=$1 negate=0
	[[ ${flag} == '!'* ]] && negate=1 flag=${flag#!}
	[[ " ${IUSE//+/} " == *" ${flag} "* ]] || die "use ${flag}: not in IUSE"
	if [[ " ${USE} " == *" ${flag} "* ]]; then return "${negate}"; fi
	return $((1 - negate))
}

# Install helpers: the real operation into ${ED}, dying on failure as portage's do.
_insdir=/
_exedir=/
insinto() { _insdir=$1; }
exeinto() { _exedir=$1; }
dodir() { mkdir -p "${@/#/${ED}}" || die "dodir $*"; }

doins() {
	local recursive=0 src dest="${ED}${_insdir}"
	[[ ${1:-} == -r ]] && recursive=1 && shift
	mkdir -p "${dest}" || die "doins: ${dest}"
	for src in "$@"; do
		if [[ -d ${src} && ! -L ${src} ]]; then
			((recursive)) || die "doins: ${src} is a directory (use -r)"
			cp -R --no-dereference "${src}" "${dest}/" || die "doins -r ${src}"
			find "${dest}/${src##*/}" -type d -exec chmod 0755 {} + || die
			find "${dest}/${src##*/}" -type f -exec chmod 0644 {} + || die
		elif [[ -L ${src} ]]; then
			cp --no-dereference "${src}" "${dest}/" || die "doins ${src}"
		else
			install -m0644 "${src}" "${dest}/" || die "doins ${src}"
		fi
	done
}

newins() {
	mkdir -p "${ED}${_insdir}" || die
	install -m0644 "$1" "${ED}${_insdir}/$2" || die "newins $1 $2"
}

doexe() {
	mkdir -p "${ED}${_exedir}" || die
	install -m0755 "$@" "${ED}${_exedir}/" || die "doexe $*"
}

fperms() {
	local mode=$1 file
	shift
	for file in "$@"; do chmod "${mode}" "${ED}${file}" || die "fperms ${mode} ${file}"; done
}

dosym() {
	local relative=0
	[[ $1 == -r ]] && relative=1 && shift
	local target=$1 link=${ED}$2
	mkdir -p "${link%/*}" || die
	if ((relative)); then
		[[ ${target} == /* ]] || die "dosym -r: ${target} is not absolute"
		target=$(realpath -m --relative-to="${2%/*}" "${target}") || die
	fi
	ln -sfn "${target}" "${link}" || die "dosym ${target} $2"
}

doman() {
	local page
	for page in "$@"; do
		local section=${page##*.}
		mkdir -p "${ED}/usr/share/man/man${section}" || die
		install -m0644 "${page}" "${ED}/usr/share/man/man${section}/" || die "doman ${page}"
	done
}

dodoc() {
	mkdir -p "${ED}/usr/share/doc/${PF}" || die
	install -m0644 "$@" "${ED}/usr/share/doc/${PF}/" || die "dodoc $*"
}

emake() { make "$@" || die "emake $* failed"; }

newinitd() {
	mkdir -p "${ED}/etc/init.d" || die
	install -m0755 "$1" "${ED}/etc/init.d/$2" || die "newinitd $*"
}

# Eclasses: only the functions the ebuilds use, each with its real effect.
inherit() {
	local eclass
	for eclass in "$@"; do
		case ${eclass} in
			bash-completion-r1)
				get_bashcompdir() { echo /usr/share/bash-completion/completions; }
				newbashcomp() {
					mkdir -p "${ED}$(get_bashcompdir)" || die
					install -m0644 "$1" "${ED}$(get_bashcompdir)/$2" || die "newbashcomp $*"
				}
				bashcomp_alias() {
					local base=$1 alias
					shift
					for alias in "$@"; do ln -sfn "${base}" "${ED}$(get_bashcompdir)/${alias}" || die; done
				}
				;;
			systemd)
				systemd_get_systemunitdir() { echo /usr/lib/systemd/system; }
				systemd_dounit() {
					mkdir -p "${ED}$(systemd_get_systemunitdir)" || die
					install -m0644 "$@" "${ED}$(systemd_get_systemunitdir)/" || die "systemd_dounit $*"
				}
				;;
			git-r3)
				git-r3_src_unpack() { die "git-r3_src_unpack: the runner does not fetch"; }
				;;
			*) die "inherit ${eclass}: the runner has no stand-in for this eclass" ;;
		esac
	done
}

_run_phases() {
	local phase
	for phase in "$@"; do
		declare -F "${phase}" >/dev/null || die "${phase} is not defined"
		export EBUILD_PHASE=${phase#*_}
		if [[ ${phase} == src_* ]]; then
			cd "${S}" 2>/dev/null || cd "${WORKDIR}" || die
		else
			cd "${T}" || die
		fi
		local status=0
		"${phase}" || status=$?
		[[ -e ${_unknown_marker} ]] && { echo "ebuild-runner: ${phase} called an unknown helper" >&2; exit 127; }
		((status == 0)) || die "${phase} returned ${status}"
	done
	return 0
}

# What portage saves with a package: the variables and functions the ebuild (and its eclasses) set.
_save_environment() {
	local name
	comm -13 <(printf '%s\n' "${_base_vars[@]}" | sort) <(compgen -v | sort) | while read -r name; do
		[[ ${name} =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || continue
		declare -p "${name}" 2>/dev/null | grep -v '^declare -[a-zA-Z]*r'
	done >"$1"
	comm -13 <(printf '%s\n' "${_base_funcs[@]}" | sort) <(compgen -A function | sort) | while read -r name; do
		declare -f "${name}"
	done >>"$1"
}

export EPREFIX='' BROOT=''
export D=${D:?D (the image dir) must be set}
export ED=${D}
export WORKDIR=${WORKDIR:?} USE=${USE:-}
export REPLACING_VERSIONS=${REPLACING_VERSIONS:-} REPLACED_BY_VERSION=${REPLACED_BY_VERSION:-}

case ${mode} in
	build)
		ebuild=$(realpath "$1") envfile=$2
		shift 2
		# Everything set from here on (the package's identity included) is saved with it.
		mapfile -t _base_vars < <(compgen -v)
		mapfile -t _base_funcs < <(compgen -A function)
		name=${ebuild##*/}
		name=${name%.ebuild}
		export CATEGORY PN PF P PV PR PVR FILESDIR S
		CATEGORY=$(basename "$(dirname "$(dirname "${ebuild}")")")
		PN=$(basename "$(dirname "${ebuild}")")
		PF=${name}
		PVR=${name#"${PN}"-}
		PV=${PVR%-r+([0-9])}
		PR=r0
		[[ ${PVR} != "${PV}" ]] && PR=${PVR#"${PV}"-}
		P=${PN}-${PV}
		FILESDIR=$(dirname "${ebuild}")/files
		S=${WORKDIR}/${P}
		# shellcheck source=/dev/null
		source "${ebuild}" || die "sourcing ${ebuild} failed"
		[[ ${EAPI:-} == 8 ]] || die "EAPI ${EAPI:-unset}: the runner knows EAPI 8"
		[[ -e ${_unknown_marker} ]] && exit 127
		_run_phases "$@"
		_save_environment "${envfile}"
		;;
	pkg)
		envfile=$1
		shift
		[[ -n ${ROOT:-} && $(realpath -m "${ROOT}") != / ]] || die "pkg phases need a scratch ROOT, never /"
		export ROOT EROOT=${ROOT}
		# shellcheck source=/dev/null
		source "${envfile}" || die "sourcing ${envfile} failed"
		_run_phases "$@"
		;;
	*) die "usage: ebuild-runner.sh build EBUILD ENVFILE PHASE... | pkg ENVFILE PHASE..." ;;
esac
