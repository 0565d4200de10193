package gptfast4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code --workers mpi}: a command split across the processes of an Open MPI job. The jobs run where Open MPI's
 * {@code mpirun} is installed (Debian: openmpi-bin) and are skipped elsewhere; the refusal outside a job runs everywhere.
 */
class MpiTest {
    private static final String STORIES = Shared.MODELS.resolve("stories260K.gguf").toString();
    private static final Path MPIRUN = Path.of("/usr/bin/mpirun");

    record Job(int exit, String out, String err) {}

    /** {@code mpirun} with one part per argument list (MPMD), each of {@code gptfast ARGS} in a JVM of its own with this JVM's class path. */
    private static Job mpirun(List<List<String>> parts) throws Exception {
        assumeTrue(Files.isExecutable(MPIRUN), "Open MPI's mpirun is not installed");
        List<String> line = new ArrayList<>(List.of(MPIRUN.toString(), "--oversubscribe"));
        for (int i = 0; i < parts.size(); i++) {
            if (i > 0) line.add(":");
            line.addAll(List.of("-np", "1"));
            line.addAll(ErrorsTest.gptfast(parts.get(i).toArray(String[]::new)).command());
        }
        ProcessBuilder pb = new ProcessBuilder(line);
        pb.environment().put("OMPI_ALLOW_RUN_AS_ROOT", "1"); // a container's tests run as root, which mpirun refuses unless told
        pb.environment().put("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        Process p = pb.start();
        byte[][] err = new byte[1][];
        Thread reader = Thread.ofPlatform().start(() -> {
            try {
                err[0] = p.getErrorStream().readAllBytes();
            } catch (java.io.IOException e) {
                err[0] = e.toString().getBytes(StandardCharsets.UTF_8);
            }
        });
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "mpirun did not end");
        reader.join();
        return new Job(p.exitValue(), out, new String(err[0], StandardCharsets.UTF_8));
    }

    /** A reference prompt's 200 greedy tokens over a job of two processes are llama.cpp's text. */
    @Test
    void greedyTextIsLlamaCppsOverAnMpiJob() throws Exception {
        JsonNode c = Shared.json(Shared.REFERENCE.resolve("stories260K/stories260K-refs.json")).path("cases").get(1);
        String prompt = c.path("prompt").asText();
        List<String> args = List.of("generate", "--checkpoint", STORIES, "--prompt", prompt, "--temperature", "0", "-n", "200", "--threads", "1", "--workers", "mpi");
        Job job = mpirun(List.of(args, args));
        assertEquals(0, job.exit(), job.err());
        assertTrue(job.err().contains("tensor parallelism: the 2 processes of this MPI job"), job.err());
        assertEquals(prompt + c.path("gen_text").asText(), job.out().strip());
    }

    /** A rank that loaded another model (here another --quantize) ends the job, naming itself. */
    @Test
    void aRankWithAnotherModelEndsTheJob() throws Exception {
        List<String> args = List.of("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", "mpi");
        List<String> other = new ArrayList<>(args);
        other.addAll(List.of("--quantize", "int8"));
        Job job = mpirun(List.of(args, other));
        assertTrue(job.exit() != 0, job.err());
        assertTrue(job.err().contains("error: MPI rank 1 loaded another model than rank 0"), job.err());
    }

    /** A split the model does not allow is refused by every rank alike, before MPI starts, and the job fails. */
    @Test
    void aSplitTheModelDoesNotAllowFailsTheJob() throws Exception {
        List<String> args = List.of("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", "mpi");
        Job job = mpirun(List.of(args, args, args));
        assertTrue(job.exit() != 0, job.err());
        assertTrue(job.err().contains("error: this model's 4 kv heads cannot be split evenly across 3 processes"), job.err());
    }

    @Test
    void outsideAnMpiJobIsAOneLineError() {
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", "mpi"),
                "--workers mpi runs in an MPI job of several processes: start the command with mpirun -np N");
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", "mpi,127.0.0.1:7070"),
                "--workers mpi takes no other workers");
    }
}
