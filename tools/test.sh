#!/usr/bin/env bash
# tools/test.sh — THE test command: installs what is missing, builds, runs the whole test suite.
#
#   bash tools/test.sh                                  Release build in build/, every test
#   bash tools/test.sh --sanitize address,undefined     ASan+UBSan build in build-asan/, -LE heavy
#   bash tools/test.sh --sanitize thread                TSan build in build-tsan/, -LE heavy
#
# Options:
#   --sanitize S      address,undefined | thread (RelWithDebInfo, benchmarks off, heavy tests out)
#   --heavy-only      run only the tests labelled heavy (ctest -L heavy)
#   --with-heavy      keep the heavy tests in a sanitizer run
#   --label X         run only tests labelled X (ctest -L X); may be repeated
#   --exclude-label X leave out tests labelled X (ctest -LE X)
#   -R REGEX          run only tests whose name matches (ctest -R)
#   -j N              ctest parallelism (default 2)
#   --build-dir DIR   build here instead of build/, build-asan/ or build-tsan/
#   --no-deps         skip tools/deps.sh
#   --build-only      configure and build, run nothing
#   -- ARGS...        passed to ctest as they are
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

sanitize=""
heavy_only=0
with_heavy=0
labels=()
exclude_labels=()
regex=""
jobs=2
build_dir=""
deps=1
build_only=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize="${2:?--sanitize needs address,undefined or thread}"; shift 2 ;;
    --sanitize=*) sanitize="${1#*=}"; shift ;;
    --heavy-only) heavy_only=1; shift ;;
    --with-heavy) with_heavy=1; shift ;;
    --label|-L) labels+=("${2:?--label needs a label}"); shift 2 ;;
    --label=*) labels+=("${1#*=}"); shift ;;
    --exclude-label|-LE) exclude_labels+=("${2:?--exclude-label needs a label}"); shift 2 ;;
    --exclude-label=*) exclude_labels+=("${1#*=}"); shift ;;
    -R) regex="${2:?-R needs a regex}"; shift 2 ;;
    -j) jobs="${2:?-j needs a number}"; shift 2 ;;
    -j*) jobs="${1#-j}"; shift ;;
    --build-dir) build_dir="${2:?--build-dir needs a directory}"; shift 2 ;;
    --no-deps) deps=0; shift ;;
    --build-only) build_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "test.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

cmake_args=(-G Ninja)
case "$sanitize" in
  "")
    : "${build_dir:=build}"
    cmake_args+=(-DCMAKE_BUILD_TYPE=Release)
    ;;
  address|undefined|address,undefined|undefined,address)
    : "${build_dir:=build-asan}"
    cmake_args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRT_SANITIZE="$sanitize" -DRT_BUILD_BENCH=OFF)
    # Leaks are errors; a report ends the test with a non-zero status, not an abort + core.
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_init_order=1:check_initialization_order=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    ;;
  thread)
    : "${build_dir:=build-tsan}"
    cmake_args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRT_SANITIZE=thread -DRT_BUILD_BENCH=OFF)
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
    ;;
  *)
    echo "test.sh: --sanitize takes address,undefined or thread, not '$sanitize'" >&2
    exit 2
    ;;
esac

if [ "$deps" = 1 ]; then
  bash "$root/tools/deps.sh"
fi

echo "== configure $build_dir (${cmake_args[*]})"
conf_log=$(mktemp)
cmake -S . -B "$build_dir" "${cmake_args[@]}" >"$conf_log" 2>&1 || {
  cat "$conf_log" >&2
  rm -f "$conf_log"
  echo "test.sh: cmake configure failed" >&2
  exit 1
}
grep -v '^-- \(Check\|Detecting\|Performing\|Looking\|Found\|The \)' "$conf_log" || true
rm -f "$conf_log"

echo "== build $build_dir"
cmake --build "$build_dir"

if [ "$build_only" = 1 ]; then
  echo "test.sh: built $build_dir (--build-only: no tests run)"
  exit 0
fi

ctest_args=(--test-dir "$build_dir" --output-on-failure -j "$jobs" --no-tests=error
            --timeout 900)
if [ "$heavy_only" = 1 ]; then
  ctest_args+=(-L heavy)
elif [ -n "$sanitize" ] && [ "$with_heavy" = 0 ]; then
  ctest_args+=(-LE heavy)   # heavy tests (big n, timing) run only in the plain build
fi
for l in ${labels[@]+"${labels[@]}"}; do ctest_args+=(-L "$l"); done
for l in ${exclude_labels[@]+"${exclude_labels[@]}"}; do ctest_args+=(-LE "$l"); done
if [ -n "$regex" ]; then ctest_args+=(-R "$regex"); fi
ctest_args+=(${extra[@]+"${extra[@]}"})

# Some kernels randomise mmap with more bits than GCC 12's ThreadSanitizer accepts
# ("unexpected memory mapping"); then run the tests with address randomisation off.
runner=()
if [ "$sanitize" = thread ]; then
  probe_dir=$(mktemp -d)
  trap 'rm -rf "$probe_dir"' EXIT
  printf 'int main() { return 0; }\n' >"$probe_dir/p.cpp"
  if c++ -fsanitize=thread -o "$probe_dir/p" "$probe_dir/p.cpp" 2>/dev/null &&
     ! "$probe_dir/p" >"$probe_dir/out" 2>&1; then
    if grep -q "unexpected memory mapping" "$probe_dir/out" && command -v setarch >/dev/null; then
      echo "test.sh: this kernel's mmap randomisation breaks TSan; running ctest under setarch -R"
      runner=(setarch "$(uname -m)" -R)
    fi
  fi
fi

echo "== ctest ${ctest_args[*]}"
[ -n "$sanitize" ] && env | grep -E '^(ASAN|UBSAN|TSAN)_OPTIONS=' || true
log=$(mktemp)
set +e
${runner[@]+"${runner[@]}"} ctest "${ctest_args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if grep -q "No tests were found" "$log"; then
  echo "test.sh: FAILED: ctest found no tests in $build_dir" >&2
  rc=1
fi
rm -f "$log"
if [ "$rc" != 0 ]; then
  echo "test.sh: FAILED (ctest exit status $rc, $build_dir)" >&2
  exit "$rc"
fi
echo "test.sh: ok ($build_dir${sanitize:+, sanitize=$sanitize})"
