package gptfast4j.cli;

import gptfast4j.generate.Generator;
import gptfast4j.model.ChatFormat;
import gptfast4j.model.ChatTemplate;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.model.Llama;
import gptfast4j.model.Pooling;
import gptfast4j.server.Engine;
import gptfast4j.server.Server;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Serve the model over HTTP with OpenAI's API: POST /v1/completions and /v1/chat/completions (\"stream\": true for server-sent events), GET /v1/models and /health.",
                "One generation runs at a time (--parallel N: N at once); requests wait in arrival order. Request lines go to stderr."})
final class ServeCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Mixin
    AdapterOptions adapterOptions;

    @Mixin
    WorkersOption workers;

    @Mixin
    KvCacheOption kvCache;

    @Option(names = "--host", paramLabel = "HOST", description = "Address to listen on; 0.0.0.0 for every interface (default: ${DEFAULT-VALUE}, this machine only).")
    String host = "127.0.0.1";

    @Option(names = "--port", paramLabel = "N", description = "Port to listen on; 0 for any free one, printed at start (default: ${DEFAULT-VALUE}).")
    int port = 8080;

    @Option(names = "--api-key", paramLabel = "KEY", description = "Answer only requests that bear this key (Authorization: Bearer KEY), as OpenAI's clients send it; /health is open (default: the GPTFAST_API_KEY environment variable, else none).")
    String apiKey = System.getenv("GPTFAST_API_KEY");

    @Option(names = "--cors", paramLabel = "ORIGIN", description = "Let web pages of ORIGIN (such as http://localhost:3000, or * for any) call the server from a browser: CORS headers, and preflight requests answered (default: none).")
    String corsOrigin;

    @Option(names = {"-c", "--context-length"}, paramLabel = "N", description = "Context (KV cache) length, prompt and reply together (default: the model's, at most 4096).")
    Integer contextLength;

    @Option(names = {"-np", "--parallel"}, paramLabel = "N", description = "Requests generated at once, 1 to 32, each with a KV cache of --context-length positions: a step runs one token of each, eight to a pass over the weights (continuous batching; without speculation). Default: ${DEFAULT-VALUE}, one at a time.")
    int parallel = 1;

    @Option(names = "--max-requests", paramLabel = "N", description = "Requests in flight at once, waiting or generating (one of n choices counting n); past it a request is refused with 503 and Retry-After rather than queued (default: no limit).")
    int maxRequests;

    @Mixin
    SpeculationOptions speculationOptions;

    @Option(names = "--lora-init-without-apply", description = "Load the --lora adapters at scale 0, to be set by POST /lora-adapters or a request's lora, as llama.cpp's.")
    boolean loraInitWithoutApply;

    @Option(names = "--slot-save-path", paramLabel = "FOLDER", description = "Keep slots' KV caches in files of FOLDER on request, as llama.cpp's: POST /slots/ID?action=save or restore with {\"filename\": NAME} (generate --prompt-cache's files).")
    Path slotSavePath;

    @Option(names = "--chat-format", paramLabel = "NAME", description = "A fixed chat format for chats, instead of rendering the file's chat template (or where it has none): llama2, mistral, zephyr, llama3, chatml, deepseek2, deepseek3, gemma, phi3, phi4, command-r, llama4, granite, mistral-v3, ... as generate's.")
    String chatFormat;

    @Mixin
    ChatTemplateOptions templateOptions;

    @Option(names = "--reasoning-format", paramLabel = "none|deepseek|auto", description = "A chat reply's opening <think>...</think> block (DeepSeek-R1's): "
            + "deepseek gives it apart as reasoning_content, none leaves it in the content, auto (the default) as deepseek where the chat format is deepseek3 or the chat template writes <think> (Qwen3's), "
            + "or the vocabulary is gpt-oss's harmony (its analysis channel the reasoning_content), as llama.cpp's flag.")
    String reasoningFormat = "auto";

    @Option(names = "--pooling", paramLabel = "mean|cls|last|rank", description = "How /v1/embeddings makes a text's embedding of its tokens' states: their mean, the first token's, "
            + "or the last token's (embedding models made from decoders, such as e5-mistral); rank: a reranker's scores, for /v1/rerank; default: the file's pooling_type, else mean.")
    String pooling;

    @Override
    public Integer call() throws IOException {
        long t0 = System.nanoTime();
        if (port < 0 || port > 65535) throw new IllegalArgumentException("--port must be in 0..65535, got " + port);
        if (contextLength != null && contextLength < 1) throw new IllegalArgumentException("--context-length must be at least 1");
        if (apiKey != null && apiKey.isBlank()) throw new IllegalArgumentException("--api-key must not be empty");
        if (corsOrigin != null && !corsOrigin.equals("*") && !corsOrigin.matches("https?://[^/\\s]+")) {
            throw new IllegalArgumentException("--cors takes an origin such as http://localhost:3000 (scheme, host and port, no path) or *, got '" + corsOrigin + "'");
        }
        speculationOptions.check();
        if (parallel < 1 || parallel > Engine.MAX_PARALLEL) throw new IllegalArgumentException("--parallel must be in 1.." + Engine.MAX_PARALLEL + ", got " + parallel);
        if (maxRequests < 0) throw new IllegalArgumentException("--max-requests must be 1 or more, or 0 for no limit; got " + maxRequests);
        if (parallel > 1 && speculationOptions.asked()) throw new IllegalArgumentException("--parallel above 1 runs without speculation; give one of them");
        ChatFormat formatOverride = templateOptions.format(chatFormat);
        Pooling poolingOverride = pooling != null ? Pooling.parse(pooling, "--pooling") : null;
        if (!java.util.List.of("none", "deepseek", "auto").contains(reasoningFormat)) throw new IllegalArgumentException("--reasoning-format must be none, deepseek or auto; got '" + reasoningFormat + "'");
        if (slotSavePath != null && !java.nio.file.Files.isDirectory(slotSavePath)) throw new IllegalArgumentException("--slot-save-path " + slotSavePath + " is not a folder");
        if (slotSavePath != null && workers.workers != null) throw new IllegalArgumentException("--slot-save-path cannot be used with --workers (the KV cache is spread over the processes)");
        KvCache.Type kvType = kvCache.type();
        ChatTemplate templateFile = templateOptions.fromFile();
        InetSocketAddress address;
        try {
            address = new InetSocketAddress(InetAddress.getByName(host), port);
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("--host " + host + " is not an address of this machine's (" + e.getMessage() + ")");
        }
        gptfast4j.model.Encoder encoder = common.encoder(workers);
        if (encoder != null) adapterOptions.apply(encoder);
        if (encoder != null) return serve(encoder, address, poolingOverride, t0);
        Checkpoint ckpt = common.load(workers);
        adapterOptions.apply(ckpt);
        if (loraInitWithoutApply) {
            if (ckpt.model().lora() == null) throw new IllegalArgumentException("--lora-init-without-apply is for --lora or --lora-scaled");
            ckpt.model().lora().setWeights(new float[ckpt.model().lora().files().size()]);
        }
        Llama model = ckpt.model();
        if (contextLength != null) model.checkContext(contextLength);
        int context = contextLength != null ? contextLength : Math.min(model.config.contextLength(), 4096);
        ChatFormat format = formatOverride != null ? formatOverride : ckpt.chatFormat();
        format.checkTokenizer(ckpt.tokenizer());
        ChatTemplate template = templateOptions.template(templateFile, ckpt, formatOverride != null);
        String cacheIdentity = slotSavePath != null ? CommonOptions.cacheIdentity(model, common.quantize, kvType) : null; // before the decode layouts
        Speculation speculation = null;
        Engine engine;
        if (parallel > 1) {
            engine = Engine.batched(ckpt, parallel, context, kvType);
        } else {
            Llama.State state = model.newState(context, GenerateCommand.PREFILL_BATCH, speculationOptions.verified(), kvType);
            speculation = speculationOptions.create(ckpt, state, common.tokenizer, ckpt.eos());
            engine = Engine.sequential(state, speculation != null ? speculation.generator() : new Generator(model, state, ckpt.eos()));
        }
        // the decode layouts' copy and the kernels' compilation before the first request, not during it
        model.startDecoding();
        if (speculation != null) speculation.drafter().startDecoding();
        GenerateCommand.warmUp(model, kvType, () -> false);
        Server server;
        try {
            server = new Server(ckpt, engine, format, address, apiKey, System.err);
        } catch (java.net.BindException e) {
            engine.close();
            throw new IllegalArgumentException("cannot listen on " + host + ":" + port + ": " + e.getMessage());
        }
        if (template != null) server.useTemplate(template);
        if (corsOrigin != null) server.allowOrigin(corsOrigin);
        if (slotSavePath != null) server.saveSlotsIn(slotSavePath, cacheIdentity);
        if (poolingOverride != null) server.poolWith(poolingOverride.checkedFor(ckpt.model()));
        if (!reasoningFormat.equals("auto")) server.splitThinking(reasoningFormat.equals("deepseek"));
        server.limitRequests(maxRequests);
        System.err.printf("Ready in %.1f s: http://%s:%d/v1 serves %s (context %d, chat format %s%s). Ctrl-C stops.%n", (System.nanoTime() - t0) / 1e9,
                address.getAddress().getHostAddress(), server.port(), ckpt.path().getFileName(), context, template != null ? templateOptions.describe() : format.option(),
                speculation != null ? ", speculation: " + speculation.description() : parallel > 1 ? ", " + parallel + " requests at once" : "");
        if (apiKey == null && !address.getAddress().isLoopbackAddress()) {
            System.err.println("note: listening beyond this machine without --api-key: anyone who can reach the port can use the model");
        }
        try {
            Thread.currentThread().join(); // the server's threads answer; this one waits for the process's end
        } catch (InterruptedException e) {
            server.close();
        }
        return 0;
    }

    /** An encoder's server (BERT's: embeddings and rerank scores, no text), {@link gptfast4j.server.EncoderServer}. */
    private int serve(gptfast4j.model.Encoder encoder, InetSocketAddress address, Pooling poolingOverride, long t0) throws IOException {
        if (speculationOptions.asked() || parallel > 1 || slotSavePath != null || contextLength != null) {
            throw new IllegalArgumentException("an encoder's server (" + encoder.config.architecture() + ") makes embeddings, not text: --parallel, --context-length,"
                    + " --slot-save-path and speculation are not for it");
        }
        gptfast4j.server.EncoderServer server;
        try {
            server = new gptfast4j.server.EncoderServer(encoder, address, apiKey, System.err);
        } catch (java.net.BindException e) {
            throw new IllegalArgumentException("cannot listen on " + host + ":" + port + ": " + e.getMessage());
        }
        if (corsOrigin != null) server.allowOrigin(corsOrigin);
        if (poolingOverride != null) server.poolWith(poolingOverride);
        Pooling pooled = poolingOverride != null ? poolingOverride : Pooling.of(encoder.metadata());
        System.err.printf("Ready in %.1f s: http://%s:%d/v1 serves %s, an encoder (%s pooling, context %d): %s. Ctrl-C stops.%n", (System.nanoTime() - t0) / 1e9,
                address.getAddress().getHostAddress(), server.port(), encoder.path().getFileName(), pooled.option(), encoder.config.contextLength(),
                pooled == Pooling.RANK ? "POST /v1/rerank" : "POST /v1/embeddings");
        if (apiKey == null && !address.getAddress().isLoopbackAddress()) {
            System.err.println("note: listening beyond this machine without --api-key: anyone who can reach the port can use the model");
        }
        try {
            Thread.currentThread().join();
        } catch (InterruptedException e) {
            server.close();
        }
        return 0;
    }
}
