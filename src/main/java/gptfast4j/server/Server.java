package gptfast4j.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import gptfast4j.generate.PromptCache;
import gptfast4j.model.ChatFormat;
import gptfast4j.model.ChatTemplate;
import gptfast4j.model.Infill;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Pooling;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Collectors;

/**
 * An OpenAI-compatible HTTP server over one model: {@code POST /v1/completions} and {@code /v1/chat/completions}
 * (streamed as server-sent events with {@code "stream": true}), {@code GET /v1/models} and {@code /health}, and
 * llama.cpp's {@code POST /tokenize} and {@code /detokenize} and {@code GET /metrics}.
 * <p>
 * The generations run on an {@link Engine}'s thread, which owns the model's states: one at a time, or several at once
 * in one pass per step (continuous batching); requests wait for it in arrival order. A prompt that starts with the
 * tokens a cache holds from an earlier request (a chat sent again with one more turn, a fixed instruction before
 * varying input) runs only the tokens after them, as llama.cpp's server reuses its cache.
 */
public final class Server implements AutoCloseable {
    /**
     * Characters a prompt's text may have per position of the context, more than any tokenizer's tokens hold (Llama-3's
     * longest are runs of some tens of spaces or symbols).
     */
    static final int CHARS_PER_TOKEN_AT_MOST = 256;

    /** Request bodies past this are refused (413); a whole context of text is far less. */
    static final int MAX_BODY = 16 << 20;

    /** How often a request without a stream looks whether its client is still there ({@link ClientWatch}). */
    static final int WATCH_MILLIS = 100;

    static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final Checkpoint ckpt;
    private final Engine engine;
    private final ChatFormat chatFormat;
    private final String modelName;
    /** The key every request but {@code /health}'s must bear ({@code Authorization: Bearer KEY}); null for none. */
    private final byte[] apiKey;
    /** The web origin whose pages may call this server (CORS; {@code *} for any), or null for none. */
    private volatile String corsOrigin;
    /** The most requests in flight (waiting or generating, one of n choices counting n) before one is refused, {@link #limitRequests}; 0 for no limit. */
    private volatile int maxRequests;
    /** The requests taken and not yet ended, one of n choices counting n. */
    private final java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();
    private final PrintStream log;
    private final HttpServer http;
    private final ExecutorService handlers = Executors.newVirtualThreadPerTaskExecutor();
    private final long created = System.currentTimeMillis() / 1000;
    private final AtomicLong requests = new AtomicLong();
    /** Requests refused past {@link #limitRequests}, for {@code /metrics}. */
    private final LongAdder refused = new LongAdder();
    /** Totals over the choices generated, for {@code /metrics}. */
    private final LongAdder choices = new LongAdder(), promptTokens = new LongAdder(),
            cachedTokens = new LongAdder(), generatedTokens = new LongAdder(),
            promptMicros = new LongAdder(), generationMicros = new LongAdder();

    /**
     * Listens on {@code address} (port 0: any free port, {@link #port}) and serves {@code ckpt} through
     * {@code engine} (which only this server may use, and which it closes), framing chats in {@code chatFormat}, for
     * clients that give {@code apiKey} (null: any client); one line per request goes to {@code log}.
     */
    public Server(Checkpoint ckpt, Engine engine, ChatFormat chatFormat, InetSocketAddress address, String apiKey, PrintStream log) throws IOException {
        this.ckpt = ckpt;
        this.engine = engine;
        this.chatFormat = chatFormat;
        this.modelName = ckpt.path().getFileName().toString();
        this.apiKey = apiKey != null ? ("Bearer " + apiKey).getBytes(StandardCharsets.UTF_8) : null;
        this.log = log;
        this.pooling = Pooling.of(ckpt);
        this.infill = Infill.of(ckpt);
        this.autoThinking = chatFormat == ChatFormat.DEEPSEEK3 || ckpt.chatTemplate() != null && ckpt.chatTemplate().contains("<think>")
                || ckpt.tokenizer().speaksHarmony();
        this.splitThinking = autoThinking;
        this.http = HttpServer.create(address, 64);
        http.createContext("/", this::handle);
        http.setExecutor(handlers);
        http.start();
    }

    public int port() {
        return http.getAddress().getPort();
    }

    /**
     * Lets web pages of {@code origin} ({@code *}: any) call this server from a browser: the CORS headers on every
     * response, and preflight requests ({@code OPTIONS}) answered without the API key, as browsers send them.
     */
    public void allowOrigin(String origin) {
        this.corsOrigin = origin;
    }

    /**
     * Refuses a completion (503, with {@code Retry-After}) that would put more than {@code max} requests in flight,
     * waiting or generating (one of {@code n} choices counting n), rather than queue it without end: a busy server then
     * tells clients to come back, where its queue and each waiting client's wait grew with the load.
     */
    public void limitRequests(int max) {
        this.maxRequests = max;
    }

    /**
     * Lets {@code POST /slots/ID?action=save|restore} keep slots' caches in files of {@code folder} (llama.cpp's
     * {@code --slot-save-path}), prompt caches ({@link PromptCache}) of the model that {@code identity} names (its
     * fingerprint, {@code --quantize} and cache type), so that a file of another is not taken.
     */
    public void saveSlotsIn(Path folder, String identity) {
        this.slotFiles = folder == null ? null : new SlotFiles(folder, identity);
    }

    /**
     * Whether a chat reply's opening thinking block ({@code <think>...</think>}) goes apart as OpenAI's
     * {@code reasoning_content} ({@link Reasoning}; llama.cpp's {@code --reasoning-format deepseek}); at first where the
     * chat format is DeepSeek-R1's ({@code deepseek3}) or the chat template writes {@code <think>} (Qwen3's), as
     * llama.cpp's {@code auto} parts a reasoning model's reply.
     */
    public void splitThinking(boolean split) {
        this.splitThinking = split;
    }

    private volatile boolean splitThinking;

    /** Whether {@code auto} (the default, and a request's {@code reasoning_format}) splits the thinking: a reasoning model's format or template. */
    private volatile boolean autoThinking;

    /** The model's fill-in-the-middle tokens, for {@code /infill}; null where it has none. */
    private final Infill infill;

    /**
     * Frames chats with {@code template}, the model's own (Jinja) chat template, instead of the chat format, tools in
     * the template's own syntax where {@link Tools.Syntax} reads it, else in the generic format;
     * the reasoning split by default where the template writes {@code <think>}.
     */
    public void useTemplate(ChatTemplate template) {
        this.template = template;
        if (template.source().contains("<think>")) splitThinking = autoThinking = true;
    }

