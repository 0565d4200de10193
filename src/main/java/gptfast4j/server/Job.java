package gptfast4j.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import gptfast4j.generate.Dry;
import gptfast4j.generate.Generator;
import gptfast4j.generate.GrammarConstraint;
import gptfast4j.generate.Sampler;
import gptfast4j.model.ChatFormat;
import gptfast4j.model.Checkpoint;
import gptfast4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * One request's generation, as an engine runs it on its thread: {@link #prompt} and {@link #sampler} to start it,
 * {@link #accept} for each token chosen, {@link #finish} with the generation's statistics, or {@link #fail}. What
 * goes to the client goes through {@link #outbox} to the request's own thread, which writes it, so that the engine's
 * thread (which runs other requests' steps too) never waits on a socket: a stream's start, its events, and at the
 * end a {@link Completion} or the failure.
 */
final class Job implements Engine.Work {
    /** A finished generation: the response to send (null where it was streamed), its usage and timings, and the log line's summary. */
    record Completion(ObjectNode response, ObjectNode usage, ObjectNode timings, String summary) {
    }

    /** In the outbox: the stream begins (its status and headers). */
    static final Object STREAM = new Object();
    /** In the outbox: the engine dropped this choice unstarted, its request having ended while it waited ({@link #drop}). */
    static final Object DROPPED = new Object();

    /** Shared by a request's choices. */
    final LinkedBlockingQueue<Object> outbox;
    /** Set by the request's thread when the client went away: the generation ends at its next token. */
    volatile boolean gone;
    private final Checkpoint ckpt;
    private final CompletionRequest request;
    private final int[] tokens;
    private final Responses responses;
    private ReplyText reply;
    /** A chat with tools: the reply as a call or an answer (null without tools). */
    private Tools.Answer answer;
    /** A reasoning model's chat: the reply's thinking apart from its answer (null where it is not split). */
    private final Reasoning thinking;
    /** The thinking's text, where it is not streamed. */
    private final StringBuilder thought = new StringBuilder();
    private boolean streaming;
    private final StringBuilder text = new StringBuilder();
    /** Whether the reply's text has a line break (llama.cpp's {@code has_new_line}). */
    private boolean newLine;

    /** A drawn token's log-probability and its {@code top.length} most likely alternatives', most likely first. */
    record Logprob(int token, float logprob, int[] top, float[] topLogprobs) {
    }

    /** The last token drawn (an EOS never becomes part of the reply), and those of the reply not yet handed on. */
    private Logprob drawn;
    private final List<Logprob> logprobs = new ArrayList<>();
    /** Where in the reply's text the tokens not yet handed on start (a completion's {@code text_offset}). */
    private int logprobsOffset;

    /**
     * @param tokens        the request's prompt as tokens ({@link #tokens})
     * @param splitThinking whether a chat's reply that opens with a thinking block (a harmony reply: its analysis) gives
     *                      it apart ({@link Reasoning}), as {@code serve --reasoning-format} has it; not with tools in the
     *                      generic format, whose grammar opens the reply with JSON (with Hermes-style tools, the thinking
     *                      first, the calls in what follows)
     * @param opened        whether the chat format's prompt opened the thinking ({@link ChatFormat#opensThinking})
     */
    Job(Checkpoint ckpt, CompletionRequest request, int[] tokens, Responses responses, LinkedBlockingQueue<Object> outbox, boolean splitThinking, boolean opened) {
        this.thinking = !splitThinking || !responses.chat() || request.tools() != null && request.tools().syntax() == Tools.Syntax.GENERIC ? null
                : ckpt.tokenizer().speaksHarmony() ? Reasoning.harmony() : new Reasoning(opened);
        this.ckpt = ckpt;
        this.outbox = outbox;
        this.request = request;
        this.tokens = tokens;
        this.responses = responses;
    }

    /** The engine drops this job unstarted ({@link #gone}): the request's thread, which may still wait for its choices, is told. */
    void drop() {
        outbox.add(DROPPED);
    }

    boolean stream() {
        return request.stream();
    }

    /** Whether the request is llama.cpp's {@code /completion}, answered in its shapes. */
    boolean llama() {
        return responses.llama();
    }

    /**
     * A request's prompt as tokens, on the request's thread (a long text's tokenization holds no engine): a
     * completion's token ids, or its text (special tokens' text as those tokens, as llama.cpp's server takes it), or a
     * chat's turns in {@code chatFormat}.
     */
    static int[] tokens(Checkpoint ckpt, CompletionRequest request, boolean chat, ChatFormat chatFormat) {
        if (request.promptIds() != null) {
            Server.checkVocabulary(ckpt, request.promptIds(), "");
            return request.promptIds();
        }
        if (!chat) return ckpt.promptTokens(request.prompt(), true);
        if (chatFormat == ChatFormat.PLAIN) {
            throw Server.HttpError.invalid("this model has no chat template: start the server with --chat-format (llama2, mistral, zephyr, llama3, chatml, ...), or use /v1/completions");
        }
        try {
            return chatFormat.conversation(ckpt.tokenizer(), request.system(), request.messages(), ckpt.bos(), ckpt.addBos(), ckpt.eos()[0]);
        } catch (IllegalArgumentException e) {
            throw Server.HttpError.invalid(e.getMessage());
        }
    }

    /** How many tokens the prompt has. */
    int promptLength() {
        return tokens.length;
    }

    /** The prompt's tokens, refused (400) where they do not fit {@code context} positions. */
    int[] prompt(int context) {
        if (tokens.length > context) throw Server.HttpError.invalid("the prompt has " + tokens.length + " tokens but the context length is " + context);
        return tokens;
    }

    /**
     * DRY's breakers found in a vocabulary, per tokenizer the last few lists asked for (a pass over the vocabulary's
     * texts each, some tens of milliseconds for 128K tokens; most requests send llama.cpp's four defaults).
     */
    private static final java.util.Map<Tokenizer, java.util.Map<List<String>, Dry.Breakers>> BREAKERS = new java.util.WeakHashMap<>();

    private Dry.Breakers breakers(List<String> texts) {
        Tokenizer tokenizer = ckpt.tokenizer();
        synchronized (BREAKERS) {
            return BREAKERS.computeIfAbsent(tokenizer, t -> new java.util.LinkedHashMap<>(8, 0.75f, true) {
                @Override
                protected boolean removeEldestEntry(java.util.Map.Entry<List<String>, Dry.Breakers> eldest) {
                    return size() > 8;
                }
            }).computeIfAbsent(List.copyOf(texts), l -> Dry.breakers(l, Math.min(ckpt.model().config.vocabSize(), tokenizer.vocabSize()), tokenizer::bytes, tokenizer::encode));
        }
    }

    /** The request's sampler (with its grammar, if any); then the reply begins (a stream's headers and first chunk). */
    Sampler sampler() {
        Tokenizer tokenizer = ckpt.tokenizer();
        int vocab = ckpt.model().config.vocabSize();
        Sampler sampler;
        try {
            Sampler.Advanced advanced = request.advanced();
            if (advanced.dry() != null) {
                Dry dry = advanced.dry();
                advanced = advanced.withDry(new Dry(dry.multiplier(), dry.base(), dry.allowedLength(), dry.window(), breakers(request.dryBreakers())));
            }
            sampler = new Sampler(vocab, request.temperature(), request.topK(), request.topP(), request.minP(), request.penalties(),
                    request.ignoreEos() ? withoutEos(request.bias()) : request.bias(), advanced,
                    request.seed() != null ? request.seed() + responses.index() : System.nanoTime());
        } catch (IllegalArgumentException e) {
            throw Server.HttpError.invalid(e.getMessage().replace("--logit-bias", "logit_bias"));
        }
        if (request.grammar() != null) sampler.constrain(new GrammarConstraint(request.grammar(), tokenizer::bytes, vocab, ckpt.eos()));
        if (request.logprobs() >= 0) sampler.observe(this::drawn);
        List<String> kept = new ArrayList<>(request.tools() != null ? request.tools().syntax().markers() : List.of());
        if (responses.chat() && tokenizer.speaksHarmony()) kept.addAll(Tokenizer.HARMONY_MARKERS); // a harmony reply's frame, to be parted or shown
        reply = new ReplyText(tokenizer, request.stops(), responses.chat() && tokenizer.kind() == Tokenizer.Kind.SENTENCEPIECE, kept);
        if (request.tools() != null) answer = new Tools.Answer(request.tools().syntax(), request.tools().functions());
        if (request.stream()) {
            streaming = true;
            if (responses.index() == 0) outbox.add(STREAM);
            if (responses.chat()) outbox.add(responses.role());
        }
        return sampler;
    }

    /** {@code bias} and the model's end-of-text tokens at minus infinity, as llama.cpp's {@code ignore_eos} biases them. */
    private Sampler.LogitBias withoutEos(Sampler.LogitBias bias) {
        int[] eos = ckpt.eos(), tokens = java.util.Arrays.copyOf(bias.tokens(), bias.tokens().length + eos.length);
        float[] biases = java.util.Arrays.copyOf(bias.biases(), tokens.length);
        for (int i = 0; i < eos.length; i++) {
            tokens[bias.tokens().length + i] = eos[i];
            biases[bias.biases().length + i] = Float.NEGATIVE_INFINITY;
        }
        return new Sampler.LogitBias(tokens, biases);
    }

    int maxTokens() {
        return request.maxTokens();
    }

    /** Whether the request asked for its tokens' log-probabilities. */
    boolean logprobs() {
        return request.logprobs() >= 0;
    }

    /**
     * The LoRA adapters' weights this request runs with: its own {@code lora}, or the server's ({@code POST
     * /lora-adapters}, else {@code --lora}'s) as they are now; null where the model has no adapters.
     */
    float[] loraWeights() {
        gptfast4j.model.Lora lora = ckpt.model().lora();
        if (lora == null) {
            if (request.lora() != null && !request.lora().isEmpty()) throw Server.HttpError.invalid("'lora': the server has no LoRA adapters (start it with --lora)");
            return null;
        }
        if (request.lora() == null) return lora.weights();
        try {
            return CompletionRequest.loraScales(request.lora(), lora.files().size(), "'lora'");
        } catch (CompletionRequest.Invalid e) {
            throw Server.HttpError.invalid(e.getMessage());
        }
    }

    boolean mirostat() {
        return request.advanced().mirostat() != 0;
    }

    /** Token {@code token} chosen: its text to the reply; false once the reply is over (a stop string, or its client gone). */
    boolean accept(int token) {
        if (gone) return false;
        if (drawn != null && drawn.token() == token) logprobs.add(drawn);
        drawn = null;
        boolean stop = reply.add(token);
        String piece = reply.take(), reasoning = "";
        newLine |= piece.indexOf('\n') >= 0;
        if (thinking != null) {
            Reasoning.Piece parts = thinking.add(piece);
            reasoning = parts.reasoning();
            piece = parts.content();
        }
        if (answer != null) piece = answer.add(piece); // an answer's characters streamed as they come, calls at the end
        give(reasoning, piece);
        return !stop;
    }

    /** A piece of the reply's thinking and of its answer: to the stream, or to the response's texts. */
    private void give(String reasoning, String content) {
        if (!streaming) {
            thought.append(reasoning);
            text.append(content);
            return;
        }
        if (!reasoning.isEmpty()) outbox.add(responses.reasoning(reasoning, takeLogprobs()));
        if (!content.isEmpty()) outbox.add(responses.text(content, takeLogprobs(), null));
    }

    /**
     * The log-probabilities of a token drawn from {@code logits} (the softmax of the logits as the sampler adjusted
     * them: bias, penalties and grammar, before the temperature), with the request's count of most likely alternatives.
     */
    private void drawn(float[] logits, int offset, int token) {
        int vocab = ckpt.model().config.vocabSize();
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) max = Math.max(max, logits[offset + i]);
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += Math.exp(logits[offset + i] - max);
        float logZ = (float) (max + Math.log(sum));
        int k = Math.min(request.logprobs(), vocab);
        int[] top = new int[k];
        float[] topLogprobs = new float[k];
        int kept = 0;
        for (int i = 0; i < vocab; i++) {
            float l = logits[offset + i];
            if (kept == k && (k == 0 || l <= logits[offset + top[k - 1]])) continue;
            int at = Math.min(kept, k - 1);
            while (at > 0 && logits[offset + top[at - 1]] < l) {
                top[at] = top[at - 1];
                at--;
            }
            top[at] = i;
            if (kept < k) kept++;
        }
        for (int i = 0; i < k; i++) topLogprobs[i] = logits[offset + top[i]] - logZ;
        drawn = new Logprob(token, logits[offset + token] - logZ, top, topLogprobs);
    }

    /** The reply's log-probabilities not yet handed on, in the response's shape (null where none were asked for). */
    private com.fasterxml.jackson.databind.JsonNode takeLogprobs() {
        if (request.logprobs() < 0) return null;
        com.fasterxml.jackson.databind.JsonNode node = responses.logprobs(logprobs, ckpt.tokenizer(), logprobsOffset);
        for (Logprob l : logprobs) logprobsOffset += text(ckpt.tokenizer(), l.token()).length();
        logprobs.clear();
        return node;
    }

    /** A token's text, as the log-probabilities name it (a character split over tokens: U+FFFD). */
    static String text(Tokenizer tokenizer, int token) {
        return new String(tokenizer.bytes(token), java.nio.charset.StandardCharsets.UTF_8);
    }

    /** The generation ended: {@code r}, after a prompt of {@code promptTokens} tokens of which {@code reused} were in the cache. */
    void finish(Generator.Result r, int promptTokens, int reused) {
        String finish = reply.stopped() || r.stoppedAtEos() ? "stop" : "length";
        String rest = reply.finish();
        if (thinking != null) {
            Reasoning.Piece last = thinking.add(rest), held = thinking.finish();
            give(last.reasoning() + held.reasoning(), "");
            rest = last.content() + held.content();
        }
        List<Tools.Call> calls = List.of();
        if (answer != null) {
            answer.add(rest);
            Tools.Reply whole = answer.reply();
            calls = thinking != null && !thinking.calls().isEmpty() ? thinking.calls() : whole.calls(); // a harmony reply's its own
            if (!calls.isEmpty()) finish = "tool_calls";
            // the content not given out yet (all of it without a stream)
            rest = whole.content() == null ? "" : whole.content().substring(streaming ? answer.given() : 0);
            text.setLength(0);
        }
        ObjectNode usage = Server.JSON.createObjectNode().put("prompt_tokens", promptTokens).put("completion_tokens", r.tokens().length)
                .put("total_tokens", promptTokens + r.tokens().length);
        ObjectNode timings = Server.JSON.createObjectNode().put("cache_n", reused).put("prompt_n", promptTokens - reused)
                .put("prompt_ms", r.prefillNanos() / 1e6).put("prompt_per_second", r.prefillTokensPerSecond())
                .put("predicted_n", r.tokens().length).put("predicted_ms", r.decodeNanos() / 1e6).put("predicted_per_second", r.decodeTokensPerSecond());
        String summary = String.format("prompt %d tokens (%d cached), %d generated at %.2f tokens/s, %s%s", promptTokens, reused, r.tokens().length,
                r.decodeTokensPerSecond(), finish, gone ? "; the client went away" : "");
        if (responses.llama()) {
            newLine |= rest.indexOf('\n') >= 0;
            if (streaming && (!rest.isEmpty() || !logprobs.isEmpty())) outbox.add(responses.text(rest, takeLogprobs(), null));
            String stopType = r.stoppedAtEos() ? "eos" : reply.stopped() ? "word" : "limit";
            ObjectNode end = responses.llamaEnd(streaming ? "" : text.append(rest).toString(), request.prompt() != null ? request.prompt() : "",
                    r.tokens().length, promptTokens, reused, stopType, reply.stopWord(), newLine, timings, streaming ? null : takeLogprobs());
            if (streaming) outbox.add(end);
            outbox.add(new Completion(streaming ? null : end, usage, timings, summary));
            return;
        }
        if (streaming) {
            if (!rest.isEmpty()) outbox.add(responses.text(rest, takeLogprobs(), null));
            if (!calls.isEmpty()) outbox.add(responses.calls(calls));
            ObjectNode last = responses.text(null, takeLogprobs(), finish);
            last.set("timings", timings);
            outbox.add(last);
            outbox.add(new Completion(null, usage, timings, summary));
            return;
        }
        text.append(rest);
        String content = calls.isEmpty() || !text.isEmpty() ? text.toString() : null; // a reply of calls alone has no content
        ObjectNode response = responses.response(content, thinking != null && !thought.isEmpty() ? thought.toString() : null, calls, takeLogprobs(), finish);
        response.set("usage", usage);
        response.set("timings", timings);
        outbox.add(new Completion(response, usage, timings, summary));
    }

    /**
     * The generation failed: an error response where none began (a {@link Server.HttpError} as it is, anything else a
     * server error), else an error event in the stream.
     */
    void fail(Throwable e) {
        Server.HttpError error = e instanceof Server.HttpError h ? h : new Server.HttpError(500, "server_error", Server.failure(e));
        outbox.add(error);
    }
}
