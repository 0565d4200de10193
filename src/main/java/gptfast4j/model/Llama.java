package gptfast4j.model;

import gptfast4j.io.ByteSize;
import gptfast4j.io.SystemMemory;
import gptfast4j.tensor.OffHeap;
import gptfast4j.tensor.Parallel;
import gptfast4j.tensor.Tensor;
import gptfast4j.tensor.VectorMath;

import java.io.IOException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.Arrays;
import java.util.OptionalLong;

/**
 * The Llama forward pass (Llama-2/3, Mistral, TinyLlama, llama2.c models): RMSNorm, rotary attention with grouped
 * query heads and a KV cache, SwiGLU FFN. Written over weight tensors and the few operations of {@link VectorMath},
 * for a batch of consecutive tokens at once: a batch of one is a decode step, a larger batch is prefill (or the
 * verification of speculated tokens), where each weight matrix is read once for the whole batch.
 */
public final class Llama {
    public final Config config;
    /** As loaded until the first decode step, then in the layouts decode reads fastest ({@link #useDecodeLayouts(OptionalLong)}). */
    private volatile Weights weights;
    private volatile boolean decodeLayouts;
    /** Where the decode layouts' copies go: the memory the weights came with. */
    private final OffHeap memory;
    /** This process's share of the model and its peers ({@link #split}); the whole model where there are none. */
    final TensorParallel parallel;
    /** null, or ALiBi's slope of each of this process's heads ({@link Config.Variant#alibiSlope}). */
    private final float[] alibiSlopes;
    /** LoRA adapters applied to its products ({@link #adapt}); null for none. */
    private volatile Lora lora;
    /** Control vectors added after its layers ({@link #steer}); null for none. */
    private volatile ControlVector controlVector;

    /** A model whose weights' copies are freed when nothing holds them any more ({@link OffHeap#AUTOMATIC}). */
    public Llama(Config config, Weights weights) {
        this(config, weights, OffHeap.AUTOMATIC);
    }

    public Llama(Config config, Weights weights, OffHeap memory) {
        this(config, weights, memory, TensorParallel.whole(config));
    }

    private Llama(Config config, Weights weights, OffHeap memory, TensorParallel parallel) {
        this.config = config;
        this.weights = weights;
        this.memory = memory;
        this.parallel = parallel;
        // ALiBi's slopes of this process's heads (by their index among the model's)
        Config.Variant v = config.variant();
        this.alibiSlopes = v.alibiMaxBias() == 0f ? null : new float[parallel.heads];
        for (int h = 0; alibiSlopes != null && h < parallel.heads; h++) alibiSlopes[h] = v.alibiSlope(parallel.firstHead(config.headDim()) + h, config.nHeads());
    }

    /** Applies LoRA adapters ({@link Lora#load}) to every later forward pass; null for none. Not across processes. */
    public void adapt(Lora lora) {
        if (lora != null && !parallel.whole()) throw new IllegalArgumentException("LoRA adapters cannot be used with --workers (each process holds part of every matrix)");
        this.lora = lora;
    }

    /** Adds control vectors ({@link ControlVector#load}) after the layers in every later forward pass; null for none. Not across processes. */
    public void steer(ControlVector vector) {
        if (vector != null && !parallel.whole()) throw new IllegalArgumentException("control vectors cannot be used with --workers");
        this.controlVector = vector;
    }

    /** The LoRA adapters applied ({@link #adapt}), or null. */
    public Lora lora() {
        return lora;
    }

    /** The LoRA adapters and control vectors applied ({@link Lora#description}, {@link ControlVector#description}), or "" for none. */
    public String adapters() {
        Lora l = lora;
        ControlVector v = controlVector;
        return (l == null ? "" : l.description()) + (l != null && v != null ? "; " : "") + (v == null ? "" : "control vectors " + v.description());
    }

    /**
     * This model's share in {@code group} (tensor parallelism, {@link TensorParallel}): this process's rows of every
     * linear layer, views of this model's, which must still be in their files' layouts (no decode step run). The
     * leader (rank 0) is then used as any model; a follower runs {@link #follow}.
     */
    public Llama split(Group group) {
        if (decodeLayouts) throw new IllegalStateException("a model is split before its first decode step");
        TensorParallel share = TensorParallel.of(config, group);
        return new Llama(config, share.share(weights, config), memory, share);
    }

    /**
     * This model with its float linear layers quantized in memory to {@code type} (Q8_0, Q4_0, Q4_1; the embeddings
     * and norms not): {@code --quantize}. A share of a split model ({@link #split}) quantizes only its own rows.
     */
    public Llama quantize(gptfast4j.tensor.GGMLType type) {
        return new Llama(config, Checkpoint.quantized(weights, type, memory), memory, parallel);
    }

    /**
     * Why a split model ({@link #split}) can run no more (a peer gone: its group was ended, and every later call fails
     * with this), or null: the server's {@code /health} says it.
     */
    public String failure() {
        return parallel.failure;
    }

    /** The processes this model's weights are split across ({@link #split}): 1 where the whole model is here. */
    public int processes() {
        return parallel.whole() ? 1 : parallel.group.size();
    }

    /** Refuses a split of this model across {@code size} processes that {@link #split} would refuse, before any connects. */
    public void checkSplit(int size) {
        TensorParallel.check(config, size);
    }

    /**
     * What tensor-parallel processes compare to know they loaded the same model: the hyperparameters, and every
     * tensor's type, shape and first bytes (another file of the same shape, or another {@code --quantize}, differs there).
     */
    public String fingerprint() {
        StringBuilder b = new StringBuilder(config.toString());
        Weights w = weights;
        java.util.function.UnaryOperator<Tensor> add = t -> {
            byte[] head = t.data.asSlice(0, Math.min(64, t.data.byteSize())).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            b.append(' ').append(t.type).append(':').append(t.rows).append('x').append(t.cols).append(':').append(Integer.toHexString(Arrays.hashCode(head)));
            return t;
        };
        add.apply(w.tokEmbeddings());
        w.map(add);
        return b.toString();
    }

    /** A follower's work ({@link #split}): runs what the leader sends until it closes the group. */
    public void follow() {
        if (parallel.whole() || parallel.leads()) throw new IllegalStateException("only a follower's share follows a leader");
        TensorParallel.follow(this);
    }

    public Weights weights() {
        return weights;
    }

    /**
     * Moves every linear layer to the layout its format decodes fastest from ({@link Tensor#forDecode}: the rows of
     * F16, BF16, Q8_0, Q4_0, Q4_1 and the K-quants one per vector lane). At the first decode step rather
     * than at load, so that the time to the first
     * token (a prefill) and runs that never decode (perplexity, prefill benchmarks) do not wait for the copy:
     * Llama-2-7B Q4_0 takes 4-7 s on this machine, most of it the first touch of fresh memory (in session 34 it took
     * 24-32 s, {@code clear_page_erms} 69% of a profile: the VM's host faulting in fresh guest memory). Prefill reads the new
     * layouts from then on too, so the file's pages, released by the copy, are not read back in.
     * <p>
     * The copy is memory that cannot be paged back to the file, so it is made only when the system has that much
     * available ({@code free}, with {@link #COPY_HEADROOM} to spare); otherwise decode reads the file's layout, which
     * the kernel can page in and out, as before.
     *
     * @return whether the weights were copied
     */
    synchronized boolean useDecodeLayouts(OptionalLong free) {
        if (decodeLayouts) return false;
        decodeLayouts = true;
        long bytes = weights.decodeCopyBytes();
        if (bytes == 0) return false;
        if (free.isPresent() && bytes + COPY_HEADROOM > free.getAsLong()) {
            System.err.printf("note: %s of weights stay in the file's layout: their faster decode layout needs a copy of "
                    + "that size and %s of memory is available%n", ByteSize.of(bytes), ByteSize.of(free.getAsLong()));
            return false;
        }
        weights = weights.map(t -> t.forDecode(memory));
        return true;
    }

    /**
     * The decode phase begins: the weights move to their decode layouts ({@link #useDecodeLayouts}) if they have not.
     * The first one-token step calls it; a generator whose decode steps are batches (speculative verification) calls
     * it after its prefill, so that those batches read the decode layouts too (JMH matmul6 4096 x 4096, one thread:
     * Q4_K 4.3 ms from the file's layout against 3.2 from the decode layout's panels, Q4_0 5.0 against 4.8).
     *
     * @return whether the weights were copied by this call
     */
    public boolean startDecoding() {
        if (decodeLayouts) return false;
        if (parallel.leads()) {
            synchronized (parallel) {
                parallel.startDecoding();
                return useDecodeLayouts(SystemMemory.available());
            }
        }
        return useDecodeLayouts(SystemMemory.available());
    }

    /** Memory left over after the decode layouts' copy, for the KV cache, the JVM and the rest of the system. */
    static final long COPY_HEADROOM = 1L << 30;

    /**
     * Refuses a context longer than a state's buffers can index: the attention weights and the KV cache are indexed
     * by int, per position four queries' weights per head and a kv row (and some slack past the end).
     */
    public void checkContext(int contextLength) {
        int perPosition = Math.max(config.nHeads() * VectorMath.QUERIES, config.kvDim());
        int maxContext = (Integer.MAX_VALUE - (1 << 16)) / perPosition / KvCache.KEY_BLOCK * KvCache.KEY_BLOCK;
        if (contextLength > maxContext) {
            throw new IllegalArgumentException("a context of " + contextLength + " positions is more than this model's buffers can hold (at most " + maxContext + ")");
        }
    }

    /** A state with an F32 KV cache whose logits hold a whole batch. */
    public State newState(int contextLength, int maxBatch) {
        return newState(contextLength, maxBatch, maxBatch, KvCache.Type.F32);
    }

    /**
     * A state whose batches hold up to {@code maxBatch} tokens but whose logits hold only {@code maxLogits} positions:
     * for prefill in large batches where only the last position's logits (or a speculative verification's few) are
     * wanted, since the logits of a full batch take {@code maxBatch * vocab} floats (262 MB at 512 tokens and
     * Llama-3's 128256).
     */
    public State newState(int contextLength, int maxBatch, int maxLogits, KvCache.Type kvType) {
        Tensor positions = weights.positionEmbeddings();
        if (positions != null && contextLength > positions.rows) {
            throw new IllegalArgumentException("a context of " + contextLength + " positions is longer than this model's " + positions.rows + " learned positions (" + config.architecture() + ")");
        }
        State s = new State(this, contextLength, maxBatch, maxLogits, kvType);
        if (parallel.leads()) s.id = parallel.newState(s, contextLength, maxBatch, maxLogits, kvType);
        return s;
    }

    /** Receives the logits of position {@code position} in {@code logits[offset .. offset + vocab)}. */
    @FunctionalInterface
    public interface LogitsSink {
        void accept(int position, float[] logits, int offset);
    }

    /**
     * Runs {@code tokens[from .. from + n)} at positions {@code startPos ..}, in batches of at most
     * {@code state.maxBatch}, and returns the logits of the last one (in {@code state.logits}, at offset 0 unless
     * {@code sink} is given). With a sink, the logits of every position are computed and handed to it, in batches of
     * at most {@code state.maxLogits}. A batch of a few tokens may take other arithmetic than their decode steps
     * would ({@link Tensor#matmul(float[], int, float[], int, boolean)}); {@link #verify} does not.
     */
    public float[] forward(State s, int[] tokens, int from, int n, int startPos, LogitsSink sink) {
        return run(s, tokens, from, n, startPos, startPos, sink, false);
    }

    /**
     * {@link #forward(State, int[], int, int, int, LogitsSink)} with the logits of positions {@code firstWanted} on
     * only: the earlier positions' are neither computed nor handed to the sink (perplexity scores a chunk's second
     * half), which spares their output head and most of their last layer ({@link #lastLayerFrom}).
     */
    public void forward(State s, int[] tokens, int from, int n, int startPos, int firstWanted, LogitsSink sink) {
        if (sink == null) throw new IllegalArgumentException("no sink for the logits");
        run(s, tokens, from, n, startPos, firstWanted, sink, false);
    }

    /**
     * {@link #forward} with a sink, each position's logits exactly those its token's decode step would give, whatever
     * the near-ties: in batches of at most {@link #EXACT_BATCH}, the matrix products running the decode kernel per
     * token and the attention one query at a time. For speculative verification, so that greedy speculative output is
     * token-identical to plain decoding.
     */
    public void verify(State s, int[] tokens, int from, int n, int startPos, LogitsSink sink) {
        if (sink == null) throw new IllegalArgumentException("verify hands every position's logits to a sink; none given");
        run(s, tokens, from, n, startPos, startPos, sink, true);
    }

    private float[] run(State s, int[] tokens, int from, int n, int startPos, int firstWanted, LogitsSink sink, boolean exact) {
        if (n <= 0) throw new IllegalArgumentException("no tokens to run");
        if (s.model != this) throw new IllegalArgumentException("the state was made by another model (newState)");
        if (startPos < 0 || startPos + n > s.contextLength) {
            throw new IllegalArgumentException("positions " + startPos + ".." + (startPos + n - 1)
                    + " exceed the context length " + s.contextLength);
        }
        int most = Math.min(sink != null ? s.maxLogits : s.maxBatch, exact ? EXACT_BATCH : Integer.MAX_VALUE);
        for (int done = 0; done < n; ) {
            int batch = Math.min(most, n - done);
            boolean last = done + batch == n;
            // a sink's logits are the batch's positions from firstWanted on, its last ones; without, the last position's.
            // With a sink at least the batch invariant's count are computed (when any are), so that each position
            // gets the logits it would get with every position's wanted (the output head's products are then the same)
            int wanted = sink == null ? (last ? 1 : 0) : Math.clamp(startPos + done + batch - firstWanted, 0, batch);
            int computed = sink == null || wanted == 0 ? wanted : Math.max(wanted, Math.min(batch, Tensor.BATCH_INVARIANT_TOKENS));
            step(s, tokens, from + done, batch, startPos + done, computed, exact, false, null, null);
            if (sink != null) {
                for (int t = batch - wanted; t < batch; t++) sink.accept(startPos + done + t, s.logits, (t - (batch - computed)) * config.vocabSize());
            }
            done += batch;
        }
        return s.logits;
    }

    /** Receives the final hidden state of position {@code position}: {@code dim} floats in {@code states[offset ..)}. */
    @FunctionalInterface
    public interface HiddenSink {
        void accept(int position, float[] states, int offset);
    }

    /**
     * Runs {@code tokens} at positions {@code 0 ..} (their keys and values then fill the cache, as a prompt's would)
     * and hands each position's final hidden state to {@code sink}: the output norm's, what the output head would
     * multiply (llama.cpp's embeddings), in batches of at most {@code state.maxBatch}; no logits are computed.
     */
    public void hiddenStates(State s, int[] tokens, HiddenSink sink) {
        int n = tokens.length, dim = config.dim();
        if (n == 0) throw new IllegalArgumentException("no tokens to run");
        if (s.model != this) throw new IllegalArgumentException("the state was made by another model (newState)");
        if (n > s.contextLength) throw new IllegalArgumentException(n + " tokens exceed the context length " + s.contextLength);
        for (int done = 0; done < n; ) {
            int batch = Math.min(s.maxBatch, n - done);
            step(s, tokens, done, batch, done, batch, false, true, null, null);
            for (int t = 0; t < batch; t++) sink.accept(done + t, s.xb, t * dim);
            done += batch;
        }
    }

