package gptfast4j.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import gptfast4j.model.Encoder;
import gptfast4j.model.Pooling;

import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The HTTP server of an encoder (BERT's, {@link Encoder}), which makes embeddings and rerank scores but no text:
 * {@code POST /v1/embeddings} (and llama.cpp's {@code /embedding}), {@code POST /v1/rerank} (its aliases), llama.cpp's
 * {@code POST /tokenize}, {@code GET /v1/models} and {@code /health}, each request as {@link Server} takes it (API key,
 * CORS, errors, a log line); the text endpoints answer 501. One thread runs the encoder's passes: the requests waiting
 * when a pass starts go into it together, up to a pass's {@link Encoder#BATCH_TOKENS} tokens (a request alone past
 * that in passes of its own), so that concurrent small requests share each weight's reads.
 */
public final class EncoderServer implements AutoCloseable {
    private final Encoder encoder;
    private final EmbeddingModel model;
    private final String modelName;
    private final byte[] apiKey;
    private volatile String corsOrigin;
    private volatile Pooling pooling;
    private final PrintStream log;
    private final HttpServer http;
    private final ExecutorService handlers = Executors.newVirtualThreadPerTaskExecutor();
    private final long created = System.currentTimeMillis() / 1000;
    /** The requests waiting for a pass, in arrival order; only {@link #passes} takes them. */
    private final java.util.concurrent.LinkedBlockingDeque<Pending> waiting = new java.util.concurrent.LinkedBlockingDeque<>();
    private final Thread passes;

    /** A request's texts, to be pooled by {@code pooling}; {@code result} their pooled states, not yet normalized. */
    private record Pending(List<int[]> texts, Pooling pooling, java.util.concurrent.CompletableFuture<List<float[]>> result) {
        int tokens() {
            return texts.stream().mapToInt(t -> t.length).sum();
        }
    }

    /** Listens on {@code address} (port 0: any free port, {@link #port}) and serves {@code encoder} to clients that give {@code apiKey} (null: any). */
    public EncoderServer(Encoder encoder, InetSocketAddress address, String apiKey, PrintStream log) throws IOException {
        this.encoder = encoder;
        this.model = EmbeddingModel.of(encoder);
        this.modelName = encoder.path().getFileName().toString();
        this.apiKey = apiKey != null ? ("Bearer " + apiKey).getBytes(StandardCharsets.UTF_8) : null;
        this.log = log;
        this.pooling = Pooling.of(encoder.metadata());
        this.http = HttpServer.create(address, 64);
        http.createContext("/", exchange -> Server.handle(exchange, corsOrigin, this.apiKey, log, this::route));
        http.setExecutor(handlers);
        passes = Thread.ofPlatform().daemon().name("encoder-passes").start(this::runPasses);
        http.start();
    }

    /** The passes' thread: each pass the first waiting request and those after it of the same pooling that fit. */
    private void runPasses() {
        try {
            while (true) {
                Pending first = waiting.take();
                List<Pending> batch = new java.util.ArrayList<>(List.of(first));
                int tokens = first.tokens();
                // only this thread takes from the head, so the one peeked is the one polled
                for (Pending next; (next = waiting.peekFirst()) != null && next.pooling() == first.pooling() && tokens + next.tokens() <= Encoder.BATCH_TOKENS; ) {
                    batch.add(waiting.pollFirst());
                    tokens += next.tokens();
                }
                List<int[]> texts = new java.util.ArrayList<>();
                for (Pending p : batch) texts.addAll(p.texts());
                try {
                    List<float[]> pooled = first.pooling().embed(encoder, texts, -1);
                    int at = 0;
                    for (Pending p : batch) {
                        p.result().complete(pooled.subList(at, at + p.texts().size()));
                        at += p.texts().size();
                    }
                } catch (RuntimeException | Error e) {
                    for (Pending p : batch) p.result().completeExceptionally(e);
                }
            }
        } catch (InterruptedException e) {
            // closed
        }
    }

    /** The pooled (not normalized) states of {@code texts}, from a pass that may hold other requests' texts too. */
    private List<float[]> pooled(List<int[]> texts, Pooling pooling) {
        Pending p = new Pending(texts, pooling, new java.util.concurrent.CompletableFuture<>());
        waiting.add(p);
        try {
            return p.result().get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Server.HttpError(503, "server_error", "the server is stopping");
        } catch (java.util.concurrent.ExecutionException e) {
            throw new Server.HttpError(500, "server_error", Server.failure(e.getCause()));
        }
    }

    public int port() {
        return http.getAddress().getPort();
    }

    /** As {@link Server#allowOrigin}. */
    public void allowOrigin(String origin) {
        this.corsOrigin = origin;
    }

    /** Makes {@code /v1/embeddings} pool with {@code pooling} (at first: the file's, {@link Pooling#of}); rank needs a reranker's head. */
    public void poolWith(Pooling pooling) {
        if (pooling == Pooling.RANK && !encoder.ranks()) throw new IllegalArgumentException("rank pooling needs a reranker: this model has no classifier head (cls.output.weight)");
        this.pooling = pooling;
    }

    @Override
    public void close() {
        http.stop(0);
        passes.interrupt();
        handlers.shutdownNow();
    }

    private String route(HttpExchange exchange, String path) throws IOException {
        switch (path) {
            case "/health" -> {
                Server.allow(exchange, "GET");
                Server.send(exchange, 200, Server.JSON.createObjectNode().put("status", "ok"));
            }
            case "/v1/models" -> {
                Server.allow(exchange, "GET");
                ObjectNode list = Server.JSON.createObjectNode().put("object", "list");
                list.putArray("data").addObject().put("id", modelName).put("object", "model").put("created", created).put("owned_by", "gptfast4j");
                Server.send(exchange, 200, list);
            }
            case "/tokenize" -> {
                Server.allow(exchange, "POST");
                Server.tokenize(exchange, encoder::tokens, encoder.tokenizer()::encodeWithSpecials);
            }
            case "/v1/embeddings", "/embeddings", "/embedding" -> {
                Server.allow(exchange, "POST");
                return embeddings(exchange, !path.equals("/v1/embeddings"));
            }
            case "/v1/rerank", "/rerank", "/v1/reranking", "/reranking" -> {
                Server.allow(exchange, "POST");
                return rerank(exchange);
            }
            default -> {
                if (Server.Endpoint.AT.containsKey(path) || path.startsWith("/v1/responses") || path.startsWith("/v1/messages")) {
                    throw new Server.HttpError(501, "not_supported_error", modelName + " is an encoder (" + encoder.config.architecture()
                            + "), which makes embeddings and rerank scores, not text: POST /v1/embeddings or /v1/rerank");
                }
                throw new Server.HttpError(404, "not_found_error", "no endpoint " + path + "; an encoder's server has POST /v1/embeddings, POST /embedding,"
                        + " POST /v1/rerank, POST /tokenize, GET /v1/models and GET /health");
            }
        }
        return null;
    }

    private String embeddings(HttpExchange exchange, boolean llama) throws IOException {
        Pooling how = pooling;
        if (how == Pooling.RANK) {
            throw new Server.HttpError(501, "not_supported_error", "this server pools by rank (a reranker): its scores are at /v1/rerank; serve --pooling mean, cls or last for embeddings");
        }
        Embeddings request = Embeddings.parse(Server.body(exchange), model, encoder.config.contextLength(), llama);
        long t0 = System.nanoTime();
        List<float[]> embeddings = pooled(request.inputs(), how).stream().map(v -> Pooling.normalize(v, request.normalize())).toList();
        Server.send(exchange, 200, request.llama() ? request.llamaResponse(embeddings) : request.response(embeddings, modelName));
        return String.format("%d embedding%s (%s pooling) of %d tokens in %.2f s", embeddings.size(), embeddings.size() == 1 ? "" : "s", how.option(),
                request.tokens(), (System.nanoTime() - t0) / 1e9);
    }

    private String rerank(HttpExchange exchange) throws IOException {
        if (pooling != Pooling.RANK || !encoder.ranks()) {
            throw new Server.HttpError(501, "not_supported_error", "this server pools with " + pooling.option() + ": reranking needs a reranker (a file whose pooling is rank,"
                    + " with a classifier head) or serve --pooling rank");
        }
        Rerank request = Rerank.parse(Server.body(exchange), model, encoder.config.contextLength());
        long t0 = System.nanoTime();
        float[] scores = new float[request.prompts().size()];
        List<float[]> ranked = pooled(request.prompts(), Pooling.RANK);
        for (int i = 0; i < scores.length; i++) scores[i] = ranked.get(i)[0];
        Server.send(exchange, 200, request.response(scores, modelName));
        return String.format("%d document%s reranked, %d tokens in %.2f s", scores.length, scores.length == 1 ? "" : "s", request.tokens(), (System.nanoTime() - t0) / 1e9);
    }
}
