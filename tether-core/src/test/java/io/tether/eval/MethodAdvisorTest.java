package io.tether.eval;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The advisor on the real fixtures: each signal gets its method. */
class MethodAdvisorTest {
    static final Path DATASETS = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/datasets");
    @TempDir Path tmp;

    @Test
    void eachSignalGetsItsMethod() throws Exception {
        MethodAdvisor.Advice pairs = MethodAdvisor.advise(DATASETS.resolve("llamafactory/dpo_en_demo.json"), null, false);
        assertEquals("pairs", pairs.signal());
        assertEquals("tether dpo", pairs.method());
        assertEquals("tether orpo", MethodAdvisor.advise(DATASETS.resolve("llamafactory/dpo_en_demo.json"), null, true).method());
        MethodAdvisor.Advice kto = MethodAdvisor.advise(DATASETS.resolve("llamafactory/kto_en_demo.json"), null, false);
        assertEquals("tether kto", kto.method(), kto.reasons().toString());
        MethodAdvisor.Advice gsm = MethodAdvisor.advise(DATASETS.resolve("gsm8k/test.jsonl"), null, false);
        assertEquals("verifiable answers", gsm.signal());
        assertEquals("tether grpo", gsm.method());
        assertTrue(gsm.reasons().get(0).startsWith("1319 of 1319"), gsm.reasons().toString());
    }

    @Test
    void unanimousVotesSuggestIpoAndALengthBiasIsNamed() throws Exception {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 40; i++)
            lines.add(String.format("{\"prompt_id\":\"p%d\",\"prompt\":\"Q%d\",\"chosen\":\"a long and careful answer number %d\",\"rejected\":\"short %d\","
                    + "\"votes\":[{\"annotator\":\"a\",\"label\":\"chosen\"},{\"annotator\":\"b\",\"label\":\"chosen\"}]}", i, i, i, i));
        Path f = tmp.resolve("unanimous.jsonl");
        Files.write(f, lines);
        MethodAdvisor.Advice a = MethodAdvisor.advise(f, null, false);
        assertEquals("tether dpo (loss_type: ipo)", a.method(), a.reasons().toString());
        assertTrue(a.settings().stream().anyMatch(s -> s.startsWith("ld_alpha")), a.settings().toString());
        assertTrue(a.warnings().stream().anyMatch(w -> w.startsWith("length bias")), a.warnings().toString());
    }

    @Test
    void aLengthBiasWithoutUnanimousVotesGetsRdpo() throws Exception {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 40; i++)
            lines.add(String.format("{\"prompt\":\"Q%d\",\"chosen\":\"a long and careful answer number %d\",\"rejected\":\"short %d\"}", i, i, i));
        Path f = tmp.resolve("long.jsonl");
        Files.write(f, lines);
        MethodAdvisor.Advice a = MethodAdvisor.advise(f, null, false);
        assertEquals("tether dpo", a.method(), a.reasons().toString());
        assertTrue(a.settings().stream().anyMatch(s -> s.startsWith("rdpo_alpha: 0.02")), a.settings().toString());
    }
}