    /**
     * Makes room in a full cache, as llama.cpp's context shift does: positions {@code keep .. keep + discard} are
     * dropped and {@code keep + discard .. end} move down by {@code discard}, their keys rotated back by as many
     * positions, so that the sequence goes on at {@code end - discard}. What the moved entries attended to when they
     * were computed stays in them (a fresh run of the shortened sequence would give other values past the first
     * layer's), which is why this is for a chat that would otherwise end, not for exact continuation.
     */
    public void shift(State s, int keep, int discard, int end) {
        if (s.model != this) throw new IllegalArgumentException("the state was made by another model (newState)");
        if (s.recurrent != null) throw new IllegalStateException("a context shift cannot be made in this model's recurrent layers (" + config.architecture() + ")");
        if (keep < 0 || discard < 1 || keep + discard > end || end > s.contextLength) {
            throw new IllegalArgumentException("cannot drop positions " + keep + ".." + (keep + discard - 1) + " of " + end + " (context " + s.contextLength + ")");
        }
        if (parallel.leads()) {
            synchronized (parallel) {
                parallel.shift(s, keep, discard, end);
                s.kv.shift(config.nLayers(), keep, discard, end, s::rope);
            }
        } else {
            s.kv.shift(config.nLayers(), keep, discard, end, s::rope);
        }
    }

    /** The largest batch {@link #verify} runs at once. */
    public static final int EXACT_BATCH = Tensor.LANE_TOKENS;

    /**
     * One decode step of several sequences at once (continuous batching): token {@code tokens[t]} at position
     * {@code positions[t]} of the sequence whose KV cache is {@code sequences[t]}'s, for {@code t < n}, every weight
     * read once for all of them; token t's logits at {@code batch.logits[t * vocab]}. Each token's products and
     * attention are exactly its own decode step's ({@link #verify}'s way), so a sequence's text does not depend on
     * what it was batched with. {@code batch} lends its activations (not its cache); at most {@link #EXACT_BATCH}
     * tokens, each of another sequence.
     */
    public float[] decodeEach(State batch, State[] sequences, int[] tokens, int[] positions, int n) {
        if (n < 1 || n > Math.min(EXACT_BATCH, batch.maxLogits)) {
            throw new IllegalArgumentException("a step of several sequences takes 1 to " + Math.min(EXACT_BATCH, batch.maxLogits) + " tokens, got " + n);
        }
        for (int t = 0; t < n; t++) {
            State seq = sequences[t];
            if (seq.model != this || batch.model != this) throw new IllegalArgumentException("a state of another model");
            if (!seq.kvType().equals(batch.kvType())) throw new IllegalArgumentException("the sequences' caches and the batch's must be of one type");
            if (positions[t] < 0 || positions[t] >= Math.min(seq.contextLength, batch.contextLength)) {
                throw new IllegalArgumentException("position " + positions[t] + " is outside the context of " + Math.min(seq.contextLength, batch.contextLength));
            }
            for (int u = 0; u < t; u++) if (sequences[u] == seq) throw new IllegalArgumentException("two tokens of one sequence in one step");
            batch.tokenKv[t] = seq.kv;
            batch.tokenPos[t] = positions[t];
            batch.tokenLora[t] = seq.loraWeights;
            if (batch.recurrent != null) batch.tokenRecurrent[t] = seq.recurrent;
        }
        batch.perToken = true;
        try {
            step(batch, tokens, 0, n, 0, n, true, false, sequences, positions);
        } finally {
            batch.perToken = false;
            java.util.Arrays.fill(batch.tokenKv, null); // the sequences' caches are theirs to drop
            java.util.Arrays.fill(batch.tokenLora, null);
            java.util.Arrays.fill(batch.tokenRecurrent, null);
        }
        return batch.logits;
    }

    /**
     * {@link #runBatch}, which a tensor-parallel leader first sends to its followers: as a batch, or with
     * {@code sequences} as {@link #decodeEach}'s step, after checking its token ids (here, not in the followers, which
     * would stop at a bad one). A failure after the command went out ends the group (TensorParallel#abandon).
     */
    private void step(State s, int[] tokens, int from, int n, int startPos, int nLogits, boolean exact, boolean hidden, State[] sequences, int[] positions) {
        if (!parallel.leads()) {
            runBatch(s, tokens, from, n, startPos, nLogits, exact, hidden);
            return;
        }
        checkTokens(tokens, from, n);
        synchronized (parallel) {
            if (sequences == null) parallel.run(s, tokens, from, n, startPos, nLogits, exact, hidden);
            else parallel.each(s, sequences, tokens, positions, n);
            try {
                runBatch(s, tokens, from, n, startPos, nLogits, exact, hidden);
            } catch (RuntimeException | Error e) {
                parallel.abandon(e);
                throw e;
            }
        }
    }

    /** Numbers the calls of {@link #attentionHeads} across every state, for the F16 caches' scratch (KvCache#head). */
    private static final java.util.concurrent.atomic.AtomicLong ATTENTION_CALLS = new java.util.concurrent.atomic.AtomicLong();

    /** One decode step: the logits after {@code token} at {@code pos}. */
    public float[] forward(State s, int token, int pos) {
        s.single[0] = token;
        return forward(s, s.single, 0, 1, pos, null);
    }

    /**
     * Computes the logits of the last {@code nLogits} tokens of the batch (0 for none); {@code exact}: each token's
     * exactly as its decode step would ({@link #verify}); {@code hidden}: their final hidden states only, in
     * {@code s.xb}, the output head left out ({@link #hiddenStates}). Package-private for LastLayerTest, which asks for
     * logits counts the public calls do not.
     */
    void runBatch(State s, int[] tokens, int from, int n, int startPos, int nLogits, boolean exact, boolean hidden) {
        if (s.recurrent == null) {
            runLayers(s, tokens, from, n, startPos, nLogits, exact, hidden);
            return;
        }
        // recurrent layers: each sequence's state made its start's (refused where none is kept); of no position until the
        // run ends. A prompt's run keeps copies from before its last token and at its end, a verification's one after
        // each token (Recurrent)
        int sequences = s.perToken ? n : 1;
        s.keepsPrompt = !s.perToken && n > 1 && !exact;
        s.keepsSteps = !s.perToken && n > 1 && exact;
        for (int t = 0; t < sequences; t++) s.recurrent(t).start(s.perToken ? s.tokenPos[t] : startPos, s.keepsPrompt);
        if (s.keepsSteps) s.recurrent.beginSteps(n); // after the start, which may restore one of the copies it takes
        runLayers(s, tokens, from, n, startPos, nLogits, exact, hidden);
        for (int t = 0; t < sequences; t++) s.recurrent(t).finish(s.perToken ? s.tokenPos[t] : startPos, s.perToken ? 1 : n, s.keepsPrompt, s.keepsSteps);
    }

    private void runLayers(State s, int[] tokens, int from, int n, int startPos, int nLogits, boolean exact, boolean hidden) {
        if (n == 1 && !decodeLayouts) useDecodeLayouts(SystemMemory.available()); // a leader's followers do the same here
        Weights weights = this.weights;
        TensorParallel tp = parallel;
        Config c = config;
        int dim = c.dim();
        checkTokens(tokens, from, n);
        float embeddingScale = c.variant().embeddingScale();
        for (int t = 0; t < n; t++) {
            int token = tokens[from + t];
            weights.tokEmbeddings().dequantizeRow(token, s.x, t * dim);
            if (lora != null) lora.addEmbedding(token, s.x, t * dim, t, s);
            if (embeddingScale != 1f) for (int i = t * dim; i < (t + 1) * dim; i++) s.x[i] *= embeddingScale;
            // A table read only row by row gives its file pages back once read: the file is cached in 2 MB folios, so
            // each token seen kept one mapped (Llama-2-7B Q4_K: 70 of its 74 MB after 100 tokens). Not a table that is
            // also the output head in the file's layout (tied, before or without the decode layouts' copy; a split model's
            // share of the head is then a view of some of its rows).
            if (!weights.tokEmbeddings().overlaps(weights.output())) weights.tokEmbeddings().releaseRowPages(token);
        }
        s.startPos = startPos;
        s.batch = n;
        // learned positions (GPT-2's): each token's row of the table, read into xb (free until the first norm), added
        Tensor positions = weights.positionEmbeddings();
        if (positions != null) {
            for (int t = 0; t < n; t++) {
                positions.dequantizeRow(s.position(t), s.xb, t * dim);
                VectorMath.add(s.x, t * dim, s.xb, t * dim, dim);
            }
        }
        // BLOOM's LayerNorm of the embeddings
        if (weights.embeddingNorm() != null) for (int t = 0; t < n; t++) norm(s.x, t * dim, s.x, t * dim, weights.embeddingNorm(), weights.embeddingNormBias(), dim);
        InputObserver seen = s.inputs;
        for (int l = 0; l < c.nLayers(); l++) {
            Layer layer = weights.layers()[l];
            s.layer = l;
            if (layer.wo() == null) {
                // a feed-forward's block alone (Nemotron-H's, a deci layer without attention): x += ffn(rmsnorm(x) *
                // ffnNorm); nothing in a deci layer of neither
                if (layer.feedForward() != null) {
                    eachToken(n, s.ffnNorm);
                    feedForward(s, layer, n, exact);
                }
                continue;
            }
            // attention: x += wo · attention(rope(wq · h), rope(wk · h), wv · h), h = rmsnorm(x) * attentionNorm
            eachToken(n, s.attentionNorm);
            float[] attended = s.attended;
            if (layer.wq() == null) {
                // Nemotron-51B's "linear attention" (deci): x += wo · h
                if (l == c.nLayers() - 1 && nLogits == 0) return; // no logits wanted of this batch (a long prompt's earlier part)
                attended = s.xb;
            } else if (layer.shortConv() != null) {
                // LFM2's convolution in place of attention: b, c, x = in_proj · h; the cache keeps b * x; y = c * conv(b * x)
                if (seen != null) seen.inputs(layer.wq(), s.xb, n);
                s.sharedInput.matmul(s.xb, n, exact, layer.wq(), s.q, layer.wk(), s.k, layer.wv(), s.v);
                eachToken(n, s.convolutionInputs);
                if (l == c.nLayers() - 1 && nLogits == 0) return; // no logits wanted of this batch (a long prompt's earlier part)
                eachToken(n, s.convolve);
            } else if (layer.recurrent() instanceof DeltaNet d) {
                // Qwen3.5's gated delta net in place of attention (DeltaNet): q, k, v = silu(conv(wq · h)), z = wk · h, its
                // matrices carried token to token in the sequence's recurrent state
                if (seen != null) {
                    seen.inputs(layer.wq(), s.xb, n);
                    if (layer.wk() != null) seen.inputs(layer.wk(), s.xb, n);
                    if (d.betaAlpha() != null) {
                        seen.inputs(d.betaAlpha(), s.xb, n);
                    } else {
                        seen.inputs(d.beta(), s.xb, n);
                        seen.inputs(d.alpha(), s.xb, n);
                    }
                }
                if (layer.wk() == null) {
                    // an early Qwen3-Next conversion's ssm_in: queries, keys, values and z grouped by key head, split as the others'
                    s.sharedInput.matmul(s.xb, n, exact, layer.wq(), s.qkvz, d.betaAlpha(), s.betaAlphas);
                    splitQkvz(s, d, n);
                    splitBetaAlpha(s, d, n);
                } else if (d.betaAlpha() != null) {
                    // Qwen3-Next's fused beta and alpha, grouped by key head: split into their rows
                    s.sharedInput.matmul(s.xb, n, exact, layer.wq(), s.mixed, layer.wk(), s.gateZ, d.betaAlpha(), s.betaAlphas);
                    splitBetaAlpha(s, d, n);
                } else {
                    s.sharedInput.matmul(s.xb, n, exact, layer.wq(), s.mixed, layer.wk(), s.gateZ, d.beta(), s.betas);
                    d.alpha().matmul(s.xb, n, s.alphas, d.valueHeads(), exact);
                }
                Parallel.run(d.convChannels(), CONV_CHANNELS, s.recurrentConvolve);
                eachToken(n, s.deltaNorms);
                Parallel.run(d.valueHeads(), 1, s.deltaHeads);
                if (l == c.nLayers() - 1 && nLogits == 0) return; // no logits wanted of this batch (a long prompt's earlier part)
                attended = s.deltaOut;
            } else if (layer.recurrent() instanceof Mamba2 m && !m.besideAttention()) {
                // Granite 4.0-H's and Nemotron-H's Mamba-2 in place of attention (Mamba2): x, B, C = silu(conv(wq · h) +
                // bias), dt after them, z = wk · h (wq and wk: ssm_in's rows); its matrices carried token to token in the
                // sequence's state
                mamba2Heads(s, m, layer.wq(), layer.wk(), n, exact);
                if (l == c.nLayers() - 1 && nLogits == 0) return; // no logits wanted of this batch (a long prompt's earlier part)
                eachToken(n, s.mambaNorms);
                attended = s.deltaOut;
            } else if (layer.recurrent() instanceof Mamba1 m) {
                // Mamba's mixer (Mamba1): x = silu(conv(wq · h) + bias), z = wk · h (ssm_in's rows); dt's input, B and C =
                // xProj · x, dt = dtProj · dt's input; its rows of states carried token to token in the sequence's state
                if (seen != null) seen.inputs(layer.wq(), s.xb, n);
                s.sharedInput.matmul(s.xb, n, exact, layer.wq(), s.mixed, layer.wk(), s.gateZ);
                Parallel.run(m.convChannels(), CONV_CHANNELS, s.recurrentConvolve);
                if (seen != null) seen.inputs(m.xProj(), s.mixed, n);
                m.xProj().matmul(s.mixed, n, s.projected, m.projectedWidth(), exact);
                eachToken(n, s.mambaProjections);
                if (seen != null) seen.inputs(m.dtProj(), s.dtInputs, n);
                m.dtProj().matmul(s.dtInputs, n, s.steps, m.innerWidth(), exact);
                Parallel.run(m.innerWidth(), SCAN_CHANNELS, s.mambaScan);
                if (l == c.nLayers() - 1 && nLogits == 0) return; // no logits wanted of this batch (a long prompt's earlier part)
                attended = s.gateZ;
            } else {
                // Falcon-H1's Mamba-2 beside the attention, on the same input h (before the attention's output takes xb's
                // place), its output through its own out added to the attention's below
                Mamba2 beside = layer.recurrent() instanceof Mamba2 m && m.besideAttention() ? m : null;
                if (beside != null) {
                    mamba2Heads(s, beside, beside.in(), beside.gate(), n, exact);
                    eachToken(n, s.mambaNorms);
                    if (seen != null) seen.inputs(beside.out(), s.deltaOut, n);
                    beside.out().matmul(s.deltaOut, n, s.besideOut, dim, exact);
                }
                // a latent attention's last layer runs whole or not at all (its per-head products are not split by token),
                // and a layer with a mixer beside its attention (whose output rows are all the batch's)
                int partFrom = l == c.nLayers() - 1 ? lastLayerFrom(n, nLogits, layer.feedForward() instanceof FeedForward.Dense && layer.latent() == null && beside == null) : 0;
                if (seen != null && layer.latent() == null) {
                    if (partFrom == 0) seen.inputs(layer.wq(), s.xb, n);
                    seen.inputs(layer.wk(), s.xb, n);
                    seen.inputs(layer.wv(), s.xb, n);
                }
                if (layer.latent() != null) {
                    latentProjections(s, layer, n, exact, partFrom == n);
                    if (partFrom == n) {
                        eachToken(n, s.cacheKeys);
                        return;
                    }
                    eachToken(n, s.rotateAndCache);
                } else if (partFrom == 0) {
                    s.sharedInput.matmul(s.xb, n, exact, layer.wq(), layer.queryGates() ? s.queryGates : s.q, layer.wk(), s.k, layer.wv(), s.v);
                    if (layer.queryGates()) eachToken(n, s.splitQueryGates);
                    if (lora != null) adapted(l, n, s, true, true);
                    eachToken(n, s.rotateAndCache);
                } else {
                    // the last layer: every token's key and value for the cache, the rest for tokens partFrom..n only
                    s.sharedInput.matmul(s.xb, n, exact, layer.wk(), s.k, layer.wv(), s.v);
                    if (lora != null) adapted(l, n, s, false, true);
                    eachToken(n, s.cacheKeys);
                    if (partFrom == n) return; // no logits wanted of this batch (a long prompt's earlier part)
                    n -= partFrom;
                    System.arraycopy(s.x, partFrom * dim, s.x, 0, n * dim);
                    System.arraycopy(s.xb, partFrom * dim, s.xb, 0, n * dim);
                    if (c.variant().parallelBlocks()) System.arraycopy(s.ffnInput, partFrom * dim, s.ffnInput, 0, n * dim);
                    s.startPos = startPos + partFrom;
                    s.batch = n;
                    if (seen != null) seen.inputs(layer.wq(), s.xb, n);
                    layer.wq().matmul(s.xb, n, layer.queryGates() ? s.queryGates : s.q, layer.queryGates() ? 2 * s.qDim : s.qDim, exact);
                    if (layer.queryGates()) eachToken(n, s.splitQueryGates);
                    if (lora != null) adapted(l, n, s, true, false);
                    eachToken(n, s.rotateQueries);
                }
                s.attentionCall = ATTENTION_CALLS.incrementAndGet();
                // a batch's blocks of four queries a head at a time, the rest of its tokens (a decode step's) by headsPerCall
                int blocked = blockedTokens(n);
                if (blocked > 0) Parallel.run(tp.heads, 1, s.blockedHeads);
                if (blocked < n) Parallel.run(tp.heads, headsPerCall(), s.tokenHeads);
                if (!tp.whole()) tp.group.gather(s.heads, s.attended, c.qDim(), n, tp.qStarts);
                attended = s.attended;
                if (layer.queryGates()) eachToken(n, s.gateHeads);
                if (layer.attendedNorm() != null) eachToken(n, s.attendedNorms); // BitNet's norm of wo's input
                if (layer.latent() != null) {
                    LatentAttention a = layer.latent();
                    // llama.cpp decompresses a fused up-projection's keys and values before the attention: no product of vB
                    if (seen != null && !a.fused()) seen.inputs(a.vB().name, c.nHeads() * a.rank(), gather(s.heads, n * c.nHeads(), c.headDim(), a.rope(), a.rank()), n);
                    Parallel.run(c.nHeads(), 1, s.latentValues);
                    attended = s.latentValueHeads;
                }
            }
            if (seen != null) seen.inputs(layer.wo(), attended, n);
            layer.wo().matmul(attended, n, s.xb2Part, s.dimPart, exact);
            if (layer.recurrent() instanceof Mamba2 m && m.besideAttention()) VectorMath.add(s.xb2, 0, s.besideOut, 0, n * dim);
            if (lora != null && layer.shortConv() == null) lora.add(lora.delta(l, Lora.Target.O), attended, (int) layer.wo().cols, n, s.xb2Part, s.dimPart, s);
            if (!tp.whole()) tp.group.gather(s.xb2Part, s.xb2, dim, n, tp.dimStarts);
            // feed-forward: x += ffn(rmsnorm(x) * ffnNorm), after the attention's residual (Gemma's outputs each
            // normalized first, by postAttentionNorm and postFfnNorm); none in a mixer's block alone (Nemotron-H's)
            eachToken(n, s.residualAndFfnNorm);
            feedForward(s, layer, n, exact);
        }
        if (nLogits == 0) return;
        int first = n - nLogits;
        for (int t = first; t < n; t++) norm(s.xb, (t - first) * dim, s.x, t * dim, weights.norm(), weights.normBias(), dim);
        if (hidden) return;
        if (seen != null) seen.inputs(weights.output(), s.xb, nLogits);
        weights.output().matmul(s.xb, nLogits, s.logitsPart, s.vocabPart, exact);
        if (lora != null) lora.add(lora.output(), s.xb, dim, nLogits, s.logitsPart, s.vocabPart, s);
        if (!tp.whole()) tp.group.gather(s.logitsPart, s.logits, c.vocabSize(), nLogits, tp.vocabStarts);
        if (weights.outputBias() != null) for (int t = 0; t < nLogits; t++) VectorMath.add(s.logits, t * c.vocabSize(), weights.outputBias(), 0, c.vocabSize());
        float cap = c.variant().logitSoftcap(), factor = c.variant().logitFactor();
        if (cap != 0f) for (int t = 0; t < nLogits; t++) VectorMath.softcap(s.logits, t * c.vocabSize(), c.vocabSize(), cap);
        if (factor != 1f) for (int i = 0; i < nLogits * c.vocabSize(); i++) s.logits[i] *= factor;
    }

