package io.tether.scenario;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.generate.Generator;
import io.tether.generate.SamplingConfig;
import io.tether.model.Models;
import io.tether.text.TextAssets;

/**
 * The shipped base model (models/refund-base, reproduced by models/refund-base.sh) has learnt the world's language:
 * on cases it never saw it answers in the world's format, a decision the rubric can read, in styles good and bad
 * (it was trained on all seven), so alignment has something to improve.
 */
class RefundBaseModelTest {
    static final Path MODEL = Path.of("../models/refund-base");

    /**
     * The demo judges held-out prompts "never in the base model's corpus": the base's world (seed and case count as
     * models/refund-base.sh writes it) must hold none of the prompts the demo evaluates on, or the base model would
     * have seen every style of answer to them. (Templated prompts can repeat by chance across worlds: 6 of the demo's
     * 2,700 training prompts are also in the base's corpus, which is harmless; an evaluated one would not be.)
     */
    @Test
    void theBaseModelsCorpusHoldsNoneOfTheDemosEvaluationPrompts(@org.junit.jupiter.api.io.TempDir Path dir) throws java.io.IOException {
        String script = java.nio.file.Files.readString(Path.of("../models/refund-base.sh"));
        var m = java.util.regex.Pattern.compile("world data --out \\S+ --cases (\\d+) --seed (\\d+)").matcher(script);
        assertTrue(m.find(), "models/refund-base.sh writes the world with --cases N --seed S");
        RefundDemo.Settings demo = RefundDemo.Settings.full(dir, MODEL);
        assertNotEquals(demo.seed(), Long.parseLong(m.group(2)), "the base model's world needs its own seed");
        java.util.Set<String> base = new java.util.HashSet<>();
        for (Case c : RefundWorld.prompts(Integer.parseInt(m.group(1)), Long.parseLong(m.group(2)))) base.add(c.prompt());
        DemoData.write(dir, demo.cases(), demo.seed(), new NoisyAnnotator(demo.noise(), demo.lengthBias(), demo.seed()));
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        List<String> evaluated = java.nio.file.Files.readAllLines(dir.resolve("grpo.eval.jsonl")).stream().limit(demo.evalPrompts())
                .map(line -> { try { return json.readTree(line).get("prompt").asText(); } catch (java.io.IOException e) { throw new java.io.UncheckedIOException(e); } })
                .toList();
        assertEquals(demo.evalPrompts(), evaluated.size());
        assertEquals(List.of(), evaluated.stream().filter(base::contains).toList(), "evaluated prompts that are also in the base model's corpus");
    }

    @Test
    void theBaseModelAnswersUnseenCasesInTheWorldsFormat() {
        Torch.init();
        try (Models.LoadedModel m = Models.load(MODEL, DType.F32); TextAssets text = TextAssets.load(MODEL).orElseThrow()) {
            List<Case> cases = RefundWorld.prompts(64, 4242);
            List<long[]> prompts = new ArrayList<>();
            for (Case c : cases) prompts.add(text.tokenizer().encode(c.prompt(), true));
            SamplingConfig sampling = new SamplingConfig(200, 1.0, 0, 1.0, 3, m.defaultStopIds(), List.of(), true);
            var gens = Generator.generate(m.model(), prompts, sampling);
            GoldRubric rubric = new GoldRubric();
            int readable = 0, correct = 0, stopped = 0;
            double gold = 0;
            Map<Decision, Integer> decisions = new EnumMap<>(Decision.class);
            for (int i = 0; i < cases.size(); i++) {
                String answer = text.tokenizer().decode(gens.get(i).tokens(), true);
                GoldRubric.Grade g = rubric.grade(cases.get(i), answer);
                if (g.decision() != null) { readable++; decisions.merge(g.decision(), 1, Integer::sum); }
                correct += g.decisionCorrect() ? 1 : 0;
                stopped += gens.get(i).truncated() ? 0 : 1;
                gold += g.score();
            }
            int n = cases.size();
            System.out.printf("refund-base on %d unseen cases (sampled at T=1): %d stop by themselves, %d readable decisions %s, %d correct, mean gold %.3f%n",
                    n, stopped, readable, decisions, correct, gold / n);
            assertTrue(stopped >= 0.7 * n, "answers end with EOS: " + stopped + "/" + n);
            assertTrue(readable >= 0.7 * n, "decisions the rubric can read: " + readable + "/" + n);
            assertTrue(decisions.size() >= 3, "more than one canned decision: " + decisions);
        }
    }
}