    private volatile ChatTemplate template;

    /** Makes {@code /v1/embeddings} pool with {@code pooling} (at first: the file's, {@link Pooling#of}). */
    public void poolWith(Pooling pooling) {
        this.pooling = pooling;
    }

    private volatile Pooling pooling;

    /** How this server pools; 501 where its file says rank but has no classifier head to rank with (a file of no reranker llama.cpp converts). */
    private Pooling pooling() {
        Pooling how = pooling;
        if (how == Pooling.RANK && ckpt.model().weights().classifier() == null) {
            throw new HttpError(501, "not_supported_error", "this model's file pools by rank but has no classifier head (cls.output.weight); serve --pooling mean, cls or last");
        }
        return how;
    }

    /** Where slot files go and what made them ({@link #saveSlotsIn}); null: no slot files. One field, so that a request sees both or neither. */
    private volatile SlotFiles slotFiles;

    private record SlotFiles(Path folder, String identity) {
    }

    /** Stops listening and ends the generation under way (its client's connection closes). */
    @Override
    public void close() {
        http.stop(0);
        engine.close();
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
        handle(exchange, corsOrigin, apiKey, log, this::route);
    }

    /** A server's endpoints: the answer to a request at {@code path}, sent; returns the log line's summary (or null). */
    interface Endpoints {
        String answer(HttpExchange exchange, String path) throws IOException;
    }

