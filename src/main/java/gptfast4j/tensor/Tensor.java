package gptfast4j.tensor;

import gptfast4j.io.Mapped;
import gptfast4j.io.ModelFormatException;
import gptfast4j.io.TensorData;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A weight matrix in one storage format, read in place from its (usually memory-mapped) bytes.
 * Shape in GGML order: {@code cols = shape[0]} is the contiguous input dimension; all other dimensions are flattened
 * into {@code rows} (an expert tensor {@code [cols, rows, experts]} is {@code rows * experts} rows).
 * <p>
 * A format implements two things on its own bytes: the dot product of one row with a float vector (the hot loop of
 * decoding) and the dequantization of one row (embeddings, tests). Matrix-vector and matrix-matrix products are
 * built here on top of the row dot product and split across the {@link Parallel} pool by rows, which is the same as
 * splitting by bytes since all rows have the same size.
 */
public abstract sealed class Tensor permits F32Tensor, HalfFloatTensor, RowGroupTensor, KQuantTensor, BlockTensor {
    static final VectorSpecies<Float> F_SPECIES = FloatVector.SPECIES_PREFERRED;
    /**
     * Whether C2 emits AVX2's instructions at most, as on x86 without AVX-512 (or with {@code -XX:UseAVX=2}, HotSpot's
     * own choice on Skylake Xeons): sixteen vector registers where AVX-512, NEON and SVE have 32 ({@link
     * TileKernels#SIXTEEN_REGISTERS}), and no permute of two tables ({@code selectFrom(v1, v2)} is then a sequence of
     * rearranges and blends, {@link IQ4Lanes#preferred}). HotSpot's own flag says which.
     */
    static final boolean X86_WITHOUT_AVX512 = x86WithoutAvx512();

    /**
     * What the kernels run on, for a benchmark's report: the float vectors' width, and "AVX2" on x86 without AVX-512
     * (sixteen registers there change which prompt kernels run, and how fast), e.g. {@code 512-bit vectors}.
     */
    public static String vectorUnits() {
        return F_SPECIES.vectorBitSize() + "-bit vectors" + (X86_WITHOUT_AVX512 ? " (AVX2)" : "");
    }

    private static boolean x86WithoutAvx512() {
        try {
            var hotSpot = java.lang.management.ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
            return hotSpot != null && Integer.parseInt(hotSpot.getVMOption("UseAVX").getValue()) < 3;
        } catch (IllegalArgumentException e) { // no such option: not an x86 HotSpot
            return false;
        }
    }
    static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final VectorSpecies<Integer> I_SPECIES = F_SPECIES.withLanes(int.class);
    /** As many int16 lanes as a float vector has lanes (half its bits). */
    static final VectorSpecies<Short> S_SPECIES = VectorSpecies.of(short.class, VectorShape.forBitSize(F_SPECIES.vectorBitSize() / 2));
    /**
     * As many bytes as a float vector has lanes (a quarter of its bits), or null with 128-bit vectors (ARM NEON, or
     * {@code -XX:MaxVectorSize=16}), where that would be 32 bits and the smallest vector is 64.
     * <p>
     * Code that C2 must not leave out of line (the kernels, and dequantization, which the token embedding's lookup
     * inlines into a decode step) widens bytes with the Vector API's own calls ({@code convertShape(B2I, I_SPECIES,
     * 0)}, B2F) where this species exists ({@link #BYTE_SHIFTS} where not), written out at each site rather than
     * called through a helper of ours returning the vector: such a helper is dropped past C2's inlining budget, or
     * left as a call when the caller's profile has no counts ("already compiled into a medium method"), and its
     * vectors then box (the reference mini models allocated 0.8 to 300 KB per decode step so); the API's calls are
     * inlined whatever the budget. Since session 21 no helper of that kind is left.
     */
    static final VectorSpecies<Byte> B_SPECIES = F_SPECIES.vectorBitSize() >= 256
            ? VectorSpecies.of(byte.class, VectorShape.forBitSize(F_SPECIES.vectorBitSize() / 4)) : null;
    /**
     * {@link #B_SPECIES}, or the smallest vector (64 bits) whose first four bytes 128-bit vectors widen: for loads
     * that may read past their L bytes, which the lane kernels' scales can (their quants follow them).
     */
    static final VectorSpecies<Byte> LANE_BYTES = B_SPECIES != null ? B_SPECIES : ByteVector.SPECIES_64;
    /**
     * For 128-bit vectors (four lanes): how far each of an int's four bytes moves to reach the top of its lane. Where
     * {@link #B_SPECIES} is null, bytes are widened from an int broadcast, shifted up by these and arithmetically
     * down by 24, written out for the same reason as above: with a helper doing it, the mini Q5_K model's embedding
     * lookup allocated in decode in 2 of 12 runs of the 128-bit tests.
     */
    static final IntVector BYTE_SHIFTS = B_SPECIES == null ? IntVector.fromArray(I_SPECIES, new int[]{24, 16, 8, 0}, 0) : null;

    /**
     * Rows handed to one thread at a time are a multiple of this: two groups of the lane layouts (at least 16 rows),
     * so that the pair kernels ({@link RowLanes.PairKernel}) rarely have a group left over. From {@link #F_SPECIES},
     * not {@code RowLanes.L} (the same number): a process that touched {@code RowLanes} first initialized this class
     * while {@code RowLanes.L} was still 0, and its chunks were 16 rows, one panel where the float tiles take whole
     * pairs (the results the same, the pair kernel unused).
     */
    private static final int ROW_GRANULE = Math.max(16, 2 * F_SPECIES.length());
    /** Bytes of dequantized weights {@link #matmul} keeps in cache at a time. */
    static final long TILE_BYTES = 384 * 1024;

    public final String name;
    public final GGMLType type;
    /**
     * The weights, always a plain native segment, also when they lie in a file mapping: the JDK's vector loads
     * profile the segment's class, and a profile that sees both mapped and native segments (file and decode copies)
     * inlines both cases everywhere, which took Q4_K's kernel past C2's inlining budget (its vectors then boxed:
     * about 200 KB allocated per decode step of the reference mini model loaded after other formats).
     */
    public final MemorySegment data;
    /** The file mapping's slice that {@link #data} views, whose pages {@link #releaseFilePages} gives back; else null. */
    private final MemorySegment mapping;
    public final int cols;
    public final long rows;
    public final long rowBytes;

    protected Tensor(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        this(name, type, data, cols, rows, type.bytesFor(cols));
    }

    /** A tensor in a layout of its own whose rows take {@code rowBytes} bytes, not its type's. */
    protected Tensor(String name, GGMLType type, MemorySegment data, int cols, long rows, long rowBytes) {
        this.name = name;
        this.type = type;
        this.mapping = data.isMapped() ? data : null;
        this.data = data.isMapped() ? data.reinterpret(data.byteSize()) : data;
        this.cols = cols;
        this.rows = rows;
        this.rowBytes = rowBytes;
    }

    /** Releases the file's pages of a tensor read from a mapping from this process, once a copy has replaced them. */
    final void releaseFilePages() {
        if (mapping != null) Mapped.release(mapping, 0, mapping.byteSize());
    }

    /**
     * Releases the file's pages of this tensor's bytes {@code [from, to)}, once a copy made in pieces has read them,
     * so that the process does not hold a large tensor twice at the end of its copy (Llama-2-7B Q4_K: its 107 MB
     * output head, the last tensor the decode layouts' copy makes; {@code quantize}'s source). A page a range shares with one not yet copied
     * is read back from the page cache when needed.
     */
    public final void releaseFilePages(long from, long to) {
        if (mapping != null) Mapped.release(mapping, from, to);
    }

    /**
     * Releases the file's pages of row {@code row} (and the rest of the pages it shares), for a table read a row at a
     * time (embeddings); a later read of them maps them again from the page cache. Nothing for a tensor not mapped.
     */
    public final void releaseRowPages(long row) {
        releaseFilePages(row * rowBytes, (row + 1) * rowBytes);
    }

