package gptfast4j.cli;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static gptfast4j.cli.ErrorsTest.assertOneLineError;
import static gptfast4j.cli.ErrorsTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@code gptfast imatrix --show-statistics} against llama-imatrix's own tables (src/test/resources/imatrix). */
class ImatrixCommandTest {
    private static final Path DIR = Path.of("src/test/resources/imatrix");

    /**
     * A dense model's matrix in both forms (GGUF, legacy .dat) and a mixture's (four experts counted apart): the
     * table is llama-imatrix's character for character, its float arithmetic and its printf's rounding (15.625% as
     * 15.62) included.
     */
    @Test
    void statisticsAreLlamaImatrixs() throws IOException {
        for (String matrix : new String[]{"mini-llama2.imatrix.gguf", "mini-llama2.imatrix.dat", "mini-mixtral.imatrix.gguf"}) {
            ErrorsTest.Outcome o = run("imatrix", "--in-file", DIR.resolve(matrix).toString(), "--show-statistics");
            assertEquals(0, o.exit(), o.err());
            String theirs = Files.readString(DIR.resolve(matrix + ".statistics.txt"));
            // llama-imatrix names the file as given: here from the fixture's folder
            assertEquals(theirs, o.out().replace(DIR.resolve(matrix).toString(), matrix), matrix);
        }
    }

    @Test
    void statisticsTakeOneMatrix() {
        String matrix = DIR.resolve("mini-llama2.imatrix.gguf").toString();
        String expected = "--show-statistics takes one matrix, --in-file FILE, and no --checkpoint or --file";
        assertOneLineError(run("imatrix", "--show-statistics"), expected);
        assertOneLineError(run("imatrix", "--in-file", matrix, "--in-file", matrix, "--show-statistics"), expected);
        assertOneLineError(run("imatrix", "--in-file", matrix, "-f", "README.md", "--show-statistics"), expected);
        assertOneLineError(run("imatrix", "--in-file", "README.md", "--show-statistics"), "neither a GGUF nor a legacy (.dat) importance matrix");
    }
}
