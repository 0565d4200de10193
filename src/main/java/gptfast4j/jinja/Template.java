package gptfast4j.jinja;

import java.util.List;
import java.util.Map;
import java.time.LocalDateTime;

/**
 * A Jinja template, as chat templates are written: parsed once, rendered with a context of Python-like values
 * ({@link Values}: strings, {@code Long}, {@code Double}, {@code Boolean}, null, lists and string-keyed maps), with
 * the settings Hugging Face's {@code apply_chat_template} renders with (trim_blocks, lstrip_blocks, loop controls,
 * {@code raise_exception}, {@code strftime_now}, {@code tojson} without ASCII escapes).
 */
public final class Template {
    private final List<Node.Stmt> body;

    private Template(List<Node.Stmt> body) {
        this.body = body;
    }

    /** Parses {@code source}; a syntax error is a {@link TemplateException} naming its line. */
    public static Template parse(String source) {
        return new Template(Parser.parse(source));
    }

    /**
     * The text for {@code context} (names to values), {@code now} the time {@code strftime_now} formats. A
     * failure (an undefined value used, a template's {@code raise_exception}) is a {@link TemplateException}.
     */
    public String render(Map<String, ?> context, LocalDateTime now) {
        Renderer.Frame root = new Renderer.Frame(null);
        root.names.putAll(context);
        StringBuilder out = new StringBuilder();
        try {
            new Renderer(new Builtins(now)).render(body, root, out);
        } catch (StackOverflowError e) {
            throw new TemplateException("the template recurses too deeply");
        }
        return out.toString();
    }

    /**
     * A value's JSON as a template's {@code tojson} writes it (Python's {@code json.dumps}: {@code ", "} and
     * {@code ": "} between items, non-ASCII as it is, floats as Python prints them), for text that must equal a
     * template's.
     */
    public static String toJson(Object value) {
        return Values.json(value, false, null, ", ", ": ", false);
    }
}