    /** Wraps a tensor's bytes in the kernel class of its format. */
    public static Tensor of(TensorData t) {
        long cols = t.shape()[0];
        if (cols > Integer.MAX_VALUE) throw new ModelFormatException("tensor " + t.name() + " rows are too long: " + cols);
        long rows = t.elementCount() / cols;
        return of(t.name(), t.type(), t.data(), (int) cols, rows);
    }

    public static Tensor of(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        if (cols % type.blockSize != 0) {
            throw new ModelFormatException("tensor " + name + ": row length " + cols + " is not a multiple of the " + type + " block size " + type.blockSize);
        }
        return switch (type) {
            case F32 -> new F32Tensor(name, data, cols, rows);
            case F16 -> new F16Tensor(name, data, cols, rows);
            case BF16 -> new BF16Tensor(name, data, cols, rows);
            case Q8_0 -> new Q8_0Tensor(name, data, cols, rows);
            case Q4_0 -> new Q4_0Tensor(name, data, cols, rows);
            case Q4_1 -> new Q4_1Tensor(name, data, cols, rows);
            case Q4_K -> new Q4_KTensor(name, data, cols, rows);
            case Q5_K -> new Q5_KTensor(name, data, cols, rows);
            case Q6_K -> new Q6_KTensor(name, data, cols, rows);
            case Q5_0 -> new Q5_0Tensor(name, data, cols, rows);
            case Q5_1 -> new Q5_1Tensor(name, data, cols, rows);
            case Q2_K -> new Q2_KTensor(name, data, cols, rows);
            case Q3_K -> new Q3_KTensor(name, data, cols, rows);
            case IQ4_NL -> new IQ4_NLTensor(name, data, cols, rows);
            case IQ4_XS -> new IQ4_XSTensor(name, data, cols, rows);
            case IQ1_S -> new IQ1_STensor(name, data, cols, rows);
            case IQ1_M -> new IQ1_MTensor(name, data, cols, rows);
            case IQ2_XXS -> new IQ2_XXSTensor(name, data, cols, rows);
            case IQ2_XS -> new IQ2_XSTensor(name, data, cols, rows);
            case IQ2_S -> new IQ2_STensor(name, data, cols, rows);
            case IQ3_XXS -> new IQ3_XXSTensor(name, data, cols, rows);
            case IQ3_S -> new IQ3_STensor(name, data, cols, rows);
            case TQ1_0 -> new TQ1_0Tensor(name, data, cols, rows);
            case TQ2_0 -> new TQ2_0Tensor(name, data, cols, rows);
            case MXFP4 -> new MXFP4Tensor(name, data, cols, rows);
            default -> throw new ModelFormatException("tensor " + name + " has unsupported tensor type " + type);
        };
    }

    /**
     * Rows {@code [first, first + count)} as a tensor of their own, a view of the same bytes (tensor parallelism's
     * share of a matrix, {@code gptfast4j.model.TensorParallel}): only of a tensor in its file's layout, whose rows lie
     * one after another.
     */
    public Tensor rows(long first, long count) {
        if (this instanceof PanelRows p && p.inLanes()) throw new IllegalStateException(name + " is in its decode layout, whose rows are interleaved");
        if (first < 0 || count < 1 || first + count > rows) throw new IllegalArgumentException("rows " + first + ".." + (first + count - 1) + " of " + name + " (" + rows + " rows)");
        MemorySegment source = mapping != null ? mapping : data;
        return of(name, type, source.asSlice(first * rowBytes, count * rowBytes), cols, count);
    }

    /** Whether this tensor's bytes and {@code other}'s overlap: one is the other, or a view of some of its rows ({@link #rows}). */
    public boolean overlaps(Tensor other) {
        long a = data.address(), b = other.data.address();
        return a < b + other.data.byteSize() && b < a + data.byteSize();
    }

    /** Dot product of row {@code row} with {@code x[xOffset .. xOffset + cols)}. */
    public abstract float dot(long row, float[] x, int xOffset);

    /**
     * This tensor in the layout its format decodes fastest from, or itself where that is the file's. F16, BF16, Q8_0,
     * Q4_0, Q4_1 and the K-quants are repacked, rows one per vector lane (a copy the size of the tensor, 1-6% more for the
     * K-quants, plus a last group's padding; the mapped pages are then released), the copy in {@code memory}.
     */
    public Tensor forDecode(OffHeap memory) {
        return this;
    }

    /** The bytes {@link #forDecode} allocates for its copy: 0 where it returns this tensor. */
    public long decodeCopyBytes() {
        return 0;
    }

    /** Writes row {@code row} as floats to {@code out[outOffset .. outOffset + cols)}. */
    public abstract void dequantizeRow(long row, float[] out, int outOffset);

    /**
     * Rows {@code firstRow .. firstRow + n} as floats, row i at {@code out[outOffset + i * stride]}: the matrix x
     * matrix tiles. A method of its own, not only {@link #dequantizeRow}'s loop, so that a format can read its
     * decode layout here in a way the token embedding's lookup (which C2 inlines into a decode step) never parses: a
     * method's branch profile is shared by all its callers (docs/kernel-log.md, session 19).
     */
    void dequantizeRows(long firstRow, int n, float[] out, int outOffset, int stride) {
        for (int i = 0; i < n; i++) dequantizeRow(firstRow + i, out, outOffset + i * stride);
    }

    public long byteSize() {
        return rows * rowBytes;
    }

    /**
     * {@code out[outOffset + r] = dot(firstRow + r, x)} for {@code r < nRows}: matrix x vector. The pool's task is
     * this tensor's {@link RowTask}, filled in per call, so that a decode step allocates nothing; it is locked for
     * the call, in case two threads use one tensor at once. The activations are prepared once, by the caller
     * ({@link #prepare}), as the pool may hand a thread several ranges of one call.
     */
    public void matvec(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int nRows) {
        RowTask task = rowTask;
        synchronized (task) {
            prepare(x, xOffset, task);
            task.out = out;
            task.outOffset = outOffset;
            task.firstRow = firstRow;
            try {
                Parallel.run(nRows, ROW_GRANULE, task);
            } finally {
                task.clear(); // keep no caller's arrays reachable
                task.out = null;
            }
        }
    }

    private final RowTask rowTask = new RowTask(this);

    /**
     * {@link #matvec}'s rows {@code firstRow .. firstRow + nRows} on the calling thread: for products too small to share
     * out, which the caller runs many of side by side on the pool's threads (multi-head latent attention's per-head
     * matrices, 512 rows of 128 in DeepSeek-V2-Lite: one pool call each would cost more than the products). Each
     * thread prepares x in its own holder and scratch, so threads may run this on one tensor at once.
     */
    public void matvecHere(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int nRows) {
        if (firstRow < 0 || nRows < 0 || firstRow + nRows > rows) throw new IllegalArgumentException("rows " + firstRow + "+" + nRows + " of " + name + " (" + rows + " rows)");
        RowTask task = PREPARED.get();
        prepare(x, xOffset, task);
        try {
            dotRows(task.x, task.xOffset, task.sums, task.quants, out, outOffset, firstRow, 0, nRows);
        } finally {
            task.clear();
        }
    }

    /**
     * Each thread's holder of the activations it prepares for {@link #matvecHere} and {@link EachInput}: one per thread,
     * made at its first such call (one per thread and tensor would be made at each tensor's first call on the thread,
     * in later decode steps too, where a mixture's experts or a pool's ranges change).
     */
    private static final ThreadLocal<RowTask> PREPARED = ThreadLocal.withInitial(() -> new RowTask(null));

    /**
     * Whether {@link #prepare} makes the same activations for this tensor as for {@code other}, so that one
     * preparation serves both ({@link SharedInput}): one format and one row length (the formats whose preparation
     * depends on more say so).
     */
    boolean preparesLike(Tensor other) {
        return getClass() == other.getClass() && cols == other.cols;
    }