    private void checkTokens(int[] tokens, int from, int n) {
        for (int t = from; t < from + n; t++) {
            if (tokens[t] < 0 || tokens[t] >= config.vocabSize()) throw new IllegalArgumentException("token id " + tokens[t] + " outside the vocabulary");
        }
    }

    /**
     * The first token of a batch of {@code n} whose last layer runs in full when the logits of its last {@code nLogits}
     * tokens are wanted (0: all of it; n: none): the other tokens' last-layer outputs feed nothing but their own
     * logits, so they need only their keys and values there, as llama.cpp has them (its output ids): a 128-token
     * prompt runs 3.7% fewer multiply-adds in TinyLlama, 2.2% in Llama-2-7B, and one layer's attention less. The part
     * kept is at least {@link Tensor#BATCH_INVARIANT_TOKENS} tokens from a multiple of {@link VectorMath#QUERIES}, so
     * that its matrix products and its attention's blocks of four queries are the whole batch's: its logits are the
     * whole layer's, bit for bit. Not in a mixture of experts ({@code dense} false), where fewer tokens make each
     * expert's batch another size, and so maybe another arithmetic, unless no logits are wanted at all.
     */
    static int lastLayerFrom(int n, int nLogits, boolean dense) {
        if (nLogits == 0) return n;
        if (!dense) return 0;
        int kept = Math.max(nLogits, Tensor.BATCH_INVARIANT_TOKENS);
        return kept >= n ? 0 : (n - kept) / VectorMath.QUERIES * VectorMath.QUERIES;
    }

    /**
     * Runs {@code body} over the tokens {@code [0, n)} of a batch: split across the threads, or inline for a decode
     * step, where handing one token's element-wise work to the pool would cost more than doing it. The bodies are the
     * state's tasks below, bound once per {@link State} (a lambda per call would allocate on every decode step).
     */
    private static void eachToken(int n, Parallel.RangeTask body) {
        if (n == 1) body.run(0, 1);
        else Parallel.run(n, 1, body);
    }

    /**
     * Tokens {@code [t0, t1)}: {@code xb = rmsnorm(x) * attentionNorm}; in parallel blocks the FFN's input kept too
     * (Command-R's, Phi-2's: xb, since the attention's output takes its place; GPT-NeoX's and Falcon-40B's: x by the
     * layer's own FFN norm).
     */
    private void attentionNorm(State s, int t0, int t1) {
        Layer layer = weights().layers()[s.layer];
        normalize(s, t0, t1, layer.attentionNorm(), layer.attentionNormBias());
        if (!config.variant().parallelBlocks()) return;
        int dim = config.dim();
        // the FFN's own norm of the layer's input where it has one (GPT-NeoX's, Falcon-40B's), else the attention's
        if (layer.ffnNorm() != null) for (int t = t0; t < t1; t++) norm(s.ffnInput, t * dim, s.x, t * dim, layer.ffnNorm(), layer.ffnNormBias(), dim);
        else System.arraycopy(s.xb, t0 * dim, s.ffnInput, t0 * dim, (t1 - t0) * dim);
    }

    /** Tokens {@code [t0, t1)}: {@code xb = rmsnorm(x) * norm (+ bias)}, or {@code xb = x} where there is no norm (OLMo2's). */
    private void normalize(State s, int t0, int t1, float[] norm, float[] bias) {
        int dim = config.dim();
        if (norm == null) System.arraycopy(s.x, t0 * dim, s.xb, t0 * dim, (t1 - t0) * dim);
        else for (int t = t0; t < t1; t++) norm(s.xb, t * dim, s.x, t * dim, norm, bias, dim);
    }

    /** {@code out = rmsnorm(x) * weight}, or the LayerNorm's ({@link Config.Variant#layerNorm}), plus {@code bias} where not null. */
    private void norm(float[] out, int outOffset, float[] x, int xOffset, float[] weight, float[] bias, int n) {
        if (config.variant().layerNorm()) VectorMath.layernorm(out, outOffset, x, xOffset, weight, n, config.rmsNormEps());
        else VectorMath.rmsnorm(out, outOffset, x, xOffset, weight, n, config.rmsNormEps());
        if (bias != null) VectorMath.add(out, outOffset, bias, 0, n);
    }

    /** Tokens {@code [t0, t1)}: {@link #cacheKeys} and {@link #rotateQueries}. */
    private void rotateAndCache(State s, int t0, int t1) {
        cacheKeys(s, t0, t1);
        rotateQueries(s, t0, t1);
    }

    /**
     * Tokens {@code [t0, t1)}: RoPE on k at their positions (the layer's biases added to k and v first, and each head's
     * key normalized, where it has them: before RoPE, or after it in Hunyuan's), k and v into the layer's cache.
     */
    private void cacheKeys(State s, int t0, int t1) {
        int kvDim = s.kvDim;
        Layer layer = weights().layers()[s.layer];
        float[] kNorm = layer.kNorm(), kBias = layer.kBias(), vBias = layer.vBias();
        float clamp = config.variant().clampKqv();
        boolean normsAfterRope = config.variant().headNormsAfterRope();
        for (int t = t0; t < t1; t++) {
            int pos = s.position(t);
            if (kBias != null) {
                VectorMath.add(s.k, t * kvDim, kBias, 0, kvDim);
                VectorMath.add(s.v, t * kvDim, vBias, 0, kvDim);
            }
            if (clamp != 0f) {
                clamp(s.k, t * kvDim, kvDim, clamp);
                clamp(s.v, t * kvDim, kvDim, clamp);
            }
            if (kNorm != null && !normsAfterRope) headNorms(s.k, t * kvDim, parallel.kvHeads, kNorm);
            if (s.rope(s.layer) != null) s.rope(s.layer).rotate(s.k, t * kvDim, parallel.kvHeads, pos);
            if (kNorm != null && normsAfterRope) headNorms(s.k, t * kvDim, parallel.kvHeads, kNorm);
            (s.perToken ? s.tokenKv[t] : s.kv).store(s.layer, pos, s.k, t * kvDim, s.v, t * kvDim);
        }
    }

    /**
     * Tokens {@code [t0, t1)}: RoPE on q at their positions (the layer's bias added first, and each head's query
     * normalized, where it has them; scaled after, where the variant scales queries or has a temperature), q rounded
     * as the cache's products round it.
     */
    private void rotateQueries(State s, int t0, int t1) {
        int qDim = s.qDim;
        Layer layer = weights().layers()[s.layer];
        float[] qNorm = layer.qNorm(), qBias = layer.qBias();
        float queryScale = config.variant().queryScale(), clamp = config.variant().clampKqv();
        boolean normsAfterRope = config.variant().headNormsAfterRope();
        Config.Temperature temperature = config.variant().temperature();
        for (int t = t0; t < t1; t++) {
            if (qBias != null) VectorMath.add(s.q, t * qDim, qBias, 0, qDim);
            if (clamp != 0f) clamp(s.q, t * qDim, qDim, clamp);
            if (qNorm != null && !normsAfterRope) headNorms(s.q, t * qDim, parallel.heads, qNorm);
            if (s.rope(s.layer) != null) s.rope(s.layer).rotate(s.q, t * qDim, parallel.heads, s.position(t));
            if (qNorm != null && normsAfterRope) headNorms(s.q, t * qDim, parallel.heads, qNorm);
            if (queryScale != 0f) for (int i = t * qDim; i < (t + 1) * qDim; i++) s.q[i] *= queryScale;
            if (temperature != null && (!temperature.withoutRopeOnly() || s.rope(s.layer) == null)) {
                float f = temperature.at(s.position(t));
                for (int i = t * qDim; i < (t + 1) * qDim; i++) s.q[i] *= f;
            }
            s.kv.roundQueries(s.q, t * qDim, qDim);
        }
    }

    /** {@code x[from .. from + n)} clamped to [-c, c] (MPT's clip_qkv, as ggml_clamp). */
    private static void clamp(float[] x, int from, int n, float c) {
        for (int i = from; i < from + n; i++) x[i] = Math.max(-c, Math.min(c, x[i]));
    }

    /**
     * ALiBi's biases, as ggml's softmax adds them: to the scores of keys {@code [from, to)} of the query at {@code
     * query} (key k's at {@code att[row + k]}), {@code slope} times the key's distance behind it, negative.
     */
    private static void alibi(float[] att, int row, int from, int to, int query, float slope) {
        for (int k = from; k < to; k++) att[row + k] += slope * (float) (k - query);
    }

    /**
     * Qwen3's {@code x = rmsnorm(x) * norm} over each of {@code heads} heads of one token's queries or keys from
     * {@code offset}; OLMo2's over all of them together ({@link Config.Variant#wholeQkNorms}).
     */
    private void headNorms(float[] x, int offset, int heads, float[] norm) {
        int headDim = config.headDim();
        if (config.variant().wholeQkNorms()) VectorMath.rmsnorm(x, offset, x, offset, norm, heads * headDim, config.rmsNormEps());
        else for (int h = 0; h < heads; h++) VectorMath.rmsnorm(x, offset + h * headDim, x, offset + h * headDim, norm, headDim, config.rmsNormEps());
    }

