package io.tether.data;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** TRL v0.24's length limits on token ids, with the counts, checked against values worked out by hand. */
class TruncationTest {
    static long[] range(int from, int to) {
        long[] a = new long[to - from];
        for (int i = 0; i < a.length; i++) a[i] = from + i;
        return a;
    }

    @Test
    void dpoKeepEndCutsThePromptStartSoTheLongerSideFits() {
        Truncation t = new Truncation(10, 6, 0, Truncation.Mode.KEEP_END);
        // prompt 8 -> its last 6 (2, 3 cut); chosen 5, rejected 3: 6 + 5 = 11 > 10, so one more prompt token goes.
        long[][] cut = t.pair(range(0, 8), range(100, 105), range(200, 203));
        assertArrayEquals(range(3, 8), cut[0]);
        assertArrayEquals(range(100, 105), cut[1]);
        assertArrayEquals(range(200, 203), cut[2]);
        assertEquals(1, t.truncated());
        assertEquals(6, t.tokensCut(), "3 prompt tokens, counted on both rows");
        assertEquals(0, t.dropped());
    }

    @Test
    void dpoKeepStartCutsCompletionsAndDropsWhatKeepsNone() {
        Truncation t = new Truncation(10, 0, 0, Truncation.Mode.KEEP_START);
        long[][] cut = t.pair(range(0, 7), range(100, 105), range(200, 202));
        assertArrayEquals(range(0, 7), cut[0]);
        assertArrayEquals(range(100, 103), cut[1]);
        assertArrayEquals(range(200, 202), cut[2]);
        assertNull(t.pair(range(0, 10), range(100, 102), range(200, 202)), "a prompt of max_length leaves no completion token");
        assertEquals(1, t.truncated());
        assertEquals(2, t.tokensCut());
        assertEquals(1, t.dropped());
    }

    @Test
    void maxCompletionLengthAndPromptsForGeneration() {
        Truncation t = new Truncation(100, 4, 3, Truncation.Mode.KEEP_END);
        long[][] cut = t.unpaired(range(0, 6), range(100, 110));
        assertArrayEquals(range(2, 6), cut[0]);
        assertArrayEquals(range(100, 103), cut[1]);
        assertArrayEquals(range(6, 10), t.prompt(range(0, 10)));
        assertEquals(2, t.truncated());
        assertEquals(2 + 7 + 6, t.tokensCut());
    }

    @Test
    void wholeSequencesKeepTheirStartTheirEndOrAreDropped() {
        assertArrayEquals(range(0, 4), new Truncation(4, 0, 0, Truncation.Mode.KEEP_START).sequence(range(0, 6)));
        assertArrayEquals(range(2, 6), new Truncation(4, 0, 0, Truncation.Mode.KEEP_END).sequence(range(0, 6)));
        Truncation drop = new Truncation(4, 0, 0, Truncation.Mode.DROP);
        assertNull(drop.sequence(range(0, 6)));
        assertArrayEquals(range(0, 4), drop.sequence(range(0, 4)));
        assertEquals(1, drop.dropped());
        assertEquals(512, Truncation.defaultMaxLength(512), "the model's positions cap TRL's 1024");
        assertEquals(1024, Truncation.defaultMaxLength(2048));
    }
}