    /**
     * Matrices that each read their own x (a decode step's chosen experts' down projections), each to its own output,
     * in one pool call over all their rows rather than one call each: a call ends when its slower thread is done, and
     * a mixture's decode step made one per chosen expert (Qwen3-30B-A3B: 384 a token, about 21 us each). Each thread
     * prepares a matrix's x for each range of its rows it takes ({@link #prepare}: the formats' prepared activations
     * live in each thread's own scratch), which costs a row's worth of work per range. Each output is exactly its
     * matrix's {@link #matvec}. One per caller, holding the call's arguments so that a decode step allocates nothing.
     */
    public static final class EachInput implements Parallel.RangeTask {
        private final Tensor[] parts;
        private final float[][] inputs, outs;
        /** Part i's rows are rows {@code starts[i] .. starts[i + 1]} of the call. */
        private final int[] starts;
        private int count;

        /** For up to {@code capacity} matrices at once. */
        public EachInput(int capacity) {
            parts = new Tensor[capacity];
            inputs = new float[capacity][];
            outs = new float[capacity][];
            starts = new int[capacity + 1];
        }

        /** {@code out[i] = matrices[i] · x[i]} for {@code i < n}. */
        public void matvec(Tensor[] matrices, float[][] x, float[][] out, int n) {
            if (n > parts.length) throw new IllegalArgumentException(n + " matrices for a call of at most " + parts.length);
            try {
                System.arraycopy(matrices, 0, parts, 0, n);
                System.arraycopy(x, 0, inputs, 0, n);
                System.arraycopy(out, 0, outs, 0, n);
                count = n;
                for (int i = 0; i < n; i++) starts[i + 1] = Math.addExact(starts[i], Math.toIntExact(parts[i].rows));
                Parallel.run(starts[n], ROW_GRANULE, this);
            } finally {
                Arrays.fill(parts, null); // keep no caller's arrays reachable
                Arrays.fill(inputs, null);
                Arrays.fill(outs, null);
            }
        }

        @Override
        public void run(int start, int end) {
            for (int i = 0; i < count; i++) {
                int from = Math.max(start, starts[i]), to = Math.min(end, starts[i + 1]);
                if (from >= to) continue;
                Tensor t = parts[i];
                RowTask task = PREPARED.get();
                t.prepare(inputs[i], 0, task);
                try {
                    t.dotRows(task.x, task.xOffset, task.sums, task.quants, outs[i], 0, 0, from - starts[i], to - starts[i]);
                } finally {
                    task.clear();
                }
            }
        }
    }

    /**
     * The matrices of a layer that read the same x (wq, wk and wv; w1 and w3; a decode step's chosen experts' w1s and
     * w3s), each to its own output
     * ({@code out[t * rows + r]}, as {@link #matmul} with a stride of the matrix's rows). For one token (decode), as
     * gpt-fast's fused {@code wqkv}: one pool call over all their rows instead of one per matrix, and x prepared once
     * where they prepare it alike ({@link #preparesLike}); otherwise one {@link #matmul} each. Each output is exactly
     * its matrix's {@link #matvec}: a row's dot product does not depend on how the rows are split. A decode step of
     * TinyLlama makes 155 matrix calls, each ending when the slower thread is done, while the other waits, and each
     * preparing x on the calling thread alone; this makes it 89. One per caller, holding the call's arguments so that
     * a decode step allocates nothing.
     */
    public static final class SharedInput implements Parallel.RangeTask {
        private final Tensor[] parts;
        private final float[][] outs;
        /** Part i's rows are rows {@code starts[i] .. starts[i + 1]} of the call. */
        private final int[] starts;
        private int count;
        private float[] x, sums;
        private int[] quants;
        private int xOffset;

        /** For up to three matrices at once. */
        public SharedInput() {
            this(3);
        }

        /** For up to {@code capacity} matrices at once (a mixture's chosen experts' gates and ups). */
        public SharedInput(int capacity) {
            parts = new Tensor[Math.max(3, capacity)];
            outs = new float[parts.length][];
            starts = new int[parts.length + 1];
        }

        /**
         * {@code out[i] = matrices[i] · x} for {@code i < n}, one input (a decode step's), {@code exact} as in
         * {@link Tensor#matmul(float[], int, float[], int, boolean)}.
         */
        public void matvec(float[] x, boolean exact, Tensor[] matrices, float[][] out, int n) {
            if (n > parts.length) throw new IllegalArgumentException(n + " matrices for a call of at most " + parts.length);
            System.arraycopy(matrices, 0, parts, 0, n);
            System.arraycopy(out, 0, outs, 0, n);
            run(x, 1, n, exact);
        }

        /**
         * {@code outA = a · x, outB = b · x} for each of the {@code nTokens} inputs, {@code exact} as in
         * {@link Tensor#matmul(float[], int, float[], int, boolean)}.
         */
        public void matmul(float[] x, int nTokens, boolean exact, Tensor a, float[] outA, Tensor b, float[] outB) {
            parts[0] = a;
            parts[1] = b;
            outs[0] = outA;
            outs[1] = outB;
            run(x, nTokens, 2, exact);
        }

        /** {@code outA = a · x, outB = b · x, outC = c · x} for each of the {@code nTokens} inputs, {@code exact} likewise. */
        public void matmul(float[] x, int nTokens, boolean exact, Tensor a, float[] outA, Tensor b, float[] outB, Tensor c, float[] outC) {
            parts[0] = a;
            parts[1] = b;
            parts[2] = c;
            outs[0] = outA;
            outs[1] = outB;
            outs[2] = outC;
            run(x, nTokens, 3, exact);
        }

        private void run(float[] input, int nTokens, int n, boolean exact) {
            Tensor first = parts[0];
            try {
                boolean alike = nTokens == 1;
                for (int i = 1; i < n; i++) alike &= parts[i].preparesLike(first);
                if (!alike) {
                    for (int i = 0; i < n; i++) parts[i].matmul(input, nTokens, outs[i], Math.toIntExact(parts[i].rows), exact);
                    return;
                }
                RowTask task = first.rowTask;
                synchronized (task) {
                    try {
                        first.prepare(input, 0, task);
                        x = task.x;
                        xOffset = task.xOffset;
                        sums = task.sums;
                        quants = task.quants;
                        count = n;
                        for (int i = 0; i < n; i++) starts[i + 1] = Math.addExact(starts[i], Math.toIntExact(parts[i].rows));
                        Parallel.run(starts[n], ROW_GRANULE, this);
                    } finally {
                        task.clear();
                    }
                }
            } finally {
                x = null; // keep no caller's arrays reachable
                sums = null;
                quants = null;
                Arrays.fill(parts, null);
                Arrays.fill(outs, null);
            }
        }

        @Override
        public void run(int start, int end) {
            for (int i = 0; i < count; i++) {
                int from = Math.max(start, starts[i]), to = Math.min(end, starts[i + 1]);
                if (from < to) parts[i].dotRows(x, xOffset, sums, quants, outs[i], 0, 0, from - starts[i], to - starts[i]);
            }
        }
    }

    /**
     * One row's dot product as {@link #matvec} computes it, on the calling thread: the activations prepared
     * ({@link #prepare}), then {@link #dotRows} over that row. For the decode layouts and F16, whose kernels read
     * prepared activations, so that what they need from x is derived in one place.
     */
    final float preparedDot(long row, float[] x, int xOffset) {
        RowTask task = rowTask;
        synchronized (task) {
            prepare(x, xOffset, task);
            float[] one = scratch(ONE_ROW, 1);
            try {
                dotRows(task.x, task.xOffset, task.sums, task.quants, one, 0, row, 0, 1);
            } finally {
                task.clear();
            }
            return one[0];
        }
    }

    private static final ThreadLocal<float[]> ONE_ROW = ThreadLocal.withInitial(() -> new float[1]);

