#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Work on the kernel patch series with git, without a full kernel git tree.
#
#   tools/patches.sh edit     make $CACHE/patchwork: a git repository holding
#                             the pristine versions of the files the series
#                             touches (plus any given as extra arguments),
#                             with the series applied as commits
#   tools/patches.sh export   write the commits back to patches/ (and series)
#   tools/patches.sh check    run checkpatch.pl from the kernel tree on patches/
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WORK=$CACHE/patchwork
AUTHOR="Page Hinting Developers"
EMAIL=page-hinting@example.org
export GIT_AUTHOR_NAME=$AUTHOR GIT_AUTHOR_EMAIL=$EMAIL GIT_COMMITTER_NAME=$AUTHOR GIT_COMMITTER_EMAIL=$EMAIL

series_files() {
	grep -v '^#' "$ROOT/patches/series" | sed '/^$/d'
}

pristine() {
	local dir=$1
	mkdir -p "$dir"
	tar -xf "$(ls /usr/src/linux-source-6.12.tar.* | head -n1)" -C "$dir" --strip-components=1
}

case ${1:-} in
edit)
	shift
	rm -rf "$WORK" "$WORK.src"
	pristine "$WORK.src"
	mkdir -p "$WORK"
	files=$(series_files | while read -r p; do
		grep -E '^(---|\+\+\+) [ab]/' "$ROOT/patches/$p" | sed -E 's#^(---|\+\+\+) [ab]/##'
	done | sort -u)
	for f in $files MAINTAINERS "$@"; do
		[[ -f $WORK.src/$f ]] || continue
		mkdir -p "$WORK/$(dirname "$f")"
		cp "$WORK.src/$f" "$WORK/$f"
	done
	rm -rf "$WORK.src"
	git -C "$WORK" init -q
	git -C "$WORK" add -A
	git -C "$WORK" commit -q -m "pristine linux-source-6.12 files"
	git -C "$WORK" tag base
	series_files | while read -r p; do git -C "$WORK" am -q "$ROOT/patches/$p"; done
	info "series applied in $WORK (tag 'base' is pristine); edit, commit, then: $0 export"
	;;
export)
	[[ -d $WORK/.git ]] || die "no $WORK; run: $0 edit"
	rm -f "$ROOT"/patches/*.patch
	git -C "$WORK" format-patch -q --no-signature --zero-commit -o "$ROOT/patches" base..HEAD
	(cd "$ROOT/patches" && ls -1 ./*.patch | sed 's#^\./##' >series)
	info "exported $(wc -l <"$ROOT/patches/series") patches"
	"$0" check
	;;
check)
	# checkpatch wants a kernel tree for its lookups (existing CamelCase
	# names, MAINTAINERS, the spelling list).
	src=$CACHE/kernel/src
	[[ -x $src/scripts/checkpatch.pl ]] || { src=$CACHE/checkpatch-src; [[ -d $src ]] || pristine "$src"; }
	rc=0
	while read -r p; do
		out=$(cd "$src" && perl scripts/checkpatch.pl --strict --terse --no-summary --show-types \
			--ignore CAMELCASE "$ROOT/patches/$p" 2>&1) || rc=1
		[[ -z $out ]] || { echo "$out"; rc=1; }
	done < <(series_files)
	((rc == 0)) && info "checkpatch --strict: clean ($(series_files | wc -l) patches)"
	exit $rc
	;;
*) die "usage: $0 edit|export|check" ;;
esac
