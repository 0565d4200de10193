package gptfast4j.cli;

import gptfast4j.model.ChatTemplate;
import gptfast4j.model.Checkpoint;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The interactive chat's conversation framed by a Jinja chat template ({@code --jinja}): each turn renders the whole
 * conversation, and only the tokens after the longest start the KV cache already holds run (as the server reuses a
 * cache), so a template that rewrites earlier turns (Qwen3's and DeepSeek-R1's drop an answer's thinking) costs a
 * re-run of what changed, never a wrong prompt. A full context drops the oldest exchanges, after the system prompt.
 */
final class TemplateChat {
    /** Tokens to run from position {@code start}, the cache's positions before it kept. */
    record Turn(int start, int[] tokens) {}

    private final ChatTemplate template;
    private final Checkpoint ckpt;
    private final List<Object> messages = new ArrayList<>();
    /** The conversation's tokens in the KV cache, position by position. */
    private int[] cached = new int[0];
    /** Tokens of the turn last handed out, in full (the cache's start and what ran). */
    private int[] turn;

    TemplateChat(ChatTemplate template, Checkpoint ckpt, String system) {
        this.template = template;
        this.ckpt = ckpt;
        if (system != null) messages.add(message("system", system));
    }

    private static Map<Object, Object> message(String role, String content) {
        Map<Object, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }

    private int[] tokens(List<Object> conversation) {
        String prompt = template.render(ckpt.tokenizer(), ckpt.bos(), ckpt.eos()[0], conversation, null, Map.of(), true);
        return ChatTemplate.tokens(ckpt.tokenizer(), prompt, ckpt.bos(), ckpt.addBos());
    }

    /**
     * The tokens every first turn starts with, whatever its message: what the framings of two one-letter messages
     * share (the system prompt's, run while the first message is typed; where the template writes no system message,
     * the system prompt's text opens the first message instead, {@link ChatTemplate#render}). A template that refuses
     * a first turn fails here, before the chat starts.
     */
    int[] prefix() {
        List<Object> a = new ArrayList<>(messages), b = new ArrayList<>(messages);
        a.add(message("user", "a"));
        b.add(message("user", "b"));
        int[] x = tokens(a), y = tokens(b);
        int shared = Arrays.mismatch(x, y);
        return Arrays.copyOf(x, shared < 0 ? x.length : shared);
    }

    /** The cache holds {@code tokens} (the prefix, run or restored). */
    void cached(int[] tokens) {
        cached = tokens;
    }

    /**
     * The next turn for the user's {@code text}, leaving room for a reply of {@code reply} tokens in
     * {@code contextLength} positions; null where the message alone (with the system prompt) does not fit, and it is
     * not kept. A template's refusal of the conversation is an IllegalArgumentException, the message not kept. The turn
     * starts where the conversation's tokens first differ from the cache's, or at the greatest position before that
     * which {@code resumable} gives (Llama.State#resumableAt).
     */
    Turn next(String text, int contextLength, int reply, java.util.function.IntUnaryOperator resumable) {
        messages.add(message("user", text));
        int[] tokens;
        try {
            tokens = tokens(messages);
            int first = messages.getFirst() instanceof Map<?, ?> m && "system".equals(m.get("role")) ? 1 : 0;
            while (tokens.length + reply > contextLength && messages.size() - first > 1) {
                messages.subList(first, Math.min(first + 2, messages.size() - 1)).clear(); // the oldest exchange
                tokens = tokens(messages);
            }
        } catch (IllegalArgumentException e) {
            messages.removeLast();
            throw e;
        }
        if (tokens.length >= contextLength) {
            messages.removeLast();
            return null;
        }
        turn = tokens;
        int start = Arrays.mismatch(cached, tokens);
        if (start < 0) start = Math.min(cached.length, tokens.length);
        start = Math.min(start, tokens.length - 1); // one token at least runs: the reply is drawn from its logits
        start = resumable.applyAsInt(start); // a model's recurrent layers go on only from the positions they keep
        return new Turn(start, Arrays.copyOfRange(tokens, start, tokens.length));
    }

    /** The last turn's reply: its text joins the conversation, its first {@code inCache} tokens the cache's. */
    void replied(int[] replyTokens, int inCache) {
        messages.add(message("assistant", ckpt.tokenizer().decode(replyTokens)));
        cached = Arrays.copyOf(turn, turn.length + inCache);
        System.arraycopy(replyTokens, 0, cached, turn.length, inCache);
    }

    /** How many tokens the last turn's prompt has (its framing's, with the conversation before it). */
    int turnLength() {
        return turn.length;
    }
}