    /**
     * {@link #dotRows} over a range of rows of {@code tensor}, with the arguments of the current {@link #matvec} call;
     * or, with no tensor, a thread's holder of the activations it prepared ({@link #PREPARED}).
     */
    static final class RowTask implements Parallel.RangeTask {
        private final Tensor tensor;
        /**
         * The activations as {@link #dotRows} reads them ({@link #prepare}): x (cols floats from xOffset), the sums
         * per block it needs, if any, and where the format's kernel takes the activations rounded to integers
         * ({@link Q4_0Tensor}), those (cols ints from xOffset; x is then null), else null.
         */
        float[] x, sums;
        int[] quants;
        float[] out;
        int xOffset, outOffset;
        long firstRow;

        RowTask(Tensor tensor) {
            this.tensor = tensor;
        }

        /** The activations as they are, no sums: what a format that reads x directly prepares. */
        void use(float[] x, int xOffset) {
            use(x, xOffset, null);
        }

        void use(float[] x, int xOffset, float[] sums) {
            this.x = x;
            this.xOffset = xOffset;
            this.sums = sums;
            this.quants = null;
        }

        /** The activations rounded to integers, with their sums per block; no floats. */
        void useRounded(int[] quants, float[] sums) {
            use(null, 0, sums);
            this.quants = quants;
        }

        void clear() {
            use(null, 0, null);
        }

        @Override
        public void run(int start, int end) {
            tensor.dotRows(x, xOffset, sums, quants, out, outOffset, firstRow, start, end);
        }
    }

    /**
     * Sets the activations {@link #dotRows} reads for x in {@code task}: x itself here; the lane layouts' activations
     * scaled per quant position and their block sums, or Q4_0's rounded to int8 ({@link RowTask#useRounded}), in the
     * calling thread's scratch, which the pool's threads then read.
     */
    void prepare(float[] x, int xOffset, RowTask task) {
        task.use(x, xOffset);
    }

