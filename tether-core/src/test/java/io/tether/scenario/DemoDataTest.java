package io.tether.scenario;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.data.PreferencePair;
import io.tether.data.PreferenceReader;
import io.tether.data.PreferenceRecord;
import io.tether.data.PreferenceValidator;
import io.tether.data.Problems;
import io.tether.data.PromptRecords;
import io.tether.data.TokenRecords;
import io.tether.data.UnpairedFeedback;
import io.tether.text.ByteTokenizer;
import io.tether.text.TextAssets;

/** The demo files are read by the readers the trainers and {@code tether data validate} use, and their splits never share a prompt. */
class DemoDataTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final ByteTokenizer BYTES = new ByteTokenizer();
    /** 256 bytes and bos, eos, pad. */
    static final int VOCAB = 259;
    static final TokenRecords.TextEncoder ENCODER = new TokenRecords.TextEncoder(BYTES, null, true);

    @TempDir static Path dir;
    static DemoData.Summary summary;

    @BeforeAll
    static void write() throws IOException {
        summary = DemoData.write(dir, 200, 42, new NoisyAnnotator(0.1, 0.3, 7));
    }

    private static Problems validate(Path file, PreferenceReader.Format expected, List<PreferenceRecord> out) {
        assertEquals(expected, PreferenceReader.detect(file));
        Problems problems = new Problems(100);
        PreferenceValidator v = new PreferenceValidator(problems, BYTES, null, 1024);
        PreferenceReader.read(file, null, problems, (r, raw) -> {
            v.accept(r);
            out.add(r);
        });
        assertEquals(0, problems.errors(), () -> file + ": " + problems.details());
        return problems;
    }

    @Test
    void splitsAreByPromptAndEveryCaseIsWritten() throws IOException {
        assertEquals(200, summary.trainCases() + summary.evalCases());
        assertEquals(20, summary.evalCases());
        Set<String> evalIds = null;
        for (String kind : DemoData.KINDS) {
            Set<String> train = ids(dir.resolve(kind + ".train.jsonl")), eval = ids(dir.resolve(kind + ".eval.jsonl"));
            Set<String> both = new HashSet<>(train);
            both.retainAll(eval);
            assertTrue(both.isEmpty(), kind + ": prompts in both splits: " + both);
            assertEquals(summary.evalCases(), eval.size(), kind);
            if (evalIds == null) evalIds = eval;
            assertEquals(evalIds, eval, kind + " holds out different prompts from sft");
        }
        assertTrue(Files.readString(dir.resolve("manifest.json")).contains(GoldRubric.VERSION));
    }

    private static Set<String> ids(Path file) throws IOException {
        Set<String> out = new HashSet<>();
        for (String line : Files.readAllLines(file)) {
            Map<String, Object> row = JSON.readValue(line, new TypeReference<Map<String, Object>>() {});
            out.add((String) row.get("prompt_id"));
        }
        return out;
    }

    @Test
    void sameSeedWritesTheSameBytes(@TempDir Path again) throws IOException {
        DemoData.write(again, 200, 42, new NoisyAnnotator(0.1, 0.3, 7));
        for (String kind : DemoData.KINDS)
            for (String split : List.of(".train.jsonl", ".eval.jsonl"))
                assertEquals(Files.readString(dir.resolve(kind + split)), Files.readString(again.resolve(kind + split)), kind + split);
    }

    @Test
    void sftDemonstrationsFollowTheAgentsMix() throws IOException {
        Map<String, Integer> styles = new java.util.TreeMap<>();
        int n = 0;
        for (String line : Files.readAllLines(dir.resolve("sft.train.jsonl"))) {
            styles.merge(new com.fasterxml.jackson.databind.ObjectMapper().readTree(line).get("generator_style").asText(), 1, Integer::sum);
            n++;
        }
        for (ResponseStyle s : ResponseStyle.values()) {
            double share = styles.getOrDefault(NoisyAnnotator.style(s), 0) / (double) n, p = DemoData.DEMONSTRATOR_MIX[s.ordinal()];
            // Four binomial standard errors: a draw this far off means the mix is not what is sampled, not bad luck.
            assertEquals(p, share, 4 * Math.sqrt(p * (1 - p) / n), s + " in " + styles);
        }
        assertEquals(1.0, java.util.Arrays.stream(DemoData.DEMONSTRATOR_MIX).sum(), 1e-12);
    }

    @Test
    void sftAndCorpusAreReadAsTrainingText() {
        List<TokenRecords.TokenRecord> sft = TokenRecords.read(dir.resolve("sft.train.jsonl"), VOCAB, ENCODER);
        assertEquals(summary.trainCases(), sft.size());
        for (var r : sft) assertTrue(r.completion().length > 10 && !r.isPreference());
        List<TokenRecords.TokenRecord> corpus = TokenRecords.read(dir.resolve("corpus.train.jsonl"), VOCAB, ENCODER);
        assertEquals(summary.trainCases() * ResponseStyle.values().length, corpus.size());
    }

    @Test
    void pairsAreReadByTheDpoReaderAndPassValidation() {
        List<TokenRecords.TokenRecord> tokens = TokenRecords.read(dir.resolve("pairs.train.jsonl"), VOCAB, ENCODER);
        assertEquals(summary.trainCases() * DemoData.PAIRS_PER_CASE, tokens.size());
        assertTrue(tokens.stream().allMatch(TokenRecords.TokenRecord::isPreference));
        List<PreferenceRecord> records = new ArrayList<>();
        Problems problems = validate(dir.resolve("pairs.train.jsonl"), PreferenceReader.Format.TRL, records);
        System.out.println("pairs.train.jsonl validation: " + problems.counts());
        for (PreferenceRecord r : records) {
            PreferencePair p = (PreferencePair) r;
            assertEquals(PreferencePair.Label.CHOSEN, p.label());
            assertTrue(p.promptId().startsWith("rw"));
            assertNotNull(p.chosenGenerator());
            assertEquals(1, p.votes().size(), "the annotator is recorded as the one vote");
        }
    }

    @Test
    void pairRowsCarryProvenanceAndMostFollowTheRubric() throws IOException {
        int againstRubric = 0, rows = 0;
        for (String line : Files.readAllLines(dir.resolve("pairs.train.jsonl"))) {
            Map<String, Object> row = JSON.readValue(line, new TypeReference<Map<String, Object>>() {});
            for (String field : List.of("annotator", "noise", "length_bias", "rubric", "rubric_margin", "generator", "generator_styles"))
                assertTrue(row.containsKey(field), field);
            assertEquals(2, ((List<?>) row.get("generator_styles")).size());
            rows++;
            if (((Number) row.get("rubric_margin")).doubleValue() < 0) againstRubric++;
        }
        // Noise 0.1 and length bias 0.3: well under half the labels go against the rubric, but some do.
        assertTrue(againstRubric > 0 && againstRubric < rows / 2, againstRubric + " of " + rows);
    }

    @Test
    void ktoRowsAreReadAsThumbs() {
        List<PreferenceRecord> records = new ArrayList<>();
        validate(dir.resolve("kto.train.jsonl"), PreferenceReader.Format.KTO, records);
        long up = records.stream().filter(r -> ((UnpairedFeedback) r).desirable()).count();
        assertTrue(up > 0 && up < records.size(), up + " of " + records.size() + " thumbs up");
        for (var r : TokenRecords.read(dir.resolve("kto.train.jsonl"), VOCAB, ENCODER)) assertTrue(r.source().path("label").isBoolean());
    }

    @Test
    void grpoPromptsCarryTheirCaseForTheRubricReward() {
        List<PromptRecords.PromptRecord> prompts = PromptRecords.read(dir.resolve("grpo.eval.jsonl"), new TextAssets(BYTES, null), VOCAB);
        assertEquals(summary.evalCases(), prompts.size());
        GoldRubric rubric = new GoldRubric();
        for (var p : prompts) {
            // As the online trainers hand records to reward functions.
            Map<String, Object> record = JSON.convertValue(p.source(), new TypeReference<Map<String, Object>>() {});
            Case c = Case.fromRecord(record);
            assertEquals(p.text(), c.prompt());
            String answer = RefundWorld.respond(c, ResponseStyle.CORRECT_CONCISE, new java.util.Random(0));
            assertEquals(1.0, rubric.asReward().score(p.text(), answer, BYTES.encode(answer, false), new HashMap<>(record)).getAsDouble(), 1e-12);
        }
    }
}