    /**
     * A latent attention's projections of the batch's normalized inputs ({@code s.xb}, [n, dim]): the latents and
     * rotated keys (wk's, [n, rank + rope]) into the cache's layout ({@link #latentKeys}); unless {@code keysOnly}, the
     * queries (wq's, through qA and its norm where the layer has them), each head's taken into the latent space
     * ({@link #absorbQueries}).
     */
    private void latentProjections(State s, Layer layer, int n, boolean exact, boolean keysOnly) {
        LatentAttention a = layer.latent();
        InputObserver seen = s.inputs;
        int kvWidth = a.rank() + a.rope();
        if (seen != null) {
            seen.inputs(layer.wk(), s.xb, n);
            if (!keysOnly) seen.inputs(a.qA() != null ? a.qA() : layer.wq(), s.xb, n);
        }
        if (keysOnly) layer.wk().matmul(s.xb, n, s.latentKv, kvWidth, exact);
        else if (a.qA() == null) s.sharedInput.matmul(s.xb, n, exact, layer.wq(), s.latentQueries, layer.wk(), s.latentKv);
        else {
            int qRank = (int) a.qA().rows;
            s.sharedInput.matmul(s.xb, n, exact, a.qA(), s.latentQa, layer.wk(), s.latentKv);
            for (int t = 0; t < n; t++) VectorMath.rmsnorm(s.latentQa, t * qRank, s.latentQa, t * qRank, a.qANorm(), qRank, config.rmsNormEps());
            if (seen != null) seen.inputs(layer.wq(), s.latentQa, n);
            layer.wq().matmul(s.latentQa, n, s.latentQueries, (int) layer.wq().rows, exact);
        }
        eachToken(n, s.latentKeys);
        if (seen != null && a.fused()) seen.inputs(a.kB().name, a.rank(), gather(s.k, n, s.kvDim, a.rope(), a.rank()), n);
        if (keysOnly) return;
        if (seen != null && !a.fused()) seen.inputs(a.kB().name, config.nHeads() * a.nope(), gather(s.latentQueries, n * config.nHeads(), a.queryWidth(), 0, a.nope()), n);
        Parallel.run(config.nHeads(), 1, s.absorbQueries);
    }

    /**
     * {@code count} runs of {@code width} floats, the i-th at {@code x[i * stride + from]}, one after another in a new
     * array: what an importance matrix sums of inputs the forward pass keeps apart (observing only: it allocates).
     */
    private static float[] gather(float[] x, int count, int stride, int from, int width) {
        float[] out = new float[count * width];
        for (int i = 0; i < count; i++) System.arraycopy(x, i * stride + from, out, i * width, width);
        return out;
    }

    /**
     * Tokens {@code [t0, t1)}: each one's key {@code [rope, rank]} as the cache holds it, its rotated part (wk's last
     * rows, RoPE to come) first, as the variant's partial rotation expects, then its latent normalized by kvNorm; its
     * value is that latent, which the cache does not hold again ({@link KvCache#keysOnly}).
     */
    private void latentKeys(State s, int t0, int t1) {
        LatentAttention a = weights().layers()[s.layer].latent();
        int rank = a.rank(), rope = a.rope(), kvWidth = rank + rope, kvDim = s.kvDim;
        for (int t = t0; t < t1; t++) {
            System.arraycopy(s.latentKv, t * kvWidth + rank, s.k, t * kvDim, rope);
            VectorMath.rmsnorm(s.k, t * kvDim + rope, s.latentKv, t * kvWidth, a.kvNorm(), rank, config.rmsNormEps());
        }
    }

    /**
     * Heads {@code [h0, h1)} of every token of the batch: the query head as the attention reads it, {@code [rope,
     * rank]}: wq's rotated part (RoPE to come), then its non-rotated part taken into the latent space by the head's
     * rows of kB (a fused attn_kv_b's key rows transposed: their sum weighted by that part), so that its product with a
     * cached latent is the product of the query with the key the latent expands to.
     */
    private void absorbQueries(State s, int h0, int h1) {
        LatentAttention a = weights().layers()[s.layer].latent();
        int rank = a.rank(), rope = a.rope(), nope = a.nope(), width = a.queryWidth(), qStride = config.nHeads() * width, headDim = config.headDim();
        for (int h = h0; h < h1; h++) {
            for (int t = 0; t < s.batch; t++) {
                int from = t * qStride + h * width, to = t * s.qDim + h * headDim;
                System.arraycopy(s.latentQueries, from + nope, s.q, to, rope);
                if (a.fused()) Arrays.fill(s.q, to + rope, to + rope + rank, 0f);
                else a.kB().matvecHere(s.latentQueries, from, s.q, to + rope, a.keyRows(h), rank);
            }
            // a fused attn_kv_b's key rows, each read once for the batch (a prompt's 128 tokens: pp128 35.5 -> 44.6 tokens/s)
            for (int i = 0; i < nope && a.fused(); i++) {
                a.kB().dequantizeRow(a.keyRows(h) + i, s.latentRows, h * rank);
                for (int t = 0; t < s.batch; t++) {
                    VectorMath.axpy(s.latentQueries[t * qStride + h * width + i], s.latentRows, h * rank, s.q, t * s.qDim + h * headDim + rope, rank);
                }
            }
        }
    }

    /**
     * Heads {@code [h0, h1)} of every token of the batch: the attention's weighted sum of latents (after the head's
     * {@code rope} zeros) out through the head's rows of vB, to {@code s.latentValueHeads} [n, heads * valueWidth], wo's input.
     */
    private void expandValues(State s, int h0, int h1) {
        LatentAttention a = weights().layers()[s.layer].latent();
        int valueWidth = a.valueWidth(), headDim = config.headDim(), heads = config.nHeads();
        for (int t = 0; t < s.batch; t++) {
            for (int h = h0; h < h1; h++) {
                a.vB().matvecHere(s.heads, t * s.qDim + h * headDim + a.rope(), s.latentValueHeads, (t * heads + h) * valueWidth, a.valueRows(h), valueWidth);
            }
        }
    }

    /** Tokens t0..t1 of a convolution layer: b * x (in place of x, s.v) into the cache at each token's position. */
    private void convolutionInputs(State s, int t0, int t1) {
        int dim = config.dim();
        for (int t = t0; t < t1; t++) {
            for (int i = t * dim; i < (t + 1) * dim; i++) s.v[i] *= s.q[i];
            (s.perToken ? s.tokenKv[t] : s.kv).storeConv(s.layer, s.position(t), s.v, t * dim);
        }
    }

    /**
     * Tokens t0..t1 of a convolution layer, once every token's input is in the cache: each channel's taps over its
     * position and the ones before it (those before position 0 zero), summed oldest first as ggml's ssm_conv sums
     * them, times c (s.k), into the attended rows that out_proj (wo) reads.
     */
    private void convolve(State s, int t0, int t1) {
        int dim = config.dim(), l = s.layer;
        ShortConv conv = weights.layers()[l].shortConv();
        int width = conv.width();
        float[] kernel = conv.kernel();
        for (int t = t0; t < t1; t++) {
            KvCache kv = s.perToken ? s.tokenKv[t] : s.kv;
            int first = s.position(t) - (width - 1);
            for (int i = 0; i < dim; i++) {
                float sum = 0f;
                for (int j = Math.max(0, -first); j < width; j++) sum += kv.conv(l, first + j, i) * kernel[i * width + j];
                s.attended[t * dim + i] = s.k[t * dim + i] * sum;
            }
        }
    }

    /** Channels per task of a recurrent layer's convolution (each runs all the batch's tokens in order). */
    private static final int CONV_CHANNELS = 256;

    /**
     * Channels c0..c1 of a recurrent layer's convolution over the batch's tokens in order ({@link VectorMath#convolveStep}:
     * each channel's taps over the sequence's last inputs and this token's, its bias, then SiLU, in place in s.mixed; the
     * state's rows move on by one). A prompt's rows are kept before its last token, a verification's after each ({@link
     * Recurrent}).
     */
    private void recurrentConvolve(State s, int c0, int c1) {
        int l = s.layer, n = s.batch;
        RecurrentMixer m = weights.layers()[l].recurrent();
        int channels = m.convChannels(), width = m.inputWidth(), taps = m.taps();
        for (int t = 0; t < n; t++) {
            Recurrent r = s.recurrent(t);
            float[] rows = r.conv[l];
            if (s.keepsPrompt && t == n - 1) copyRows(rows, r.savedConv[Recurrent.BEFORE_LAST][l], channels, taps - 1, c0, c1);
            VectorMath.convolveStep(s.mixed, t * width + c0, rows, m.kernel(), m.convBias(), channels, c0, taps, c1 - c0);
            if (s.keepsSteps) copyRows(rows, r.savedConv[r.stepCopies[t]][l], channels, taps - 1, c0, c1);
        }
    }

    /** Channels c0..c1 of {@code count} rows of {@code channels} (a convolution's inputs, a Mamba mixer's states) to {@code to}. */
    private static void copyRows(float[] rows, float[] to, int channels, int count, int c0, int c1) {
        for (int j = 0; j < count; j++) System.arraycopy(rows, j * channels + c0, to, j * channels + c0, c1 - c0);
    }

    /**
     * A fused input projection's outputs (s.qkvz [n, convChannels + outputWidth]: per key head its query, key, its value
     * heads' values and their z, as an early Qwen3-Next conversion's ssm_in makes them) into s.mixed (all queries, all
     * keys, all values) and s.gateZ (all z).
     */
    private static void splitQkvz(State s, DeltaNet d, int n) {
        int width = d.headWidth(), keyHeads = d.keyHeads(), values = d.outputWidth(), channels = d.convChannels(), group = values / keyHeads,
                block = 2 * width + 2 * group;
        for (int t = 0; t < n; t++) {
            int from = t * (channels + values);
            for (int g = 0; g < keyHeads; g++, from += block) {
                System.arraycopy(s.qkvz, from, s.mixed, t * channels + g * width, width);
                System.arraycopy(s.qkvz, from + width, s.mixed, t * channels + (keyHeads + g) * width, width);
                System.arraycopy(s.qkvz, from + 2 * width, s.mixed, t * channels + 2 * keyHeads * width + g * group, group);
                System.arraycopy(s.qkvz, from + 2 * width + group, s.gateZ, t * values + g * group, group);
            }
        }
    }

    /**
     * A fused beta-alpha projection's outputs (s.betaAlphas [n, 2 * valueHeads]: per key head its value heads' betas,
     * then their alphas, as Qwen3-Next's ssm_ba makes them) into s.betas and s.alphas [n, valueHeads].
     */
    private static void splitBetaAlpha(State s, DeltaNet d, int n) {
        int heads = d.valueHeads(), group = heads / d.keyHeads();
        for (int t = 0; t < n; t++) {
            for (int g = 0; g < d.keyHeads(); g++) {
                System.arraycopy(s.betaAlphas, t * 2 * heads + g * 2 * group, s.betas, t * heads + g * group, group);
                System.arraycopy(s.betaAlphas, t * 2 * heads + g * 2 * group + group, s.alphas, t * heads + g * group, group);
            }
        }
    }

    /**
     * Tokens t0..t1 of a delta net: each key head's query and key L2-normalized in place, {@code x / sqrt(sum x² + eps)},
     * computed as llama.cpp does (an RMS norm with eps / n, times 1 / sqrt(n)).
     */
    private void deltaNorms(State s, int t0, int t1) {
        DeltaNet d = (DeltaNet) weights.layers()[s.layer].recurrent();
        int channels = d.convChannels(), width = d.headWidth();
        float eps = config.rmsNormEps() / width, unit = 1f / (float) Math.sqrt(width);
        for (int t = t0; t < t1; t++) {
            for (int h = 0; h < 2 * d.keyHeads(); h++) {
                int at = t * channels + h * width;
                double sum = 0;
                for (int i = at; i < at + width; i++) sum += s.mixed[i] * s.mixed[i];
                float mean = (float) (sum / width), scale = 1f / (float) Math.sqrt(mean + eps);
                for (int i = at; i < at + width; i++) s.mixed[i] = s.mixed[i] * scale * unit;
            }
        }
    }

    /**
     * Value heads h0..h1 of a delta net over the batch's tokens in order (DeltaNet's rule, as ggml's
     * gated_delta_net computes it: the matrix decayed, the delta rule's update, the query's read), each head's output
     * then RMS-normalized, times the norm's weights and silu(z), into s.deltaOut. A prompt's matrices are kept before
     * its last token, a verification's after each ({@link Recurrent}).
     */
    private void deltaHeads(State s, int h0, int h1) {
        int l = s.layer, n = s.batch;
        DeltaNet d = (DeltaNet) weights.layers()[l].recurrent();
        int channels = d.convChannels(), width = d.headWidth(), heads = d.valueHeads(), keyHeads = d.keyHeads(), values = d.outputWidth();
        float scale = 1f / (float) Math.sqrt(width), eps = config.rmsNormEps();
        for (int h = h0; h < h1; h++) {
            int kh = d.keyHead(h), base = h * width * width;
            for (int t = 0; t < n; t++) {
                Recurrent r = s.recurrent(t);
                float[] m = r.matrices[l];
                if (s.keepsPrompt && t == n - 1) System.arraycopy(m, base, r.savedMatrices[Recurrent.BEFORE_LAST][l], base, width * width);
                int q = t * channels + kh * width, k = t * channels + (keyHeads + kh) * width, v = t * channels + (2 * keyHeads + h) * width;
                int out = t * values + h * width;
                float a = s.alphas[t * heads + h] + d.dtBias()[h];
                float g = (a > 20f ? a : (float) Math.log(1f + (float) Math.exp(a))) * d.a()[h];
                float beta = 1f / (1f + (float) Math.exp(-s.betas[t * heads + h]));
                // row by row, each row's decay, delta, update and read depending on that row alone: the same arithmetic as
                // ggml's four passes over the matrix, in one
                float decay = (float) Math.exp(g);
                for (int j = 0, row = base; j < width; j++, row += width) {
                    VectorMath.scale(m, row, width, decay);
                    float delta = (s.mixed[v + j] - VectorMath.dot(m, row, s.mixed, k, width)) * beta;
                    VectorMath.axpy(delta, s.mixed, k, m, row, width);
                    s.deltaOut[out + j] = VectorMath.dot(m, row, s.mixed, q, width) * scale;
                }
                if (s.keepsSteps) System.arraycopy(m, base, r.savedMatrices[r.stepCopies[t]][l], base, width * width);
                double sum = 0;
                for (int j = out; j < out + width; j++) sum += s.deltaOut[j] * s.deltaOut[j];
                float mean = (float) (sum / width);
                VectorMath.gatedNorm(s.deltaOut, out, 1f / (float) Math.sqrt(mean + eps), d.norm(), s.gateZ, out, width);
            }
        }
    }

    /**
     * Heads h0..h1 of a Mamba-2 mixer over the batch's tokens in order (Mamba2's rule, as ggml's ssm_scan computes it:
     * the head's matrix decayed, updated by x · dt and B, read by C, {@link VectorMath#ssmStep}), plus d · x, into
     * s.deltaOut. A prompt's matrices are kept before its last token, a verification's after each ({@link Recurrent}).
     */
    private void mambaHeads(State s, int h0, int h1) {
        int l = s.layer, n = s.batch;
        Mamba2 m = (Mamba2) weights.layers()[l].recurrent();
        int stride = m.inputWidth(), inner = m.innerWidth(), width = m.headWidth(), states = m.stateSize(), channels = m.convChannels();
        int perGroup = m.heads() / m.groups(), size = width * states;
        for (int h = h0; h < h1; h++) {
            int base = h * size, group = h / perGroup;
            float a = m.a()[h], d = m.d()[h];
            for (int t = 0; t < n; t++) {
                Recurrent r = s.recurrent(t);
                float[] matrix = r.matrices[l];
                if (s.keepsPrompt && t == n - 1) System.arraycopy(matrix, base, r.savedMatrices[Recurrent.BEFORE_LAST][l], base, size);
                int row = t * stride, x = row + h * width, out = t * inner + h * width;
                float dt = s.mixed[row + channels + h] + m.dtBias()[h];
                dt = dt > 20f ? dt : (float) Math.log(1f + (float) Math.exp(dt));
                int b = row + inner + group * states, cAt = row + inner + (m.groups() + group) * states;
                VectorMath.ssmStep(matrix, base, width, states, (float) Math.exp(dt * a), dt, d, s.mixed, x, s.mixed, b, cAt, s.deltaOut, out);
                if (s.keepsSteps) System.arraycopy(matrix, base, r.savedMatrices[r.stepCopies[t]][l], base, size);
            }
        }
    }

