package io.tether.reward;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.run.ConfigTree;
import io.tether.run.DataSettings;
import io.tether.run.Provenance;
import io.tether.run.RunConfig;
import io.tether.run.RunSpec;
import io.tether.train.TrainerConfig;

/** rm train's keys from YAML and from Java reach the same records; each kind brings its own common-key defaults. */
class RewardSettingsTest {
    /** The demo's rm stage as it was written in key=value strings before it built records. */
    private static final List<String> DEMO_KEYS = List.of("seed=7", "logging_steps=5", "save_steps=0", "eval_steps=0", "model=sft/model",
            "data=world/pairs.train.jsonl", "eval_fraction=0", "output_dir=rm", "max_length=512", "truncation_mode=keep_start",
            "per_device_train_batch_size=8", "learning_rate=5.0e-4", "lr_scheduler_type=cosine", "max_steps=60");

    private static RunConfig<RewardSettings> typed() {
        TrainerConfig loop = TrainerConfig.defaults().toBuilder().seed(7).loggingSteps(5).saveSteps(0).evalSteps(0)
                .perDeviceTrainBatchSize(8).learningRate(5.0e-4).lrSchedulerType("cosine").maxSteps(60).build();
        return new RunConfig<>(new RunSpec(Path.of("sft/model"), null, null, Path.of("world/pairs.train.jsonl"), null, 0, Path.of("rm"), "fp32",
                new DataSettings(TokenRecords.InvalidRecords.ERROR, 512, 0, 0, Truncation.Mode.KEEP_START), loop, null, Map.of()), RewardSettings.defaults());
    }

    @Test
    void theDemosTypedStageIsItsKeyValueStrings() {
        RunConfig<RewardSettings> yaml = RewardSettings.config(ConfigTree.load(null, DEMO_KEYS));
        RunConfig<RewardSettings> java = typed();
        assertEquals(java.spec(), yaml.spec().withResolved(Map.of()));
        assertEquals(java.method(), yaml.method());
        // config.yaml of the Java-built run carries what the YAML run resolves.
        Map<String, Object> resolved = yaml.spec().resolved(), form = Provenance.recordForm(java.spec(), java.method());
        for (String key : List.of("kind", "center_rewards_coefficient", "slice_field", "step_separator", "train_on_last_step_only", "eval_fraction",
                "truncation_mode", "max_length", "learning_rate", "max_steps"))
            assertEquals(String.valueOf(resolved.get(key)), String.valueOf(form.get(key)), key);
        assertNotEquals(java.method(), RewardSettings.config(ConfigTree.load(null, List.of("model=m", "data=d", "output_dir=o", "center_rewards_coefficient=0.01"))).method());
    }

    @Test
    void eachKindHasItsTrlDefaults() {
        List<String> base = List.of("model=m", "data=d.jsonl", "output_dir=o");
        RunConfig<RewardSettings> bt = RewardSettings.config(ConfigTree.load(null, base));
        assertEquals(RewardSettings.defaults(), bt.method());
        assertEquals(0.1, bt.spec().evalFraction());
        assertEquals(Truncation.Mode.DROP, bt.spec().reading().truncationMode());
        List<String> process = new java.util.ArrayList<>(base);
        process.add("kind=process");
        RunConfig<RewardSettings> prm = RewardSettings.config(ConfigTree.load(null, process));
        assertEquals(RewardSettings.defaults().withKind(RewardSettings.Kind.PROCESS), prm.method());
        assertEquals(1e-5, prm.spec().trainer().learningRate());
        assertEquals(1e-4, bt.spec().trainer().learningRate());

        ConfigException kind = assertThrows(ConfigException.class, () -> RewardSettings.config(ConfigTree.load(null, List.of("model=m", "data=d", "output_dir=o", "kind=pairwise"))));
        assertTrue(kind.getMessage().contains("key 'kind': expected bradley_terry or process, got 'pairwise'"), kind.getMessage());
        ConfigException center = assertThrows(ConfigException.class, () -> RewardSettings.config(ConfigTree.load(null, List.of("model=m", "data=d", "output_dir=o", "center_rewards_coefficient=-1"))));
        assertTrue(center.getMessage().contains("key 'center_rewards_coefficient'"), center.getMessage());
        ConfigException typo = assertThrows(ConfigException.class, () -> RewardSettings.config(ConfigTree.load(null, List.of("model=m", "data=d", "output_dir=o", "slice_feild=x"))));
        assertTrue(typo.getMessage().contains("did you mean 'slice_field'"), typo.getMessage());
    }
}
