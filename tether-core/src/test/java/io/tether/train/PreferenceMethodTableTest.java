package io.tether.train;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import io.tether.engine.ConfigException;
import io.tether.objective.DpoLoss;
import io.tether.run.PreferenceMethod;
import io.tether.run.RunConfig;

import static io.tether.train.LearningRateDefaultTest.tree;

/**
 * The preference methods' name table: every command's entry reads, from a config that sets none of its keys, exactly its
 * record's TRL defaults (and its common-key defaults); unknown method and loss names are refused naming the known ones.
 */
class PreferenceMethodTableTest {
    @Test
    void everyEntryReadsItsDefaults() {
        assertEquals(List.of("dpo", "kto", "orpo", "simpo", "cpo"), List.copyOf(PreferenceMethod.METHODS.keySet()));
        for (Map.Entry<String, PreferenceMethod.Binding<?>> e : PreferenceMethod.METHODS.entrySet()) {
            PreferenceMethod.Binding<?> b = e.getValue();
            RunConfig<?> c = b.config(tree());
            assertEquals(b.initial().get(), c.method(), e.getKey() + ": what the table reads is the record's defaults()");
            assertEquals(b.defaults().learningRate().value(), c.spec().trainer().learningRate(), e.getKey());
            assertEquals(b.defaults().truncationMode(), c.spec().reading().truncationMode(), e.getKey());
            assertEquals(e.getKey(), c.spec().resolved().get("method"), "config.yaml names the method first");
            assertEquals("method", c.spec().resolved().keySet().iterator().next());
        }
        assertEquals(PreferenceMethod.BETA, PreferenceMethod.config("dpo", tree()).method().beta());
        assertEquals(PreferenceMethod.Simpo.BETA, PreferenceMethod.config("simpo", tree()).method().beta(), "SimPO's own β");
        assertNotEquals(PreferenceMethod.BETA, PreferenceMethod.Simpo.BETA);
    }

    @Test
    void aSetKeyIsReadIntoTheRecord() {
        var dpo = (PreferenceMethod.Dpo) PreferenceMethod.config("dpo", tree("beta=0.3", "rdpo_alpha=0.02", "loss_type=[sigmoid, sft]")).method();
        assertEquals(0.3, dpo.beta());
        assertEquals(0.02, dpo.loss().rdpoAlpha());
        assertEquals(List.of("sigmoid", "sft"), dpo.loss().lossType());
        assertFalse(dpo.sigmoidOnly());
        var kto = (PreferenceMethod.Kto) PreferenceMethod.config("kto", tree("beta=0.2", "desirable_weight=1.3")).method();
        assertEquals(0.2, kto.loss().beta());
        assertEquals(1.3, kto.loss().desirableWeight());
    }

    @Test
    void anUnknownMethodIsRefusedNamingTheKnownOnes() {
        ConfigException e = assertThrows(ConfigException.class, () -> PreferenceMethod.config("ipo", tree()));
        assertEquals("unknown preference method 'ipo' (known: dpo, kto, orpo, simpo, cpo)", e.getMessage());
    }

    @Test
    void anUnknownLossTypeIsRefusedNamingTheKnownOnes() {
        ConfigException e = assertThrows(ConfigException.class, () -> PreferenceMethod.config("dpo", tree("loss_type=sigmoidd")));
        assertTrue(e.getMessage().startsWith("command line: loss_type 'sigmoidd' is not supported (known: [sigmoid, hinge, ipo,"), e.getMessage());
        for (String known : DpoLoss.LOSS_TYPES.keySet()) assertTrue(e.getMessage().contains(known), known + ": " + e.getMessage());
        ConfigException kto = assertThrows(ConfigException.class, () -> PreferenceMethod.config("kto", tree("loss_type=sigmoid")));
        assertTrue(kto.getMessage().contains("key 'loss_type': KTO takes kto or apo_zero_unpaired, got [sigmoid]"), kto.getMessage());
        ConfigException cpo = assertThrows(ConfigException.class, () -> PreferenceMethod.config("simpo", tree("loss_type=ipo")));
        assertTrue(cpo.getMessage().contains("key 'loss_type': simpo takes sigmoid, simpo or alphapo, got [ipo]"), cpo.getMessage());
    }

    @Test
    void aMethodRefusesAnotherMethodsKeys() {
        ConfigException e = assertThrows(ConfigException.class, () -> PreferenceMethod.config("orpo", tree("simpo_gamma=1.0")));
        assertTrue(e.getMessage().contains("key 'simpo_gamma': unknown key"), e.getMessage());
        ConfigException rdpo = assertThrows(ConfigException.class, () -> PreferenceMethod.config("kto", tree("rdpo_alpha=0.02")));
        assertTrue(rdpo.getMessage().contains("key 'rdpo_alpha': R-DPO's length term is a DPO loss term; kto does not read it"), rdpo.getMessage());
    }
}
