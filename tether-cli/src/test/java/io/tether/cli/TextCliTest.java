package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.model.ModelConfig;
import io.tether.text.ByteTokenizer;
import io.tether.text.HfTokenizer;

/** Text and chat input through the CLI: template rendering, text log-probs, text prompts, SFT on text. */
class TextCliTest {
    @TempDir Path tmp;
    static final Path FIXTURES = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures");
    static final Path GPT2 = FIXTURES.resolve("checkpoints/lm-buddy-fake-gpt2");
    static final ObjectMapper JSON = new ObjectMapper();

    static String[] run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = TetherCommand.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new String[] {Integer.toString(code), out.toString(), err.toString()};
    }

    @Test
    void templatePrintsExactlyTheRenderingOrTheTemplatesError() throws IOException {
        Path msgs = tmp.resolve("m.json");
        Files.writeString(msgs, "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Refund?\"}]");
        String[] r = run("template", "--tokenizer", FIXTURES.resolve("tokenizers/qwen2.5").toString(), "--messages", msgs.toString(), "--add-generation-prompt");
        assertEquals("0", r[0], r[2]);
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nRefund?<|im_end|>\n<|im_start|>assistant\n", r[1]);
        Path bad = tmp.resolve("tok");
        Files.createDirectories(bad);
        Files.writeString(bad.resolve("tokenizer_config.json"), "{\"chat_template\": \"{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% endfor %}\"}");
        r = run("template", "--tokenizer", bad.toString(), "--messages", msgs.toString());
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("TemplateError: System role not supported"), r[2]);
        r = run("template", "--tokenizer", bad.toString(), "--messages", tmp.resolve("none.json").toString());
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("none.json: file not found"), r[2]);
    }

    /** Message contents and tool definitions are printed as written, however much template syntax they hold (as HF's jinja2 does). */
    @Test
    void templatePrintsHostileMessagesLiterally() throws IOException {
        Path msgs = tmp.resolve("hostile.json");
        Files.writeString(msgs, "[{\"role\": \"system\", \"content\": \"{{ messages }}\"}, {\"role\": \"user\", \"content\": \"Compute {{ 7*7 }} now {% raw %}{# x {% for m in messages %}\"}]");
        Path tools = tmp.resolve("tools.json");
        Files.writeString(tools, "[{\"type\": \"function\", \"function\": {\"name\": \"refund\", \"description\": \"{{ 7*7 }} {% endraw %}\", \"parameters\": {}}}]");
        Path qwen = FIXTURES.resolve("tokenizers/qwen2.5");
        String[] r = run("template", "--tokenizer", qwen.toString(), "--messages", msgs.toString(), "--add-generation-prompt");
        assertEquals("0", r[0], r[2]);
        assertEquals("<|im_start|>system\n{{ messages }}<|im_end|>\n<|im_start|>user\nCompute {{ 7*7 }} now {% raw %}{# x {% for m in messages %}<|im_end|>\n<|im_start|>assistant\n", r[1]);
        r = run("template", "--tokenizer", qwen.toString(), "--messages", msgs.toString(), "--tools", tools.toString());
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("{\"type\": \"function\", \"function\": {\"name\": \"refund\", \"description\": \"{{ 7*7 }} {% endraw %}\", \"parameters\": {}}}"), r[1]);
        assertTrue(r[1].contains("Compute {{ 7*7 }} now {% raw %}{# x {% for m in messages %}<|im_end|>"), r[1]);
    }

    @Test
    void textRecordsScoreLikeTheirTokenIds() throws IOException {
        List<String> lines = List.of("{\"prompt\": \"Refund after\", \"completion\": \" seven days\"}",
                "{\"prompt\": \"Is it late?\", \"chosen\": \" Yes.\", \"rejected\": \" No.\"}");
        Path text = tmp.resolve("text.jsonl");
        Files.write(text, lines);
        List<String> idLines = new ArrayList<>();
        try (HfTokenizer t = HfTokenizer.load(GPT2)) {
            idLines.add("{\"prompt_ids\": " + JSON.writeValueAsString(t.encode("Refund after", true)) + ", \"completion_ids\": "
                    + JSON.writeValueAsString(t.encode(" seven days<|endoftext|>", false)) + "}");
            idLines.add("{\"prompt_ids\": " + JSON.writeValueAsString(t.encode("Is it late?", true)) + ", \"chosen_ids\": "
                    + JSON.writeValueAsString(t.encode(" Yes.<|endoftext|>", false)) + ", \"rejected_ids\": " + JSON.writeValueAsString(t.encode(" No.<|endoftext|>", false)) + "}");
        }
        Path ids = tmp.resolve("ids.jsonl");
        Files.write(ids, idLines);
        String[] a = run("logprobs", "--model", GPT2.toString(), "--data", text.toString());
        String[] b = run("logprobs", "--model", GPT2.toString(), "--data", ids.toString());
        assertEquals("0", a[0], a[2]);
        assertEquals(b[1], a[1]);
        assertEquals(3, JSON.readTree(a[1].lines().findFirst().orElseThrow()).get("num_tokens").asInt(), "' seven', ' days' and EOS: " + a[1]);
    }

    @Test
    void invalidUtf8NamesTheLine() throws IOException {
        Path data = tmp.resolve("bad.jsonl");
        byte[] good = "{\"prompt\": \"a\", \"completion\": \"b\"}\n".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] bad = new byte[] {'{', '"', 'p', 'r', 'o', 'm', 'p', 't', '"', ':', '"', (byte) 0xC3, (byte) 0x28, '"', '}', '\n'};
        Files.write(data, concat(good, bad));
        String[] r = run("logprobs", "--model", GPT2.toString(), "--data", data.toString());
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("bad.jsonl:2:12: invalid UTF-8"), r[2]);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void sftOnTextFromScratchWithAByteTokenizerThenGenerateText() throws IOException {
        Path tok = tmp.resolve("tokenizer");
        new ByteTokenizer().save(tok);
        Path config = tmp.resolve("config.json");
        Files.writeString(config, ModelConfig.llama(259, 64, 2, 4, 2, 128, 128).json().put("bos_token_id", 256).put("eos_token_id", 257).toString());
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 48; i++) lines.add("{\"prompt\": \"Q: refund after " + (i % 9 + 1) + " days?\\nA:\", \"completion\": \" yes, after seven days\"}");
        Path data = tmp.resolve("sft.jsonl");
        Files.write(data, lines);
        Path out = tmp.resolve("run");
        String[] r = run("sft", "--set", "model_config=" + config, "--set", "tokenizer=" + tok, "--data", data.toString(), "--output-dir", out.toString(),
                "--set", "max_steps=60", "--set", "learning_rate=5e-3", "--set", "per_device_train_batch_size=16", "--set", "warmup_steps=5");
        assertEquals("0", r[0], r[2]);
        assertTrue(Files.exists(out.resolve("model/tokenizer.json")), "the tokenizer travels with the model");
        String[] g = run("generate", "--model", out.resolve("model").toString(), "--prompt", "Q: refund after 4 days?\nA:", "--max-new-tokens", "40");
        assertEquals("0", g[0], g[2]);
        JsonNode gen = JSON.readTree(g[1].lines().findFirst().orElseThrow());
        assertEquals(" yes, after seven days", gen.get("completion").asText(), g[1]);
        assertEquals("eos", gen.get("finish_reason").asText());
    }
}
