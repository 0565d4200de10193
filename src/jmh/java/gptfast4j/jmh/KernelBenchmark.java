package gptfast4j.jmh;

import gptfast4j.io.GGUF;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.OffHeap;
import gptfast4j.tensor.Parallel;
import gptfast4j.tensor.Quantizer;
import gptfast4j.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * One kernel per weight format: matrix x vector (decode), matrix x 6 vectors (speculative verification), matrix x
 * 64 vectors (prefill) and matrix x N vectors as a prompt's batch ({@code -Dgptfast.jmh.tokens}, default 16), on one
 * thread ({@code -Dgptfast.jmh.threads} for more).
 * "cache": a 512 x 256 tensor from ../shared/reference (the format's real bytes; stays in L2, so this measures the
 * arithmetic). "memory": an n x n tensor made here, n = 4096 (64 MB in F32, but only 9-10 MB in the 4-bit formats,
 * which a large L3 may hold) or {@code -Dgptfast.jmh.n} (pass it with {@code -jvmArgsAppend}); {@code
 * -Dgptfast.jmh.cols} makes it n rows of that many columns (a model's shape, e.g. Llama-2-7B's 4096 x 11008). Report as
 * bytes/s: bytes of the tensor / time per matvec. "layout": the file's, or the one decode reads after its first step
 * ({@link Tensor#forDecode}: Q8_0, Q4_0, Q4_1 and the K-quants regroup their rows; the others are the file's either
 * way). {@code -Dgptfast.jmh.model=FILE.gguf} takes the tensor from a model file instead ({@code -Dgptfast.jmh.tensor},
 * default blk.0.ffn_up.weight), read through its mapping, or from a copy in anonymous memory with
 * {@code -Dgptfast.jmh.copy=true} (advised as huge pages with {@code -Dgptfast.jmh.advise=true}): how the memory
 * behind the same bytes changes the kernel's speed.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "-XX:PerMethodTrapLimit=100000", "-XX:PerMethodRecompilationCutoff=100000"}) // scripts/jdk.sh says why
public class KernelBenchmark {
    @Param({"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"})
    public String type;

    @Param({"cache", "memory"})
    public String size;

    @Param({"file", "decode"})
    public String layout;

    private Tensor tensor;
    private float[] x, out;

    @Setup(Level.Trial)
    public void setUp() {
        Parallel.setThreads(Integer.getInteger("gptfast.jmh.threads", 1));
        GGMLType t = GGMLType.valueOf(type);
        Path shared = Path.of(System.getProperty("gptfast.shared", "../shared"));
        Tensor small = Tensor.of(GGUF.read(shared.resolve("reference/models/mini-llama2-" + type + ".gguf")).tensors().get("blk.0.ffn_up.weight"));
        if (System.getProperty("gptfast.jmh.model") != null) {
            tensor = Tensor.of(GGUF.read(Path.of(System.getProperty("gptfast.jmh.model"))).tensors().get(System.getProperty("gptfast.jmh.tensor", "blk.0.ffn_up.weight")));
            if (Boolean.getBoolean("gptfast.jmh.copy")) {
                MemorySegment m = Arena.ofAuto().allocate(tensor.data.byteSize(), Boolean.getBoolean("gptfast.jmh.advise") ? 2 << 20 : 64);
                if (Boolean.getBoolean("gptfast.jmh.advise")) gptfast4j.io.HugePages.advise(m);
                MemorySegment.copy(tensor.data, 0, m, 0, m.byteSize());
                tensor = Tensor.of("copy", tensor.type, m, tensor.cols, tensor.rows);
            }
        } else if (size.equals("cache")) {
            tensor = small;
        } else {
            int n = Integer.getInteger("gptfast.jmh.n", 4096), cols = Integer.getInteger("gptfast.jmh.cols", n);
            MemorySegment f32 = hugePages(4L * n * cols);
            SplittableRandom random = new SplittableRandom(1);
            for (long i = 0; i < (long) n * cols; i++) f32.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, (float) random.nextGaussian());
            Tensor big = Tensor.of("random", GGMLType.F32, f32, cols, n);
            tensor = switch (t) {
                case F32 -> big;
                case Q8_0, Q4_0, Q4_1 -> Quantizer.quantizeInFileLayout(big, t, OffHeap.AUTOMATIC);
                // F16/BF16/K-quants: tile the reference tensor's bytes (speed does not depend on the values)
                default -> tiled(small, cols, n);
            };
        }
        if (layout.equals("decode")) tensor = tensor.forDecode(OffHeap.AUTOMATIC);
        x = new float[Math.max(64, TOKENS) * tensor.cols];
        out = new float[Math.max(64, TOKENS) * (int) tensor.rows];
        SplittableRandom random = new SplittableRandom(2);
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
    }

    /** Off-heap memory in 2 MB pages, as a model file in the page cache and the decode layouts' copies are mapped. */
    private static MemorySegment hugePages(long bytes) {
        MemorySegment m = Arena.ofAuto().allocate(bytes, 2 << 20);
        gptfast4j.io.HugePages.advise(m);
        return m;
    }

    private static Tensor tiled(Tensor small, int cols, int rows) {
        long rowBytes = small.type.bytesFor(cols);
        MemorySegment m = hugePages(rowBytes * rows);
        for (long off = 0; off < m.byteSize(); off += small.data.byteSize()) {
            MemorySegment.copy(small.data, 0, m, off, Math.min(small.data.byteSize(), m.byteSize() - off));
        }
        return Tensor.of("tiled", small.type, m, cols, rows);
    }

    @Benchmark
    public float[] matvec() {
        tensor.matvec(x, out);
        return out;
    }

    /** Six tokens: the verification of five speculated tokens (`--speculate-k`'s default) and the last one. */
    @Benchmark
    public float[] matmul6() {
        tensor.matmul(x, 6, out, (int) tensor.rows);
        return out;
    }

    @Benchmark
    public float[] matmul64() {
        tensor.matmul(x, 64, out, (int) tensor.rows);
        return out;
    }

    /** A prompt's batch of {@code -Dgptfast.jmh.tokens} tokens (default 16), which need not match decode steps. */
    @Benchmark
    public float[] matmulN() {
        tensor.matmul(x, TOKENS, out, (int) tensor.rows, false);
        return out;
    }

    private static final int TOKENS = Integer.getInteger("gptfast.jmh.tokens", 16);
}
