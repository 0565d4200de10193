package gptfast4j.model;

import gptfast4j.jinja.Template;
import gptfast4j.jinja.TemplateException;
import gptfast4j.tokenizer.Tokenizer;

import java.time.LocalDateTime;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's own chat template (Jinja, from the GGUF's {@code tokenizer.chat_template} or Hugging Face's
 * {@code tokenizer_config.json} / {@code chat_template.jinja}), rendered as llama.cpp renders it (its {@code --jinja}, the default):
 * the conversation, the tools, {@code bos_token}, {@code eos_token}, {@code add_generation_prompt} and
 * {@code enable_thinking} (true unless the caller's variables say otherwise), then the caller's variables; the text
 * tokenized with special tokens' texts as those tokens, its leading BOS text dropped where the tokenizer adds BOS.
 * Where {@link ChatFormat} is a fixed set of framings, this is whatever the model's makers wrote.
 */
public final class ChatTemplate {
    private final Template template;
    private final String source;
    /** Whether the template writes a system message (Gemma's refuse one: {@link #render} merges it into the next). */
    private final boolean systemRole;

    /** Parses {@code source}; a template that does not parse is an {@link IllegalArgumentException} naming its line. */
    public ChatTemplate(String source) {
        try {
            this.template = Template.parse(source);
        } catch (TemplateException e) {
            throw new IllegalArgumentException("the chat template does not parse: " + e.getMessage());
        }
        this.source = source;
        this.systemRole = writesSystemMessages(template);
    }

    /**
     * Whether {@code template} writes a system message's text, tried as llama.cpp tries it (a system message and a
     * user message, no BOS or EOS text): a template that refuses it (Gemma 2's and 3's raise an exception) or leaves
     * it out does not.
     */
    private static boolean writesSystemMessages(Template template) {
        String marker = "System message";
        Map<String, Object> context = new HashMap<>();
        context.put("messages", List.of(Map.of("role", "system", "content", marker), Map.of("role", "user", "content", "User message")));
        context.put("bos_token", "");
        context.put("eos_token", "");
        context.put("add_generation_prompt", true);
        try {
            return template.render(context, LocalDateTime.now()).contains(marker);
        } catch (TemplateException e) {
            return false;
        }
    }

    public String source() {
        return source;
    }

    /**
     * The prompt for {@code messages} (each a map: {@code role}, {@code content}, and {@code tool_calls} with
     * {@code function.arguments} a map, {@code tool_call_id}, ... as the template reads them), {@code tools} (null for
     * none) and {@code variables} (a request's {@code chat_template_kwargs}), ending where the model's reply begins.
     * A template's own refusal ({@code raise_exception}) or failure is an {@link IllegalArgumentException}. Where the
     * template writes no system message, a first system message's text goes before the next message's, a newline
     * between (or is dropped where it is the only message), as llama.cpp does.
     */
    public String render(Tokenizer tokenizer, int bos, int eos, List<?> messages, List<?> tools, Map<String, ?> variables, boolean addGenerationPrompt) {
        Map<String, Object> context = new HashMap<>();
        context.put("messages", systemRole ? messages : withoutSystemMessage(messages));
        if (tools != null && !tools.isEmpty()) context.put("tools", tools);
        context.put("bos_token", tokenizer.piece(bos));
        context.put("eos_token", tokenizer.piece(eos));
        context.put("add_generation_prompt", addGenerationPrompt);
        context.put("enable_thinking", true);
        context.putAll(variables);
        try {
            return template.render(context, LocalDateTime.now());
        } catch (TemplateException e) {
            throw new IllegalArgumentException("the chat template: " + e.getMessage());
        }
    }

    /**
     * {@code messages} with a first system message's text before the second's, a newline between, or dropped where it
     * is the only one (unchanged where either text is not a string: the template then says what it makes of them).
     */
    private static List<?> withoutSystemMessage(List<?> messages) {
        if (messages.isEmpty() || !(messages.getFirst() instanceof Map<?, ?> system) || !"system".equals(system.get("role"))) return messages;
        if (messages.size() == 1) return List.of();
        if (!(messages.get(1) instanceof Map<?, ?> next && system.get("content") instanceof String text && next.get("content") instanceof String rest)) return messages;
        List<Object> merged = new java.util.ArrayList<>(messages.subList(1, messages.size()));
        Map<Object, Object> first = new java.util.LinkedHashMap<>(next);
        first.put("content", text + "\n" + rest);
        merged.set(0, first);
        return merged;
    }

    /**
     * A rendered prompt without the BOS text it opens with where the tokenizer adds BOS itself (as llama.cpp takes it
     * off, so that BOS is not doubled): the text that follows BOS.
     */
    public static String withoutBos(Tokenizer tokenizer, String prompt, int bos, boolean addBos) {
        String bosText = tokenizer.piece(bos);
        return addBos && !bosText.isEmpty() && prompt.startsWith(bosText) ? prompt.substring(bosText.length()) : prompt;
    }

    /** A rendered prompt's tokens, BOS first where the tokenizer adds it (the template's own BOS text not doubled). */
    public static int[] tokens(Tokenizer tokenizer, String prompt, int bos, boolean addBos) {
        int[] ids = tokenizer.encodeWithSpecials(withoutBos(tokenizer, prompt, bos, addBos));
        if (!addBos) return ids;
        int[] withBos = new int[ids.length + 1];
        withBos[0] = bos;
        System.arraycopy(ids, 0, withBos, 1, ids.length);
        return withBos;
    }
}