    /**
     * One request, as each server here takes it: the CORS headers and preflight requests where {@code corsOrigin} is
     * set, the API key checked (every path but {@code /health}) where {@code apiKey} is, the endpoint's answer or its
     * error (OpenAI's shape, a 500 for a failure of ours), and a line to {@code log}.
     */
    static void handle(HttpExchange exchange, String corsOrigin, byte[] apiKey, PrintStream log, Endpoints endpoints) {
        long start = System.nanoTime();
        String method = exchange.getRequestMethod(), path = exchange.getRequestURI().getPath();
        String summary = null;
        int status = 200;
        try {
            if (corsOrigin != null) {
                exchange.getResponseHeaders().set("Access-Control-Allow-Origin", corsOrigin);
                if (!corsOrigin.equals("*")) exchange.getResponseHeaders().set("Vary", "Origin");
                if (method.equals("OPTIONS")) {
                    exchange.getResponseHeaders().set("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                    exchange.getResponseHeaders().set("Access-Control-Allow-Headers", "Authorization, Content-Type, x-api-key, anthropic-version");
                    exchange.getResponseHeaders().set("Access-Control-Max-Age", "600");
                    exchange.sendResponseHeaders(204, -1);
                    return;
                }
            }
            if (apiKey != null && !path.equals("/health")) {
                String given = exchange.getRequestHeaders().getFirst("Authorization");
                String anthropicKey = exchange.getRequestHeaders().getFirst("x-api-key"); // Anthropic's clients' header
                if (given == null && anthropicKey != null) given = "Bearer " + anthropicKey;
                // compared in constant time: the time a wrong key takes says nothing of how much of it was right
                if (given == null || !java.security.MessageDigest.isEqual(apiKey, given.getBytes(StandardCharsets.UTF_8))) {
                    exchange.getResponseHeaders().set("WWW-Authenticate", "Bearer");
                    throw new HttpError(401, "authentication_error", given == null ? "this server needs an API key: Authorization: Bearer KEY" : "the API key is not this server's");
                }
            }
            summary = endpoints.answer(exchange, path);
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
            if (exchange.getResponseCode() == -1) status = 499; // nothing sent: the client went first (nginx's code for it)
            log.printf("%s %s %d, %.2f s%s%n", method, path, status, (System.nanoTime() - start) / 1e9, summary != null ? ": " + summary : "");
        }
    }

    /** {@link Endpoints#answer} of this server's endpoints. */
    private String route(HttpExchange exchange, String path) throws IOException {
        String summary = null;
        Endpoint completion = Endpoint.AT.get(path);
        if (completion != null) {
            allow(exchange, "POST");
            summary = complete(exchange, completion);
        } else switch (path) {
            case "/health" -> {
                allow(exchange, "GET");
                // a split model whose peer is gone answers nothing more: unhealthy, so that a supervisor restarts it
                String failure = ckpt.model().failure();
                if (failure == null) send(exchange, 200, JSON.createObjectNode().put("status", "ok"));
                else send(exchange, 503, JSON.createObjectNode().put("status", "error").put("error", failure));
            }
            case "/v1/models" -> {
                allow(exchange, "GET");
                ObjectNode list = JSON.createObjectNode().put("object", "list");
                list.putArray("data").addObject().put("id", modelName).put("object", "model").put("created", created).put("owned_by", "gptfast4j");
                send(exchange, 200, list);
            }
            case "/metrics" -> {
                allow(exchange, "GET");
                metrics(exchange);
            }
            case "/props" -> {
                allow(exchange, "GET");
                send(exchange, 200, props());
            }
            case "/slots" -> {
                allow(exchange, "GET");
                slots(exchange);
            }
            case "/tokenize" -> {
                allow(exchange, "POST");
                tokenize(exchange);
            }
            case "/detokenize" -> {
                allow(exchange, "POST");
                detokenize(exchange);
            }
            case "/apply-template" -> {
                allow(exchange, "POST");
                applyTemplate(exchange);
            }
            case "/v1/embeddings", "/embeddings", "/embedding" -> {
                allow(exchange, "POST");
                summary = embeddings(exchange, !path.equals("/v1/embeddings"));
            }
            case "/v1/rerank", "/rerank", "/v1/reranking", "/reranking" -> {
                allow(exchange, "POST");
                summary = rerank(exchange);
            }
            case "/lora-adapters" -> loraAdapters(exchange);
            default -> {
                if (!path.startsWith("/slots/")) {
                    throw new HttpError(404, "not_found_error", "no endpoint " + path + "; there are POST /v1/completions, POST /v1/chat/completions,"
                            + " POST /v1/responses, POST /v1/messages, POST /v1/messages/count_tokens, POST /v1/embeddings, POST /v1/rerank, GET /v1/models, POST /completion, POST /infill, POST /embedding, POST /apply-template, POST /tokenize, POST /detokenize, GET /props, GET and POST /lora-adapters,"
                            + " GET /slots, POST /slots/ID?action=save|restore|erase,"
                            + " GET /metrics and GET /health");
                }
                allow(exchange, "POST");
                summary = slotAction(exchange, path.substring("/slots/".length()));
            }
        }
        return summary;
    }

    /**
     * llama.cpp's {@code /lora-adapters}: GET lists the adapters ({@code --lora}) with their ids, files and scales;
     * POST sets the scales of requests without a {@code lora} of their own, from a list of {@code {"id", "scale"}}
     * (an adapter left out: 0). A slot's cache made at other scales is not reused.
     */
    private void loraAdapters(HttpExchange exchange) throws IOException {
        gptfast4j.model.Lora lora = ckpt.model().lora();
        if (exchange.getRequestMethod().equals("POST")) {
            if (lora == null) throw HttpError.invalid("the server has no LoRA adapters (start it with --lora)");
            JsonNode body = body(exchange);
            try {
                lora.setWeights(CompletionRequest.loraScales(body, lora.files().size(), "the body"));
            } catch (CompletionRequest.Invalid e) {
                throw HttpError.invalid(e.getMessage());
            }
        } else {
            allow(exchange, "GET");
        }
        com.fasterxml.jackson.databind.node.ArrayNode list = JSON.createArrayNode();
        if (lora != null) {
            float[] weights = lora.weights();
            for (int i = 0; i < weights.length; i++) list.addObject().put("id", i).put("path", lora.files().get(i).toString()).put("scale", weights[i]);
        }
        send(exchange, 200, list);
    }

    /** A choice's figures into the totals of {@code /metrics}. */
    private void count(Job.Completion c) {
        choices.increment();
        promptTokens.add(c.usage().path("prompt_tokens").asLong());
        generatedTokens.add(c.usage().path("completion_tokens").asLong());
        cachedTokens.add(c.timings().path("cache_n").asLong());
        promptMicros.add(Math.round(c.timings().path("prompt_ms").asDouble() * 1000));
        generationMicros.add(Math.round(c.timings().path("predicted_ms").asDouble() * 1000));
    }

    /** {@code GET /metrics}: the totals and the queue, in Prometheus's text format (as llama.cpp's server gives its own). */
    private void metrics(HttpExchange exchange) throws IOException {
        StringBuilder text = new StringBuilder();
        metric(text, "choices_total", "counter", "Choices generated (a request's n of them).", choices.sum());
        metric(text, "prompt_tokens_total", "counter", "Prompt tokens of the choices generated, those a cache held included.", promptTokens.sum());
        metric(text, "prompt_tokens_cached_total", "counter", "Prompt tokens a cache held, which did not run again.", cachedTokens.sum());
        metric(text, "tokens_generated_total", "counter", "Tokens generated.", generatedTokens.sum());
        metric(text, "prompt_seconds_total", "counter", "Time spent running prompts.", promptMicros.sum() / 1e6);
        metric(text, "generation_seconds_total", "counter", "Time spent generating tokens after the first of each choice.", generationMicros.sum() / 1e6);
        metric(text, "requests_waiting", "gauge", "Choices waiting to start.", engine.waiting());
        metric(text, "requests_running", "gauge", "Choices being generated.", engine.running());
        metric(text, "requests_refused_total", "counter", "Requests refused with 503 past serve --max-requests.", refused.sum());
        byte[] bytes = text.toString().getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        exchange.sendResponseHeaders(200, bytes.length);
        exchange.getResponseBody().write(bytes);
    }

    private static void metric(StringBuilder text, String name, String type, String help, Number value) {
        text.append("# HELP gptfast_").append(name).append(' ').append(help).append('\n');
        text.append("# TYPE gptfast_").append(name).append(' ').append(type).append('\n');
        text.append("gptfast_").append(name).append(' ').append(value).append('\n');
    }

    /**
     * llama.cpp's {@code /tokenize}: {@code {"content": TEXT}} to {@code {"tokens": [ids]}}, special tokens' text taken
     * as those tokens (as a completion's prompt is), BOS first only with {@code "add_special": true}.
     */
    private void tokenize(HttpExchange exchange) throws IOException {
        tokenize(exchange, text -> ckpt.promptTokens(text, true), ckpt.tokenizer()::encodeWithSpecials);
    }

    /**
     * llama.cpp's {@code POST /tokenize}: {@code content}'s tokens, special tokens' text as those tokens, by
     * {@code withSpecials} where {@code add_special} is true (BOS added where the model adds one), else by {@code plain}.
     */
    static void tokenize(HttpExchange exchange, java.util.function.Function<String, int[]> withSpecials, java.util.function.Function<String, int[]> plain) throws IOException {
        JsonNode body = body(exchange);
        JsonNode content = body.get("content");
        if (content == null || !content.isTextual()) throw HttpError.invalid("'content' must be a string");
        JsonNode addSpecial = body.path("add_special");
        if (!addSpecial.isMissingNode() && !addSpecial.isBoolean()) throw HttpError.invalid("'add_special' must be true or false");
        int[] ids = (addSpecial.asBoolean(false) ? withSpecials : plain).apply(content.asText());
        ObjectNode reply = JSON.createObjectNode();
        var tokens = reply.putArray("tokens");
        for (int id : ids) tokens.add(id);
        send(exchange, 200, reply);
    }

    /**
     * Whether a chat's reply has its thinking split off: the server's choice ({@link #splitThinking}), or the request's
     * {@code reasoning_format} as llama.cpp's server takes it (none, deepseek, or auto: where the model reasons).
     */
    private boolean reasoningFormat(JsonNode body) {
        JsonNode format = body.get("reasoning_format");
        if (format == null || format.isNull()) return splitThinking;
        return switch (format.isTextual() ? format.asText() : "") {
            case "none" -> false;
            case "deepseek" -> true;
            case "auto" -> autoThinking;
            default -> throw new CompletionRequest.Invalid("'reasoning_format' must be none, deepseek or auto, got " + format);
        };
    }

    /**
     * The template a chat request is framed by: the server's (by default the model's own), else, where the request gives
     * {@code chat_template_kwargs} (variables only a template reads, such as Qwen3's {@code enable_thinking}), the
     * model's own; null where the chat format frames it.
     */
    private ChatTemplate templateFor(JsonNode body) {
        if (template != null && body.path("tools").isArray() && !body.get("tools").isEmpty() && !"none".equals(body.path("tool_choice").asText())
                && template.source().equals(ckpt.chatTemplate())) {
            ChatTemplate tools = toolUseTemplate();
            if (tools != null) return tools; // the model's template for chats with tools, as llama.cpp and transformers choose it
        }
        if (template != null) return template;
        if (!body.hasNonNull("chat_template_kwargs")) return null;
        if (ckpt.chatTemplate() == null) throw new CompletionRequest.Invalid("'chat_template_kwargs' needs a chat template, and this model has none");
        ChatTemplate own = modelTemplate;
        if (own == null) {
            try {
                modelTemplate = own = new ChatTemplate(ckpt.chatTemplate());
            } catch (IllegalArgumentException e) {
                throw new CompletionRequest.Invalid("'chat_template_kwargs': the model's " + e.getMessage());
            }
        }
        return own;
    }

    /** The model's chat template, parsed at the first request that asks for it ({@link #templateFor}). */
    private volatile ChatTemplate modelTemplate;

    /** The model's {@code tool_use} template, parsed at the first chat with tools; null where it has none. */
    private ChatTemplate toolUseTemplate() {
        if (!toolUseLooked) {
            String source = ckpt.chatTemplate("tool_use");
            try {
                toolUse = source != null ? new ChatTemplate(source) : null;
            } catch (IllegalArgumentException e) {
                log.println("note: the model's tool_use chat template cannot be rendered (" + e.getMessage() + "); chats with tools use its default template");
            }
            toolUseLooked = true;
        }
        return toolUse;
    }

    private volatile ChatTemplate toolUse;
    private volatile boolean toolUseLooked;

    /** A chat's prompt by {@code template}; the template's refusal is a 400 with its message. */
    private String rendered(ChatTemplate template, CompletionRequest.TemplateInput input) {
        try {
            return template.render(ckpt.tokenizer(), ckpt.bos(), ckpt.eos()[0], input.messages(), input.tools(), input.variables(), true);
        } catch (IllegalArgumentException e) {
            throw HttpError.invalid(e.getMessage());
        }
    }

    /**
     * llama.cpp's {@code /apply-template}: a chat request's prompt as the chat template renders it,
     * {@code {"prompt": TEXT}} (without the BOS text where the tokenizer adds BOS, as llama.cpp gives it), nothing
     * generated (a server with a template, {@link #templateFor}).
     */
    private void applyTemplate(HttpExchange exchange) throws IOException {
        JsonNode body = body(exchange);
        CompletionRequest request;
        ChatTemplate framing;
        try {
            framing = templateFor(body);
            if (framing == null) {
                throw HttpError.invalid("this server frames chats in the fixed chat format " + chatFormat.option() + ", not by a template it could show"
                        + (ckpt.chatTemplate() != null ? " (started with --no-jinja or --chat-format)" : " (the model has none)"));
            }
            request = CompletionRequest.parse(body, true, Tools.Syntax.of(framing.source()), true);
        } catch (CompletionRequest.Invalid | IllegalArgumentException e) {
            throw HttpError.invalid(e.getMessage());
        }
        String prompt = ChatTemplate.withoutBos(ckpt.tokenizer(), rendered(framing, request.templateInput()), ckpt.bos(), ckpt.addBos());
        send(exchange, 200, JSON.createObjectNode().put("prompt", prompt));
    }

    /** llama.cpp's {@code /detokenize}: {@code {"tokens": [ids]}} to {@code {"content": TEXT}}, the tokens' bytes as UTF-8. */
    private void detokenize(HttpExchange exchange) throws IOException {
        JsonNode tokens = body(exchange).get("tokens");
        if (tokens == null || !tokens.isArray()) throw HttpError.invalid("'tokens' must be a list of token ids");
        int[] ids;
        try {
            ids = CompletionRequest.ids(tokens);
        } catch (CompletionRequest.Invalid e) {
            throw HttpError.invalid(e.getMessage());
        }
        checkVocabulary(ckpt, ids, "");
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        for (int id : ids) bytes.writeBytes(ckpt.tokenizer().bytes(id));
        send(exchange, 200, JSON.createObjectNode().put("content", bytes.toString(StandardCharsets.UTF_8)));
    }

    /** A file name for {@code /slots}: letters, digits, dots, dashes and underscores, not starting with a dot (no path, no hidden file). */
    private static final java.util.regex.Pattern SLOT_FILE = java.util.regex.Pattern.compile("[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}");

    /**
     * llama.cpp's {@code POST /slots/ID?action=...}, between requests (on a slot that is generating, once its request
     * has ended): {@code
     * save} writes the tokens the slot's cache holds and their keys and values to {@code {"filename": NAME}} in the
     * {@code --slot-save-path} folder, {@code restore} puts a saved file's back into the slot (a later prompt that
     * starts with them runs only the rest), {@code erase} forgets what the slot holds. The files are {@code generate
     * --prompt-cache}'s. Returns the log line's summary.
     */
    private String slotAction(HttpExchange exchange, String id) throws IOException {
        if (!id.matches("\\d{1,4}")) throw HttpError.invalid("'" + id + "' is not a slot number");
        int slot = Integer.parseInt(id);
        String query = exchange.getRequestURI().getQuery(), action = null;
        for (String parameter : query != null ? query.split("&") : new String[0]) if (parameter.startsWith("action=")) action = parameter.substring("action=".length());
        if (action == null || !action.matches("save|restore|erase")) throw HttpError.invalid("the action must be ?action=save, ?action=restore or ?action=erase");
        ObjectNode reply = JSON.createObjectNode().put("id_slot", slot);
        if (action.equals("erase")) {
            int[] erased = {0};
            await(engine.onSlot(slot, false, (state, cached) -> {
                erased[0] = cached.length;
                return new int[0];
            }));
            send(exchange, 200, reply.put("n_erased", erased[0]));
            return "slot " + slot + " erased, " + erased[0] + " tokens";
        }
        SlotFiles files = slotFiles;
        if (files == null) throw new HttpError(501, "not_supported_error", "this server keeps no slot files; start it with --slot-save-path FOLDER");
        JsonNode name = body(exchange).get("filename");
        if (name == null || !name.isTextual() || !SLOT_FILE.matcher(name.asText()).matches()) {
            throw HttpError.invalid("'filename' must be a file name of letters, digits, '.', '-' and '_' (no folder, not starting with a dot)");
        }
        Path file = files.folder().resolve(name.asText());
        long t0 = System.nanoTime();
        reply.put("filename", name.asText());
        if (action.equals("save")) {
            int[] saved = await(engine.onSlot(slot, false, (state, cached) -> {
                try {
                    slotCache(files, file, state).save(state, cached);
                } catch (IllegalArgumentException e) {
                    throw HttpError.invalid("the slot file " + name.asText() + " is there and is not a prompt cache (refusing to overwrite it)");
                } catch (java.io.UncheckedIOException e) {
                    log.println("slot " + slot + ": " + e.getMessage()); // the server's folder for its log, not for the client
                    throw new HttpError(500, "server_error", "cannot write the slot file " + name.asText());
                }
                return cached;
            }));
            double ms = (System.nanoTime() - t0) / 1e6;
            reply.put("n_saved", saved.length).put("n_written", java.nio.file.Files.size(file)).putObject("timings").put("save_ms", ms);
            send(exchange, 200, reply);
            return "slot " + slot + " saved to " + name.asText() + ", " + saved.length + " tokens";
        }
        // checked here, so that a mistaken name leaves the slot as it was; a failure while the file is read empties it
        if (!java.nio.file.Files.isRegularFile(file)) throw HttpError.invalid("no slot file " + name.asText() + " in the --slot-save-path folder");
        if (!PromptCache.isPromptCache(file)) throw HttpError.invalid("the slot file " + name.asText() + " is not a prompt cache");
        String[] unused = new String[1];
        int[] restored = await(engine.onSlot(slot, true, (state, cached) -> {
            PromptCache.Restored r;
            try {
                r = slotCache(files, file, state).restore(state, null, state.contextLength);
            } catch (java.io.UncheckedIOException e) {
                log.println("slot " + slot + ": " + e.getMessage());
                throw new HttpError(500, "server_error", "cannot read the slot file " + name.asText() + "; the slot is now empty");
            }
            unused[0] = r.unused();
            return r.unused() != null ? cached : r.tokens(); // another model's: nothing read
        }));
        if (unused[0] != null) throw HttpError.invalid("the slot file " + name.asText() + " was " + unused[0]);
        double ms = (System.nanoTime() - t0) / 1e6;
        reply.put("n_restored", restored.length).put("n_read", java.nio.file.Files.size(file)).putObject("timings").put("restore_ms", ms);
        send(exchange, 200, reply);
        return "slot " + slot + " restored from " + name.asText() + ", " + restored.length + " tokens";
    }

    /**
     * The slot file {@code file} as a prompt cache of what made the slot's cache: the model ({@link SlotFiles#identity})
     * and the LoRA adapters' weights the slot action runs with (the server's now, which {@code POST /lora-adapters}
     * changes while the files stay), so that a file saved at other weights is not restored as if it held these.
     */
    private static PromptCache slotCache(SlotFiles files, Path file, gptfast4j.model.Llama.State state) {
        float[] weights = state.loraWeights;
        return new PromptCache(file, files.identity() + (weights == null ? "" : " adapter weights " + java.util.Arrays.toString(weights)));
    }

    /**
     * {@code POST /v1/rerank} ({@link Rerank}), in a free slot of the engine: each document's score by a reranker's
     * {@link Pooling#RANK} (where the server pools otherwise, 501 as llama.cpp's server without {@code --reranking}).
     * Returns the log line's summary.
     */
    private String rerank(HttpExchange exchange) throws IOException {
        Pooling how = pooling();
        if (how != Pooling.RANK) {
            throw new HttpError(501, "not_supported_error", "this server pools with " + how.option() + ": reranking needs a reranker (a file whose pooling is rank,"
                    + " with a classifier head) or serve --pooling rank");
        }
        Rerank request = Rerank.parse(body(exchange), EmbeddingModel.of(ckpt), engine.contextLength);
        float[] scores = new float[request.prompts().size()];
        long t0 = System.nanoTime();
        await(engine.onFreeSlot((state, cached) -> {
            for (int i = 0; i < scores.length; i++) scores[i] = how.embed(ckpt.model(), state, request.prompts().get(i), Pooling.EUCLIDEAN)[0];
            return request.prompts().getLast();
        }));
        send(exchange, 200, request.response(scores, modelName));
        return String.format("%d document%s reranked, %d tokens in %.2f s", scores.length, scores.length == 1 ? "" : "s", request.tokens(), (System.nanoTime() - t0) / 1e9);
    }

    /**
     * {@code POST /v1/embeddings} ({@link Embeddings}), in a free slot of the engine, or llama.cpp's own
     * {@code /embedding} where {@code llama} (or where the body gives {@code content}). Returns the log line's summary.
     */
    private String embeddings(HttpExchange exchange, boolean llama) throws IOException {
        Pooling how = pooling();
        Embeddings request = Embeddings.parse(body(exchange), EmbeddingModel.of(ckpt), engine.contextLength, llama);
        List<float[]> embeddings = new ArrayList<>();
        long t0 = System.nanoTime();
        await(engine.onFreeSlot((state, cached) -> {
            for (int[] ids : request.inputs()) embeddings.add(how.embed(ckpt.model(), state, ids, request.normalize()));
            return request.inputs().getLast();
        }));
        send(exchange, 200, request.llama() ? request.llamaResponse(embeddings) : request.response(embeddings, modelName));
        return String.format("%d embedding%s (%s pooling) of %d tokens in %.2f s", embeddings.size(), embeddings.size() == 1 ? "" : "s", how.option(),
                request.tokens(), (System.nanoTime() - t0) / 1e9);
    }

    /**
     * llama.cpp's {@code GET /props}, its fields this server has: the generation defaults (generate's: temperature 0.8,
     * top-k 200, no limit), the context, the slots, the model, its chat template and format, its BOS and EOS texts.
     */
    private ObjectNode props() {
        ObjectNode props = JSON.createObjectNode();
        ObjectNode defaults = props.putObject("default_generation_settings").put("n_ctx", engine.contextLength);
        defaults.putObject("params").put("n_predict", -1).put("temperature", 0.8).put("top_k", 200).put("top_p", 1.0).put("min_p", 0.0)
                .put("repeat_penalty", 1.0).put("repeat_last_n", 64).put("frequency_penalty", 0.0).put("presence_penalty", 0.0);
        props.put("total_slots", engine.slots()).put("model_alias", modelName).put("model_path", ckpt.path().toString());
        props.putObject("modalities").put("vision", false).put("video", false).put("audio", false);
        props.put("endpoint_slots", true).put("endpoint_metrics", true);
        ChatTemplate jinja = template;
        props.put("chat_template", jinja != null ? jinja.source() : ckpt.chatTemplate() != null ? ckpt.chatTemplate() : "")
                .put("chat_format", jinja != null ? "jinja" : chatFormat.option());
        props.put("bos_token", ckpt.tokenizer().piece(ckpt.bos())).put("eos_token", ckpt.tokenizer().piece(ckpt.eos()[0]));
        return props;
    }

    /**
     * llama.cpp's {@code GET /slots}: each slot's id, context, whether it speculates and generates, the tokens its cache
     * holds ({@code n_cached}; no prompt text); with {@code ?fail_on_no_slot=1}, 503 where every slot generates.
     */
    private void slots(HttpExchange exchange) throws IOException {
        List<Engine.SlotState> states = engine.slotStates();
        String query = exchange.getRequestURI().getQuery();
        if (query != null && query.contains("fail_on_no_slot=1") && states.stream().allMatch(Engine.SlotState::processing)) {
            throw new HttpError(503, "unavailable_error", "no slot available");
        }
        var list = JSON.createArrayNode();
        for (int i = 0; i < states.size(); i++) {
            Engine.SlotState s = states.get(i);
            list.addObject().put("id", i).put("n_ctx", engine.contextLength).put("speculative", s.speculative()).put("is_processing", s.processing())
                    .put("n_cached", s.cached());
        }
        send(exchange, 200, list);
    }

    /** The outcome of a slot action, its failure as the error it was (an HttpError) or a 500. */
    private <T> T await(java.util.concurrent.CompletableFuture<T> future) {
        try {
            return future.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HttpError(503, "server_error", "the server is stopping");
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof HttpError h) throw h;
            throw new HttpError(500, "server_error", failure(cause));
        }
    }

