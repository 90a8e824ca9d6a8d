package io.tether.cli;

import java.io.IOException;
import java.io.Writer;
import java.nio.file.Path;
import java.util.List;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Option;

import io.tether.data.TokenRecords;
import io.tether.engine.AtomicFiles;

/**
 * Where a command's JSONL results go, as a picocli mixin: {@code --out} (a temporary name, then renamed: never
 * half-written) or stdout.
 */
final class JsonlOutput {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--out", paramLabel = "<out>", description = "output JSONL (default: stdout); written to a temporary file, then renamed")
    Path path;

    void write(TetherCommand root, List<String> lines) throws IOException {
        if (path != null) {
            AtomicFiles.write(path, w -> writeLines(w, lines));
        } else {
            Writer w = root.spec.commandLine().getOut();
            writeLines(w, lines);
            w.flush();
        }
    }

    /** A result line that starts with its record's {@code id} and {@code prompt_id}, when it has them, so results join back to inputs. */
    static ObjectNode lineFor(TokenRecords.TokenRecord r) {
        ObjectNode o = JSON.createObjectNode();
        for (String id : new String[] {"id", "prompt_id"}) if (r.source().has(id)) o.set(id, r.source().get(id));
        return o;
    }

    private static void writeLines(Writer w, List<String> lines) throws IOException {
        for (String l : lines) {
            w.write(l);
            w.write('\n');
        }
    }
}
