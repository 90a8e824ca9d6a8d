package io.tether.data;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.data.PreferencePair.Label;
import io.tether.text.ChatTemplate;
import io.tether.text.HfTokenizer;

/** Validation, statistics, splitting, leakage, binarization and adjudication on small files whose answers are known. */
class PreferenceChecksTest {
    static final Path FIXTURES = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures");
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir Path tmp;

    private Path write(String name, List<String> lines) throws IOException {
        Path f = tmp.resolve(name);
        Files.write(f, lines, StandardCharsets.UTF_8);
        return f;
    }

    private static String pair(String prompt, String chosen, String rejected) {
        ObjectNode o = JSON.createObjectNode().put("prompt", prompt).put("chosen", chosen).put("rejected", rejected);
        return o.toString();
    }

    private static Problems validate(Path f, HfTokenizer tokenizer, ChatTemplate template, int maxLength) {
        Problems problems = new Problems(100);
        PreferenceValidator v = new PreferenceValidator(problems, tokenizer, template, maxLength);
        PreferenceReader.read(f, null, problems, (r, raw) -> v.accept(r));
        return problems;
    }

    @Test
    void validationFindsDuplicatesContradictionsAndEmptyOrIdenticalCompletions() throws IOException {
        Path f = write("pairs.jsonl", List.of(
                pair("What is 2+2?", "4", "5"),
                pair("What is 2+2?", "4", "5"),              // 2: exact duplicate of 1
                pair("what is 2 + 2", "4.", "5!"),           // 3: near duplicate of 1
                pair("What is 2+2?", "5", "4"),              // 4: contradicts 1
                pair("Capital of France?", "Paris", "Paris"), // 5: identical
                pair("Say hi", "", "hi"),                    // 6: empty chosen
                pair("Fine", "a", "b")));
        Problems p = validate(f, null, null, 0);
        List<String> found = p.details().stream().map(x -> x.line() + " " + x.code()).toList();
        assertEquals(List.of("2 exact-duplicate", "3 near-duplicate", "4 contradictory-duplicate", "5 identical-completions", "6 empty-text"), found);
        assertEquals(3, p.errors());
        assertEquals(2, p.warnings());
        // A one-line JSON array: every element starts on line 1, and the duplicate is still found; its position tells them apart.
        Path array = write("array.json", List.of("[" + pair("Q", "a", "b") + ", " + pair("Q", "a", "b") + "]"));
        assertEquals(List.of("1 exact-duplicate"), validate(array, null, null, 0).details().stream().map(x -> x.line() + " " + x.code()).toList());
        List<PreferencePair> elements = new ArrayList<>();
        PreferenceReader.read(array, null, Problems.failFast(), (r, raw) -> elements.add((PreferencePair) r));
        assertEquals(2, PreferenceExport.pair(elements.get(1)).get("source_record").asLong());
    }

    @Test
    void tokenChecksReportTheTruncationAndAPromptWhoseTokensAreNotAPrefix() throws IOException {
        Path f = write("tok.jsonl", List.of(
                pair("Hello ", "world", "there"),   // GPT-2 merges the space into " world": the prompt's last token changes
                pair("Greetings", " friend", " stranger"),
                pair("Count:", " one two three four five six seven eight", " one")));
        try (HfTokenizer gpt2 = HfTokenizer.load(FIXTURES.resolve("checkpoints/lm-buddy-fake-gpt2"))) {
            Problems p = validate(f, gpt2, null, 6);
            List<String> found = p.details().stream().map(x -> x.line() + " " + x.code()).toList();
            assertEquals(List.of("1 prefix-mismatch", "1 prefix-mismatch", "3 over-length"), found);
            assertTrue(p.details().get(2).message().contains("prompt+chosen is 10 tokens > max length 6: 4 of chosen's 8 tokens would be cut"), p.details().get(2).message());
            // A chat pair rendered with a ChatML template: the generation prompt ends where the answer starts, so it is consistent.
            ChatTemplate chatml = ChatTemplate.fromTokenizerConfig(FIXTURES.resolve("tokenizers/qwen2.5/tokenizer_config.json"), null);
            Path chat = write("chat.jsonl", List.of("{\"prompt\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": \"Hello!\"}], "
                    + "\"rejected\": [{\"role\": \"assistant\", \"content\": \"Bye.\"}]}"));
            assertEquals(0, validate(chat, gpt2, chatml, 0).total(), "ChatML prompt tokens are a prefix of prompt+answer tokens");
        }
    }

