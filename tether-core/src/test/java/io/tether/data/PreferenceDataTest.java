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
        // 2312 lines: 5 have a completion that itself contains "\n\nAssistant:", so chosen and rejected disagree on the prompt.
        assertEquals(2307, records.size());
        assertEquals(java.util.Map.of("prompt-mismatch", 5L), problems.counts());
        PreferencePair first = (PreferencePair) records.get(0);
        assertEquals("what are some pranks with a pen i can do?", first.prompt().messages().get(0).content());
        assertEquals("user", first.prompt().messages().get(0).role());
        assertEquals(1, first.chosen().messages().size());
        assertEquals("assistant", first.chosen().messages().get(0).role());
    }

    private Path write(String name, String... lines) throws IOException {
        Path f = tmp.resolve(name);
        Files.write(f, List.of(lines), StandardCharsets.UTF_8);
        return f;
    }

    @Test
    void labelsSwapTiesStayFlaggedAndVotesResolveByStrictMajority() throws IOException {
        Path f = write("labeled.jsonl",
                "{\"prompt_id\": \"p1\", \"prompt\": \"Q\", \"chosen\": \"A\", \"rejected\": \"B\", \"label\": \"rejected\"}",
                "{\"prompt_id\": \"p2\", \"prompt\": \"Q2\", \"chosen\": \"A\", \"rejected\": \"B\", \"label\": \"tie\"}",
                "{\"prompt\": \"Q3\", \"chosen\": \"A\", \"rejected\": \"B\", \"votes\": [{\"annotator\": \"x\", \"label\": \"rejected\"}, {\"annotator\": \"y\", \"label\": \"rejected\"}, {\"annotator\": \"z\", \"label\": \"chosen\"}]}",
                "{\"prompt\": \"Q4\", \"chosen\": \"A\", \"rejected\": \"B\", \"votes\": [{\"annotator\": \"x\", \"label\": \"chosen\"}, {\"annotator\": \"y\", \"label\": \"rejected\"}]}",
                "{\"prompt\": \"Q5\", \"chosen\": \"A\", \"rejected\": \"B\", \"label\": \"maybe\"}");
        Problems problems = new Problems(10);
        List<PreferenceRecord> rs = read(f, Format.TRL, problems);
        assertEquals(4, rs.size());
        PreferencePair swapped = (PreferencePair) rs.get(0), tie = (PreferencePair) rs.get(1), voted = (PreferencePair) rs.get(2), split = (PreferencePair) rs.get(3);
        assertEquals("B", swapped.chosen().text());
        assertEquals("A", swapped.rejected().text());
        assertEquals(Label.TIE, tie.label());
        assertEquals("B", voted.chosen().text(), "two of three votes preferred the stored 'rejected'");
        assertEquals(2.0 / 3, voted.agreement(), 1e-12);
        assertEquals(Label.UNRESOLVED, split.label());
        assertEquals("A", split.chosen().text(), "an unresolved pair keeps the source's order");
        assertEquals(1, problems.counts().get("bad-label"));
        assertEquals(5, problems.details().get(0).line());
    }

    @Test
    void implicitPromptsAreTheSharedPrefix() throws IOException {
        Path f = write("implicit.jsonl",
                "{\"chosen\": \"The sky is blue.\", \"rejected\": \"The sky is green.\"}",
                "{\"chosen\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}], "
                        + "\"rejected\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Go away.\"}]}");
        List<PreferenceRecord> rs = readAll(f);
        PreferencePair text = (PreferencePair) rs.get(0), chat = (PreferencePair) rs.get(1);
        assertEquals("The sky is", text.prompt().text());
        assertEquals(" blue.", text.chosen().text());
        assertEquals(" green.", text.rejected().text());
        assertEquals(List.of(new Turns.Message("user", "Hi")), chat.prompt().messages());
        assertEquals("Go away.", chat.rejected().messages().get(0).content());
    }

    @Test
    void malformedLinesAreReportedWithLineAndColumnAndReadingContinues() throws IOException {
        Path f = tmp.resolve("bad.jsonl");
        byte[] badUtf8 = "{\"prompt\": \"caf\u00e9\", \"chosen\": \"x\", \"rejected\": \"y\"}".getBytes(StandardCharsets.UTF_8);
        badUtf8[15] = (byte) 0xC3;
        badUtf8[16] = (byte) 0x28;   // 0xC3 followed by '(' is not UTF-8
        try (var out = Files.newOutputStream(f)) {
            out.write("{\"prompt\": \"a\", \"chosen\": \"x\", \"rejected\": \"y\"}\n".getBytes(StandardCharsets.UTF_8));
            out.write("{\"prompt\": \"b\", \"chosen\": \"x\" \"rejected\": \"y\"}\n".getBytes(StandardCharsets.UTF_8));
            out.write(badUtf8);
            out.write("\n[1, 2]\n{\"prompt\": 3, \"chosen\": \"x\", \"rejected\": \"y\"}\n".getBytes(StandardCharsets.UTF_8));
            out.write("{\"prompt\": \"c\", \"chosen\": \"x\", \"rejected\": \"y\"}\n".getBytes(StandardCharsets.UTF_8));
        }
        Problems problems = new Problems(10);
        assertEquals(2, read(f, Format.TRL, problems).size(), "the two good lines are still read");
        List<String> found = problems.details().stream().map(p -> p.line() + ":" + p.column() + " " + p.code()).toList();
        assertEquals(List.of("2:31 malformed-json", "3:16 bad-encoding", "4:1 wrong-type", "5:12 wrong-type"), found);
        assertTrue(problems.details().get(0).toString().startsWith(f + ":2:31: error [malformed-json] not valid JSON"), problems.details().get(0).toString());
        assertThrows(Problems.TooManyErrors.class, () -> read(f, Format.TRL, new Problems(2)));
        DataFormatException first = assertThrows(DataFormatException.class, () -> readAll(f));
        assertEquals(2, first.line());
        assertEquals(31, first.column(), "the column of the unexpected quote");
    }
}
