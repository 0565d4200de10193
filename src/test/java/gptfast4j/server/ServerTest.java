package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptfast4j.Shared;
import gptfast4j.model.ChatFormat;
import gptfast4j.model.Checkpoint;
import gptfast4j.generate.DraftModel;
import gptfast4j.generate.Drafter;
import gptfast4j.generate.Generation;
import gptfast4j.generate.Generator;
import gptfast4j.generate.PromptLookup;
import gptfast4j.generate.Sampler;
import gptfast4j.generate.SpeculativeGenerator;
import gptfast4j.model.KvCache;
import gptfast4j.model.Llama;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntPredicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The OpenAI-compatible server over HTTP, on stories260K: greedy completions against llama.cpp's greedy text
 * ({@code stories260K-refs.json}), streams against whole responses, stop strings, chats against the chat format's
 * template written out by hand, structured output, the prompt cache, queued requests, and every kind of bad request.
 */
class ServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient CLIENT = HttpClient.newHttpClient();
    private static final ByteArrayOutputStream LOG = new ByteArrayOutputStream();
    private static Checkpoint stories;
    /** A server for completions (no chat template: plain), its cache F32 as llama.cpp's reference run's. */
    private static Server plain;
    /** A server framing chats as Llama-2's, with a context of 256 positions. */
    private static Server llama2;
    /** {@link #plain}'s kind of server whose generations take 5 ms a token, so that a test sees them run (stories260K decodes 6000 a second here). */
    private static Server slow;

    @BeforeAll
    static void start() throws Exception {
        stories = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        PrintStream log = new PrintStream(LOG, true, StandardCharsets.UTF_8);
        InetSocketAddress any = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        plain = server(stories.model().newState(512, 512, 1, KvCache.Type.F32), null, ChatFormat.PLAIN, log);
        llama2 = server(stories.model().newState(256, 256, 1, KvCache.Type.F32), null, ChatFormat.LLAMA2, log);
        Llama.State state = stories.model().newState(512, 512, 1, KvCache.Type.F32);
        Generation generator = new Generator(stories.model(), state, stories.eos());
        Generation slowly = new Generation() {
            @Override
            public Generator.Result generate(int[] prompt, int startPos, int maxNewTokens, Sampler sampler, IntPredicate onToken) {
                return generator.generate(prompt, startPos, maxNewTokens, sampler, t -> {
                    LockSupport.parkNanos(5_000_000);
                    return onToken.test(t);
                });
            }

            @Override
            public void shift(int keep, int discard, int end) {
                generator.shift(keep, discard, end);
            }

            @Override
            public void prefill(int[] tokens) {
                generator.prefill(tokens);
            }

            @Override
            public void restored(int[] tokens) {
                generator.restored(tokens);
            }
        };
        slow = new Server(stories, Engine.sequential(state, slowly), ChatFormat.PLAIN, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, log);
    }

    /** A server over {@code state} with plain decoding, or speculative with {@code drafter}, on any free port. */
    private static Server server(Llama.State state, Drafter drafter, ChatFormat format, PrintStream log) throws java.io.IOException {
        Generation generator = drafter == null ? new Generator(stories.model(), state, stories.eos())
                : new SpeculativeGenerator(stories.model(), state, stories.eos(), drafter, 4, SpeculativeGenerator.LOSSLESS);
        return new Server(stories, Engine.sequential(state, generator), format, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, log);
    }

    @AfterAll
    static void stop() {
        plain.close();
        llama2.close();
        slow.close();
    }

    record Reply(int status, String body) {
        JsonNode json() throws Exception {
            return JSON.readTree(body);
        }
    }

    private static Reply request(Server server, String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path));
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        HttpResponse<String> r = CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        return new Reply(r.statusCode(), r.body());
    }

    private static JsonNode post(Server server, String path, ObjectNode body) throws Exception {
        Reply r = request(server, "POST", path, body.toString());
        assertEquals(200, r.status(), r.body());
        return r.json();
    }

    private static ObjectNode completion(String prompt, int maxTokens) {
        return JSON.createObjectNode().put("model", "any").put("prompt", prompt).put("max_tokens", maxTokens).put("temperature", 0);
    }

    private static List<JsonNode> referenceCases() {
        List<JsonNode> cases = new ArrayList<>();
        Shared.json(Shared.REFERENCE.resolve("stories260K/stories260K-refs.json")).path("cases").forEach(cases::add);
        return cases;
    }

    /** Each reference prompt's 200 greedy tokens are llama.cpp's text, whatever the cache held from the request before. */
    @Test
    void greedyCompletionsAreLlamaCppsText() throws Exception {
        for (JsonNode c : referenceCases()) {
            JsonNode r = post(plain, "/v1/completions", completion(c.path("prompt").asText(), c.path("n_gen").asInt()));
            assertEquals(c.path("gen_text").asText(), r.at("/choices/0/text").asText(), c.path("prompt").asText());
            assertEquals("length", r.at("/choices/0/finish_reason").asText());
            assertEquals("text_completion", r.path("object").asText());
            assertEquals(c.path("prompt_ids").size(), r.at("/usage/prompt_tokens").asInt());
            assertEquals(200, r.at("/usage/completion_tokens").asInt());
            assertEquals(c.path("prompt_ids").size() + 200, r.at("/usage/total_tokens").asInt());
        }
    }

    /**
     * A prompt that continues the previous request's prompt and text runs only the tokens the cache lacks (the reply's
     * last token, which no decode step ran, and what follows), and goes on as llama.cpp's greedy text does.
     */
    @Test
    void aContinuedPromptRunsOnlyItsNewTokens() throws Exception {
        continuedPrompt(plain);
    }

    private static void continuedPrompt(Server server) throws Exception {
        JsonNode c = referenceCases().get(1); // "Once upon a time"
        String prompt = c.path("prompt").asText(), whole = c.path("gen_text").asText();
        int promptTokens = c.path("prompt_ids").size();
        int[] ids = Shared.ints(c.path("gen_ids"));
        // the first 25 generated tokens' text, which tokenizes (after the prompt) as those tokens
        String first = new String(concat(ids, 25, stories.tokenizer()), StandardCharsets.UTF_8);
        assertEquals(promptTokens + 25, stories.promptTokens(prompt + first).length);
        assertEquals(whole.substring(0, new String(concat(ids, 20, stories.tokenizer()), StandardCharsets.UTF_8).length()),
                post(server, "/v1/completions", completion(prompt, 20)).at("/choices/0/text").asText());
        JsonNode r = post(server, "/v1/completions", completion(prompt + first, 95));
        assertEquals(whole.substring(first.length(), new String(concat(ids, 120, stories.tokenizer()), StandardCharsets.UTF_8).length()), r.at("/choices/0/text").asText());
        // the prompt's tokens and the 20 generated but the last
        assertEquals(promptTokens + 19, r.at("/timings/cache_n").asInt());
        assertEquals(6, r.at("/timings/prompt_n").asInt());
    }

    private static byte[] concat(int[] ids, int n, Tokenizer tokenizer) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int i = 0; i < n; i++) bytes.writeBytes(tokenizer.bytes(ids[i]));
        return bytes.toByteArray();
    }

    /** The server-sent events of a stream, their data lines in order. */
    private static List<String> events(Server server, String path, ObjectNode body) throws Exception {
        Reply r = request(server, "POST", path, body.put("stream", true).toString());
        assertEquals(200, r.status(), r.body());
        List<String> data = new ArrayList<>();
        for (String block : r.body().split("\n\n")) {
            assertTrue(block.startsWith("data: "), block);
            data.add(block.substring("data: ".length()));
        }
        return data;
    }

    /** A stream's pieces make the whole response's text; the last chunk has the finish reason, then usage, then [DONE]. */
    @Test
    void aStreamIsTheWholeTextInPieces() throws Exception {
        for (List<String> stop : List.of(List.<String>of(), List.of("girl named", "park"), List.of("ily"))) {
            ObjectNode body = completion("Once upon a time", 80);
            stop.forEach(body.withArray("stop")::add);
            JsonNode whole = post(plain, "/v1/completions", body.deepCopy());
            body.putObject("stream_options").put("include_usage", true);
            List<String> data = events(plain, "/v1/completions", body);
            assertEquals("[DONE]", data.getLast());
            JsonNode usage = JSON.readTree(data.get(data.size() - 2));
            assertEquals(0, usage.path("choices").size());
            assertEquals(whole.path("usage"), usage.path("usage"));
            StringBuilder text = new StringBuilder();
            for (int i = 0; i < data.size() - 2; i++) {
                JsonNode chunk = JSON.readTree(data.get(i));
                assertEquals("text_completion", chunk.path("object").asText());
                text.append(chunk.at("/choices/0/text").asText());
                boolean last = i == data.size() - 3;
                assertEquals(last ? whole.at("/choices/0/finish_reason").asText() : "null", chunk.at("/choices/0/finish_reason").asText(), data.get(i));
                // a stop string's start is held back until it is known not to be one: no chunk shows it
                for (String s : stop) assertFalse(text.toString().contains(s), text + " holds " + s);
            }
            assertEquals(whole.at("/choices/0/text").asText(), text.toString(), stop.toString());
        }
    }

    /** OpenAI's stop: the text ends before the first stop string, which may span tokens and is not included. */
    @Test
    void stopStringsCutTheText() throws Exception {
        String reference = referenceCases().get(1).path("gen_text").asText();
        for (List<String> stop : List.of(List.of("girl named"), List.of("park", "Lily"), List.of("to play out", "She l"), List.of("no such text"))) {
            ObjectNode body = completion("Once upon a time", 200);
            stop.forEach(body.withArray("stop")::add);
            JsonNode r = post(plain, "/v1/completions", body);
            int cut = stop.stream().mapToInt(reference::indexOf).filter(i -> i >= 0).min().orElse(reference.length());
            assertEquals(reference.substring(0, cut), r.at("/choices/0/text").asText(), stop.toString());
            assertEquals(cut < reference.length() ? "stop" : "length", r.at("/choices/0/finish_reason").asText());
        }
        JsonNode one = post(plain, "/v1/completions", completion("Once upon a time", 200).put("stop", "Lily"));
        assertEquals(reference.substring(0, reference.indexOf("Lily")), one.at("/choices/0/text").asText());
    }

    /**
     * A chat is its turns in the chat format: the same text as a completion of Llama-2's template written out by hand
     * (Meta's format: {@code <s>[INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST] answer</s><s>[INST] user [/INST]}),
     * without the answer's leading space; streamed, the same again.
     */
    @Test
    void aChatIsItsTemplateCompleted() throws Exception {
        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 12).put("temperature", 0);
        var messages = chat.putArray("messages");
        messages.addObject().put("role", "system").put("content", "Be kind.");
        messages.addObject().put("role", "user").put("content", "Tell me a story");
        messages.addObject().put("role", "assistant").put("content", "Once there was a cat.");
        ObjectNode parts = messages.addObject().put("role", "user");
        parts.putArray("content").addObject().put("type", "text").put("text", "And then?");
        JsonNode r = post(llama2, "/v1/chat/completions", chat.deepCopy());
        String template = "<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nTell me a story [/INST] Once there was a cat.</s><s>[INST] And then? [/INST]";
        JsonNode c = post(llama2, "/v1/completions", completion(template, 12));
        assertEquals(c.at("/usage/prompt_tokens"), r.at("/usage/prompt_tokens"));
        assertEquals(c.at("/choices/0/text").asText().stripLeading(), r.at("/choices/0/message/content").asText());
        assertEquals("assistant", r.at("/choices/0/message/role").asText());
        assertEquals("chat.completion", r.path("object").asText());
        List<String> data = events(llama2, "/v1/chat/completions", chat);
        assertEquals("[DONE]", data.getLast());
        assertEquals("assistant", JSON.readTree(data.getFirst()).at("/choices/0/delta/role").asText());
        StringBuilder text = new StringBuilder();
        for (String d : data.subList(0, data.size() - 1)) {
            JsonNode chunk = JSON.readTree(d);
            assertEquals("chat.completion.chunk", chunk.path("object").asText());
            text.append(chunk.at("/choices/0/delta/content").asText());
        }
        assertEquals(r.at("/choices/0/message/content").asText(), text.toString());
        assertEquals(r.at("/choices/0/finish_reason").asText(), JSON.readTree(data.get(data.size() - 2)).at("/choices/0/finish_reason").asText());
    }

    /** response_format json_schema: the reply is a JSON document of the schema, ended where it is complete. */
    @Test
    void structuredOutputFollowsTheSchema() throws Exception {
        for (long seed = 1; seed <= 3; seed++) {
            ObjectNode chat = JSON.createObjectNode().put("max_tokens", 200).put("seed", seed).put("temperature", 1);
            chat.putArray("messages").addObject().put("role", "user").put("content", "A cat");
            ObjectNode schema = chat.putObject("response_format").put("type", "json_schema").putObject("json_schema").put("name", "pet").putObject("schema");
            schema.put("type", "object").putObject("properties").putObject("age").put("type", "integer").put("minimum", 1).put("maximum", 20);
            schema.withArray("required").add("age");
            JsonNode r = post(llama2, "/v1/chat/completions", chat);
            JsonNode doc = JSON.readTree(r.at("/choices/0/message/content").asText());
            assertEquals(List.of("age"), iterable(doc.fieldNames()));
            assertTrue(doc.path("age").isInt() && doc.path("age").asInt() >= 1 && doc.path("age").asInt() <= 20, doc.toString());
            assertEquals("stop", r.at("/choices/0/finish_reason").asText());
        }
        // json_object: an object (this model's keys run on past 100 tokens: the start of one, as the grammar has it)
        ObjectNode any = completion("Once upon a time", 100).put("temperature", 0.7).put("seed", 1);
        any.putObject("response_format").put("type", "json_object");
        JsonNode object = post(plain, "/v1/completions", any);
        gptfast4j.generate.Grammar objects = gptfast4j.generate.Grammar.parse(JsonSchemaGrammar.convert("{\"type\": \"object\"}"));
        assertTrue(object.at("/choices/0/text").asText().startsWith("{ \""), object.toString());
        assertTrue(objects.allowsPrefix(object.at("/choices/0/text").asText()), object.toString());
        assertEquals("length", object.at("/choices/0/finish_reason").asText());
        JsonNode yes = post(plain, "/v1/completions", completion("Once upon a time", 60).put("grammar", "root ::= (\"yes\" | \"no\") \".\""));
        assertTrue(List.of("yes.", "no.").contains(yes.at("/choices/0/text").asText()), yes.toString());
    }

    /**
     * A reasoning model's thinking apart (serve --reasoning-format deepseek): a reply made by a grammar to open with a
     * thinking block gives it as reasoning_content and the rest as content, whole and streamed alike; with the split
     * off, all of it is content, as it came.
     */
    @Test
    void aThinkingBlockGoesToReasoningContent() throws Exception {
        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 120).put("temperature", 0)
                .put("grammar", "root ::= \"<think>\\n\" [a-z ]{3,30} \"\\n</think>\\n\\n\" [a-z ]{1,30} \".\"");
        chat.putArray("messages").addObject().put("role", "user").put("content", "Tell me a story");
        try (Server server = new Server(stories, Engine.batched(stories, 2, 512, KvCache.Type.F32), ChatFormat.LLAMA2,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            JsonNode plainText = post(server, "/v1/chat/completions", chat.deepCopy()).at("/choices/0/message");
            assertFalse(plainText.has("reasoning_content"), plainText.toString());
            String whole = plainText.path("content").asText();
            assertTrue(whole.matches("<think>\n[a-z ]+\n</think>\n\n[a-z ]+\\."), whole);
            server.splitThinking(true);
            JsonNode message = post(server, "/v1/chat/completions", chat.deepCopy()).at("/choices/0/message");
            String thinking = whole.substring("<think>\n".length(), whole.indexOf("\n</think>")).strip();
            assertEquals(thinking, message.path("reasoning_content").asText(), message.toString());
            assertEquals(whole.substring(whole.indexOf("</think>") + "</think>".length()).strip(), message.path("content").asText());
            List<String> data = events(server, "/v1/chat/completions", chat);
            StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
            for (String d : data.subList(1, data.size() - 1)) {
                JsonNode delta = JSON.readTree(d).at("/choices/0/delta");
                reasoning.append(delta.path("reasoning_content").asText());
                content.append(delta.path("content").asText());
            }
            assertEquals(thinking, reasoning.toString());
            assertEquals(message.path("content").asText(), content.toString());
            // a request's own reasoning_format, as llama.cpp's server takes it
            assertEquals(whole, post(server, "/v1/chat/completions", chat.deepCopy().put("reasoning_format", "none").put("stream", false)).at("/choices/0/message/content").asText());
            server.splitThinking(false);
            assertEquals(thinking, post(server, "/v1/chat/completions", chat.deepCopy().put("reasoning_format", "deepseek").put("stream", false)).at("/choices/0/message/reasoning_content").asText());
            assertEquals(whole, post(server, "/v1/chat/completions", chat.deepCopy().put("reasoning_format", "auto").put("stream", false)).at("/choices/0/message/content").asText(),
                    "auto: llama2's format is no reasoning model's");
            assertEquals(400, request(server, "POST", "/v1/chat/completions", chat.deepCopy().put("reasoning_format", "deepseek-legacy").put("stream", false).toString()).status());
        }
    }

    /**
     * llama.cpp's own POST /completion: its fields in, its shape out (content, stop, stop_type and stopping_word, the
     * counts, timings), the text /v1/completions gives; streamed as events of content ending with the whole end
     * object and no [DONE]; several choices and log-probabilities refused.
     */
    @Test
    void llamaCppsOwnCompletion() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("prompt", "Once upon a time").put("n_predict", 30).put("temperature", 0).put("cache_prompt", true);
        JsonNode own = post(plain, "/completion", body.deepCopy());
        JsonNode oai = post(plain, "/v1/completions", completion("Once upon a time", 30));
        assertEquals(oai.at("/choices/0/text").asText(), own.path("content").asText());
        assertTrue(own.path("stop").asBoolean());
        assertEquals("limit", own.path("stop_type").asText());
        assertEquals(30, own.path("tokens_predicted").asInt());
        assertEquals(oai.at("/usage/prompt_tokens").asInt(), own.path("tokens_evaluated").asInt());
        assertEquals("Once upon a time", own.path("prompt").asText());
        assertEquals(30, own.at("/timings/predicted_n").asInt());
        assertEquals(own.path("content").asText().contains("\n"), own.path("has_new_line").asBoolean());
        JsonNode stopped = post(plain, "/completions", body.deepCopy().put("stop", "girl"));
        assertEquals("word", stopped.path("stop_type").asText(), stopped.toString());
        assertEquals("girl", stopped.path("stopping_word").asText());
        assertTrue(own.path("content").asText().startsWith(stopped.path("content").asText() + "girl"), stopped.toString());

        List<String> data = events(plain, "/completion", body.deepCopy());
        assertFalse(data.contains("[DONE]"), data.toString());
        StringBuilder text = new StringBuilder();
        for (String d : data.subList(0, data.size() - 1)) {
            JsonNode event = JSON.readTree(d);
            assertFalse(event.path("stop").asBoolean(), d);
            text.append(event.path("content").asText());
        }
        JsonNode end = JSON.readTree(data.getLast());
        assertTrue(end.path("stop").asBoolean());
        assertEquals("", end.path("content").asText());
        assertEquals("limit", end.path("stop_type").asText());
        assertEquals(own.path("content").asText(), text.toString());

        assertRefused(plain, "/completion", new String[][]{{"{\"prompt\": \"a\", \"n_probs\": 21}", "'n_probs' must be an integer from 0 to 20, got 21"},
                {"{\"prompt\": \"a\", \"logprobs\": 2}", "/completion takes llama.cpp's 'n_probs'"},
                {"{\"prompt\": \"a\", \"n_probs\": 2, \"post_sampling_probs\": true}", "'post_sampling_probs' is not supported"},
                {"{\"prompt\": \"a\", \"n\": 2}", "'n' must be 1 on /completion"}});
    }

    /** An embeddings response's vectors: lists of numbers, or base64 of little-endian floats. */
    private static List<float[]> vectors(JsonNode response) {
        List<float[]> vectors = new ArrayList<>();
        for (JsonNode item : response.path("data")) {
            assertEquals(vectors.size(), item.path("index").asInt());
            assertEquals("embedding", item.path("object").asText());
            JsonNode e = item.path("embedding");
            float[] v;
            if (e.isTextual()) {
                java.nio.ByteBuffer bytes = java.nio.ByteBuffer.wrap(java.util.Base64.getDecoder().decode(e.asText())).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                v = new float[bytes.remaining() / 4];
                for (int i = 0; i < v.length; i++) v[i] = bytes.getFloat();
            } else {
                v = new float[e.size()];
                for (int i = 0; i < v.length; i++) v[i] = (float) e.get(i).asDouble();
            }
            vectors.add(v);
        }
        return vectors;
    }

    /**
     * /v1/embeddings: the texts' embeddings are llama-embedding's (the references of EmbeddingTest, mean pooling),
     * from the one-at-a-time server and in a free slot of the batched one; as base64, the same floats; token ids as
     * their text; the slot's cache then holds the last input, which a completion of it reuses; bad requests named.
     */
    @Test
    void embeddingsAreLlamaEmbeddingsOutput() throws Exception {
        JsonNode refs = Shared.json(java.nio.file.Path.of("src/test/resources/embeddings/stories260K-embeddings.json"));
        ObjectNode body = JSON.createObjectNode().put("model", "any");
        body.set("input", refs.path("texts"));
        try (Server batched = new Server(stories, Engine.batched(stories, 2, 512, KvCache.Type.F32), ChatFormat.PLAIN,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            for (Server server : new Server[]{plain, batched}) {
                JsonNode r = post(server, "/v1/embeddings", body.deepCopy());
                List<float[]> vectors = vectors(r);
                assertEquals(4, vectors.size());
                int tokens = 0;
                for (int i = 0; i < 4; i++) {
                    float[] reference = new float[refs.at("/mean/" + i).size()];
                    for (int j = 0; j < reference.length; j++) reference[j] = (float) refs.at("/mean/" + i + "/" + j).asDouble();
                    org.junit.jupiter.api.Assertions.assertArrayEquals(reference, vectors.get(i), 2e-6f, "text " + i);
                    tokens += stories.promptTokens(refs.at("/texts/" + i).asText(), true).length;
                }
                assertEquals(tokens, r.at("/usage/prompt_tokens").asInt());
                assertEquals("list", r.path("object").asText());
                List<float[]> base64 = vectors(post(server, "/v1/embeddings", body.deepCopy().put("encoding_format", "base64")));
                // each request computes anew, and a kernel's lane sums come out in another order before the JIT has compiled it
                for (int i = 0; i < 4; i++) org.junit.jupiter.api.Assertions.assertArrayEquals(vectors.get(i), base64.get(i), 1e-6f);
                // llama.cpp's embd_normalize: -1 leaves the mean as it is (llama-embedding --embd-normalize -1)
                JsonNode raw = post(server, "/v1/embeddings", JSON.createObjectNode().put("input", refs.at("/texts/0").asText()).put("embd_normalize", -1));
                float[] unnormalized = vectors(raw).getFirst();
                for (int j = 0; j < unnormalized.length; j++) assertEquals(refs.at("/normalized_mean/-1/0/" + j).asDouble(), unnormalized[j], 1e-5, "value " + j);
                assertEquals(400, request(server, "POST", "/v1/embeddings", JSON.createObjectNode().put("input", "a").put("embd_normalize", -2).toString()).status());
                // llama.cpp's own /embedding (a body with "content"): [{"index", "embedding": [[...]]}], as llama-server answers it
                Reply own = request(server, "POST", "/embedding", JSON.createObjectNode().put("content", refs.at("/texts/0").asText()).toString());
                assertEquals(200, own.status(), own.body());
                assertEquals(0, own.json().at("/0/index").asInt());
                float[] ownVector = new float[own.json().at("/0/embedding/0").size()];
                for (int j = 0; j < ownVector.length; j++) ownVector[j] = (float) own.json().at("/0/embedding/0/" + j).asDouble();
                org.junit.jupiter.api.Assertions.assertArrayEquals(vectors.get(0), ownVector, 1e-6f);
                assertTrue(request(server, "POST", "/v1/embeddings", JSON.createObjectNode().put("content", "Hi").toString()).json().isArray(), "content: llama.cpp's shape");
                // one text, as token ids
                ObjectNode ids = JSON.createObjectNode();
                for (int id : stories.promptTokens(refs.at("/texts/1").asText(), true)) ids.withArray("input").add(id);
                org.junit.jupiter.api.Assertions.assertArrayEquals(vectors.get(1), vectors(post(server, "/v1/embeddings", ids)).getFirst(), 1e-6f);
                // the cache holds the last input's tokens: a prompt of that text runs only its last token
                String last = refs.at("/texts/3").asText();
                post(server, "/v1/embeddings", JSON.createObjectNode().put("input", last));
                JsonNode c = post(server, "/v1/completions", completion(last, 4));
                assertEquals(c.at("/usage/prompt_tokens").asInt() - 1, c.at("/timings/cache_n").asInt(), c.toString());
            }
        }
        String[][] cases = {
                {"{}", "'input' (or llama.cpp's 'content') is required"},
                {"{\"input\": \"\"}", "'input' is an empty text"},
                {"{\"input\": [\"a\", \"\"]}", "input[1] is an empty text"},
                {"{\"input\": []}", "'input' is empty"},
                {"{\"input\": [5, -1]}", "'input': token ids must be integers >= 0"},
                {"{\"input\": [[1, 512]]}", "input[0]: token 512 is not in the vocabulary"},
                {"{\"input\": [{\"a\": 1}]}", "input[0] must be a non-empty text or a non-empty list of token ids"},
                {"{\"input\": \"" + "a ".repeat(600) + "\"}", "tokens but the context length is 512"},
                {"{\"input\": \"a\", \"encoding_format\": \"int8\"}", "'encoding_format' must be float or base64"},
                {"{\"input\": \"a\", \"dimensions\": 32}", "'dimensions' must be this model's, 64, if given"},
        };
        assertRefused(plain, "/v1/embeddings", cases);
    }

    /**
     * /v1/rerank (llama-server's, Jina's and TEI's shapes): a reranker's score of each document is its rank pooling of
     * the query and the document in the file's rerank template (EmbeddingTest checks that pooling against the model's
     * logits), best first, {@code top_n} of them; TEI's {@code texts} answered as TEI does; bad requests named; a
     * server that pools otherwise says it does not rerank (501, as llama-server without {@code --reranking}).
     */
    @Test
    void rerankScoresEachDocumentByTheRerankersPooling(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path file = dir.resolve("qwen3-reranker.gguf");
        gptfast4j.model.EmbeddingTest.writeQwen3Reranker(dir, file);
        Checkpoint reranker = Checkpoint.load(file, null);
        Llama.State state = reranker.model().newState(256, 64, 1, KvCache.Type.F32);
        String query = "What do cats eat?";
        String[] documents = {"Cats eat fish and meat.", "The stock market fell today.", "A cat's diet is mostly protein."};
        try (Server server = new Server(reranker, Engine.sequential(state, new Generator(reranker.model(), state, reranker.eos())), ChatFormat.PLAIN,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            ObjectNode body = JSON.createObjectNode().put("query", query);
            for (String d : documents) body.withArray("documents").add(d);
            JsonNode r = post(server, "/v1/rerank", body);
            float[] expected = new float[documents.length];
            int tokens = 0;
            Llama.State scratch = reranker.model().newState(256, 64, 1, KvCache.Type.F32);
            for (int i = 0; i < documents.length; i++) {
                int[] prompt = Rerank.prompt(reranker, query, documents[i]);
                org.junit.jupiter.api.Assertions.assertArrayEquals(reranker.tokenizer().encodeWithSpecials("Query: " + query + "\nDocument: " + documents[i] + "\nRelevant:"), prompt);
                expected[i] = gptfast4j.model.Pooling.RANK.embed(reranker.model(), scratch, prompt, 2)[0];
                tokens += prompt.length;
            }
            JsonNode results = r.path("results");
            assertEquals(3, results.size(), r.toString());
            for (int k = 0; k < 3; k++) {
                int index = results.get(k).path("index").asInt();
                assertEquals(expected[index], results.get(k).path("relevance_score").asDouble(), 1e-6, r.toString());
                if (k > 0) assertTrue(results.get(k - 1).path("relevance_score").asDouble() >= results.get(k).path("relevance_score").asDouble(), r.toString());
            }
            assertEquals(tokens, r.at("/usage/prompt_tokens").asInt());
            assertEquals("list", r.path("object").asText());
            assertEquals("qwen3-reranker.gguf", r.path("model").asText());
            JsonNode top = post(server, "/rerank", body.deepCopy().put("top_n", 1).put("model", "mine"));
            assertEquals(1, top.path("results").size());
            assertEquals(results.get(0).path("index").asInt(), top.at("/results/0/index").asInt());
            assertEquals("mine", top.path("model").asText());
            ObjectNode tei = JSON.createObjectNode().put("query", query).put("return_text", true);
            for (String d : documents) tei.withArray("texts").add(d);
            JsonNode teiReply = post(server, "/reranking", tei);
            assertTrue(teiReply.isArray() && teiReply.size() == 3, teiReply.toString());
            int best = teiReply.at("/0/index").asInt();
            assertEquals(documents[best], teiReply.at("/0/text").asText());
            assertEquals(expected[best], teiReply.at("/0/score").asDouble(), 1e-6);
            assertRefused(server, "/v1/rerank", new String[][]{
                    {"{}", "'query' must be provided"},
                    {"{\"query\": 5, \"documents\": [\"a\"]}", "'query' must be a string"},
                    {"{\"query\": \"q\", \"documents\": []}", "'documents' must be a non-empty array of strings"},
                    {"{\"query\": \"q\"}", "'documents' must be a non-empty array of strings"},
                    {"{\"query\": \"q\", \"documents\": [\"a\", 2]}", "'documents'[1] must be a string"},
                    {"{\"query\": \"q\", \"documents\": [\"a\"], \"top_n\": -1}", "'top_n' must be a whole number >= 0"},
                    {"{\"query\": \"q\", \"documents\": [\"" + "a ".repeat(300) + "\"]}", "tokens but the context length is 256"},
            });
        }
        // a file that says rank but has no classifier head: 501 on both endpoints, its completions unaffected
        java.nio.file.Path headless = dir.resolve("rank-without-head.gguf");
        gptfast4j.io.GGUF plainFile = gptfast4j.io.GGUF.read(dir.resolve("qwen3-plain.gguf")); // writeQwen3Reranker's model before its head
        java.util.Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>(plainFile.metadata().asMap());
        md.put("qwen3.pooling_type", gptfast4j.io.Metadata.Value.uint32(4));
        java.util.List<gptfast4j.io.GGUFWriter.TensorSpec> specs = new java.util.ArrayList<>();
        for (gptfast4j.io.TensorData t : plainFile.tensors().values()) specs.add(new gptfast4j.io.GGUFWriter.TensorSpec(t.name(), t.type(), t.shape(), target -> target.copyFrom(t.data())));
        gptfast4j.io.GGUFWriter.write(headless, md, specs, n -> { });
        Checkpoint noHead = Checkpoint.load(headless, null);
        Llama.State noHeadState = noHead.model().newState(256, 64, 1, KvCache.Type.F32);
        try (Server server = new Server(noHead, Engine.sequential(noHeadState, new Generator(noHead.model(), noHeadState, noHead.eos())), ChatFormat.PLAIN,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            for (String path : new String[]{"/v1/rerank", "/v1/embeddings"}) {
                Reply r = request(server, "POST", path, "{\"query\": \"q\", \"documents\": [\"a\"], \"input\": \"a\"}");
                assertEquals(501, r.status(), r.body());
                assertTrue(r.json().at("/error/message").asText().startsWith("this model's file pools by rank but has no classifier head"), r.body());
            }
            assertEquals(200, request(server, "POST", "/v1/completions", completion("Once", 2).toString()).status());
        }
        Reply notReranker = request(plain, "POST", "/v1/rerank", "{\"query\": \"q\", \"documents\": [\"a\"]}");
        assertEquals(501, notReranker.status(), notReranker.body());
        assertTrue(notReranker.json().at("/error/message").asText().startsWith("this server pools with mean: reranking needs a reranker"), notReranker.body());
    }

    /** Each body of {@code cases} ({body, a part of the error message}) POSTed to {@code path}: a 400 whose message says so. */
    private static void assertRefused(Server server, String path, String[][] cases) throws Exception {
        for (String[] bad : cases) {
            Reply r = request(server, "POST", path, bad[0]);
            assertEquals(400, r.status(), bad[0] + ": " + r.body());
            assertTrue(r.json().at("/error/message").asText().contains(bad[1]), bad[0] + ": " + r.body());
        }
    }

    /** Two tools: one with a string and an enum, one whose argument is a reference to a definition of its own. */
    private static ObjectNode withTools(String user) throws Exception {
        ObjectNode chat = (ObjectNode) JSON.readTree("""
                {"tools": [
                  {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["c", "f"]}},
                                   "required": ["city", "unit"]}}},
                  {"type": "function", "function": {"name": "get_time",
                    "parameters": {"type": "object", "properties": {"zone": {"$ref": "#/$defs/Zone"}}, "required": ["zone"],
                                   "$defs": {"Zone": {"enum": ["utc", "cet"]}}}}}]}""");
        chat.put("max_tokens", 300);
        chat.putArray("messages").addObject().put("role", "user").put("content", user);
        return chat;
    }

    /** A call's arguments: those of its function's schema (withTools'), and nothing else. */
    private static void assertSchemaArguments(String name, String arguments) throws Exception {
        JsonNode args = JSON.readTree(arguments);
        switch (name) {
            case "get_weather" -> {
                assertEquals(List.of("city", "unit"), iterable(args.fieldNames()), arguments);
                assertTrue(args.path("city").isTextual() && args.path("city").asText().length() <= 12, arguments);
                assertTrue(List.of("c", "f").contains(args.path("unit").asText()), arguments);
            }
            case "get_time" -> {
                assertEquals(List.of("zone"), iterable(args.fieldNames()), arguments);
                assertTrue(List.of("utc", "cet").contains(args.path("zone").asText()), arguments);
            }
            default -> throw new AssertionError("a call of no tool: " + name);
        }
    }

    /**
     * Tools: a reply that must call (tool_choice required, or a function named) is a call of a tool, its arguments of
     * the function's schema, finish reason tool_calls, whole and streamed alike; with parallel calls, one or more; an
     * answer (every token holding a "t" banned, so that the grammar's "tool_call" cannot begin) is the response
     * string's text, streamed as it comes; earlier calls and results are framed as the model's replies and the user's
     * turns ({@code Tools}' form), with tool_choice none as without tools.
     */
    @Test
    void toolsAreCalledWithArgumentsOfTheirSchema() throws Exception {
        // the tools' description takes 400-500 of this tokenizer's tokens: a context past the model's 512
        try (Server server = new Server(stories, Engine.batched(stories, 2, 1024, KvCache.Type.F32), ChatFormat.LLAMA2,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            for (long seed = 1; seed <= 3; seed++) {
                for (boolean parallel : new boolean[]{false, true}) {
                    ObjectNode chat = withTools("What is the weather in Paris?").put("tool_choice", "required").put("seed", seed).put("temperature", 1)
                            .put("parallel_tool_calls", parallel);
                    JsonNode choice = post(server, "/v1/chat/completions", chat.deepCopy()).at("/choices/0");
                    if (parallel && choice.path("finish_reason").asText().equals("length")) {
                        // this model may list calls past the token limit: then the text as it came, as the grammar has it
                        gptfast4j.generate.Grammar grammar = gptfast4j.generate.Grammar.parse(Tools.parse(chat, Tools.Syntax.GENERIC).grammar());
                        assertTrue(grammar.allowsPrefix(choice.at("/message/content").asText()), choice.toString());
                        continue;
                    }
                    assertEquals("tool_calls", choice.path("finish_reason").asText(), choice.toString());
                    assertTrue(choice.at("/message/content").isNull(), choice.toString());
                    JsonNode calls = choice.at("/message/tool_calls");
                    assertTrue(parallel ? calls.size() >= 1 : calls.size() == 1, choice.toString());
                    for (JsonNode call : calls) {
                        assertTrue(call.path("id").asText().matches("call_[A-Za-z0-9]{24}"), call.toString());
                        assertEquals("function", call.path("type").asText());
                        assertSchemaArguments(call.at("/function/name").asText(), call.at("/function/arguments").asText());
                    }
                }
            }
            ObjectNode named = withTools("What time is it?").put("temperature", 1).put("seed", 5);
            named.putObject("tool_choice").put("type", "function").putObject("function").put("name", "get_time");
            JsonNode time = post(server, "/v1/chat/completions", named).at("/choices/0/message/tool_calls/0/function");
            assertEquals("get_time", time.path("name").asText());
            assertSchemaArguments("get_time", time.path("arguments").asText());

            // streamed: one chunk with the whole call, then the finish reason
            ObjectNode greedy = withTools("What is the weather in Paris?").put("tool_choice", "required").put("temperature", 0);
            JsonNode whole = post(server, "/v1/chat/completions", greedy.deepCopy()).at("/choices/0/message/tool_calls/0/function");
            List<String> data = events(server, "/v1/chat/completions", greedy);
            JsonNode streamed = JSON.readTree(data.get(1)).at("/choices/0/delta/tool_calls/0");
            assertEquals(0, streamed.path("index").asInt());
            assertEquals(whole, streamed.path("function"));
            assertEquals("tool_calls", JSON.readTree(data.get(data.size() - 2)).at("/choices/0/finish_reason").asText());

            // an answer
            ObjectNode answering = withTools("Tell me a story").put("max_tokens", 40).put("temperature", 0);
            ObjectNode bias = answering.putObject("logit_bias");
            for (int id = 0; id < stories.tokenizer().vocabSize(); id++) {
                if (new String(stories.tokenizer().bytes(id), StandardCharsets.UTF_8).contains("t")) bias.put(Integer.toString(id), -100);
            }
            JsonNode answer = post(server, "/v1/chat/completions", answering.deepCopy()).at("/choices/0");
            String content = answer.at("/message/content").asText();
            assertFalse(answer.at("/message").has("tool_calls"), answer.toString());
            assertFalse(content.isEmpty() || content.contains("t") || content.contains("\"response\""), answer.toString());
            data = events(server, "/v1/chat/completions", answering);
            StringBuilder text = new StringBuilder();
            for (String d : data.subList(0, data.size() - 1)) text.append(JSON.readTree(d).at("/choices/0/delta/content").asText());
            assertEquals(content, text.toString());
            assertTrue(data.size() > 5, "streamed in pieces: " + data);
            assertEquals(answer.path("finish_reason").asText(), JSON.readTree(data.get(data.size() - 2)).at("/choices/0/finish_reason").asText());

            // earlier calls and results in the prompt; tool_choice none: the tools left out, the reply plain text
            ObjectNode history = withTools("What is the weather?").put("tool_choice", "none").put("max_tokens", 12).put("temperature", 0);
            ArrayNode messages = (ArrayNode) history.get("messages");
            ObjectNode called = messages.addObject().put("role", "assistant").putNull("content");
            called.putArray("tool_calls").addObject().put("id", "call_1").put("type", "function").putObject("function")
                    .put("name", "get_weather").put("arguments", "{\"city\": \"Paris\", \"unit\": \"c\"}");
            messages.addObject().put("role", "tool").put("tool_call_id", "call_1").put("content", "sunny, 20 \"C\"");
            messages.addObject().put("role", "user").put("content", "And tomorrow?");
            JsonNode r = post(server, "/v1/chat/completions", history);
            String template = "<s>[INST] What is the weather? [/INST] {\"tool_call\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"unit\":\"c\"}}}</s>"
                    + "<s>[INST] {\"tool_response\":{\"name\":\"get_weather\",\"content\":\"sunny, 20 \\\"C\\\"\"}}\nAnd tomorrow? [/INST]";
            JsonNode c = post(server, "/v1/completions", completion(template, 12));
            assertEquals(c.at("/usage/prompt_tokens"), r.at("/usage/prompt_tokens"));
            assertEquals(c.at("/choices/0/text").asText().stripLeading(), r.at("/choices/0/message/content").asText());
            assertFalse(r.at("/choices/0/message").has("tool_calls"));
        }
    }

    /**
     * {@code useTemplate} (serve --jinja): a chat framed by the model's Jinja template, Qwen3's here, equals the
     * completion of jinja2's rendering of it ({@code scripts/render-chat-template.py
     * src/test/resources/chat-templates/Qwen-Qwen3-0.6B.jinja MESSAGES '<s>' '</s>' TOOLS VARIABLES}, the command's
     * output beside each): with {@code chat_template_kwargs}, with the template's own tools section and its
     * {@code <tool_call>} blocks read back; a template's refusal is a 400 with its message.
     */
    @Test
    void aJinjaTemplateFramesTheChat() throws Exception {
        String qwen3 = java.nio.file.Files.readString(java.nio.file.Path.of("src/test/resources/chat-templates/Qwen-Qwen3-0.6B.jinja"));
        try (Server server = new Server(stories, Engine.batched(stories, 1, 1024, KvCache.Type.F32), ChatFormat.PLAIN,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            server.useTemplate(new gptfast4j.model.ChatTemplate(qwen3));
            // MESSAGES: the four below; TOOLS []; VARIABLES {"enable_thinking": false}
            ObjectNode chat = JSON.createObjectNode().put("max_tokens", 12).put("temperature", 0);
            var messages = chat.putArray("messages");
            messages.addObject().put("role", "system").put("content", "Be kind.");
            messages.addObject().put("role", "user").put("content", "Tell me a story");
            messages.addObject().put("role", "assistant").put("content", "<think>\nA cat.\n</think>\n\nOnce there was a cat.");
            messages.addObject().put("role", "user").put("content", "And then?");
            chat.putObject("chat_template_kwargs").put("enable_thinking", false);
            String rendered = "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nTell me a story<|im_end|>\n<|im_start|>assistant\nOnce there was a cat.<|im_end|>\n"
                    + "<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
            assertEquals(rendered, post(server, "/apply-template", chat.deepCopy()).path("prompt").asText());
            JsonNode r = post(server, "/v1/chat/completions", chat);
            JsonNode c = post(server, "/v1/completions", completion(rendered, 12));
            assertEquals(c.at("/usage/prompt_tokens"), r.at("/usage/prompt_tokens"));
            assertEquals(c.at("/choices/0/text").asText(), r.at("/choices/0/message/content").asText());
            assertEquals("jinja", request(server, "GET", "/props", null).json().path("chat_format").asText());
            assertEquals(400, request(llama2, "POST", "/apply-template", chat.toString()).status(), "a fixed format has no template to show");
            Reply noTemplate = request(llama2, "POST", "/v1/chat/completions", chat.toString());
            assertEquals(400, noTemplate.status());
            assertEquals("'chat_template_kwargs' needs a chat template, and this model has none", noTemplate.json().at("/error/message").asText());

            // a fixed format's server takes chat_template_kwargs by the model's own template (stories260K given Qwen3's)
            java.nio.file.Path withTemplate = java.nio.file.Files.createTempFile("stories-qwen3-template", ".gguf");
            gptfast4j.Shared.storiesWithMetadata(withTemplate, md -> md.put("tokenizer.chat_template", gptfast4j.io.Metadata.Value.string(qwen3)));
            Checkpoint qwenStories = Checkpoint.load(withTemplate, null);
            try (Server fixed = new Server(qwenStories, Engine.batched(qwenStories, 1, 512, KvCache.Type.F32), ChatFormat.CHATML,
                    new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
                assertEquals(rendered, post(fixed, "/apply-template", chat.deepCopy()).path("prompt").asText());
                assertEquals(r.at("/usage/prompt_tokens"), post(fixed, "/v1/chat/completions", chat.deepCopy()).at("/usage/prompt_tokens"));
                ObjectNode withoutKwargs = chat.deepCopy();
                withoutKwargs.remove("chat_template_kwargs");
                assertEquals(400, request(fixed, "POST", "/apply-template", withoutKwargs.toString()).status(), "the chat format frames it");
            } finally {
                java.nio.file.Files.delete(withTemplate);
            }

            // MESSAGES [{"role": "user", "content": "What is the weather in Paris?"}]; TOOLS: get_weather as below
            ObjectNode tools = (ObjectNode) JSON.readTree("""
                    {"tools": [{"type": "function", "function": {"name": "get_weather", "description": "The weather",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
                     "messages": [{"role": "user", "content": "What is the weather in Paris?"}], "temperature": 0}""");
            String withTools = "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                    + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": "
                    + "{\"name\": \"get_weather\", \"description\": \"The weather\", \"parameters\": {\"type\": \"object\", \"properties\": "
                    + "{\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}\n</tools>\n\nFor each function call, return a json object with "
                    + "function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
                    + "<args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n";
            JsonNode free = post(server, "/v1/chat/completions", tools.deepCopy().put("max_tokens", 8));
            assertEquals(post(server, "/v1/completions", completion(withTools, 8)).at("/usage/prompt_tokens"), free.at("/usage/prompt_tokens"));
            JsonNode choice = post(server, "/v1/chat/completions", tools.put("tool_choice", "required")).at("/choices/0");
            assertEquals("tool_calls", choice.path("finish_reason").asText(), choice.toString());
            assertEquals("get_weather", choice.at("/message/tool_calls/0/function/name").asText(), choice.toString());
            assertTrue(JSON.readTree(choice.at("/message/tool_calls/0/function/arguments").asText()).path("city").isTextual(), choice.toString());

        }
        String nemo = java.nio.file.Files.readString(java.nio.file.Path.of("src/test/resources/chat-templates/mistralai-Mistral-Nemo-Instruct-2407.jinja"));
        try (Server server = new Server(stories, Engine.batched(stories, 1, 512, KvCache.Type.F32), ChatFormat.PLAIN,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            server.useTemplate(new gptfast4j.model.ChatTemplate(nemo));
            // llama-server's /apply-template (de3ff81, --jinja --chat-template-file of this template): the text after BOS
            ObjectNode conversation = (ObjectNode) JSON.readTree("""
                    {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                                  {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]}""");
            assertEquals("[INST]Hi[/INST]Hello.</s>[INST]Be kind.\n\nBye[/INST]", post(server, "/apply-template", conversation).path("prompt").asText());
            ObjectNode twoUsers = JSON.createObjectNode();
            twoUsers.putArray("messages").add(JSON.createObjectNode().put("role", "user").put("content", "a")).add(JSON.createObjectNode().put("role", "user").put("content", "b"));
            Reply refused = request(server, "POST", "/v1/chat/completions", twoUsers.toString());
            assertEquals(400, refused.status());
            // jinja2's: "After the optional system message, conversation roles must alternate user/assistant/user/assistant/..."
            assertTrue(refused.json().at("/error/message").asText().matches("the chat template: line \\d+: After the optional system message, conversation roles must alternate user/assistant/.*"), refused.body());
            twoUsers.put("chat_template_kwargs", 5);
            refused = request(server, "POST", "/v1/chat/completions", twoUsers.toString());
            assertEquals(400, refused.status());
            assertEquals("'chat_template_kwargs' must be an object of the template's variables", refused.json().at("/error/message").asText());
        }
    }

    /**
     * Under a template, Llama 3.1's and Mistral Nemo's own tool syntaxes: a required call held by the syntax's grammar
     * comes back as OpenAI's tool_calls; Nemo's call ids are the 9 letters and digits its template takes back in the
     * conversation that follows. DeepSeek-R1's distillation's template, whose syntax is none of those, in the generic
     * format.
     */
    @Test
    void llamaAndMistralTemplatesCallToolsInTheirOwnSyntax() throws Exception {
        ObjectNode request = (ObjectNode) JSON.readTree("""
                {"tools": [{"type": "function", "function": {"name": "get_weather", "description": "The weather",
                  "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"]}}}],
                 "messages": [{"role": "user", "content": "What is the weather in Paris?"}], "temperature": 0, "tool_choice": "required"}""");
        for (String name : new String[]{"meta-llama-Llama-3.1-8B-Instruct", "mistralai-Mistral-Nemo-Instruct-2407", "deepseek-ai-DeepSeek-R1-Distill-Llama-8B"}) {
            String source = java.nio.file.Files.readString(java.nio.file.Path.of("src/test/resources/chat-templates/" + name + ".jinja"));
            try (Server server = new Server(stories, Engine.batched(stories, 1, 1024, KvCache.Type.F32), ChatFormat.PLAIN,
                    new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
                server.useTemplate(new gptfast4j.model.ChatTemplate(source));
                JsonNode choice = post(server, "/v1/chat/completions", request.deepCopy()).at("/choices/0");
                assertEquals("tool_calls", choice.path("finish_reason").asText(), name + ": " + choice);
                JsonNode call = choice.at("/message/tool_calls/0");
                assertEquals("get_weather", call.at("/function/name").asText(), name);
                assertTrue(JSON.readTree(call.at("/function/arguments").asText()).path("city").isTextual(), name + ": " + call);
                if (name.contains("DeepSeek")) {
                    // the generic format in the template's turns: a call and its result taken back as text
                    ObjectNode next = request.deepCopy();
                    ArrayNode messages = (ArrayNode) next.get("messages");
                    messages.addObject().put("role", "assistant").putNull("content").putArray("tool_calls").add(call);
                    messages.addObject().put("role", "tool").put("tool_call_id", call.path("id").asText()).put("content", "sunny");
                    messages.addObject().put("role", "user").put("content", "And in Rome?");
                    assertEquals("tool_calls", post(server, "/v1/chat/completions", next).at("/choices/0/finish_reason").asText());
                    messages.addObject().put("role", "tool").put("tool_call_id", "call_unknown").put("content", "x");
                    assertEquals(400, request(server, "POST", "/v1/chat/completions", next.toString()).status());
                }
                if (name.contains("Mistral")) {
                    assertTrue(call.path("id").asText().matches("[A-Za-z0-9]{9}"), call.toString());
                    ObjectNode next = request.deepCopy().put("tool_choice", "none").put("max_tokens", 4);
                    ArrayNode messages = (ArrayNode) next.get("messages");
                    messages.addObject().put("role", "assistant").putNull("content").putArray("tool_calls").add(call);
                    messages.addObject().put("role", "tool").put("tool_call_id", call.path("id").asText()).put("content", "sunny");
                    post(server, "/v1/chat/completions", next); // the reply to the call's result
                }
            }
        }
    }

    /**
     * llama.cpp's {@code /infill}: stories260K with FIM token ids 300/301/302 in its metadata and a training context of
     * 8192 (so that other files' text has room), a context of 2816; the prompts' sizes and greedy texts are
     * llama-server's (de3ff81, {@code llama-server -m stories-fim8k.gguf -c 2816 -np 1}, the same requests), with the
     * other files cut to what the context leaves past a batch of 2048, as its server cuts them.
     */
    @Test
    void infillIsLlamaServersFillInTheMiddle() throws Exception {
        java.nio.file.Path fim = java.nio.file.Files.createTempFile("stories-fim", ".gguf");
        try {
            gptfast4j.Shared.storiesWithMetadata(fim, md -> {
                md.put("llama.context_length", gptfast4j.io.Metadata.Value.uint32(8192));
                md.put("tokenizer.ggml.fim_pre_token_id", gptfast4j.io.Metadata.Value.uint32(300));
                md.put("tokenizer.ggml.fim_suf_token_id", gptfast4j.io.Metadata.Value.uint32(301));
                md.put("tokenizer.ggml.fim_mid_token_id", gptfast4j.io.Metadata.Value.uint32(302));
            });
            Checkpoint ckpt = Checkpoint.load(fim, null);
            try (Server server = new Server(ckpt, Engine.batched(ckpt, 1, 2816, KvCache.Type.F16), ChatFormat.PLAIN,
                    new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
                ObjectNode plain = JSON.createObjectNode().put("input_prefix", "Once upon a time, there was a little")
                        .put("input_suffix", " She was very happy.").put("n_predict", 16).put("temperature", 0);
                JsonNode a = post(server, "/infill", plain);
                assertEquals("a loved to play with her toys and see wh", a.path("content").asText());
                assertEquals(19, a.path("tokens_evaluated").asInt());
                ObjectNode extra = (ObjectNode) JSON.readTree("""
                        {"input_prefix": "Tom had a dog.", "input_suffix": "The end.", "prompt": " The dog", "n_predict": 20, "temperature": 0,
                         "input_extra": [{"filename": "a.txt", "text": "Lily liked cats."}, {"text": "Sam ran fast."}]}""");
                JsonNode b = post(server, "/infill", extra);
                assertEquals(". He likes to play with his toys. He likes to play with", b.path("content").asText());
                assertEquals(68, b.path("tokens_evaluated").asInt());
                ObjectNode cut = JSON.createObjectNode().put("input_prefix", "Tom had a dog.").put("input_suffix", "The end.").put("n_predict", 10).put("temperature", 0);
                cut.putArray("input_extra").addObject().put("filename", "a.txt").put("text", "Lily liked cats. ".repeat(300));
                JsonNode c = post(server, "/infill", cut);
                assertEquals(" was very happy. He liked to play with", c.path("content").asText());
                assertEquals(785, c.path("tokens_evaluated").asInt());
                assertEquals(400, request(server, "POST", "/infill", "{\"input_prefix\": \"a\"}").status());
            }
            assertEquals("this model has no fill-in-the-middle tokens (<PRE>/<SUF>/<MID> or <|fim_prefix|>/...): /infill is for code models such as CodeLlama and Qwen2.5-Coder",
                    request(llama2, "POST", "/infill", "{\"input_prefix\": \"a\", \"input_suffix\": \"b\"}").json().at("/error/message").asText());
        } finally {
            java.nio.file.Files.delete(fim);
        }
    }

    /**
     * OpenAI's Responses API: a request's instructions and input the chat's system and user messages (the output text
     * is the chat completion's), its stream typed events whose deltas make the same text, a required function call as
     * a function_call item, whose output goes back as a function_call_output item; stored responses refused.
     */
    @Test
    void theResponsesApiIsAChatInItsShapes() throws Exception {
        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 12).put("temperature", 0);
        chat.putArray("messages").add(JSON.createObjectNode().put("role", "system").put("content", "Be kind."))
                .add(JSON.createObjectNode().put("role", "user").put("content", "Tell me a story"));
        String text = post(llama2, "/v1/chat/completions", chat).at("/choices/0/message/content").asText();
        ObjectNode request = JSON.createObjectNode().put("model", "any").put("instructions", "Be kind.").put("input", "Tell me a story")
                .put("max_output_tokens", 12).put("temperature", 0);
        JsonNode r = post(llama2, "/v1/responses", request.deepCopy());
        assertEquals("response", r.path("object").asText());
        assertTrue(r.path("id").asText().startsWith("resp_"), r.toString());
        assertEquals("incomplete", r.path("status").asText(), "12 tokens: cut short");
        assertEquals("max_output_tokens", r.at("/incomplete_details/reason").asText());
        assertEquals("message", r.at("/output/0/type").asText());
        assertEquals(text, r.at("/output/0/content/0/text").asText());
        assertEquals(12, r.at("/usage/output_tokens").asInt());

        List<String> types = new ArrayList<>();
        StringBuilder streamed = new StringBuilder();
        Reply stream = request(llama2, "POST", "/v1/responses", request.deepCopy().put("stream", true).toString());
        int sequence = 0;
        for (String block : stream.body().split("\n\n")) {
            String[] lines = block.split("\n");
            assertTrue(lines[0].startsWith("event: ") && lines[1].startsWith("data: "), block);
            JsonNode event = JSON.readTree(lines[1].substring(6));
            assertEquals(lines[0].substring(7), event.path("type").asText());
            assertEquals(sequence++, event.path("sequence_number").asInt());
            types.add(event.path("type").asText());
            if (event.path("type").asText().equals("response.output_text.delta")) streamed.append(event.path("delta").asText());
        }
        assertEquals(text, streamed.toString());
        assertEquals(List.of("response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"), types.subList(0, 4));
        assertEquals(List.of("response.output_text.done", "response.content_part.done", "response.output_item.done", "response.incomplete"), types.subList(types.size() - 4, types.size()));

        try (Server server = new Server(stories, Engine.batched(stories, 1, 1024, KvCache.Type.F32), ChatFormat.LLAMA2,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            ObjectNode tools = (ObjectNode) JSON.readTree("""
                    {"tools": [{"type": "function", "name": "get_weather", "description": "The weather",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"]}}],
                     "input": "What is the weather in Paris?", "tool_choice": "required", "temperature": 0}""");
            JsonNode call = post(server, "/v1/responses", tools.deepCopy()).at("/output/0");
            assertEquals("function_call", call.path("type").asText(), call.toString());
            assertEquals("get_weather", call.path("name").asText());
            assertTrue(JSON.readTree(call.path("arguments").asText()).path("city").isTextual(), call.toString());
            ArrayNode input = tools.putArray("input");
            input.addObject().put("role", "user").putArray("content").addObject().put("type", "input_text").put("text", "What is the weather in Paris?");
            input.add(call);
            input.addObject().put("type", "function_call_output").put("call_id", call.path("call_id").asText()).put("output", "sunny");
            tools.put("tool_choice", "none").put("max_output_tokens", 6);
            assertEquals("message", post(server, "/v1/responses", tools).at("/output/0/type").asText());
        }
        assertRefused(llama2, "/v1/responses", new String[][]{{"{\"input\": \"a\", \"previous_response_id\": \"resp_1\"}", "'previous_response_id' is not supported"},
                {"{\"model\": \"any\"}", "'input' is required"},
                {"{\"input\": [{\"type\": \"image\"}]}", "input items of type 'image' are not supported"},
                {"{\"input\": \"a\", \"tools\": [{\"type\": \"web_search\"}]}", "only function tools are supported"}});
    }

    /**
     * Anthropic's Messages API: a request's system and messages the chat's (the text is the chat completion's), its
     * stream's events (message_start ... content_block_delta ... message_stop) making the same text, a tool_use block
     * for a required call taken back with its tool_result, x-api-key as the key, count_tokens the prompt's size.
     */
    @Test
    void anthropicsMessagesApiIsAChatInItsShapes() throws Exception {
        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 12).put("temperature", 0);
        chat.putArray("messages").add(JSON.createObjectNode().put("role", "system").put("content", "Be kind."))
                .add(JSON.createObjectNode().put("role", "user").put("content", "Tell me a story"));
        JsonNode completion = post(llama2, "/v1/chat/completions", chat);
        String text = completion.at("/choices/0/message/content").asText();
        ObjectNode request = JSON.createObjectNode().put("model", "any").put("max_tokens", 12).put("system", "Be kind.").put("temperature", 0);
        request.putArray("messages").addObject().put("role", "user").putArray("content").addObject().put("type", "text").put("text", "Tell me a story");
        JsonNode m = post(llama2, "/v1/messages", request.deepCopy());
        assertEquals("message", m.path("type").asText());
        assertEquals("max_tokens", m.path("stop_reason").asText());
        assertEquals(text, m.at("/content/0/text").asText());
        assertEquals(completion.at("/usage/prompt_tokens").asInt(), m.at("/usage/input_tokens").asInt());
        assertEquals(completion.at("/usage/prompt_tokens").asInt(), post(llama2, "/v1/messages/count_tokens", request.deepCopy()).path("input_tokens").asInt());

        List<String> types = new ArrayList<>();
        StringBuilder streamed = new StringBuilder();
        Reply stream = request(llama2, "POST", "/v1/messages", request.deepCopy().put("stream", true).toString());
        for (String block : stream.body().split("\n\n")) {
            String[] lines = block.split("\n");
            JsonNode event = JSON.readTree(lines[1].substring(6));
            assertEquals(lines[0].substring(7), event.path("type").asText());
            types.add(event.path("type").asText());
            if (event.at("/delta/type").asText().equals("text_delta")) streamed.append(event.at("/delta/text").asText());
        }
        assertEquals(text, streamed.toString());
        assertEquals(List.of("message_start", "content_block_start"), types.subList(0, 2));
        assertEquals(List.of("content_block_stop", "message_delta", "message_stop"), types.subList(types.size() - 3, types.size()));

        try (Server server = new Server(stories, Engine.batched(stories, 1, 1024, KvCache.Type.F32), ChatFormat.LLAMA2,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), "secret", new PrintStream(OutputStream.nullOutputStream()))) {
            ObjectNode tools = (ObjectNode) JSON.readTree("""
                    {"tools": [{"name": "get_weather", "description": "The weather",
                      "input_schema": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"]}}],
                     "messages": [{"role": "user", "content": "What is the weather in Paris?"}], "tool_choice": {"type": "any"}, "max_tokens": 200, "temperature": 0}""");
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/v1/messages")).header("x-api-key", "secret")
                    .POST(HttpRequest.BodyPublishers.ofString(tools.toString()));
            JsonNode reply = JSON.readTree(CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofString()).body());
            assertEquals("tool_use", reply.path("stop_reason").asText(), reply.toString());
            JsonNode use = reply.at("/content/0");
            assertEquals("get_weather", use.path("name").asText());
            assertTrue(use.at("/input/city").isTextual(), use.toString());
            ArrayNode messages = (ArrayNode) tools.get("messages");
            messages.addObject().put("role", "assistant").putArray("content").add(use);
            messages.addObject().put("role", "user").putArray("content").addObject().put("type", "tool_result").put("tool_use_id", use.path("id").asText()).put("content", "sunny");
            tools.remove("tool_choice");
            tools.put("max_tokens", 6);
            b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/v1/messages")).header("x-api-key", "secret")
                    .POST(HttpRequest.BodyPublishers.ofString(tools.toString()));
            assertEquals(200, CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofString()).statusCode());
        }
        Reply refused = request(llama2, "POST", "/v1/messages", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\"}]}]}");
        assertEquals(400, refused.status());
        assertTrue(refused.json().at("/error/message").asText().contains("content blocks of type \"image\" are not supported"), refused.body());
        assertEquals("error", refused.json().path("type").asText(), "Anthropic's error shape");
        assertEquals("invalid_request_error", refused.json().at("/error/type").asText());
    }

    /**
     * A file's named {@code tool_use} template (GGUF's tokenizer.chat_template.tool_use, as Hermes-2-Pro's conversions
     * carry it) frames chats with tools, as llama.cpp and transformers choose it; its default frames the others.
     */
    @Test
    void aToolUseTemplateFramesChatsWithTools() throws Exception {
        java.nio.file.Path file = java.nio.file.Files.createTempFile("stories-tool-use", ".gguf");
        try {
            String qwen3 = java.nio.file.Files.readString(java.nio.file.Path.of("src/test/resources/chat-templates/Qwen-Qwen3-0.6B.jinja"));
            gptfast4j.Shared.storiesWithMetadata(file, md -> {
                md.put("tokenizer.chat_template", gptfast4j.io.Metadata.Value.string("{% for m in messages %}{{ m.content }}{% endfor %}"));
                md.put("tokenizer.chat_template.tool_use", gptfast4j.io.Metadata.Value.string(qwen3));
            });
            Checkpoint ckpt = Checkpoint.load(file, null);
            try (Server server = new Server(ckpt, Engine.batched(ckpt, 1, 1024, KvCache.Type.F32), ChatFormat.PLAIN,
                    new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
                server.useTemplate(new gptfast4j.model.ChatTemplate(ckpt.chatTemplate()));
                ObjectNode chat = (ObjectNode) JSON.readTree("""
                        {"messages": [{"role": "user", "content": "What is the weather in Paris?"}],
                         "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]}""");
                assertTrue(post(server, "/apply-template", chat.deepCopy()).path("prompt").asText().contains("<tools>"), "the tool_use template's tools section");
                assertEquals("What is the weather in Paris?", post(server, "/apply-template", chat.deepCopy().put("tool_choice", "none")).path("prompt").asText());
                chat.remove("tools");
                assertEquals("What is the weather in Paris?", post(server, "/apply-template", chat).path("prompt").asText());
            }
        } finally {
            java.nio.file.Files.delete(file);
        }
    }

    private static List<String> iterable(java.util.Iterator<String> it) {
        List<String> list = new ArrayList<>();
        it.forEachRemaining(list::add);
        return list;
    }

    /** logit_bias -100 bans a token (OpenAI's meaning): every token holding a comma banned, the text has none. */
    @Test
    void logitBiasBansTokens() throws Exception {
        ObjectNode body = completion("Once upon a time", 60);
        ObjectNode bias = body.putObject("logit_bias");
        for (int id = 0; id < stories.tokenizer().vocabSize(); id++) {
            if (new String(stories.tokenizer().bytes(id), StandardCharsets.UTF_8).contains(",")) bias.put(Integer.toString(id), -100);
        }
        assertFalse(bias.isEmpty());
        String text = post(plain, "/v1/completions", body).at("/choices/0/text").asText();
        assertFalse(text.contains(","), text);
        assertNotEquals(referenceCases().get(1).path("gen_text").asText().substring(0, text.length()), text);
    }

    /** Requests sent at once are answered one after the other, each as it would be alone. */
    @Test
    void requestsAtOnceAreEachAnsweredAsAlone() throws Exception {
        List<JsonNode> cases = referenceCases();
        try (ExecutorService clients = Executors.newFixedThreadPool(cases.size())) {
            List<Future<JsonNode>> replies = new ArrayList<>();
            for (JsonNode c : cases) replies.add(clients.submit(() -> post(plain, "/v1/completions", completion(c.path("prompt").asText(), 40))));
            for (int i = 0; i < cases.size(); i++) {
                String expected = new String(concat(Shared.ints(cases.get(i).path("gen_ids")), 40, stories.tokenizer()), StandardCharsets.UTF_8);
                assertEquals(expected, replies.get(i).get().at("/choices/0/text").asText());
            }
        }
    }

    /** A client that goes away during a stream ends its generation at the next token; the server goes on serving. */
    @Test
    void aClientGoneEndsItsGeneration() throws Exception {
        clientGoneEndsItsGeneration(true);
    }

    /** Likewise a client that goes away before the response of a request without a stream, which writes nothing until it ends. */
    @Test
    void aClientGoneWithoutAStreamEndsItsGeneration() throws Exception {
        clientGoneEndsItsGeneration(false);
    }

    /**
     * A client that goes away while its request waits behind another: the engine drops the request unstarted and its
     * request's thread ends (it used to wait for that choice's end for ever), logged as 499.
     */
    @Test
    void aClientGoneWhileItsRequestWaitsIsDropped() throws Exception {
        int logged = LOG.toString(StandardCharsets.UTF_8).length();
        HttpRequest first = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + slow.port() + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(completion("Once upon a time", 100).put("ignore_eos", true).toString())).build();
        var running = CLIENT.sendAsync(first, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8)); // 100 tokens: 500 ms or more
        Thread.sleep(100);
        String body = completion("Once upon a time", 10).toString();
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), slow.port())) {
            socket.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                    + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
        }
        assertEquals(200, running.get().statusCode());
        long deadline = System.nanoTime() + 10_000_000_000L;
        String line = null;
        while (line == null && System.nanoTime() < deadline) {
            Thread.sleep(20);
            line = LOG.toString(StandardCharsets.UTF_8).substring(logged).lines().filter(l -> l.contains("before its generation began")).findFirst().orElse(null);
        }
        assertNotNull(line, LOG.toString(StandardCharsets.UTF_8).substring(logged));
        assertTrue(line.startsWith("POST /v1/completions 499,"), line);
    }

    /**
     * A client that sends its next request before this one's response (HTTP/1.1 pipelining) is not taken for gone,
     * and its next request is left whole: both are answered in turn on the one connection.
     */
    @Test
    void aPipelinedRequestIsNotAClientGone() throws Exception {
        String body = completion("Once upon a time", 40).put("ignore_eos", true).toString(); // 40 tokens: 200 ms or more
        byte[] request = ("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8);
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), slow.port())) {
            socket.setSoTimeout(20_000);
            OutputStream out = socket.getOutputStream();
            out.write(request);
            out.flush();
            Thread.sleep(30); // the next request after the server has read this one: the watch sees its bytes
            out.write(request);
            out.flush();
            java.io.DataInputStream in = new java.io.DataInputStream(new java.io.BufferedInputStream(socket.getInputStream()));
            List<String> head = new ArrayList<>();
            for (String line = readLine(in); !line.isEmpty(); line = readLine(in)) head.add(line.toLowerCase(java.util.Locale.ROOT));
            assertTrue(head.getFirst().startsWith("http/1.1 200"), head.toString());
            int length = head.stream().filter(h -> h.startsWith("content-length:")).mapToInt(h -> Integer.parseInt(h.substring(15).trim())).findFirst().orElseThrow();
            byte[] reply = new byte[length];
            in.readFully(reply);
            assertEquals(40, JSON.readTree(reply).path("usage").path("completion_tokens").asInt(), new String(reply, StandardCharsets.UTF_8));
            assertFalse(head.contains("connection: close"), head.toString());
            assertTrue(readLine(in).startsWith("HTTP/1.1 200"));
        }
    }

    private static String readLine(java.io.DataInputStream in) throws java.io.IOException {
        StringBuilder line = new StringBuilder();
        for (int c = in.read(); c != '\n'; c = in.read()) {
            if (c < 0) throw new java.io.EOFException(line.toString());
            if (c != '\r') line.append((char) c);
        }
        return line.toString();
    }

    private static synchronized void clientGoneEndsItsGeneration(boolean stream) throws Exception {
        // ignore_eos: only the context (512 positions) would end the generation of a client that is not seen to go
        String body = completion("Once upon a time", 100000).put("stream", stream).put("temperature", 1).put("seed", 7).put("ignore_eos", true).toString();
        int logged = LOG.toString(StandardCharsets.UTF_8).length();
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), slow.port())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                    + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
            out.flush();
            if (stream) {
                String head = new String(socket.getInputStream().readNBytes(200), StandardCharsets.UTF_8);
                assertTrue(head.startsWith("HTTP/1.1 200"), head);
            }
        }
        long deadline = System.nanoTime() + 10_000_000_000L;
        String line = null;
        while (line == null && System.nanoTime() < deadline) {
            Thread.sleep(20);
            line = LOG.toString(StandardCharsets.UTF_8).substring(logged).lines().filter(l -> l.contains("the client went away")).findFirst().orElse(null);
        }
        assertNotNull(line, LOG.toString(StandardCharsets.UTF_8).substring(logged));
        int generated = Integer.parseInt(line.replaceAll(".*cached\\), (\\d+) generated.*", "$1"));
        assertTrue(generated < 400, line);
        assertTrue(line.startsWith("POST /v1/completions " + (stream ? 200 : 499) + ","), line); // 499: nothing was sent
        assertEquals(200, request(slow, "GET", "/health", null).status());
    }

    /**
     * llama.cpp's clients (its web UI among them) send all its sampler settings, most of them off; a request with those
     * samplers left off, and fields that do not change the text, gets the text it would without them.
     */
    @Test
    void llamaCppsSamplersLeftOffAreTaken() throws Exception {
        ObjectNode plainRequest = completion("Once upon a time", 20), llamaCpp = plainRequest.deepCopy();
        llamaCpp.put("mirostat", 0).put("mirostat_tau", 5).put("mirostat_eta", 0.1).put("typical_p", 1).put("dynatemp_range", 0).put("dynatemp_exponent", 1)
                .put("dry_multiplier", 0).put("dry_base", 1.75).put("xtc_probability", 0).put("xtc_threshold", 0.1).put("top_n_sigma", -1)
                .put("ignore_eos", false).put("cache_prompt", true).put("n_keep", 0);
        assertEquals(post(plain, "/v1/completions", plainRequest).at("/choices/0/text"), post(plain, "/v1/completions", llamaCpp).at("/choices/0/text"));
    }

    record Generated(int exit, String out, String err) {}

    /** {@code gptfast generate ARGS}, its standard output and error. */
    private static Generated generate(String... args) {
        java.io.PrintStream oldOut = System.out, oldErr = System.err;
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(), err = new java.io.ByteArrayOutputStream();
        try {
            System.setOut(new java.io.PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new java.io.PrintStream(err, true, StandardCharsets.UTF_8));
            int exit = gptfast4j.cli.Main.run(args);
            return new Generated(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    /**
     * llama.cpp's other samplers turned on in a request give the text {@code gptfast generate} gives with the same
     * settings under llama.cpp's flag names (greedy with DRY and a seeded draw through the others), and DRY's text is
     * not the plain one.
     */
    @Test
    void llamaCppsSamplersAsGenerateRunsThem() throws Exception {
        ObjectNode dry = completion("Once upon a time", 120);
        dry.put("dry_multiplier", 2).put("dry_allowed_length", 3).putArray("dry_sequence_breakers");
        String text = post(plain, "/v1/completions", dry).at("/choices/0/text").asText();
        assertNotEquals(post(plain, "/v1/completions", completion("Once upon a time", 120)).at("/choices/0/text").asText(), text);
        Generated o = generate("generate", "--checkpoint", Shared.MODELS.resolve("stories260K.gguf").toString(), "--prompt", "Once upon a time",
                "--max-new-tokens", "120", "--temperature", "0", "--dry-multiplier", "2", "--dry-allowed-length", "3", "--dry-sequence-breaker", "none");
        assertEquals("Once upon a time" + text, o.out().strip(), o.err());
        ObjectNode drawn = completion("Once upon a time", 40);
        drawn.put("temperature", 0.9).put("seed", 7).put("top_k", 0).put("typical_p", 0.9).put("xtc_probability", 0.5).put("xtc_threshold", 0.15)
                .put("top_n_sigma", 2).put("dynatemp_range", 0.3);
        text = post(plain, "/v1/completions", drawn).at("/choices/0/text").asText();
        o = generate("generate", "--checkpoint", Shared.MODELS.resolve("stories260K.gguf").toString(), "--prompt", "Once upon a time",
                "--max-new-tokens", "40", "--temperature", "0.9", "--seed", "7", "--top-k", "0", "--typical", "0.9", "--xtc-probability", "0.5",
                "--xtc-threshold", "0.15", "--top-nsigma", "2", "--dynatemp-range", "0.3");
        assertEquals("Once upon a time" + text, o.out().strip(), o.err());
        drawn.put("mirostat", 2).put("mirostat_tau", 3);
        text = post(plain, "/v1/completions", drawn).at("/choices/0/text").asText();
        o = generate("generate", "--checkpoint", Shared.MODELS.resolve("stories260K.gguf").toString(), "--prompt", "Once upon a time",
                "--max-new-tokens", "40", "--temperature", "0.9", "--seed", "7", "--mirostat", "2", "--mirostat-ent", "3");
        assertEquals("Once upon a time" + text, o.out().strip(), o.err());
    }

    /**
     * LoRA adapters in the server, as llama.cpp's: GET /lora-adapters lists them; a request's own {@code lora} scales
     * (an adapter left out: 0, so [] is the base model's text), and POST /lora-adapters the server's for requests
     * without; a cache made at other scales is not reused (the same prompt again at the first scales gives the first
     * text), one request at a time and with --parallel.
     */
    @Test
    void loraAdaptersPerRequestAndAsTheServerSets(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path adapter = dir.resolve("stories-lora.gguf");
        gptfast4j.model.LoraTest.writeAdapter(adapter, "llama", 64, 5, 32, 172, 512);
        Checkpoint adapted = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        adapted.model().adapt(gptfast4j.model.Lora.load(adapted.model(), List.of(adapter), List.of(1f)));
        String base = post(plain, "/v1/completions", completion("Once upon a time", 30)).at("/choices/0/text").asText();
        PrintStream log = new PrintStream(LOG, true, StandardCharsets.UTF_8);
        Llama.State state = adapted.model().newState(512, 512, 1, KvCache.Type.F32);
        for (Engine engine : new Engine[]{Engine.sequential(state, new Generator(adapted.model(), state, adapted.eos())), Engine.batched(adapted, 2, 512, KvCache.Type.F32)}) {
            try (Server server = new Server(adapted, engine, ChatFormat.PLAIN, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, log)) {
                JsonNode listed = JSON.readTree(request(server, "GET", "/lora-adapters", null).body());
                assertEquals(1, listed.size(), listed.toString());
                assertEquals(0, listed.get(0).get("id").asInt());
                assertEquals(1.0, listed.get(0).get("scale").asDouble());
                assertTrue(listed.get(0).get("path").asText().endsWith("stories-lora.gguf"), listed.toString());
                String first = post(server, "/v1/completions", completion("Once upon a time", 30)).at("/choices/0/text").asText();
                assertNotEquals(base, first, "the adapter changes the text");
                ObjectNode none = completion("Once upon a time", 30);
                none.putArray("lora");
                assertEquals(base, post(server, "/v1/completions", none).at("/choices/0/text").asText());
                ObjectNode off = completion("Once upon a time", 30);
                off.putArray("lora").addObject().put("id", 0).put("scale", 0);
                assertEquals(base, post(server, "/v1/completions", off).at("/choices/0/text").asText());
                assertEquals(first, post(server, "/v1/completions", completion("Once upon a time", 30)).at("/choices/0/text").asText());
                JsonNode set = JSON.readTree(request(server, "POST", "/lora-adapters", "[{\"id\": 0, \"scale\": 0}]").body());
                assertEquals(0.0, set.get(0).get("scale").asDouble());
                assertEquals(base, post(server, "/v1/completions", completion("Once upon a time", 30)).at("/choices/0/text").asText());
                request(server, "POST", "/lora-adapters", "[{\"id\": 0, \"scale\": 1}]");
                assertEquals(first, post(server, "/v1/completions", completion("Once upon a time", 30)).at("/choices/0/text").asText());
                ObjectNode bad = completion("Once upon a time", 30);
                bad.putArray("lora").addObject().put("id", 1).put("scale", 1);
                var refused = request(server, "POST", "/v1/completions", bad.toString());
                assertEquals(400, refused.status());
                assertTrue(refused.body().contains("no LoRA adapter 1 (the server has 1"), refused.body());
                assertEquals(400, request(server, "POST", "/lora-adapters", "{\"id\": 0}").status());
                // a slot file holds the cache of the adapters' weights it was saved at: not restored at others
                server.saveSlotsIn(dir, adapted.model().fingerprint() + " f32");
                post(server, "/slots/0?action=save", JSON.createObjectNode().put("filename", "at-1.bin"));
                request(server, "POST", "/lora-adapters", "[{\"id\": 0, \"scale\": 0.5}]");
                Reply other = request(server, "POST", "/slots/0?action=restore", "{\"filename\": \"at-1.bin\"}");
                assertEquals(400, other.status(), other.body());
                assertTrue(other.body().contains("adapters' weights"), other.body());
                request(server, "POST", "/lora-adapters", "[{\"id\": 0, \"scale\": 1}]");
                assertEquals(200, request(server, "POST", "/slots/0?action=restore", "{\"filename\": \"at-1.bin\"}").status());
            }
        }
        var refused = request(plain, "POST", "/v1/completions", "{\"prompt\": \"a\", \"lora\": [{\"id\": 0, \"scale\": 1}]}");
        assertEquals(400, refused.status());
        assertTrue(refused.body().contains("the server has no LoRA adapters"), refused.body());
        assertEquals("[]", request(plain, "GET", "/lora-adapters", null).body().strip());
    }

    /**
     * A model with recurrent layers (Qwen35Test's Qwen3.5), one request at a time and two at once: a prompt that goes on
     * from the last one goes on from the state its recurrent layers kept at that prompt's end (its tokens from the
     * cache), a repeated prompt from the state kept before its last token (all but one), and each text is the one a
     * fresh server gives; a slot file holds the state at its end, and a slot restored from it goes on from there.
     */
    @Test
    void recurrentLayersGoOnFromTheStatesTheyKeep(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path file = dir.resolve("qwen35-mini.gguf");
        gptfast4j.model.Qwen35Test.write(dir.resolve("llama.gguf"), file);
        Checkpoint qwen = Checkpoint.load(file, null);
        PrintStream log = new PrintStream(LOG, true, StandardCharsets.UTF_8);
        InetSocketAddress any = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        String first = "Once upon a time", second = "Once upon a time there was";
        String[] fresh = new String[2];
        for (int i = 0; i < 2; i++) {
            Llama.State state = qwen.model().newState(256, 256, 1, KvCache.Type.F16);
            try (Server server = new Server(qwen, Engine.sequential(state, new Generator(qwen.model(), state, qwen.eos())), ChatFormat.PLAIN, any, null, log)) {
                fresh[i] = post(server, "/v1/completions", completion(i == 0 ? first : second, 20)).at("/choices/0/text").asText();
            }
        }
        Llama.State state = qwen.model().newState(256, 256, 1, KvCache.Type.F16);
        for (Engine engine : new Engine[]{Engine.sequential(state, new Generator(qwen.model(), state, qwen.eos())), Engine.batched(qwen, 2, 256, KvCache.Type.F16)}) {
            try (Server server = new Server(qwen, engine, ChatFormat.PLAIN, any, null, log)) {
                JsonNode a = post(server, "/v1/completions", completion(first, 20)), b = post(server, "/v1/completions", completion(second, 20)),
                        again = post(server, "/v1/completions", completion(second, 20));
                assertEquals(fresh[0], a.at("/choices/0/text").asText());
                assertEquals(fresh[1], b.at("/choices/0/text").asText());
                assertEquals(fresh[1], again.at("/choices/0/text").asText());
                assertEquals(a.at("/usage/prompt_tokens").asInt(), b.at("/timings/cache_n").asInt(), b.toString());
                assertEquals(b.at("/usage/prompt_tokens").asInt() - 1, again.at("/timings/cache_n").asInt(), again.toString());
                // a slot file holds the recurrent state at its end: erased, restored, the prompt goes on from it
                server.saveSlotsIn(dir, qwen.model().fingerprint() + " f16");
                int held = post(server, "/slots/0?action=save", JSON.createObjectNode().put("filename", "s.bin")).path("n_saved").asInt();
                assertEquals(held, post(server, "/slots/0?action=erase", JSON.createObjectNode()).path("n_erased").asInt());
                assertEquals(held, post(server, "/slots/0?action=restore", JSON.createObjectNode().put("filename", "s.bin")).path("n_restored").asInt());
                JsonNode restored = post(server, "/v1/completions", completion(second, 20));
                assertEquals(fresh[1], restored.at("/choices/0/text").asText());
            }
        }
    }

    /**
     * {@code ignore_eos} (llama.cpp's): the end-of-text token is never drawn, even where a bias makes it all but
     * certain, and the text goes on to the token limit; without it that bias ends the text at once.
     */
    @Test
    void ignoreEosNeverDrawsTheEndOfText() throws Exception {
        ObjectNode request = completion("Once upon a time", 30);
        request.putObject("logit_bias").put(String.valueOf(stories.eos()[0]), 100);
        JsonNode stopped = post(plain, "/v1/completions", request.deepCopy());
        assertEquals(0, stopped.at("/usage/completion_tokens").asInt(), stopped.toString());
        assertEquals("stop", stopped.at("/choices/0/finish_reason").asText());
        request.put("ignore_eos", true);
        JsonNode on = post(plain, "/v1/completions", request);
        assertEquals(30, on.at("/usage/completion_tokens").asInt(), on.toString());
        assertEquals("length", on.at("/choices/0/finish_reason").asText());
    }

    /** Bad requests get an OpenAI error object naming what is wrong, and the server goes on serving. */
    @Test
    void badRequestsAreNamed() throws Exception {
        String[][] cases = {
                {"/v1/completions", "{\"prompt\": ", "400", "not valid JSON"},
                {"/v1/completions", "{\"prompt\": \"a\"} x", "400", "not valid JSON"},
                {"/v1/completions", "[1, 2]", "400", "must be a JSON object"},
                {"/v1/completions", "", "400", "has no body"},
                {"/v1/completions", "{}", "400", "'prompt' is required"},
                {"/v1/completions", "{\"prompt\": 5}", "400", "'prompt' must be a string"},
                {"/v1/completions", "{\"prompt\": [\"a\", \"b\"]}", "400", "holds 2 texts"},
                {"/v1/completions", "{\"prompt\": \"a\", \"n\": 17}", "400", "'n' must be an integer from 1 to 16, got 17"},
                {"/v1/completions", "{\"prompt\": \"a\", \"best_of\": 2}", "400", "'best_of' must be 1"},
                {"/v1/completions", "{\"prompt\": \"a\", \"logprobs\": 21}", "400", "'logprobs' must be an integer from 0 to 20, got 21"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"top_logprobs\": 2}", "400", "'top_logprobs' needs \"logprobs\": true"},
                {"/v1/completions", "{\"prompt\": \"a\", \"echo\": true}", "400", "'echo' is not supported"},
                {"/v1/completions", "{\"prompt\": \"a\", \"temperature\": -1}", "400", "'temperature' must be a number >= 0"},
                {"/v1/completions", "{\"prompt\": \"a\", \"temperature\": \"hot\"}", "400", "'temperature' must be a number"},
                {"/v1/completions", "{\"prompt\": \"a\", \"top_p\": 0}", "400", "'top_p' must be a number from 0 (exclusive) to 1"},
                {"/v1/completions", "{\"prompt\": \"a\", \"max_tokens\": -2}", "400", "'max_tokens' must be an integer >= -1"},
                {"/v1/completions", "{\"prompt\": \"a\", \"mirostat\": 3}", "400", "'mirostat' must be an integer from 0 to 2, got 3"},
                {"/v1/completions", "{\"prompt\": \"a\", \"typical_p\": 0}", "400", "'typical_p' must be a number from 0 (exclusive) to 1"},
                {"/v1/completions", "{\"prompt\": \"a\", \"dry_base\": 0.5}", "400", "'dry_base' must be a number >= 1"},
                {"/v1/completions", "{\"prompt\": \"a\", \"dry_multiplier\": 1, \"dry_sequence_breakers\": [\"\"]}", "400", "'dry_sequence_breakers' must be an array of non-empty strings"},
                {"/v1/completions", "{\"prompt\": \"a\", \"xtc_probability\": 1.5}", "400", "'xtc_probability' must be a number from 0 to 1"},
                {"/v1/completions", "{\"prompt\": \"a\", \"top_n_sigma\": \"x\"}", "400", "'top_n_sigma' must be a number"},
                {"/v1/completions", "{\"prompt\": \"a\", \"dynatemp_range\": -0.5}", "400", "'dynatemp_range' must be a number >= 0"},
                {"/v1/completions", "{\"prompt\": \"a\", \"mirostat\": \"on\"}", "400", "'mirostat' must be an integer"},
                {"/v1/completions", "{\"prompt\": \"a\", \"ignore_eos\": true, \"grammar\": \"root ::= \\\"a\\\"\"}", "400", "'ignore_eos' cannot be used with a grammar"},
                {"/v1/completions", "{\"prompt\": \"a\", \"ignore_eos\": 1}", "400", "'ignore_eos' must be true or false"},
                {"/v1/completions", "{\"prompt\": \"a\", \"max_tokens\": 1.5}", "400", "'max_tokens' must be an integer"},
                {"/v1/completions", "{\"prompt\": \"a\", \"frequency_penalty\": 3}", "400", "'frequency_penalty' must be a number from -2 to 2"},
                {"/v1/completions", "{\"prompt\": \"a\", \"stream\": \"yes\"}", "400", "'stream' must be true or false"},
                {"/v1/completions", "{\"prompt\": \"a\", \"stream_options\": {\"include_usage\": true}}", "400", "\"stream\": true"},
                {"/v1/completions", "{\"prompt\": \"a\", \"stop\": 5}", "400", "'stop' must be a string or an array of strings"},
                {"/v1/completions", "{\"prompt\": \"a\", \"stop\": [\"\"]}", "400", "must not be empty"},
                {"/v1/completions", "{\"prompt\": \"a\", \"stop\": \"" + "x".repeat(1001) + "\"}", "400", "'stop' strings must be at most 1000 characters"},
                {"/v1/completions", "{\"prompt\": \"a\", \"logit_bias\": {\"x\": 1}}", "400", "keys must be token ids"},
                {"/v1/completions", "{\"prompt\": \"a\", \"logit_bias\": {\"5\": 101}}", "400", "from -100 to 100"},
                {"/v1/completions", "{\"prompt\": \"a\", \"logit_bias\": {\"512\": 1}}", "400", "token 512 is not in the vocabulary (ids 0..511)"},
                {"/v1/completions", "{\"prompt\": \"a\", \"seed\": \"x\"}", "400", "'seed' must be an integer"},
                {"/v1/completions", "{\"prompt\": \"a\", \"grammar\": \"root ::= x\"}", "400", "x"},
                {"/v1/completions", "{\"prompt\": \"a\", \"response_format\": {\"type\": \"xml\"}}", "400", "response_format.type must be"},
                {"/v1/completions", "{\"prompt\": \"a\", \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"schema\": {\"type\": \"string\", \"pattern\": \"(?=a)\"}}}}", "400", "lookaround"},
                {"/v1/completions", "{\"prompt\": \"a\", \"grammar\": \"root ::= \\\"a\\\"\", \"json_schema\": {}}", "400", "give one of grammar, json_schema"},
                {"/v1/completions", "{\"prompt\": \"a\", \"tools\": []}", "400", "'tools' is for /v1/chat/completions"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"functions\": []}", "400", "'functions' (OpenAI's deprecated form) is not supported by this server: use 'tools'"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tool_choice\": \"auto\"}", "400", "'tool_choice' needs 'tools'"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tools\": []}", "400", "'tools' is empty"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"a b\"}}]}", "400", "tools[0].function.name must be 1 to 64 letters"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tools\": [{\"function\": {\"name\": \"f\"}}]}", "400", "tools[0] must be {\"type\": \"function\""},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"g\"}}}", "400", "'tool_choice' names function 'g', which is not in 'tools'"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], \"tool_choice\": \"always\"}", "400", "'tool_choice' must be none, auto, required"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"patternProperties\": {}}}}]}", "400", "tools[0].function.parameters: 'patternProperties' (at #) is not supported"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}, {\"type\": \"function\", \"function\": {\"name\": \"f\"}}]}", "400", "tools[1]: a second function named 'f'"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], \"response_format\": {\"type\": \"json_object\"}}", "400", "'tools' cannot be used with a grammar or a response format"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], \"parallel_tool_calls\": 1}", "400", "'parallel_tool_calls' must be true or false"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"tool\", \"tool_call_id\": \"x\", \"content\": \"b\"}]}", "400", "messages[1].tool_call_id 'x' is not a call of the assistant's message before it"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"x\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": \"{\\\"a\\\": \"}}]}, {\"role\": \"tool\", \"tool_call_id\": \"x\", \"content\": \"b\"}]}", "400", "messages[1].tool_calls[0].function.arguments must be a JSON object's text"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"tool_calls\": \"x\"}, {\"role\": \"user\", \"content\": \"b\"}]}", "400", "messages[1].tool_calls must be an array of calls"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"tool_calls\": [{\"type\": \"function\"}]}, {\"role\": \"tool\", \"tool_call_id\": \"x\", \"content\": \"b\"}]}", "400", "messages[1].tool_calls[0] must be {\"id\""},
                {"/v1/chat/completions", "{\"prompt\": \"a\"}", "400", "'messages' must be a non-empty array"},
                {"/v1/chat/completions", "{\"messages\": []}", "400", "'messages' must be a non-empty array"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"robot\", \"content\": \"a\"}]}", "400", "messages[0].role must be system, user, assistant or tool"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\"}]}", "400", "messages[0].content must be a string"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", "400", "only text parts"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]}", "400", "must alternate"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}", "400", "the last message must be the user's"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"system\", \"content\": \"b\"}]}", "400", "a system message must be the first"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"" + "a story ".repeat(150) + "\"}]}", "400", "but the context length is 256"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"" + "a".repeat(65537) + "\"}]}", "400", "the prompt's text is 65537 characters, more than a context of 256 tokens can hold"},
                {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"max_completion_tokens\": -3}", "400", "'max_completion_tokens' must be an integer >= -1"},
        };
        for (String[] c : cases) {
            Reply r = request(llama2, "POST", c[0], c[1]);
            assertEquals(Integer.parseInt(c[2]), r.status(), c[1] + ": " + r.body());
            JsonNode error = r.json().path("error");
            assertTrue(error.path("message").asText().contains(c[3]), c[1] + ": " + error);
            assertEquals("invalid_request_error", error.path("type").asText());
        }
        Reply noChat = request(plain, "POST", "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}");
        assertEquals(400, noChat.status());
        assertTrue(noChat.body().contains("no chat template: start the server with --chat-format"), noChat.body());
        Reply notFound = request(plain, "GET", "/v2/whatever", null);
        assertEquals(404, notFound.status());
        assertTrue(notFound.json().at("/error/message").asText().contains("POST /v1/completions"), notFound.body());
        Reply wrongMethod = request(plain, "GET", "/v1/completions", null);
        assertEquals(405, wrongMethod.status());
        assertTrue(wrongMethod.json().at("/error/message").asText().contains("takes POST, not GET"), wrongMethod.body());
        Reply tooLarge = request(plain, "POST", "/v1/completions", "{\"prompt\": \"" + "a".repeat(Server.MAX_BODY) + "\"}");
        assertEquals(413, tooLarge.status());
        // still serving, its cache intact
        JsonNode c = referenceCases().get(2);
        assertEquals(c.path("gen_text").asText(), post(plain, "/v1/completions", completion(c.path("prompt").asText(), 200)).at("/choices/0/text").asText());
    }

    @Test
    void modelsAndHealth() throws Exception {
        Reply models = request(plain, "GET", "/v1/models", null);
        assertEquals(200, models.status());
        assertEquals("stories260K.gguf", models.json().at("/data/0/id").asText());
        assertEquals("list", models.json().path("object").asText());
        Reply health = request(plain, "GET", "/health", null);
        assertEquals(200, health.status());
        assertEquals("ok", health.json().path("status").asText());
    }

    /**
     * llama.cpp's GET /props (the defaults a request without fields gets, the context, the slots, the chat format) and
     * GET /slots (each slot generating or not, the tokens its cache holds; 503 with fail_on_no_slot=1 while every slot
     * generates).
     */
    @Test
    void propsAndSlots() throws Exception {
        JsonNode props = request(llama2, "GET", "/props", null).json();
        assertEquals(256, props.at("/default_generation_settings/n_ctx").asInt());
        assertEquals(0.8, props.at("/default_generation_settings/params/temperature").asDouble(), 1e-9);
        assertEquals(200, props.at("/default_generation_settings/params/top_k").asInt());
        assertEquals(1, props.path("total_slots").asInt());
        assertEquals("llama2", props.path("chat_format").asText());
        assertEquals("<s>", props.path("bos_token").asText());
        assertEquals("</s>", props.path("eos_token").asText());
        assertEquals("stories260K.gguf", props.path("model_alias").asText());
        assertEquals(405, request(llama2, "POST", "/props", "{}").status());

        try (Server batched = new Server(stories, Engine.batched(stories, 2, 512, KvCache.Type.F32), ChatFormat.PLAIN,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            JsonNode c = post(batched, "/v1/completions", completion("Once upon a time", 10));
            JsonNode slots = request(batched, "GET", "/slots", null).json();
            assertEquals(2, slots.size());
            int held = c.at("/usage/total_tokens").asInt();
            assertEquals(List.of(0, 1), List.of(slots.at("/0/id").asInt(), slots.at("/1/id").asInt()));
            assertTrue(slots.at("/0/n_cached").asInt() + slots.at("/1/n_cached").asInt() >= held - 1, slots.toString());
            assertFalse(slots.at("/0/is_processing").asBoolean() || slots.at("/1/is_processing").asBoolean(), slots.toString());
            assertEquals(200, request(batched, "GET", "/slots?fail_on_no_slot=1", null).status());
        }
        // the slow server (5 ms a token) while a request generates
        ExecutorService client = Executors.newSingleThreadExecutor();
        try {
            Future<JsonNode> running = client.submit(() -> post(slow, "/v1/completions", completion("Once upon a time", 150).put("ignore_eos", true)));
            JsonNode slot = null;
            for (int i = 0; i < 200 && (slot == null || !slot.path("is_processing").asBoolean()); i++) {
                Thread.sleep(5);
                slot = request(slow, "GET", "/slots", null).json().get(0);
            }
            assertTrue(slot.path("is_processing").asBoolean(), slot.toString());
            Reply busy = request(slow, "GET", "/slots?fail_on_no_slot=1", null);
            assertEquals(503, busy.status(), busy.body());
            assertEquals(150, running.get().at("/usage/completion_tokens").asInt());
            assertFalse(request(slow, "GET", "/slots", null).json().at("/0/is_processing").asBoolean());
        } finally {
            client.shutdownNow();
        }
    }

    /** With an API key, every request but /health's must bear it. */
    @Test
    void anApiKeyIsRequired() throws Exception {
        Llama.State state = stories.model().newState(64, 64, 1, KvCache.Type.F32);
        try (Server keyed = new Server(stories, Engine.sequential(state, new Generator(stories.model(), state, stories.eos())), ChatFormat.PLAIN,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), "s3cret", new PrintStream(OutputStream.nullOutputStream()))) {
            String body = completion("Once upon a time", 4).toString();
            URI uri = URI.create("http://127.0.0.1:" + keyed.port() + "/v1/completions");
            for (String header : new String[]{null, "Bearer wrong", "s3cret", "Bearer s3cret"}) {
                HttpRequest.Builder b = HttpRequest.newBuilder(uri).POST(HttpRequest.BodyPublishers.ofString(body));
                if (header != null) b.header("Authorization", header);
                HttpResponse<String> r = CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofString());
                assertEquals("Bearer s3cret".equals(header) ? 200 : 401, r.statusCode(), header + ": " + r.body());
                if (r.statusCode() == 401) assertEquals("authentication_error", JSON.readTree(r.body()).at("/error/type").asText());
            }
            assertEquals(401, request(keyed, "GET", "/v1/models", null).status());
            assertEquals(200, request(keyed, "GET", "/health", null).status());
            // CORS: a browser's preflight answered without the key, the origin on every response
            keyed.allowOrigin("http://localhost:3000");
            HttpResponse<String> preflight = CLIENT.send(HttpRequest.newBuilder(uri).method("OPTIONS", HttpRequest.BodyPublishers.noBody())
                    .header("Origin", "http://localhost:3000").header("Access-Control-Request-Method", "POST").build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(204, preflight.statusCode());
            assertEquals("http://localhost:3000", preflight.headers().firstValue("Access-Control-Allow-Origin").orElse(""));
            assertTrue(preflight.headers().firstValue("Access-Control-Allow-Headers").orElse("").contains("Authorization"));
            HttpResponse<String> post = CLIENT.send(HttpRequest.newBuilder(uri).POST(HttpRequest.BodyPublishers.ofString(body))
                    .header("Authorization", "Bearer s3cret").build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, post.statusCode());
            assertEquals("http://localhost:3000", post.headers().firstValue("Access-Control-Allow-Origin").orElse(""));
        }
    }

    /**
     * With speculative decoding (prompt lookup, or stories260K's own int4 form as a draft model), greedy replies are
     * still llama.cpp's text, request after request over one cache, and a chat's sampled reply follows its schema.
     */
    @Test
    void speculativeServersGiveTheSameText() throws Exception {
        Checkpoint int4 = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null, GGMLType.Q4_0);
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        Llama.State lookupState = stories.model().newState(512, 512, 5, KvCache.Type.F32), draftState = stories.model().newState(512, 512, 5, KvCache.Type.F32);
        try (Server lookup = server(lookupState, new PromptLookup(2), ChatFormat.PLAIN, quiet);
             Server draft = server(draftState, new DraftModel(int4.model(), int4.model().newState(512, 8, 8, KvCache.Type.F32)), ChatFormat.LLAMA2, quiet)) {
            for (JsonNode c : referenceCases()) {
                for (Server s : new Server[]{lookup, draft}) {
                    JsonNode r = post(s, "/v1/completions", completion(c.path("prompt").asText(), 200));
                    assertEquals(c.path("gen_text").asText(), r.at("/choices/0/text").asText(), c.path("prompt").asText());
                    assertEquals(200, r.at("/usage/completion_tokens").asInt());
                }
            }
            ObjectNode chat = JSON.createObjectNode().put("max_tokens", 200).put("seed", 5).put("temperature", 1);
            chat.putArray("messages").addObject().put("role", "user").put("content", "A cat");
            chat.putObject("response_format").put("type", "json_schema").putObject("json_schema").putObject("schema")
                    .put("type", "object").put("additionalProperties", false);
            JsonNode r = post(draft, "/v1/chat/completions", chat);
            assertEquals("{}", JSON.readTree(r.at("/choices/0/message/content").asText()).toString());
        }
    }

    /**
     * Continuous batching: the 8 reference prompts sent at once to a server generating 4 at a time, half of them
     * streamed, each reply llama.cpp's greedy text (each token's step exactly its own decode step's, whatever shares
     * it), the steps shared by several requests; then a chat with a stop string, from a slot's cache.
     */
    @Test
    void aBatchedServerGivesEachRequestItsOwnText() throws Exception {
        Engine.Batched engine = (Engine.Batched) Engine.batched(stories, 4, 512, KvCache.Type.F32);
        try (Server batched = new Server(stories, engine, ChatFormat.LLAMA2, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null,
                new PrintStream(OutputStream.nullOutputStream()));
             ExecutorService clients = Executors.newFixedThreadPool(8)) {
            continuedPrompt(batched); // first, while no slot holds more of that text
            List<JsonNode> cases = referenceCases();
            List<Future<String>> replies = new ArrayList<>();
            for (int i = 0; i < cases.size(); i++) {
                ObjectNode body = completion(cases.get(i).path("prompt").asText(), 200);
                boolean stream = i % 2 == 1;
                replies.add(clients.submit(() -> {
                    if (!stream) return post(batched, "/v1/completions", body).at("/choices/0/text").asText();
                    StringBuilder text = new StringBuilder();
                    List<String> data = events(batched, "/v1/completions", body);
                    for (String d : data.subList(0, data.size() - 1)) text.append(JSON.readTree(d).at("/choices/0/text").asText());
                    return text.toString();
                }));
            }
            for (int i = 0; i < cases.size(); i++) assertEquals(cases.get(i).path("gen_text").asText(), replies.get(i).get(), cases.get(i).path("prompt").asText());
            assertTrue(engine.stepTokens > 2 * engine.steps, engine.stepTokens + " tokens in " + engine.steps + " steps");
            // a chat, then the same chat continued: the second reuses a slot's cache
            ObjectNode chat = JSON.createObjectNode().put("max_tokens", 30).put("temperature", 0).put("stop", "girl");
            chat.putArray("messages").addObject().put("role", "user").put("content", "Tell me a story");
            JsonNode first = post(batched, "/v1/chat/completions", chat.deepCopy());
            JsonNode plainFirst = post(llama2, "/v1/chat/completions", chat.deepCopy());
            assertEquals(plainFirst.at("/choices/0/message/content"), first.at("/choices/0/message/content"));
            var messages = chat.withArray("messages");
            messages.addObject().put("role", "assistant").put("content", first.at("/choices/0/message/content").asText());
            messages.addObject().put("role", "user").put("content", "And then?");
            JsonNode second = post(batched, "/v1/chat/completions", chat.deepCopy());
            assertEquals(post(llama2, "/v1/chat/completions", chat).at("/choices/0/message/content"), second.at("/choices/0/message/content"));
            assertTrue(second.at("/timings/cache_n").asInt() > first.at("/usage/prompt_tokens").asInt() / 2, second.toString());
        }
    }

    /**
     * llama.cpp's {@code n_predict} (and {@code max_tokens}) of 0 and -1, on the one-at-a-time server and a batched
     * one: 0 evaluates the prompt into the cache and generates nothing (an empty text, no tokens, the prompt's usage),
     * so that the next request with that prompt runs only its last token and gives llama.cpp's greedy text; -1 is no
     * limit, the text of a limit past the context.
     */
    @Test
    void nPredictZeroCachesThePromptAndMinusOneHasNoLimit() throws Exception {
        JsonNode c = referenceCases().get(1);
        String prompt = c.path("prompt").asText();
        int promptTokens = c.path("prompt_ids").size();
        String twenty = new String(concat(Shared.ints(c.path("gen_ids")), 20, stories.tokenizer()), StandardCharsets.UTF_8);
        try (Server batched = new Server(stories, Engine.batched(stories, 2, 512, KvCache.Type.F32), ChatFormat.PLAIN,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            for (Server server : new Server[]{plain, batched}) {
                ObjectNode warm = completion(prompt, 1);
                warm.remove("max_tokens");
                warm.put("n_predict", 0);
                JsonNode none = post(server, "/v1/completions", warm);
                assertEquals("", none.at("/choices/0/text").asText(), none.toString());
                assertEquals(0, none.at("/usage/completion_tokens").asInt());
                assertEquals(promptTokens, none.at("/usage/prompt_tokens").asInt());
                JsonNode next = post(server, "/v1/completions", completion(prompt, 20));
                assertEquals(twenty, next.at("/choices/0/text").asText());
                assertEquals(promptTokens - 1, next.at("/timings/cache_n").asInt(), next.toString());
                assertEquals(1, next.at("/timings/prompt_n").asInt());
                assertEquals(0, post(server, "/v1/completions", completion(prompt, 0)).at("/usage/completion_tokens").asInt());
                JsonNode unlimited = post(server, "/v1/completions", completion(prompt, -1));
                assertEquals(post(server, "/v1/completions", completion(prompt, 1000)).at("/choices/0/text"), unlimited.at("/choices/0/text"));
                assertTrue(unlimited.at("/usage/completion_tokens").asInt() > 20, unlimited.toString());
            }
        }
    }

    /**
     * Eleven requests at once to a server generating ten at a time (two passes a step): the 8 reference prompts'
     * replies are llama.cpp's text, and three long prompts (run in pieces of 128 tokens between the others' steps)
     * get the replies the one-at-a-time server gives them (the same sums as in one batch).
     */
    @Test
    void longPromptsInPiecesAndMoreThanEightAtOnce() throws Exception {
        String text = java.nio.file.Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"));
        List<String> longPrompts = List.of(text.substring(0, 800), text.substring(300, 900), text.substring(1200, 1950));
        for (String p : longPrompts) {
            int n = stories.promptTokens(p).length;
            assertTrue(n > 2 * 128 && n < 450, n + " tokens");
        }
        List<String> expected = new ArrayList<>();
        for (String p : longPrompts) expected.add(post(plain, "/v1/completions", completion(p, 40)).at("/choices/0/text").asText());
        Engine.Batched engine = (Engine.Batched) Engine.batched(stories, 10, 512, KvCache.Type.F32);
        try (Server batched = new Server(stories, engine, ChatFormat.PLAIN, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null,
                new PrintStream(OutputStream.nullOutputStream()));
             ExecutorService clients = Executors.newFixedThreadPool(11)) {
            List<JsonNode> cases = referenceCases();
            List<Future<JsonNode>> replies = new ArrayList<>();
            for (JsonNode c : cases) replies.add(clients.submit(() -> post(batched, "/v1/completions", completion(c.path("prompt").asText(), 200))));
            List<Future<JsonNode>> longReplies = new ArrayList<>();
            for (String p : longPrompts) longReplies.add(clients.submit(() -> post(batched, "/v1/completions", completion(p, 40))));
            for (int i = 0; i < cases.size(); i++) assertEquals(cases.get(i).path("gen_text").asText(), replies.get(i).get().at("/choices/0/text").asText());
            for (int i = 0; i < longPrompts.size(); i++) assertEquals(expected.get(i), longReplies.get(i).get().at("/choices/0/text").asText(), "long prompt " + i);
            assertTrue(engine.stepTokens > 3 * engine.steps, engine.stepTokens + " tokens in " + engine.steps + " passes");
        }
    }

    /**
     * A prompt given as token ids runs as they are (llama.cpp's reference ids, BOS included, give its text), and
     * /tokenize and /detokenize turn text and ids into each other as the reference has them.
     */
    @Test
    void tokenIdsInAndOut() throws Exception {
        JsonNode c = referenceCases().get(2); // "Lily and Tom"
        ObjectNode byIds = completion("", 50);
        c.path("prompt_ids").forEach(byIds.putArray("prompt")::add);
        String expected = new String(concat(Shared.ints(c.path("gen_ids")), 50, stories.tokenizer()), StandardCharsets.UTF_8);
        assertEquals(expected, post(plain, "/v1/completions", byIds).at("/choices/0/text").asText());
        ObjectNode nested = completion("", 50);
        nested.set("prompt", JSON.createArrayNode().add(JSON.valueToTree(Shared.ints(c.path("prompt_ids")))));
        assertEquals(expected, post(plain, "/v1/completions", nested).at("/choices/0/text").asText());

        JsonNode ids = post(plain, "/tokenize", JSON.createObjectNode().put("content", c.path("prompt").asText()));
        assertEquals(c.path("prompt_ids").size() - 1, ids.path("tokens").size());
        for (int i = 1; i < c.path("prompt_ids").size(); i++) assertEquals(c.path("prompt_ids").get(i).asInt(), ids.path("tokens").get(i - 1).asInt());
        assertEquals(c.path("prompt_ids"), post(plain, "/tokenize", JSON.createObjectNode().put("content", c.path("prompt").asText()).put("add_special", true)).path("tokens"));
        ObjectNode detokenize = JSON.createObjectNode();
        for (int i = 0; i < 50; i++) detokenize.withArray("tokens").add(c.path("gen_ids").get(i).asInt());
        assertEquals(expected, post(plain, "/detokenize", detokenize).path("content").asText());

        String[][] bad = {{"/v1/completions", "{\"prompt\": [1, 600]}", "token 600 is not in the vocabulary (ids 0..511)"},
                {"/v1/completions", "{\"prompt\": [1, -3]}", "token ids must be integers >= 0, got -3"},
                {"/v1/completions", "{\"prompt\": [1, 2.5]}", "token ids must be integers >= 0, got 2.5"},
                {"/tokenize", "{\"text\": \"a\"}", "'content' must be a string"},
                {"/tokenize", "{\"content\": \"a\", \"add_special\": 1}", "'add_special' must be true or false"},
                {"/detokenize", "{\"tokens\": \"a\"}", "'tokens' must be a list of token ids"},
                {"/detokenize", "{\"tokens\": [512]}", "token 512 is not in the vocabulary"}};
        for (String[] b : bad) {
            Reply r = request(plain, "POST", b[0], b[1]);
            assertEquals(400, r.status(), b[1]);
            assertTrue(r.json().at("/error/message").asText().contains(b[2]), b[1] + ": " + r.body());
        }
    }

    /**
     * n choices: choice i is what a request of one choice with seed + i gives, in one response (usage summed) or one
     * stream (chunks by index), from the one-at-a-time server and the batched one alike.
     */
    @Test
    void severalChoices() throws Exception {
        Engine.Batched engine = (Engine.Batched) Engine.batched(stories, 3, 256, KvCache.Type.F32);
        try (Server batched = new Server(stories, engine, ChatFormat.LLAMA2, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null,
                new PrintStream(OutputStream.nullOutputStream()))) {
            for (Server server : new Server[]{llama2, batched}) {
                ObjectNode one = JSON.createObjectNode().put("max_tokens", 30).put("temperature", 1).put("seed", 40);
                one.putArray("messages").addObject().put("role", "user").put("content", "A story about a cat");
                List<String> singles = new ArrayList<>();
                int tokens = 0;
                for (int i = 0; i < 3; i++) {
                    JsonNode r = post(server, "/v1/chat/completions", one.deepCopy().put("seed", 40 + i));
                    singles.add(r.at("/choices/0/message/content").asText());
                    tokens += r.at("/usage/completion_tokens").asInt();
                }
                assertEquals(3, new java.util.HashSet<>(singles).size(), singles.toString());
                JsonNode three = post(server, "/v1/chat/completions", one.deepCopy().put("n", 3));
                assertEquals(3, three.path("choices").size());
                for (int i = 0; i < 3; i++) {
                    assertEquals(i, three.at("/choices/" + i + "/index").asInt());
                    assertEquals(singles.get(i), three.at("/choices/" + i + "/message/content").asText());
                }
                assertEquals(tokens, three.at("/usage/completion_tokens").asInt());
                ObjectNode streamed = one.deepCopy().put("n", 3);
                streamed.putObject("stream_options").put("include_usage", true);
                List<String> data = events(server, "/v1/chat/completions", streamed);
                StringBuilder[] texts = {new StringBuilder(), new StringBuilder(), new StringBuilder()};
                for (String d : data.subList(0, data.size() - 2)) {
                    JsonNode choice = JSON.readTree(d).at("/choices/0");
                    texts[choice.path("index").asInt()].append(choice.at("/delta/content").asText());
                }
                for (int i = 0; i < 3; i++) assertEquals(singles.get(i), texts[i].toString());
                assertEquals(tokens, JSON.readTree(data.get(data.size() - 2)).at("/usage/completion_tokens").asInt());
            }
        }
    }

    /**
     * Log-probabilities: a greedy completion's first five tokens' and their three most likely alternatives' are the
     * log-softmax of llama.cpp's logits (stories260K-refs.json: the prompt's last position, then four decode steps);
     * a chat's, whole and streamed, in OpenAI's chat shape; refused with speculative decoding.
     */
    @Test
    void logprobsAreTheReferenceLogSoftmax() throws Exception {
        JsonNode c = referenceCases().get(1);
        JsonNode r = post(plain, "/v1/completions", completion(c.path("prompt").asText(), 5).put("logprobs", 3));
        JsonNode lp = r.at("/choices/0/logprobs");
        // llama.cpp's /completion n_probs: the same figures in its shape, whole and streamed
        JsonNode own = post(plain, "/completion", completion(c.path("prompt").asText(), 5).put("n_probs", 3)).path("completion_probabilities");
        List<JsonNode> streamedProbs = new ArrayList<>();
        for (String d : events(plain, "/completion", completion(c.path("prompt").asText(), 5).put("n_probs", 3))) {
            JSON.readTree(d).path("completion_probabilities").forEach(streamedProbs::add);
        }
        assertEquals(5, own.size());
        assertEquals(5, streamedProbs.size());
        for (int j = 0; j < 5; j++) {
            assertEquals(lp.path("tokens").get(j).asText(), own.get(j).path("token").asText());
            assertEquals(lp.path("token_logprobs").get(j).asDouble(), own.get(j).path("logprob").asDouble(), 1e-6);
            assertEquals(3, own.get(j).path("top_logprobs").size());
            assertEquals(lp.path("top_logprobs").get(j).path(own.get(j).at("/top_logprobs/1/token").asText()).asDouble(), own.get(j).at("/top_logprobs/1/logprob").asDouble(), 1e-6);
            assertEquals(own.get(j).path("id").asInt(), own.get(j).at("/top_logprobs/0/id").asInt(), "greedy: the most likely token is the one drawn");
            assertEquals(own.get(j).path("token"), streamedProbs.get(j).path("token"));
        }
        int[] gen = Shared.ints(c.path("gen_ids"));
        JsonNode promptLogits = c.path("prompt_logits");
        for (int j = 0; j < 5; j++) {
            float[] logits = Shared.floats(j == 0 ? promptLogits.get(promptLogits.size() - 1) : c.path("gen_logits").get(j - 1));
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (float l : logits) max = Math.max(max, l);
            for (float l : logits) sum += Math.exp(l - max);
            double logZ = max + Math.log(sum);
            assertEquals(new String(stories.tokenizer().bytes(gen[j]), StandardCharsets.UTF_8), lp.path("tokens").get(j).asText());
            assertEquals(logits[gen[j]] - logZ, lp.path("token_logprobs").get(j).asDouble(), 2e-3, "token " + j);
            Integer[] order = new Integer[logits.length];
            for (int i = 0; i < order.length; i++) order[i] = i;
            java.util.Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
            JsonNode top = lp.path("top_logprobs").get(j);
            assertEquals(3, top.size());
            for (int i = 0; i < 3; i++) {
                String text = new String(stories.tokenizer().bytes(order[i]), StandardCharsets.UTF_8);
                assertEquals(logits[order[i]] - logZ, top.path(text).asDouble(), 2e-3, "token " + j + " alternative " + i + " " + top);
            }
        }
        assertEquals(0, lp.path("text_offset").get(0).asInt());
        assertEquals(lp.path("tokens").get(0).asText().length(), lp.path("text_offset").get(1).asInt());

        ObjectNode chat = JSON.createObjectNode().put("max_tokens", 12).put("temperature", 0).put("logprobs", true).put("top_logprobs", 2);
        chat.putArray("messages").addObject().put("role", "user").put("content", "Tell me a story");
        JsonNode whole = post(llama2, "/v1/chat/completions", chat.deepCopy());
        JsonNode content = whole.at("/choices/0/logprobs/content");
        assertEquals(whole.at("/usage/completion_tokens").asInt(), content.size());
        StringBuilder bytesText = new StringBuilder();
        for (JsonNode e : content) {
            assertTrue(e.path("logprob").asDouble() <= 0, e.toString());
            assertEquals(2, e.path("top_logprobs").size());
            assertEquals(e.path("token"), e.at("/top_logprobs/0/token"), "greedy: the most likely token is the one drawn");
            assertTrue(e.at("/top_logprobs/0/logprob").asDouble() >= e.at("/top_logprobs/1/logprob").asDouble());
            byte[] b = new byte[e.path("bytes").size()];
            for (int i = 0; i < b.length; i++) b[i] = (byte) e.path("bytes").get(i).asInt();
            bytesText.append(new String(b, StandardCharsets.UTF_8));
        }
        assertEquals(whole.at("/choices/0/message/content").asText(), bytesText.toString().stripLeading());
        List<JsonNode> streamed = new ArrayList<>();
        for (String d : events(llama2, "/v1/chat/completions", chat).stream().filter(d -> !d.equals("[DONE]")).toList()) {
            JSON.readTree(d).at("/choices/0/logprobs/content").forEach(streamed::add);
        }
        // the same tokens and log-probabilities (the second request runs the prompt's last token again, as a decode
        // step, whose logits may differ from the prompt's batch in their last bits)
        assertEquals(content.size(), streamed.size());
        for (int i = 0; i < streamed.size(); i++) {
            assertEquals(content.get(i).path("token"), streamed.get(i).path("token"));
            assertEquals(content.get(i).path("logprob").asDouble(), streamed.get(i).path("logprob").asDouble(), 1e-5);
            assertEquals(content.get(i).at("/top_logprobs/1/token"), streamed.get(i).at("/top_logprobs/1/token"));
        }
        try (Server lookup = server(stories.model().newState(128, 128, 5, KvCache.Type.F32), new PromptLookup(2), ChatFormat.PLAIN,
                new PrintStream(OutputStream.nullOutputStream()))) {
            Reply refused = request(lookup, "POST", "/v1/completions", completion("Once", 4).put("logprobs", 1).toString());
            assertEquals(400, refused.status());
            assertTrue(refused.body().contains("not given with speculative decoding"), refused.body());
        }
    }


    /**
     * {@code serve --max-requests 1}: while a stream generates, another request is refused at once (503, Retry-After,
     * OpenAI's error shape) rather than queued, and a request of more choices than the limit is refused as invalid;
     * once the stream's client goes, requests are served again.
     */
    @Test
    void requestsPastTheLimitAreRefusedNotQueued() throws Exception {
        Llama.State state = stories.model().newState(2048, 64, 1, KvCache.Type.F32);
        try (Server limited = new Server(stories, Engine.sequential(state, new Generator(stories.model(), state, stories.eos())), ChatFormat.PLAIN,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            limited.limitRequests(1);
            HttpRequest long_ = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + limited.port() + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(completion("Once upon a time", 2000).put("stream", true).put("ignore_eos", true).toString())).build();
            HttpResponse<java.io.InputStream> stream = CLIENT.send(long_, HttpResponse.BodyHandlers.ofInputStream());
            assertEquals(200, stream.statusCode());
            try (java.io.InputStream events = stream.body()) {
                assertTrue(events.read() >= 0, "the stream has begun");
                // queued, it would wait on the stream, which waits on this thread: the timeout fails the test instead
                HttpResponse<String> busy = CLIENT.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + limited.port() + "/v1/completions"))
                        .timeout(java.time.Duration.ofSeconds(20)).POST(HttpRequest.BodyPublishers.ofString(completion("Once", 5).toString())).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertEquals(503, busy.statusCode(), busy.body());
                assertEquals("1", busy.headers().firstValue("Retry-After").orElse(null));
                assertEquals("server_error", JSON.readTree(busy.body()).at("/error/type").asText(), busy.body());
                assertTrue(JSON.readTree(busy.body()).at("/error/message").asText().contains("1 requests in flight, at most 1"), busy.body());
            }
            Reply many = request(limited, "POST", "/v1/completions", completion("Once", 5).put("n", 2).toString());
            assertEquals(400, many.status(), many.body());
            assertTrue(many.body().contains("more than the 1 requests this server takes at once"), many.body());
            // the stream's client gone, its generation ends at its next token and the server takes requests again
            Reply served = null;
            for (long deadline = System.nanoTime() + 30_000_000_000L; System.nanoTime() < deadline; Thread.sleep(50)) {
                served = request(limited, "POST", "/v1/completions", completion("Once", 5).toString());
                if (served.status() != 503) break;
            }
            assertEquals(200, served.status(), served.body());
            Reply metrics = request(limited, "GET", "/metrics", null);
            long refused = metrics.body().lines().filter(l -> l.startsWith("gptfast_requests_refused_total ")).mapToLong(l -> Long.parseLong(l.split(" ")[1])).sum();
            assertTrue(refused >= 1, metrics.body()); // the one above, and any of the retries
        }
    }

    /** /metrics counts the choices and tokens served, in Prometheus's text format. */
    @Test
    void metricsCountWhatWasServed() throws Exception {
        Llama.State state = stories.model().newState(256, 64, 1, KvCache.Type.F32);
        try (Server counted = new Server(stories, Engine.sequential(state, new Generator(stories.model(), state, stories.eos())), ChatFormat.PLAIN,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(OutputStream.nullOutputStream()))) {
            JsonNode a = post(counted, "/v1/completions", completion("Once upon a time", 20));
            JsonNode b = post(counted, "/v1/completions", completion("Once upon a time", 7).put("n", 2).put("temperature", 1).put("seed", 3));
            Reply metrics = request(counted, "GET", "/metrics", null);
            assertEquals(200, metrics.status());
            java.util.Map<String, Double> values = new java.util.HashMap<>();
            for (String line : metrics.body().lines().toList()) {
                if (line.startsWith("#")) continue;
                String[] parts = line.split(" ");
                values.put(parts[0], Double.parseDouble(parts[1]));
            }
            assertEquals(3, values.get("gptfast_choices_total"));
            assertEquals(a.at("/usage/completion_tokens").asInt() + b.at("/usage/completion_tokens").asInt(), values.get("gptfast_tokens_generated_total"));
            assertEquals(3 * a.at("/usage/prompt_tokens").asDouble(), values.get("gptfast_prompt_tokens_total"));
            assertTrue(values.get("gptfast_prompt_tokens_cached_total") >= 2 * (a.at("/usage/prompt_tokens").asInt() - 1), metrics.body());
            assertEquals(0, values.get("gptfast_requests_waiting"));
            assertEquals(0, values.get("gptfast_requests_running"));
            assertTrue(metrics.body().contains("# TYPE gptfast_tokens_generated_total counter"), metrics.body());
        }
    }

    /**
     * llama.cpp's {@code POST /slots/ID?action=save|restore|erase}: a slot's cache saved to a file of the
     * {@code --slot-save-path} folder and erased; in a fresh server restored into another slot, after which the same
     * prompt runs only its last token and gives the same text (the batched engine, and the one-at-a-time server's
     * slot 0); a file of another identity (model, cache type) and a file that is not a prompt cache are refused, the
     * latter neither read nor written over; bad slots, names, actions and methods are refused, and without a folder
     * save and restore answer 501.
     */
    @Test
    void slotsAreSavedErasedAndRestored(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        String identity = stories.model().fingerprint() + " f32", prompt = "Once upon a time";
        InetSocketAddress any = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        JsonNode first;
        int held;
        try (Server a = new Server(stories, Engine.batched(stories, 2, 512, KvCache.Type.F32), ChatFormat.PLAIN, any, null, quiet)) {
            a.saveSlotsIn(dir, identity);
            first = post(a, "/v1/completions", completion(prompt, 12));
            JsonNode saved = post(a, "/slots/0?action=save", JSON.createObjectNode().put("filename", "s0.bin"));
            held = saved.path("n_saved").asInt();
            assertEquals(first.at("/usage/prompt_tokens").asInt() + 11, held, saved.toString()); // the last token drawn never ran
            assertEquals(java.nio.file.Files.size(dir.resolve("s0.bin")), saved.path("n_written").asLong());
            assertEquals(held, post(a, "/slots/0?action=erase", JSON.createObjectNode()).path("n_erased").asInt());
            assertEquals(0, post(a, "/slots/0?action=erase", JSON.createObjectNode()).path("n_erased").asInt());
        }
        try (Server b = new Server(stories, Engine.batched(stories, 2, 512, KvCache.Type.F32), ChatFormat.PLAIN, any, null, quiet)) {
            b.saveSlotsIn(dir, identity);
            assertEquals(held, post(b, "/slots/1?action=restore", JSON.createObjectNode().put("filename", "s0.bin")).path("n_restored").asInt());
            JsonNode again = post(b, "/v1/completions", completion(prompt, 12));
            assertEquals(first.at("/choices/0/text"), again.at("/choices/0/text"));
            assertEquals(first.at("/usage/prompt_tokens").asInt() - 1, again.at("/timings/cache_n").asInt(), again.toString());
            assertEquals(400, request(b, "POST", "/slots/2?action=save", "{\"filename\": \"x\"}").status());
            // an action on a slot that is generating waits for its request's end (llama.cpp defers it): it saves all
            ExecutorService client = Executors.newSingleThreadExecutor();
            try {
                Future<JsonNode> running = client.submit(() -> post(b, "/v1/completions", completion(prompt, 1500).put("ignore_eos", true)));
                int busy = -1;
                for (int i = 0; i < 400 && busy < 0 && !running.isDone(); i++) {
                    for (JsonNode slot : request(b, "GET", "/slots", null).json()) if (slot.path("is_processing").asBoolean()) busy = slot.path("id").asInt();
                }
                assertTrue(busy >= 0, "the generation was not seen running");
                JsonNode saved = post(b, "/slots/" + busy + "?action=save", JSON.createObjectNode().put("filename", "busy.bin"));
                JsonNode done = running.get();
                assertEquals(done.at("/usage/total_tokens").asInt() - 1, saved.path("n_saved").asInt(), saved.toString()); // the last token drawn never ran
            } finally {
                client.shutdownNow();
            }
        }
        plain.saveSlotsIn(dir, identity);
        try {
            assertEquals(held, post(plain, "/slots/0?action=restore", JSON.createObjectNode().put("filename", "s0.bin")).path("n_restored").asInt());
            JsonNode again = post(plain, "/v1/completions", completion(prompt, 12));
            assertEquals(first.at("/choices/0/text"), again.at("/choices/0/text"));
            assertEquals(first.at("/usage/prompt_tokens").asInt() - 1, again.at("/timings/cache_n").asInt(), again.toString());
            java.nio.file.Path notes = java.nio.file.Files.writeString(dir.resolve("notes.txt"), "the user's own file");
            Reply overwrite = request(plain, "POST", "/slots/0?action=save", "{\"filename\": \"notes.txt\"}");
            assertEquals(400, overwrite.status(), overwrite.body());
            assertTrue(overwrite.body().contains("is not a prompt cache (refusing to overwrite it)"), overwrite.body());
            assertEquals("the user's own file", java.nio.file.Files.readString(notes));
            assertEquals(400, request(plain, "POST", "/slots/0?action=restore", "{\"filename\": \"notes.txt\"}").status());
            for (String[] bad : new String[][]{{"/slots/1?action=save", "{\"filename\": \"x\"}"}, {"/slots/0?action=save", "{\"filename\": \"../x\"}"},
                    {"/slots/0?action=save", "{\"filename\": \".hidden\"}"}, {"/slots/0?action=fly", "{}"}, {"/slots/zero?action=save", "{}"},
                    {"/slots/0?action=restore", "{\"filename\": \"missing.bin\"}"}}) {
                Reply r = request(plain, "POST", bad[0], bad[1]);
                assertEquals(400, r.status(), bad[0] + " " + bad[1] + ": " + r.body());
            }
            assertEquals(405, request(plain, "GET", "/slots/0?action=save", null).status());
            plain.saveSlotsIn(dir, identity + " other");
            Reply other = request(plain, "POST", "/slots/0?action=restore", "{\"filename\": \"s0.bin\"}");
            assertEquals(400, other.status(), other.body());
            assertTrue(other.body().contains("was made with another model, --quantize, --kv-cache or adapters' weights"), other.body());
        } finally {
            plain.saveSlotsIn(null, null);
        }
        Reply none = request(plain, "POST", "/slots/0?action=save", "{\"filename\": \"s0.bin\"}");
        assertEquals(501, none.status(), none.body());
        assertEquals(200, request(plain, "POST", "/slots/0?action=erase", null).status());
    }
}