    /**
     * {@code out[outOffset + r] = dot(firstRow + r, x)} for {@code start <= r < end}. Every format repeats this loop
     * in its own (final) class so that its call to {@code dot} sees one class: one shared loop would see every format
     * a model mixes (Q4_K with Q6_K, a float router among Q4_0 experts), and C2 then compiles the kernels behind it
     * up to 2.9x slower (measured on a mixture of experts). x, xOffset, sums and quants are as {@link #prepare} set them.
     */
    abstract void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end);

    /** Matrix x vector over all rows. */
    public void matvec(float[] x, float[] out) {
        matvec(x, 0, out, 0, 0, Math.toIntExact(rows));
    }

    /**
     * Matrix x matrix: for each of {@code nTokens} input vectors {@code x[t * cols ..]} writes {@code out[t * outStride
     * + r] = row r · x_t} for all rows. A tile of rows is dequantized once into a float scratch that stays in cache and
     * every token is run over it, so each weight is read from memory and converted once per call however many tokens
     * there are. In the files' layouts, batches of more than half {@link #GROUP_TOKENS} tokens put tokens in the vector
     * lanes ({@link #groupProduct}: from 17 tokens at 512 bits, one group part empty, against the tiles' four tokens at
     * a time, TinyLlama Q4_0 pp24 64.70/62.00 -> 87.50/84.99 tokens/s, pp20 73.04/71.46 -> 76.73/73.50, Q4_K pp20
     * level, 66.26/68.71 -> 64.97/66.98); smaller ones run dot products over the tile ({@link #tileProduct}). In the
     * decode layouts, whose tiles are in panels of rows, the tile product's rows-in-lanes kernel is the faster at every
     * size (TinyLlama, 2 threads, alternating, group product -> tiles: Q4_0 pp20 97.05/98.16 -> 121.62/118.32, pp24
     * 114.67/111.97 -> 146.58/140.59, pp28 and pp32 level; Q8_0 pp48 116.31/114.86 -> 150.78/148.35, pp64
     * 153.97/150.99 -> 165.57/159.79, pp128 172.77/168.15 -> 183.56/173.24); the quantized and half-float formats' decode
     * layouts, up to {@link PanelProduct#panelProductTokens} tokens, multiply straight from their bytes instead ({@link
     * #panelProduct}). Up to {@link
     * #LANE_TOKENS} tokens, such as the verification of a few speculated tokens, the decode kernel once per token over
     * chunks of rows ({@link #laneTokens}), so that each token's outputs are exactly its decode step's. Every format's
     * larger batches are F32 arithmetic on its dequantized weights: Q4_0 and Q4_1 took an int16 product on activations
     * rounded to int8 as llama.cpp rounds them from 64 tokens until session 47, when the float tiles ran as fast or
     * faster in the decode layouts (TinyLlama Q4_0 pp128 +5% and +11%, Q4_1 +9-34%, Llama-2-7B Q4_0 level; about 5%
     * slower in the files' layouts; docs/kernel-log.md session 47), as the K-quants' did in session 43.
     */
    public void matmul(float[] x, int nTokens, float[] out, int outStride) {
        matmul(x, nTokens, out, outStride, true);
    }

    /**
     * {@link #matmul(float[], int, float[], int)}, where {@code exact} false lets a small batch of a quantized tensor
     * take the tiles rather than the decode kernel once per token, from {@link #TILE_TOKENS} tokens on, when it need not
     * match decode steps (a prompt): before the first decode step the weights are in their files' layouts, whose
     * decode kernels are the slower ones ({@link #forDecode}; Llama-2-7B Q4_0 decodes 2.9 tokens/s from the file's
     * layout, 6.7 from the decode layout), and an 8-token prompt took longer than a 9-token one in the tiles (2.46
     * against 1.43 s). In the decode layouts too, so that a prompt takes the same arithmetic whether or not the
     * process has decoded before (F32 on the weights either way, differing in the order of float sums, where Q4_0's
     * decode kernels round x to int8: with the decode kernel after decoding, a greedy run of stories260K Q4_0 after
     * "One day" and the same run later in the process parted at token 205, SpeculativeTest), at the price of short
     * prompts after decoding (TinyLlama Q4_0, 2 threads: 6 tokens 54.1 against 33.3 tokens/s, 8 tokens 63.8 against
     * 43.8; a chat's turn, in its chat format, is longer than 8 tokens). F32, whose decode kernel is its one
     * layout's, keeps the decode kernel up to {@link #LANE_TOKENS} tokens, as do F16 and BF16 in their files' layouts
     * and below {@link #FLOAT_PANEL_TOKENS} tokens.
     */
    public void matmul(float[] x, int nTokens, float[] out, int outStride, boolean exact) {
        if (nTokens == 1) matvec(x, out);
        else if (nTokens <= LANE_TOKENS && (exact || nTokens < TILE_TOKENS || type.blockSize == 1 && nTokens < FLOAT_PANEL_TOKENS)) laneTokens(x, nTokens, out, outStride);
        else if (this instanceof PanelProduct p && p.inLanes() && nTokens <= panelProductTokens(p)) panelProduct(p, x, nTokens, out, outStride);
        else if (nTokens <= LANE_TOKENS && type.blockSize == 1) laneTokens(x, nTokens, out, outStride); // F32, and the files' layouts
        else if (nTokens <= GROUP_TOKENS / 2 || this instanceof PanelRows p && p.inLanes()) tileProduct(x, nTokens, out, outStride);
        else groupProduct(x, nTokens, out, outStride);
    }

    /**
     * Batches up to this size run each token the way a decode step runs it: here the decode kernel per token
     * ({@link #laneTokens}), in {@code Llama} the attention one query at a time. A speculative verification of up to
     * this many tokens then computes exactly the logits that decode steps would, so greedy speculative output is
     * token-identical to plain decoding even at near-ties (SpeculativeTest). Larger batches take the float tiles of
     * {@link #tileProduct}, whose dequantization once per batch then costs less than the decode kernel's per-token
     * mask and conversion. TinyLlama Q4_0, 2 threads, one forward pass, tiles against decode kernel (two JVMs each):
     * 2 tokens 95-98 against 42-43 ms, 4 tokens 98-100 against 77-80, 6 tokens 149-151 against 112-115, 8 tokens
     * 147-151 against 144-145, 16 tokens 251-255 against 282-288 (one token 20.5), on the decode layout. A prompt,
     * which need not match decode steps, takes the tiles from {@link #TILE_TOKENS} tokens on, in either layout.
     */
    public static final int LANE_TOKENS = 8;

    /**
     * The smallest batch that takes the tiles where it need not be exact ({@link #matmul(float[], int, float[], int,
     * boolean)}). Files' layouts, 2 threads, prompt tokens/s token by token against tiles: Llama-2-7B Q4_0 2 tokens
     * 2.59 against 2.28, 3 tokens 3.35 against 3.74, 5 tokens 3.59 against 4.44, 8 tokens 2.89 against 6.41;
     * TinyLlama Q4_0 4 tokens 19.5/18.5 against 28.9/29.1, 6 tokens 17.6 against 27.9, 8 tokens 20.9 against 33.6.
     */
    static final int TILE_TOKENS = 3;

    /**
     * The smallest batch that a float format's decode layout (F16, BF16) multiplies in a pass of {@link
     * #panelProduct} where it need not be exact; smaller ones run the decode kernel per token, which costs about a
     * quarter of a pass per token. TinyLlama, 2 threads, decode kernel per token against the pass, alternating, three
     * rounds: F16 pp3 44.9/45.5/36.0 -> 42.8/40.3/33.5 tokens/s, pp4 46.4/53.3/47.4 -> 54.9/48.3/47.0; BF16 pp3
     * 43.6/45.1/44.3 -> 41.7/37.5/42.8, pp4 53.5/53.5/52.3 -> 55.0/56.6/52.7.
     */
    static final int FLOAT_PANEL_TOKENS = 4;


    /**
     * Matrix x matrix for a small batch: the decode kernel ({@link #dotRows}) once per token, over
     * the rows in chunks of two lane groups, all tokens over one chunk before the next, so the weights are read from
     * memory once per batch and the tokens reuse them from cache. Each token's activations are prepared as decode
     * prepares them ({@link #prepare}), into this thread's scratch, so every token's outputs are exactly its decode
     * step's.
     */
    private void laneTokens(float[] x, int nTokens, float[] out, int outStride) {
        float[] prepared = scratch(TOKEN_ACTIVATIONS, nTokens * cols);
        int[] rounded = null;
        float[][] sums = TOKEN_SUMS.get();
        boolean withSums = false;
        RowTask one = rowTask;
        synchronized (one) {
            try {
                for (int t = 0; t < nTokens; t++) {
                    prepare(x, t * cols, one);
                    if (one.x != null) System.arraycopy(one.x, one.xOffset, prepared, t * cols, cols);
                    if (one.quants != null) {
                        if (rounded == null) rounded = intScratch(TOKEN_QUANTS, nTokens * cols);
                        System.arraycopy(one.quants, one.xOffset, rounded, t * cols, cols);
                    }
                    // kept when a format without sums comes between two with (a model of mixed formats)
                    withSums = one.sums != null;
                    if (withSums) {
                        if (sums[t] == null || sums[t].length < one.sums.length) sums[t] = new float[one.sums.length];
                        System.arraycopy(one.sums, 0, sums[t], 0, one.sums.length);
                    }
                }
            } finally {
                one.clear();
            }
        }
        LaneBatch batch = laneBatch;
        synchronized (batch) {
            try {
                batch.set(prepared, withSums ? sums : null, rounded, nTokens, out, outStride);
                Parallel.run(Math.toIntExact(rows), ROW_GRANULE, batch);
            } finally {
                batch.set(null, null, null, 0, null, 0);
            }
        }
    }

    /**
     * {@link #laneTokens}' arguments for the pool, one per tensor, so that a small batch (a speculative verification)
     * allocates no task: token t's prepared activations at {@code x[t * cols ..]}, or its rounded ones at
     * {@code quants[t * cols ..]}, its sums {@code sums[t]} (sums null for a format without), its outputs at
     * {@code out[t * outStride ..]}.
     */
    private final class LaneBatch implements Parallel.RangeTask {
        private float[] x;
        private float[][] sums;
        private int[] quants;
        private float[] out;
        private int tokens, outStride;

        void set(float[] x, float[][] sums, int[] quants, int tokens, float[] out, int outStride) {
            this.x = x;
            this.sums = sums;
            this.quants = quants;
            this.tokens = tokens;
            this.out = out;
            this.outStride = outStride;
        }

        @Override
        public void run(int start, int end) {
            for (int r = start; r < end; r += ROW_GRANULE) {
                int chunkEnd = Math.min(end, r + ROW_GRANULE);
                for (int t = 0; t < tokens; t++) dotRows(x, t * cols, sums == null ? null : sums[t], quants, out, t * outStride, 0, r, chunkEnd);
            }
        }
    }

    private final LaneBatch laneBatch = new LaneBatch();

    /** The calling thread's prepared activations of a small batch ({@link #laneTokens}), kept between calls. */
    private static final ThreadLocal<float[]> TOKEN_ACTIVATIONS = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[][]> TOKEN_SUMS = ThreadLocal.withInitial(() -> new float[Tensor.LANE_TOKENS][]);
    private static final ThreadLocal<int[]> TOKEN_QUANTS = ThreadLocal.withInitial(() -> new int[0]);

    /** Tokens the micro-kernel of {@link #groupProduct} holds in its vectors: two vectors' worth. */
    static final int GROUP_TOKENS = 2 * F_SPECIES.length();

    /**
     * From this many tokens on, a prompt's batch ({@code exact} false) gives each token the same sums whatever the
     * other tokens of the batch: the files' group product and the decode layouts' panel kernels sum each output as
     * one lane in column order, where smaller batches take the decode kernel per token or {@link TileKernels#dot4x4}, whose
     * sums depend on how tokens were grouped. So the model can run part of a batch and get exactly what the whole
     * batch would have given that part (the last layer, where only the last token's outputs are wanted).
     */
    public static final int BATCH_INVARIANT_TOKENS = Math.max(LANE_TOKENS, GROUP_TOKENS / 2) + 1;

    /**
     * Matrix x matrix with tokens in the vector lanes. x is transposed once per call into groups of
     * {@link #GROUP_TOKENS} tokens ({@code xt[group][k][token]}); then for each tile of dequantized rows the
     * micro-kernel holds eight rows times one group in sixteen vector accumulators and, per column k, loads the
     * group's two activation vectors and broadcasts each row's weight: sixteen multiply-adds per two loads and eight
     * broadcasts, about twice what {@link TileKernels#dot4x4} does per instruction (in cache: 86 against 51 GMAC/s per core).
     * A last group of at most one vector's tokens takes its first vector alone ({@link TileKernels#halfGroupKernel}):
     * Llama-2-7B Q4_0 pp78 (two groups and 14 tokens), files' layouts, 2 threads, 17.40/15.30 -> 20.39/19.28 tokens/s
     * (pp64 19.65/17.56 -> 21.46/20.96 in the same runs). Each output is one lane summed in column order, so the
     * thread count never changes a result, nor does the kernel.
     */
    private void groupProduct(float[] x, int nTokens, float[] out, int outStride) {
        int groups = (nTokens + GROUP_TOKENS - 1) / GROUP_TOKENS;
        float[] xt = transposed(x, nTokens, GROUP_TOKENS);
        TileTask task = (r0, tileRows, tile, stride) -> {
            float[] acc = accumulators(8 * GROUP_TOKENS);
            for (int g = 0; g < groups; g++) {
                int t0 = g * GROUP_TOKENS, tokens = Math.min(GROUP_TOKENS, nTokens - t0);
                boolean half = tokens <= F_SPECIES.length();
                for (int r = 0; r < tileRows; r += 8) {
                    if (half) TileKernels.halfGroupKernel(tile, r, tileRows - 1, stride, xt, g * GROUP_TOKENS * cols, cols, acc);
                    else TileKernels.groupKernel(tile, r, tileRows - 1, stride, xt, g * GROUP_TOKENS * cols, cols, acc);
                    // token outer: each token's eight outputs are adjacent in out, one cache line per token
                    int height = Math.min(8, tileRows - r);
                    for (int t = 0; t < tokens; t++) {
                        int o = (t0 + t) * outStride + r0 + r;
                        for (int i = 0; i < height; i++) out[o + i] = acc[i * GROUP_TOKENS + t];
                    }
                }
            }
        };
        eachTile(8, task);
    }

    /**
     * {@code x} ({@code nTokens} rows of {@code cols}) as column-major groups of {@code width} tokens
     * ({@code xt[group][k][token]}), written by all threads into a scratch of the calling thread. The lanes of the
     * last group past the batch keep whatever they held: lanes never mix, and their sums are dropped. Eight tokens'
     * values of a column are stored together, one loop over the columns for eight rows of x, where a loop per row
     * stored a value per cache line it passed (one thread, 48 x 2048 in L1/L2: 0.50 -> 0.35 ns a value, widths 8
     * and 32 alike).
     */
    private float[] transposed(float[] x, int nTokens, int width) {
        int groups = (nTokens + width - 1) / width;
        float[] xt = scratch(TRANSPOSED, groups * width * cols);
        int chunks = (cols + TRANSPOSE_COLUMNS - 1) / TRANSPOSE_COLUMNS;
        Parallel.run(groups * chunks, 1, (start, end) -> {
            for (int u = start; u < end; u++) {
                int g = u / chunks, k0 = u % chunks * TRANSPOSE_COLUMNS, k1 = Math.min(cols, k0 + TRANSPOSE_COLUMNS);
                int t0 = g * width, n = Math.min(width, nTokens - t0), base = g * width * cols, i = 0;
                for (; i + 8 <= n; i += 8) {
                    int r0 = (t0 + i) * cols, r1 = r0 + cols, r2 = r1 + cols, r3 = r2 + cols, r4 = r3 + cols, r5 = r4 + cols, r6 = r5 + cols, r7 = r6 + cols;
                    for (int k = k0, o = base + k0 * width + i; k < k1; k++, o += width) {
                        xt[o] = x[r0 + k]; xt[o + 1] = x[r1 + k]; xt[o + 2] = x[r2 + k]; xt[o + 3] = x[r3 + k];
                        xt[o + 4] = x[r4 + k]; xt[o + 5] = x[r5 + k]; xt[o + 6] = x[r6 + k]; xt[o + 7] = x[r7 + k];
                    }
                }
                for (; i < n; i++) {
                    for (int k = k0, o = base + k0 * width + i, r = (t0 + i) * cols; k < k1; k++, o += width) xt[o] = x[r + k];
                }
            }
        });
        return xt;
    }

    /**
     * Columns per piece of {@link #transposed}: a piece of a group (8 KB at 32 tokens) stays in L1 while its tokens
     * are written into it, where a token at a time over all columns stored into a new cache line each time.
     */
    private static final int TRANSPOSE_COLUMNS = 64;

    /**
     * Matrix x matrix for small batches: every token is run over the dequantized tile four rows by four tokens at a
     * time ({@link TileKernels#dot4x4}); a tensor in a decode layout with panels ({@link PanelRows}) runs its panels
     * of L rows two at a time by eight tokens at a time instead ({@link TileKernels#panelPairTokens}), its tiles a
     * whole number of pairs tall, for batches of any size.
     */
    private void tileProduct(float[] x, int nTokens, float[] out, int outStride) {
        if (this instanceof PanelRows p && p.inLanes()) {
            int l = RowLanes.L;
            float[] xt = nTokens > 4 ? transposed(x, nTokens, TileKernels.PAIR_TOKENS) : null; // four or fewer: panelTokens alone
            eachPanelTile(p, (r0, tileRows, tile, stride) -> {
                float[] partial = accumulators(16 * l);
                int i = 0;
                for (; i + 2 * l <= tileRows; i += 2 * l) TileKernels.panelPairTokens(tile, i * cols, x, xt, nTokens, cols, out, outStride, r0 + i, partial);
                // a matrix's last panel, alone or not whole
                for (; i < tileRows; i += l) TileKernels.panelTokens(tile, i * cols, x, 0, nTokens, cols, out, outStride, r0 + i, Math.min(l, tileRows - i), partial);
            });
            return;
        }
        // A last group of fewer than four tokens runs as four too, its inputs padded by repeating its last, and so do
        // the matrix's last rows: every output comes from dot4x4, whatever the thread count (one dot product per row
        // and token took longer than the whole groups: TinyLlama Q4_0 prefill from the file's layout, alternating,
        // 6 tokens 26.6/26.8 -> 29.8/33.3 tokens/s, 7 tokens 30.1/27.7 -> 40.2/42.5, 5 tokens level)
        int whole = nTokens / 4 * 4;
        float[] rest = whole == nTokens ? null : fourRows(PADDED_TOKENS, x, whole, nTokens, cols);
        eachTile(4, (r0, tileRows, tile, stride) -> {
            float[] partial = accumulators(16);
            // tokens outer: four input rows stay in L1 while the tile's row groups stream past them from L2
            for (int t = 0; t < nTokens; t += 4) {
                float[] inputs = t < whole ? x : rest;
                int inputOffset = t < whole ? t * cols : 0, tokens = Math.min(4, nTokens - t);
                for (int r = 0; r < tileRows; r += 4) {
                    if (r + 4 <= tileRows && t < whole) {
                        TileKernels.dot4x4(tile, r * stride, stride, x, t * cols, cols, out, t * outStride + r0 + r, outStride);
                        continue;
                    }
                    int height = Math.min(4, tileRows - r);
                    if (height == 4) {
                        TileKernels.dot4x4(tile, r * stride, stride, inputs, inputOffset, cols, partial, 0, 4);
                    } else {
                        float[] rows = fourRows(PADDED_ROWS, tile, r, tileRows, stride);
                        TileKernels.dot4x4(rows, 0, cols, inputs, inputOffset, cols, partial, 0, 4);
                    }
                    for (int j = 0; j < tokens; j++) System.arraycopy(partial, j * 4, out, (t + j) * outStride + r0 + r, height);
                }
            }
        });
    }

    /**
     * Rows {@code [from, to)} of {@code a} (fewer than four, row i at {@code a[i * stride]}) as four rows of
     * {@code cols}, the last repeated, in this thread's array of {@code local}.
     */
    private float[] fourRows(ThreadLocal<float[]> local, float[] a, int from, int to, int stride) {
        float[] padded = scratch(local, 4 * cols);
        for (int i = 0; i < 4; i++) System.arraycopy(a, Math.min(from + i, to - 1) * stride, padded, i * cols, cols);
        return padded;
    }

    /** The tile product's padded tokens (the calling thread's, read by all) and padded rows (each thread's own). */
    private static final ThreadLocal<float[]> PADDED_TOKENS = ThreadLocal.withInitial(() -> new float[0]),
            PADDED_ROWS = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * Work on one tile: rows {@code r0 .. r0 + tileRows} of the matrix, dequantized, row i at {@code tile[i * stride]}
     * ({@link #eachTile}); or, with stride 0, in panels of {@link RowLanes#L} rows, row i's weight k at
     * {@code tile[i / L * L * cols + k * L + i % L]} ({@link #eachPanelTile}).
     */
    @FunctionalInterface
    private interface TileTask {
        void run(int r0, int tileRows, float[] tile, int stride);
    }

    /**
     * Runs {@code task} over all rows, handed to the threads in chunks ({@link #chunkRows}), a tile at a time: as many
     * rows (a multiple of {@code multiple}) as fit in about 384 KB (L2), so that each input row fetched from L3 serves
     * many rows, each tile dequantized once into the thread's scratch. Tile rows are padded by 64 bytes: at a stride
     * that is a multiple of 4 KB (2048 floats) the micro-kernels' weight and input rows would land in the same L1 sets.
     */
    private void eachTile(int multiple, TileTask task) {
        int nRows = Math.toIntExact(rows), stride = cols + 16;
        int tileHeight = Math.clamp(TILE_BYTES / (4L * cols) / multiple * multiple, multiple, 256);
        Parallel.runChunks(nRows, chunkRows(nRows, tileHeight), (start, end) -> {
            float[] tile = tile(tileHeight * stride);
            for (int r0 = start; r0 < end; r0 += tileHeight) {
                int tileRows = Math.min(tileHeight, end - r0);
                dequantizeRows(r0, tileRows, tile, 0, stride);
                task.run(r0, tileRows, tile, stride);
            }
        });
    }

    /**
     * A format whose decode layout ({@link RowLanes}: one row per lane) dequantizes a matrix x matrix tile in panels
     * of {@link RowLanes#L} rows ({@link #eachPanelTile}).
     */
    interface PanelRows {
        /** Whether the bytes are in the decode layout. */
        boolean inLanes();

        /**
         * The lane group whose bytes start at {@code group} (its L rows) into a panel: weight k of the group's row i
         * to {@code out[at + k * L + i]}, each weight column one vector, rounded as {@code dequantizeRow}. One call
         * per group, its columns a loop inside: a call per block column cost Q4_0 5% (JMH matmul6, decode layout).
         */
        void panelGroup(long group, float[] out, int at);
    }

    /**
     * A decode layout that multiplies a few tokens by two lane groups straight from its bytes, each column's weights
     * made in registers as {@link #panelGroup} would write them ({@link #panelProduct}).
     */
    interface PanelProduct extends PanelRows {
        /**
         * Groups a and b (their bytes' offsets, as {@link #panelGroup}'s) times the {@link TileKernels#PAIR_TOKENS}
         * tokens of {@code xt[xk ..]} (per column, the tokens' values together): token j's sums of group a's rows to
         * {@code acc[j * L ..]}, of b's to {@code acc[(PAIR_TOKENS + j) * L ..]}, each {@link
         * TileKernels#panelPairTokens}' over the panels bit for bit.
         */
        void panelPairProduct(long a, long b, float[] xt, int xk, float[] acc);

        /**
         * What {@link #panelPairProduct} takes x's column k times: {@code scales[k & (scales.length - L - 1)]} (a
         * period that is a power of two, then L more, as {@link RowLanes#scaled} reads them). Powers of two, so the
         * products are the tiles' exactly while x stays above 2^-98 in magnitude (as the decode kernels' scaled x).
         */
        float[] columnScales();

        /**
         * The largest batch {@link #panelProduct} takes, past which the tiles' one dequantization per batch costs less
         * than making the weights again for each pass of eight tokens: {@link #PANEL_PRODUCT_TOKENS}, or fewer for a
         * format whose weights take more operations to make.
         */
        default int panelProductTokens() {
            return PANEL_PRODUCT_TOKENS;
        }
    }

    /** The calling thread's activations scaled per column ({@link #panelProduct}), kept between calls. */
    private static final ThreadLocal<float[]> COLUMN_SCALED = ThreadLocal.withInitial(() -> new float[0]);

    /** The largest batch {@link #panelProduct} takes ({@link PanelProduct#panelProductTokens}) for Q4_0 and Q8_0. */
    static final int PANEL_PRODUCT_TOKENS = 48;

    /**
     * The largest batch {@link #panelProduct} takes where vector registers are sixteen ({@link
     * TileKernels#SIXTEEN_REGISTERS}): its pair kernels' 16 accumulators and the weights they make spill there, where
     * the tiles' kernel runs in halves that fit. TinyLlama, 2 threads, {@code -XX:UseAVX=2} on this Zen 5, panel
     * product against tiles: Q4_0 pp8 47.1/52.9 tokens/s, pp16 62.3/74.6, pp32 66.3/91.1; Q8_0 pp8 57.7/48.2, pp16
     * 65.0/69.8, pp32 70.1/92.2; F16 pp8 67.7/37.3, pp16 74.7/65.2, pp32 82.4/86.5; Q4_K pp16 62.1/77.9.
     */
    static final int PANEL_PRODUCT_TOKENS_IN_SIXTEEN_REGISTERS = 12;

    private static int panelProductTokens(PanelProduct p) {
        return TileKernels.SIXTEEN_REGISTERS ? Math.min(PANEL_PRODUCT_TOKENS_IN_SIXTEEN_REGISTERS, p.panelProductTokens()) : p.panelProductTokens();
    }

    /**
     * Matrix x matrix on a {@link PanelProduct}'s decode layout: per pair of lane groups, each pass of eight tokens
     * makes the weights in registers again, where the tiles write every weight as a float once per batch and read it
     * back per pass, a cost of about three decode steps whatever the batch (TinyLlama Q4_0, 2 threads: 3 to 8 tokens
     * 89-94 ms, 16 tokens 138). A pass costs more than the tiles' (two multiplies more per column of sixteen FMAs),
     * so the tiles are level by 64 tokens: `bench`, 2 threads, alternating, tiles -> panel product, TinyLlama
     * Q4_0 pp3 29.2/29.2 -> 38.5/35.4 tokens/s, pp8 81.7/82.7 -> 116.4/101.4, pp16 115.1/115.3 -> 141.4/141.3, pp32
     * 147.5/149.2 -> 161.4/159.2, pp64 168.2/171.4 -> 167.6/167.2; Llama-2-7B Q4_0 pp8 13.7/12.4 -> 18.3/18.3, pp16
     * 18.7/17.4 -> 23.3/21.8, pp32 23.4/21.6 -> 23.8/23.2, pp64 26.5/24.8 -> 25.1/25.9; TinyLlama Q8_0 pp3
     * 26.7/26.8 -> 47.4/46.0, pp8 63.7/69.9 -> 123.0/121.2, pp16 97.7/103.6 -> 143.1/140.3, pp32 129.4/136.1 ->
     * 154.8/147.0, pp48 148.7/143.9 -> 162.2/152.3. The sums are the tiles', bit for bit. F16 and BF16, whose
     * weights take one to three integer operations a column, against the decode kernel per token up to 8 tokens and
     * the tiles from 9 (TinyLlama, two rounds each): F16 pp5 56.6/60.8 -> 71.2/71.8, pp8 68.9/70.6 -> 105.9/114.6,
     * pp16 90.4/94.4 -> 124.4/127.0, pp32 120.9/126.6 -> 139.5/144.4, pp48 139.6/141.2 -> 147.2/152.4; BF16 pp5
     * 61.4/65.2 -> 69.0/74.4, pp8 78.8/77.6 -> 111.8/116.6, pp16 91.0/99.9 -> 132.0/137.4, pp32 124.4/128.8 ->
     * 141.9/145.9, pp48 139.9/144.8 -> 147.1/151.5.
     */
    private void panelProduct(PanelProduct p, float[] x, int nTokens, float[] out, int outStride) {
        int l = RowLanes.L, nRows = Math.toIntExact(rows), passes = (nTokens + TileKernels.PAIR_TOKENS - 1) / TileKernels.PAIR_TOKENS;
        long groupBytes = l * rowBytes, lastGroup = (nRows - 1) / l;
        float[] scales = p.columnScales(), scaled = scratch(COLUMN_SCALED, nTokens * cols);
        int period = scales.length - l - 1;
        for (int t = 0; t < nTokens; t++) {
            for (int k = 0; k < cols; k += l) {
                FloatVector.fromArray(F_SPECIES, x, t * cols + k).mul(FloatVector.fromArray(F_SPECIES, scales, k & period)).intoArray(scaled, t * cols + k);
            }
        }
        float[] xt = transposed(scaled, nTokens, TileKernels.PAIR_TOKENS);
        Parallel.runChunks(nRows, chunkRows(nRows, 256), (start, end) -> {
            float[] acc = accumulators(2 * TileKernels.PAIR_TOKENS * l);
            for (int r = start; r < end; r += 2 * l) {
                long a = r / l, b = Math.min(a + 1, lastGroup); // a matrix's last group alone: paired with itself
                int heightA = Math.min(l, end - r), heightB = Math.max(0, Math.min(l, end - r - l));
                for (int pass = 0; pass < passes; pass++) {
                    p.panelPairProduct(a * groupBytes, b * groupBytes, xt, pass * TileKernels.PAIR_TOKENS * cols, acc);
                    for (int j = 0, t = pass * TileKernels.PAIR_TOKENS; j < TileKernels.PAIR_TOKENS && t < nTokens; j++, t++) {
                        System.arraycopy(acc, j * l, out, t * outStride + r, heightA);
                        if (heightB > 0) System.arraycopy(acc, (TileKernels.PAIR_TOKENS + j) * l, out, t * outStride + r + l, heightB);
                    }
                }
            }
        });
    }

    /**
     * As {@link #eachTile}, for a tensor in a decode layout that has panels ({@link PanelRows}): each tile dequantized
     * in panels of {@link RowLanes#L} rows, so that a lane group's column is one vector store where a tile of rows
     * took a row at a time out of the lanes. Tiles are whole pairs of panels ({@link TileKernels#panelPairTokens}), at least
     * one pair however wide the rows (Llama-2-7B's tiles were one panel tall: 16 rows of 4096 columns fill {@link
     * #TILE_BYTES}). JMH matmul64 4096 x 4096, decode layout, one thread, min of 15, against tiles of rows and the
     * group product then: Q4_K 13.6 -> 11.5 ms, Q5_K 16.5 -> 11.1, Q6_K 16.6 -> 11.6, Q8_0 14.0 -> 12.6 (the file
     * layouts' 11.7-13.6), Q4_1 12.3 -> 11.9. Six tokens ({@link TileKernels#panelTokens}): Q4_0 5.0 -> 3.5 ms, Q4_1 5.1 ->
     * 3.7, Q4_K 6.9 -> 3.2, Q6_K 8.8 -> 3.5.
     */
    private void eachPanelTile(PanelRows p, TileTask task) {
        int nRows = Math.toIntExact(rows), multiple = 2 * RowLanes.L; // whole pairs of panels (tileProduct)
        int tileHeight = Math.clamp(TILE_BYTES / (4L * cols) / multiple * multiple, multiple, 256);
        Parallel.runChunks(nRows, chunkRows(nRows, tileHeight), (start, end) -> {
            float[] tile = tile(tileHeight * cols);
            for (int r0 = start; r0 < end; r0 += tileHeight) {
                int tileRows = Math.min(tileHeight, end - r0);
                dequantizePanels(p, r0, tileRows, tile);
                task.run(r0, tileRows, tile, 0);
            }
        });
    }

    /**
     * Rows {@code firstRow .. firstRow + n} ({@code firstRow} a multiple of L) of a decode layout in panels of L rows,
     * weight (firstRow + i, k) to {@code out[i / L * L * cols + k * L + i % L]}, whole lane groups (a last group's
     * padding rows too), a group at a time ({@link PanelRows#panelGroup}).
     */
    private void dequantizePanels(PanelRows p, long firstRow, int n, float[] out) {
        for (int o = 0; o < n; o += RowLanes.L) p.panelGroup((firstRow + o) * rowBytes, out, o * cols);
    }

    /**
     * Rows per chunk of a matrix x matrix call ({@link Parallel#runChunks}): a tile, or fewer for small matrices so
     * that each thread gets about four chunks, but at least {@link #ROW_GRANULE}.
     */
    static int chunkRows(int nRows, int tileHeight) {
        return Math.max(ROW_GRANULE, Math.min(tileHeight, nRows / (4 * Parallel.threads()) / ROW_GRANULE * ROW_GRANULE));
    }

    /** Each thread's dequantized tile, kept between calls (a verification step of speculation is a matmul). */
    private static final ThreadLocal<float[]> TILE = ThreadLocal.withInitial(() -> new float[0]);
    /** Each thread's micro-kernel sums, kept between calls. */
    private static final ThreadLocal<float[]> ACCUMULATORS = ThreadLocal.withInitial(() -> new float[0]);
    /** The calling thread's transposed activations ({@link #groupProduct}), kept between calls. */
    private static final ThreadLocal<float[]> TRANSPOSED = ThreadLocal.withInitial(() -> new float[0]);

    private static float[] tile(int size) {
        return scratch(TILE, size);
    }

    private static float[] accumulators(int size) {
        return scratch(ACCUMULATORS, size);
    }

    /** This thread's array of {@code local}, grown to at least {@code size}. */
    static float[] scratch(ThreadLocal<float[]> local, int size) {
        float[] t = local.get();
        if (t.length < size) {
            t = new float[size];
            local.set(t);
        }
        return t;
    }

    /** This thread's array of {@code local}, grown to at least {@code size}. */
    static int[] intScratch(ThreadLocal<int[]> local, int size) {
        int[] t = local.get();
        if (t.length < size) {
            t = new int[size];
            local.set(t);
        }
        return t;
    }

    /** Each thread's sums of x over blocks, kept between calls, and a vector's lanes while they are added. */
    private static final ThreadLocal<float[]> BLOCK_SUMS = ThreadLocal.withInitial(() -> new float[0]),
            LANE_SUMS = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * {@code sums[k] = x[xOffset + 32k] + ... + x[xOffset + 32k + 31]} for the {@code n / 32} blocks of a row, in this
     * thread's scratch. Formats whose weights carry an offset ({@code d * q + m} in Q4_1, {@code d * scale * q - dmin *
     * min} in Q5_K; Q4_K's decode sums its rounded values instead) split a row's dot product into the quants' part and
     * the offsets times these sums: the second part needs x alone, so it is summed once per matrix call instead of once
     * per row.
     */
    static float[] blockSums(float[] x, int xOffset, int n) {
        return blockSums(x, xOffset, n, 32);
    }

    /** As {@link #blockSums(float[], int, int)}, over blocks of {@code block} (16, 32 or 256) elements. */
    static float[] blockSums(float[] x, int xOffset, int n, int block) {
        int lanes = F_SPECIES.length();
        float[] sums = scratch(BLOCK_SUMS, n / block), laneSums = scratch(LANE_SUMS, lanes);
        for (int k = 0; k < n / block; k++) {
            FloatVector s = FloatVector.zero(F_SPECIES);
            // the running sum as the argument, not the receiver (ARCHITECTURE, Invariants)
            for (int l = 0; l < block; l += lanes) s = FloatVector.fromArray(F_SPECIES, x, xOffset + block * k + l).add(s);
            // the lanes added in a fixed order, halving: reduceLanes adds them in one order interpreted and another
            // compiled (2334 of 4096 block sums differed at 256 bits), so the same x gave a decode step and a
            // speculative verification of the same token different sums while one of them ran before C2 (KernelTest
            // promptBatchesTakeTheTilesInBothLayouts, Q4_1, failed once by an ulp)
            s.intoArray(laneSums, 0);
            for (int width = lanes / 2; width > 0; width /= 2) {
                for (int i = 0; i < width; i++) laneSums[i] += laneSums[i + width];
            }
            sums[k] = laneSums[0];
        }
        return sums;
    }

    static float f16(MemorySegment data, long offset) {
        return Float.float16ToFloat(data.get(SHORT_LE, offset));
    }

    @Override
    public String toString() {
        return name + " " + type + " [" + cols + " x " + rows + "]";
    }
}
