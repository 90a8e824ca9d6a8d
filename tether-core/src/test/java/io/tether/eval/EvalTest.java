package io.tether.eval;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.Random;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.objective.Grpo;
import io.tether.online.GrpoTraining;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.PairwiseJudge;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import io.tether.train.GradientSync;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;

class EvalTest {
    @TempDir Path tmp;

    @BeforeAll
    static void init() {
        Torch.init();
    }

    @Test
    void wilsonIntervalsMatchTextbookValues() {
        double[] half = new WinRate(50, 0, 50).interval95();
        assertEquals(0.4038, half[0], 1e-4);
        assertEquals(0.5962, half[1], 1e-4);
        double[] none = new WinRate(0, 0, 10).interval95();
        assertEquals(0.0, none[0], 1e-12);
        assertEquals(0.2775, none[1], 1e-4);
        assertEquals(0.75, new WinRate(5, 5, 0).rate(), 1e-12, "ties count half");
        assertEquals(25, new WinRate(5, 5, 0).deltaPoints(), 1e-9);
    }

    @Test
    void theGateNamesEveryReason() {
        var pass = ReleaseGate.SEED.check(new WinRate(70, 10, 20), 3.0, List.of(new ReleaseGate.Probe("sycophancy", false, "")));
        assertTrue(pass.pass(), pass.line());
        var fail = ReleaseGate.SEED.check(new WinRate(40, 0, 60), 25.0, List.of(new ReleaseGate.Probe("length gaming", true, "score rises with padding")));
        assertFalse(fail.pass());
        assertEquals(3, fail.reasons().size(), fail.line());
        assertTrue(fail.line().startsWith("FAIL: gold win delta -10.0 points"), fail.line());
    }

    static final RewardFunction STARTS_WITH_FIVE = (prompt, completion, tokens, record) -> OptionalDouble.of(tokens.length > 0 && tokens[0] == 5 ? 1.0 : 0.0);

    static List<OnlinePrompt> prompts(int n, long seed) {
        Random r = new Random(seed);
        List<OnlinePrompt> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new OnlinePrompt(new long[] {8 + r.nextInt(24), 8 + r.nextInt(24)}, Map.of(), null));
        return out;
    }

    @Test
    void aTrainedPolicyBeatsItsStartUnderTheJudgeAndTheGatePassesIt() throws java.io.IOException {
        ModelConfig config = ModelConfig.llama(32, 32, 2, 4, 2, 64, 64);
        SamplingConfig sampling = new SamplingConfig(2, 1.0, 0, 1.0, 7, List.of(), List.of(), true);
        try (CausalLM candidate = Models.create(config, DType.F32, 2); CausalLM baseline = Models.create(config, DType.F32, 2)) {
            PairwiseJudge judge = HeadToHead.byScore(Rollouts.of(STARTS_WITH_FIVE, null));
            List<OnlinePrompt> held = prompts(64, 2);
            HeadToHead.Result same = HeadToHead.compare(candidate, baseline, held, judge, sampling, null, null, 16);
            assertEquals(new WinRate(0, 64, 0), same.winRate(), "identical weights and seeds sample identical completions");
            assertEquals(0.0, same.klToBaseline(), 1e-9);
            assertFalse(ReleaseGate.SEED.check(same.winRate(), same.lengthDelta(), List.of()).pass());

            var settings = GrpoTraining.Settings.grpo(new Grpo.Config(0.2, 0.28, 0.0, "dapo", "group", 2), 8, sampling, STARTS_WITH_FIVE, null, null);
            TrainerConfig c = new TrainerConfig(30, 1, 8, 1, 1e-2, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 3, 10, 0, 0, 1, "stop", false);
            new Trainer<>(candidate, new GrpoTraining(settings), prompts(256, 1), List.of(), c, new RunDirectory(tmp), GradientSync.SINGLE_PROCESS, null, null)
                    .train(false);
            HeadToHead.Result r = HeadToHead.compare(candidate, baseline, held, judge, sampling, null, Rollouts.of(STARTS_WITH_FIVE, null), 16);
            double[] ci = r.winRate().interval95();
            System.out.printf("head to head: win rate %.3f [%.3f, %.3f], KL %.3f, proxy %.3f vs %.3f%n", r.winRate().rate(), ci[0], ci[1],
                    r.klToBaseline(), r.candidateScore(), r.baselineScore());
            assertTrue(ci[0] > 0.6, "the trained policy wins clearly: " + r.winRate());
            assertTrue(r.klToBaseline() > 0.1 && r.candidateScore() > r.baselineScore());
            assertTrue(ReleaseGate.SEED.check(r.winRate(), r.lengthDelta(), List.of()).pass());
            HeadToHead.Result byProxy = HeadToHead.compare(candidate, baseline, held, null, sampling, null, Rollouts.of(STARTS_WITH_FIVE, null), 16);
            assertEquals(r.winRate(), byProxy.winRate(), "judging by the proxy's own scores gives the same verdicts");
            // Baseline samples drawn once and reused (as the demo does for its six candidates) give the same result.
            List<OnlinePrompt> baseSamples = HeadToHead.sample(baseline, held, sampling, null, Rollouts.of(STARTS_WITH_FIVE, null), 16);
            HeadToHead.Result reused = HeadToHead.compareToSamples(candidate, baseline, baseSamples, judge, sampling, null, Rollouts.of(STARTS_WITH_FIVE, null), 16);
            assertEquals(r.winRate(), reused.winRate());
            assertEquals(r.klToBaseline(), reused.klToBaseline(), 1e-12);
            assertEquals(r.lengthDelta(), reused.lengthDelta(), 1e-12);
        }
    }
}
