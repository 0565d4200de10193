package gptfast4j.server;

import gptfast4j.generate.Generation;
import gptfast4j.generate.Generator;
import gptfast4j.generate.Sampler;
import gptfast4j.generate.SpeculativeGenerator;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.model.Llama;
import gptfast4j.tensor.Tensor;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * What runs the server's generations, on a thread of its own that owns the model's states: one request at a time
 * ({@link #sequential}, plain or speculative decoding), or several at once in one pass per step ({@link #batched},
 * continuous batching). Either way a prompt that starts with tokens a cache holds from an earlier request runs only the
 * tokens after them, as llama.cpp's server reuses its slots' caches.
 */
public abstract sealed class Engine {
    /** The most requests a batched engine generates at once: each holds a state, its KV cache of the whole context. */
    public static final int MAX_PARALLEL = 32;

    /** Requests not started yet, and actions on slots' caches, in arrival order. */
    final LinkedBlockingQueue<Work> waiting = new LinkedBlockingQueue<>();
    volatile boolean closed;
    /** The positions a request's prompt and reply share. */
    final int contextLength;
    private final Thread thread = new Thread(this::loop, "generation");

    Engine(int contextLength) {
        this.contextLength = contextLength;
        thread.setDaemon(true);
    }

    /** Requests waiting to start. */
    int waiting() {
        return waiting.size();
    }

    /** Requests under way (read from another thread: a moment's count). */
    abstract int running();

    /** Takes {@code job}; its callbacks run on the engine's thread, in arrival order. */
    void submit(Job job) {
        waiting.add(job);
    }

    /** What waits for the engine's thread: a request, or an action on a slot's cache. */
    sealed interface Work permits Job, SlotTask {
    }

    /**
     * An action on one slot's KV cache between requests ({@code POST /slots/ID?action=...}): given the slot's state
     * and the tokens its cache holds from position 0, it returns the tokens the cache holds after it.
     */
    interface SlotAction {
        int[] run(Llama.State state, int[] cached) throws Exception;
    }

    /**
     * A {@link SlotAction} waiting for the engine's thread, and its outcome: the tokens held after it, or why it
     * failed. An action that {@code overwrites} the cache (a restore) and fails may have written part of it: the
     * slot then holds nothing, so that no later prompt takes stale keys and values for its tokens.
     */
    static final class SlotTask implements Work {
        final int slot;
        final boolean overwrites;
        final SlotAction action;
        final java.util.concurrent.CompletableFuture<int[]> done = new java.util.concurrent.CompletableFuture<>();

        SlotTask(int slot, boolean overwrites, SlotAction action) {
            this.slot = slot;
            this.overwrites = overwrites;
            this.action = action;
        }

        /** Runs the action on a slot that is not generating; the tokens its cache holds after it. */
        int[] run(Llama.State state, int[] cached) {
            try {
                int[] held = action.run(state, cached);
                done.complete(held);
                return held;
            } catch (Throwable e) {
                done.completeExceptionally(e);
                return overwrites ? new int[0] : cached;
            }
        }
    }

    /** The slots, each a state of its own: 1 one request at a time, {@code --parallel} with continuous batching. */
    abstract int slots();

    /** A slot as {@code GET /slots} shows it: whether it generates, the tokens its cache holds, whether it speculates. */
    record SlotState(boolean processing, int cached, boolean speculative) {
    }

    /** Each slot's state (read from another thread: a moment's view). */
    abstract List<SlotState> slotStates();

    /**
     * Runs {@code action} on slot {@code slot}'s cache on the engine's thread, after the requests that came before it
     * ({@code overwrites}: as {@link SlotTask} says); where that slot is then generating (continuous batching), once its
     * request has ended, as llama.cpp defers such an action.
     */
    java.util.concurrent.CompletableFuture<int[]> onSlot(int slot, boolean overwrites, SlotAction action) {
        if (slot < 0 || slot >= slots()) throw Server.HttpError.invalid("no slot " + slot + "; this server has slots 0.." + (slots() - 1));
        SlotTask task = new SlotTask(slot, overwrites, action);
        waiting.add(task);
        if (closed) task.done.completeExceptionally(new Server.HttpError(503, "server_error", "the server is stopping"));
        return task.done;
    }

    /** A {@link SlotTask}'s slot where any slot not generating will do. */
    static final int ANY_SLOT = -1;

    /**
     * Runs {@code action} on the engine's thread, after the requests that came before it, on a slot that is not
     * generating (waiting for one), whose cache then holds what the action returns (an embedding's tokens).
     */
    java.util.concurrent.CompletableFuture<int[]> onFreeSlot(SlotAction action) {
        SlotTask task = new SlotTask(ANY_SLOT, true, action);
        waiting.add(task);
        if (closed) task.done.completeExceptionally(new Server.HttpError(503, "server_error", "the server is stopping"));
        return task.done;
    }

    /** Ends the engine's thread (a generation under way stops at its next token). */
    public void close() {
        closed = true;
        thread.interrupt();
    }

    /** Starts the engine's thread: the last thing a subclass's constructor does. */
    void start() {
        thread.start();
    }

    private void loop() {
        try {
            while (!closed) serve();
        } catch (InterruptedException e) {
            // closed while waiting for a request
        } finally {
            stopped();
            for (Work w : waiting) if (w instanceof SlotTask t) t.done.completeExceptionally(new Server.HttpError(503, "server_error", "the server is stopping"));
        }
    }

    /** Takes waiting requests and runs them some way on: called over and over on the engine's thread. */
    abstract void serve() throws InterruptedException;

    /** The thread's end: requests under way told so. */
    void stopped() {
    }

    /** One generation at a time through {@code generator} (plain or speculative) over {@code state}, which only it may use. */
    public static Engine sequential(Llama.State state, Generation generator) {
        return new Sequential(state, generator);
    }

    /**
     * Up to {@code parallel} generations at once (at most {@link #MAX_PARALLEL}), each in a state of its own of
     * {@code contextLength} positions: each step runs one token of every generation under way, a pass over the weights
     * for each {@link Llama#EXACT_BATCH} of them ({@link Llama#decodeEach}), so that up to 8 requests decode in about
     * the time of one where the weights' reads bound a step. A new request's prompt runs between steps, a piece of
     * {@link Batched#PREFILL_CHUNK} tokens at a time.
     */
    public static Engine batched(Checkpoint ckpt, int parallel, int contextLength, KvCache.Type kvType) {
        return new Batched(ckpt, parallel, contextLength, kvType);
    }

    /**
     * The cache's tokens a prompt starts with that need not run again: at least its last token runs, for its logits,
     * and a model's recurrent layers go on only from the positions they keep ({@link Llama.State#resumableAt}).
     */
    static int reusable(Llama.State state, int[] cached, int[] prompt) {
        int shared = Arrays.mismatch(cached, prompt);
        return state.resumableAt(Math.min(shared < 0 ? prompt.length : shared, prompt.length - 1));
    }

    /**
     * Sets {@code state} to run with LoRA weights {@code weights} ({@link Llama.State#loraWeights}; null: no adapters),
     * and says whether its cache, made with {@code cachedWith}, still holds what they would make.
     */
    static boolean runWith(Llama.State state, float[] weights, float[] cachedWith) {
        state.loraWeights = weights;
        return Arrays.equals(weights, cachedWith);
    }

    /** The server's LoRA weights now (null: no adapters), for a slot action, which runs with no request's own. */
    static float[] serverWeights(Llama model) {
        return model.lora() == null ? null : model.lora().weights();
    }

    /** {@code prompt} and the first {@code n} of {@code generated}: what a cache holds after a generation. */
    static int[] concat(int[] prompt, int[] generated, int n) {
        int[] all = Arrays.copyOf(prompt, prompt.length + n);
        System.arraycopy(generated, 0, all, prompt.length, n);
        return all;
    }

    static final class Sequential extends Engine {
        private final Llama.State state;
        private final Generation generator;
        /** The tokens whose keys and values the state's cache holds from position 0. */
        private volatile int[] cached = new int[0];
        /** The LoRA weights the cache was made with (null: no adapters). */
        private float[] cachedWith;
        private volatile int running;

        @Override
        int running() {
            return running;
        }

        Sequential(Llama.State state, Generation generator) {
            super(state.contextLength);
            this.state = state;
            this.generator = generator;
            start();
        }

        @Override
        int slots() {
            return 1;
        }

        @Override
        List<SlotState> slotStates() {
            return List.of(new SlotState(running == 1, cached.length, generator instanceof SpeculativeGenerator));
        }

        @Override
        void serve() throws InterruptedException {
            Work work = waiting.take();
            if (work instanceof SlotTask task) {
                float[] weights = serverWeights(state.model());
                if (!runWith(state, weights, cachedWith)) generator.restored(cached = new int[0]); // nothing of it holds (the generator's remembered logits neither)
                cachedWith = weights;
                int[] held = task.run(state, cached);
                if (held != cached) generator.restored(held); // the generator's sequence is what the cache now holds
                cached = held;
                return;
            }
            Job job = (Job) work;
            if (job.gone) { // its request ended while it waited
                job.drop();
                return;
            }
            running = 1;
            try {
                // a verification chooses tokens from distributions of its own, which a sampler's observer does not see
                if (job.logprobs() && generator instanceof SpeculativeGenerator) {
                    throw Server.HttpError.invalid("log-probabilities are not given with speculative decoding (the server's --draft-checkpoint or --lookup)");
                }
                if (job.mirostat() && generator instanceof SpeculativeGenerator) {
                    throw Server.HttpError.invalid("'mirostat' cannot be used with speculative decoding (the server's --draft-checkpoint or --lookup): it adjusts itself by each token it draws");
                }
                int[] prompt = job.prompt(contextLength);
                float[] weights = job.loraWeights();
                Sampler sampler = job.sampler();
                if (!runWith(state, weights, cachedWith)) generator.restored(cached = new int[0]);
                cachedWith = weights;
                int reused = reusable(state, cached, prompt);
                cached = Arrays.copyOf(prompt, reused); // what the cache still holds if the generation fails
                Generator.Result r = generator.generate(Arrays.copyOfRange(prompt, reused, prompt.length), reused, job.maxTokens(), sampler,
                        t -> !closed && job.accept(t));
                cached = concat(prompt, r.tokens(), r.cachedTokens());
                running = 0; // before the request is told, which may then ask /metrics
                job.finish(r, prompt.length, reused);
            } catch (Throwable e) {
                running = 0;
                job.fail(e);
            }
        }
    }

    /** Continuous batching: slots of their own state each, one pass per step for all the slots' tokens. */
    static final class Batched extends Engine {
        /** One generation's place: its state (KV cache), and while a request runs in it, where that request is. */
        private static final class Slot {
            final Llama.State state;
            /** The tokens the cache holds from position 0 (at a request's start: the previous request's). */
            volatile int[] cached = new int[0];
            /** The LoRA weights the cache was made with (null: no adapters). */
            float[] cachedWith;
            /** The sequence by position, for the penalties (Sampler#sample). */
            final int[] sequence;
            volatile Job job;
            Sampler sampler;
            int[] prompt, generated;
            int reused, count, decoded, maxTokens;
            /** The prompt's tokens in the cache; once it is all there, the slot decodes. */
            int prefilled;
            boolean decoding;
            /** The chosen token not yet run, and its position. */
            int token, pos;
            long prefillNanos, decodeNanos;

            boolean prefilling() {
                return job != null && !decoding;
            }

            Slot(Llama.State state) {
                this.state = state;
                this.sequence = new int[state.contextLength + 1];
            }
        }

        private final Checkpoint ckpt;
        private final Llama model;
        private final Llama.State batch;
        private final Slot[] slots;
        private final int vocab;
        // a step's batch, sized once
        private final Llama.State[] states;
        private final int[] tokens, positions;
        private final Slot[] stepping;
        private volatile int running;

        @Override
        int running() {
            return running;
        }

        /** Steps run and the tokens they ran, for tests: how many requests shared a pass. */
        volatile long steps, stepTokens;

        Batched(Checkpoint ckpt, int parallel, int contextLength, KvCache.Type kvType) {
            super(contextLength);
            if (parallel < 1 || parallel > MAX_PARALLEL) throw new IllegalArgumentException("--parallel must be in 1.." + MAX_PARALLEL + ", got " + parallel);
            this.ckpt = ckpt;
            this.model = ckpt.model();
            this.vocab = model.config.vocabSize();
            int pass = Math.min(parallel, Llama.EXACT_BATCH);
            this.batch = model.newState(contextLength, pass, pass, kvType);
            this.slots = new Slot[parallel];
            for (int i = 0; i < parallel; i++) slots[i] = new Slot(model.newState(contextLength, PREFILL_CHUNK + Tensor.BATCH_INVARIANT_TOKENS, 1, kvType));
            this.states = new Llama.State[pass];
            this.tokens = new int[pass];
            this.positions = new int[pass];
            this.stepping = new Slot[pass];
            start();
        }

        @Override
        int slots() {
            return slots.length;
        }

        @Override
        List<SlotState> slotStates() {
            return Arrays.stream(slots).map(s -> new SlotState(s.job != null, s.cached.length, false)).toList();
        }

        @Override
        void serve() throws InterruptedException {
            admit();
            for (Slot s : slots) if (s.prefilling()) prefill(s);
            step();
        }

        @Override
        void stopped() {
            for (Slot s : slots) if (s.job != null) s.job.fail(new Server.HttpError(503, "server_error", "the server is stopping"));
            for (SlotTask t : deferred) t.done.completeExceptionally(new Server.HttpError(503, "server_error", "the server is stopping"));
        }

        private boolean busy() {
            for (Slot s : slots) if (s.job != null) return true;
            return false;
        }

        /** Actions on slots that were generating when their turn came: each runs once its slot's request has ended. */
        private final List<SlotTask> deferred = new java.util.ArrayList<>();

        private void run(SlotTask task, Slot slot) {
            float[] weights = serverWeights(model);
            if (!runWith(slot.state, weights, slot.cachedWith)) slot.cached = new int[0];
            slot.cachedWith = weights;
            slot.cached = task.run(slot.state, slot.cached);
            System.arraycopy(slot.cached, 0, slot.sequence, 0, slot.cached.length);
        }

        /**
         * Starts waiting requests while a slot is free: waits for one where nothing runs. Deferred actions whose slots
         * are free run first, before a new request can take those slots.
         */
        private void admit() throws InterruptedException {
            deferred.removeIf(task -> {
                Slot slot = slots[task.slot];
                if (slot.job != null) return false;
                run(task, slot);
                return true;
            });
            while (true) {
                Slot free = null;
                for (Slot s : slots) if (s.job == null) free = s;
                if (free == null) return;
                Work work = busy() ? waiting.poll() : waiting.take();
                if (work == null) return;
                if (work instanceof SlotTask task) {
                    Slot slot = task.slot == ANY_SLOT ? free : slots[task.slot];
                    if (slot.job != null) deferred.add(task);
                    else run(task, slot);
                    continue;
                }
                start((Job) work);
            }
        }

        /** Takes {@code job} into the free slot whose cache holds the longest start of its prompt. */
        private void start(Job job) {
            if (job.gone) { // its request ended while it waited
                job.drop();
                return;
            }
            int[] prompt;
            float[] weights;
            Sampler sampler;
            try {
                prompt = job.prompt(contextLength);
                weights = job.loraWeights();
                sampler = job.sampler();
            } catch (Throwable e) {
                job.fail(e);
                return;
            }
            Slot slot = null;
            int best = -1;
            for (Slot s : slots) {
                if (s.job != null) continue;
                int reused = Arrays.equals(weights, s.cachedWith) ? reusable(s.state, s.cached, prompt) : 0; // a cache made with other LoRA weights holds nothing for it
                if (reused > best) {
                    best = reused;
                    slot = s;
                }
            }
            if (!runWith(slot.state, weights, slot.cachedWith)) slot.cached = new int[0];
            slot.cachedWith = weights;
            slot.job = job;
            running++;
            slot.sampler = sampler;
            slot.prompt = prompt;
            slot.reused = best;
            slot.maxTokens = job.maxTokens();
            slot.generated = new int[Math.min(slot.maxTokens, contextLength - prompt.length + 1)];
            slot.count = slot.decoded = 0;
            slot.decodeNanos = slot.prefillNanos = 0;
            slot.prefilled = best;
            slot.decoding = false;
            slot.cached = Arrays.copyOf(prompt, best); // what the cache still holds if the generation fails
            System.arraycopy(prompt, 0, slot.sequence, 0, prompt.length);
        }

        /**
         * Runs the next piece of {@code slot}'s prompt, {@link #PREFILL_CHUNK} tokens (or the rest, where it is less
         * than a piece and {@link Tensor#BATCH_INVARIANT_TOKENS} more), so that a long prompt holds the other requests'
         * steps for one piece at a time; its last piece's logits give the first token. Pieces of a multiple of four
         * tokens, the last at least {@link Tensor#BATCH_INVARIANT_TOKENS} or the whole prompt, give each token the
         * sums of the prompt run in one batch.
         */
        private void prefill(Slot slot) {
            int[] prompt = slot.prompt;
            int from = slot.prefilled, left = prompt.length - from;
            int n = left <= PREFILL_CHUNK + Tensor.BATCH_INVARIANT_TOKENS ? left : PREFILL_CHUNK;
            long t0 = System.nanoTime();
            try {
                if (from + n < prompt.length) {
                    model.forward(slot.state, prompt, from, n, from, from + n, NO_LOGITS);
                    slot.prefilled += n;
                    slot.prefillNanos += System.nanoTime() - t0;
                    return;
                }
                float[] logits = model.forward(slot.state, prompt, from, n, from, null);
                slot.prefilled = prompt.length;
                slot.pos = prompt.length;
                if (slot.maxTokens == 0) { // the prompt into the cache, nothing drawn (llama.cpp's n_predict 0)
                    slot.prefillNanos += System.nanoTime() - t0;
                    finish(slot, false);
                    return;
                }
                int token = slot.sampler.sample(logits, 0, slot.sequence, slot.pos);
                slot.prefillNanos += System.nanoTime() - t0;
                slot.decoding = true;
                offer(slot, token);
            } catch (Throwable e) {
                end(slot, e);
            }
        }

        /** Tokens of a prompt run between two steps. */
        static final int PREFILL_CHUNK = 128;

        /** Where a prompt's earlier pieces hand their logits: none are computed. */
        private static final Llama.LogitsSink NO_LOGITS = (position, logits, offset) -> {
        };

        /**
         * Token {@code token} chosen for {@code slot}, at its position: the generation ends at an end-of-text token,
         * where the reply is over, at its budget or the context's end; else the token runs in the next step.
         */
        private void offer(Slot slot, int token) {
            for (int e : ckpt.eos()) {
                if (token == e) {
                    finish(slot, true);
                    return;
                }
            }
            slot.generated[slot.count++] = token;
            slot.sequence[slot.pos] = token;
            if (!slot.job.accept(token) || closed || slot.count == slot.maxTokens || slot.pos >= contextLength) {
                finish(slot, false);
                return;
            }
            slot.token = token;
        }

        /** One token of every generation under way, in passes of up to {@link Llama#EXACT_BATCH}; each chooses its next. */
        private void step() {
            int n = 0;
            for (Slot s : slots) {
                if (s.job == null || !s.decoding) continue;
                stepping[n] = s;
                states[n] = s.state;
                tokens[n] = s.token;
                positions[n++] = s.pos;
                if (n == Llama.EXACT_BATCH) {
                    pass(n);
                    n = 0;
                }
            }
            if (n > 0) pass(n);
        }

        /** The step of the {@code n} generations in {@link #stepping}: one pass over the weights. */
        private void pass(int n) {
            long t0 = System.nanoTime();
            float[] logits;
            try {
                logits = model.decodeEach(batch, states, tokens, positions, n);
            } catch (Throwable e) {
                for (int i = 0; i < n; i++) end(stepping[i], e);
                return;
            }
            long nanos = System.nanoTime() - t0;
            steps++;
            stepTokens += n;
            for (int i = 0; i < n; i++) {
                Slot s = stepping[i];
                s.decodeNanos += nanos;
                s.decoded++;
                s.pos++;
                try {
                    offer(s, s.sampler.sample(logits, i * vocab, s.sequence, s.pos));
                } catch (Throwable e) {
                    end(s, e);
                }
            }
            Arrays.fill(states, 0, n, null);
            Arrays.fill(stepping, 0, n, null);
        }

        /** The slot's generation is over: its statistics to the request, and the slot free with what its cache holds. */
        private void finish(Slot slot, boolean eos) {
            Generator.Result r = new Generator.Result(Arrays.copyOf(slot.generated, slot.count), slot.prompt.length - slot.reused, slot.prefillNanos,
                    slot.decoded, slot.decodeNanos, 0, eos, slot.decoded, false);
            slot.cached = concat(slot.prompt, slot.generated, slot.decoded);
            Job job = slot.job;
            free(slot);
            job.finish(r, slot.prompt.length, slot.reused);
        }

        /** The slot's generation failed: the request told, the slot free with the cache's start it kept. */
        private void end(Slot slot, Throwable e) {
            Job job = slot.job;
            free(slot);
            job.fail(e);
        }

        private void free(Slot slot) {
            slot.job = null;
            slot.sampler = null;
            running--;
        }
    }
}
