package io.tether.run;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.model.LoraAdapters;
import io.tether.train.TrainerConfig;

/** YAML and Java callers reach the same records; config.yaml says the same for both. */
class RunConfigTest {
    private static final List<String> SFT_KEYS = List.of("model=ckpt", "data=train.jsonl", "output_dir=runs/x", "max_length=512", "packing=true",
            "per_device_train_batch_size=8", "learning_rate=1.0e-3", "lr_scheduler_type=cosine", "warmup_steps=10", "max_steps=30", "seed=7",
            "logging_steps=5", "save_steps=0", "eval_steps=0", "use_peft=true", "lora_r=8");

    private static RunConfig<SftSettings> typed() {
        TrainerConfig loop = TrainerConfig.defaults().toBuilder().perDeviceTrainBatchSize(8).learningRate(1.0e-3).lrSchedulerType("cosine")
                .warmupSteps(10).maxSteps(30).seed(7).loggingSteps(5).saveSteps(0).evalSteps(0).build();
        RunSpec spec = new RunSpec(Path.of("ckpt"), null, null, Path.of("train.jsonl"), null, 0, Path.of("runs/x"), "fp32",
                new DataSettings(TokenRecords.InvalidRecords.ERROR, 512, 0, 0, Truncation.Mode.KEEP_START), loop,
                new LoraAdapters.Config(8, 32, 0.05, List.of("all-linear"), false), Map.of());
        return new RunConfig<>(spec, new SftSettings(true, true, false));
    }

    @Test
    void yamlAndJavaBuildTheSameRecords() {
        RunConfig<SftSettings> yaml = SftSettings.config(ConfigTree.load(null, SFT_KEYS));
        RunConfig<SftSettings> java = typed();
        assertEquals(java.spec(), yaml.spec().withResolved(Map.of()));
        assertEquals(java.method(), yaml.method());
        // A setting changed on either side shows.
        assertNotEquals(java.spec(), SftSettings.config(ConfigTree.load(null, List.of("model=ckpt", "data=train.jsonl", "output_dir=runs/x")))
                .spec().withResolved(Map.of()));
    }

    /** Every key a Java-built run writes to config.yaml has the value the same run from YAML writes. */
    @Test
    void recordFormAgreesWithTheResolvedYaml() {
        Map<String, Object> resolved = SftSettings.config(ConfigTree.load(null, SFT_KEYS)).spec().resolved();
        RunConfig<SftSettings> java = typed();
        Map<String, Object> form = Provenance.recordForm(java.spec(), java.method());
        for (String key : List.of("model", "data", "output_dir", "max_length", "packing", "completion_only_loss", "per_device_train_batch_size",
                "learning_rate", "lr_scheduler_type", "warmup_steps", "max_steps", "seed", "save_steps", "use_peft", "lora_r", "lora_alpha",
                "lora_target_modules", "truncation_mode", "invalid_records", "dtype", "adam_beta2", "bf16", "gradient_checkpointing")) {
            assertTrue(form.containsKey(key), key + " missing from " + form.keySet());
            Object yaml = resolved.get(key);
            // TRL's lora_target_modules is a string or a list; the record always holds the list.
            if (key.equals("lora_target_modules") && yaml instanceof String one) yaml = List.of(one);
            assertEquals(String.valueOf(yaml), String.valueOf(form.get(key)), key);
        }
        for (String key : form.keySet()) assertTrue(resolved.containsKey(key), "record key " + key + " is not a YAML key");
    }

    @Test
    void aMisspeltKeyIsUnknownBeforeTheKeyItMeantIsMissing() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> SftSettings.config(ConfigTree.load(null, List.of("model=ckpt", "dta=train.jsonl", "output_dir=runs/x"))));
        assertTrue(e.getMessage().contains("key 'dta': unknown key (did you mean 'data'?)"), e.getMessage());
        ConfigException missing = assertThrows(ConfigException.class,
                () -> SftSettings.config(ConfigTree.load(null, List.of("model=ckpt", "output_dir=runs/x"))));
        assertTrue(missing.getMessage().endsWith("key 'data': missing"), missing.getMessage());
    }

    @Test
    void evalDataReplacesTheDefaultSplitAndConflictsWithAGivenOne() {
        RunSpec.Defaults rm = new RunSpec.Defaults(Truncation.Mode.DROP, true, false, 0.1, io.tether.train.LearningRateDefault.REWARD, false, true);
        List<String> base = List.of("model=ckpt", "data=train.jsonl", "output_dir=runs/x");
        assertEquals(0.1, RunConfig.read(ConfigTree.load(null, base), rm, c -> null).spec().evalFraction());
        List<String> withEval = new java.util.ArrayList<>(base);
        withEval.add("eval_data=eval.jsonl");
        assertEquals(0.0, RunConfig.read(ConfigTree.load(null, withEval), rm, c -> null).spec().evalFraction());
        withEval.add("eval_fraction=0.2");
        ConfigException e = assertThrows(ConfigException.class, () -> RunConfig.read(ConfigTree.load(null, withEval), rm, c -> null));
        assertTrue(e.getMessage().contains("key 'eval_fraction'"), e.getMessage());
    }
}
