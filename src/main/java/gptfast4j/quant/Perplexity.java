package gptfast4j.quant;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.model.Llama;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Perplexity as llama.cpp's {@code llama-perplexity} computes it, so figures are comparable: the text (one trailing
 * newline removed) is tokenized with BOS and cut into {@code ctx}-token chunks; each chunk's first token is replaced
 * by BOS, the chunk runs from an empty cache, and positions {@code ctx/2 .. ctx-2} are scored by the log-probability
 * of the token that follows. With a base model, also the mean KL divergence {@code KL(base || model)} and how often
 * both put the same token first, over the same positions.
 */
public final class Perplexity {
    /**
     * @param runningPpl the perplexity after each chunk (llama.cpp's {@code [k]} values)
     */
    public record Result(int tokens, int chunks, int scored, double ppl, double pplStdErr, List<Double> runningPpl,
                         Double meanKl, Double top1Agreement) {}

    private Perplexity() {
    }

    public static int[] tokenize(Checkpoint ckpt, String text) {
        return tokenize(ckpt, text, false);
    }

    /**
     * The text as llama-perplexity and llama-imatrix tokenize it: BOS, then its tokens (without its last line break);
     * {@code specials}: special tokens' text as those tokens (llama-imatrix's {@code --parse-special}), else as text.
     */
    public static int[] tokenize(Checkpoint ckpt, String text, boolean specials) {
        if (text.endsWith("\n")) text = text.substring(0, text.length() - 1);
        int[] ids = specials ? ckpt.tokenizer().encodeWithSpecials(text) : ckpt.tokenizer().encode(text);
        int[] all = new int[ids.length + 1];
        all[0] = ckpt.bos();
        System.arraycopy(ids, 0, all, 1, ids.length);
        return all;
    }

    /**
     * How a text is scored: in chunks of {@code ctx} tokens with a KV cache of {@code kvType} (llama-perplexity's
     * {@code -c}, {@code -ctk} and {@code -ctv}; the base model's cache the same); at most {@code maxChunks} chunks
     * from chunk {@code firstChunk} of the text on (the tokens before it left out, as llama-imatrix's {@code --chunk}
     * leaves them: to go on with a run that was cut short); {@code specials}: the text's special tokens parsed
     * ({@link #tokenize}); {@code inputs} (null for none) seeing every matrix product's inputs: the logits of every
     * position are computed then, as llama-imatrix asks for them, so that the last layer and the output head see every
     * token (the scored positions' logits are the same bits either way); the scored positions' log-probabilities saved
     * to {@code saveTo} (null: not saved) as llama-perplexity's {@code --kl-divergence-base} saves them, for
     * {@link #klDivergence} later.
     */
    public record Options(int ctx, KvCache.Type kvType, boolean specials, int firstChunk, int maxChunks, Path saveTo, Llama.InputObserver inputs) {
        /** The whole text in chunks of {@code ctx}, an F32 cache, special tokens' text as text, nothing saved or observed. */
        public static Options ctx(int ctx) {
            return new Options(ctx, KvCache.Type.F32, false, 0, Integer.MAX_VALUE, null, null);
        }

        public Options kvType(KvCache.Type kvType) {
            return new Options(ctx, kvType, specials, firstChunk, maxChunks, saveTo, inputs);
        }

        public Options specials(boolean specials) {
            return new Options(ctx, kvType, specials, firstChunk, maxChunks, saveTo, inputs);
        }

        public Options chunks(int firstChunk, int maxChunks) {
            return new Options(ctx, kvType, specials, firstChunk, maxChunks, saveTo, inputs);
        }

        public Options saveTo(Path saveTo) {
            return new Options(ctx, kvType, specials, firstChunk, maxChunks, saveTo, inputs);
        }

        public Options inputs(Llama.InputObserver inputs) {
            return new Options(ctx, kvType, specials, firstChunk, maxChunks, saveTo, inputs);
        }
    }

