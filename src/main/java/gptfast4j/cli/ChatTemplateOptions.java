package gptfast4j.cli;

import gptfast4j.model.ChatFormat;
import gptfast4j.model.ChatTemplate;
import gptfast4j.model.Checkpoint;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/** {@code --jinja} and {@code --chat-template-file}: chats framed by a Jinja chat template, as llama.cpp's flags. */
final class ChatTemplateOptions {
    @Option(names = "--jinja", description = "Frame chats with the model's own chat template (Jinja: the file's, or --chat-template-file's), rendered as Hugging Face and llama.cpp's --jinja "
            + "render it, instead of the fixed chat formats (--chat-format); without it, a template that is none of those formats is rendered so.")
    boolean jinja;

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
        return jinja || file != null || inline != null;
    }

    /**
     * The template to frame chats with: {@code fromFile} (--chat-template-file's), else with --jinja the model's; and
     * without either, the model's where it is none of the fixed chat formats and {@code formatNamed} is false (no
     * --chat-format): a model's template is how it chats, as llama.cpp renders every template. Null for none.
     */
    ChatTemplate template(ChatTemplate fromFile, Checkpoint ckpt, boolean formatNamed) {
        if (fromFile != null) return fromFile;
        if (jinja) {
            if (ckpt.chatTemplate() == null) throw new IllegalArgumentException("--jinja needs a chat template, and " + ckpt.path().getFileName() + " has none: give one with --chat-template-file");
            return new ChatTemplate(ckpt.chatTemplate());
        }
        if (formatNamed || ckpt.chatFormat() != ChatFormat.PLAIN || ckpt.chatTemplate() == null || ckpt.chatTemplate().isBlank()) return null;
        try {
            return new ChatTemplate(ckpt.chatTemplate());
        } catch (IllegalArgumentException e) {
            System.err.println("note: the model's chat template is none of the fixed chat formats and cannot be rendered (" + e.getMessage() + "); --chat-format names a format");
            return null;
        }
    }

    /** How a command says which framing it uses. */
    String describe() {
        return "jinja (the " + (file != null ? file.getFileName() + " " : inlineTemplate() ? "--chat-template " : "model's ") + "chat template)";
    }
}
