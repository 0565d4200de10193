package gptfast4j.cli;

import gptfast4j.io.ModelFormatException;
import gptfast4j.model.JvmChecks;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.util.Arrays;

/** The {@code gptfast} command. Errors a user can cause are one line on stderr and a non-zero exit. */
@Command(name = "gptfast", mixinStandardHelpOptions = true, version = "gptfast4j 0.1.0",
        description = "Fast, compact LLM text generation in pure Java.",
        subcommands = {GenerateCommand.class, ServeCommand.class, EmbedCommand.class, InfoCommand.class, BenchCommand.class, MakeModelCommand.class, QuantizeCommand.class, ImatrixCommand.class, PerplexityCommand.class, WorkerCommand.class, CommandLine.HelpCommand.class})
public final class Main {
    public static void main(String[] args) {
        System.exit(run(args));
    }

    public static int run(String... args) {
        boolean debug = Arrays.asList(args).contains("--debug");
        CommandLine cli = new CommandLine(new Main());
        cli.setParameterExceptionHandler((e, a) -> {
            PrintWriter err = e.getCommandLine().getErr();
            // a word where a command goes: picocli's own message ("Unmatched argument at index 0: 'x'") says neither that
            // a command was expected nor which there are
            if (e instanceof CommandLine.UnmatchedArgumentException u && u.getCommandLine() == cli && !u.getUnmatched().isEmpty() && !u.getUnmatched().getFirst().startsWith("-")) {
                err.println("error: unknown command '" + u.getUnmatched().getFirst() + "'; the commands are "
                        + String.join(", ", cli.getSubcommands().keySet()));
            } else {
                err.println("error: " + oneLine(e.getMessage()));
            }
            err.println("Try '" + e.getCommandLine().getCommandSpec().qualifiedName() + " --help' for more information.");
            return 2;
        });
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof WorkersOption.Followed) return 0; // an MPI rank that followed its leader to the end
            if (debug) e.printStackTrace(commandLine.getErr());
            commandLine.getErr().println("error: " + oneLine(describe(e)));
            return 1;
        });
        try {
            return execute(cli, args, debug);
        } finally {
            WorkersOption.closeGroups();
        }
    }

    private static int execute(CommandLine cli, String[] args, boolean debug) {
        try {
            return cli.execute(args);
        } catch (OutOfMemoryError | InternalError | NoClassDefFoundError | StackOverflowError e) { // picocli hands only Exceptions to the handler above; Errors pass through it
            if (debug) e.printStackTrace(cli.getErr());
            cli.getErr().println("error: " + oneLine(describe(e)));
            return 1;
        }
    }

    /**
     * {@code message} with its control characters escaped as in Java strings (a line break as {@code \n}, a tab as
     * {@code \t}, an escape character as a backslash, u and 001b): a message may quote text read from a corrupt file (a
     * tensor name), whose line breaks would split the error and whose escape sequences the terminal would act on; the
     * same for text shown a line per item (tokens, metadata values).
     */
    static String oneLine(String message) {
        if (message == null) return "";
        StringBuilder shown = new StringBuilder(message.length());
        message.codePoints().forEach(c -> {
            if (c == '\n') shown.append("\\n");
            else if (c == '\r') shown.append("\\r");
            else if (c == '\t') shown.append("\\t");
            else if (Character.isISOControl(c)) shown.append(String.format("\\u%04x", c));
            else shown.appendCodePoint(c);
        });
        return shown.toString();
    }

    static String describe(Throwable e) {
        // our own messages, which name the file and the fault (UncheckedIOException: a GGUF write that failed)
        if (e instanceof ModelFormatException || e instanceof IllegalArgumentException || e instanceof java.io.UncheckedIOException) return e.getMessage();
        if (e instanceof OutOfMemoryError) {
            // off-heap weights (quantized or regrouped copies) come from the C library, not from the Java heap
            return "out of memory (" + e.getMessage() + ")" + (String.valueOf(e.getMessage()).contains("off-heap")
                    ? ": the machine has too little free memory for the model's weights or its KV cache" : "; try a smaller context or a larger -Xmx");
        }
        String message = e.getMessage();
        // `java -jar gptfast4j.jar` without the launcher's flags: caught where a model is loaded, or where a command
        // that loads none (bench --memory) first touches a vector class
        if (JvmChecks.NO_VECTOR_API.equals(message) || e instanceof NoClassDefFoundError && String.valueOf(message).startsWith("jdk/incubator/vector/")) {
            return JvmChecks.NO_VECTOR_API;
        }
        if (e instanceof StackOverflowError) {
            // a recursive reading of the input (a grammar's rules, a schema's nesting) deeper than the thread's stack
            return "input nested too deeply to take (a stack overflow): a grammar's chain of rules, a JSON schema's nesting?";
        }
        if (e instanceof InternalError && String.valueOf(message).contains("unsafe memory access")) {
            // HotSpot's form of a SIGBUS on a mapped page: a model file cut short or replaced in place while mapped
            // (its weights are read from the mapping), or a disk error
            return "a fault reading a mapped file (" + message + "): was the model file truncated or overwritten while in use?";
        }
        return e.getClass().getSimpleName() + (message == null ? "" : ": " + message) + " (run with --debug for details)";
    }
}
