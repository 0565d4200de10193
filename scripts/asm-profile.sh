#!/usr/bin/env bash
# Where a method's time goes, instruction by instruction: runs a gptfast command under perf (cpu-clock samples) with
# HotSpot printing the machine code C2 makes of the named methods, then prints each printed method's share of all
# samples and the hot instructions of those whose name contains FILTER (scripts/asm-profile/AsmAnnotate.java).
# Needs perf, gcc and capstone's headers (Debian: apt-get install linux-perf gcc libcapstone-dev); the disassembler
# plugin HotSpot prints with is built once into target/asm-profile. Printing slows the JIT's first minutes: profile
# runs long enough (repetitions) that the steady state dominates.
# Usage: scripts/asm-profile.sh METHODS FILTER GPTFAST_ARGS...
#   METHODS: CompileCommand patterns, comma-separated, e.g. 'gptfast4j.tensor.TileKernels::panelPairTokens,gptfast4j.tensor.Q4_0Tensor::panelGroup'
#   e.g. scripts/asm-profile.sh 'gptfast4j.tensor.TileKernels::panelPairTokens' panelPairTokens bench --checkpoint M.gguf --prompt-tokens 128 --gen-tokens 0
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 3 ] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
methods=$1 filter=$2
shift 2
for tool in perf gcc; do command -v $tool >/dev/null || { echo "asm-profile: needs $tool" >&2; exit 2; }; done
out="$here/target/asm-profile"
mkdir -p "$out"
if [ ! -f "$out/hsdis-amd64.so" ]; then
  gcc -O2 -shared -fPIC -o "$out/hsdis-amd64.so" "$here/scripts/asm-profile/hsdis-capstone.c" -lcapstone \
    || { echo "asm-profile: building the disassembler failed (capstone's headers: apt-get install libcapstone-dev)" >&2; exit 2; }
fi
"$here/gptfast" --version >/dev/null # builds the jar when needed
source "$here/scripts/jdk.sh"
prints=()
IFS=',' read -ra patterns <<< "$methods"
for p in "${patterns[@]}"; do prints+=("-XX:CompileCommand=print,$p"); done
LD_LIBRARY_PATH="$out" perf record -q -e cpu-clock -F 2000 -o "$out/perf.data" -- "$JAVA_HOME/bin/java" "${GPTFAST_JVM_FLAGS[@]}" \
  -XX:+UnlockDiagnosticVMOptions "${prints[@]}" -jar "$here/target/gptfast4j.jar" "$@" > "$out/asm.txt" 2>&1 \
  || { echo "asm-profile: the run failed, see $out/asm.txt" >&2; exit 1; }
grep -F "| " "$out/asm.txt" || true # the command's own table, for bench
perf script -i "$out/perf.data" -F ip 2>/dev/null | sort | uniq -c > "$out/samples.txt"
"$JAVA_HOME/bin/java" "$here/scripts/asm-profile/AsmAnnotate.java" "$out/asm.txt" "$out/samples.txt" "$filter"
