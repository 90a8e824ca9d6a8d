package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's "Align your own checkpoint" section runs as written: every {@code ./tether} command of its bash block
 * goes through the CLI's in-process entry point and must exit 0, and each step leaves what it promises. So the
 * README cannot drift from what runs.
 *
 * <p>The commands are written to run from the checkout. The JVM's working directory cannot change, so path
 * arguments are resolved the way the shell would resolve them there, with one redirection: {@code runs/...} goes
 * to a temp directory (the README says everything is written under {@code runs/quickstart/}),
 * {@code ../shared/...} to the shared fixtures and {@code docs/...} to the checkout's docs. Nothing else is edited.
 */
class QuickStartTest {
    @TempDir Path tmp;
    static final String SECTION = "## Align your own checkpoint";
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void readmeQuickStartRunsAsWritten() throws IOException {
        Path checkout = checkout();
        List<List<String>> commands = commands(Files.readString(checkout.resolve("README.md")));
        // The user's path, in order: check the data, SFT, DPO, evaluate against SFT, merge, generate.
        List<String> steps = new ArrayList<>();
        for (List<String> c : commands) steps.add(c.get(0).equals("data") ? c.get(0) + " " + c.get(1) : c.get(0));
        List<String> path = List.of("data validate", "data stats", "sft", "dpo", "eval", "merge", "generate");
        int at = 0;
        for (String s : steps) if (at < path.size() && s.equals(path.get(at))) at++;
        assertEquals(path.size(), at, "the section's commands " + steps + " must take the path " + path);

        Path shared = Path.of(System.getProperty("tether.shared", "../shared"));
        Map<String, Path> outputs = new LinkedHashMap<>();   // command -> what it wrote, to check it and the chaining
        for (List<String> command : commands) {
            List<String> args = new ArrayList<>();
            for (String a : command) args.add(resolved(a, checkout, shared));
            String[] r = TextCliTest.run(args.toArray(new String[0]));
            assertEquals("0", r[0], "./tether " + String.join(" ", command) + "\n" + r[2]);
            String name = command.get(0);
            switch (name) {
                case "sft", "dpo" -> {
                    Path out = Path.of(option(args, "--output-dir"));
                    assertTrue(Files.isRegularFile(out.resolve("model/model.safetensors")), name + " saved its model");
                    assertTrue(Files.isRegularFile(out.resolve("adapter/adapter_config.json")), name + " saved its LoRA adapter");
                    assertTrue(Files.isRegularFile(out.resolve("model/tokenizer.json")), name + "'s model carries the tokenizer");
                    outputs.put(name, out);
                }
                case "eval" -> {
                    JsonNode e = JSON.readTree(Path.of(option(args, "--out")).toFile());
                    assertTrue(e.get("prompts").asInt() > 0 && e.has("win_rate") && e.has("gate"), e.toString());
                    assertEquals(outputs.get("dpo").resolve("model"), Path.of(option(args, "--model")), "eval judges the DPO model");
                    assertEquals(outputs.get("sft").resolve("model"), Path.of(option(args, "--baseline")), "against the SFT model");
                }
                case "merge" -> {
                    Path merged = Path.of(option(args, "--out"));
                    assertEquals(outputs.get("dpo").resolve("adapter"), Path.of(option(args, "--adapter")), "merge takes the DPO adapter");
                    // Merging the adapter into the SFT model gives the model the DPO run saved.
                    assertArrayEquals(Files.readAllBytes(outputs.get("dpo").resolve("model/model.safetensors")), Files.readAllBytes(merged.resolve("model.safetensors")));
                    outputs.put(name, merged);
                }
                case "generate" -> {
                    assertEquals(outputs.get("merge"), Path.of(option(args, "--model")), "generate from the merged model");
                    List<String> lines = Files.readAllLines(Path.of(option(args, "--out")));
                    assertFalse(lines.isEmpty());
                    for (String l : lines) assertFalse(JSON.readTree(l).get("completion").asText().isEmpty(), l);
                }
                default -> { }
            }
            if (name.equals("dpo")) {
                assertEquals(outputs.get("sft").resolve("model"), Path.of(option(args, "--model")), "DPO starts from the SFT model");
                assertTrue(JSON.readTree(outputs.get("dpo").resolve("provenance.json").toFile()).get("reference").asText().contains("LoRA adapters disabled"));
            }
        }
    }

