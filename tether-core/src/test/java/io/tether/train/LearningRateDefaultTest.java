package io.tether.train;

import io.tether.run.ConfigTree;
import io.tether.run.PreferenceMethod;
import io.tether.run.SftSettings;
import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import io.tether.online.GrpoSettings;
import io.tether.online.GrpoTraining;
import io.tether.online.OnlineDpoSettings;
import io.tether.online.PpoSettings;
import io.tether.reward.RewardSettings;

/**
 * Each command's learning_rate default is its TRL config class's, read at TRL v0.29.1: DPOConfig, KTOConfig,
 * ORPOConfig, CPOConfig, GRPOConfig, RLOOConfig 1e-6; PPOConfig 3e-6; OnlineDPOConfig 5e-7; SFTConfig 2e-5;
 * RewardConfig 1e-4; PRMConfig 1e-5. A value that is set wins, and the tree says which applied.
 */
class LearningRateDefaultTest {
    static ConfigTree tree(String... extra) {
        List<String> keys = new ArrayList<>(List.of("model=m", "data=d.jsonl", "output_dir=o"));
        keys.addAll(List.of(extra));
        return ConfigTree.load(null, keys);
    }

    @Test
    void everyMethodDefaultsToItsTrlConfigsLearningRate() {
        assertEquals(1e-6, PreferenceMethod.config("dpo", tree()).spec().trainer().learningRate());
        assertEquals(1e-6, PreferenceMethod.config("kto", tree()).spec().trainer().learningRate());
        assertEquals(1e-6, PreferenceMethod.config("orpo", tree()).spec().trainer().learningRate());
        assertEquals(1e-6, PreferenceMethod.config("cpo", tree()).spec().trainer().learningRate());
        assertEquals(1e-6, PreferenceMethod.config("simpo", tree()).spec().trainer().learningRate());
        assertEquals(2e-5, SftSettings.config(tree()).spec().trainer().learningRate());
        assertEquals(1e-4, RewardSettings.config(tree()).spec().trainer().learningRate());
        assertEquals(1e-5, RewardSettings.config(tree("kind=process")).spec().trainer().learningRate());
        // The online configs' trainer settings are package-private; config.yaml's resolved values show the same number.
        assertEquals(1e-6, GrpoSettings.config(tree("reward_format_regex=x"), GrpoTraining.Estimator.GRPO).spec().resolved().get("learning_rate"));
        assertEquals(1e-6, GrpoSettings.config(tree("reward_format_regex=x"), GrpoTraining.Estimator.RLOO).spec().resolved().get("learning_rate"));
        assertEquals(3e-6, PpoSettings.config(tree("reward_format_regex=x")).spec().resolved().get("learning_rate"));
        assertEquals(5e-7, OnlineDpoSettings.config(tree("reward_format_regex=x")).spec().resolved().get("learning_rate"));
    }

    @Test
    void aLearningRateThatIsSetWinsAndTheSourceSaysSo() {
        ConfigTree set = tree("learning_rate=2e-4");
        assertEquals(2e-4, PreferenceMethod.config("dpo", set).spec().trainer().learningRate());
        assertEquals("set", set.learningRateSource());
        ConfigTree dflt = tree();
        var c = PreferenceMethod.config("kto", dflt);
        assertEquals("TRL v0.29.1 KTOConfig default", dflt.learningRateSource());
        assertEquals(1e-6, c.spec().resolved().get("learning_rate"), "config.yaml records the default in force");
    }
}
