import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import io.tether.data.PreferenceReader;
import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.data.PreferenceValidator;
import io.tether.data.Problems;
import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.eval.HeadToHead;
import io.tether.eval.ReleaseGate;
import io.tether.generate.Generator;
import io.tether.generate.SamplingConfig;
import io.tether.model.LoraAdapters;
import io.tether.model.Models;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.PairwiseJudge;
import io.tether.rollout.Rollouts;
import io.tether.scenario.DemoData;
import io.tether.scenario.GoldRubric;
import io.tether.scenario.NoisyAnnotator;
import io.tether.text.TextAssets;
import io.tether.run.ConfigTree;
import io.tether.run.DataSettings;
import io.tether.run.PreferenceMethod;
import io.tether.run.PreferenceRun;
import io.tether.run.RunSpec;
import io.tether.run.SftSettings;
import io.tether.run.SftRun;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;

/**
 * The README's quick start ("Align your own checkpoint") through the Java API of tether-core: check the data, SFT
 * with LoRA, DPO with LoRA from the SFT model, DPO against SFT on held-out prompts, merge the adapter, generate.
 *
 * <p>Usage: {@code AlignYourOwnCheckpoint CHECKPOINT OUT_DIR [CONFIG_DIR]}, CONFIG_DIR holding the quick start's
 * sft.yaml (default docs/quickstart); the DPO step builds dpo.yaml's settings as records. QuickStartProgramTest
 * compiles and runs this file.
 */
public class AlignYourOwnCheckpoint {
    public static void main(String[] args) throws IOException {
        Path checkpoint = Path.of(args[0]), out = Path.of(args[1]);
        Path configs = Path.of(args.length > 2 ? args[2] : "docs/quickstart");
        Torch.init();

        // Stand-in for your data (as `tether world data --cases 40` writes it): sft.*, pairs.*, grpo.eval.jsonl.
        Path data = out.resolve("data");
        DemoData.write(data, 40, 1, new NoisyAnnotator(0.1, 0.3, 1));

        // 1. Check the data with the model's tokenizer, as `tether data validate` does: errors stop here.
        for (String file : List.of("sft.train.jsonl", "pairs.train.jsonl")) {
            Problems problems = new Problems(100);
            try (TextAssets text = TextAssets.load(checkpoint).orElseThrow()) {
                PreferenceValidator validator = new PreferenceValidator(problems, text.tokenizer(), text.template(), 128);
                PreferenceReader.read(data.resolve(file), null, problems, (record, raw) -> validator.accept(record));
            }
            System.out.printf("%s: %d errors, %d warnings%n", file, problems.errors(), problems.warnings());
            if (problems.errors() > 0) throw new IllegalStateException(file + ": " + problems.details().get(0));
        }

        // 2. SFT with LoRA, from the same YAML the CLI reads; model, data and output_dir set here.
        Trainer.Listener log = new Trainer.Listener() {
            @Override
            public void onStep(int step, int total, Map<String, Object> metrics) {
                System.out.printf("step %d/%d loss %s%n", step, total, metrics.get("loss"));
            }
        };
        Path sft = out.resolve("sft");
        SftRun.run(SftSettings.config(ConfigTree.load(configs.resolve("sft.yaml"),
                List.of("model=" + checkpoint, "data=" + data.resolve("sft.train.jsonl"), "output_dir=" + sft))), false, log);

        // 3. DPO with LoRA from the SFT model, built from typed records (dpo.yaml's settings): the reference is the SFT
        //    model itself (adapters off). TrainerConfig, DataSettings and the method's record carry TRL's defaults.
        Path dpo = out.resolve("dpo");
        TrainerConfig loop = TrainerConfig.defaults().toBuilder()
                .learningRate(5.0e-6).numTrainEpochs(1).maxSteps(2).perDeviceTrainBatchSize(2).loggingSteps(1).seed(1).build();
        RunSpec dpoRun = RunSpec.of(sft.resolve("model"), data.resolve("pairs.train.jsonl"), dpo, loop)
                .withReading(new DataSettings(TokenRecords.InvalidRecords.ERROR, 128, 0, 0, Truncation.Mode.KEEP_END))
                .withLora(new LoraAdapters.Config(16, 32, 0.05, List.of("all-linear"), false));
        PreferenceRun.run(dpoRun, PreferenceMethod.Dpo.defaults(), false, log);

        // 4. DPO against SFT on held-out prompts, greedy for both, judged by the refund world's gold rubric.
        try (Models.LoadedModel candidate = Models.load(dpo.resolve("model"), DType.F32);
             Models.LoadedModel baseline = Models.load(sft.resolve("model"), DType.F32);
             TextAssets text = TextAssets.load(sft.resolve("model")).orElseThrow()) {
            List<OnlinePrompt> prompts = OnlinePrompt.read(data.resolve("grpo.eval.jsonl"), text, candidate.model().config().vocabSize());
            Function<long[], String> decode = ids -> text.tokenizer().decode(ids, true);
            PairwiseJudge judge = HeadToHead.byScore(Rollouts.of(new GoldRubric().asReward(), decode));
            SamplingConfig greedy = new SamplingConfig(16, 0, 0, 1.0, 0, candidate.defaultStopIds(), List.of(), true);
            HeadToHead.Result r = HeadToHead.compare(candidate.model(), baseline.model(), prompts, judge, greedy, decode, null, 8);
            System.out.printf("win rate vs SFT %.3f over %d prompts, length delta %+.1f tokens; release gate: %s%n", r.winRate().rate(),
                    r.winRate().total(), r.lengthDelta(), ReleaseGate.SEED.check(r.winRate(), r.lengthDelta(), List.of()).line());
        }

        // 5. Merge the DPO adapter into the SFT model: a plain HF checkpoint.
        Path aligned = out.resolve("aligned");
        try (Models.LoadedModel base = Models.load(sft.resolve("model"), DType.F32)) {
            LoraAdapters.load(base.model(), dpo.resolve("adapter")).merge();
            Models.save(base.model(), aligned, null, base.storedDtypes(), sft.resolve("model"), Models.DEFAULT_MAX_SHARD_BYTES);
        }

        // 6. Generate from the merged model.
        try (Models.LoadedModel model = Models.load(aligned, DType.F32); TextAssets text = TextAssets.load(aligned).orElseThrow()) {
            OnlinePrompt prompt = OnlinePrompt.read(data.resolve("grpo.eval.jsonl"), text, model.model().config().vocabSize()).get(0);
            SamplingConfig greedy = new SamplingConfig(16, 0, 0, 1.0, 0, model.defaultStopIds(), List.of(), true);
            Generator.Generation g = Generator.generate(model.model(), List.of(prompt.ids()), greedy).get(0);
            System.out.println("generated: " + text.tokenizer().decode(g.tokens(), true));
        }
    }
}