    public static Result compute(Checkpoint model, Checkpoint base, String text, int ctx, java.util.function.IntConsumer onChunk) {
        return compute(model, base, text, Options.ctx(ctx), onChunk);
    }

    /** As llama-perplexity with {@code -ctk} and {@code -ctv} of {@code kvType}; the base model runs with the same cache. */
    public static Result compute(Checkpoint model, Checkpoint base, String text, int ctx, KvCache.Type kvType, java.util.function.IntConsumer onChunk) {
        return compute(model, base, text, Options.ctx(ctx).kvType(kvType), onChunk);
    }

    /** {@link #compute} as {@code options} say; {@code onChunk} gets each chunk's index once it is scored. */
    public static Result compute(Checkpoint model, Checkpoint base, String text, Options options, java.util.function.IntConsumer onChunk) {
        int ctx = options.ctx(), firstChunk = options.firstChunk();
        boolean specials = options.specials();
        Llama.InputObserver inputs = options.inputs();
        if (ctx < 4) throw new IllegalArgumentException("--ctx must be at least 4, got " + ctx);
        int[] tokens = tokenize(model, text, specials);
        int vocab = model.model().config.vocabSize();
        if (base != null && base.model().config.vocabSize() != vocab) {
            throw new IllegalArgumentException("the base model's vocabulary differs: " + base.model().config.vocabSize() + " tokens against the model's " + vocab
                    + " (--kl-base wants the same model in another format)");
        }
        // a base with another tokenizer of the same size would be compared token id by token id, meaninglessly
        if (base != null && !java.util.Arrays.equals(tokenize(base, text, specials), tokens)) {
            throw new IllegalArgumentException("the base model's tokenizer differs: it splits the text into other tokens");
        }
        if (firstChunk > 0) {
            if ((long) (firstChunk + 1) * ctx > tokens.length) {
                throw new IllegalArgumentException("the text has " + tokens.length + " tokens: from chunk " + firstChunk + " on, not one chunk of --ctx " + ctx + " is left");
            }
            tokens = java.util.Arrays.copyOfRange(tokens, firstChunk * ctx, tokens.length);
        }
        int chunks = Math.min(options.maxChunks(), tokens.length / ctx);
        if (chunks == 0) throw new IllegalArgumentException("the text has " + tokens.length + (tokens.length == 1 ? " token" : " tokens") + ", fewer than one chunk of --ctx " + ctx);
        Llama.State state = model.model().newState(ctx, ctx, ctx, options.kvType());
        state.observeInputs(inputs);
        Llama.State baseState = base == null ? null : base.model().newState(ctx, ctx, ctx, options.kvType());
        int first = ctx / 2;
        // the scored positions' logits, rows filled again for each chunk (a Llama-3 chunk of 512 holds 131 MB of them)
        float[][] logits = new float[ctx][], baseLogits = new float[ctx][];
        for (int p = first; p < ctx; p++) {
            logits[p] = new float[vocab];
            if (base != null) baseLogits[p] = new float[vocab];
        }
        double[] modelLog = new double[vocab], baseLog = new double[vocab]; // a position's log-probabilities
        double nll = 0, nll2 = 0, kl = 0;
        long agree = 0;
        int count = 0;
        List<Double> running = new ArrayList<>();
        int[] window = new int[ctx];
        try (LogProbabilities.Writer saved = options.saveTo() == null ? null : new LogProbabilities.Writer(options.saveTo(), ctx, vocab, chunks, tokens)) {
            for (int c = 0; c < chunks; c++) {
                System.arraycopy(tokens, c * ctx, window, 0, ctx);
                window[0] = model.bos();
                // the logits of the scored positions alone, as llama-perplexity asks for them
                model.model().forward(state, window, 0, ctx, 0, inputs == null ? first : 0, (p, l, o) -> {
                    if (p >= first) System.arraycopy(l, o, logits[p], 0, vocab);
                });
                if (base != null) base.model().forward(baseState, window, 0, ctx, 0, first, (p, l, o) -> System.arraycopy(l, o, baseLogits[p], 0, vocab));
                for (int p = first; p < ctx - 1; p++) {
                    if (saved != null) saved.add(logits[p]);
                    double[] logp = logSoftmax(logits[p], modelLog);
                    double v = -logp[window[p + 1]];
                    nll += v;
                    nll2 += v * v;
                    count++;
                    if (base != null) {
                        double[] logq = logSoftmax(baseLogits[p], baseLog);
                        double d = 0;
                        int argP = 0, argQ = 0;
                        for (int t = 0; t < vocab; t++) {
                            d += Math.exp(logq[t]) * (logq[t] - logp[t]);
                            if (logp[t] > logp[argP]) argP = t;
                            if (logq[t] > logq[argQ]) argQ = t;
                        }
                        kl += d;
                        if (argP == argQ) agree++;
                    }
                }
                running.add(Math.exp(nll / count));
                onChunk.accept(c);
            }
            if (saved != null) saved.finish();
        }
        double mean = nll / count;
        double ppl = Math.exp(mean);
        // llama.cpp's estimate: the standard error of the mean NLL, carried through exp
        double variance = nll2 / count - mean * mean;
        double stderr = ppl * Math.sqrt(variance / (count - 1));
        return new Result(tokens.length, chunks, count, ppl, stderr, running,
                base == null ? null : kl / count, base == null ? null : (double) agree / count);
    }

