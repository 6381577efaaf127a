#!/usr/bin/env bash
# Checks the layering of libgammad (user/lib/<stage>/), and fails on the
# first kind of tangle it finds, naming the file, the line and the rule:
#
#  1. Each stage folder's README.md says which folders it may use, on one
#     line: "May use: base, input" (or "May use: nothing"). Those lines must
#     not form a cycle between folders.
#  2. Every #include "stage/x.h" from a stage names a folder it may use.
#     Headers named *_int.h are internal: only their own folder includes them,
#     in the library and in every program, tool and test.
#  3. What an object file takes from another (nm: the functions and data it
#     uses and the other defines) also follows those lines. This sees the
#     dependencies a shared header hides.
#  4. No two files depend on each other, directly or around a longer loop,
#     by #include lines or by symbols (tsort finds the loops).
#
# usage: tools/layers.sh [--lib DIR] [--objs DIR] [--others "DIR..."]
#   --lib    the stage folders (default user/lib)
#   --objs   where their objects were built (default build/user/lib); the
#            symbol checks (3, 4) need a build, and fail when one is missing
#   --others folders whose files may not include internal headers
#            (default "user tools tests"; the library itself is checked anyway)
set -uo pipefail

lib=user/lib
objs=build/user/lib
others="user tools tests"
while [ $# -gt 0 ]; do
	case "$1" in
	--lib) lib=$2; shift 2 ;;
	--objs) objs=$2; shift 2 ;;
	--others) others=$2; shift 2 ;;
	*) echo "layers: unknown argument '$1' (see the head of $0)" >&2; exit 2 ;;
	esac
done

errors=0
fail() { echo "layers: $*" >&2; errors=$((errors + 1)); }

# ---- 1. stages and what each may use ----------------------------------------
declare -A may_use
stages=()
for readme in "$lib"/*/README.md; do
	[ -f "$readme" ] || continue
	stage=$(basename "$(dirname "$readme")")
	line=$(grep -m1 -i '^May use:' "$readme") || { fail "$readme: no 'May use:' line"; continue; }
	uses=$(echo "${line#*:}" | tr ',' ' ' | tr -s ' ')
	[ "$(echo $uses)" = nothing ] && uses=""
	stages+=("$stage")
	may_use[$stage]=" $(echo $uses) "
done
[ ${#stages[@]} -gt 0 ] || { echo "layers: no stage folders with a README.md under $lib" >&2; exit 2; }
for dir in "$lib"/*/; do
	[ -f "$dir/README.md" ] || fail "${dir%/}: a stage folder without README.md"
done
for s in "${stages[@]}"; do
	for u in ${may_use[$s]}; do
		[ -n "${may_use[$u]+x}" ] || fail "$lib/$s/README.md: may use '$u', which is no stage folder"
	done
done

# tsort reads pairs "a b" (a before b) and reports a loop on stderr.
loops() {
	local what=$1 out
	out=$(tsort 2>&1 >/dev/null) && return 0
	fail "$what depend on each other in a loop: $(echo "$out" | grep -v 'input contains a loop' | sed 's/^tsort: //' | tr '\n' ' ')"
}
loops "stage folders (their 'May use:' lines)" < <(
	for s in "${stages[@]}"; do
		echo "$s $s"
		for u in ${may_use[$s]}; do echo "$s $u"; done
	done)

uses_of() {
	local u
	u=$(echo ${may_use[$1]})
	echo "${u:-nothing}"
}

allowed() {	# allowed FROM_STAGE TO_STAGE
	[ "$1" = "$2" ] || [[ "${may_use[$1]}" == *" $2 "* ]]
}

# ---- 2. #include lines -------------------------------------------------------
include_edges=$(mktemp)
trap 'rm -f "$include_edges"' EXIT
for s in "${stages[@]}"; do
	for f in "$lib/$s"/*.[ch]; do
		[ -f "$f" ] || continue
		echo "$s/$(basename "$f") $s/$(basename "$f")" >> "$include_edges"
		while IFS=: read -r lineno inc; do
			case "$inc" in
			*/*)
				to=${inc%%/*}
				[ -n "${may_use[$to]+x}" ] || continue	# not a stage: gammad/maps.h, skel/...
				if ! allowed "$s" "$to"; then
					fail "$f:$lineno: includes \"$inc\", but $s may use only: $(uses_of "$s") ($lib/$s/README.md)"
				elif [ "$to" != "$s" ] && [[ "$inc" == *_int.h ]]; then
					fail "$f:$lineno: includes \"$inc\", an internal header of $to"
				fi
				echo "$s/$(basename "$f") $inc" >> "$include_edges"
				;;
			*)
				[ -f "$lib/$s/$inc" ] && echo "$s/$(basename "$f") $s/$inc" >> "$include_edges"
				;;
			esac
		done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
			 sed 's/^\([0-9]*\):.*"\([^"]*\)".*/\1:\2/')
	done
done
loops "files (by #include)" < "$include_edges"

for dir in $others; do
	[ -d "$dir" ] || continue
	while IFS=: read -r f lineno inc; do
		to=${inc%%/*}
		[ -n "${may_use[$to]+x}" ] && [ "$f" != "${f#"$lib/$to/"}" ] && continue
		fail "$f:$lineno: includes \"$inc\", an internal header of $lib/$to"
	done < <(grep -rn --include='*.[ch]' '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z_]*/[a-z0-9_]*_int\.h"' "$dir" |
		 sed 's/^\([^:]*\):\([0-9]*\):.*"\([^"]*\)".*/\1:\2:\3/')
done

# ---- 3, 4. symbols between object files -------------------------------------
symbols=$(mktemp)
trap 'rm -f "$include_edges" "$symbols"' EXIT
for s in "${stages[@]}"; do
	for c in "$lib/$s"/*.c; do
		[ -f "$c" ] || continue
		o="$objs/$s/$(basename "${c%.c}").o"
		if [ ! -f "$o" ]; then
			fail "$o is missing: build first (make), or pass --objs"
			continue
		fi
		# "D unit symbol" for what it defines, "U unit symbol" for what it takes.
		nm "$o" | awk -v unit="$s/$(basename "${c%.c}")" '
			NF == 2 && $1 == "U" { print "U", unit, $2; next }
			NF == 3 && $2 ~ /^[TDBRVWC]$/ { print "D", unit, $3 }' >> "$symbols"
	done
done
symbol_edges=$(awk '
	$1 == "D" { def[$3] = $2; next }
	{ use[NR] = $2 " " $3 }
	END {
		for (i in use) {
			split(use[i], p, " ")
			if ((p[2] in def) && def[p[2]] != p[1])
				print p[1], def[p[2]], p[2]
		}
	}' "$symbols" | sort -u)
while read -r from to symbol; do
	[ -n "$from" ] || continue
	if ! allowed "${from%%/*}" "${to%%/*}"; then
		fail "$lib/$from.c uses $symbol from $lib/$to.c, but ${from%%/*} may use only: $(uses_of "${from%%/*}")"
	fi
done <<< "$symbol_edges"
loops "object files (by the symbols they take from each other)" < <(
	awk '$1 == "D" { print $2, $2 }' "$symbols"
	echo "$symbol_edges" | awk 'NF { print $1, $2 }')

if [ "$errors" -gt 0 ]; then
	echo "layers: $errors problem(s)" >&2
	exit 1
fi
echo "layers: ok (${#stages[@]} stages: ${stages[*]})"