    /**
     * A Mamba-2 mixer over the batch's normalized input (s.xb): {@code in}'s outputs (x, B, C, dt) into s.mixed, {@code
     * gate}'s (z) into s.gateZ, the convolution, and the heads into s.deltaOut.
     */
    private void mamba2Heads(State s, Mamba2 m, Tensor in, Tensor gate, int n, boolean exact) {
        if (s.inputs != null) s.inputs.inputs(in, s.xb, n);
        s.sharedInput.matmul(s.xb, n, exact, in, s.mixed, gate, s.gateZ);
        Parallel.run(m.convChannels(), CONV_CHANNELS, s.recurrentConvolve);
        Parallel.run(m.heads(), 1, s.mambaHeads);
    }

    /**
     * Tokens t0..t1 of a Mamba-2 mixer: its heads' outputs times silu(z), then RMS-normalized per group, times the norm's
     * weights (where it has a norm; else as they are).
     */
    private void mambaNorms(State s, int t0, int t1) {
        Mamba2 m = (Mamba2) weights.layers()[s.layer].recurrent();
        int inner = m.innerWidth(), group = inner / m.groups();
        VectorMath.swiglu(s.gateZ, s.deltaOut, t0 * inner, (t1 - t0) * inner); // in z's rows
        if (m.norm() == null) {
            System.arraycopy(s.gateZ, t0 * inner, s.deltaOut, t0 * inner, (t1 - t0) * inner);
            return;
        }
        for (int t = t0; t < t1; t++) {
            for (int g = 0; g < m.groups(); g++) {
                int at = t * inner + g * group;
                VectorMath.rmsnorm(s.deltaOut, at, s.gateZ, at, m.norm(), g * group, group, config.rmsNormEps());
            }
        }
    }

    /**
     * Tokens t0..t1 of a Mamba mixer's projections (xProj's [dt's input, B, C]): each part RMS-normalized in place, times
     * its norm's weights, where the mixer has them; dt's input copied to s.dtInputs, the rows dtProj reads.
     */
    private void mambaProjections(State s, int t0, int t1) {
        Mamba1 m = (Mamba1) weights.layers()[s.layer].recurrent();
        int width = m.projectedWidth(), rank = m.dtRank(), states = m.stateSize();
        for (int t = t0; t < t1; t++) {
            int at = t * width;
            if (m.normed()) {
                float eps = config.rmsNormEps();
                VectorMath.rmsnorm(s.projected, at, s.projected, at, m.dtNorm(), rank, eps);
                VectorMath.rmsnorm(s.projected, at + rank, s.projected, at + rank, m.bNorm(), states, eps);
                VectorMath.rmsnorm(s.projected, at + rank + states, s.projected, at + rank + states, m.cNorm(), states, eps);
            }
            System.arraycopy(s.projected, at, s.dtInputs, t * rank, rank);
        }
    }

    /** Channels per task of a Mamba mixer's scan (each runs all the batch's tokens in order). */
    private static final int SCAN_CHANNELS = 256;

    /**
     * Channels c0..c1 of a Mamba mixer over the batch's tokens in order (Mamba1's rule, as ggml's ssm_scan computes it,
     * {@link VectorMath#selectiveScanStep}), plus d · x, times silu(z) into z's rows (s.gateZ). A prompt's rows are kept
     * before its last token, a verification's after each ({@link Recurrent}).
     */
    private void mambaScan(State s, int c0, int c1) {
        int l = s.layer, n = s.batch;
        Mamba1 m = (Mamba1) weights.layers()[l].recurrent();
        int inner = m.innerWidth(), states = m.stateSize(), width = m.projectedWidth(), rank = m.dtRank();
        for (int t = 0; t < n; t++) {
            Recurrent r = s.recurrent(t);
            float[] rows = r.matrices[l];
            if (s.keepsPrompt && t == n - 1) copyRows(rows, r.savedMatrices[Recurrent.BEFORE_LAST][l], inner, states, c0, c1);
            int at = t * inner;
            VectorMath.add(s.steps, at + c0, m.dtBias(), c0, c1 - c0);
            VectorMath.selectiveScanStep(rows, m.a(), inner, states, c0, c1, s.mixed, at, s.steps, at, s.projected, t * width + rank, t * width + rank + states,
                    m.d(), s.deltaOut, at);
            if (s.keepsSteps) copyRows(rows, r.savedMatrices[r.stepCopies[t]][l], inner, states, c0, c1);
            VectorMath.swiglu(s.gateZ, s.deltaOut, at + c0, c1 - c0);
        }
    }

    /** Tokens t0..t1 of a gated-query attention: wq's rows per head, query then gate, into s.q and s.gates. */
    private void splitQueryGates(State s, int t0, int t1) {
        int qDim = s.qDim, headDim = config.headDim();
        for (int t = t0; t < t1; t++) {
            for (int h = 0; h < qDim / headDim; h++) {
                System.arraycopy(s.queryGates, 2 * t * qDim + 2 * h * headDim, s.q, t * qDim + h * headDim, headDim);
                System.arraycopy(s.queryGates, 2 * t * qDim + (2 * h + 1) * headDim, s.gates, t * qDim + h * headDim, headDim);
            }
        }
    }

    /** Tokens {@code [t0, t1)}: {@code attended = rmsnorm(attended) * attendedNorm} (BitNet's, whole: wo's input, gathered). */
    private void attendedNorms(State s, int t0, int t1) {
        rmsnormRows(s.attended, weights().layers()[s.layer].attendedNorm(), t0, t1);
    }

    /** Tokens {@code [t0, t1)}: {@code hbWhole = rmsnorm(hbWhole) * hiddenNorm} (BitNet's norm of w2's input, the running feed-forward's). */
    private void hiddenNorms(State s, int t0, int t1) {
        rmsnormRows(s.hbWhole, s.hiddenNorm, t0, t1);
    }

    /** Rows {@code [t0, t1)} of {@code rows}, each {@code norm.length} wide, RMS-normalized in place times {@code norm}. */
    private void rmsnormRows(float[] rows, float[] norm, int t0, int t1) {
        int width = norm.length;
        for (int t = t0; t < t1; t++) VectorMath.rmsnorm(rows, t * width, rows, t * width, norm, width, config.rmsNormEps());
    }

    /** Tokens t0..t1 of a gated-query attention: each head's output times the sigmoid of its gate. */
    private void gateHeads(State s, int t0, int t1) {
        int qDim = s.qDim;
        for (int i = t0 * qDim; i < t1 * qDim; i++) s.attended[i] *= 1f / (1f + (float) Math.exp(-s.gates[i]));
    }

    /**
     * Tokens {@code [t0, t1)}: the attention's residual {@code x += xb2} ({@code xb2 = rmsnorm(xb2) * postAttentionNorm}
     * first where the layer has that norm), then {@code xb = rmsnorm(x) * ffnNorm}.
     */
    private void residualAndFfnNorm(State s, int t0, int t1) {
        Layer layer = weights().layers()[s.layer];
        int dim = config.dim();
        if (layer.outputBias() != null) for (int t = t0; t < t1; t++) VectorMath.add(s.xb2, t * dim, layer.outputBias(), 0, dim);
        residual(s, t0, t1, layer.postAttentionNorm());
        if (config.variant().parallelBlocks()) System.arraycopy(s.ffnInput, t0 * dim, s.xb, t0 * dim, (t1 - t0) * dim);
        else if (layer.feedForward() != null) normalize(s, t0, t1, layer.ffnNorm(), layer.ffnNormBias());
    }

    /** Tokens {@code [t0, t1)} of a feed-forward's block alone: {@code xb = rmsnorm(x) * ffnNorm}. */
    private void ffnNorm(State s, int t0, int t1) {
        Layer layer = weights().layers()[s.layer];
        normalize(s, t0, t1, layer.ffnNorm(), layer.ffnNormBias());
    }

    /** The LoRA deltas of layer {@code l}'s query ({@code queries}) and key and value ({@code keysValues}) projections of the batch's normalized inputs. */
    private void adapted(int l, int n, State s, boolean queries, boolean keysValues) {
        Lora lora = this.lora;
        Layer layer = weights().layers()[l];
        int dim = config.dim();
        if (queries) lora.add(lora.delta(l, Lora.Target.Q), s.xb, dim, n, s.q, s.qDim, s);
        if (keysValues) {
            lora.add(lora.delta(l, Lora.Target.K), s.xb, dim, n, s.k, (int) layer.wk().rows, s);
            if (layer.wv() != null) lora.add(lora.delta(l, Lora.Target.V), s.xb, dim, n, s.v, (int) layer.wv().rows, s);
        }
    }

    /**
     * Layer {@code layer}'s feed-forward of the batch's normalized inputs (s.xb), added to the residual, where it has
     * one; then the layer's control vector, where one is set.
     */
    private void feedForward(State s, Layer layer, int n, boolean exact) {
        switch (layer.feedForward()) {
            case null -> { }
            case FeedForward.Dense ffn -> {
                dense(s, ffn, n, exact);
                eachToken(n, s.ffnResidual);
            }
            case FeedForward.MoE moe -> mixture(s, moe, n, exact);
        }
        ControlVector steering = controlVector;
        if (steering != null) steering.add(s.layer, s.x, n, config.dim());
    }

    /**
     * A dense SwiGLU of the batch's normalized inputs ({@code s.xb}): its output, w2's, to {@code s.xb2} [n, dim] (a
     * layer's feed-forward, a mixture's shared expert).
     */
    private void dense(State s, FeedForward.Dense ffn, int n, boolean exact) {
        TensorParallel tp = parallel;
        InputObserver seen = s.inputs;
        if (seen != null) {
            if (ffn.w1() != null) seen.inputs(ffn.w1(), s.xb, n);
            seen.inputs(ffn.w3(), s.xb, n);
        }
        s.ffnPart = (int) ffn.w3().rows;
        if (ffn.w1() == null) ffn.w3().matmul(s.xb, n, s.hb2, s.ffnPart, exact); // no gate: the activation of up alone
        else s.sharedInput.matmul(s.xb, n, exact, ffn.w1(), s.hb, ffn.w3(), s.hb2);
        if (ffn.gateBias() != null) for (int t = 0; t < n; t++) VectorMath.add(s.hb, t * s.ffnPart, ffn.gateBias(), 0, s.ffnPart);
        if (ffn.upBias() != null) for (int t = 0; t < n; t++) VectorMath.add(s.hb2, t * s.ffnPart, ffn.upBias(), 0, s.ffnPart);
        // a layer's own feed-forward (not a mixture's shared expert) may be adapted
        Lora lora = ffn == weights().layers()[s.layer].feedForward() ? this.lora : null;
        if (lora != null) {
            int dim = config.dim();
            lora.add(lora.delta(s.layer, Lora.Target.GATE), s.xb, dim, n, s.hb, s.ffnPart, s);
            lora.add(lora.delta(s.layer, Lora.Target.UP), s.xb, dim, n, s.hb2, s.ffnPart, s);
        }
        eachToken(n, s.gate);
        if (!tp.whole()) tp.group.gather(s.hb, s.hbWhole, ffn.width(), n, tp.hiddenStarts(ffn.width()));
        // BitNet's norm of w2's whole input
        s.hiddenNorm = ffn.hiddenNorm();
        if (s.hiddenNorm != null) eachToken(n, s.hiddenNorms);
        if (seen != null) seen.inputs(ffn.w2(), s.hbWhole, n);
        ffn.w2().matmul(s.hbWhole, n, s.xb2Part, s.dimPart, exact);
        if (lora != null) lora.add(lora.delta(s.layer, Lora.Target.DOWN), s.hbWhole, ffn.width(), n, s.xb2Part, s.dimPart, s);
        if (!tp.whole()) tp.group.gather(s.xb2Part, s.xb2, config.dim(), n, tp.dimStarts);
        if (ffn.downBias() != null) for (int t = 0; t < n; t++) VectorMath.add(s.xb2, t * config.dim(), ffn.downBias(), 0, config.dim());
    }

    /** Tokens {@code [t0, t1)}: the FFN's gate, {@code hb = silu(hb) * hb2} (SwiGLU), {@code gelu(hb) * hb2} (GeGLU), or {@code max(hb2, 0)²}. */
    private void gate(State s, int t0, int t1) {
        int hidden = s.ffnPart;
        activate(s.hb, s.hb2, t0 * hidden, (t1 - t0) * hidden, s.layer);
    }

    /** {@code gate[offset .. + n) = act(gate) * up}, by the variant's activation (an ungated one's of up alone, with layer {@code layer}'s parameters). */
    private void activate(float[] gate, float[] up, int offset, int n, int layer) {
        switch (config.variant().activation()) {
            case SILU -> VectorMath.swiglu(gate, up, offset, n);
            case GELU -> VectorMath.geglu(gate, up, offset, n);
            case SWIGLU_OAI -> VectorMath.swigluOai(gate, up, offset, n);
            case RELU_SQUARED -> VectorMath.reluSquared(gate, up, offset, n);
            case GELU_UP -> {
                System.arraycopy(up, offset, gate, offset, n);
                VectorMath.gelu(gate, offset, n);
            }
            case XIELU -> {
                float[] p = weights().layers()[layer].xielu();
                VectorMath.xielu(gate, up, offset, n, p[0], p[1], p[2], p[3]);
            }
        }
    }

    /** Tokens {@code [t0, t1)}: the FFN's residual, {@code x += xb2} ({@code xb2} normalized by the layer's postFfnNorm first where it has one). */
    private void ffnResidual(State s, int t0, int t1) {
        residual(s, t0, t1, weights().layers()[s.layer].postFfnNorm());
    }

    /**
     * Tokens {@code [t0, t1)}: {@code x += xb2}, or {@code x += rmsnorm(xb2) * postNorm} where {@code postNorm} is not
     * null, xb2 times the variant's residual scale where it has one (Granite's).
     */
    private void residual(State s, int t0, int t1, float[] postNorm) {
        int dim = config.dim();
        if (postNorm != null) {
            for (int t = t0; t < t1; t++) VectorMath.rmsnorm(s.xb2, t * dim, s.xb2, t * dim, postNorm, dim, config.rmsNormEps());
        }
        float scale = config.variant().residualScale();
        if (scale != 1f) VectorMath.axpy(scale, s.xb2, t0 * dim, s.x, t0 * dim, (t1 - t0) * dim);
        else VectorMath.add(s.x, t0 * dim, s.xb2, t0 * dim, (t1 - t0) * dim);
    }