    /** Refuses (400) token ids past the model's vocabulary, the message starting with {@code field} (or nothing). */
    static void checkVocabulary(Checkpoint ckpt, int[] ids, String field) {
        checkVocabulary(ckpt.model().config.vocabSize(), ids, field);
    }

    /** Refuses (400) token ids of {@code vocab} or more, the message starting with {@code field} (or nothing). */
    static void checkVocabulary(int vocab, int[] ids, String field) {
        for (int id : ids) if (id >= vocab) throw HttpError.invalid(field + "token " + id + " is not in the vocabulary (ids 0.." + (vocab - 1) + ")");
    }

    /** What went wrong, in a line: a failure of the model's (logits not finite) or of the server's. */
    static String failure(Throwable e) {
        return e instanceof StackOverflowError ? "input nested too deeply to take (a stack overflow)"
                : e.getClass().getSimpleName() + (e.getMessage() != null ? ": " + e.getMessage() : "");
    }

    static void allow(HttpExchange exchange, String method) {
        if (!exchange.getRequestMethod().equals(method)) {
            exchange.getResponseHeaders().set("Allow", method);
            throw new HttpError(405, "invalid_request_error", exchange.getRequestURI().getPath() + " takes " + method + ", not " + exchange.getRequestMethod());
        }
    }

