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

    /** Parses {@code source}; a template that does not parse is an {@link IllegalArgumentException} naming its line. */
    public ChatTemplate(String source) {
        try {
            this.template = Template.parse(source);
        } catch (TemplateException e) {
            throw new IllegalArgumentException("the chat template does not parse: " + e.getMessage());
        }
        this.source = source;
    }

    public String source() {
        return source;
    }

    /**
     * The prompt for {@code messages} (each a map: {@code role}, {@code content}, and {@code tool_calls} with
     * {@code function.arguments} a map, {@code tool_call_id}, ... as the template reads them), {@code tools} (null for
     * none) and {@code variables} (a request's {@code chat_template_kwargs}), ending where the model's reply begins.
     * A template's own refusal ({@code raise_exception}) or failure is an {@link IllegalArgumentException}.
     */
    public String render(Tokenizer tokenizer, int bos, int eos, List<?> messages, List<?> tools, Map<String, ?> variables, boolean addGenerationPrompt) {
        Map<String, Object> context = new HashMap<>();
        context.put("messages", messages);
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
