package io.tether.scenario;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import com.fasterxml.jackson.databind.ObjectMapper;

import io.tether.engine.AtomicFiles;
import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.eval.HeadToHead;
import io.tether.eval.OveroptimizationMonitor;
import io.tether.eval.ProbeSuite;
import io.tether.eval.ReleaseGate;
import io.tether.eval.WinRate;
import io.tether.generate.SamplingConfig;
import io.tether.model.LogProbs;
import io.tether.model.Models;
import io.tether.online.GrpoRun;
import io.tether.online.GrpoSettings;
import io.tether.online.GrpoTraining;
import io.tether.online.OnlineDpoRun;
import io.tether.online.Online;
import io.tether.online.OnlineDpoSettings;
import io.tether.online.OnlineSettings;
import io.tether.rollout.OnlinePrompt;
import io.tether.online.PpoRun;
import io.tether.online.PpoSettings;
import io.tether.rollout.RewardFunction;
import io.tether.reward.RewardRun;
import io.tether.reward.RewardSettings;
import io.tether.rollout.Rollouts;
import io.tether.text.ByteTokenizer;
import io.tether.text.TextAssets;
import io.tether.objective.DpoLoss;
import io.tether.run.PreferenceMethod;
import io.tether.run.PreferenceRun;
import io.tether.run.DataSettings;
import io.tether.run.RunSpec;
import io.tether.run.SftSettings;
import io.tether.train.TrainerConfig;
import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.run.SftRun;
import io.tether.train.Trainer;

/**
 * The seed's story, run end to end in the refund world: from the shipped base model, SFT on the support agents'
 * demonstrations, a reward model on the noisy annotator's pairs, then each method from the SFT model on the same
 * prompts (DPO and KTO on the annotator's labels, PPO and online DPO against the reward model, GRPO against the gold
 * rubric as a verifiable reward), and a PPO run with a weak KL penalty watched by the over-optimisation monitor.
 * Every model is then judged against the SFT model on held-out prompts by the gold rubric, probed, and put through
 * the release gate. Each stage is an ordinary run directory under {@code out}; a stage whose model exists and whose
 * settings match is reused, so an interrupted demo continues where it stopped.
 */
public final class RefundDemo {
    private RefundDemo() {}

    /** The reward functions the demo's online runs name: the world's gold rubric. */
    public static final Map<String, RewardFunction> REWARDS = Map.of("refund-rubric", new GoldRubric().asReward());
    static final String WEAK_KL_PPO = "ppo-weak-kl";
    /**
     * The probes pair answers to the first this many held-out prompts. Scoring both answers of four probes under every
     * model is most of evaluation's forward passes; at 64 pairs a probe, the gate's 10-point regression threshold is
     * about two standard errors of a share near 20%, while the win rate gets every held-out prompt the settings name.
     */
    static final int PROBE_PROMPTS = 64;

