package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One reader for validation and training: hostile files through {@code tether data validate} and through every
 * trainer. Each names file:line (where there is a line), exits non-zero, prints no stack trace and leaves no model;
 * under {@code invalid_records: skip} each bad record is named and counted; files validate accepts train.
 */
class HostileDataTest {
    @TempDir Path tmp;
    static final Path FIXTURES = TextCliTest.FIXTURES;
    static final Path GPT2 = TextCliTest.GPT2;
    static final ObjectMapper JSON = new ObjectMapper();

    /** The record kinds trainers read, with one good record of each. */
    enum Kind {
        PAIRS("{\"prompt\": \"Refund after\", \"chosen\": \" seven days.\", \"rejected\": \" never.\"}"),
        UNPAIRED("{\"prompt\": \"Refund after\", \"completion\": \" seven days.\", \"label\": true}"),
        COMPLETIONS("{\"prompt\": \"Refund after\", \"completion\": \" seven days.\"}"),
        PROMPTS("{\"prompt\": \"Refund after\"}");

        final String good;

        Kind(String good) {
            this.good = good;
        }
    }

    /** A hostile file: its bytes for a kind (null when the case does not apply) and the line it should name (0: none). */
    record Case(String name, int line, java.util.function.Function<Kind, byte[]> content) {}

    static byte[] lines(String... ls) {
        return (String.join("\n", ls) + "\n").getBytes(StandardCharsets.UTF_8);
    }

    static List<Case> cases() {
        List<Case> cs = new ArrayList<>();
        cs.add(new Case("broken-json", 2, k -> lines(k.good, k.good.substring(0, k.good.length() - 3))));
        cs.add(new Case("missing-field", 2, k -> lines(k.good, switch (k) {
            case PAIRS -> "{\"prompt\": \"Refund after\", \"chosen\": \" seven days.\"}";
            case UNPAIRED -> "{\"prompt\": \"Refund after\", \"label\": true}";
            case COMPLETIONS -> "{\"completion\": \" seven days.\"}";
            case PROMPTS -> "{\"answer\": \"7\"}";
        })));
        cs.add(new Case("mistyped-field", 2, k -> lines(k.good, k.good.replace("\"Refund after\"", "5"))));
        cs.add(new Case("empty-completion", 2, k -> k == Kind.PROMPTS ? lines(k.good, "{\"prompt\": \" \"}")
                : lines(k.good, k.good.replace("\" seven days.\"", "\"\""))));
        cs.add(new Case("identical-completions", 2, k -> k != Kind.PAIRS ? null : lines(k.good, k.good.replace("\" never.\"", "\" seven days.\""))));
        cs.add(new Case("unknown-label", 2, k -> switch (k) {
            case PAIRS -> lines(k.good, k.good.replace("}", ", \"label\": \"maybe\"}"));
            case UNPAIRED -> lines(k.good, k.good.replace("true", "\"maybe\""));
            default -> null;
        }));
        cs.add(new Case("invalid-utf8", 2, k -> {
            byte[] good = lines(k.good), bad = k.good.replace("Refund", "R\u00e9fund").getBytes(StandardCharsets.UTF_8);
            for (int i = 0; i < bad.length; i++) if ((bad[i] & 0xFF) == 0xC3) bad[i + 1] = '(';   // a lead byte with no continuation
            byte[] all = new byte[good.length + bad.length];
            System.arraycopy(good, 0, all, 0, good.length);
            System.arraycopy(bad, 0, all, good.length, bad.length);
            return all;
        }));
        cs.add(new Case("truncated-gzip", -1, k -> {
            var bytes = new java.io.ByteArrayOutputStream();
            try (OutputStream gz = new GZIPOutputStream(bytes)) {
                for (int i = 0; i < 400; i++) gz.write(lines(k.good.replace("Refund", "Refund " + i)));
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            byte[] all = bytes.toByteArray();
            return java.util.Arrays.copyOf(all, all.length / 2);
        }));
        cs.add(new Case("random-bytes", 1, k -> {
            byte[] b = new byte[4096];
            new Random(19).nextBytes(b);
            b[0] = 'x';   // not '[' : read as lines, as a user's mislabelled binary file would be
            return b;
        }));
        cs.add(new Case("unclosed-array", 3, k -> ("[" + k.good + ",\n" + k.good + ",\n").getBytes(StandardCharsets.UTF_8)));
        cs.add(new Case("empty-file", 0, k -> new byte[0]));
        return cs;
    }

    /** A trainer command line for {@code data} into {@code out}, one step on the tiny GPT-2 fixture. */
    static String[] trainer(String command, Path data, Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of(command.split(" ")));
        a.addAll(List.of("--model", GPT2.toString(), "--data", data.toString(), "--output-dir", out.toString(), "--set", "max_steps=1",
                "--set", "per_device_train_batch_size=2"));
        if (command.equals("grpo")) a.addAll(List.of("--set", "num_generations=2", "--set", "max_completion_length=4", "--set", "reward_format_regex=days"));
        for (String e : extra) a.addAll(List.of("--set", e));
        return a.toArray(new String[0]);
    }

