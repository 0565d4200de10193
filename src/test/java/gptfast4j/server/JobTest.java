package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.Shared;
import gptfast4j.generate.Generator;
import gptfast4j.model.Checkpoint;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A chat job given a reply's tokens as a Qwen3 model with tools would write them (a thinking block, a sentence, a
 * {@code <tool_call>} block; the tokens of stories260K's vocabulary, whose byte pieces spell any text): the thinking
 * as reasoning_content, the sentence as content, the block as a call, whole and streamed alike.
 */
class JobTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String REPLY = "<think>\nThe user wants the weather.\n</think>\n\nLet me check.\n<tool_call>\n"
            + "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";

    /** The job's outbox after the reply's tokens and the end (EOS). */
    private static List<Object> run(Checkpoint ckpt, boolean stream) throws Exception {
        JsonNode body = JSON.readTree("""
                {"messages": [{"role": "user", "content": "Weather in Paris?"}], "stream": %s,
                 "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
                   "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}""".formatted(stream));
        CompletionRequest request = CompletionRequest.parse(body, true, true);
        LinkedBlockingQueue<Object> outbox = new LinkedBlockingQueue<>();
        Job job = new Job(ckpt, request, new int[]{1}, new Responses("id", true, "m", 0, false), outbox, true, false);
        job.sampler();
        int[] tokens = ckpt.tokenizer().encode(REPLY);
        for (int t : tokens) assertTrue(job.accept(t));
        job.finish(new Generator.Result(tokens, 1, 0, tokens.length, 1, 0, true, tokens.length, false), 1, 0);
        return new ArrayList<>(outbox);
    }

    @Test
    void aQwen3ReplyWithToolsGivesItsThinkingItsAnswerAndItsCall() throws Exception {
        Checkpoint ckpt = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        List<Object> whole = run(ckpt, false);
        JsonNode message = ((Job.Completion) whole.getLast()).response().at("/choices/0/message");
        assertEquals("The user wants the weather.", message.path("reasoning_content").asText(), message.toString());
        assertEquals("Let me check.", message.path("content").asText());
        assertEquals("get_weather", message.at("/tool_calls/0/function/name").asText());
        assertEquals("{\"city\":\"Paris\"}", message.at("/tool_calls/0/function/arguments").asText());
        assertEquals("tool_calls", ((Job.Completion) whole.getLast()).response().at("/choices/0/finish_reason").asText());

        StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
        String call = null, finish = null;
        for (Object item : run(ckpt, true)) {
            if (!(item instanceof JsonNode chunk) || !chunk.has("choices")) continue;
            JsonNode choice = chunk.at("/choices/0");
            reasoning.append(choice.at("/delta/reasoning_content").asText());
            content.append(choice.at("/delta/content").asText());
            if (choice.at("/delta/tool_calls/0/function/name").isTextual()) call = choice.at("/delta/tool_calls/0/function/name").asText();
            if (choice.path("finish_reason").isTextual()) finish = choice.path("finish_reason").asText();
        }
        assertEquals(message.path("reasoning_content").asText(), reasoning.toString());
        assertEquals(message.path("content").asText(), content.toString());
        assertEquals("get_weather", call);
        assertEquals("tool_calls", finish);
    }

    /**
     * A gpt-oss chat job given a harmony reply's tokens (stories260K's vocabulary with five of its tokens renamed to
     * harmony's markers, of control type): the analysis as reasoning_content, the final message as content, whole and
     * streamed alike, the markers in neither.
     */
    @Test
    void aHarmonyReplyGivesItsAnalysisAsThinking(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        Checkpoint ckpt = Checkpoint.load(Shared.storiesWithSpecials(dir.resolve("harmony.gguf"), 500, gptfast4j.tokenizer.Tokenizer.HARMONY_MARKERS.toArray(String[]::new)), null);
        int[] tokens = ckpt.tokenizer().encodeWithSpecials("<|channel|>analysis<|message|>The user says hi.<|end|><|start|>assistant<|channel|>final<|message|>Hello there!");
        assertTrue(java.util.stream.IntStream.of(tokens).anyMatch(t -> t == 501), java.util.Arrays.toString(tokens));
        List<String> parts = new ArrayList<>();
        for (boolean stream : new boolean[]{false, true}) {
            CompletionRequest request = CompletionRequest.parse(JSON.readTree("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stream\": " + stream + "}"), true);
            LinkedBlockingQueue<Object> outbox = new LinkedBlockingQueue<>();
            Job job = new Job(ckpt, request, new int[]{1}, new Responses("id", true, "m", 0, false), outbox, true, false);
            job.sampler();
            for (int t : tokens) assertTrue(job.accept(t));
            job.finish(new Generator.Result(tokens, 1, 0, tokens.length, 1, 0, true, tokens.length, false), 1, 0);
            StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
            for (Object item : outbox) {
                if (item instanceof Job.Completion done && !stream) {
                    reasoning.append(done.response().at("/choices/0/message/reasoning_content").asText());
                    content.append(done.response().at("/choices/0/message/content").asText());
                } else if (item instanceof JsonNode chunk && chunk.has("choices")) {
                    reasoning.append(chunk.at("/choices/0/delta/reasoning_content").asText());
                    content.append(chunk.at("/choices/0/delta/content").asText());
                }
            }
            parts.add(reasoning + "|" + content);
        }
        // each body opens with a space: this SentencePiece vocabulary's dummy prefix after a special token (gpt-oss's
        // byte-level one has none), which the text keeps as llama.cpp's parser would
        assertEquals(List.of(" The user says hi.| Hello there!", " The user says hi.| Hello there!"), parts);
    }

    /**
     * A gpt-oss chat with tools given a harmony reply that calls one (its analysis, then a commentary message to
     * {@code functions.get_weather} ended by {@code <|call|>}, the end of generation): the analysis as
     * reasoning_content, the call as a tool call with its JSON arguments, no content; a message to a function whose
     * body is not a JSON object is content.
     */
    @Test
    void aHarmonyReplyCallsItsFunction(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        Checkpoint ckpt = Checkpoint.load(Shared.storiesWithSpecials(dir.resolve("harmony.gguf"), 500, gptfast4j.tokenizer.Tokenizer.HARMONY_MARKERS.toArray(String[]::new)), null);
        JsonNode body = JSON.readTree("""
                {"messages": [{"role": "user", "content": "Weather in Paris?"}],
                 "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
                   "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}""");
        CompletionRequest request = CompletionRequest.parse(body, true, Tools.Syntax.HARMONY, true);
        for (String[] reply : new String[][]{
                {"<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}",
                        "get_weather {\"city\":\"Paris\"}"},
                {"<|channel|>commentary to=functions.get_weather<|message|>Paris please", "Paris please"}}) {
            LinkedBlockingQueue<Object> outbox = new LinkedBlockingQueue<>();
            Job job = new Job(ckpt, request, new int[]{1}, new Responses("id", true, "m", 0, false), outbox, true, false);
            job.sampler();
            int[] tokens = ckpt.tokenizer().encodeWithSpecials(reply[0]);
            for (int t : tokens) assertTrue(job.accept(t));
            job.finish(new Generator.Result(tokens, 1, 0, tokens.length, 1, 0, true, tokens.length, false), 1, 0);
            JsonNode choice = ((Job.Completion) new ArrayList<>(outbox).getLast()).response().at("/choices/0");
            JsonNode message = choice.path("message");
            if (reply[1].startsWith("get_weather")) {
                assertEquals(" Need the weather.", message.path("reasoning_content").asText(), message.toString());
                assertEquals(reply[1], message.at("/tool_calls/0/function/name").asText() + " " + message.at("/tool_calls/0/function/arguments").asText());
                assertTrue(message.path("content").isNull(), message.toString());
                assertEquals("tool_calls", choice.path("finish_reason").asText());
            } else {
                assertEquals(" " + reply[1], message.path("content").asText(), message.toString());
                assertTrue(message.path("tool_calls").isMissingNode() || message.path("tool_calls").isEmpty(), message.toString());
            }
        }
    }
}
