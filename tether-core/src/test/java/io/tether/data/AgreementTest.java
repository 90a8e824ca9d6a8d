package io.tether.data;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

import org.junit.jupiter.api.Test;

/** Agreement statistics against worked textbook examples. */
class AgreementTest {
    /**
     * Wikipedia's "Cohen's kappa" worked example: 50 proposals, both readers say yes 20 times, both no 15, A yes/B no 5,
     * A no/B yes 10. p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5, kappa = 0.4.
     */
    @Test
    void cohenKappaOfTheGrantProposalExampleIsPointFour() {
        List<String> a = new ArrayList<>(), b = new ArrayList<>();
        add(a, b, "yes", "yes", 20);
        add(a, b, "yes", "no", 5);
        add(a, b, "no", "yes", 10);
        add(a, b, "no", "no", 15);
        assertEquals(0.4, Agreement.cohenKappa(a, b), 1e-12);
        assertEquals(1.0, Agreement.cohenKappa(List.of("x", "y"), List.of("x", "y")), 1e-12);
    }

    private static void add(List<String> a, List<String> b, String x, String y, int times) {
        a.addAll(Collections.nCopies(times, x));
        b.addAll(Collections.nCopies(times, y));
    }

    /**
     * Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 observers x 12 units example with missing
     * values; nominal alpha = 0.743 (1 - 10 * 4 / (n_c n_k sum) with n = 40, worked out in the paper, section C).
     */
    @Test
    void krippendorffAlphaOfThePapersReliabilityDataIs0743() {
        String[][] byObserver = {
                {"1", "2", "3", "3", "2", "1", "4", "1", "2", null, null, null},
                {"1", "2", "3", "3", "2", "2", "4", "1", "2", "5", null, "3"},
                {null, "3", "3", "3", "2", "3", "4", "2", "2", "5", "1", null},
                {"1", "2", "3", "3", "2", "4", "4", "1", "2", "5", "1", null},
        };
        List<List<String>> units = new ArrayList<>();
        for (int u = 0; u < 12; u++) {
            List<String> values = new ArrayList<>();
            for (String[] observer : byObserver) if (observer[u] != null) values.add(observer[u]);
            units.add(values);
        }
        assertEquals(0.743, Agreement.krippendorffAlpha(units), 5e-4);
        // Perfect agreement is 1; a unit with one value carries no information.
        assertEquals(1.0, Agreement.krippendorffAlpha(List.of(Arrays.asList("a", "a"), List.of("b", "b"), List.of("c"))), 1e-12);
    }
}
