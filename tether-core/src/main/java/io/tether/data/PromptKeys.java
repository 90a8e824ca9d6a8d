package io.tether.data;

import java.text.Normalizer;

/**
 * 64-bit keys for texts and prompts: exact (the text as is) and normalized (NFKC, lower case, letters and digits
 * only, single spaces), so "What is 2+2?" and "what is 2 + 2" collide. 64 bits keep a million keys in a few MiB with a
 * collision chance around 1e-8.
 */
public final class PromptKeys {
    private PromptKeys() {}

    /** FNV-1a over the UTF-16 chars, then a final avalanche (the murmur3 finalizer) so nearby texts spread. */
    public static long hash(CharSequence s) {
        long h = 0xcbf29ce484222325L;
        for (int i = 0; i < s.length(); i++) {
            h ^= s.charAt(i);
            h *= 0x100000001b3L;
        }
        return mix(h);
    }

    public static long mix(long h) {
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb9fe1a85ec53L;
        h ^= h >>> 33;
        return h;
    }

    /** Combines keys in order. */
    public static long combine(long a, long b) {
        return mix(a * 31 + b + 0x9e3779b97f4a7c15L);
    }

    public static String normalize(String text) {
        String n = Normalizer.isNormalized(text, Normalizer.Form.NFKC) ? text : Normalizer.normalize(text, Normalizer.Form.NFKC);
        StringBuilder b = new StringBuilder(n.length());
        boolean space = false;
        for (int i = 0; i < n.length(); ) {
            int c = n.codePointAt(i);
            i += Character.charCount(c);
            if (Character.isLetterOrDigit(c)) {
                if (space && b.length() > 0) b.append(' ');
                b.appendCodePoint(Character.toLowerCase(c));
                space = false;
            } else {
                space = true;
            }
        }
        return b.toString();
    }

    public static long exact(Turns t) {
        return hash(t.isChat() ? t.toJson().toString() : t.text());
    }

    public static long normalized(Turns t) {
        return hash(normalize(t.flat()));
    }

    /** The key that groups a record for splitting: its prompt id when it has one, else its normalized prompt. */
    public static long group(PreferenceRecord r) {
        return r.promptId() != null ? hash("id:" + r.promptId()) : normalized(r.prompt());
    }
}
