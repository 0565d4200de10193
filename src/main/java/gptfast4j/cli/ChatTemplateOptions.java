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

    /** --chat-template-file's template, read and parsed before the model loads; null without the option. */
    ChatTemplate fromFile() throws IOException {
        if (file == null) return null;
        String source = TextFiles.read(file, System.in);
        try {
            return new ChatTemplate(source);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage());
        }
    }

    /** Whether either option was given. */
    boolean asked() {
        return jinja || file != null;
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
        return "jinja (the " + (file != null ? file.getFileName() + " " : "model's ") + "chat template)";
    }
}
