package gptfast4j.cli;

import gptfast4j.model.ChatFormat;
import gptfast4j.model.ChatTemplate;
import gptfast4j.model.Checkpoint;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/**
 * {@code --jinja}, {@code --no-jinja}, {@code --chat-template-file} and {@code --chat-template}: chats framed by a Jinja
 * chat template, by default the model's own, as llama.cpp's flags have it.
 */
final class ChatTemplateOptions {
    @Option(names = "--jinja", description = "Frame chats with the model's own chat template (Jinja), rendered as Hugging Face and llama.cpp render it (the default where the file has one; "
            + "with --chat-format, the template still frames them).")
    boolean jinja;

    @Option(names = "--no-jinja", description = "Frame chats in the fixed chat format the file's template is recognized as (llama2, llama3, chatml, ...; llama.cpp's legacy formats) instead of rendering it.")
    boolean noJinja;

    @Option(names = "--chat-template-file", paramLabel = "FILE", description = "A Jinja chat template to frame chats with instead of the model file's (implies --jinja).")
    Path file;

    @Option(names = "--chat-template", paramLabel = "NAME|TEMPLATE", description = "As llama.cpp's flag: a chat format's name (as --chat-format), or a Jinja template's text (as --chat-template-file).")
    String inline;

    /** Whether --chat-template gives a template's text rather than a format's name. */
    private boolean inlineTemplate() {
        return inline != null && (inline.contains("{{") || inline.contains("{%"));
    }

    /**
     * The chat format named by --chat-format ({@code named}, null for none) or by --chat-template; null for none. A name
     * that is neither a format's nor a template is refused, as is naming a format twice.
     */
    ChatFormat format(String named) {
        if (inline == null || inlineTemplate()) return named != null ? ChatFormat.parse(named, "--chat-format") : null;
        if (named != null) throw new IllegalArgumentException("give --chat-format or --chat-template, not both");
        try {
            return ChatFormat.parse(inline, "--chat-template");
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(e.getMessage() + " (or a Jinja template's text)");
        }
    }

    /** --chat-template-file's template (or --chat-template's text), read and parsed before the model loads; null without either. */
    ChatTemplate fromFile() throws IOException {
        if (inlineTemplate()) {
            if (file != null) throw new IllegalArgumentException("give --chat-template or --chat-template-file, not both");
            try {
                return new ChatTemplate(inline);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--chat-template: " + e.getMessage());
            }
        }
        if (file == null) return null;
        String source = TextFiles.read(file, System.in);
        try {
            return new ChatTemplate(source);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage());
        }
    }

    /** Whether one of the options was given. */
    boolean asked() {
        return jinja || noJinja || file != null || inline != null;
    }

    /**
     * The template to frame chats with: {@code fromFile} (--chat-template-file's or --chat-template's), else the
     * model's own (a model's template is how it chats, and llama.cpp renders it by default), but not with --no-jinja
     * or where {@code formatNamed} (--chat-format) without --jinja. A model template that does not parse falls back
     * to the fixed format it is recognized as, with a note (an error with --jinja). Null for none.
     */
    ChatTemplate template(ChatTemplate fromFile, Checkpoint ckpt, boolean formatNamed) {
        if (jinja && noJinja) throw new IllegalArgumentException("give --jinja or --no-jinja, not both");
        if (fromFile != null) {
            if (noJinja) throw new IllegalArgumentException("--no-jinja cannot be used with a template to render (--chat-template-file, --chat-template)");
            return fromFile;
        }
        if (noJinja || formatNamed && !jinja) return null;
        if (ckpt.chatTemplate() == null || ckpt.chatTemplate().isBlank()) {
            if (jinja) throw new IllegalArgumentException("--jinja needs a chat template, and " + ckpt.path().getFileName() + " has none: give one with --chat-template-file");
            return null;
        }
        try {
            return new ChatTemplate(ckpt.chatTemplate());
        } catch (IllegalArgumentException e) {
            if (jinja) throw e;
            System.err.println("note: the model's chat template cannot be rendered (" + e.getMessage() + "); chats use the chat format "
                    + ckpt.chatFormat().option() + (ckpt.chatFormat() == ChatFormat.PLAIN ? " (--chat-format names one)" : ""));
            return null;
        }
    }

    /** How a command says which framing it uses. */
    String describe() {
        return "jinja (the " + (file != null ? file.getFileName() + " " : inlineTemplate() ? "--chat-template " : "model's ") + "chat template)";
    }
}
