package io.tether.data;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.MalformedInputException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * JSONL input, read one way everywhere: one JSON object per non-blank line, strict UTF-8, gzip when the name ends
 * in {@code .gz}. Every failure is a {@link DataFormatException} naming the file and the 1-based line.
 */
public final class JsonLines {
    private JsonLines() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Receives each record with its 1-based line number; throws {@link DataFormatException} for a bad record. */
    @FunctionalInterface
    public interface RecordHandler {
        void accept(long line, ObjectNode record);
    }

    /** Streams every record of {@code file} to {@code handler}; returns how many there were (blank lines skipped). */
    public static long forEach(Path file, RecordHandler handler) {
        long records = 0;
        try (BufferedReader r = open(file)) {
            String text;
            long line = 0;
            while ((text = r.readLine()) != null) {
                line++;
                if (text.isBlank()) continue;
                handler.accept(line, parse(file, line, text));
                records++;
            }
        } catch (MalformedInputException e) {
            throw new DataFormatException(file, lineOf(file), "invalid UTF-8 (" + e.getMessage() + ")");
        } catch (IOException e) {
            throw new DataFormatException(file, 0, "cannot read: " + e.getMessage());
        }
        return records;
    }

    private static ObjectNode parse(Path file, long line, String text) {
        JsonNode node;
        try {
            node = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new DataFormatException(file, line, "not valid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) throw new DataFormatException(file, line, "expected a JSON object");
        return (ObjectNode) node;
    }

    private static BufferedReader open(Path file) throws IOException {
        // Strict decoding: a malformed byte is an error that names its line, never a silent U+FFFD.
        return new BufferedReader(new InputStreamReader(RawRecords.open(file), StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)));
    }

    /** The 1-based line holding the first malformed byte (found by a second, byte-level pass); 0 if unknown. */
    private static long lineOf(Path file) {
        try (InputStream in = RawRecords.open(file)) {
            byte[] all = in.readAllBytes();
            var decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT);
            long line = 1;
            int start = 0;
            for (int i = 0; i <= all.length; i++) {
                if (i == all.length || all[i] == '\n') {
                    try {
                        decoder.decode(java.nio.ByteBuffer.wrap(all, start, i - start));
                    } catch (CharacterCodingException bad) {
                        return line;
                    }
                    line++;
                    start = i + 1;
                }
            }
        } catch (IOException ignored) {
            // fall through: the line is unknown
        }
        return 0;
    }
}
