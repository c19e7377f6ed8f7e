# Copyright 2026 Gentoo Authors
# Distributed under the terms of the GNU General Public License v2

EAPI=8

# The live and the release ebuild are the same text; only the source differs.
inherit bash-completion-r1 systemd

DESCRIPTION="Install Linux kernels safely: staged, journaled, rolled back on failure"
HOMEPAGE="https://github.com/kinstall/kinstall"

if [[ ${PV} == 9999 ]]; then
	inherit git-r3
	EGIT_REPO_URI="https://github.com/kinstall/kinstall.git"
	BDEPEND=">=net-libs/nodejs-20.5[npm]"
else
	# Made by packaging/gentoo/make-distfile.sh: `npm pack` of a built tree (dist/ included) plus
	# the production dependencies in node_modules/, so nothing is fetched or built here.
	SRC_URI="https://github.com/kinstall/kinstall/releases/download/v${PV}/${P}.tar.gz"
	KEYWORDS="~amd64"
fi

# kinstall, and the bundled node_modules (argparse is PSF-2).
LICENSE="GPL-2+ Apache-2.0 ISC MIT PSF-2"
SLOT="0"
IUSE="+dracut efistub grub qemu secureboot"

# Both packages own /sbin/installkernel.
RDEPEND="
	>=net-libs/nodejs-20.5
	sys-apps/kmod[tools]
	sys-apps/util-linux
	!sys-kernel/installkernel
	dracut? ( sys-kernel/dracut )
	efistub? ( sys-boot/efibootmgr )
	grub? ( sys-boot/grub )
	qemu? ( app-emulation/qemu )
	secureboot? ( app-crypt/sbsigntools )
"

src_unpack() {
	if [[ ${PV} == 9999 ]]; then
		git-r3_src_unpack
		# A live ebuild may use the network in src_unpack: fetch the locked dependencies now.
		cd "${S}" || die
		npm ci --ignore-scripts --no-audit --no-fund || die "npm ci failed"
	else
		default
	fi
}

src_compile() {
	# The release tarball is built already.
	[[ ${PV} == 9999 ]] || return 0
	npm run build || die "npm run build failed"
	npm prune --omit=dev --ignore-scripts --no-audit --no-fund || die "npm prune failed"
}

src_install() {
	# kinstall finds its version and its hooks.d beside package.json.
	local dir=/usr/lib/kinstall
	insinto "${dir}"
	doins -r dist node_modules package.json
	fperms 0755 "${dir}"/dist/src/cli/{kinstall,installkernel}.js

	exeinto "${dir}"/hooks.d
	doexe hooks.d/*

	dosym -r "${dir}"/dist/src/cli/kinstall.js /usr/bin/kinstall
	# make install and the kernel ebuilds call /sbin/installkernel. An absolute target stays
	# right when /sbin is a link to usr/bin (merged /usr).
	dosym "${EPREFIX}${dir}"/dist/src/cli/installkernel.js /sbin/installkernel

	# The boot-time units that confirm a trial kernel (kinstall add --try) once the system is up.
	systemd_dounit units/kinstall-confirm.service
	newinitd units/kinstall-confirm.openrc kinstall-confirm

	doman man/kinstall.8
	newbashcomp completion/kinstall.bash kinstall
	bashcomp_alias kinstall installkernel
	dodoc README.md
}

pkg_postinst() {
	elog "kinstall now answers installkernel: kernel packages and 'make install' use it."
	elog "Choose the layout and how many kernels stay bootable in ${EROOT}/etc/kinstall/config.json,"
	elog "for example {\"layout\": \"grub\", \"keep\": 3}; see kinstall(8)."
	elog "To try new kernels once and fall back by themselves (kinstall add --try), enable the"
	elog "confirm unit: systemctl enable kinstall-confirm.service, or rc-update add kinstall-confirm default."
	if ! use dracut; then
		elog "Without USE=dracut, kernels are installed without an initramfs unless dracut is present."
	fi
}
