package io.tether;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

/**
 * The core's layering, checked on its sources: a package uses only packages below it (imports and fully qualified
 * names alike). Packages on one level (reward, online, eval) do not use each other: evaluation samples through
 * {@code rollout}, not through training code.
 */
class PackageLayeringTest {
    static final Map<String, Integer> LEVEL = Map.ofEntries(Map.entry("engine", 0), Map.entry("model", 1), Map.entry("text", 2),
            Map.entry("data", 3), Map.entry("generate", 4), Map.entry("objective", 5), Map.entry("rollout", 6), Map.entry("train", 7),
            Map.entry("run", 8), Map.entry("reward", 9), Map.entry("online", 9), Map.entry("eval", 9), Map.entry("scenario", 10));

    private static final Pattern USE = Pattern.compile("\\bio\\.tether\\.([a-z]+)\\.[A-Za-z]");

    @Test
    void lowerPackagesNeverUseHigherOnes() throws IOException {
        Path root = Path.of("src/main/java/io/tether");
        List<String> violations = new ArrayList<>();
        int files = 0;
        try (Stream<Path> all = Files.walk(root)) {
            for (Path f : all.filter(p -> p.toString().endsWith(".java")).toList()) {
                files++;
                String pkg = root.relativize(f).getName(0).toString();
                Integer mine = LEVEL.get(pkg);
                if (mine == null) {
                    violations.add(f + ": package '" + pkg + "' has no level in this test; place it in the layering");
                    continue;
                }
                List<String> lines = Files.readAllLines(f);
                for (int i = 0; i < lines.size(); i++) {
                    Matcher m = USE.matcher(lines.get(i));
                    while (m.find()) {
                        String used = m.group(1);
                        if (used.equals(pkg)) continue;
                        Integer theirs = LEVEL.get(used);
                        if (theirs == null || theirs >= mine)
                            violations.add(f.getFileName() + ":" + (i + 1) + ": " + pkg + " (level " + mine + ") uses " + used + " (level " + theirs + ")");
                    }
                }
            }
        }
        assertTrue(files > 100, "read only " + files + " sources from " + root.toAbsolutePath());
        assertEquals(List.of(), violations);
    }
}
