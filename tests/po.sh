#!/bin/sh
# The translations are complete: every message the sources mark with _()
# or N_() has its Chinese translation in po/zh_CN.po, the formats match
# (msgfmt --check), and every source that marks a message is listed in
# po/POTFILES, so that no new file's messages are forgotten.
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "po.sh: FAIL: $*" >&2
	exit 1
}

cd "$src"
for f in $(grep -l -E '(^|[^A-Za-z0-9_])N?_\("' core/*.c agents/*.c tools/*.c \
	log/*.c daemon/*.c store/*.c http/*.c 2>/dev/null); do
	grep -qx "$f" po/POTFILES || fail "$f marks messages but is not in po/POTFILES"
done
xgettext --from-code=UTF-8 --language=C --keyword=_ --keyword=N_ \
	-o "$tmp/indicatord.pot" --files-from=po/POTFILES ||
	fail "xgettext failed"
msgfmt --check -o "$tmp/zh_CN.mo" po/zh_CN.po || fail "msgfmt --check po/zh_CN.po"
msgcmp po/zh_CN.po "$tmp/indicatord.pot" ||
	fail "po/zh_CN.po lacks messages of the sources (cmake --build build --target po-update, then translate)"
stats=$(msgfmt --statistics -o /dev/null po/zh_CN.po 2>&1)
case $stats in
*untranslated* | *fuzzy*) fail "po/zh_CN.po: $stats" ;;
esac
echo "po.sh: po/zh_CN.po: $stats"
