package io.tether.online;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.tether.engine.ConfigException;
import io.tether.run.ConfigTree;

/** The online records read from YAML as Java callers build them, and online runs take no keys they would ignore. */
class OnlineSettingsTest {
    /** The three keys every run needs, and {@code extra}. */
    static ConfigTree tree(String... extra) {
        return ConfigTree.load(null, java.util.stream.Stream.concat(java.util.stream.Stream.of("model=m", "data=d.jsonl", "output_dir=o"),
                java.util.stream.Stream.of(extra)).toList());
    }

    @Test
    void anEmptyConfigReadsAsTheRecordsDefaults() {
        var grpo = GrpoSettings.config(tree(), GrpoTraining.Estimator.GRPO).method();
        assertEquals(OnlineSettings.defaults(GrpoSettings.ONLINE), grpo.online());
        assertEquals(GrpoSettings.defaults(GrpoTraining.Estimator.GRPO), grpo.method());
        assertEquals(GrpoSettings.defaults(GrpoTraining.Estimator.RLOO), GrpoSettings.config(tree(), GrpoTraining.Estimator.RLOO).method().method());
        // PPO has no default answer field, so it needs a reward source to read at all.
        var ppo = PpoSettings.config(tree("reward_model=rm")).method();
        assertEquals(OnlineSettings.defaults(PpoSettings.ONLINE).toBuilder().rewardModel(java.nio.file.Path.of("rm")).build(), ppo.online());
        assertEquals(PpoSettings.defaults(), ppo.method());
        var dpo = OnlineDpoSettings.config(tree()).method();
        assertEquals(OnlineSettings.defaults(OnlineDpoSettings.ONLINE), dpo.online());
        assertEquals(OnlineDpoSettings.defaults(), dpo.method());
        // max_new_tokens is online DPO's name for the completion budget; the length limit follows it.
        var budget = OnlineDpoSettings.config(tree("max_new_tokens=12")).method().online();
        assertEquals(12, budget.maxCompletionLength());
        assertEquals(12, budget.rewardLengthLimit());
    }

    @Test
    void onlineRunsRefuseTheOfflineLengthKeys() {
        // Prompts are cut by max_prompt_length alone: max_length and truncation_mode would be silently ignored.
        for (String key : List.of("max_length=64", "truncation_mode=keep_start")) {
            ConfigException e = assertThrows(ConfigException.class, () -> GrpoSettings.config(tree(key), GrpoTraining.Estimator.GRPO));
            assertTrue(e.getMessage().contains("unknown key"), e.getMessage());
        }
        ConfigException e = assertThrows(ConfigException.class, () -> PpoSettings.config(tree()));
        assertTrue(e.getMessage().contains("no reward source"), e.getMessage());
    }
}