    /**
     * The mixture of experts for the batch's normalized inputs ({@code s.xb}), added to {@code s.x} (times the variant's
     * residual scale). Tokens are grouped by expert: each chosen expert runs once over all of its tokens (gathered
     * into {@code s.gathered}), so its weights are read once per batch and an expert no token chose is not read at
     * all ({@link #expertOutput}; one token: {@link #decodeMixture}). A process of a split model
     * runs its rows of each expert, gathering the SwiGLU and the outputs as a dense feed-forward does; every process
     * routes alike, its router whole and its logits the same bits.
     */
    private void mixture(State s, FeedForward.MoE moe, int n, boolean exact) {
        int dim = config.dim(), experts = config.expertCount(), used = moe.used();
        InputObserver seen = s.inputs;
        if (seen != null) seen.inputs(moe.router(), s.xb, n);
        moe.router().matmul(s.xb, n, s.routerLogits, experts, exact);
        for (int t = 0; t < n; t++) moe.route(s.routerLogits, t * experts, s.chosen[t], s.chosenWeights[t]);
        if (n == 1) {
            decodeMixture(s, moe, exact);
            return;
        }
        for (int e = 0; e < experts; e++) {
            int count = 0;
            for (int t = 0; t < n; t++) {
                for (int k = 0; k < used; k++) {
                    if (s.chosen[t][k] == e) {
                        s.slotToken[count] = t;
                        s.slotWeight[count] = s.chosenWeights[t][k];
                        System.arraycopy(s.xb, t * dim, s.gathered, count * dim, dim);
                        count++;
                    }
                }
            }
            if (count == 0) continue;
            if (seen != null) observeExpertInputs(seen, moe, e, s.gathered, count, s.slotWeight, 0);
            int part = (int) moe.w3()[e].rows;
            if (moe.w1() == null) moe.w3()[e].matmul(s.gathered, count, s.hb2, part, exact); // no gate: the activation of up alone
            else s.sharedInput.matmul(s.gathered, count, exact, moe.w1()[e], s.hb, moe.w3()[e], s.hb2);
            Lora lora = this.lora;
            if (lora != null) {
                if (moe.w1() != null) lora.add(lora.expert(s.layer, Lora.Target.GATE_EXPERTS, e), s.gathered, dim, count, s.hb, part, s, s.slotToken);
                lora.add(lora.expert(s.layer, Lora.Target.UP_EXPERTS, e), s.gathered, dim, count, s.hb2, part, s, s.slotToken);
            }
            expertOutput(s, moe, e, s.hb, s.hb2, count, exact);
        }
        sharedExpert(s, moe, n, exact);
    }

    /**
     * The mixture's shared expert, where it has one, added to {@code s.x} after the chosen experts: its output times
     * sigmoid(gate · xb) where it has a gate (Qwen2-MoE's), times the variant's residual scale (Granite's).
     */
    private void sharedExpert(State s, FeedForward.MoE moe, int n, boolean exact) {
        FeedForward.Shared shared = moe.shared();
        if (shared == null) return;
        int dim = config.dim();
        if (shared.gate() != null) {
            if (s.inputs != null) s.inputs.inputs(shared.gate(), s.xb, n);
            shared.gate().matmul(s.xb, n, s.sharedGates, 1, exact);
        }
        dense(s, shared.ffn(), n, exact);
        float scale = config.variant().residualScale();
        for (int t = 0; t < n; t++) {
            float weight = scale;
            if (shared.gate() != null) {
                // llama.cpp's sigmoid, silu(g) / g (its rounding), but 1/2 at g = 0, where that would be 0/0
                float g = s.sharedGates[t];
                weight *= g == 0f ? 0.5f : g / (1f + (float) Math.exp(-g)) / g;
            }
            VectorMath.axpy(weight, s.xb2, t * dim, s.x, t * dim, dim);
        }
    }

    /**
     * {@link #mixture} of one token: its chosen experts' gates and ups in one {@link Tensor.SharedInput} call (they all
     * read the token's input), instead of one call per expert; then each expert's down projection, added in ascending
     * expert order as a batch adds them, so that the sums are a batch's bit for bit (a speculative verification's
     * logits are decode steps': DecodeEachTest fails without the order). Qwen3-30B-A3B Q4_0 (8 of 128 experts, 48
     * layers: 336 fewer pool calls a token), 2 threads, tg32 over seven alternating pairs of jars: mean 18.66 -> 21.45
     * tokens/s (llama.cpp 21.58 in the same hour); gpt-oss-20b (4 of 32) level (13.24 -> 13.14 over six pairs).
     */
    private void decodeMixture(State s, FeedForward.MoE moe, boolean exact) {
        int used = moe.used();
        InputObserver seen = s.inputs;
        int[] chosen = s.chosen[0], order = s.expertOrder;
        // the chosen slots by expert id (insertion sort of at most a few)
        for (int k = 0; k < used; k++) {
            int j = k;
            while (j > 0 && chosen[order[j - 1]] > chosen[k]) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = k;
        }
        // each expert's gate and up (its up alone where the experts have no gate), all in one pool call
        int products = 0;
        for (int k = 0; k < used; k++) {
            int e = chosen[order[k]];
            if (moe.w1() != null) {
                s.expertMatrices[products] = moe.w1()[e];
                s.expertOutputs[products++] = s.expertGates[k];
            }
            s.expertMatrices[products] = moe.w3()[e];
            s.expertOutputs[products++] = s.expertUps[k];
            if (seen != null) observeExpertInputs(seen, moe, e, s.xb, 1, s.chosenWeights[0], order[k]);
        }
        s.sharedInput.matvec(s.xb, exact, s.expertMatrices, s.expertOutputs, products);
        Arrays.fill(s.expertMatrices, null); // keep no matrices reachable from the state
        Arrays.fill(s.expertOutputs, null);
        Lora lora = this.lora;
        if (lora != null) {
            for (int k = 0; k < used; k++) {
                int e = chosen[order[k]], part = (int) moe.w3()[e].rows;
                if (moe.w1() != null) lora.add(lora.expert(s.layer, Lora.Target.GATE_EXPERTS, e), s.xb, 0, 1, s.expertGates[k], part, s);
                lora.add(lora.expert(s.layer, Lora.Target.UP_EXPERTS, e), s.xb, 0, 1, s.expertUps[k], part, s);
            }
        }
        if (!parallel.whole()) {
            for (int k = 0; k < used; k++) {
                s.slotToken[0] = 0;
                s.slotWeight[0] = s.chosenWeights[0][order[k]];
                expertOutput(s, moe, chosen[order[k]], s.expertGates[k], s.expertUps[k], 1, exact);
            }
        } else {
            // the down projections in one pool call (Tensor.EachInput), then added in the same order as one by one
            for (int k = 0; k < used; k++) {
                int e = chosen[order[k]];
                s.slotWeight[0] = s.chosenWeights[0][order[k]];
                expertHidden(s, moe, e, s.expertGates[k], s.expertUps[k], 1);
                s.expertMatrices[k] = moe.w2()[e];
                if (seen != null) seen.inputs(moe.w2()[e], s.expertGates[k], 1);
            }
            s.eachInput.matvec(s.expertMatrices, s.expertGates, s.expertDowns, used);
            Arrays.fill(s.expertMatrices, null);
            for (int k = 0; k < used && lora != null; k++) {
                lora.add(lora.expert(s.layer, Lora.Target.DOWN_EXPERTS, chosen[order[k]]), s.expertGates[k], 0, 1, s.expertDowns[k], 0, s);
            }
            for (int k = 0; k < used; k++) addExpertOutput(s, moe, chosen[order[k]], s.expertDowns[k], 0, s.chosenWeights[0][order[k]], 0);
        }
        sharedExpert(s, moe, 1, exact);
    }

    /**
     * Has {@code seen} see expert {@code e}'s gate and up inputs, {@code rows} rows of {@code in}; where the mixture
     * weighs inputs (Llama 4's), each times its token's weight ({@code weights[from + i]}), as llama.cpp multiplies them
     * before the products (which here take the weights after them: {@link #expertOutput}).
     */
    private void observeExpertInputs(InputObserver seen, FeedForward.MoE moe, int e, float[] in, int rows, float[] weights, int from) {
        float[] x = in;
        if (moe.routing() == FeedForward.Routing.SIGMOID_INPUT) {
            int dim = config.dim();
            x = Arrays.copyOf(in, rows * dim);
            for (int i = 0; i < rows; i++) VectorMath.scale(x, i * dim, dim, weights[from + i]);
        }
        if (moe.w1() != null) seen.inputs(moe.w1()[e], x, rows);
        // a gate and up in one tensor (both named as it) are one matrix's input, as llama-imatrix counts it
        if (moe.w1() == null || !moe.w1()[e].name.equals(moe.w3()[e].name)) seen.inputs(moe.w3()[e], x, rows);
    }

    /**
     * Expert {@code e}'s gates and ups of {@code count} tokens ({@code gate}, {@code up}: [count, its rows of hidden]) through
     * its biases, the activation and its down projection, token i's output added to {@code x} at row {@code
     * s.slotToken[i]} times {@code s.slotWeight[i]} (and the variant's residual scale, Granite's).
     */
    private void expertOutput(State s, FeedForward.MoE moe, int e, float[] gate, float[] up, int count, boolean exact) {
        int dim = config.dim();
        TensorParallel tp = parallel;
        expertHidden(s, moe, e, gate, up, count);
        float[] in = gate;
        if (!tp.whole()) {
            tp.group.gather(gate, s.hbWhole, moe.width(), count, tp.hiddenStarts(moe.width()));
            in = s.hbWhole;
        }
        if (s.inputs != null) s.inputs.inputs(moe.w2()[e], in, count);
        moe.w2()[e].matmul(in, count, s.xb2Part, s.dimPart, exact);
        Lora lora = this.lora;
        if (lora != null) lora.add(lora.expert(s.layer, Lora.Target.DOWN_EXPERTS, e), in, moe.width(), count, s.xb2Part, s.dimPart, s, s.slotToken);
        if (!tp.whole()) tp.group.gather(s.xb2Part, s.xb2, dim, count, tp.dimStarts);
        for (int i = 0; i < count; i++) addExpertOutput(s, moe, e, s.xb2, i * dim, s.slotWeight[i], s.slotToken[i]);
    }

    /**
     * Expert {@code e}'s down projection of one token ({@code out[from .. + dim)}) plus its bias where it has one, added
     * to row {@code row} of {@code x} times {@code weight} (but where the mixture weighed its input, Llama 4's) and the
     * variant's residual scale (Granite's).
     */
    private void addExpertOutput(State s, FeedForward.MoE moe, int e, float[] out, int from, float weight, int row) {
        int dim = config.dim();
        float scale = config.variant().residualScale();
        if (moe.biases() != null) VectorMath.add(out, from, moe.biases().w2()[e], 0, dim);
        VectorMath.axpy(moe.routing() == FeedForward.Routing.SIGMOID_INPUT ? scale : weight * scale, out, from, s.x, row * dim, dim);
    }

    /**
     * Expert {@code e}'s hidden state of {@code count} tokens, into {@code gate}: its gates and ups ([count, its rows of
     * hidden]) times token i's {@code s.slotWeight[i]} where the mixture weighs its inputs (Llama 4's), plus its
     * biases where it has them, through the activation.
     */
    private void expertHidden(State s, FeedForward.MoE moe, int e, float[] gate, float[] up, int count) {
        int part = (int) moe.w3()[e].rows;
        FeedForward.Biases b = moe.biases();
        if (moe.routing() == FeedForward.Routing.SIGMOID_INPUT) {
            // w1 (x w) = (w1 x) w, and so for w3: the input's weight taken after the products, which share their input
            for (int i = 0; i < count; i++) {
                VectorMath.scale(gate, i * part, part, s.slotWeight[i]);
                VectorMath.scale(up, i * part, part, s.slotWeight[i]);
            }
        }
        if (b != null) {
            for (int i = 0; i < count; i++) {
                VectorMath.add(gate, i * part, b.w1()[e], 0, part);
                VectorMath.add(up, i * part, b.w3()[e], 0, part);
            }
        }
        activate(gate, up, 0, count * part, s.layer);
    }

