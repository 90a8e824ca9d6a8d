package io.tether.engine;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * This process's resident memory, from /proc/self/status. Native tensors never show on the Java heap, so RSS is
 * the number that says whether scopes free them (Linux only; NaN elsewhere).
 */
public final class ProcessMemory {
    private ProcessMemory() {}

    /** Resident set size now (VmRSS), MB. */
    public static double residentMb() {
        return statusMb("VmRSS:");
    }

    /** The highest resident set size so far (VmHWM), MB. */
    public static double peakResidentMb() {
        return statusMb("VmHWM:");
    }

    private static double statusMb(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith(field)) return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
        } catch (IOException | UncheckedIOException | NumberFormatException e) {
            return Double.NaN;
        }
        return Double.NaN;
    }
}