    /** The checkout: the directory above the working directory (the module) that holds README.md. */
    static Path checkout() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent())
            if (Files.isRegularFile(p.resolve("README.md")) && Files.isDirectory(p.resolve("tether-cli"))) return p;
        throw new IllegalStateException("no checkout above " + Path.of("").toAbsolutePath());
    }

    /** The arguments of every {@code ./tether} command in the section's bash blocks (continuations joined, comments dropped). */
    static List<List<String>> commands(String readme) {
        int from = readme.indexOf("\n" + SECTION + "\n");
        assertTrue(from >= 0, "README.md has no section '" + SECTION + "'");
        int to = readme.indexOf("\n## ", from + 1);
        String section = readme.substring(from, to < 0 ? readme.length() : to);
        List<List<String>> out = new ArrayList<>();
        boolean inBash = false;
        StringBuilder line = new StringBuilder();
        for (String l : section.split("\n", -1)) {
            if (l.startsWith("```")) {
                inBash = !inBash && l.equals("```bash");
                continue;
            }
            if (!inBash) continue;
            String t = l.strip();
            if (line.length() == 0 && (t.isEmpty() || t.startsWith("#"))) continue;
            if (t.endsWith("\\")) {
                line.append(t, 0, t.length() - 1).append(' ');
                continue;
            }
            line.append(t);
            List<String> words = words(line.toString());
            line.setLength(0);
            assertEquals("./tether", words.get(0), "the quick start holds only tether commands: " + words);
            out.add(words.subList(1, words.size()));
        }
        assertFalse(out.isEmpty(), "no commands in the section's bash blocks");
        return out;
    }

    /** Shell words: split on spaces, with '...' and "..." quoting (no escapes inside). */
    static List<String> words(String line) {
        List<String> out = new ArrayList<>();
        StringBuilder w = new StringBuilder();
        boolean any = false;
        char quote = 0;
        for (char ch : line.toCharArray()) {
            if (quote != 0) {
                if (ch == quote) quote = 0;
                else w.append(ch);
            } else if (ch == '\'' || ch == '"') {
                quote = ch;
                any = true;
            } else if (Character.isWhitespace(ch)) {
                if (any || w.length() > 0) out.add(w.toString());
                w.setLength(0);
                any = false;
            } else {
                assertFalse("|&;<>$`*".indexOf(ch) >= 0, "shell syntax the test does not run: " + line);
                w.append(ch);
            }
        }
        assertEquals(0, quote, "unclosed quote: " + line);
        if (any || w.length() > 0) out.add(w.toString());
        return out;
    }

    /** A path argument (or the value of key=value) as the shell in the checkout would see it, with runs/ in the temp directory. */
    private String resolved(String arg, Path checkout, Path shared) {
        int eq = arg.startsWith("-") ? -1 : arg.indexOf('=');
        String key = eq < 0 ? "" : arg.substring(0, eq + 1), value = arg.substring(eq + 1);
        if (value.startsWith("runs/")) return key + tmp.resolve(value);
        if (value.startsWith("../shared/")) return key + shared.resolve(value.substring("../shared/".length()));
        if (value.startsWith("docs/")) return key + checkout.resolve(value);
        return arg;
    }

    private static String option(List<String> args, String name) {
        int i = args.indexOf(name);
        assertTrue(i >= 0 && i + 1 < args.size(), "the command has no " + name + ": " + args);
        return args.get(i + 1);
    }
}