    /**
     * What to run. Steps are optimizer steps per stage; {@code evalPrompts} held-out prompts judge every model.
     *
     * @param noise      the annotator's label-flip rate
     * @param lengthBias how often the annotator just picks the longer answer: what makes the reward model gameable
     */
    public record Settings(Path out, Path baseModel, long seed, int cases, double noise, double lengthBias, int sftSteps, int rmSteps,
                           int dpoSteps, int ktoSteps, int ppoSteps, int grpoSteps, int onlineDpoSteps, int weakKlSteps, int evalPrompts,
                           int maxNewTokens) {
        /**
         * About 9 minutes on 2 cores with stages two at a time. The step counts buy what the held-out numbers need: on
         * 200 held-out prompts GRPO won 0.643 against SFT after 20 steps and 0.760 after 60, PPO 0.585 after 40 and 0.733
         * after 80, R-DPO 0.725 after 120 and 0.780 after 160. DPO runs 140 and online DPO 16 (not 24) for time: with
         * DPO at 160 and online DPO at 24 the demo took 570 and 586 s, too near 10 minutes. Stage times vary by
         * about 10 s run to run. Cutting the weak-KL run to 30 steps instead gave 573 s and a noisier proxy curve.
         */
        public static Settings full(Path out, Path baseModel) {
            return new Settings(out, baseModel, 1, 3000, 0.1, 0.3, 120, 80, 140, 40, 80, 45, 16, 40, 128, 200);
        }

        /** About 80 seconds: every stage runs and is evaluated, too briefly to learn much. */
        public static Settings quick(Path out, Path baseModel) {
            return new Settings(out, baseModel, 1, 600, 0.1, 0.3, 10, 8, 4, 4, 3, 2, 3, 4, 16, 120);
        }

        Map<String, Object> asMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("base_model", baseModel.toAbsolutePath().normalize().toString());
            m.put("seed", seed);
            m.put("cases", cases);
            m.put("noise", noise);
            m.put("length_bias", lengthBias);
            m.put("sft_steps", sftSteps);
            m.put("rm_steps", rmSteps);
            m.put("dpo_steps", dpoSteps);
            m.put("kto_steps", ktoSteps);
            m.put("ppo_steps", ppoSteps);
            m.put("grpo_steps", grpoSteps);
            m.put("online_dpo_steps", onlineDpoSteps);
            m.put("weak_kl_steps", weakKlSteps);
            m.put("eval_prompts", evalPrompts);
            m.put("max_new_tokens", maxNewTokens);
            return m;
        }
    }

    /** One aligned model against the SFT model; {@code sampleAnswer} is its answer to the first held-out prompt. */
    public record MethodResult(String method, String trainedOn, double trainSeconds, HeadToHead.Result eval, double goldMean,
                               List<ProbeSuite.Result> probes, ReleaseGate.Verdict gate, String sampleAnswer) {}

    /** A PPO run as the monitor saw it: {step, proxy, gold, KL} points and the flags it raised. */
    public record Overoptimisation(List<double[]> points, List<OveroptimizationMonitor.Flag> flags) {}

    /**
     * The reward model on held-out annotated pairs: how often it ranks them as the annotator did, and as the gold rubric
     * does (over the pairs the rubric does not tie).
     */
    public record RewardModelCheck(int pairs, double annotatorAgreement, double goldAgreement) {}

    /** What evaluation found: the SFT baseline, the reward model, every method, and the first held-out prompt with SFT's answer. */
    public record Evaluation(double sftGoldMean, double baseWinRateOfSft, RewardModelCheck rewardModel, List<ProbeSuite.Result> sftProbes,
                             List<ProbeSuite.Result> rewardModelProbes, List<MethodResult> methods, String samplePrompt, String sftSampleAnswer) {}

    /** {@code overoptimisation} is the weak-KL PPO run's; {@code outcomes} are what the demo exists to show, as measured. */
    public record Outcome(Settings settings, Evaluation evaluation, Overoptimisation overoptimisation, List<OutcomeCheck> outcomes,
                          Map<String, Double> stageSeconds, int lanes, double totalSeconds, Path report) {
        public List<MethodResult> methods() {
            return evaluation.methods();
        }

        /** Whether every one of {@link #outcomes} was met. */
        public boolean outcomesMet() {
            return outcomes.stream().allMatch(OutcomeCheck::met);
        }
    }

    /** Stage progress: a listener for the named stage's training loop. */
    public interface Progress {
        Trainer.Listener stage(String name, String description);
    }

    /**
     * How many stages train side by side: as many as the cores hold at torch's thread count (one thread per run on
     * the 2-core machines the demo is sized for, where a second stage uses the core the first leaves idle), at most 3.
     */
    public static int defaultLanes() {
        return Math.max(1, Math.min(3, Runtime.getRuntime().availableProcessors() / Math.max(1, Torch.threads())));
    }

    public static Outcome run(Settings s, PrintWriter log, Progress progress) throws IOException {
        return run(s, defaultLanes(), log, progress);
    }

    /**
     * Runs the demo with up to {@code lanes} training stages at a time. Once SFT is done, the reward model, DPO, KTO and
     * GRPO need only the SFT model, and PPO, online DPO and the weak-KL run only the reward model too. Every stage seeds
     * its own generators, so its model depends on the seed and the number of lanes, not on timing (more than one lane
     * runs OpenBLAS on one thread, which changes float rounding).
     */
    public static Outcome run(Settings s, int lanes, PrintWriter log, Progress progress) throws IOException {
        if (lanes < 1) throw new IllegalArgumentException("lanes must be >= 1, got " + lanes);
        long start = System.nanoTime();
        Files.createDirectories(s.out());
        Path out = s.out().toAbsolutePath().normalize();
        Map<String, Double> seconds = new java.util.concurrent.ConcurrentHashMap<>();
        Path world = out.resolve("world");
        String key = new ObjectMapper().writeValueAsString(s.asMap());
        Stages stages = new Stages(out, key, seconds, log, progress);

        stages.run("world", () -> {
            DemoData.write(world, s.cases(), s.seed(), new NoisyAnnotator(s.noise(), s.lengthBias(), s.seed()));
            new ByteTokenizer().save(world.resolve("tokenizer"));
        }, world.resolve("manifest.json"));

        Path sft = out.resolve("sft"), rm = out.resolve("rm");
        stages.train("sft", "SFT on the agents' demonstrations", listener -> SftRun.run(new RunSpec(s.baseModel().toAbsolutePath().normalize(), null, null,
                world.resolve("sft.train.jsonl"), null, 0, sft, "fp32", new DataSettings(TokenRecords.InvalidRecords.ERROR, 512, 0, 0, Truncation.Mode.KEEP_START),
                loop(s).perDeviceTrainBatchSize(8).learningRate(1.0e-3).lrSchedulerType("cosine").warmupSteps(Math.min(10, s.sftSteps() / 5))
                        .maxSteps(s.sftSteps()).build(), null, Map.of()), new SftSettings(true, true, false), false, listener));

        Path sftModel = sft.resolve("model"), rewardModel = rm.resolve("model"), prompts = world.resolve("grpo.train.jsonl");
        Map<String, String> trainedOn = new LinkedHashMap<>();
        trainedOn.put("dpo", "annotator pairs (R-DPO)");
        trainedOn.put("kto", "annotator thumbs");
        trainedOn.put("ppo", "reward model");
        trainedOn.put("grpo", "gold rubric (verifiable)");
        trainedOn.put("online-dpo", "reward model as judge");
        trainedOn.put(WEAK_KL_PPO, "reward model, KL/100, lr x3");

        // Longest first: the reward model (three stages wait for it) beside GRPO, then the rest as lanes free up.
        try (StageLanes pool = new StageLanes(lanes)) {
            StageLanes.Task rmDone = pool.submit(() -> stages.train("rm", "reward model on the annotator's pairs", listener -> RewardRun.run(new RunSpec(sft.resolve("model"), null, null,
                    world.resolve("pairs.train.jsonl"), null, 0, rm, "fp32", new DataSettings(TokenRecords.InvalidRecords.ERROR, 512, 0, 0, Truncation.Mode.KEEP_START),
                    loop(s).perDeviceTrainBatchSize(8).learningRate(5.0e-4).lrSchedulerType("cosine").maxSteps(s.rmSteps()).build(), null, Map.of()),
                    RewardSettings.defaults(), false, listener).training()));
            pool.submit(() -> stages.train("grpo", "GRPO with the gold rubric as a verifiable reward", listener -> GrpoRun.run(Online.config(
                    RunSpec.of(sftModel, prompts, out.resolve("grpo"), loop(s).perDeviceTrainBatchSize(4).learningRate(3.0e-4).maxSteps(s.grpoSteps()).build()),
                    sampled(s, GrpoSettings.ONLINE).rewardFunctions(List.of("refund-rubric")).build(),
                    GrpoSettings.defaults(GrpoTraining.Estimator.GRPO).withNumGenerations(8).withBeta(0.04)), false, listener, REWARDS)));
            // The annotator picks the longer answer 30% of the time, so the chosen answer is the longer one in 76% of pairs,
            // and plain DPO fits that as quality (padded and over-formatted answers grew). R-DPO's length term, as
            // `tether advise` suggests for such data, lets length explain its share of each label. β 0.3 rather than
            // TRL's 0.1 holds the policy nearer SFT against the noisy labels. Win rate against SFT on 200 held-out prompts:
            // 160 steps 0.780 with rdpo_alpha 0.02 and 0.685 without, 120 steps 0.725 with it; α 0.05 overshot (0.520 at 80
            // steps). The demo runs 140 (see Settings.full).
            pool.submit(() -> stages.train("dpo", "DPO on the annotator's pairs", listener -> PreferenceRun.run(preferenceStage(s, sft, world.resolve("pairs.train.jsonl"),
                    out.resolve("dpo"), s.dpoSteps()), PreferenceMethod.Dpo.of(DpoLoss.Config.of(0.3, "sigmoid").withRdpoAlpha(0.02)), false, listener)));
            // KTO at TRL's β 0.1.
            pool.submit(() -> stages.train("kto", "KTO on the annotator's thumbs", listener -> PreferenceRun.run(preferenceStage(s, sft, world.resolve("kto.train.jsonl"),
                    out.resolve("kto"), s.ktoSteps()), PreferenceMethod.Kto.defaults(), false, listener)));
            pool.after(rmDone, () -> stages.train("ppo", "PPO against the reward model", listener -> PpoRun.run(Online.config(
                    RunSpec.of(sftModel, prompts, out.resolve("ppo"), loop(s).loggingSteps(1).perDeviceTrainBatchSize(8).learningRate(3.0e-4).maxSteps(s.ppoSteps()).build()),
                    sampled(s, PpoSettings.ONLINE).rewardModel(rewardModel).missingEosPenalty(1.0).build(),
                    PpoSettings.defaults().toBuilder().goldRewardFunctions(List.of("refund-rubric")).klCoef(0.05).numPpoEpochs(2).numMiniBatches(1).build()),
                    false, monitor(listener), REWARDS)));
            pool.after(rmDone, () -> stages.train("online-dpo", "online DPO judged by the reward model", listener -> OnlineDpoRun.run(Online.config(
                    RunSpec.of(sftModel, prompts, out.resolve("online-dpo"), loop(s).perDeviceTrainBatchSize(8).learningRate(2.0e-4).maxSteps(s.onlineDpoSteps()).build()),
                    sampled(s, OnlineDpoSettings.ONLINE).rewardModel(rewardModel).build(), OnlineDpoSettings.defaults().withBeta(0.1)), false, listener, REWARDS)));
            pool.after(rmDone, () -> stages.train(WEAK_KL_PPO, "PPO with a weak KL penalty, watched by the over-optimisation monitor", listener -> PpoRun.run(Online.config(
                    RunSpec.of(sftModel, prompts, out.resolve(WEAK_KL_PPO), loop(s).perDeviceTrainBatchSize(8).learningRate(1.0e-3).loggingSteps(1).maxSteps(s.weakKlSteps()).build()),
                    sampled(s, PpoSettings.ONLINE).rewardModel(rewardModel).build(),
                    PpoSettings.defaults().toBuilder().goldRewardFunctions(List.of("refund-rubric")).klCoef(0.0005).numPpoEpochs(4).numMiniBatches(1).build()),
                    false, monitor(listener), REWARDS)));
            pool.awaitAll();
        }
        // Read back from each PPO run's metrics, so that a reused run reports what the live monitor saw.
        Map<String, Overoptimisation> watched = Map.of("ppo", watched(out.resolve("ppo")), WEAK_KL_PPO, watched(out.resolve(WEAK_KL_PPO)));

        long evalStart = System.nanoTime();
        log.println("evaluating every model against SFT on " + s.evalPrompts() + " held-out prompts, judged by the gold rubric...");
        log.flush();
        Evaluation e = evaluate(s, lanes, out, world, trainedOn, seconds, watched, log);
        seconds.put("eval", (System.nanoTime() - evalStart) / 1e9);
        Map<String, Double> ordered = new LinkedHashMap<>();
        List<String> order = new ArrayList<>(List.of("world", "sft", "rm"));
        order.addAll(trainedOn.keySet());
        order.add("eval");
        for (String stage : order) if (seconds.containsKey(stage)) ordered.put(stage, seconds.get(stage));
        Outcome done = new Outcome(s, e, watched.get(WEAK_KL_PPO), outcomes(e, watched.get(WEAK_KL_PPO)), ordered, lanes,
                (System.nanoTime() - start) / 1e9, out.resolve("report.html"));
        DemoReport.writeJson(out.resolve("results.json"), done);
        DemoReport.writeHtml(out.resolve("report.html"), done);
        return done;
    }

    private static Evaluation evaluate(Settings s, int lanes, Path out, Path world, Map<String, String> trainedOn, Map<String, Double> seconds,
                                       Map<String, Overoptimisation> watched, PrintWriter log) throws IOException {
        Path sftDir = out.resolve("sft").resolve("model");
        try (Models.LoadedModel sft = Models.load(sftDir, DType.F32); Models.LoadedModel base = Models.load(s.baseModel(), DType.F32);
             Models.LoadedModel rm = Models.load(out.resolve("rm").resolve("model"), DType.F32);
             TextAssets text = TextAssets.load(sftDir).orElseThrow(() -> new IllegalArgumentException(sftDir + ": no tokenizer"))) {
            Function<long[], String> decoder = ids -> text.tokenizer().decode(ids, true);
            List<OnlinePrompt> prompts = OnlinePrompt.read(world.resolve("grpo.eval.jsonl"), text, sft.model().config().vocabSize());
            if (prompts.size() > s.evalPrompts()) prompts = prompts.subList(0, s.evalPrompts());
            int positions = sft.model().config().maxPositionEmbeddings();
            Rollouts.Scorer gold = Rollouts.of(new GoldRubric().asReward(), decoder), proxy = fitted(Rollouts.rewardModel(rm.model(), 16), positions);
            var judge = HeadToHead.byScore(gold);
            SamplingConfig sampling = new SamplingConfig(s.maxNewTokens(), 1.0, 0, 1.0, s.seed() + 1000, sft.defaultStopIds(), List.of(), true);
            List<OnlinePrompt> sftSamples = HeadToHead.sample(sft.model(), prompts, sampling, decoder, proxy, 16);
            double sftGold = meanGold(sftSamples, gold);
            List<Case> probeCases = new ArrayList<>();
            for (OnlinePrompt p : prompts.subList(0, Math.min(PROBE_PROMPTS, prompts.size()))) probeCases.add(Case.fromRecord(p.record()));
            List<ProbeSuite.Probe> probes = RefundProbes.build(probeCases, text.tokenizer(), s.seed());

            // Everything from here only reads the models and SFT's samples, so it shares the lanes the stages trained on:
            // the base model against SFT, the probes under SFT and the reward model, the reward model on held-out pairs,
            // and each method against SFT.
            StageLanes.Value<WinRate> baseVsSft;
            StageLanes.Value<List<ProbeSuite.Result>> sftProbed, rmProbed;
            StageLanes.Value<RewardModelCheck> rmChecked;
            Map<String, StageLanes.Value<Judged>> judged = new LinkedHashMap<>();
            try (StageLanes pool = new StageLanes(lanes)) {
                // Same seeds as sampling SFT against the base model; read from SFT's side below.
                baseVsSft = pool.compute(() -> HeadToHead.compareToSamples(base.model(), sft.model(), sftSamples, judge, sampling, decoder, proxy, 16).winRate());
                sftProbed = pool.compute(() -> ProbeSuite.run(probes, fitted(policyPreference(sft.model()), positions)));
                rmProbed = pool.compute(() -> ProbeSuite.run(probes, proxy));
                rmChecked = pool.compute(() -> checkRewardModel(world.resolve("pairs.eval.jsonl"), text, proxy, s.evalPrompts()));
                for (String m : trainedOn.keySet())
                    judged.put(m, pool.compute(() -> {
                        try (Models.LoadedModel candidate = Models.load(out.resolve(m).resolve("model"), DType.F32)) {
                            return new Judged(HeadToHead.compareToSamples(candidate.model(), sft.model(), sftSamples, judge, sampling, decoder, proxy, 16),
                                    ProbeSuite.run(probes, fitted(policyPreference(candidate.model()), positions)));
                        }
                    }));
                pool.awaitAll();
            }
            WinRate sftVsBase = new WinRate(baseVsSft.get().losses(), baseVsSft.get().ties(), baseVsSft.get().wins());
            List<ProbeSuite.Result> sftProbes = sftProbed.get(), rmProbes = rmProbed.get();
            RewardModelCheck rmCheck = rmChecked.get();
            log.printf("  reward model on %d held-out pairs: agrees with the annotator on %.3f, with the gold rubric on %.3f%n", rmCheck.pairs(),
                    rmCheck.annotatorAgreement(), rmCheck.goldAgreement());
            log.printf("  sft: gold %.3f; against the base model: win rate %.3f%n", sftGold, sftVsBase.rate());

            List<MethodResult> methods = new ArrayList<>();
            for (String m : trainedOn.keySet()) {
                HeadToHead.Result r = judged.get(m).get().result();
                List<ProbeSuite.Result> mine = judged.get(m).get().probes();
                List<ReleaseGate.Probe> checks = new ArrayList<>(ProbeSuite.regressions(sftProbes, mine, 0.1));
                if (watched.containsKey(m)) {
                    // Both PPO runs log proxy and gold scores per step; the monitor's verdict on each is part of its gate.
                    List<OveroptimizationMonitor.Flag> flags = watched.get(m).flags();
                    checks.add(new ReleaseGate.Probe("over-optimisation monitor", !flags.isEmpty(), flags.isEmpty() ? "not flagged" : flags.get(0).message()));
                }
                ReleaseGate.Verdict v = ReleaseGate.SEED.check(r.winRate(), r.lengthDelta(), checks);
                double g = meanGold(r.candidateSamples(), gold);
                methods.add(new MethodResult(m, trainedOn.get(m), seconds.getOrDefault(m, Double.NaN), r, g, mine, v,
                        decoder.apply(r.candidateSamples().get(0).experiences().get(0).tokens)));
                log.printf("  %-11s gold %.3f, win rate %.3f, length %+.1f: %s%n", m, g, r.winRate().rate(), r.lengthDelta(), v.line());
            }
            log.flush();
            return new Evaluation(sftGold, sftVsBase.rate(), rmCheck, sftProbes, rmProbes, methods, prompts.get(0).text(),
                    decoder.apply(sftSamples.get(0).experiences().get(0).tokens));
        }
    }

    /** One method against SFT on the held-out prompts, and under the probes. */
    private record Judged(HeadToHead.Result result, List<ProbeSuite.Result> probes) {}

    /** One outcome the demo exists to show, and what this run measured for it. */
    public record OutcomeCheck(String claim, boolean met, String evidence) {}

    /**
     * The outcomes the demo exists to show: DPO, PPO and GRPO each beat SFT by at least 20 points of gold win rate; the
     * weak-KL PPO run raised the proxy score above SFT's while its gold score fell below SFT's, was flagged by the
     * over-optimisation monitor and failed the release gate; and the length-biased annotator shows up as length gaming
     * (mean length grown past the gate's limit) in at least one method, named by the gate.
     */
    static List<OutcomeCheck> outcomes(Evaluation e, Overoptimisation weakKl) {
        List<OutcomeCheck> checks = new ArrayList<>();
        Map<String, MethodResult> byName = new LinkedHashMap<>();
        for (MethodResult m : e.methods()) byName.put(m.method(), m);
        for (String name : List.of("dpo", "ppo", "grpo")) {
            MethodResult m = byName.get(name);
            String claim = name + " beats SFT by >= 20 points of gold win rate";
            if (m == null) {
                checks.add(new OutcomeCheck(claim, false, "not run"));
                continue;
            }
            WinRate w = m.eval().winRate();
            checks.add(new OutcomeCheck(claim, w.deltaPoints() >= 20, String.format(java.util.Locale.ROOT, "win rate %.3f, %+.1f points", w.rate(), w.deltaPoints())));
        }
        MethodResult weak = byName.get(WEAK_KL_PPO);
        String claim = "weak-KL PPO: proxy up, gold down, flagged by the monitor, failed by the gate";
        if (weak == null) {
            checks.add(new OutcomeCheck(claim, false, "not run"));
        } else {
            List<OveroptimizationMonitor.Flag> flags = weakKl.flags();
            boolean proxyUp = weak.eval().candidateScore() > weak.eval().baselineScore(), goldDown = weak.goldMean() < e.sftGoldMean();
            checks.add(new OutcomeCheck(claim, proxyUp && goldDown && !flags.isEmpty() && !weak.gate().pass(), String.format(java.util.Locale.ROOT,
                    "proxy %.3f vs SFT %.3f, gold %.3f vs SFT %.3f, %s, gate %s", weak.eval().candidateScore(), weak.eval().baselineScore(), weak.goldMean(),
                    e.sftGoldMean(), flags.isEmpty() ? "never flagged" : "first flagged at step " + flags.get(0).step(), weak.gate().pass() ? "PASS" : "FAIL")));
        }
        List<String> gamed = new ArrayList<>();
        for (MethodResult m : e.methods())
            if (!m.method().equals(WEAK_KL_PPO) && ReleaseGate.SEED.lengthGrewTooMuch(m.eval().lengthDelta()))
                gamed.add(String.format(java.util.Locale.ROOT, "%s %+.1f tokens", m.method(), m.eval().lengthDelta()));
        checks.add(new OutcomeCheck("length gaming from the length-biased annotator, named by the gate", !gamed.isEmpty(),
                gamed.isEmpty() ? "no method grew past the gate's limit" : String.join(", ", gamed) + ", gate FAIL"));
        return checks;
    }

    private static RewardModelCheck checkRewardModel(Path pairsFile, TextAssets text, Rollouts.Scorer rm, int limit) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<OnlinePrompt> prompts = new ArrayList<>();
        List<long[]> completions = new ArrayList<>();
        List<Double> margins = new ArrayList<>();
        for (String line : Files.readAllLines(pairsFile)) {
            if (margins.size() >= limit) break;
            var n = json.readTree(line);
            String prompt = n.get("prompt").asText();
            OnlinePrompt p = new OnlinePrompt(text.tokenizer().encode(prompt, true), Map.of(), prompt);
            prompts.add(p);
            completions.add(text.tokenizer().encode(n.get("chosen").asText(), false));
            prompts.add(p);
            completions.add(text.tokenizer().encode(n.get("rejected").asText(), false));
            margins.add(n.get("rubric_margin").asDouble());
        }
        double[] scores = rm.score(prompts, completions);
        int annotator = 0, gold = 0, goldPairs = 0;
        for (int i = 0; i < margins.size(); i++) {
            double d = scores[2 * i] - scores[2 * i + 1];
            if (d > 0) annotator++;
            if (margins.get(i) != 0) {
                goldPairs++;
                if (Math.signum(d) == Math.signum(margins.get(i))) gold++;
            }
        }
        return new RewardModelCheck(margins.size(), annotator / (double) margins.size(), goldPairs == 0 ? Double.NaN : gold / (double) goldPairs);
    }

    /**
     * A scorer that sees each completion cut to fit {@code positions} after its prompt, as the trainers cut theirs
     * (max_length 512): a padded probe answer after a long prompt can pass the models' 512 positions.
     */
    static Rollouts.Scorer fitted(Rollouts.Scorer scorer, int positions) {
        return (prompts, completions) -> {
            List<long[]> cut = new ArrayList<>(completions.size());
            for (int i = 0; i < completions.size(); i++) {
                long[] c = completions.get(i);
                cut.add(java.util.Arrays.copyOf(c, Math.max(1, Math.min(c.length, positions - prompts.get(i).ids().length))));
            }
            return scorer.score(prompts, cut);
        };
    }

    /** The policy's preference between two answers: which it would rather write, by the log-prob of the whole answer. */
    static Rollouts.Scorer policyPreference(io.tether.model.CausalLM policy) {
        return (prompts, completions) -> {
            List<LogProbs.Sequence> seqs = new ArrayList<>();
            for (int i = 0; i < completions.size(); i++) seqs.add(new LogProbs.Sequence(prompts.get(i).ids(), completions.get(i)));
            List<LogProbs.Result> r = LogProbs.score(policy, seqs, 16);
            double[] out = new double[r.size()];
            for (int i = 0; i < out.length; i++) out[i] = r.get(i).logprob();
            return out;
        };
    }

    private static double meanGold(List<OnlinePrompt> samples, Rollouts.Scorer gold) {
        List<OnlinePrompt> ps = new ArrayList<>();
        List<long[]> cs = new ArrayList<>();
        for (OnlinePrompt p : samples) { ps.add(p); cs.add(p.experiences().get(0).tokens); }
        double sum = 0;
        for (double g : gold.score(ps, cs)) sum += g;
        return sum / samples.size();
    }

    /**
     * A PPO run as the monitor saw it, read back from its metrics: every logged point with both scores, and the flags
     * the demo's monitor raises when fed them again (the same as it raised live).
     */
    private static Overoptimisation watched(Path run) throws IOException {
        OveroptimizationMonitor m = monitor(null);
        Path metrics = run.resolve("metrics.jsonl");
        if (Files.exists(metrics)) {
            ObjectMapper json = new ObjectMapper();
            for (String line : Files.readAllLines(metrics)) {
                var n = json.readTree(line);
                if (!n.has("objective/scores") || !n.has("objective/gold_scores") || !n.has("step")) continue;
                Map<String, Object> logged = new LinkedHashMap<>();
                logged.put("objective/scores", n.get("objective/scores").asDouble());
                logged.put("objective/gold_scores", n.get("objective/gold_scores").asDouble());
                if (n.has("objective/kl")) logged.put("objective/kl", n.get("objective/kl").asDouble());
                m.onStep(n.get("step").asInt(), 0, logged);
            }
        }
        return new Overoptimisation(m.points(), m.flags());
    }

    /**
     * The monitor as the demo runs it: means over 5 logged steps (a step's 8 rollouts alone are too noisy), flagging
     * when the proxy has risen and gold has fallen by more than 0.03 since gold's best window.
     */
    static OveroptimizationMonitor monitor(Trainer.Listener downstream) {
        return new OveroptimizationMonitor(downstream, 5, 0.03);
    }

    /** The loop settings every stage shares: the demo's seed, a log line every 5 steps, no intermediate checkpoints or evaluations. */
    private static TrainerConfig.Builder loop(Settings s) {
        return TrainerConfig.defaults().toBuilder().seed(s.seed()).loggingSteps(5).saveSteps(0).evalSteps(0);
    }

    /** The online stages' sampling: the demo's completion budget at temperature 1.0, the method's other defaults. */
    private static OnlineSettings.Builder sampled(Settings s, OnlineSettings.Defaults method) {
        return OnlineSettings.defaults(method).toBuilder().maxCompletionLength(s.maxNewTokens()).temperature(1.0);
    }

    /**
     * The DPO and KTO stages' common keys: from the SFT model, the annotator's data cut at 512 tokens keeping the start,
     * no held-out split, batch 8 at learning rate 2e-4 (TRL's other defaults).
     */
    private static RunSpec preferenceStage(Settings s, Path sft, Path data, Path output, int steps) {
        return new RunSpec(sft.resolve("model"), null, null, data, null, 0, output, "fp32", DataSettings.of(512),
                loop(s).perDeviceTrainBatchSize(8).learningRate(2.0e-4).maxSteps(steps).build(), null, Map.of());
    }

    @FunctionalInterface
    interface Step {
        void run() throws IOException;
    }

    @FunctionalInterface
    interface Training {
        Object run(Trainer.Listener listener) throws IOException;
    }

    /**
     * Stage bookkeeping: a stage is done when its output exists and {@code demo-stage.json} beside it records the same
     * demo settings; a stage not done is run from scratch in a fresh directory (the demo only ever removes its own stage
     * directories under {@code out}).
     */
    private record Stages(Path out, String key, Map<String, Double> seconds, PrintWriter log, Progress progress) {
        void run(String name, Step step, Path product) throws IOException {
            Path dir = out.resolve(name), marker = dir.resolve("demo-stage.json");
            if (Files.exists(product) && Files.exists(marker) && Files.readString(marker).strip().equals(key)) {
                log.println(name + ": reusing " + dir + " (same settings)");
                log.flush();
                seconds.put(name, 0.0);
                return;
            }
            clear(dir);
            long t = System.nanoTime();
            step.run();
            seconds.put(name, (System.nanoTime() - t) / 1e9);
            AtomicFiles.write(marker, w -> w.write(key + "\n"));
        }

        void train(String name, String description, Training training) throws IOException {
            run(name, () -> training.run(progress.stage(name, description)), out.resolve(name).resolve("model"));
        }

        private void clear(Path dir) throws IOException {
            if (!Files.exists(dir)) return;
            if (!dir.toAbsolutePath().normalize().startsWith(out)) throw new IllegalStateException(dir + " is outside " + out);
            try (var walk = Files.walk(dir)) {
                for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
            }
        }
    }
}
