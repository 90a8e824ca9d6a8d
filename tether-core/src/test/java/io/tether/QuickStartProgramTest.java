package io.tether;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringWriter;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * docs/quickstart/AlignYourOwnCheckpoint.java, the README's quick start through the Java API, compiles against
 * tether-core as it is and runs to the end on the fixture GPT-2: so the documented program cannot rot.
 */
class QuickStartProgramTest {
    @TempDir Path tmp;
    static final Path GPT2 = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/checkpoints/lm-buddy-fake-gpt2");

    @Test
    void documentedProgramCompilesAndTakesTheWholePath() throws Exception {
        Path docs = checkout().resolve("docs/quickstart");
        Path source = docs.resolve("AlignYourOwnCheckpoint.java");
        assertTrue(Files.isRegularFile(source), "missing " + source);
        Path out = tmp.resolve("out");
        String log = compileAndRun(source, "AlignYourOwnCheckpoint", tmp, GPT2.toString(), out.toString(), docs.toString());
        assertTrue(log.contains("pairs.train.jsonl: 0 errors"), log);
        assertTrue(Files.isRegularFile(out.resolve("sft/adapter/adapter_config.json")) && Files.isRegularFile(out.resolve("dpo/adapter/adapter_config.json")),
                "both runs trained LoRA adapters");
        assertTrue(Files.readString(out.resolve("dpo/provenance.json")).contains("LoRA adapters disabled"), "DPO's reference is the SFT model, adapters off");
        assertTrue(log.matches("(?s).*win rate vs SFT [0-9.]+ over [1-9][0-9]* prompts.*"), log);
        // The merge reproduces the model the DPO run saved, and the merged model generates.
        assertArrayEquals(Files.readAllBytes(out.resolve("dpo/model/model.safetensors")), Files.readAllBytes(out.resolve("aligned/model.safetensors")));
        assertTrue(log.matches("(?s).*\ngenerated: \\S.*"), log);
    }

    /** Compiles {@code source} against tether-core's class path into {@code tmp}/classes and runs its main; returns what it printed. */
    static String compileAndRun(Path source, String className, Path tmp, String... args) throws Exception {
        Path classes = Files.createDirectories(tmp.resolve("classes"));
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        StringWriter diagnostics = new StringWriter();
        boolean compiled = javac.getTask(diagnostics, null, null,
                List.of("-classpath", System.getProperty("java.class.path"), "-d", classes.toString()),
                null, javac.getStandardFileManager(null, null, StandardCharsets.UTF_8).getJavaFileObjects(source)).call();
        assertTrue(compiled, diagnostics.toString());
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        try (URLClassLoader loader = new URLClassLoader(new URL[] {classes.toUri().toURL()}, QuickStartProgramTest.class.getClassLoader())) {
            System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
            loader.loadClass(className).getMethod("main", String[].class).invoke(null, (Object) args);
        } finally {
            System.setOut(stdout);
        }
        String log = printed.toString(StandardCharsets.UTF_8);
        stdout.print(log);
        return log;
    }

    /** The checkout: the directory above the working directory (the module) that holds README.md. */
    static Path checkout() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent())
            if (Files.isRegularFile(p.resolve("README.md")) && Files.isDirectory(p.resolve("tether-core"))) return p;
        throw new IllegalStateException("no checkout above " + Path.of("").toAbsolutePath());
    }
}
