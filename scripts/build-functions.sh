#!/usr/bin/env bash
# `make build`: builds every Lambda function of template.yaml once, for one architecture, into
#   dist/lambda/<binary>/bootstrap   each function's code (its CodeUri is dist/lambda/<binary>/)
#   dist/lambda/architecture         arm64 or x86_64, what they were built for; `make deploy`
#                                    passes it to the stack as FunctionArchitecture
# with one `cargo lambda build --release` for all the binaries (cargo-lambda links them with zig
# for provided.al2023's glibc, on any host).
#
# ARCH=arm64 or ARCH=x86_64 chooses. Without it: arm64 (Graviton) when the Rust toolchain has the
# aarch64-unknown-linux-gnu standard library, otherwise x86_64, with a warning saying how to add it.
# Needs cargo-lambda and zig (.venv-sam, installed by scripts/bootstrap-venv.sh).
#
# scripts/build-functions.sh --check builds nothing: it checks that dist/lambda holds a bootstrap
# of the recorded architecture for every function of the template, and prints that architecture
# (scripts/deploy.sh runs it before deploying).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  "") mode=build ;;
  --check) mode=check ;;
  *)
    echo "usage: scripts/build-functions.sh [--check]" >&2
    exit 2
    ;;
esac

LAMBDA_DIR=dist/lambda
TEMPLATE=template.yaml
# Each binary's budget, in bytes: 8 MB, as the benchmark counts them (10^6 bytes).
SIZE_BUDGET=8000000

die() {
  echo "build-functions: error: $*" >&2
  exit 1
}

# The binaries: each function's CodeUri names one (dist/lambda/<binary>/).
mapfile -t binaries < <(sed -n "s|^ *CodeUri: $LAMBDA_DIR/\([a-z0-9-]*\)/\$|\1|p" "$TEMPLATE")
functions=$(grep -c '^ *Type: AWS::Serverless::Function$' "$TEMPLATE" || true)
if [ "${#binaries[@]}" -eq 0 ] || [ "${#binaries[@]}" -ne "$functions" ]; then
  die "$TEMPLATE has $functions function(s) but ${#binaries[@]} CodeUri: $LAMBDA_DIR/<binary>/ line(s); every function's CodeUri must name its binary that way"
fi

# check_artifacts ARCH: each function's bootstrap is there, is an ELF executable for ARCH and
# fits the budget (a warning when it does not); prints the sizes.
check_artifacts() {
  local arch=$1 machine b f got size
  case $arch in
    arm64) machine=b700 ;;  # ELF e_machine EM_AARCH64 (183), little-endian
    x86_64) machine=3e00 ;; # ELF e_machine EM_X86_64 (62)
  esac
  local over=()
  printf '  %-20s %10s\n' function bytes >&2
  for b in "${binaries[@]}"; do
    f="$LAMBDA_DIR/$b/bootstrap"
    [ -f "$f" ] || die "$f is missing: run make build"
    [ -x "$f" ] || die "$f is not executable: run make build"
    [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || die "$f is not an ELF binary"
    got=$(od -An -tx1 -j18 -N2 "$f" | tr -d ' \n')
    [ "$got" = "$machine" ] || die "$f is not an $arch binary (ELF e_machine bytes $got, want $machine): run make build"
    size=$(stat -c %s "$f")
    printf '  %-20s %10d\n' "$b" "$size" >&2
    if [ "$size" -ge "$SIZE_BUDGET" ]; then
      over+=("$b ($size bytes)")
    fi
  done
  if [ "${#over[@]}" -gt 0 ]; then
    echo "build-functions: WARNING: over the $SIZE_BUDGET-byte (8 MB) budget: ${over[*]}" >&2
  fi
}

if [ "$mode" = check ]; then
  [ -f "$LAMBDA_DIR/architecture" ] || die "$LAMBDA_DIR/architecture is missing: run make build"
  arch=$(cat "$LAMBDA_DIR/architecture")
  case $arch in
    arm64 | x86_64) ;;
    *) die "$LAMBDA_DIR/architecture says '$arch', not arm64 or x86_64: run make build" ;;
  esac
  check_artifacts "$arch"
  echo "$arch"
  exit 0
fi

command -v rustc >/dev/null 2>&1 || die "rustc not found: install the Rust toolchain (rustup)"
sysroot=$(rustc --print sysroot)
has_std() { [ -d "$sysroot/lib/rustlib/$1/lib" ]; }
target_of() {
  case $1 in
    arm64) echo aarch64-unknown-linux-gnu ;;
    x86_64) echo x86_64-unknown-linux-gnu ;;
  esac
}

case "${ARCH:-}" in
  "")
    if has_std aarch64-unknown-linux-gnu; then
      arch=arm64
    else
      arch=x86_64
      {
        echo "================================================================================"
        echo "build-functions: WARNING: building the functions for x86_64, not arm64 (Graviton)."
        echo "  The Rust toolchain ($(rustc --version)) has no standard library for"
        echo "  aarch64-unknown-linux-gnu, so the arm64 binaries cannot be built here. Add it with"
        echo "      rustup target add aarch64-unknown-linux-gnu"
        echo "  and run make build again; ARCH=x86_64 make build chooses x86_64 without this warning."
        echo "  The stack will run x86_64: make deploy passes what was built as FunctionArchitecture."
        echo "================================================================================"
      } >&2
    fi
    ;;
  arm64 | x86_64) arch=$ARCH ;;
  *) die "ARCH is '$ARCH'; it must be arm64 or x86_64 (or unset: arm64 when its standard library is installed)" ;;
esac
target=$(target_of "$arch")
if ! has_std "$target"; then
  die "ARCH=$arch needs the $target standard library, which $(rustc --version) does not have: rustup target add $target"
fi

export PATH="$PWD/.venv-sam/bin:$PATH"
command -v cargo-lambda >/dev/null 2>&1 || die "cargo-lambda not found in .venv-sam/bin: run make venv (scripts/bootstrap-venv.sh)"

# Nothing of an earlier build (another architecture, a function since removed) is left to deploy.
rm -rf "$LAMBDA_DIR"
echo "build-functions: building ${#binaries[@]} functions for $arch ($target): ${binaries[*]}" >&2
bin_args=()
for b in "${binaries[@]}"; do
  bin_args+=(--bin "$b")
done
# --skip-target-check: the standard library is there (checked above); cargo-lambda would otherwise
# try to download it with rustup.
cargo lambda build --release --locked --target "$target" --skip-target-check \
  --lambda-dir "$LAMBDA_DIR" "${bin_args[@]}"

check_artifacts "$arch"

# Written last: an interrupted or failed build leaves no architecture, and make deploy refuses it.
echo "$arch" >"$LAMBDA_DIR/architecture"
echo "build-functions: built ${#binaries[@]} functions for $arch into $LAMBDA_DIR/ (recorded in $LAMBDA_DIR/architecture)" >&2
