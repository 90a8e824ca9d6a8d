package io.tether.run;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.tether.train.Trainer;

import org.junit.jupiter.api.Test;

/** DPO's "loss still ≈ ln 2" notice: raised for flat losses, not for noisy ones that average near ln 2, not under R-DPO. */
class LnTwoDiagnosticTest {
    static List<String> notices(List<String> overrides, double... losses) {
        List<String> out = new ArrayList<>();
        List<String> keys = new ArrayList<>(List.of("model=m", "data=d.jsonl", "output_dir=o"));
        keys.addAll(overrides);
        PreferenceMethod c = PreferenceMethod.config("dpo", ConfigTree.load(null, keys)).method();
        var d = new PreferenceDiagnostics(new Trainer.Listener() {
            @Override
            public void onNotice(String message) {
                out.add(message);
            }
        }, c);
        for (int i = 0; i < losses.length; i++) d.onStep(30 + 5 * i, 160, Map.of("loss", losses[i], "grad_norm", 3.0));
        return out;
    }

    @Test
    void flatLossesNearLnTwoAreNamed() {
        List<String> n = notices(List.of(), 0.690, 0.695, 0.694);
        assertEquals(1, n.size(), n.toString());
        assertTrue(n.get(0).contains("little learnable signal"), n.get(0));
    }

    @Test
    void noisyLossesThatAverageNearLnTwoAreNot() {
        // Logged by a 160-step run of the refund demo's DPO at steps 25-35: mean 0.685, falling overall.
        assertEquals(List.of(), notices(List.of(), 0.520, 0.571, 0.964));
    }

    @Test
    void rdpoStartsOffLnTwoSoTheCheckStandsDown() {
        assertEquals(List.of(), notices(List.of("rdpo_alpha=0.02"), 0.690, 0.695, 0.694));
    }
}
