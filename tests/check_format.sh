#!/usr/bin/env bash
# Fails when a C or C++ source of the tree is not formatted as .clang-format says (Debian's
# clang-format), naming the files. Usage: tests/check_format.sh SOURCE_DIR
# To fix: clang-format -i $(git ls-files '*.h' '*.cpp' '*.c')
set -euo pipefail
cd "$1"
command -v clang-format > /dev/null || { echo "check_format: clang-format is not installed (tools/bootstrap installs it)" >&2; exit 1; }
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.h' '*.cpp' '*.c')
else
  mapfile -t files < <(find include src tests tools -name '*.h' -o -name '*.cpp' -o -name '*.c')
fi
[ ${#files[@]} -gt 0 ] || { echo "check_format: no sources found in $1" >&2; exit 1; }
bad=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  clang-format --dry-run -Werror "$f" > /dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check_format: ${#bad[@]} of ${#files[@]} files are not clang-formatted:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "fix with: clang-format -i ${bad[*]}" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files formatted"