    /**
     * Causal attention of the batch's queries ({@code s.q}, [n, heads * headDim], this process's heads) for the heads
     * {@code [hStart, hEnd)} over the cached keys and values of positions {@code 0 .. startPos + t} (in a sliding layer
     * the last {@link Config.Variant#slidingWindow} of them: the others' weights are not computed, or zero; Gemma 2's
     * scores capped, {@link Config.Variant#attentionSoftcap}); writes the
     * concatenated heads to {@code s.heads} (which is {@code s.attended} when the whole model is here). Query head h reads
     * kv head {@code h / (nHeads / nKvHeads)}, whose keys and values are taken once for all the heads and tokens here
     * that read them ({@link KvCache#head}). The caller splits the heads across threads: for the batch's blocks of four
     * queries ({@code blocks}) one at a time, for its other tokens in units of {@link #headsPerCall} heads (Gemma 3 1B's
     * four heads made one unit, and a 512-token prompt's attention ran on one thread: pp512 at depth 4096 222.8 -> 269-273
     * tokens/s on two).
     * <p>
     * Four queries at a time ({@link VectorMath#product4}: their scores, then their weighted sums), so that each key
     * and value is read once for four: a batch's tokens in blocks of four, each block's first three queries taking zero
     * weights for its later positions (whose keys and values are already cached); the rest of the batch, and every
     * decode step, token by token, with four query heads that share a kv head together where the model's grouping
     * allows. Batches of up to {@link #EXACT_BATCH} tokens (a speculative verification) go token by token too, so
     * that their scores and sums are exactly the decode steps' (four queries at a time sum the values over a different
     * count of positions, and rounding differs at near-ties). TinyLlama's 32 heads, one thread, one layer, a 512-token
     * prompt: 47.8-51.5 ms one query at a time, 23.5-24.2 four tokens at a time; 22 layers of one decode step at 1800
     * positions: 23-29 ms one head at a time, 19.4-21.6 four.
     */
    private void attentionHeads(State s, int hStart, int hEnd, boolean blocks) {
        Config c = config;
        int headDim = c.headDim(), dim = s.qDim, queries = VectorMath.QUERIES;
        int group = c.nHeads() / c.nKvHeads();
        // each query's weights a row of whole key blocks, room for columnSums's zeros
        int n = s.batch, startPos = s.startPos, context = s.kv.keyPositions(), rows = queries * context;
        LatentAttention latent = weights().layers()[s.layer].latent();
        // queries already scaled where the variant scales them (rotateQueries); Granite's scores by its own scale
        float scale = c.variant().queryScale() != 0f ? 1f : c.variant().scoreScale() != 0f ? c.variant().scoreScale() : (float) (1.0 / Math.sqrt(headDim));
        int window = c.variant().slides(s.layer) ? c.variant().slidingWindow() : 0;
        boolean chunked = c.variant().chunked();
        float cap = c.variant().attentionSoftcap();
        float[] sinks = weights().layers()[s.layer].sinks(), slopes = alibiSlopes;
        float[] att = s.att;
        KvCache kv = s.kv;
        int blocked = blockedTokens(n);
        for (int h = hStart; h < hEnd && blocks; h++) {
            KvCache.Head head = kv.head(s.attentionCall, s.layer, h / group, keyFrom(window, chunked, startPos + 1), startPos + n);
            int attOffset = h * rows;
            for (int t = 0; t < blocked; t += queries) {
                int positions = startPos + t + queries, first = firstSeen(window, chunked, startPos + t + 1);
                keyScores(head, headDim, keyFrom(window, chunked, startPos + t + 1), positions, true, s.q, t * dim + h * headDim, dim, scale, att, attOffset, context);
                for (int j = 0; j < queries; j++) {
                    int row = attOffset + j * context, own = startPos + t + j + 1, seen = firstSeen(window, chunked, own);
                    if (cap != 0f) VectorMath.softcap(att, row + seen, own - seen, cap);
                    if (slopes != null) alibi(att, row, seen, own, own - 1, slopes[h]);
                    VectorMath.softmax(att, row + seen, own - seen, sinks == null ? Float.NEGATIVE_INFINITY : sinks[h]);
                    Arrays.fill(att, row + first, row + seen, 0f);
                    Arrays.fill(att, row + own, row + positions, 0f);
                    kv.roundWeights(att, row + seen, own - seen);
                }
                if (kv.keysOnly) {
                    // a latent attention's values as rows made once per call for its blocks of four queries: by
                    // columnSums, which sums each row's lanes for every block, DeepSeek-V2-Lite's pp128 ran 3-6% slower
                    // than with stored values; with the rows as fast, within this machine's noise (pp512 at depth 1024
                    // 25.78 against 25.67 tokens/s)
                    int rope = latent.rope(), width = headDim - rope;
                    float[] latentRows = kv.latentRows(head, s.attentionCall, h / group, rope, keyFrom(window, chunked, startPos + 1), startPos + n);
                    for (int j = 0; j < queries; j++) Arrays.fill(s.heads, (t + j) * dim + h * headDim, (t + j) * dim + h * headDim + rope, 0f);
                    VectorMath.product4(att, attOffset + first, context, latentRows, first * width, width, positions - first, width, 1f,
                            s.heads, t * dim + h * headDim + rope, dim);
                } else {
                    VectorMath.product4(att, attOffset + first, context, head.values, head.valueBase + first * headDim, headDim, positions - first, headDim, 1f,
                            s.heads, t * dim + h * headDim, dim);
                }
            }
        }
        if (blocks) return;
        if (headsPerCall() == queries) {
            // heads h .. h + 3 share a kv head: the range's bounds are multiples of four, and so is the grouping
            for (int h = hStart; h < hEnd; h += queries) {
                KvCache.Head shared = s.perToken ? null : kv.head(s.attentionCall, s.layer, h / group, keyFrom(window, chunked, startPos + blocked + 1), startPos + n);
                for (int t = blocked; t < n; t++) {
                    int positions = s.position(t) + 1, seen = firstSeen(window, chunked, positions), qOffset = t * dim + h * headDim;
                    KvCache.Head head = s.perToken ? s.tokenKv[t].head(s.attentionCall, s.layer, h / group, keyFrom(window, chunked, positions), positions) : shared;
                    keyScores(head, headDim, keyFrom(window, chunked, positions), positions, true, s.q, qOffset, headDim, scale, att, h * rows, rows);
                    for (int j = 0; j < queries; j++) {
                        if (cap != 0f) VectorMath.softcap(att, (h + j) * rows + seen, positions - seen, cap);
                        if (slopes != null) alibi(att, (h + j) * rows, seen, positions, positions - 1, slopes[h + j]);
                        VectorMath.softmax(att, (h + j) * rows + seen, positions - seen, sinks == null ? Float.NEGATIVE_INFINITY : sinks[h + j]);
                        kv.roundWeights(att, (h + j) * rows + seen, positions - seen);
                    }
                    if (kv.keysOnly) {
                        latentSums(head, headDim, latent.rope(), att, h * rows, rows, queries, keyFrom(window, chunked, positions), seen, positions, s.heads, qOffset, headDim);
                    } else {
                        VectorMath.product4(att, h * rows + seen, rows, head.values, head.valueBase + seen * headDim, headDim, positions - seen, headDim, 1f,
                                s.heads, qOffset, headDim);
                    }
                }
            }
        } else {
            for (int h = hStart; h < hEnd; h++) {
                KvCache.Head shared = s.perToken ? null : kv.head(s.attentionCall, s.layer, h / group, keyFrom(window, chunked, startPos + blocked + 1), startPos + n);
                int attOffset = h * rows;
                for (int t = blocked; t < n; t++) {
                    int positions = s.position(t) + 1, seen = firstSeen(window, chunked, positions);
                    KvCache.Head head = s.perToken ? s.tokenKv[t].head(s.attentionCall, s.layer, h / group, keyFrom(window, chunked, positions), positions) : shared;
                    keyScores(head, headDim, keyFrom(window, chunked, positions), positions, false, s.q, t * dim + h * headDim, 0, scale, att, attOffset, 0);
                    if (cap != 0f) VectorMath.softcap(att, attOffset + seen, positions - seen, cap);
                    if (slopes != null) alibi(att, attOffset, seen, positions, positions - 1, slopes[h]);
                    VectorMath.softmax(att, attOffset + seen, positions - seen, sinks == null ? Float.NEGATIVE_INFINITY : sinks[h]);
                    kv.roundWeights(att, attOffset + seen, positions - seen);
                    if (kv.keysOnly) {
                        latentSums(head, headDim, latent.rope(), att, attOffset, 0, 1, keyFrom(window, chunked, positions), seen, positions, s.heads, t * dim + h * headDim, 0);
                    } else {
                        VectorMath.weightedSum(att, attOffset + seen, head.values, head.valueBase + seen * headDim, headDim, positions - seen,
                                s.heads, t * dim + h * headDim, headDim);
                    }
                }
            }
        }
    }

    /**
     * A keys-only cache's weighted sums ({@link KvCache#keysOnly}: a latent attention's, whose values are its keys'
     * latent parts, after {@code rope} rotated elements): {@code queries} rows of weights {@code wStride} apart from
     * {@code att[attOffset]}, made zero outside {@code [seen, positions)} within the key blocks that {@code from}
     * begins, sum the keys' latent parts of positions {@code from .. positions} into rows {@code outStride} apart from
     * {@code out[outOffset]}, each after {@code rope} zeros (where a value's rotated part would sum).
     */
    private static void latentSums(KvCache.Head head, int headDim, int rope, float[] att, int attOffset, int wStride, int queries,
                                   int from, int seen, int positions, float[] out, int outOffset, int outStride) {
        int block = KvCache.KEY_BLOCK, end = (positions + block - 1) / block * block;
        for (int j = 0, row = attOffset; j < queries; j++, row += wStride) {
            Arrays.fill(att, row + from, row + seen, 0f);
            Arrays.fill(att, row + positions, row + end, 0f);
            Arrays.fill(out, outOffset + j * outStride, outOffset + j * outStride + rope, 0f);
        }
        VectorMath.columnSums(att, attOffset, wStride, queries, head.keys, head.keyBase + rope * block, head.keyBlockStride, block,
                from, positions, headDim - rope, out, outOffset + rope, outStride);
    }

    /** {@link #attentionHeads} of the batch's blocks of four queries. */
    private void blockedHeads(State s, int hStart, int hEnd) {
        attentionHeads(s, hStart, hEnd, true);
    }

    /** {@link #attentionHeads} of the batch's tokens after its blocks of four queries. */
    private void tokenHeads(State s, int hStart, int hEnd) {
        attentionHeads(s, hStart, hEnd, false);
    }

    /** The batch's first tokens that {@link #attentionHeads} takes in blocks of four queries: none in a batch of at most {@link #EXACT_BATCH}. */
    private static int blockedTokens(int n) {
        return n <= EXACT_BATCH ? 0 : n - n % VectorMath.QUERIES; // decodeEach's at most EXACT_BATCH: none
    }

    /**
     * The first position a query that sees {@code positions} positions (its own the last) attends to: 0, or in a
     * sliding layer ({@code window} > 0) the first of the last {@code window}, or where the window is {@code chunked}
     * the first of its own chunk of {@code window} positions. A later query's is never earlier (a block of four
     * queries' first is theirs all).
     */
    private static int firstSeen(int window, boolean chunked, int positions) {
        return window == 0 ? 0 : chunked ? (positions - 1) / window * window : Math.max(0, positions - window);
    }

    /** The first key position that query's scores are computed from: {@link #firstSeen}'s block of the key cache. */
    private static int keyFrom(int window, boolean chunked, int positions) {
        return firstSeen(window, chunked, positions) / KvCache.KEY_BLOCK * KvCache.KEY_BLOCK;
    }

    /**
     * The scores of one query ({@code four} false: {@link VectorMath#scores}) or of four ({@link VectorMath#product4},
     * their rows {@code qStride} apart in q and {@code attStride} apart in att) against a kv head's keys of positions
     * {@code from .. positions} ({@code from} a block's first), to {@code att[attOffset + p]}: a block of {@link
     * KvCache#KEY_BLOCK} positions at a time, the key cache's layout.
     */
    private static void keyScores(KvCache.Head head, int headDim, int from, int positions, boolean four,
                                  float[] q, int qOffset, int qStride, float scale, float[] att, int attOffset, int attStride) {
        int block = KvCache.KEY_BLOCK;
        for (int p = from, k = head.keyBase + from / block * head.keyBlockStride; p < positions; p += block, k += head.keyBlockStride) {
            int n = Math.min(block, positions - p);
            if (four) VectorMath.product4(q, qOffset, qStride, head.keys, k, block, headDim, n, scale, att, attOffset + p, attStride);
            else VectorMath.scores(q, qOffset, head.keys, k, block, headDim, n, scale, att, attOffset + p);
        }
    }

    /**
     * The unit in which {@link #attentionHeads} takes heads for the tokens it runs one query at a time: four where every
     * four consecutive query heads share a kv head (grouped-query attention with groups of 4, 8, ...), so that a
     * token's query heads go four at a time; otherwise one. (A batch's blocks of four queries go a head at a time.)
     */
    private int headsPerCall() {
        return config.nHeads() / config.nKvHeads() % VectorMath.QUERIES == 0 ? VectorMath.QUERIES : 1;
    }

    /** Sees the input rows of a batch's matrix products: what an importance matrix sums ({@code gptfast imatrix}). */
    public interface InputObserver {
        /**
         * {@code rows} inputs of the tensor named {@code weight}, {@code cols} floats each, at {@code x[0..]}; an expert
         * of a merged expert tensor is the slice named {@code <tensor>[e]}; a latent attention's per-head matrices
         * ([in, out, heads]) have each token's inputs of all heads side by side ({@code cols} = heads * in), as
         * llama-imatrix sums a 3-D tensor's.
         */
        void inputs(String weight, int cols, float[] x, int rows);

        /** {@code rows} inputs of {@code weight}, {@code weight.cols} floats each, at {@code x[0..]}. */
        default void inputs(Tensor weight, float[] x, int rows) {
            inputs(weight.name, weight.cols, x, rows);
        }
    }

    /** Activations and KV cache of one sequence, sized once so that a forward pass allocates nothing. */
    public static final class State {
        public final int contextLength;
        public final int maxBatch;
        /** Positions whose logits one batch can return: {@link #maxBatch}, or fewer (see {@link Llama#newState(int, int, int)}). */
        public final int maxLogits;
        // x, xb, xb2: [batch, dim]; q: [batch, qDim]; k, v: [batch, kvDim]; hb, hb2: [batch, ffnPart] (room for the widest)
        final float[] x, xb, xb2, q, k, v, hb, hb2;
        /** Parallel blocks' FFN input, the attention's normalized input, [batch, dim] (Command-R's; empty elsewhere). */
        final float[] ffnInput;
        /**
         * Under tensor parallelism this process's columns, gathered into the whole vectors above: the attention's heads
         * [batch, qDim] (into xb), wo's and w2's outputs [batch, dimPart] (into xb2), the SwiGLU [batch, hidden] (from
         * hb), the logits [logits, vocabPart]; the same arrays as those when the whole model is here.
         */
        final float[] heads, xb2Part, hbWhole, logitsPart;
        /**
         * All heads' attention, wo's input, [batch, config.qDim()]: xb, whose rows it fits unless the heads are wider
         * than the model ({@link Config#headDim} its own).
         */
        final float[] attended;
        /** This process's widths: its heads' (qDim, kvDim) and its rows' of wo and w2, the output head. */
        final int qDim, kvDim, dimPart, vocabPart;
        /** The running feed-forward's rows of w1 and w3 in this process (their widths differ in a model with shared experts). */
        int ffnPart;
        /** The running feed-forward's norm of w2's input (BitNet's), or null. */
        float[] hiddenNorm;
        /**
         * [heads, QUERIES, contextLength rounded up to whole key blocks]: each head's attention weights for up to four
         * queries ({@link Llama#attentionHeads}), room for zeros to the end of the last block ({@link VectorMath#columnSums}).
         */
        final float[] att;
        /** After a forward pass: the logits, [nLogits, vocab]. */
        public final float[] logits;
        /** A tensor-parallel leader's name for this state in its commands (TensorParallel); 0 elsewhere. */
        int id;
        /** Keys and values of the positions so far. */
        final KvCache kv;
        /** The recurrent layers' state (RecurrentMixer), or null in a model without them. */
        final Recurrent recurrent;
        /** In {@link Llama#decodeEach}'s batch, token t's sequence's {@link #recurrent}. */
        final Recurrent[] tokenRecurrent;
        // a recurrent layer's (RecurrentMixer; empty elsewhere): wq's outputs, the convolution's channels convolved in
        // place [batch, inputWidth]; z [batch, outputWidth]; a delta net's beta's and alpha's [batch, valueHeads]; the
        // heads' outputs [batch, outputWidth]
        final float[] mixed, gateZ, betas, alphas, deltaOut;
        /** A fused beta-alpha projection's outputs [batch, 2 * valueHeads] (Qwen3-Next's), split into betas and alphas; empty elsewhere. */
        final float[] betaAlphas;
        /** An early Qwen3-Next conversion's fused input projection's outputs [batch, convChannels + outputWidth], split into mixed and gateZ; empty elsewhere. */
        final float[] qkvz;
        /** A Mamba mixer's (Mamba1; empty elsewhere): xProj's outputs [batch, dtRank + 2 * stateSize], dt's inputs [batch, dtRank], the steps [batch, innerWidth]. */
        final float[] projected, dtInputs, steps;
        /** A Mamba-2 mixer's beside attention (Falcon-H1's): its output through its out [batch, dim], added to the attention's; empty elsewhere. */
        final float[] besideOut;
        /** A gated-query attention's (Qwen3.5's): wq's outputs [batch, 2 * qDim], and the gates [batch, qDim]; empty elsewhere. */
        final float[] queryGates, gates;

        /** Token t's recurrent state: its sequence's in {@link Llama#decodeEach}'s batch, else this state's. */
        Recurrent recurrent(int t) {
            return perToken ? tokenRecurrent[t] : recurrent;
        }

        /**
         * Whether the batch keeps copies of the recurrent state (Recurrent): a prompt's from before its last token, a
         * verification's after each token.
         */
        boolean keepsPrompt, keepsSteps;

        /**
         * The greatest position from {@code 0 .. wanted} that a run of this state can start at: {@code wanted} itself,
         * but in a model with recurrent layers, whose state is kept for a few positions only ({@link Recurrent}): there
         * a caller that would reuse the first {@code wanted} positions of a cache reuses this many.
         */
        public int resumableAt(int wanted) {
            return recurrent == null ? wanted : recurrent.resumableAt(wanted);
        }

        /** Whether this state's model has recurrent layers, which cannot go back to any position (see {@link #resumableAt}). */
        public boolean recurrent() {
            return recurrent != null;
        }

        public KvCache.Type kvType() {
            return kv.type();
        }

        /** The KV cache's size. */
        public long kvBytes() {
            return kv.bytes() + kv.convBytes();
        }