    /**
     * A model against a base model's saved log-probabilities, as llama-perplexity {@code --kl-divergence} computes it
     * (its arithmetic: floats where it has them, the base's log-probabilities as stored): per scored position the
     * negative log-likelihoods of the next token by both, the KL divergence from the base (over the tokens the base
     * gives more than e^-16), the difference of the two probabilities of the next token, and whether both put the
     * same token first.
     */
    public static KlDivergence klDivergence(Checkpoint model, LogProbabilities.Reader base, KvCache.Type kvType, java.util.function.IntConsumer onChunk) {
        int ctx = base.ctx(), vocab = model.model().config.vocabSize();
        if (base.vocab() != vocab) {
            throw new IllegalArgumentException(base.path() + " holds log-probabilities over " + base.vocab() + " tokens, where the model has " + vocab + " (another model's?)");
        }
        if (ctx > model.model().config.contextLength()) {
            throw new IllegalArgumentException(base.path() + " was computed with chunks of " + ctx + " tokens, more than the model's context length " + model.model().config.contextLength());
        }
        Llama.State state = model.model().newState(ctx, ctx, ctx, kvType);
        int first = ctx / 2, scored = ctx - 1 - first;
        float[][] logits = new float[ctx][];
        for (int p = first; p < ctx; p++) logits[p] = new float[vocab];
        KlDivergence.Sums sums = new KlDivergence.Sums(base.chunks() * scored);
        int[] window = new int[ctx];
        for (int c = 0; c < base.chunks(); c++) {
            System.arraycopy(base.tokens(), c * ctx, window, 0, ctx);
            window[0] = model.bos();
            model.model().forward(state, window, 0, ctx, 0, first, (p, l, o) -> System.arraycopy(l, o, logits[p], 0, vocab));
            for (int p = first; p < ctx - 1; p++) sums.add(logits[p], base, c, p, window[p + 1]);
            onChunk.accept(c);
        }
        return sums.result();
    }

    /** {@code logits} as log-probabilities, into {@code out}, which it returns. */
    private static double[] logSoftmax(float[] logits, double[] out) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double sum = 0;
        for (float l : logits) sum += Math.exp(l - max);
        double log = Math.log(sum) + max;
        for (int i = 0; i < logits.length; i++) out[i] = logits[i] - log;
        return out;
    }
}
