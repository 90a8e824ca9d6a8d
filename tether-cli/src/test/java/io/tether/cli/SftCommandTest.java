package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `tether sft` on the real Llama fixture: a sequence rule is learned, settings are validated by key. */
class SftCommandTest {
    @TempDir Path tmp;
    private static final Path LLAMA = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/checkpoints/verl-arithmetic-llama");

    private static String[] run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = TetherCommand.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new String[] {Integer.toString(code), out.toString(), err.toString()};
    }

    private Path data() throws IOException {
        Random r = new Random(1);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            int a = r.nextInt(16), b = r.nextInt(16), c = r.nextInt(16);
            StringBuilder completion = new StringBuilder();
            for (int k = 1; k <= 5; k++) completion.append(k > 1 ? "," : "").append((c + k) % 16);
            lines.add("{\"prompt_ids\": [" + a + "," + b + "," + c + "], \"completion_ids\": [" + completion + "]}");
        }
        Path p = tmp.resolve("sft.jsonl");
        Files.write(p, lines);
        return p;
    }

    @Test
    void learnsACountingRuleAndTheModelGenerates() throws IOException {
        Path out = tmp.resolve("run");
        Path config = tmp.resolve("sft.yaml");
        Files.writeString(config, "learning_rate: 3.0e-3\nmax_steps: 30\neval_fraction: 0.1\neval_steps: 15\nsave_steps: 15\nlogging_steps: 5\n");
        String[] r = run("sft", "--config", config.toString(), "--model", LLAMA.toString(), "--data", data().toString(), "--output-dir", out.toString());
        assertEquals("0", r[0], r[2]);
        for (String f : new String[] {"config.yaml", "provenance.json", "metrics.jsonl", "checkpoints/step-30/trainer_state.json", "checkpoints/step-30/optimizer.safetensors", "model/model.safetensors"})
            assertTrue(Files.exists(out.resolve(f)), f);
        String yaml = Files.readString(out.resolve("config.yaml"));
        assertTrue(yaml.contains("learning_rate: 0.003") && yaml.contains("per_device_train_batch_size: 8"), yaml);
        var provenance = new ObjectMapper().readTree(out.resolve("provenance.json").toFile());
        assertEquals(64, provenance.get("data_sha256").asText().length());
        var first = new ObjectMapper().readTree(Files.readAllLines(out.resolve("metrics.jsonl")).get(0));
        String[] g = run("generate", "--model", out.resolve("model").toString(), "--prompt-ids", "2,9,5", "--max-new-tokens", "5", "--stop-id", "99");
        assertEquals("0", g[0], g[2]);
        assertTrue(g[1].contains("\"completion_ids\":[6,7,8,9,10]"), "the fine-tuned model counts on: " + g[1] + " (first logged loss " + first.get("loss") + ")");
    }

    @Test
    void settingsErrorsNameTheKey() throws IOException {
        Path d = data();
        String[][] cases = {
                {"--set", "lerning_rate=1e-3", "key 'lerning_rate': unknown key (did you mean 'learning_rate'?)"},
                {"--set", "learning_rate=fast", "key 'learning_rate': expected a number, got \"fast\""},
                {"--set", "gradient_accumulation_steps=0", "key 'gradient_accumulation_steps': must be >= 1"},
                {"--set", "lr_scheduler_type=polynomial", "lr_scheduler_type 'polynomial' is not supported"},
                {"--set", "eval_data=x.jsonl", "key 'eval_fraction': give either 'eval_data' or 'eval_fraction'"},
        };
        for (String[] c : cases) {
            List<String> args = new ArrayList<>(List.of("sft", "--model", LLAMA.toString(), "--data", d.toString(), "--output-dir", tmp.resolve("x").toString(), c[0], c[1]));
            if (c[1].startsWith("eval_data")) args.addAll(List.of("--set", "eval_fraction=0.1"));
            String[] r = run(args.toArray(String[]::new));
            assertEquals("2", r[0], c[1]);
            assertTrue(r[2].contains(c[2]), r[2]);
            assertFalse(Files.exists(tmp.resolve("x")), "nothing written for " + c[1]);
        }
        Path badYaml = tmp.resolve("bad.yaml");
        Files.writeString(badYaml, "learning_rate: [1, 2\n");
        String[] r = run("sft", "--config", badYaml.toString(), "--model", LLAMA.toString(), "--data", d.toString(), "--output-dir", tmp.resolve("x").toString());
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("bad.yaml: not valid YAML"), r[2]);
    }
}
