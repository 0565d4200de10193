# Sourced by the make-*-fixture.sh scripts: the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp
# (run that once first), the llama.cpp tools named built in it, the fixture's folder made, a scratch folder removed at
# exit. Usage: source scripts/llamacpp-fixture.sh FIXTURE TOOL...   (sets here, bin, out: the fixture's folder, tmp)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$here/target/llamacpp/src/build/bin"
[ -d "$here/target/llamacpp/src/build" ] || { echo "$(basename "$0"): run scripts/vs-llamacpp.sh first (it builds llama.cpp in target/llamacpp)" >&2; exit 2; }
(cd "$here/target/llamacpp/src" && cmake --build build --target "${@:2}" -j "$(nproc)" >/dev/null)
out="$here/src/test/resources/$1" tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