    /**
     * The endpoints a generation answers: OpenAI's completions, chats and responses, Anthropic's messages, llama.cpp's
     * completion and infill.
     */
    enum Endpoint {
        COMPLETIONS("/v1/completions"), CHAT("/v1/chat/completions"), RESPONSES("/v1/responses"), MESSAGES("/v1/messages"),
        COUNT_TOKENS("/v1/messages/count_tokens"), LLAMA_COMPLETION("/completion", "/completions"), INFILL("/infill");

        /** The endpoints by their paths (each a POST). */
        static final java.util.Map<String, Endpoint> AT = new java.util.HashMap<>();

        static {
            for (Endpoint e : values()) for (String path : e.paths) AT.put(path, e);
        }

        private final String[] paths;

        Endpoint(String... paths) {
            this.paths = paths;
        }

        /** Whether the request is a chat (a Responses or Messages API request is made one). */
        boolean chat() {
            return this == CHAT || this == RESPONSES || this == MESSAGES || this == COUNT_TOKENS;
        }

        /** Whether the request and its response are llama.cpp's own shapes. */
        boolean llama() {
            return this == LLAMA_COMPLETION || this == INFILL;
        }
    }

    /**
     * A completion: the request checked here (an {@code endpoint}'s shape made a completion's or a chat's), then its
     * choices' generations queued for the engine, whose thread hands what they make to this one, which writes it.
     * Returns the log line's summary.
     */
    private String complete(HttpExchange exchange, Endpoint endpoint) throws IOException {
        boolean chat = endpoint.chat(), llama = endpoint.llama();
        CompletionRequest request;
        ChatTemplate framing;
        boolean split;
        ChatShape api = null;
        String id = (chat ? "chatcmpl-" : "cmpl-") + Long.toHexString(created) + "-" + requests.incrementAndGet();
        try {
            JsonNode body = body(exchange);
            if (endpoint == Endpoint.RESPONSES) {
                api = new ResponsesApi(id.substring("chatcmpl-".length()), modelName, body);
                body = ResponsesApi.chatRequest(body);
            } else if (endpoint == Endpoint.MESSAGES || endpoint == Endpoint.COUNT_TOKENS) {
                api = new AnthropicApi(id.substring("chatcmpl-".length()), modelName);
                body = AnthropicApi.chatRequest(body);
            }
            if (llama) checkLlamaCompletion(body);
            if (endpoint == Endpoint.INFILL) infillPrompt(body);
            split = chat && reasoningFormat(body);
            framing = chat ? templateFor(body) : null;
            // ChatML's models (Qwen2.5, Qwen3, Hermes) call tools in their own <tool_call> syntax
            Tools.Syntax syntax = framing != null ? Tools.Syntax.of(framing.source()) : chatFormat == ChatFormat.CHATML ? Tools.Syntax.HERMES : Tools.Syntax.GENERIC;
            request = CompletionRequest.parse(body, chat, syntax, framing != null);
        } catch (CompletionRequest.Invalid | IllegalArgumentException e) {
            throw HttpError.invalid(e.getMessage());
        } catch (StackOverflowError e) {
            throw HttpError.invalid("the request is nested too deeply to take");
        }
        // the request's choices, each a job of its own, their output through one outbox
        LinkedBlockingQueue<Object> outbox = new LinkedBlockingQueue<>();
        List<Job> jobs = new ArrayList<>();
        long chars = (request.prompt() != null ? request.prompt().length() : 0) + (request.system() != null ? request.system().length() : 0)
                + request.messages().stream().mapToLong(String::length).sum();
        if (chars > CHARS_PER_TOKEN_AT_MOST * engine.contextLength) {
            // a text far past the context would only be tokenized to be refused (SentencePiece takes about 4 s a MB here)
            throw HttpError.invalid("the prompt's text is " + chars + " characters, more than a context of " + engine.contextLength + " tokens can hold");
        }
        int[] tokens;
        boolean opensThinking = chatFormat.opensThinking();
        CompletionRequest.TemplateInput input = request.templateInput();
        if (input != null) {
            String prompt = rendered(framing, input);
            if (prompt.length() > CHARS_PER_TOKEN_AT_MOST * engine.contextLength) {
                throw HttpError.invalid("the prompt's text is " + prompt.length() + " characters, more than a context of " + engine.contextLength + " tokens can hold");
            }
            // a template that opens the reply's thinking (DeepSeek-R1's, Qwen3's with thinking on in some versions)
            opensThinking = prompt.stripTrailing().endsWith("<think>");
            tokens = ChatTemplate.tokens(ckpt.tokenizer(), prompt, ckpt.bos(), ckpt.addBos());
        } else {
            tokens = Job.tokens(ckpt, request, chat, chatFormat);
        }
        if (endpoint == Endpoint.COUNT_TOKENS) { // Anthropic's count_tokens: the prompt's size, nothing generated
            send(exchange, 200, JSON.createObjectNode().put("input_tokens", tokens.length));
            return tokens.length + " tokens counted";
        }
        checkVocabulary(ckpt, request.bias().tokens(), "logit_bias: ");
        for (int i = 0; i < request.n(); i++) jobs.add(new Job(ckpt, request, tokens, new Responses(id, chat, modelName, i, llama), outbox, split, opensThinking));
        int max = maxRequests;
        if (max > 0 && jobs.size() > max) throw HttpError.invalid("'n' is " + jobs.size() + ", more than the " + max + " requests this server takes at once (serve --max-requests)");
        int taken = inFlight.addAndGet(jobs.size());
        if (max > 0 && taken > max) {
            inFlight.addAndGet(-jobs.size());
            refused.increment();
            exchange.getResponseHeaders().set("Retry-After", "1");
            throw new HttpError(503, "server_error", "the server is busy: " + (taken - jobs.size()) + " requests in flight, at most " + max + " (serve --max-requests); try again");
        }
        try {
            jobs.forEach(engine::submit);
            return completion(exchange, request, chat, id, jobs, outbox, api);
        } finally {
            inFlight.addAndGet(-jobs.size());
        }
    }