        /**
         * The KV cache's positions {@code 0 .. positions} to {@code out}, position by position ({@link KvCache#write}:
         * a prefix of the bytes is a prefix of the sequence), {@link #cacheBytesPerPosition} each, for a later
         * {@link #readCache} into a state of the same model and cache type. Not for a model split over processes,
         * whose cache is spread over them.
         */
        public void writeCache(WritableByteChannel out, int positions) throws IOException {
            checkCachePositions(positions);
            if (recurrent != null && recurrent.position != positions) {
                throw new IllegalStateException("this model's recurrent layers hold position " + recurrent.position + ", not " + positions + ": a cache file holds their state where it ends");
            }
            kv.write(out, model.config.nLayers(), positions);
            if (recurrent != null) recurrent.write(out);
        }

        /**
         * {@link #writeCache}'s inverse: the cache's positions {@code 0 .. positions} from {@code in}, and a model's
         * recurrent layers' state after them (which is that of the file's end: a caller restores all of a file's
         * positions or none, {@link #recurrent()}).
         */
        public void readCache(ReadableByteChannel in, int positions) throws IOException {
            checkCachePositions(positions);
            kv.read(in, model.config.nLayers(), positions);
            if (recurrent != null) recurrent.read(in, positions);
        }

        /** Bytes a model's recurrent layers' state and its kept copies hold (0 in others). */
        public long recurrentBytes() {
            return recurrent == null ? 0 : recurrent.memoryBytes();
        }

        /** Bytes {@link #writeCache} writes after the positions: a model's recurrent layers' state (0 in others). */
        public long cacheStateBytes() {
            return recurrent == null ? 0 : recurrent.bytes();
        }

        /** Bytes {@link #writeCache} writes per position. */
        public long cacheBytesPerPosition() {
            return kv.bytesPerPosition(model.config.nLayers());
        }

        private void checkCachePositions(int positions) {
            if (!model.parallel.whole()) throw new IllegalStateException("a split model's KV cache is spread over its processes");
            if (positions < 0 || positions > contextLength) throw new IllegalArgumentException(positions + " positions do not fit the context length " + contextLength);
        }

        /** The layers' rotations; a model with a sliding window has its sliding layers' apart (null where it has none). */
        final Rope rope, slidingRope;

        /** Layer {@code l}'s rotations; null for a layer without RoPE (SmolLM3's every fourth). */
        Rope rope(int l) {
            Config.Variant v = model.config.variant();
            return !v.ropes(l) ? null : slidingRope != null && v.slides(l) ? slidingRope : rope;
        }

        final int[] single = new int[1];
        /** A decode step's matrix calls that share their input: wq, wk, wv and w1, w3 (Tensor.SharedInput). */
        final Tensor.SharedInput sharedInput;
        // mixture of experts: router logits [batch, experts], the chosen experts and weights per token, and the
        // tokens gathered for one expert
        final float[] routerLogits, gathered, slotWeight;
        /** Qwen2-MoE's shared experts' gates, gate · x, [batch]. */
        final float[] sharedGates;
        // a decode step's chosen experts: their gates' and ups' outputs [used][their part], the matrices and outputs of
        // their one SharedInput call, and their slots in ascending expert order
        final float[][] expertGates, expertUps, expertOutputs;
        final Tensor[] expertMatrices;
        /** A decode step's chosen experts' down projections [used][dim], from their one EachInput call. */
        final float[][] expertDowns;
        final Tensor.EachInput eachInput;
        final int[] expertOrder;
        final int[][] chosen;
        final float[][] chosenWeights;
        final int[] slotToken;
        // the batch runBatch is on (its first position, size and current layer), for the per-token tasks below,
        // which are bound to this state once so that a decode step allocates nothing
        int startPos, batch, layer;
        /** The number of the current call of attentionHeads, between which a KV cache changes (KvCache.head). */
        long attentionCall;
        /**
         * {@link Llama#decodeEach}'s batch: token t's position and the cache it reads and writes (another sequence's
         * state's) instead of {@code startPos + t} and this state's own.
         */
        boolean perToken;
        final KvCache[] tokenKv;
        final int[] tokenPos;
        /** In {@link Llama#decodeEach}'s batch, token t's sequence's {@link #loraWeights}. */
        final float[][] tokenLora;
        /**
         * The LoRA adapters' weights in this state's products ({@link Lora}: one per adapter, by id), or null for the
         * model's ({@link Lora#weights}): a server request's own ({@code lora}).
         */
        public volatile float[] loraWeights;

        /** The model this state is of. */
        public Llama model() {
            return model;
        }
        final Parallel.RangeTask attentionNorm, rotateAndCache, cacheKeys, rotateQueries, blockedHeads, tokenHeads, residualAndFfnNorm, ffnNorm, gate, ffnResidual,
                latentKeys, absorbQueries, latentValues, convolutionInputs, convolve, recurrentConvolve, deltaNorms, deltaHeads, mambaHeads, mambaNorms, mambaProjections, mambaScan, splitQueryGates, gateHeads, attendedNorms, hiddenNorms;
        /**
         * A latent attention's (LatentAttention; empty elsewhere): wq's queries [batch, heads * (nope + rope)], qA's
         * [batch, qRank], wk's latents and rotated keys [batch, rank + rope], the heads' outputs through vB [batch, heads *
         * valueWidth], and a row of a fused attn_kv_b per head [heads, rank].
         */
        final float[] latentQueries, latentQa, latentKv, latentValueHeads, latentRows;
        /** The model the tasks are bound to: only it may run this state. */
        final Llama model;
        /** Sees every matrix product's inputs (an importance matrix's collection); null: none. */
        InputObserver inputs;

        /**
         * Has {@code observer} see the input rows of every matrix product this state's batches run (null: none); a
         * model split over processes has only its share of some inputs, and refuses.
         */
        public void observeInputs(InputObserver observer) {
            if (observer != null && !model.parallel.whole()) throw new IllegalStateException("a split model's inputs are spread over its processes");
            inputs = observer;
        }

        /** The position of the batch's token t. */
        int position(int t) {
            return perToken ? tokenPos[t] : startPos + t;
        }

        State(Llama model, int contextLength, int maxBatch, int maxLogits, KvCache.Type kvType) {
            this.model = model;
            Config c = model.config;
            if (contextLength <= 0 || maxBatch <= 0) throw new IllegalArgumentException("context length and batch must be positive");
            model.checkContext(contextLength);
            this.contextLength = contextLength;
            if (maxLogits <= 0 || maxLogits > maxBatch) throw new IllegalArgumentException("logits must be for 1 to " + maxBatch + " positions, got " + maxLogits);
            this.maxBatch = maxBatch;
            this.maxLogits = maxLogits;
            TensorParallel tp = model.parallel;
            qDim = tp.heads * c.headDim();
            kvDim = tp.kvHeads * c.headDim();
            dimPart = tp.part(tp.dimStarts);
            int hiddenPart = model.weights().widestHidden(false);
            vocabPart = tp.part(tp.vocabStarts);
            x = new float[maxBatch * c.dim()];
            xb = new float[maxBatch * c.dim()];
            xb2 = new float[maxBatch * c.dim()];
            ffnInput = new float[c.variant().parallelBlocks() ? maxBatch * c.dim() : 0];
            // a convolution layer's b, c and x (ShortConv) in q, k and v, each dim wide
            boolean[] convolutions = new boolean[c.nLayers()], attends = new boolean[c.nLayers()];
            for (int l = 0; l < c.nLayers(); l++) {
                Layer layer = model.weights().layers()[l];
                convolutions[l] = layer.shortConv() != null;
                // the cache's keys and values are the attention layers' alone (not a convolution's, a recurrent mixer's or a feed-forward's block)
                attends[l] = layer.attends();
            }
            int convWidth = java.util.stream.IntStream.range(0, c.nLayers()).anyMatch(l -> convolutions[l]) ? c.dim() : 0;
            q = new float[maxBatch * Math.max(qDim, convWidth)];
            k = new float[maxBatch * Math.max(kvDim, convWidth)];
            v = new float[maxBatch * Math.max(kvDim, convWidth)];
            hb = new float[maxBatch * hiddenPart];
            hb2 = new float[maxBatch * hiddenPart];
            logits = new float[maxLogits * c.vocabSize()];
            boolean whole = tp.whole();
            attended = c.qDim() <= c.dim() ? xb : new float[maxBatch * c.qDim()];
            heads = whole ? attended : new float[maxBatch * qDim];
            xb2Part = whole ? xb2 : new float[maxBatch * dimPart];
            hbWhole = whole ? hb : new float[maxBatch * model.weights().widestHidden(true)];
            logitsPart = whole ? logits : new float[maxLogits * vocabPart];
            // a latent attention's values are its keys' latent parts: the cache holds them once
            kv = KvCache.of(kvType, c, attends, tp.kvHeads, contextLength, java.util.Arrays.stream(model.weights().layers()).allMatch(l -> l.latent() != null));
            if (convWidth > 0) kv.convolving(convolutions, convWidth);
            att = new float[tp.heads * VectorMath.QUERIES * kv.keyPositions()];
            rope = new Rope(c, contextLength, false);
            // sliding layers rotated as the others where their base is not their own (gpt-oss's)
            slidingRope = c.variant().slidingWindow() > 0 && c.variant().slidingRopeTheta() != 0f ? new Rope(c, contextLength, true) : null;
            int experts = Math.max(c.expertCount(), 0), used = Math.max(c.expertsUsed(), 0);
            routerLogits = new float[maxBatch * experts];
            chosen = new int[maxBatch][used];
            chosenWeights = new float[maxBatch][used];
            gathered = c.isMoE() ? new float[maxBatch * c.dim()] : new float[0];
            slotToken = new int[c.isMoE() ? maxBatch : 0];
            slotWeight = new float[c.isMoE() ? maxBatch : 0];
            sharedGates = new float[c.isMoE() ? maxBatch : 0];
            sharedInput = new Tensor.SharedInput(2 * used);
            expertGates = new float[used][hiddenPart];
            expertUps = new float[used][hiddenPart];
            expertMatrices = new Tensor[2 * used];
            expertDowns = new float[used][c.dim()];
            eachInput = new Tensor.EachInput(Math.max(used, 1));
            expertOutputs = new float[2 * used][];
            expertOrder = new int[used];
            LatentAttention latent = java.util.Arrays.stream(model.weights().layers()).map(Layer::latent).filter(java.util.Objects::nonNull).findFirst().orElse(null);
            latentQueries = new float[latent == null ? 0 : maxBatch * c.nHeads() * latent.queryWidth()];
            latentQa = new float[latent == null || latent.qA() == null ? 0 : maxBatch * (int) latent.qA().rows];
            latentKv = new float[latent == null ? 0 : maxBatch * (latent.rank() + latent.rope())];
            latentValueHeads = new float[latent == null ? 0 : maxBatch * c.nHeads() * latent.valueWidth()];
            latentRows = new float[latent == null || !latent.fused() ? 0 : c.nHeads() * latent.rank()];
            // a model's recurrent layers are all of one kind and shape
            RecurrentMixer mixer = java.util.Arrays.stream(model.weights().layers()).map(Layer::recurrent).filter(java.util.Objects::nonNull).findFirst().orElse(null);
            recurrent = mixer == null ? null : new Recurrent(model.weights().layers(), maxLogits);
            tokenRecurrent = new Recurrent[mixer == null ? 0 : maxBatch];
            mixed = new float[mixer == null ? 0 : maxBatch * mixer.inputWidth()];
            gateZ = new float[mixer == null ? 0 : maxBatch * mixer.outputWidth()];
            deltaOut = new float[mixer == null ? 0 : maxBatch * mixer.outputWidth()];
            betas = new float[mixer instanceof DeltaNet d ? maxBatch * d.valueHeads() : 0];
            alphas = new float[mixer instanceof DeltaNet d ? maxBatch * d.valueHeads() : 0];
            betaAlphas = new float[mixer instanceof DeltaNet d && d.betaAlpha() != null ? 2 * maxBatch * d.valueHeads() : 0];
            boolean fusedIn = java.util.Arrays.stream(model.weights().layers()).anyMatch(l -> l.recurrent() instanceof DeltaNet && l.wk() == null);
            qkvz = new float[fusedIn ? maxBatch * (mixer.inputWidth() + mixer.outputWidth()) : 0];
            projected = new float[mixer instanceof Mamba1 m ? maxBatch * m.projectedWidth() : 0];
            dtInputs = new float[mixer instanceof Mamba1 m ? maxBatch * m.dtRank() : 0];
            steps = new float[mixer instanceof Mamba1 m ? maxBatch * m.innerWidth() : 0];
            besideOut = new float[mixer instanceof Mamba2 m && m.besideAttention() ? maxBatch * c.dim() : 0];
            boolean gated = java.util.Arrays.stream(model.weights().layers()).anyMatch(Layer::queryGates);
            queryGates = new float[gated ? 2 * maxBatch * qDim : 0];
            gates = new float[gated ? maxBatch * qDim : 0];
            tokenKv = new KvCache[maxBatch];
            tokenLora = new float[maxBatch][];
            tokenPos = new int[maxBatch];
            attentionNorm = (t0, t1) -> model.attentionNorm(this, t0, t1);
            rotateAndCache = (t0, t1) -> model.rotateAndCache(this, t0, t1);
            cacheKeys = (t0, t1) -> model.cacheKeys(this, t0, t1);
            rotateQueries = (t0, t1) -> model.rotateQueries(this, t0, t1);
            blockedHeads = (h0, h1) -> model.blockedHeads(this, h0, h1);
            tokenHeads = (h0, h1) -> model.tokenHeads(this, h0, h1);
            residualAndFfnNorm = (t0, t1) -> model.residualAndFfnNorm(this, t0, t1);
            ffnNorm = (t0, t1) -> model.ffnNorm(this, t0, t1);
            gate = (t0, t1) -> model.gate(this, t0, t1);
            ffnResidual = (t0, t1) -> model.ffnResidual(this, t0, t1);
            latentKeys = (t0, t1) -> model.latentKeys(this, t0, t1);
            absorbQueries = (h0, h1) -> model.absorbQueries(this, h0, h1);
            latentValues = (h0, h1) -> model.expandValues(this, h0, h1);
            convolutionInputs = (t0, t1) -> model.convolutionInputs(this, t0, t1);
            convolve = (t0, t1) -> model.convolve(this, t0, t1);
            recurrentConvolve = (c0, c1) -> model.recurrentConvolve(this, c0, c1);
            deltaNorms = (t0, t1) -> model.deltaNorms(this, t0, t1);
            deltaHeads = (h0, h1) -> model.deltaHeads(this, h0, h1);
            mambaHeads = (h0, h1) -> model.mambaHeads(this, h0, h1);
            mambaNorms = (t0, t1) -> model.mambaNorms(this, t0, t1);
            mambaProjections = (t0, t1) -> model.mambaProjections(this, t0, t1);
            mambaScan = (c0, c1) -> model.mambaScan(this, c0, c1);
            splitQueryGates = (t0, t1) -> model.splitQueryGates(this, t0, t1);
            gateHeads = (t0, t1) -> model.gateHeads(this, t0, t1);
            attendedNorms = (t0, t1) -> model.attendedNorms(this, t0, t1);
            hiddenNorms = (t0, t1) -> model.hiddenNorms(this, t0, t1);
        }
    }
}