    static final String[][] TRAINERS = {{"sft", "COMPLETIONS"}, {"dpo", "PAIRS"}, {"orpo", "PAIRS"}, {"kto", "UNPAIRED"}, {"rm train", "PAIRS"}, {"grpo", "PROMPTS"}};

    private static boolean modelLeft(Path out) throws IOException {
        if (!Files.exists(out)) return false;
        try (Stream<Path> s = Files.walk(out)) {
            return s.anyMatch(p -> p.getFileName().toString().endsWith(".safetensors"));
        }
    }

    /** The text names the file and {@code line} (-1: some line, 0: no line to name). */
    private static boolean names(String text, Path file, int line) {
        String f = java.util.regex.Pattern.quote(file.getFileName().toString());
        return java.util.regex.Pattern.compile(f + (line > 0 ? ":" + line + "\\b" : line < 0 ? ":\\d+" : "")).matcher(text).find();
    }

    @Test
    void hostileFilesAreRefusedByValidateAndEveryTrainerNamingTheLine() throws IOException {
        int runs = 0;
        for (Case c : cases()) {
            for (String[] t : TRAINERS) {
                Kind kind = Kind.valueOf(t[1]);
                byte[] content = c.content().apply(kind);
                if (content == null) continue;
                Path data = tmp.resolve(c.name() + "-" + kind.name().toLowerCase() + (c.name().equals("truncated-gzip") ? ".jsonl.gz" : ".jsonl"));
                if (!Files.exists(data)) {
                    Files.write(data, content);
                    String[] v = TextCliTest.run("data", "validate", data.toString(), "--format", kind == Kind.COMPLETIONS ? "completions" : kind == Kind.UNPAIRED ? "kto"
                            : kind == Kind.PROMPTS ? "prompts" : "trl");
                    assertNotEquals("0", v[0], c.name() + " " + kind + ": validate accepts it\n" + v[1] + v[2]);
                    assertTrue(names(v[1] + v[2], data, c.line()), c.name() + " " + kind + ": validate names the line\n" + v[1] + v[2]);
                }
                Path out = tmp.resolve("out-" + c.name() + "-" + t[0].replace(' ', '-'));
                String[] r = TextCliTest.run(trainer(t[0], data, out));
                runs++;
                String what = t[0] + " on " + c.name() + ": ";
                assertEquals("2", r[0], what + r[2]);
                assertTrue(names(r[2], data, c.line()), what + "names the line " + c.line() + ": " + r[2]);
                assertFalse(r[2].contains("\tat ") || r[2].contains("Exception"), what + "no stack trace: " + r[2]);
                assertFalse(modelLeft(out), what + "no model left behind");
            }
        }
        assertTrue(runs >= 60, "every case through every trainer: " + runs);
    }

    @Test
    void skipNamesEachSkippedRecordCountsItAndTrainsOnTheRest() throws IOException {
        Kind k = Kind.PAIRS;
        List<String> ls = new ArrayList<>();
        for (int i = 0; i < 6; i++) ls.add(k.good.replace("Refund after", "Refund after " + i));
        ls.add(2, k.good.replace("\" never.\"", "\"\""));                       // line 3: empty rejected
        ls.add(5, k.good.replace("}", ", \"label\": \"maybe\"}"));            // line 6: unknown label
        ls.add("{\"prompt\": \"x\", \"chosen\": \"y\"");                        // line 9: broken JSON
        Path data = tmp.resolve("mixed.jsonl");
        Files.write(data, ls);
        Path out = tmp.resolve("skip");
        String[] r = TextCliTest.run(trainer("dpo", data, out, "invalid_records=skip"));
        assertEquals("0", r[0], r[2]);
        for (String line : new String[] {"mixed.jsonl:3", "mixed.jsonl:6", "mixed.jsonl:9"}) assertTrue(r[2].contains("skipped " + tmp.resolve(line)), line + ": " + r[2]);
        assertTrue(r[2].contains("skipped 3 invalid records"), r[2]);
        JsonNode reading = JSON.readTree(out.resolve("provenance.json").toFile()).get("data_reading");
        assertEquals(3, reading.get("records_skipped").asInt(), reading.toString());
        assertEquals("skip", reading.get("invalid_records").asText());
        assertTrue(Files.exists(out.resolve("model/model.safetensors")));

        String[] refused = TextCliTest.run(trainer("dpo", data, tmp.resolve("refused")));
        assertEquals("2", refused[0]);
        assertTrue(refused[2].contains("mixed.jsonl:3") && refused[2].contains("3 invalid records in all") && refused[2].contains("invalid_records: skip"), refused[2]);
        assertFalse(Files.exists(tmp.resolve("refused")), "nothing written before the data is checked");
    }