    /**
     * The rest of {@link #complete}: what the engine's thread hands over for {@code jobs}, written to the client (in
     * {@code api}'s shape where it is not null).
     */
    private String completion(HttpExchange exchange, CompletionRequest request, boolean chat, String id, List<Job> jobs, LinkedBlockingQueue<Object> outbox,
                              ChatShape api) throws IOException {
        // what the engine's thread hands over, written here: a stream's start and events, then the choices' ends
        Events events = null;
        Job.Completion[] done = new Job.Completion[jobs.size()];
        int ended = 0, dropped = 0;
        boolean gone = false;
        ClientWatch watch = ClientWatch.of(exchange);
        try {
            while (ended + dropped < done.length) {
                // until a stream begins, nothing is written that would fail: the client's side is looked at instead
                Object item = events == null && !gone ? outbox.poll(WATCH_MILLIS, TimeUnit.MILLISECONDS) : outbox.take();
                if (item == null) {
                    if (watch.gone()) {
                        gone = true;
                        jobs.forEach(j -> j.gone = true);
                    }
                } else if (item == Job.STREAM) {
                    events = new Events(exchange);
                    if (api != null) events.send(api.start(jobs.getFirst().promptLength()));
                } else if (item instanceof JsonNode event) {
                    if (!gone) {
                        try {
                            if (api != null) events.send(api.chunk(event));
                            else events.send(event);
                        } catch (IOException e) {
                            gone = true; // the generations end at their next token; their ends are still taken here
                            jobs.forEach(j -> j.gone = true);
                        }
                    }
                } else if (item instanceof Job.Completion completion) {
                    done[ended++] = completion;
                    count(completion);
                } else if (item == Job.DROPPED) {
                    dropped++; // a choice still waiting when its client went: the engine dropped it unstarted
                } else if (item instanceof HttpError error) {
                    if (events == null) throw error;
                    if (!gone) events.error(error);
                    return error.getMessage();
                }
            }
        } catch (InterruptedException e) {
            throw new HttpError(503, "server_error", "the server is stopping");
        } finally {
            // a request that ends otherwise than with all its choices (an error, a client gone before its stream began)
            // ends the generations still running for it at their next token
            jobs.forEach(j -> j.gone = true);
        }
        if (gone) { // nothing more to send; what was generated for nobody, for the log
            return ended == 0 ? "the client went away before its generation began" : Arrays.stream(done, 0, ended).map(Job.Completion::summary).collect(Collectors.joining("; "));
        }
        ObjectNode usage = done[0].usage().deepCopy();
        for (int i = 1; i < done.length; i++) {
            for (String field : new String[]{"completion_tokens", "total_tokens"}) usage.put(field, usage.path(field).asInt() + done[i].usage().path(field).asInt());
        }
        if (events != null && api != null) {
            events.send(api.finish(usage)); // the Responses API's stream ends with its response.completed
        } else if (events != null) {
            if (request.includeUsage()) events.send(new Responses(id, chat, modelName, 0, false).usage(usage));
            if (!jobs.getFirst().llama()) events.done(); // llama.cpp's own stream ends with its last event
        } else if (api != null) {
            if (watch.tookBytes()) exchange.getResponseHeaders().set("Connection", "close");
            send(exchange, 200, api.whole(done[0].response(), usage));
        } else if (jobs.getFirst().llama()) {
            if (watch.tookBytes()) exchange.getResponseHeaders().set("Connection", "close");
            send(exchange, 200, done[0].response());
        } else {
            // one response of the choices, in their order
            List<JsonNode> each = Arrays.stream(done).map(c -> c.response().path("choices").get(0)).sorted(Comparator.comparingInt(c -> c.path("index").asInt())).toList();
            ObjectNode response = done[0].response();
            response.putArray("choices").addAll(each);
            response.set("usage", usage);
            if (watch.tookBytes()) exchange.getResponseHeaders().set("Connection", "close");
            send(exchange, 200, response);
        }
        return Arrays.stream(done).map(Job.Completion::summary).collect(Collectors.joining("; "));
    }

