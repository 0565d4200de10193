package gptfast4j.model;

import gptfast4j.tensor.Tensor;

import java.lang.ref.Cleaner;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Tensor parallelism: each process of a {@link Group} holds a share of every linear layer's rows and runs the forward
 * pass over them, gathering the others' outputs where a product needs its whole input. The shares: wq, wk and wv by
 * heads (rank r the query heads {@code [r * heads, (r + 1) * heads)} and their kv heads), so that each process runs
 * the attention of its own heads over its own share of the KV cache; wo and w2 by their rows (dim), w1 and w3 by
 * theirs (hidden), the output head by vocabulary rows; a mixture's experts each as a dense feed-forward, its router
 * whole (whole experts per process would leave a process idle whenever a token's chosen experts are all another's).
 * A layer gathers four times (the heads' outputs before wo, wo's outputs, the SwiGLU before w2, w2's outputs; in a
 * mixture the last two for each expert a batch runs) and the logits once. Every output is still one row's dot product
 * over its whole input, computed as one process computes it, so the logits are the one-process logits bit for bit
 * (where Megatron-LM splits wo and w2 by their input columns and adds the partial sums, an all-reduce whose sums round
 * otherwise). The embeddings and norms are whole in every process; the element-wise work between the products
 * (norms, residuals) runs in every process on the gathered vectors.
 * <p>
 * The leader (rank 0) is an ordinary {@link Llama} to its callers: each call that runs or changes a state (a batch,
 * {@link Llama#decodeEach}, {@link Llama#shift}, a new state, {@link Llama#startDecoding}) is first sent to the
 * followers as a command, which {@link #follow} runs on their mirror of that state, one call at a time. A command or
 * step that fails ends the group ({@link #abandon}), and the model with it.
 */
public final class TensorParallel {
    /** null: the whole model is in this process. */
    final Group group;
    /** This rank's query and kv heads. */
    final int heads, kvHeads;
    /** Rank r's columns of the heads' outputs (wq's rows), of dim (wo's, w2's rows) and the vocabulary. */
    final int[] qStarts, dimStarts, vocabStarts;
    private final int rank, size;
    /**
     * The model's feed-forward widths (a dense one's, its experts', its shared experts': ERNIE 4.5 has all three) and
     * rank r's columns of each (w1's, w3's rows): {@link #share} adds them, a forward pass only reads them.
     */
    private int[] widths = {};
    private int[][] widthStarts = {};

    private TensorParallel(Config c, Group group) {
        this.group = group;
        size = group == null ? 1 : group.size();
        rank = group == null ? 0 : group.rank();
        heads = c.nHeads() / size;
        kvHeads = c.nKvHeads() / size;
        qStarts = split(c.qDim(), size, heads * c.headDim());
        dimStarts = split(c.dim(), size, ROWS);
        vocabStarts = split(c.vocabSize(), size, ROWS);
    }

    /** The whole model in one process. */
    static TensorParallel whole(Config c) {
        return new TensorParallel(c, null);
    }

    /** This rank's share of a model of {@code c} in {@code group}, refusing a model that cannot be split that way. */
    static TensorParallel of(Config c, Group group) {
        check(c, group.size());
        return new TensorParallel(c, group);
    }

    /** Refuses a split of a model of {@code c} across {@code size} processes that cannot be made. */
    static void check(Config c, int size) {
        if (size < 2) throw new IllegalArgumentException("tensor parallelism needs at least 2 processes, got " + size);
        if (c.variant().wholeQkNorms()) {
            throw new IllegalArgumentException("this model normalizes all heads' queries and keys together (OLMo2), which tensor parallelism, giving each process its own heads, does not");
        }
        if (c.latentAttention()) {
            throw new IllegalArgumentException("this model's multi-head latent attention (" + c.architecture() + ") cannot be split across processes yet");
        }
        if (c.architecture().startsWith("lfm2")) {
            throw new IllegalArgumentException("this model's convolution layers (" + c.architecture() + ") cannot be split across processes yet");
        }
        if (c.architecture().startsWith("qwen35") || c.architecture().equals("qwen3next")) {
            throw new IllegalArgumentException("this model's gated delta net layers (" + c.architecture() + ") cannot be split across processes yet");
        }
        if (c.architecture().equals("granitehybrid") || c.architecture().startsWith("nemotron_h") || c.architecture().equals("mamba2")
                || c.architecture().equals("falcon-h1")) {
            throw new IllegalArgumentException("this model's Mamba-2 layers (" + c.architecture() + ") cannot be split across processes yet");
        }
        if (c.architecture().equals("mamba") || c.architecture().equals("jamba")) {
            throw new IllegalArgumentException("this model's Mamba layers (" + c.architecture() + ") cannot be split across processes yet");
        }
        if (c.nKvHeads() % size != 0) {
            throw new IllegalArgumentException("this model's " + c.nKvHeads() + " kv heads cannot be split evenly across " + size
                    + " processes (tensor parallelism gives each process whole kv heads)");
        }
    }

    /**
     * Rows per share are a multiple of this where the matrix allows: whole groups of the decode layouts' rows in
     * lanes (16 at 512 bits, 32 per thread's chunk), which then carry no padding.
     */
    private static final int ROWS = 32;

    /** {@code parts + 1} starts of {@code total} split into equal shares, each a multiple of {@code unit} where total allows. */
    static int[] split(int total, int parts, int unit) {
        int[] starts = new int[parts + 1];
        for (int r = 0; r <= parts; r++) {
            long even = (long) total * r / parts;
            starts[r] = (int) (total >= (long) parts * unit && r < parts ? even / unit * unit : even);
        }
        return starts;
    }

    boolean whole() {
        return group == null;
    }

    boolean leads() {
        return group != null && rank == 0;
    }

    /** The split of a feed-forward's hidden {@code width} (w1's and w3's rows); a width {@link #share} has not seen is added. */
    int[] hiddenStarts(int width) {
        for (int i = 0; i < widths.length; i++) if (widths[i] == width) return widthStarts[i];
        widths = java.util.Arrays.copyOf(widths, widths.length + 1);
        widthStarts = java.util.Arrays.copyOf(widthStarts, widthStarts.length + 1);
        widths[widths.length - 1] = width;
        return widthStarts[widthStarts.length - 1] = split(width, size, ROWS);
    }

    /** This rank's first query head, of the model's. */
    int firstHead(int headDim) {
        return qStarts[rank] / headDim;
    }

    /** This rank's columns of a split: {@code starts[rank + 1] - starts[rank]}. */
    int part(int[] starts) {
        return starts[rank + 1] - starts[rank];
    }

    /** This rank's rows of every linear layer (the embeddings, norms and router as they are). */
    Weights share(Weights w, Config c) {
        int headDim = c.headDim();
        Layer[] layers = new Layer[w.layers().length];
        for (int l = 0; l < layers.length; l++) {
            Layer x = w.layers()[l];
            // a deci model's layers may lack the attention (wo null), its wq, wk and wv (wo alone) or the feed-forward
            FeedForward ffn = switch (x.feedForward()) {
                case null -> null;
                case FeedForward.Dense d -> share(d);
                // each expert split as a dense feed-forward is; the router whole, so every process routes alike
                case FeedForward.MoE m -> {
                    int[] hidden = hiddenStarts(m.width());
                    yield m.with(m.w1() == null ? null : rows(m.w1(), hidden), rows(m.w2(), dimStarts), rows(m.w3(), hidden), m.biases() == null ? null
                            : new FeedForward.Biases(m.biases().router(), parts(m.biases().w1(), hidden[rank], part(hidden)), m.biases().w2(),
                            parts(m.biases().w3(), hidden[rank], part(hidden))), m.shared() == null ? null : share(m.shared().ffn()));
                }
            };
            layers[l] = new Layer(x.attentionNorm(), rows(x.wq(), qStarts), kvRows(x.wk(), kvHeads, headDim), kvRows(x.wv(), kvHeads, headDim), rows(x.wo(), dimStarts), x.ffnNorm(), ffn,
                    x.qNorm(), x.kNorm(), part(x.qBias(), qStarts[rank], part(qStarts)),
                    part(x.kBias(), rank * kvHeads * headDim, kvHeads * headDim), part(x.vBias(), rank * kvHeads * headDim, kvHeads * headDim),
                    x.postAttentionNorm(), x.postFfnNorm(), x.outputBias(), part(x.sinks(), firstHead(headDim), part(qStarts) / headDim), null, x.xielu(), null, null, false,
                    x.attentionNormBias(), x.ffnNormBias(), x.attendedNorm());
        }
        // the logits' bias whole: added after the logits are gathered
        return new Weights(w.tokEmbeddings(), layers, w.norm(), rows(w.output(), vocabStarts), w.classifier(), w.normBias(), w.outputBias(), w.positionEmbeddings(), w.embeddingNorm(), w.embeddingNormBias());
    }

    private FeedForward.Dense share(FeedForward.Dense d) {
        int[] hidden = hiddenStarts(d.width());
        // the gate's and up projection's biases this rank's rows'; the down projection's whole, added after its outputs are gathered
        return new FeedForward.Dense(d.w1() == null ? null : rows(d.w1(), hidden), rows(d.w2(), dimStarts), rows(d.w3(), hidden),
                part(d.gateBias(), hidden[rank], part(hidden)), part(d.upBias(), hidden[rank], part(hidden)), d.downBias(), d.hiddenNorm());
    }

    /** Elements {@code [from, from + n)} of a bias (this rank's heads' part), or null for none. */
    private static float[] part(float[] bias, int from, int n) {
        return bias == null ? null : java.util.Arrays.copyOfRange(bias, from, from + n);
    }

    /** {@link #part} of each expert's bias. */
    private static float[][] parts(float[][] biases, int from, int n) {
        return java.util.Arrays.stream(biases).map(b -> part(b, from, n)).toArray(float[][]::new);
    }

    /** This rank's rows of {@code t} split at {@code starts}; null for none. */
    private Tensor rows(Tensor t, int[] starts) {
        return t == null ? null : t.rows(starts[rank], part(starts));
    }

    /** This rank's {@code kvHeads} heads of {@code headDim} rows of a key or value projection; null for none. */
    private Tensor kvRows(Tensor t, int kvHeads, int headDim) {
        return t == null ? null : t.rows((long) rank * kvHeads * headDim, (long) kvHeads * headDim);
    }

    private Tensor[] rows(Tensor[] experts, int[] starts) {
        Tensor[] share = new Tensor[experts.length];
        for (int e = 0; e < experts.length; e++) share[e] = rows(experts[e], starts);
        return share;
    }

    // ---- the leader's commands and the followers' loop ----

    private static final int NEW_STATE = 1, RUN = 2, EACH = 3, SHIFT = 4, DROP = 5, DECODE = 6;
    private static final Cleaner CLEANER = Cleaner.create();
    /** Ids of the leader's states gone unreachable, for the followers to drop with the next command. */
    private final ConcurrentLinkedQueue<Integer> dropped = new ConcurrentLinkedQueue<>();
    private int nextStateId;
    private int[] words = new int[64];

    /** Leader: a new state's id, after the followers made theirs. */
    synchronized int newState(Llama.State s, int contextLength, int maxBatch, int maxLogits, KvCache.Type kvType) {
        int id = ++nextStateId;
        send(NEW_STATE, id, contextLength, maxBatch, maxLogits, kvType.keys().ordinal(), kvType.values().ordinal());
        CLEANER.register(s, () -> dropped.add(id));
        return id;
    }

    /**
     * Leader: the followers run the batch {@link Llama#runBatch} is about to run ({@code exact} and {@code hidden} as
     * its flags). Called holding this object's lock.
     */
    void run(Llama.State s, int[] tokens, int from, int n, int startPos, int nLogits, boolean exact, boolean hidden) {
        int[] w = words(6 + n);
        w[0] = RUN; w[1] = s.id; w[2] = n; w[3] = startPos; w[4] = nLogits; w[5] = (exact ? 1 : 0) | (hidden ? 2 : 0);
        System.arraycopy(tokens, from, w, 6, n);
        command(w, 6 + n);
    }

    /** Leader: the followers run {@link Llama#decodeEach}'s step. Called holding this object's lock. */
    void each(Llama.State batch, Llama.State[] sequences, int[] tokens, int[] positions, int n) {
        int[] w = words(3 + 3 * n);
        w[0] = EACH; w[1] = batch.id; w[2] = n;
        for (int t = 0; t < n; t++) {
            w[3 + 3 * t] = sequences[t].id;
            w[4 + 3 * t] = tokens[t];
            w[5 + 3 * t] = positions[t];
        }
        command(w, 3 + 3 * n);
    }

    /** Leader: the followers shift a state's cache as {@link Llama#shift}. Called holding this object's lock. */
    void shift(Llama.State s, int keep, int discard, int end) {
        send(SHIFT, s.id, keep, discard, end);
    }

    /** Leader: the followers move to their decode layouts too ({@link Llama#startDecoding}). Called holding this object's lock. */
    void startDecoding() {
        send(DECODE);
    }

    /** Leader: why the group was ended ({@link #abandon}), after which every call fails with it; null while it runs. */
    volatile String failure;

    /**
     * Leader: a step whose command the followers have failed here (a peer gone, out of memory, a fault of ours), so
     * they may be inside one of its gathers, where no later command can reach them: the group is ended at once
     * ({@link Group#abort}), and the model fails from then on.
     */
    void abandon(Throwable e) {
        if (failure == null) failure = e.getMessage() != null ? e.getMessage() : e.toString();
        group.abort();
    }

    private void send(int... command) {
        command(command, command.length);
    }

    private void command(int[] w, int count) {
        if (failure != null) throw new IllegalStateException("tensor parallelism stopped: " + failure);
        try {
            for (Integer id; (id = dropped.poll()) != null; ) group.command(new int[]{DROP, id}, 2);
            group.command(w, count);
        } catch (RuntimeException | Error e) {
            abandon(e);
            throw e;
        }
    }

    private int[] words(int count) {
        if (words.length < count) words = new int[Math.max(count, 2 * words.length)];
        return words;
    }

    /**
     * Follower: runs the leader's commands on {@code model} (this rank's share) until the leader closes the group,
     * each state's mirror made and dropped when the leader's is.
     */
    static void follow(Llama model) {
        Group group = model.parallel.group;
        Map<Integer, Llama.State> states = new HashMap<>();
        int[] tokens = new int[Llama.EXACT_BATCH], positions = new int[Llama.EXACT_BATCH];
        Llama.State[] sequences = new Llama.State[Llama.EXACT_BATCH];
        for (int[] w; (w = group.nextCommand()) != null; ) {
            switch (w[1]) {
                case NEW_STATE -> states.put(w[2], new Llama.State(model, w[3], w[4], w[5],
                        new KvCache.Type(KvCache.Type.Element.values()[w[6]], KvCache.Type.Element.values()[w[7]])));
                case RUN -> model.runBatch(state(states, w[2]), w, 7, w[3], w[4], w[5], (w[6] & 1) != 0, (w[6] & 2) != 0);
                case EACH -> {
                    int n = w[3];
                    for (int t = 0; t < n; t++) {
                        sequences[t] = state(states, w[4 + 3 * t]);
                        tokens[t] = w[5 + 3 * t];
                        positions[t] = w[6 + 3 * t];
                    }
                    model.decodeEach(state(states, w[2]), sequences, tokens, positions, n);
                }
                case SHIFT -> model.shift(state(states, w[2]), w[3], w[4], w[5]);
                case DROP -> states.remove(w[2]);
                case DECODE -> model.startDecoding();
                default -> throw new IllegalStateException("unknown tensor-parallel command " + w[1]);
            }
        }
    }

    private static Llama.State state(Map<Integer, Llama.State> states, int id) {
        Llama.State s = states.get(id);
        if (s == null) throw new IllegalStateException("the leader named state " + id + ", which this process does not have");
        return s;
    }
}
