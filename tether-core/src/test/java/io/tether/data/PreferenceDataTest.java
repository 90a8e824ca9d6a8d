package io.tether.data;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.data.PreferencePair.Label;
import io.tether.data.PreferenceReader.Format;

/** Every fixture format read to records, with counts checked against the files themselves. */
class PreferenceDataTest {
    static final Path DATASETS = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/datasets");
    @TempDir Path tmp;

    static List<PreferenceRecord> read(Path file, Format format, Problems problems) {
        List<PreferenceRecord> out = new ArrayList<>();
        PreferenceReader.read(file, format, problems, (r, raw) -> out.add(r));
        return out;
    }

    static List<PreferenceRecord> readAll(Path file) {
        return read(file, null, Problems.failFast());
    }

    @Test
    void readsEveryFixtureFormatWithItsRecordCount() {
        Object[][] cases = {
                {"llamafactory/dpo_en_demo.json", Format.SHAREGPT, 300},
                {"llamafactory/kto_en_demo.json", Format.KTO, 300},
                {"llamafactory/v1_dpo_demo.jsonl", Format.MESSAGE_PAIRS, 10},
                {"torchtune/hh_rlhf_tiny.json", Format.TRL, 1},
                {"torchtune/stack_exchange_paired_tiny.json", Format.STACK_EXCHANGE, 25},
                {"torchtune/chat_tiny.json", Format.PROMPTS, 1},
                {"gsm8k/test.jsonl", Format.PROMPTS, 1319},
        };
        for (Object[] c : cases) {
            Path file = DATASETS.resolve((String) c[0]);
            assertEquals(c[1], PreferenceReader.detect(file), c[0].toString());
            assertEquals(c[2], readAll(file).size(), c[0].toString());
        }
    }

    @Test
    void anthropicTranscriptsBecomeMessagesWithTheLastAssistantTurnAsCompletion() {
        Path file = DATASETS.resolve("hh-rlhf/harmless-base-test.jsonl.gz");
        assertEquals(Format.HH, PreferenceReader.detect(file));
        Problems problems = new Problems(Long.MAX_VALUE);
        List<PreferenceRecord> records = read(file, null, problems);
        System.out.println(records.size() + " " + problems.counts());
        PreferencePair first = (PreferencePair) records.get(0);
        assertEquals("what are some pranks with a pen i can do?", first.prompt().messages().get(0).content());
        assertEquals("user", first.prompt().messages().get(0).role());
        assertEquals(1, first.chosen().messages().size());
        assertEquals("assistant", first.chosen().messages().get(0).role());
    }
}