    @Test
    void splitKeepsEveryPromptOnOneSideAndIsDeterministic() throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            ObjectNode o = JSON.createObjectNode().put("prompt", "Prompt number " + (i % 50)).put("chosen", "good " + i).put("rejected", "bad " + i)
                    .put("source", i % 2 == 0 ? "web" : "books");
            lines.add(o.toString());
        }
        Path f = write("many.jsonl", lines);
        PreferenceSplit.Result r = PreferenceSplit.split(f, null, tmp.resolve("a"), 0.2, 7, false, Problems.failFast());
        assertEquals(200, r.trainRecords() + r.evalRecords());
        assertEquals(10, r.evalGroups(), "20% of 50 prompts");
        assertEquals(40, r.evalRecords(), "each prompt has 4 records");
        Set<String> train = prompts(tmp.resolve("a/train.jsonl")), eval = prompts(tmp.resolve("a/eval.jsonl"));
        assertTrue(train.stream().noneMatch(eval::contains), "no prompt on both sides");
        PreferenceSplit.split(f, null, tmp.resolve("b"), 0.2, 7, false, Problems.failFast());
        assertEquals(Files.readString(tmp.resolve("a/eval.jsonl")), Files.readString(tmp.resolve("b/eval.jsonl")), "same seed, same split");
        PreferenceSplit.split(f, null, tmp.resolve("c"), 0.2, 8, false, Problems.failFast());
        assertNotEquals(Files.readString(tmp.resolve("a/eval.jsonl")), Files.readString(tmp.resolve("c/eval.jsonl")));
        // Prompt i%50 has sources of parity i%2 = (i%50)%2, so each prompt lives in one stratum: 25 web and 25 books prompts, 5 of each in eval.
        PreferenceSplit.Result s = PreferenceSplit.split(f, null, tmp.resolve("d"), 0.2, 7, true, Problems.failFast());
        assertArrayEquals(new long[] {20, 5}, s.groupsByStratum().get("web"));
        assertArrayEquals(new long[] {20, 5}, s.groupsByStratum().get("books"));
        Leakage.Result none = Leakage.check(tmp.resolve("a/train.jsonl"), tmp.resolve("a/eval.jsonl"), 5);
        assertFalse(none.leaks());
        Leakage.Result leak = Leakage.check(f, tmp.resolve("a/eval.jsonl"), 5);
        assertEquals(40, leak.exact());
        Path shouted = write("shouted.jsonl", List.of(pair("PROMPT NUMBER 3!", "x", "y"), pair("Something new", "x", "y")));
        Leakage.Result near = Leakage.check(f, shouted, 5);
        assertEquals(0, near.exact());
        assertEquals(1, near.normalizedOnly());
        assertEquals(new Leakage.Overlap(1, 4, false), near.examples().get(0));
    }

    private static Set<String> prompts(Path file) throws IOException {
        Set<String> out = new HashSet<>();
        for (String l : Files.readAllLines(file)) out.add(JSON.readTree(l).get("prompt").asText());
        return out;
    }

    @Test
    void ratedCompletionsBinarizeToBestVersusWorstAndTiesAreDropped() throws IOException {
        Path f = write("rated.jsonl", List.of(
                "{\"prompt\": \"Q1\", \"completions\": [{\"response\": \"ok\", \"score\": 6, \"model\": \"m1\"}, {\"response\": \"best\", \"score\": 9, \"model\": \"m2\"}, {\"response\": \"worst\", \"score\": 2, \"model\": \"m3\"}]}",
                "{\"instruction\": \"Q2\", \"completions\": [{\"response\": \"a\", \"overall_score\": 5}, {\"response\": \"b\", \"overall_score\": 5}]}"));
        List<RatedCompletions> rated = new ArrayList<>();
        PreferenceReader.read(f, null, Problems.failFast(), (r, raw) -> rated.add((RatedCompletions) r));
        PreferencePair p = Binarize.pair(rated.get(0), Binarize.Strategy.BEST_WORST, 0);
        assertEquals("best", p.chosen().text());
        assertEquals("worst", p.rejected().text());
        assertEquals(7.0, p.margin());
        assertEquals("m2", p.chosenGenerator());
        for (long seed = 0; seed < 10; seed++) {
            PreferencePair random = Binarize.pair(rated.get(0), Binarize.Strategy.BEST_RANDOM, seed);
            assertEquals("best", random.chosen().text());
            assertNotEquals("best", random.rejected().text());
        }
        assertNull(Binarize.pair(rated.get(1), Binarize.Strategy.BEST_WORST, 0), "a tie gives no pair");
    }

    @Test
    void adjudicationResolvesFlaggedPairsWithoutEditingTheSource() throws IOException {
        String votes = "\"votes\": [{\"annotator\": \"a\", \"label\": \"chosen\"}, {\"annotator\": \"b\", \"label\": \"rejected\"}]";
        Path f = write("votes.jsonl", List.of(
                "{\"prompt_id\": \"p1\", \"prompt\": \"Q1\", \"chosen\": \"A\", \"rejected\": \"B\", " + votes + "}",
                "{\"prompt_id\": \"p2\", \"prompt\": \"Q2\", \"chosen\": \"A\", \"rejected\": \"B\", " + votes + "}",
                "{\"prompt\": \"Q3\", \"chosen\": \"A\", \"rejected\": \"B\", " + votes + "}"));
        Path decisions = write("adjudication.jsonl", List.of("{\"prompt_id\": \"p1\", \"label\": \"rejected\"}", "{\"line\": 3, \"label\": \"drop\"}"));
        Adjudication a = Adjudication.load(decisions);
        List<PreferencePair> out = new ArrayList<>();
        PreferenceReader.read(f, null, Problems.failFast(), (r, raw) -> {
            PreferenceRecord decided = a.apply(r);
            if (decided != null) out.add((PreferencePair) decided);
        });
        assertEquals(2, out.size());
        assertEquals(Label.CHOSEN, out.get(0).label());
        assertEquals("B", out.get(0).chosen().text(), "the adjudicator preferred the stored rejected answer");
        assertEquals(Label.UNRESOLVED, out.get(1).label(), "no decision: still flagged");
        assertEquals(2, a.applied());
        assertEquals(1, a.dropped());
    }

    @Test
    void statsCountLengthBiasKtoBalanceAndAgreement() throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            ObjectNode o = JSON.createObjectNode().put("prompt", "q" + i).put("chosen", i < 30 ? "a long careful answer" : "no").put("rejected", "short")
                    .put("source", i < 10 ? "web" : "books");
            // Two annotators who agree on 30 of 40 pairs.
            var v = o.putArray("votes");
            v.addObject().put("annotator", "ann1").put("label", "chosen");
            v.addObject().put("annotator", "ann2").put("label", i < 30 ? "chosen" : "rejected");
            o.remove("votes");
            o.set("votes", v);
            lines.add(o.toString());
        }
        PreferenceStats stats = new PreferenceStats(null);
        PreferenceReader.read(write("s.jsonl", lines), null, Problems.failFast(), (r, raw) -> stats.accept(r));
        List<String> warnings = new ArrayList<>();
        ObjectNode report = stats.report(warnings);
        assertEquals(30, report.get("labels").get("chosen").asLong());
        assertEquals(10, report.get("labels").get("unresolved").asLong(), "one vote each way is unresolved");
        assertEquals(10, report.get("by_source").get("web").asLong());
        assertEquals(1.0, report.get("lengths").get("chosen_longer_share").asDouble(), 1e-12);
        assertTrue(warnings.stream().anyMatch(w -> w.startsWith("length bias: the chosen answer is the longer one in 100% of pairs")), warnings.toString());
        // ann1 always says chosen, so kappa's chance agreement is 30/40 and kappa is 0: agreement no better than chance.
        assertEquals(0.0, report.get("agreement").get("cohen_kappa").asDouble(), 1e-12);
        assertEquals(0.25, report.get("agreement").get("disagreement_rate").get("ann2").asDouble(), 1e-12);

        PreferenceStats kto = new PreferenceStats(null);
        PreferenceReader.read(FIXTURES.resolve("datasets/llamafactory/kto_en_demo.json"), null, Problems.failFast(), (r, raw) -> kto.accept(r));
        List<String> ktoWarnings = new ArrayList<>();
        ObjectNode k = kto.report(ktoWarnings);
        assertEquals(150, k.get("unpaired").get("desirable").asLong());
        assertEquals(150, k.get("unpaired").get("undesirable").asLong());
        assertTrue(ktoWarnings.isEmpty(), "1:1 is within KTO's 1 to 4/3: " + ktoWarnings);
    }
}
