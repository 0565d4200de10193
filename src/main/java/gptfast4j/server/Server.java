package gptfast4j.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import gptfast4j.generate.Generation;
import gptfast4j.generate.Generator;
import gptfast4j.generate.GrammarConstraint;
import gptfast4j.generate.Sampler;
import gptfast4j.model.ChatFormat;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Llama;
import gptfast4j.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntPredicate;

/**
 * An OpenAI-compatible HTTP server over one model: {@code POST /v1/completions} and {@code /v1/chat/completions}
 * (streamed as server-sent events with {@code "stream": true}), {@code GET /v1/models} and {@code /health}.
 * <p>
 * One generation runs at a time, on one thread that owns the model's state; requests wait for it in arrival order
 * (several sequences sharing one batched pass, continuous batching, is the next step). A prompt that starts with the
 * tokens the cache holds from the previous request (a chat sent again with one more turn, a fixed instruction before
 * varying input) runs only the tokens after them, as llama.cpp's server reuses its cache.
 */
public final class Server implements AutoCloseable {
    /** Request bodies past this are refused (413); a whole context of text is far less. */
    static final int MAX_BODY = 16 << 20;

    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final Checkpoint ckpt;
    private final Llama.State state;
    private final Generation generator;
    private final ChatFormat chatFormat;
    private final String modelName;
    /** The key every request but {@code /health}'s must bear ({@code Authorization: Bearer KEY}); null for none. */
    private final byte[] apiKey;
    private final PrintStream log;
    private final HttpServer http;
    private final ExecutorService handlers = Executors.newVirtualThreadPerTaskExecutor();
    private final ExecutorService generation = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "generation");
        t.setDaemon(true);
        return t;
    });
    private final long created = System.currentTimeMillis() / 1000;
    private final AtomicLong requests = new AtomicLong();
    /** The tokens whose keys and values the state's cache holds from position 0 (the generation thread's alone). */
    private int[] cached = new int[0];

    /**
     * Listens on {@code address} (port 0: any free port, {@link #port}) and serves {@code ckpt} through
     * {@code generator} (plain or speculative decoding, which only this server may use) over {@code state} (whose
     * context length bounds prompt and reply together), framing chats in {@code chatFormat}, for clients that give
     * {@code apiKey} (null: any client); one line per request goes to {@code log}.
     */
    public Server(Checkpoint ckpt, Llama.State state, Generation generator, ChatFormat chatFormat, InetSocketAddress address, String apiKey,
                  PrintStream log) throws IOException {
        this.ckpt = ckpt;
        this.state = state;
        this.generator = generator;
        this.chatFormat = chatFormat;
        this.modelName = ckpt.path().getFileName().toString();
        this.apiKey = apiKey != null ? ("Bearer " + apiKey).getBytes(StandardCharsets.UTF_8) : null;
        this.log = log;
        this.http = HttpServer.create(address, 64);
        http.createContext("/", this::handle);
        http.setExecutor(handlers);
        http.start();
    }

    public int port() {
        return http.getAddress().getPort();
    }

    /** Stops listening and ends the generation under way (its client's connection closes). */
    @Override
    public void close() {
        http.stop(0);
        generation.shutdownNow();
        handlers.shutdownNow();
    }

    /** A response other than 200: its status, OpenAI's error type, and a message for the client. */
    static final class HttpError extends RuntimeException {
        final int status;
        final String type;

        HttpError(int status, String type, String message) {
            super(message);
            this.status = status;
            this.type = type;
        }

        static HttpError invalid(String message) {
            return new HttpError(400, "invalid_request_error", message);
        }
    }

    private void handle(HttpExchange exchange) {
        long start = System.nanoTime();
        String method = exchange.getRequestMethod(), path = exchange.getRequestURI().getPath();
        String summary = null;
        int status = 200;
        try {
            if (apiKey != null && !path.equals("/health")) {
                String given = exchange.getRequestHeaders().getFirst("Authorization");
                // compared in constant time: the time a wrong key takes says nothing of how much of it was right
                if (given == null || !java.security.MessageDigest.isEqual(apiKey, given.getBytes(StandardCharsets.UTF_8))) {
                    exchange.getResponseHeaders().set("WWW-Authenticate", "Bearer");
                    throw new HttpError(401, "authentication_error", given == null ? "this server needs an API key: Authorization: Bearer KEY" : "the API key is not this server's");
                }
            }
            switch (path) {
                case "/health" -> {
                    allow(exchange, "GET");
                    send(exchange, 200, JSON.createObjectNode().put("status", "ok"));
                }
                case "/v1/models" -> {
                    allow(exchange, "GET");
                    ObjectNode list = JSON.createObjectNode().put("object", "list");
                    list.putArray("data").addObject().put("id", modelName).put("object", "model").put("created", created).put("owned_by", "gptfast4j");
                    send(exchange, 200, list);
                }
                case "/v1/completions", "/v1/chat/completions" -> {
                    allow(exchange, "POST");
                    summary = complete(exchange, path.equals("/v1/chat/completions"));
                }
                default -> throw new HttpError(404, "not_found_error", "no endpoint " + path
                        + "; there are POST /v1/completions, POST /v1/chat/completions, GET /v1/models and GET /health");
            }
        } catch (HttpError e) {
            status = e.status;
            summary = e.getMessage();
            sendError(exchange, e);
        } catch (IOException e) {
            summary = "the client went away (" + e.getMessage() + ")";
        } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
            status = 500;
            summary = failure(e);
            sendError(exchange, new HttpError(500, "server_error", summary));
        } finally {
            exchange.close();
        }
        if (!path.equals("/health")) {
            log.printf("%s %s %d, %.2f s%s%n", method, path, status, (System.nanoTime() - start) / 1e9, summary != null ? ": " + summary : "");
        }
    }

    /** What went wrong, in a line: a failure of the model's (logits not finite) or of the server's. */
    private static String failure(Throwable e) {
        return e instanceof StackOverflowError ? "input nested too deeply to take (a stack overflow)"
                : e.getClass().getSimpleName() + (e.getMessage() != null ? ": " + e.getMessage() : "");
    }

    private static void allow(HttpExchange exchange, String method) {
        if (!exchange.getRequestMethod().equals(method)) {
            exchange.getResponseHeaders().set("Allow", method);
            throw new HttpError(405, "invalid_request_error", exchange.getRequestURI().getPath() + " takes " + method + ", not " + exchange.getRequestMethod());
        }
    }

    /**
     * A completion: the request checked here, then its generation queued for the generation thread, which writes a
     * stream itself or returns the response to send. Returns the log line's summary.
     */
    private String complete(HttpExchange exchange, boolean chat) throws IOException {
        CompletionRequest request;
        try {
            request = CompletionRequest.parse(body(exchange), chat);
        } catch (CompletionRequest.Invalid | IllegalArgumentException e) {
            throw HttpError.invalid(e.getMessage());
        } catch (StackOverflowError e) {
            throw HttpError.invalid("the request is nested too deeply to take");
        }
        String id = (chat ? "chatcmpl-" : "cmpl-") + Long.toHexString(created) + "-" + requests.incrementAndGet();
        Future<Completion> job = generation.submit(() -> generate(exchange, request, chat, id));
        Completion done;
        try {
            done = job.get();
        } catch (InterruptedException e) {
            job.cancel(true);
            throw new HttpError(503, "server_error", "the server is stopping");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof HttpError h) throw h;
            if (e.getCause() instanceof IOException io) throw io;
            throw new HttpError(500, "server_error", failure(e.getCause()));
        }
        if (done.response != null) send(exchange, 200, done.response);
        return done.summary;
    }

    /** A finished generation: the response to send (null where it was streamed) and the log line's summary. */
    private record Completion(ObjectNode response, String summary) {
    }

    /** One request's generation, on the generation thread. */
    private Completion generate(HttpExchange exchange, CompletionRequest request, boolean chat, String id) throws IOException {
        Tokenizer tokenizer = ckpt.tokenizer();
        int vocab = ckpt.model().config.vocabSize();
        int[] prompt = prompt(request, chat);
        if (prompt.length > state.contextLength) {
            throw HttpError.invalid("the prompt has " + prompt.length + " tokens but the context length is " + state.contextLength);
        }
        for (int token : request.bias().tokens()) {
            if (token >= vocab) throw HttpError.invalid("logit_bias: token " + token + " is not in the vocabulary (ids 0.." + (vocab - 1) + ")");
        }
        Sampler sampler;
        try {
            sampler = new Sampler(vocab, request.temperature(), request.topK(), request.topP(), request.minP(), request.penalties(),
                    request.bias(), request.seed() != null ? request.seed() : System.nanoTime());
        } catch (IllegalArgumentException e) {
            throw HttpError.invalid(e.getMessage().replace("--logit-bias", "logit_bias"));
        }
        if (request.grammar() != null) sampler.constrain(new GrammarConstraint(request.grammar(), tokenizer::bytes, vocab, ckpt.eos()));
        ReplyText reply = new ReplyText(tokenizer, request.stops(), chat && tokenizer.kind() == Tokenizer.Kind.SENTENCEPIECE);
        Chunks chunks = new Chunks(id, chat);
        Events events = request.stream() ? new Events(exchange) : null;
        StringBuilder text = new StringBuilder();
        boolean[] gone = new boolean[1];
        if (events != null && chat) events.send(chunks.role());
        IntPredicate onToken = token -> {
            boolean stop = reply.add(token);
            String piece = reply.take();
            if (events == null) {
                text.append(piece);
            } else if (!piece.isEmpty()) {
                try {
                    events.send(chunks.text(piece, null));
                } catch (IOException e) {
                    gone[0] = true;
                    return false;
                }
            }
            return !stop;
        };
        // the cache's tokens this prompt starts with need not run again; at least its last token runs, for its logits
        int shared = Arrays.mismatch(cached, prompt);
        int reused = Math.min(shared < 0 ? prompt.length : shared, prompt.length - 1);
        cached = Arrays.copyOf(prompt, reused); // what the cache still holds if the generation fails
        Generator.Result r;
        try {
            r = generator.generate(Arrays.copyOfRange(prompt, reused, prompt.length), reused, request.maxTokens(), sampler, onToken);
        } catch (RuntimeException e) {
            if (events == null) throw e;
            events.error(new HttpError(500, "server_error", failure(e)));
            return new Completion(null, failure(e));
        }
        cached = Arrays.copyOf(prompt, prompt.length + r.cachedTokens());
        System.arraycopy(r.tokens(), 0, cached, prompt.length, r.cachedTokens());
        String finish = reply.stopped() || r.stoppedAtEos() ? "stop" : "length";
        String rest = reply.finish();
        ObjectNode usage = JSON.createObjectNode().put("prompt_tokens", prompt.length).put("completion_tokens", r.tokens().length)
                .put("total_tokens", prompt.length + r.tokens().length);
        ObjectNode timings = JSON.createObjectNode().put("cache_n", reused).put("prompt_n", prompt.length - reused)
                .put("prompt_ms", r.prefillNanos() / 1e6).put("prompt_per_second", r.prefillTokensPerSecond())
                .put("predicted_n", r.tokens().length).put("predicted_ms", r.decodeNanos() / 1e6).put("predicted_per_second", r.decodeTokensPerSecond());
        String summary = String.format("prompt %d tokens (%d cached), %d generated at %.2f tokens/s, %s%s", prompt.length, reused, r.tokens().length,
                r.decodeTokensPerSecond(), finish, gone[0] ? "; the client went away" : "");
        if (events != null) {
            if (gone[0]) return new Completion(null, summary);
            if (!rest.isEmpty()) events.send(chunks.text(rest, null));
            ObjectNode last = chunks.text(null, finish);
            last.set("timings", timings);
            events.send(last);
            if (request.includeUsage()) events.send(chunks.usage(usage));
            events.done();
            return new Completion(null, summary);
        }
        text.append(rest);
        ObjectNode response = chunks.response(text.toString(), finish);
        response.set("usage", usage);
        response.set("timings", timings);
        return new Completion(response, summary);
    }

    /** The request's prompt as tokens: a completion's text (special tokens' text as those tokens, as llama.cpp's server takes it) or a chat's turns in the chat format. */
    private int[] prompt(CompletionRequest request, boolean chat) {
        if (!chat) return ckpt.promptTokens(request.prompt(), true);
        if (chatFormat == ChatFormat.PLAIN) {
            throw HttpError.invalid("this model has no chat template: start the server with --chat-format (llama2, mistral, zephyr or llama3), or use /v1/completions");
        }
        try {
            return chatFormat.conversation(ckpt.tokenizer(), request.system(), request.messages(), ckpt.bos(), ckpt.addBos(), ckpt.eos()[0]);
        } catch (IllegalArgumentException e) {
            throw HttpError.invalid(e.getMessage());
        }
    }

    /** The JSON objects of one completion's response, or of its stream's chunks, in OpenAI's shapes. */
    private final class Chunks {
        private final String id;
        private final boolean chat;

        Chunks(String id, boolean chat) {
            this.id = id;
            this.chat = chat;
        }

        private ObjectNode base(boolean chunk) {
            return JSON.createObjectNode().put("id", id).put("object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion")
                    .put("created", System.currentTimeMillis() / 1000).put("model", modelName);
        }

        /** A chat stream's first chunk: the role. */
        ObjectNode role() {
            ObjectNode chunk = base(true);
            chunk.putArray("choices").addObject().put("index", 0).putNull("finish_reason").putObject("delta").put("role", "assistant").put("content", "");
            return chunk;
        }

        /** A stream's chunk: a piece of text (null for none), and the finish reason in the last one (null before). */
        ObjectNode text(String piece, String finish) {
            ObjectNode chunk = base(true);
            ObjectNode choice = chunk.putArray("choices").addObject().put("index", 0);
            if (chat) {
                ObjectNode delta = choice.putObject("delta");
                if (piece != null) delta.put("content", piece);
            } else {
                choice.put("text", piece != null ? piece : "").putNull("logprobs");
            }
            choice.put("finish_reason", finish);
            return chunk;
        }

        /** The stream's usage chunk ({@code stream_options.include_usage}): no choices. */
        ObjectNode usage(ObjectNode usage) {
            ObjectNode chunk = base(true);
            chunk.putArray("choices");
            chunk.set("usage", usage);
            return chunk;
        }

        /** A whole response. */
        ObjectNode response(String text, String finish) {
            ObjectNode response = base(false);
            ObjectNode choice = response.putArray("choices").addObject().put("index", 0);
            if (chat) choice.putObject("message").put("role", "assistant").put("content", text);
            else choice.put("text", text);
            choice.putNull("logprobs").put("finish_reason", finish);
            return response;
        }
    }

    /** A stream of server-sent events: {@code data: JSON}, a blank line after each, {@code data: [DONE]} at the end. */
    private static final class Events {
        private final OutputStream out;

        Events(HttpExchange exchange) throws IOException {
            exchange.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
            exchange.getResponseHeaders().set("Cache-Control", "no-cache");
            exchange.sendResponseHeaders(200, 0);
            out = exchange.getResponseBody();
        }

        void send(JsonNode event) throws IOException {
            write("data: " + JSON.writeValueAsString(event) + "\n\n");
        }

        /** An error after the stream began (its status was sent), as OpenAI's and llama.cpp's streams carry one. */
        void error(HttpError e) throws IOException {
            send(errorBody(e));
        }

        void done() throws IOException {
            write("data: [DONE]\n\n");
        }

        private void write(String text) throws IOException {
            out.write(text.getBytes(StandardCharsets.UTF_8));
            out.flush();
        }
    }

    private static JsonNode body(HttpExchange exchange) throws IOException {
        byte[] body = exchange.getRequestBody().readNBytes(MAX_BODY + 1);
        if (body.length > MAX_BODY) throw new HttpError(413, "invalid_request_error", "the request body is larger than " + (MAX_BODY >> 20) + " MB");
        if (body.length == 0) throw HttpError.invalid("the request has no body; it takes a JSON object");
        try {
            return JSON.readTree(body);
        } catch (JsonProcessingException e) {
            throw HttpError.invalid("the request body is not valid JSON: " + e.getOriginalMessage());
        }
    }

    private static ObjectNode errorBody(HttpError e) {
        ObjectNode body = JSON.createObjectNode();
        body.putObject("error").put("message", e.getMessage()).put("type", e.type).putNull("param").putNull("code");
        return body;
    }

    private static void send(HttpExchange exchange, int status, JsonNode body) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(body);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        exchange.getResponseBody().write(bytes);
    }

    /** An error response, where its status can still be sent (not after a stream's began). */
    private static void sendError(HttpExchange exchange, HttpError e) {
        if (exchange.getResponseCode() != -1) return;
        try {
            send(exchange, e.status, errorBody(e));
        } catch (IOException ignored) {
            // the client went away: nobody to tell
        }
    }
}
