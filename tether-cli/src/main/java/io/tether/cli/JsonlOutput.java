package io.tether.cli;

import java.io.IOException;
import java.io.Writer;
import java.nio.file.Path;
import java.util.List;

import io.tether.engine.AtomicFiles;

/** Where a command's JSONL results go: {@code --out} (a temporary name, then renamed: never half-written) or stdout. */
final class JsonlOutput {
    private JsonlOutput() {}

    static void write(TetherCommand root, Path out, List<String> lines) throws IOException {
        if (out != null) {
            AtomicFiles.write(out, w -> writeLines(w, lines));
        } else {
            Writer w = root.spec.commandLine().getOut();
            writeLines(w, lines);
            w.flush();
        }
    }

    private static void writeLines(Writer w, List<String> lines) throws IOException {
        for (String l : lines) {
            w.write(l);
            w.write('\n');
        }
    }
}
