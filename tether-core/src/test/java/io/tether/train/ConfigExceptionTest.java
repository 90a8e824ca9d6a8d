package io.tether.train;

import io.tether.run.ConfigTree;
import io.tether.run.PreferenceMethod;
import static org.junit.jupiter.api.Assertions.*;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.generate.SamplingConfig;

/** A user's configuration mistake is a {@link ConfigException} naming its key; an internal argument error is not one. */
class ConfigExceptionTest {
    private static ConfigTree tree(String... overrides) {
        return ConfigTree.load(null, List.of(overrides));
    }

    @Test
    void settingsThatCannotWorkAreConfigExceptionsNamingTheKey() {
        ConfigException wrongType = assertThrows(ConfigException.class, () -> tree("learning_rate=fast").trainerConfig(LearningRateDefault.SFT));
        assertEquals("command line: key 'learning_rate': expected a number, got \"fast\"", wrongType.getMessage());
        ConfigException outOfRange = assertThrows(ConfigException.class, () -> tree("max_grad_norm=-1").trainerConfig(LearningRateDefault.SFT));
        assertTrue(outOfRange.getMessage().startsWith("command line: key 'max_grad_norm'"), outOfRange.getMessage());
        ConfigException unknown = assertThrows(ConfigException.class, () -> {
            ConfigTree t = tree("learning_rat=1e-4");
            t.trainerConfig(LearningRateDefault.SFT);
            t.rejectUnknownKeys();
        });
        assertTrue(unknown.getMessage().contains("key 'learning_rat': unknown key (did you mean 'learning_rate'?)"), unknown.getMessage());
        assertThrows(ConfigException.class, () -> tree("not-key-value"));
        assertThrows(ConfigException.class, () -> DType.parse("fp8"));
        assertThrows(ConfigException.class, () -> new SamplingConfig(8, 1.0, 0, 0.0, 0, List.of(), List.of(), true));
        assertThrows(ConfigException.class, () -> PreferenceMethod.config("dpo", tree("model=m", "data=d", "output_dir=o", "beta=0")));
    }

    @Test
    void validatedNamesTheSourceOfARecordsOwnCheckButLeavesAnInternalArgumentErrorAlone() {
        ConfigTree t = tree();
        ConfigException mistake = assertThrows(ConfigException.class, () -> t.validated(() -> {
            throw new ConfigException("key 'beta': must be > 0");
        }));
        assertEquals("command line: key 'beta': must be > 0", mistake.getMessage());
        // An argument-contract check of an internal API thrown while building is a bug: it passes through untouched
        // (not dressed as the user's mistake), so the CLI keeps its stack trace.
        IllegalArgumentException bug = new IllegalArgumentException("3 rewards do not form groups of 2");
        IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class, () -> t.validated(() -> {
            throw bug;
        }));
        assertSame(bug, thrown);
    }
}