    /**
     * llama.cpp's {@code /infill}: {@code input_prefix} and {@code input_suffix} (strings), {@code input_extra} (other
     * files, {@code [{"filename", "text"}]}) and {@code prompt} (text to go on from, after the prefix) as the model's
     * fill-in-the-middle prompt ({@link Infill}), with llama.cpp's server's defaults for its cuts (a batch of 2048
     * tokens, no token limit); the body's {@code prompt} is set to it as token ids, so that it parses as a
     * {@code /completion}'s.
     */
    private void infillPrompt(JsonNode body) {
        if (!(body instanceof ObjectNode request)) return; // parse says so
        Infill fim = infill;
        if (fim == null) throw new CompletionRequest.Invalid("this model has no fill-in-the-middle tokens (<PRE>/<SUF>/<MID> or <|fim_prefix|>/...): /infill is for code models such as CodeLlama and Qwen2.5-Coder");
        for (String field : new String[]{"input_prefix", "input_suffix"}) {
            if (!request.path(field).isTextual()) throw new CompletionRequest.Invalid("'" + field + "' is required, a string");
        }
        List<Infill.Extra> extra = new ArrayList<>();
        JsonNode chunks = request.get("input_extra");
        if (chunks != null && !chunks.isNull()) {
            if (!chunks.isArray()) throw new CompletionRequest.Invalid("'input_extra' must be an array of {\"filename\": string, \"text\": string}");
            for (JsonNode c : chunks) {
                if (!c.path("text").isTextual()) throw new CompletionRequest.Invalid("an 'input_extra' chunk must have a \"text\" string");
                if (c.has("filename") && !c.get("filename").isTextual()) throw new CompletionRequest.Invalid("an 'input_extra' chunk's \"filename\" must be a string");
                extra.add(new Infill.Extra(c.path("filename").asText("tmp"), c.get("text").asText()));
            }
        }
        JsonNode text = request.get("prompt");
        if (text != null && !text.isNull() && !text.isTextual()) throw new CompletionRequest.Invalid("'prompt' must be a string on /infill");
        int[] prompt = text == null || text.isNull() ? new int[0] : ckpt.tokenizer().encodeWithSpecials(text.asText());
        int[] ids = fim.prompt(ckpt.tokenizer(), request.get("input_prefix").asText(), request.get("input_suffix").asText(), extra, prompt,
                INFILL_BATCH, -1, engine.contextLength, ckpt.bos(), ckpt.addBos());
        var list = request.putArray("prompt");
        for (int id : ids) list.add(id);
    }

