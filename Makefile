# SPDX-License-Identifier: GPL-2.0
#
# page-hinting: a Rust guest kernel module that reports freed guest memory to
# the hypervisor. Everything is driven from here; see README.md.
#
#   make run          install what is missing, build, boot a guest with the
#                     module loaded, show memory going back to the host
#   make check        the whole test suite (check-host, check-kunit, check-e2e)
#   make check-teeth  show each in-guest test fails on the bug it guards against
#   make check-distro the series and module on Debian's own cloud and PREEMPT_RT
#                     kernel configurations: build (about 25 min cold), boot, smoke;
#                     then the Debian image below, booted by systemd
#   make packages     Debian packages: the guest kernel (bindeb-pkg) and
#                     page-hinting (the module, modules-load.d, docs)
#   make image        a Debian 12 guest disk image with those installed
#   make soak         the integrity stress for longer (20000 operations per CPU)
#   make bench        page_hinting side by side with Linux's own free page
#                     reporting: table, CSV/JSON and a PNG plot (about 25 min)
#
# The Linux kernel's out-of-tree module build also reads this directory's
# Kbuild file; it never runs this Makefile.

SHELL := /bin/bash
T := tools

.PHONY: run check check-host check-kunit check-e2e check-teeth check-distro packages image soak bench deps kernel debug-kernel \
	module debug-module initramfs debug-initramfs paths patches-edit \
	patches-export fmt bench-core fuzz clean

run:
	@$(T)/run.sh

check: check-host check-kunit check-e2e
	@echo "[page-hinting] make check: all passed"

check-host: deps
	@$(T)/check-host.sh

check-kunit: deps
	@$(T)/check-kunit.sh

check-e2e: deps
	@$(T)/check-e2e.py

check-teeth: deps
	@$(T)/check-teeth.sh

check-distro: deps
	@$(T)/check-distro.sh

packages: deps
	@$(T)/packages.sh

image: deps
	@$(T)/image.sh

soak: deps
	@$(T)/check-e2e.py integrity-soak

bench: deps
	@$(T)/bench.py

deps:
	@$(T)/deps.sh

kernel debug-kernel: deps
	@$(T)/kernel.sh $(if $(filter debug-%,$@),debug,normal)

module debug-module: deps
	@$(T)/module.sh $(if $(filter debug-%,$@),debug,normal)

initramfs debug-initramfs: deps
	@$(T)/initramfs.sh $(if $(filter debug-%,$@),debug,normal)

# Where the built artifacts are, one name=absolute-path per line.
paths: deps
	@$(T)/paths.sh

patches-edit:
	@$(T)/patches.sh edit

patches-export:
	@$(T)/patches.sh export

fmt:
	@$(T)/fmt.sh

bench-core:
	@$(T)/core-bench.sh

fuzz:
	@$(T)/core-fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf "$${PAGE_HINTING_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/page-hinting}/out"
