package gptfast4j.model;

import gptfast4j.io.Metadata.Value;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Hyperparameters of a Llama-family transformer, always read from the checkpoint's own metadata.
 *
 * @param ropeFreqFactors per rotary pair i, the divisor of its frequency (Llama-3.1 rope scaling, a linear scaling's
 *                        factor; infinite for a pair that never turns, M-RoPE's fourth section in text), or null for none
 * @param ropeStyle       which elements a rotary pair joins: adjacent ones (GGUF, llama2.c) or halves (Hugging Face)
 * @param expertCount     0 for a dense model, else the experts per layer; {@code expertsUsed} of them run per token
 * @param headDim         each attention head's width: {@code dim / nHeads} in most models; others say their own (GGUF's
 *                        {@code attention.key_length}, Hugging Face's {@code head_dim}: Mistral Nemo's 128 at a width of
 *                        5120 and 32 heads), the queries then {@code nHeads * headDim} wide rather than {@code dim}
 */
public record Config(
        String architecture,
        int dim,
        int hiddenDim,
        int nLayers,
        int nHeads,
        int nKvHeads,
        int vocabSize,
        int contextLength,
        float rmsNormEps,
        float ropeTheta,
        float[] ropeFreqFactors,
        RopeStyle ropeStyle,
        int expertCount,
        int expertsUsed,
        int headDim,
        Variant variant) {

    /**
     * What sets a family's blocks apart from Llama's, as llama.cpp's hyperparameters name them (Gemma 2's and 3's, Phi-3's,
     * Granite's, SmolLM3's; {@link #LLAMA} none).
     *
     * @param embeddingScale   the token embeddings' factor (Gemma: sqrt(dim)); 1 for none
     * @param activation       the FFN's gate: SiLU (SwiGLU) or tanh-approximated GELU (GeGLU)
     * @param queryScale       0: the scores scaled by 1/sqrt(headDim), Llama's way; else the queries multiplied by this
     *                         after RoPE and the scores not scaled (llama.cpp's {@code f_attention_scale}: Gemma's
     *                         1/sqrt(headDim), Gemma 3 27B's 1/sqrt(dim / heads))
     * @param slidingWindow    0, or the positions a sliding layer's query sees: its own and the {@code slidingWindow -
     *                         1} before it (llama.cpp's standard SWA)
     * @param slidingLayers    per layer whether it slides; null where the window is 0
     * @param slidingRopeTheta the sliding layers' RoPE base (their rotations unscaled), or 0 where they rotate as the
     *                         others do (gpt-oss's); the others' is {@link #ropeTheta}
     * @param logitSoftcap     0, or c in {@code logits = c * tanh(logits / c)}
     * @param attentionSoftcap 0, or c in {@code scores = c * tanh(scores / c)} before the softmax (Gemma 2's)
     * @param rotaryDim        0, or the first elements of each head that RoPE rotates where they are not all of them
     *                         (GGUF's {@code rope.dimension_count}: Phi-4-mini's 96 of 128), the rest left as they are
     * @param ropeAttnFactor   RoPE's cosines and sines scaled by this (Phi-3's LongRoPE, {@code rope.scaling.attn_factor}); 1 for none
     * @param longRopeFactors  null, or the frequency divisors (Phi-3's {@code rope_factors_long}) used in place of
     *                         {@link #ropeFreqFactors} (its {@code rope_factors_short}) by a state whose context is longer
     *                         than {@code longRopeContext} positions, as llama.cpp chooses them
     * @param scoreScale       0, or the attention scores' factor in place of 1/sqrt(headDim) (Granite's {@code attention.scale})
     * @param residualScale    the attention's and the FFN's outputs' factor before their residuals (Granite's); 1 for none
     * @param logitFactor      the logits' factor (Command-R's {@code logit_scale}, 1 / Granite's); 1 for none
     * @param noRopeEvery      0, or n where every n-th layer (n - 1, 2n - 1, ...) has no RoPE (SmolLM3's 4; 1: no layer has)
     * @param wholeQkNorms     whether {@link Layer#qNorm} and {@link Layer#kNorm} normalize all heads' queries and keys
     *                         together (OLMo2's, {@code [qDim]} and {@code [kvDim]}) rather than each head's (Qwen3's)
     * @param layerNorm        whether the norms are LayerNorm (Command-R's without biases, StarCoder2's and Phi-2's with
     *                         them; its epsilon {@link #rmsNormEps}) rather than RMSNorm
     * @param parallelBlocks   whether the FFN reads the attention's normalized input and both add to the residual at
     *                         once (Command-R's parallel blocks), rather than the FFN following the attention
     * @param yarn             null, or YaRN's rope scaling of the layers that do not slide
     * @param temperature      null, or the queries' factor by position (Ministral 3's and Llama 4's attention temperature)
     * @param chunked          whether a sliding layer's query attends to the positions of its chunk of {@code
     *                         slidingWindow} (from the last multiple of the window up to its own: Llama 4's chunked
     *                         attention) rather than to the last {@code slidingWindow}
     * @param alibiMaxBias     0, or ALiBi's max bias (llama.cpp's {@code f_max_alibi_bias}: MPT's, BLOOM's 8): each
     *                         head's scores plus its {@link #alibiSlope} times the key's distance behind the query
     * @param clampKqv         0, or c where the query, key and value projections' outputs are clamped to [-c, c] (MPT's {@code clip_qkv})
     * @param headNormsAfterRope whether each head's query and key norms ({@link Layer#qNorm}, {@link Layer#kNorm}) apply
     *                         after RoPE (Hunyuan's) rather than before it (Qwen3's)
     */
    public record Variant(float embeddingScale, Activation activation, float queryScale, int slidingWindow,
                          boolean[] slidingLayers, float slidingRopeTheta, float logitSoftcap, float attentionSoftcap,
                          int rotaryDim, float ropeAttnFactor, float[] longRopeFactors, int longRopeContext,
                          float scoreScale, float residualScale, float logitFactor, int noRopeEvery, boolean wholeQkNorms,
                          boolean layerNorm, boolean parallelBlocks, Yarn yarn, Temperature temperature, boolean chunked,
                          float alibiMaxBias, float clampKqv, boolean headNormsAfterRope) {
        public static final Variant LLAMA = new Variant(1f, Activation.SILU, 0f, 0, null, 0f, 0f, 0f, 0, 1f, null, 0, 0f, 1f, 1f, 0, false, false, false, null, null, false, 0f, 0f);

        public Variant {
            if (!(embeddingScale > 0 && embeddingScale < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("embedding scale " + embeddingScale + " is not a finite number > 0");
            if (!(queryScale >= 0 && queryScale < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("attention scale " + queryScale + " is not a finite number >= 0");
            if (slidingWindow < 0) throw new IllegalArgumentException("sliding window " + slidingWindow + " is negative");
            if (slidingWindow > 0 && slidingLayers == null) throw new IllegalArgumentException("a sliding window without its layers");
            if (slidingWindow > 0 && !(slidingRopeTheta >= 0 && slidingRopeTheta < Float.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("sliding layers' RoPE frequency base " + slidingRopeTheta + " is not a finite number >= 0");
            }
            if (!(logitSoftcap >= 0 && logitSoftcap < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("logit softcap " + logitSoftcap + " is not a finite number >= 0");
            if (!(attentionSoftcap >= 0 && attentionSoftcap < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("attention softcap " + attentionSoftcap + " is not a finite number >= 0");
            if (rotaryDim < 0 || rotaryDim % 2 != 0) throw new IllegalArgumentException("rope dimension " + rotaryDim + " is not an even number >= 0");
            if (!(ropeAttnFactor > 0 && ropeAttnFactor < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("rope attention factor " + ropeAttnFactor + " is not a finite number > 0");
            if (longRopeFactors != null && longRopeContext <= 0) throw new IllegalArgumentException("long rope factors without an original context length");
            if (!(scoreScale >= 0 && scoreScale < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("attention scale " + scoreScale + " is not a finite number >= 0");
            if (!(residualScale > 0 && residualScale < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("residual scale " + residualScale + " is not a finite number > 0");
            if (!(logitFactor > 0 && logitFactor < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("logit scale " + logitFactor + " is not a finite number > 0");
            if (noRopeEvery < 0) throw new IllegalArgumentException("no-RoPE layer step " + noRopeEvery + " is negative");
            if (!(alibiMaxBias >= 0 && alibiMaxBias < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("ALiBi's max bias " + alibiMaxBias + " is not a finite number >= 0");
            if (!(clampKqv >= 0 && clampKqv < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("the q/k/v clamp " + clampKqv + " is not a finite number >= 0");
        }

        /** A variant whose head norms, where a layer has them, apply before RoPE: every family's but Hunyuan's. */
        public Variant(float embeddingScale, Activation activation, float queryScale, int slidingWindow,
                       boolean[] slidingLayers, float slidingRopeTheta, float logitSoftcap, float attentionSoftcap,
                       int rotaryDim, float ropeAttnFactor, float[] longRopeFactors, int longRopeContext,
                       float scoreScale, float residualScale, float logitFactor, int noRopeEvery, boolean wholeQkNorms,
                       boolean layerNorm, boolean parallelBlocks, Yarn yarn, Temperature temperature, boolean chunked,
                       float alibiMaxBias, float clampKqv) {
            this(embeddingScale, activation, queryScale, slidingWindow, slidingLayers, slidingRopeTheta, logitSoftcap, attentionSoftcap,
                    rotaryDim, ropeAttnFactor, longRopeFactors, longRopeContext, scoreScale, residualScale, logitFactor, noRopeEvery, wholeQkNorms,
                    layerNorm, parallelBlocks, yarn, temperature, chunked, alibiMaxBias, clampKqv, false);
        }

        /** This variant with each head's query and key norms after RoPE (Hunyuan's). */
        public Variant normingHeadsAfterRope() {
            return new Variant(embeddingScale, activation, queryScale, slidingWindow, slidingLayers, slidingRopeTheta, logitSoftcap, attentionSoftcap,
                    rotaryDim, ropeAttnFactor, longRopeFactors, longRopeContext, scoreScale, residualScale, logitFactor, noRopeEvery, wholeQkNorms,
                    layerNorm, parallelBlocks, yarn, temperature, chunked, alibiMaxBias, clampKqv, true);
        }

        /** This variant with RoPE on the first {@code rotaryDim} elements of each head. */
        public Variant rotating(int rotaryDim) {
            return new Variant(embeddingScale, activation, queryScale, slidingWindow, slidingLayers, slidingRopeTheta, logitSoftcap, attentionSoftcap,
                    rotaryDim, ropeAttnFactor, longRopeFactors, longRopeContext, scoreScale, residualScale, logitFactor, noRopeEvery, wholeQkNorms,
                    layerNorm, parallelBlocks, yarn, temperature, chunked, alibiMaxBias, clampKqv, headNormsAfterRope);
        }

        /** This variant with RoPE's attention factor, YaRN's scaling and an attention temperature (either null for none). */
        public Variant scaled(float ropeAttnFactor, Yarn yarn, Temperature temperature) {
            return new Variant(embeddingScale, activation, queryScale, slidingWindow, slidingLayers, slidingRopeTheta, logitSoftcap, attentionSoftcap,
                    rotaryDim, ropeAttnFactor, longRopeFactors, longRopeContext, scoreScale, residualScale, logitFactor, noRopeEvery, wholeQkNorms,
                    layerNorm, parallelBlocks, yarn, temperature, chunked, alibiMaxBias, clampKqv, headNormsAfterRope);
        }

        /** Llama's blocks with Granite's multipliers (embeddings, attention scores, residuals, logits). */
        public static Variant granite(float embeddingScale, float scoreScale, float residualScale, float logitFactor) {
            return new Variant(embeddingScale, Activation.SILU, 0f, 0, null, 0f, 0f, 0f, 0, 1f, null, 0, scoreScale, residualScale, logitFactor, 0, false,
                    false, false, null, null, false, 0f, 0f);
        }

        /** This variant with no layer's RoPE (Granite 4.0-H's attention). */
        public Variant withoutRope() {
            return new Variant(embeddingScale, activation, queryScale, slidingWindow, slidingLayers, slidingRopeTheta, logitSoftcap, attentionSoftcap,
                    rotaryDim, ropeAttnFactor, longRopeFactors, longRopeContext, scoreScale, residualScale, logitFactor, 1, wholeQkNorms,
                    layerNorm, parallelBlocks, yarn, temperature, chunked, alibiMaxBias, clampKqv, headNormsAfterRope);
        }

        /**
         * Blocks normalized by LayerNorm (their biases where the file has them), the FFN's activation {@code
         * activation}, in parallel or not: StarCoder2's (GELU of up, in sequence), Phi-2's (the same in parallel).
         */
        public static Variant layerNorm(Activation activation, boolean parallelBlocks) {
            return new Variant(1f, activation, 0f, 0, null, 0f, 0f, 0f, 0, 1f, null, 0, 0f, 1f, 1f, 0, false, true, parallelBlocks, null, null, false, 0f, 0f);
        }

        /**
         * JAIS's blocks: LayerNorm with biases, SwiGLU, no RoPE but ALiBi of {@code maxBias} (0: none, as llama.cpp runs
         * a file without the key), the scores scaled by {@code 1 / headDim} (muP's) rather than its square root.
         */
        public static Variant jais(float maxBias, int headDim) {
            return new Variant(1f, Activation.SILU, 0f, 0, null, 0f, 0f, 0f, 0, 1f, null, 0, 1f / headDim, 1f, 1f, 1, false, true, false, null, null, false, maxBias, 0f);
        }

        /** This variant with the attention and the FFN in parallel, both reading the layer's one normalized input (PLaMo's). */
        public Variant inParallel() {
            return new Variant(embeddingScale, activation, queryScale, slidingWindow, slidingLayers, slidingRopeTheta, logitSoftcap, attentionSoftcap,
                    rotaryDim, ropeAttnFactor, longRopeFactors, longRopeContext, scoreScale, residualScale, logitFactor, noRopeEvery, wholeQkNorms,
                    layerNorm, true, yarn, temperature, chunked, alibiMaxBias, clampKqv, headNormsAfterRope);
        }

        /** This variant with ALiBi's {@code maxBias} and a clamp of the q/k/v projections' outputs ({@code clampKqv}); 0 for none. */
        public Variant alibi(float maxBias, float clampKqv) {
            return new Variant(embeddingScale, activation, queryScale, slidingWindow, slidingLayers, slidingRopeTheta, logitSoftcap, attentionSoftcap,
                    rotaryDim, ropeAttnFactor, longRopeFactors, longRopeContext, scoreScale, residualScale, logitFactor, noRopeEvery, wholeQkNorms,
                    layerNorm, parallelBlocks, yarn, temperature, chunked, maxBias, clampKqv, headNormsAfterRope);
        }

        /**
         * ALiBi's slope of head {@code h} of {@code heads}, as ggml's softmax makes it: for the largest power of two
         * n not above the heads, {@code m0^(h+1)} for the first n heads and {@code m1^(2(h-n)+1)} for the others, m0 =
         * 2^(-maxBias/n), m1 = 2^(-maxBias/2/n), in floats.
         */
        public float alibiSlope(int h, int heads) {
            int n = Integer.highestOneBit(heads);
            float m0 = (float) Math.pow(2.0, -alibiMaxBias / n), m1 = (float) Math.pow(2.0, -(alibiMaxBias / 2f) / n);
            return h < n ? (float) Math.pow(m0, h + 1) : (float) Math.pow(m1, 2 * (h - n) + 1);
        }

        /** Command-R's blocks: LayerNorm, the attention and the FFN in parallel, the logits times {@code logitFactor}. */
        public static Variant commandR(float logitFactor) {
            return new Variant(1f, Activation.SILU, 0f, 0, null, 0f, 0f, 0f, 0, 1f, null, 0, 0f, 1f, logitFactor, 0, false, true, true, null, null, false, 0f, 0f);
        }

        /**
         * Layers sliding over a window of {@code window} positions (RoPE base {@code slidingTheta}, 0: rotated as the
         * model's RoPE rotates) but for every fourth, which attends to everything without RoPE: Cohere2's (Command
         * R7B's: {@code commandR}, Command-R's blocks, its logits times {@code logitFactor}) and EXAONE 4.0 32B's.
         */
        public static Variant slidingWithoutRopeElsewhere(float logitFactor, boolean commandR, int window, boolean[] sliding, float slidingTheta) {
            return new Variant(1f, Activation.SILU, 0f, window, sliding, slidingTheta, 0f, 0f, 0, 1f, null, 0, 0f, 1f, logitFactor, 4, false,
                    commandR, commandR, null, null, false, 0f, 0f);
        }

        /**
         * gpt-oss's blocks: Llama's, every other layer from the first sliding over a window of {@code window} positions
         * (rotated as the others), the mixture's gate {@link Activation#SWIGLU_OAI}.
         */
        public static Variant gptOss(int window, boolean[] sliding) {
            return new Variant(1f, Activation.SWIGLU_OAI, 0f, window, sliding, 0f, 0f, 0f, 0, 1f, null, 0, 0f, 1f, 1f, 0, false, false, false, null, null, false, 0f, 0f);
        }

        /** Llama's blocks whose feed-forwards have no gate, {@code max(up, 0)²} (Arcee's) or xIELU (Apertus's). */
        public static Variant ungated(Activation activation) {
            return new Variant(1f, activation, 0f, 0, null, 0f, 0f, 0f, 0, 1f, null, 0, 0f, 1f, 1f, 0, false, false, false, null, null, false, 0f, 0f);
        }

        /** Llama's blocks with every {@code n}-th layer's RoPE left out (SmolLM3's). */
        public static Variant noRopeEvery(int n) {
            return new Variant(1f, Activation.SILU, 0f, 0, null, 0f, 0f, 0f, 0, 1f, null, 0, 0f, 1f, 1f, n, false, false, false, null, null, false, 0f, 0f);
        }

        /**
         * OLMo2's blocks: queries and keys normalized whole, optionally OLMo3's sliding window ({@code window} 0: none)
         * on {@code sliding} layers with RoPE base {@code slidingTheta}.
         */
        public static Variant olmo2(int window, boolean[] sliding, float slidingTheta) {
            return new Variant(1f, Activation.SILU, 0f, window, sliding, slidingTheta, 0f, 0f, 0, 1f, null, 0, 0f, 1f, 1f, 0, true, false, false, null, null, false, 0f, 0f);
        }

        /**
         * Llama 4's blocks: every fourth layer without RoPE, attending to everything with the queries' {@code
         * temperature}; the others attending within chunks of {@code chunk} positions, rotated as the model's RoPE rotates.
         */
        public static Variant llama4(int chunk, boolean[] chunked, Temperature temperature) {
            return new Variant(1f, Activation.SILU, 0f, chunk, chunked, 0f, 0f, 0f, 0, 1f, null, 0, 0f, 1f, 1f, 4, false, false, false, null, temperature, true, 0f, 0f);
        }

        /** Whether layer {@code l} rotates its queries and keys. */
        public boolean ropes(int l) {
            return noRopeEvery == 0 || (l + 1) % noRopeEvery != 0;
        }

        /** Whether layer {@code l}'s attention sees only the window. */
        public boolean slides(int l) {
            return slidingWindow > 0 && slidingLayers[l];
        }

        @Override
        public String toString() {
            if (equals(LLAMA)) return "";
            StringBuilder b = new StringBuilder();
            if (embeddingScale != 1f) b.append(", embeddings x").append(embeddingScale);
            b.append(switch (activation) { case GELU -> ", GeGLU"; case SWIGLU_OAI -> ", gpt-oss's SwiGLU"; case SILU -> ", SwiGLU"; case RELU_SQUARED -> ", ReLU² without a gate"; case XIELU -> ", xIELU without a gate"; case GELU_UP -> ", GELU without a gate"; });
            if (queryScale != 0f) b.append(", queries x").append(queryScale);
            if (slidingWindow > 0) {
                b.append(chunked ? ", attention in chunks of " : ", sliding window ").append(slidingWindow).append(" on layers");
                for (int l = 0; l < slidingLayers.length; l++) if (slidingLayers[l]) b.append(' ').append(l);
                if (slidingRopeTheta != 0f) b.append(" (their rope base ").append(slidingRopeTheta).append(')');
            }
            if (attentionSoftcap != 0f) b.append(", attention softcap ").append(attentionSoftcap);
            if (logitSoftcap != 0f) b.append(", final logit softcap ").append(logitSoftcap);
            if (rotaryDim != 0) b.append(", rope on ").append(rotaryDim).append(" elements of each head");
            if (ropeAttnFactor != 1f) b.append(", rope attention factor ").append(ropeAttnFactor);
            if (longRopeFactors != null) b.append(", long rope factors past ").append(longRopeContext).append(" positions");
            if (scoreScale != 0f) b.append(", scores x").append(scoreScale);
            if (residualScale != 1f) b.append(", residuals x").append(residualScale);
            if (logitFactor != 1f) b.append(", logits x").append(logitFactor);
            if (alibiMaxBias != 0f) b.append(", ALiBi (max bias ").append(alibiMaxBias).append(')');
            if (clampKqv != 0f) b.append(", q/k/v clamped to +-").append(clampKqv);
            if (noRopeEvery == 1) b.append(", no rope");
            else if (noRopeEvery != 0) b.append(", no rope on every ").append(noRopeEvery).append("th layer");
            if (wholeQkNorms) b.append(", queries and keys normalized whole");
            if (headNormsAfterRope) b.append(", query and key norms after rope");
            if (layerNorm) b.append(", LayerNorm");
            if (parallelBlocks) b.append(", attention and FFN in parallel");
            if (yarn != null) b.append(", ").append(yarn);
            if (temperature != null) b.append(", ").append(temperature);
            return b.toString();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Variant v && embeddingScale == v.embeddingScale && activation == v.activation && queryScale == v.queryScale
                    && slidingWindow == v.slidingWindow && Arrays.equals(slidingLayers, v.slidingLayers)
                    && slidingRopeTheta == v.slidingRopeTheta && logitSoftcap == v.logitSoftcap && attentionSoftcap == v.attentionSoftcap
                    && rotaryDim == v.rotaryDim && ropeAttnFactor == v.ropeAttnFactor && Arrays.equals(longRopeFactors, v.longRopeFactors)
                    && longRopeContext == v.longRopeContext && scoreScale == v.scoreScale && residualScale == v.residualScale
                    && logitFactor == v.logitFactor && noRopeEvery == v.noRopeEvery && wholeQkNorms == v.wholeQkNorms
                    && layerNorm == v.layerNorm && parallelBlocks == v.parallelBlocks && java.util.Objects.equals(yarn, v.yarn)
                    && java.util.Objects.equals(temperature, v.temperature) && chunked == v.chunked && alibiMaxBias == v.alibiMaxBias
                    && clampKqv == v.clampKqv && headNormsAfterRope == v.headNormsAfterRope;
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(slidingLayers) * 31 + Float.hashCode(queryScale);
        }
    }

    /**
     * YaRN's rope scaling as llama.cpp runs it (ggml's {@code rope_yarn}): each pair's angle interpolated ({@code
     * angle / factor}) where its wavelength is long against the original context, extrapolated (as it was) where short,
     * ramped between the pairs {@code betaFast} and {@code betaSlow} rotations per original context mark; the cosines
     * and sines scaled by {@link #magnitude}.
     *
     * @param factor          how many times the original context the scaling stretches to ({@code rope.scaling.factor})
     * @param originalContext the context the model was trained on before ({@code rope.scaling.original_context_length})
     * @param logMultiplier   0, or DeepSeek's and Mistral's {@code mscale_all_dim} ({@code rope.scaling.yarn_log_multiplier}),
     *                        which divides the magnitude's growth out again
     * @param mscale          the multiplier of the growth it divides: 1 (Mistral's), or DeepSeek-V2's {@code mscale}, which
     *                        llama.cpp takes as the log multiplier itself, the magnitude then 1
     */
    public record Yarn(float factor, int originalContext, float betaFast, float betaSlow, float logMultiplier, float mscale) {
        /** YaRN whose growth's multiplier is 1. */
        public Yarn(float factor, int originalContext, float betaFast, float betaSlow, float logMultiplier) {
            this(factor, originalContext, betaFast, betaSlow, logMultiplier, 1f);
        }

        public Yarn {
            if (!(factor > 0 && factor < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("rope scaling factor " + factor + " is not a finite number > 0");
            if (originalContext <= 0) throw new IllegalArgumentException("YaRN's original context length " + originalContext + " is not positive");
            if (!(betaFast > 0 && betaFast < Float.POSITIVE_INFINITY && betaSlow > 0 && betaSlow < Float.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("YaRN's beta_fast " + betaFast + " and beta_slow " + betaSlow + " are not both finite numbers > 0");
            }
            if (!(logMultiplier >= 0 && logMultiplier < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("YaRN's log multiplier " + logMultiplier + " is not a finite number >= 0");
            if (!(mscale > 0 && mscale < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("YaRN's mscale " + mscale + " is not a finite number > 0");
        }

        /**
         * The factor of the cosines and sines, {@code 0.1 ln(factor) + 1} (YaRN's sqrt(1/t) on queries and keys both)
         * times {@code ropeAttnFactor}, or with a log multiplier m {@code (0.1 mscale ln(factor) + 1) / (0.1 m ln(factor) +
         * 1)}: llama.cpp's figure, in its float steps (its context's attention factor, which cancels the kernel's
         * growth, and then the kernel's).
         */
        float magnitude(float ropeAttnFactor) {
            float freqScale = 1f / factor, scale = 1f / freqScale;
            float attn = logMultiplier != 0f ? mscale(scale, mscale) / mscale(scale, logMultiplier) : mscale(scale, 1f);
            attn *= 1f / (1f + 0.1f * (float) Math.log(scale));
            attn *= ropeAttnFactor;
            return attn * (1f + 0.1f * (float) Math.log(1f / freqScale));
        }

        private static float mscale(float scale, float m) {
            return scale <= 1f ? 1f : 0.1f * m * (float) Math.log(scale) + 1f;
        }

        @Override
        public String toString() {
            return "YaRN x" + factor + " of " + originalContext + " positions" + (betaFast != 32f || betaSlow != 1f ? " (beta " + betaFast + "/" + betaSlow + ")" : "")
                    + (logMultiplier != 0f ? " (log multiplier " + logMultiplier + (mscale != 1f ? ", mscale " + mscale : "") + ")" : "");
        }
    }

    /**
     * Llama 4's and Ministral 3's attention temperature: the queries at position p multiplied by {@code ln(floor((p +
     * offset) / floor) + 1) * scale + 1}, 1 within the first positions, growing slowly past them; in every layer, or
     * ({@code withoutRopeOnly}, Llama 4's) only in those without RoPE.
     */
    public record Temperature(float scale, int floor, float offset, boolean withoutRopeOnly) {
        public Temperature {
            if (!(scale > 0 && scale < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("attention temperature scale " + scale + " is not a finite number > 0");
            if (floor <= 0) throw new IllegalArgumentException("attention temperature's floor " + floor + " is not positive");
        }

        /** Ministral 3's: every layer's, from position 0. */
        public Temperature(float scale, int floor) {
            this(scale, floor, 0f, false);
        }

        /** The queries' factor at {@code pos}, in llama.cpp's steps (the floor in float, the logarithm in double). */
        float at(int pos) {
            return (float) (Math.log(Math.floor(((float) pos + offset) / floor) + 1.0) * scale + 1.0);
        }

        @Override
        public String toString() {
            return "attention temperature " + scale + " per " + floor + " positions" + (offset != 0f ? " (of the position + " + offset + ")" : "")
                    + (withoutRopeOnly ? " in the layers without RoPE" : "");
        }
    }

    /** The FFN's gate activation. */
    public enum Activation {
        /** {@code x / (1 + e^-x)}: SwiGLU. */
        SILU,
        /** {@code 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))}: GeGLU, as Gemma's (PyTorch's gelu_pytorch_tanh). */
        GELU,
        /** gpt-oss's clamped SwiGLU with the up projection plus one ({@link gptfast4j.tensor.VectorMath#swigluOai}). */
        SWIGLU_OAI,
        /** No gate: {@code max(up, 0)²} (Arcee's; its feed-forwards have no w1). */
        RELU_SQUARED,
        /** No gate: xIELU of the up projection, its parameters each layer's ({@link Layer#xielu}; Apertus's). */
        XIELU,
        /** No gate: GELU (the tanh form, as {@link #GELU}) of the up projection (StarCoder2's, Phi-2's). */
        GELU_UP;

        /** Whether the feed-forwards have no gate (no w1): the activation is of the up projection alone. */
        public boolean ungated() {
            return this == RELU_SQUARED || this == XIELU || this == GELU_UP;
        }
    }

    public enum RopeStyle {
        /** Rotates (x[2i], x[2i+1]): llama.cpp's NORM mode, Meta's original layout. */
        INTERLEAVED,
        /** Rotates (x[i], x[i + headDim/2]): the Hugging Face "rotate_half" layout. */
        HALVES
    }

    /** Refuses hyperparameters no model can have, naming the first one wrong (a file's corrupt or mistyped metadata). */
    public Config {
        positive("embedding length", dim);
        positive("feed-forward length", hiddenDim);
        positive("layer count", nLayers);
        positive("head count", nHeads);
        positive("kv head count", nKvHeads);
        positive("vocabulary size", vocabSize);
        positive("context length", contextLength);
        positive("head dimension", headDim);
        if (nHeads % nKvHeads != 0) throw new IllegalArgumentException("head count " + nHeads + " is not a multiple of kv head count " + nKvHeads);
        if (!(rmsNormEps >= 0 && rmsNormEps < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("RMS norm epsilon " + rmsNormEps + " is not a finite number >= 0");
        if (!(ropeTheta > 0 && ropeTheta < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("RoPE frequency base " + ropeTheta + " is not a finite number > 0");
        if (expertCount < 0) throw new IllegalArgumentException("expert count " + expertCount + " is negative");
        if (expertCount > 0 && (expertsUsed < 1 || expertsUsed > expertCount)) {
            throw new IllegalArgumentException("experts used per token " + expertsUsed + " is not in 1.." + expertCount);
        }
        if (variant == null) throw new IllegalArgumentException("no variant");
        if (variant.slidingWindow > 0 && variant.slidingLayers.length != nLayers) {
            throw new IllegalArgumentException("sliding window pattern of " + variant.slidingLayers.length + " layers for " + nLayers + " layers");
        }
        if (variant.rotaryDim > headDim) throw new IllegalArgumentException("rope dimension " + variant.rotaryDim + " is more than the heads' " + headDim);
        int pairs = (variant.rotaryDim == 0 ? headDim : variant.rotaryDim) / 2;
        for (float[] f : new float[][]{ropeFreqFactors, variant.longRopeFactors}) {
            if (f != null && f.length != pairs) throw new IllegalArgumentException("rope frequency factors for " + f.length + " pairs, the heads rotate " + pairs);
        }
    }

    /** Llama's blocks ({@link Variant#LLAMA}). */
    public Config(String architecture, int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int vocabSize, int contextLength,
                  float rmsNormEps, float ropeTheta, float[] ropeFreqFactors, RopeStyle ropeStyle, int expertCount, int expertsUsed, int headDim) {
        this(architecture, dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, contextLength, rmsNormEps, ropeTheta, ropeFreqFactors,
                ropeStyle, expertCount, expertsUsed, headDim, Variant.LLAMA);
    }

    /** Hyperparameters whose heads are {@code dim / nHeads} wide, as most models' are. */
    public Config(String architecture, int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int vocabSize, int contextLength,
                  float rmsNormEps, float ropeTheta, float[] ropeFreqFactors, RopeStyle ropeStyle, int expertCount, int expertsUsed) {
        this(architecture, dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, contextLength, rmsNormEps, ropeTheta, ropeFreqFactors,
                ropeStyle, expertCount, expertsUsed, derivedHeadDim(dim, nHeads));
    }

    /** {@code dim / nHeads}, refusing a width the heads do not divide (0 where the head count is not positive, which the record refuses). */
    public static int derivedHeadDim(int dim, int nHeads) {
        if (nHeads <= 0) return 0;
        if (dim % nHeads != 0) throw new IllegalArgumentException("embedding length " + dim + " is not a multiple of head count " + nHeads);
        return dim / nHeads;
    }

    private static void positive(String what, int value) {
        if (value <= 0) throw new IllegalArgumentException(what + " " + value + " is not positive");
    }

    /** Value equality, the rope factors included (a record compares arrays by reference). */
    @Override
    public boolean equals(Object o) {
        return o instanceof Config c && Arrays.equals(ropeFreqFactors, c.ropeFreqFactors)
                && toString(this).equals(toString(c));
    }

    @Override
    public int hashCode() {
        return toString(this).hashCode();
    }

    @Override
    public String toString() {
        return toString(this);
    }

    private static String toString(Config c) {
        return "Config[" + c.architecture + ", dim " + c.dim + ", hidden " + c.hiddenDim + ", layers " + c.nLayers + ", heads " + c.nHeads
                + "/" + c.nKvHeads + ", vocab " + c.vocabSize + ", context " + c.contextLength + ", eps " + c.rmsNormEps + ", rope "
                + c.ropeTheta + " " + c.ropeStyle + (c.ropeFreqFactors == null ? "" : " " + Arrays.toString(c.ropeFreqFactors))
                + (c.expertCount > 0 ? ", experts " + c.expertsUsed + "/" + c.expertCount : "")
                + (c.headDim * c.nHeads != c.dim ? ", head dim " + c.headDim : "") + c.variant + "]";
    }

    /**
     * These hyperparameters under llama.cpp's GGUF keys ({@code general.architecture} "llama", whose tensor names all
     * our files use), for files written from a model that did not come from GGUF.
     */
    public Map<String, Value> ggufMetadata(String name) {
        Map<String, Value> md = new LinkedHashMap<>();
        String arch = "llama";
        md.put("general.architecture", Value.string(arch));
        md.put("general.name", Value.string(name));
        md.put(arch + ".vocab_size", Value.uint32(vocabSize));
        md.put(arch + ".context_length", Value.uint32(contextLength));
        md.put(arch + ".embedding_length", Value.uint32(dim));
        md.put(arch + ".block_count", Value.uint32(nLayers));
        md.put(arch + ".feed_forward_length", Value.uint32(hiddenDim));
        md.put(arch + ".attention.head_count", Value.uint32(nHeads));
        md.put(arch + ".attention.head_count_kv", Value.uint32(nKvHeads));
        if (headDim * nHeads != dim) { // llama.cpp's default is dim / heads
            md.put(arch + ".attention.key_length", Value.uint32(headDim));
            md.put(arch + ".attention.value_length", Value.uint32(headDim));
        }
        md.put(arch + ".attention.layer_norm_rms_epsilon", Value.float32(rmsNormEps));
        md.put(arch + ".rope.dimension_count", Value.uint32(headDim()));
        md.put(arch + ".rope.freq_base", Value.float32(ropeTheta));
        if (isMoE()) {
            md.put(arch + ".expert_count", Value.uint32(expertCount));
            md.put(arch + ".expert_used_count", Value.uint32(expertsUsed));
        }
        return md;
    }

    /** The queries' width, all heads': {@code dim} but where the heads say their own width ({@link #headDim}). */
    public int qDim() { return nHeads * headDim; }

    public int kvDim() { return nKvHeads * headDim; }

    /** The elements of each head that RoPE rotates: all of them, or the variant's first {@link Variant#rotaryDim}. */
    public int rotaryDim() { return variant.rotaryDim == 0 ? headDim : variant.rotaryDim; }

    public boolean isMoE() { return expertCount > 0; }

    /** Whether the model's attention is DeepSeek-V2's multi-head latent attention ({@link #latentAttention(String)}). */
    public boolean latentAttention() { return latentAttention(architecture); }

    /**
     * Whether {@code architecture}'s blocks are DeepSeek-V2's, with multi-head latent attention: {@code deepseek2}
     * (DeepSeek-V2, V3, Mistral Large 3, GLM-4.7-Flash) and {@code mistral4} (Mistral 4, the same blocks under its own
     * name, as llama.cpp runs it).
     */
    public static boolean latentAttention(String architecture) {
        return architecture.equals("deepseek2") || architecture.equals("mistral4") || architecture.equals("minicpm3");
    }

    /**
     * The positions the model is meant to see: its context length, or where YaRN stretches an original context further
     * (a Qwen2.5 converted with its rope scaling keeps the 32768 of its config.json), that.
     */
    public int usableContextLength() {
        return variant.yarn == null ? contextLength : (int) Math.min(Integer.MAX_VALUE, Math.max(contextLength, (long) (variant.yarn.factor() * variant.yarn.originalContext())));
    }
}