    /** llama.cpp's server's default batch, which its {@code /infill} cuts the prefix and suffix by. */
    private static final int INFILL_BATCH = 2048;

    /**
     * llama.cpp's {@code /completion} takes a completion's fields (its own names among them: {@code n_predict},
     * {@code top_k}, ...) but one choice, and its log-probabilities as {@code n_probs} (made OpenAI's {@code logprobs}
     * here, which its responses give as {@code completion_probabilities}).
     */
    private static void checkLlamaCompletion(JsonNode body) {
        if (!(body instanceof ObjectNode request)) return; // parse says so
        JsonNode logprobs = request.remove("logprobs");
        if (logprobs != null && !logprobs.isNull() && !(logprobs.isNumber() && logprobs.asInt() == 0)) {
            throw new CompletionRequest.Invalid("'logprobs' is OpenAI's field (/v1/completions); /completion takes llama.cpp's 'n_probs'");
        }
        if (request.path("post_sampling_probs").asBoolean(false)) throw new CompletionRequest.Invalid("'post_sampling_probs' is not supported: 'n_probs' gives the probabilities before sampling");
        // llama.cpp's n_probs: each token's log-probability and the n most likely tokens', as completion_probabilities
        JsonNode n = request.remove("n_probs");
        if (n != null && !n.isNull()) {
            if (!n.isIntegralNumber() || n.asInt() < 0 || n.asInt() > CompletionRequest.MAX_TOP_LOGPROBS) {
                throw new CompletionRequest.Invalid("'n_probs' must be an integer from 0 to " + CompletionRequest.MAX_TOP_LOGPROBS + ", got " + n);
            }
            if (n.asInt() > 0) request.put("logprobs", n.asInt());
        }
        n = request.get("n");
        if (n != null && !n.isNull() && !(n.isIntegralNumber() && n.asInt() == 1)) throw new CompletionRequest.Invalid("'n' must be 1 on /completion (/v1/completions makes several choices)");
    }

    /** A stream of server-sent events: {@code data: JSON}, a blank line after each, {@code data: [DONE]} at the end. */
    static final class Events {
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

        /** Named events ({@code event: TYPE}), as the Responses API's stream sends them. */
        void send(List<ChatShape.Event> named) throws IOException {
            for (ChatShape.Event e : named) write("event: " + e.type() + "\ndata: " + JSON.writeValueAsString(e.data()) + "\n\n");
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

    static JsonNode body(HttpExchange exchange) throws IOException {
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

    static void send(HttpExchange exchange, int status, JsonNode body) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(body);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        exchange.getResponseBody().write(bytes);
    }

    /**
     * An error response, where its status can still be sent (not after a stream's began); in Anthropic's shape
     * ({@code {"type": "error", "error": {"type", "message"}}}) on its Messages API's paths, as its clients read them.
     */
    private static void sendError(HttpExchange exchange, HttpError e) {
        if (exchange.getResponseCode() != -1) return;
        try {
            if (exchange.getRequestURI().getPath().startsWith("/v1/messages")) {
                ObjectNode body = JSON.createObjectNode().put("type", "error");
                body.putObject("error").put("type", e.type).put("message", e.getMessage());
                send(exchange, e.status, body);
                return;
            }
            send(exchange, e.status, errorBody(e));
        } catch (IOException ignored) {
            // the client went away: nobody to tell
        }
    }
}