    @Test
    void statsCountsUnreadableRecordsAndGoesOnWhileAStopSaysHowToGoOn() throws IOException {
        Path data = tmp.resolve("one-bad.jsonl");
        Files.write(data, List.of(Kind.PAIRS.good, "{\"prompt\": \"x\", \"chosen\": 3, \"rejected\": \"y\"}", Kind.PAIRS.good.replace("after", "before")));
        String[] stats = TextCliTest.run("data", "stats", data.toString());
        assertEquals("0", stats[0], stats[2]);
        assertEquals(1, JSON.readTree(stats[1]).get("skipped_unreadable").asInt(), stats[1]);
        assertTrue(stats[2].contains("one-bad.jsonl:2"), stats[2]);
        String[] split = TextCliTest.run("data", "split", data.toString(), "--out-dir", tmp.resolve("split").toString(), "--eval-fraction", "0.5");
        assertEquals("2", split[0]);
        assertTrue(split[2].contains("one-bad.jsonl:2") && split[2].contains("--skip-invalid"), split[2]);
    }

    /** The tiny GPT-2 with a chat template, for conversational files. */
    private Path chatModel() throws IOException {
        Path dir = tmp.resolve("gpt2-chat");
        Files.createDirectories(dir);
        try (Stream<Path> s = Files.list(GPT2)) {
            for (Path f : s.toList()) Files.copy(f, dir.resolve(f.getFileName()));
        }
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(dir.resolve("tokenizer_config.json").toFile());
        config.put("chat_template", "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}");
        dir.resolve("tokenizer_config.json").toFile().setWritable(true);
        Files.writeString(dir.resolve("tokenizer_config.json"), config.toString());
        return dir;
    }

    @Test
    void filesValidateAcceptsTrain() throws IOException {
        Path chat = chatModel();
        Path implicit = tmp.resolve("implicit.jsonl");
        Files.write(implicit, List.of(
                "{\"chosen\": [{\"role\": \"user\", \"content\": \"Refund?\"}, {\"role\": \"assistant\", \"content\": \"After 7 days.\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"Refund?\"}, {\"role\": \"assistant\", \"content\": \"Never.\"}]}",
                "{\"chosen\": [{\"role\": \"user\", \"content\": \"Return?\"}, {\"role\": \"assistant\", \"content\": \"Within 30 days.\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"Return?\"}, {\"role\": \"assistant\", \"content\": \"No.\"}]}"));
        Object[][] runs = {
                {"dpo", FIXTURES.resolve("datasets/llamafactory/dpo_en_demo.json")},
                {"kto", FIXTURES.resolve("datasets/llamafactory/kto_en_demo.json")},
                {"dpo", FIXTURES.resolve("datasets/torchtune/stack_exchange_paired_tiny.json")},
                {"dpo", FIXTURES.resolve("datasets/hh-rlhf/harmless-base-test.jsonl.gz")},
                {"dpo", implicit},
                {"rm train", FIXTURES.resolve("datasets/llamafactory/v1_dpo_demo.jsonl")},
        };
        List<String> trained = new ArrayList<>();
        for (Object[] run : runs) {
            Path data = (Path) run[1];
            String[] v = TextCliTest.run("data", "validate", data.toString());
            if (!v[0].equals("0")) continue;   // only files validate accepts are promised to train
            Path out = tmp.resolve("ok-" + data.getFileName() + "-" + run[0].toString().replace(' ', '-'));
            // The default policy (invalid_records: error): a file validate accepts trains with nothing skipped. Short
            // sequences keep it cheap; the reward model truncates (keep_start) rather than leave long pairs out.
            List<String> a = new ArrayList<>(List.of(trainer((String) run[0], data, out, "max_length=64",
                    run[0].equals("rm train") ? "truncation_mode=keep_start" : "max_prompt_length=32")));
            a.set(a.indexOf(GPT2.toString()), chat.toString());
            String[] r = TextCliTest.run(a.toArray(new String[0]));
            assertEquals("0", r[0], run[0] + " on " + data + ": " + r[2]);
            assertTrue(modelLeft(out), "trained a model: " + data);
            JsonNode reading = JSON.readTree(out.resolve("provenance.json").toFile()).get("data_reading");
            var codes = new java.util.HashSet<String>();
            reading.path("skipped_by_code").fieldNames().forEachRemaining(codes::add);
            trained.add(run[0] + " " + data.getFileName());
            assertTrue(codes.isEmpty(), data + ": a record validate accepts was skipped: " + reading);
        }
        // The files the issue names must be among those validate accepts (else this test would prove nothing of them).
        for (String named : List.of("dpo dpo_en_demo.json", "kto kto_en_demo.json", "dpo stack_exchange_paired_tiny.json", "dpo implicit.jsonl"))
            assertTrue(trained.contains(named), named + " was not trained; trained: " + trained);
    }
}
