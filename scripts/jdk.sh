# Sourced by ./gptfast and ./run-tests: sets JAVA_HOME to a JDK >= 25 (JAVA_HOME, then /usr/lib/jvm/*, /opt/*,
# SDKMAN's and macOS's JDK folders, then `java` on the PATH), or explains that there is none and exits.
# The major version from the JDK's `release` file, without starting a JVM (each `java -version` costs 0.1-0.2 s of
# every launch); from `java -version` where there is no such file.
java_major() {
  local v=""
  [ -f "$1/release" ] && v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release")
  [ -n "$v" ] || v=$("$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  echo "$v"
}
find_jdk() {
  local candidates=()
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  for d in /usr/lib/jvm/* /opt/jdk* /opt/java/* "$HOME"/.sdkman/candidates/java/* /Library/Java/JavaVirtualMachines/*/Contents/Home; do [ -d "$d" ] && candidates+=("$d"); done
  if command -v java >/dev/null 2>&1; then candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"); fi
  for d in "${candidates[@]}"; do
    if [ -x "$d/bin/java" ] && [ -x "$d/bin/javac" ]; then
      local v; v=$(java_major "$d")
      if [ -n "$v" ] && [ "$v" -ge 25 ]; then echo "$d"; return 0; fi
    fi
  done
  return 1
}
if ! JAVA_HOME=$(find_jdk); then
  echo "gptfast: no JDK 25 or newer found (looked at \$JAVA_HOME, /usr/lib/jvm, /opt, SDKMAN, /Library/Java and the PATH); install one and set JAVA_HOME" >&2
  exit 1
fi
export JAVA_HOME
if ! command -v mvn >/dev/null 2>&1; then
  echo "gptfast: Maven (mvn) is needed to build; install it (e.g. apt-get install maven)" >&2
  exit 1
fi
# Maven 3.8 itself warns about sun.misc.Unsafe on JDK 25; that is Maven's business, not ours
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
# The JVM flags of every gptfast run (the launcher, the benchmark scripts; the tests' are the pom's jvm.flags).
# PerMethodTrapLimit and PerMethodRecompilationCutoff: C2 speculates on the class of each vector a kernel's Vector API
# calls return (a guard, and a trap for any other class) until the methods it inlines have, summed over every
# inlining, trapped 100 times or been deoptimized 201 times (the defaults). The Vector API's methods are shared by all
# kernels and collect such counts as a process runs; past those limits C2 compiles the kernels' calls with a
# virtual-call fallback, which makes every vector a heap object: 20-360 KB allocated per decode step of the mini
# models, in about one JVM in four of the test suite. docs/kernel-log.md, "Session 20".
# -Xmn16m: a young generation of 16 MB rather than a third of the initial heap (about 100 MB here), all of whose
# pages the first seconds' garbage (the kernels' Vector API calls before C2 has compiled them) would touch and keep
# resident: TinyLlama Q4_0 generate, 100 tokens, peak resident 855 -> 772 MB (32 MB), 128 -> 156 (32 MB) -> 195 ms
# (16 MB) of collections; Llama-2-7B Q4_K, 300 tokens, 4256.6 (32 MB) -> 4239.7 MB (16 MB), where issue #3 allows
# 4255.8 (the file, the KV cache and 300 MB). Decode allocates nothing, so it runs no collections either way.
# CompileThresholdScaling for the kernels' package: the JIT compiles them after a twentieth of the usual calls and
# loop iterations, so that a process's first decode steps spend less time in the interpreter's and C1's code of the
# Vector API (which boxes every vector): TinyLlama Q4_0 `generate` 64 tokens, three alternating pairs, 23.29/22.65/
# 21.92 -> 27.28/27.87/26.68 tokens/s, wall 5.91/5.89/5.97 -> 5.55/5.35/5.47 s; Llama-2-7B Q4_0 32 tokens 6.14/6.45
# -> 7.95/6.83 tokens/s, prefill 3.01/2.81 -> 2.37/2.33 s; `bench` (warm) unchanged. `quiet`: the JVM would print
# the command on stdout, into the generated text.
# MaxNodeLimit 1 for the Vector API's fallbacks (the lane-by-lane loops and lambdas an operation runs when it is not
# intrinsified): C2 gives up on them at once, as methods of their own, and C1 compiles them instead. Before C2 has
# compiled a kernel, its interpreted or C1 code calls them, and C2 spent half its time in a fresh process compiling
# 300-odd of them (1.5 of 3.1 s of C2 time, TinyLlama Q4_0 `generate`, JFR), queued ahead of the kernels. C2's code
# of the kernels has the operations intrinsified and never runs a fallback. (CompileCommand has no C2-only exclude;
# a compiler directives file has one, but the JVM prints a line on stdout when it reads it.) TinyLlama Q4_0
# `generate` 64 tokens, alternating: wall 5.38/5.62/5.39/5.33 -> 4.52/4.07/5.04/4.81 s, prefill of 5 tokens
# 1.34-1.67 -> 1.00-1.22 s, 28.3-29.4 -> 31.6-36.2 tokens/s (in a slower hour 6.40-7.80 -> 5.59-6.44 s); Llama-2-7B
# Q4_0 32 tokens: wall 16.74/15.06 -> 14.41/13.90 s, prefill 3.89/3.19 -> 3.28/2.70 s, 5.76/5.26 -> 5.84/5.81 tokens/s.
# Warm `bench` (8 alternating pairs, TinyLlama Q4_0): pp128 mean 165.0 -> 161.5, tg64 58.0 -> 60.5, within its noise.
# The patterns name the JDK's own methods: LauncherFlagsTest fails if one matches no method of the JDK it runs on.
GPTFAST_JVM_FLAGS=(--add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseSerialGC -Xmn16m
  -XX:PerMethodTrapLimit=100000 -XX:PerMethodRecompilationCutoff=100000
  -XX:CompileCommand=quiet '-XX:CompileCommand=CompileThresholdScaling,gptfast4j.tensor.*::*,0.05')
for fallback in apply 'lambda$*' 'bOp*' 'uOp*' 'tOp*' 'rOp*' rvOp bTest ldOp ldLongOp stOp stLongOp defaultCast defaultReinterpret; do
  GPTFAST_JVM_FLAGS+=("-XX:CompileCommand=MaxNodeLimit,jdk.incubator.vector.*::$fallback,1")
done
# inline for Unsafe's unaligned short read and its byte-order helper, which a block's f16 scale read from a mapped
# file (MemorySegment.get(SHORT_LE, ...)) ends in: C2 inlines them as a rule, but a method compiled early (the
# threshold scaling above), on a young profile, sometimes saw their call site as cold ("failed to inline: low call site
# frequency") and called them once per block. The files' Q4_0 dequantization of TinyLlama's ffn_up took 1.74-1.87 ms
# instead of 0.59-0.78 in 9 of 12 JVMs of a scratch loop, 2.1-2.6 thread-ms instead of 1.0-1.1 in 2 of 16 JVMs of a
# copy of the engine's tile loop; with both inlined, 0.52-0.82 ms in 8 of 8 (getShortUnaligned alone: 4 of 8 slow,
# convEndian then the call). `bench --layout file`, alternating: TinyLlama Q4_0 pp96 153.5/155.1/159.5/173.1 ->
# 160.9/154.2/172.1/175.1 tokens/s, Llama-2-7B Q4_0 pp64 19.49/23.26 -> 22.54/23.83; the decode layouts level
# (TinyLlama pp96 191.9/187.5 -> 194.5/171.6, tg32 59.0/55.5 -> 57.2/51.3).
for inline in getShortUnaligned convEndian; do
  GPTFAST_JVM_FLAGS+=("-XX:CompileCommand=inline,jdk.internal.misc.Unsafe::$inline")
done
