# Copyright 2026 Gentoo Authors
# Distributed under the terms of the GNU General Public License v2

EAPI=8

# A kernel you configure yourself, built from gentoo-sources into a binary package that holds no
# boot loader's files: the kernel sits in /lib/modules/VERSION/{vmlinuz,System.map,config} beside
# its modules, and kinstall turns that into this machine's layout in pkg_postinst. Build once on
# the binhost (emerge --buildpkgonly), install the same package on every machine (emerge -K).
# Copy this file for each kernel version, with that version's .config as files/config-${PVR}.

DESCRIPTION="Custom kernel from gentoo-sources, installed through kinstall"
HOMEPAGE="https://www.kernel.org/"
S=${WORKDIR}

LICENSE="GPL-2"
# One slot per version: a new kernel installs beside the older ones. How many of them stay
# bootable is kinstall's "keep" (/etc/kinstall/config.json, or KINSTALL_KEEP); emerge --depclean
# removes the packages, and with them their boot entries.
SLOT="${PV}"
KEYWORDS="~amd64"
IUSE="+initramfs"

BDEPEND="=sys-kernel/gentoo-sources-${PVR}"
# kinstall runs in pkg_postinst (IDEPEND, on the host when ROOT is elsewhere) and pkg_prerm/postrm.
IDEPEND="sys-kernel/kinstall"
RDEPEND="
	${IDEPEND}
	initramfs? ( sys-kernel/dracut )
"

QA_PREBUILT="*"
RESTRICT="strip"

BUILD_DIR=${WORKDIR}/build

src_configure() {
	# Portage's ARCH (amd64) is not kbuild's.
	unset ARCH
	local sources=${BROOT}/usr/src/linux-${PV}-gentoo
	[[ ${PR} != r0 ]] && sources+=-${PR}
	local config=${FILESDIR}/config-${PVR}
	if [[ ! -f ${config} ]]; then
		# No config for this version yet: start from the newest one, olddefconfig fills the rest.
		config=$(find "${FILESDIR}" -maxdepth 1 -name 'config-*' 2>/dev/null | sort -V | tail -n 1)
		[[ -n ${config} ]] || die "no kernel config: put one in ${FILESDIR}/config-${PVR}"
		ewarn "No ${FILESDIR}/config-${PVR}: starting from ${config##*/}"
	fi
	# Build out of the source tree (make O=): gentoo-sources stays untouched.
	mkdir -p "${BUILD_DIR}" || die
	cp "${config}" "${BUILD_DIR}"/.config || die
	emake -C "${sources}" O="${BUILD_DIR}" olddefconfig
}

src_compile() {
	unset ARCH
	emake -C "${BUILD_DIR}"
}

src_install() {
	unset ARCH
	# The release the kernel reports, whatever CONFIG_LOCALVERSION says. Portage keeps this
	# variable in the package's saved environment for pkg_postinst, pkg_prerm and pkg_postrm.
	KV_FULL=$(<"${BUILD_DIR}"/include/config/kernel.release) || die
	local image
	image=$(emake -s -C "${BUILD_DIR}" image_name) || die

	insinto "/lib/modules/${KV_FULL}"
	newins "${BUILD_DIR}/${image}" vmlinuz
	doins "${BUILD_DIR}"/System.map
	newins "${BUILD_DIR}"/.config config

	# No depmod here: kinstall runs it on the target, and an index owned by the package would
	# be rewritten there and then left behind by the unmerge.
	emake -C "${BUILD_DIR}" INSTALL_MOD_PATH="${ED}" DEPMOD=true modules_install
	# They point into this build's work directory.
	rm -f "${ED}/lib/modules/${KV_FULL}"/{build,source} || die
}

pkg_postinst() {
	# What dist-kernels do with installkernel, in kinstall's own form: the kernel is already in the
	# neutral location, so `kinstall add VERSION` installs exactly what this package holds.
	local initramfs=none
	use initramfs && initramfs=dracut
	ebegin "Installing kernel ${KV_FULL} for this machine (kinstall add)"
	kinstall add --root "${EROOT:-/}" --initramfs "${initramfs}" "${KV_FULL}"
	eend $? || die "kinstall add ${KV_FULL} failed; nothing was changed in the boot dir"
	elog "Kernels kept bootable: kinstall's \"keep\" setting (kinstall list shows them)."
}

# True when kinstall lists ${KV_FULL} in some layout ("keep" may have pruned it already).
_custom_kernel_installed() {
	local listed
	# Cannot tell: try the removal, which says what is wrong.
	listed=$(kinstall list --root "${EROOT:-/}") || return 0
	awk -v kv="${KV_FULL}" '$1 == kv { found = 1 } END { exit !found }' <<<"${listed}"
}

_custom_kernel_remove() {
	_custom_kernel_installed || return 0
	ebegin "Removing kernel ${KV_FULL} from the boot dir and the ESP (kinstall remove)"
	kinstall remove --root "${EROOT:-/}" "${KV_FULL}"
	eend $? || ewarn "kinstall remove ${KV_FULL} failed; run it again by hand"
}

pkg_prerm() {
	# Replaced (a rebuild or another revision): pkg_postrm decides, once the files are gone.
	[[ -n ${REPLACED_BY_VERSION} ]] && return 0
	# Unmerged: the boot entries go first, while the files they point to still exist. kinstall
	# leaves /lib/modules/${KV_FULL} to portage, which owns it.
	_custom_kernel_remove
}

pkg_postrm() {
	local dir=${EROOT}/lib/modules/${KV_FULL}
	# Still there after the unmerge: the replacing package installs the same release (a same-version
	# rebuild), and its pkg_postinst installs it again. This holds in either phase order.
	[[ -e ${dir}/vmlinuz ]] && return 0
	# Replaced by a package of another release: this one is gone now (and kinstall deletes what
	# is left of its modules tree, which nothing owns any more).
	[[ -n ${REPLACED_BY_VERSION} ]] && _custom_kernel_remove
	if [[ -d ${dir} ]]; then
		# depmod's index is all the unmerge leaves behind (never fail an unmerge over it).
		find "${dir}" -maxdepth 1 -type f -name 'modules.*' -delete
		rmdir "${dir}" 2>/dev/null || ewarn "${dir} still holds files no package owns"
	fi
}
