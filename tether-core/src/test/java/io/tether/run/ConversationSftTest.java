package io.tether.run;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.data.TokenRecords;
import io.tether.train.Sft;
import io.tether.train.TrainerConfig;
import io.tether.text.ByteTokenizer;
import io.tether.text.TextAssets;

/** `messages` records: the whole conversation by default (TRL), assistant tokens only with assistant_only_loss. */
class ConversationSftTest {
    @TempDir Path tmp;

    @Test
    void assistantOnlyLossMasksExactlyTheAssistantTurns() throws IOException {
        new ByteTokenizer().save(tmp);
        String template = "{% for m in messages %}{{ m['role'] }}: {% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}{{ eos_token }}{% endgeneration %}{% else %}{{ m['content'] }}{% endif %}\\n{% endfor %}";
        String config = Files.readString(tmp.resolve("tokenizer_config.json")).replaceFirst("\\{", "{\"chat_template\": \"" + template.replace("\"", "\\\"") + "\",");
        Files.writeString(tmp.resolve("tokenizer_config.json"), config);
        Path data = tmp.resolve("chat.jsonl");
        Files.writeString(data, "{\"messages\": [{\"role\": \"user\", \"content\": \"late?\"}, {\"role\": \"assistant\", \"content\": \"yes\"}, {\"role\": \"user\", \"content\": \"refund?\"}, {\"role\": \"assistant\", \"content\": \"ok\"}]}\n");
        try (TextAssets text = TextAssets.load(tmp).orElseThrow()) {
            var enc = new TokenRecords.TextEncoder(text.tokenizer(), text.template(), true);
            var records = TokenRecords.read(data, 259, enc);
            SftSettings base = new SftSettings(false, true, false);
            SftSettings assistantOnly = new SftSettings(false, true, true);
            Sft.Example all = SftRun.examples(data, records, base, text).get(0);
            Sft.Example assistant = SftRun.examples(data, records, assistantOnly, text).get(0);
            assertEquals(all.ids().length, java.util.Arrays.stream(all.lossMask()).sum(), "TRL's default for conversations: every token");
            StringBuilder kept = new StringBuilder();
            for (int i = 0; i < assistant.ids().length; i++)
                if (assistant.lossMask()[i] == 1) kept.append(text.tokenizer().decode(new long[] {assistant.ids()[i]}, false));
            assertEquals("yes<|eos|>ok<|eos|>", kept.toString());
        }
    }
}
