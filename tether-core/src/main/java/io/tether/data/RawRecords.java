package io.tether.data;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The JSON objects of a data file, streamed: JSONL (one object per line) or a JSON array of objects (LLaMA-Factory,
 * torchtune), either one optionally gzipped. Unlike {@link JsonLines}, a bad line is a problem reported with its
 * line and column and reading goes on, so one pass finds every malformed line (up to the error limit).
 */
final class RawRecords {
    private RawRecords() {}

    static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Receives each object with its 1-based line and column (for arrays, where the element starts), its 1-based
     * position in the file (every non-blank line or array element counts, readable or not) and, for JSONL, the line's
     * text (null for array elements), from which a field's column can be found.
     */
    @FunctionalInterface
    interface Handler {
        void accept(long line, long column, long index, String text, ObjectNode record);
    }

    static InputStream open(Path file) throws IOException {
        try {
            InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
            return file.getFileName().toString().endsWith(".gz") ? new BufferedInputStream(new GZIPInputStream(in, 1 << 16), 1 << 16) : in;
        } catch (NoSuchFileException e) {
            throw new DataFormatException(file, 0, "file not found");
        }
    }

    /** Whether the file is one JSON array (its first non-blank byte is '['), else JSONL. */
    static boolean isArray(Path file) {
        try (InputStream in = open(file)) {
            int b;
            while ((b = in.read()) != -1) {
                if (b == 0xEF || b == 0xBB || b == 0xBF || Character.isWhitespace(b)) continue;   // BOM, blanks
                return b == '[';
            }
            return false;
        } catch (IOException e) {
            throw new DataFormatException(file, 0, "cannot read: " + e.getMessage());
        }
    }

    static void forEach(Path file, Problems problems, Handler handler) {
        try {
            if (isArray(file)) forEachElement(file, problems, handler);
            else forEachLine(file, problems, handler);
        } catch (IOException e) {
            throw new DataFormatException(file, 0, "cannot read: " + e.getMessage());
        }
    }

    private static void forEachLine(Path file, Problems problems, Handler handler) throws IOException {
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        try (InputStream in = open(file)) {
            byte[] buf = new byte[1 << 12];
            byte[] chunk = new byte[1 << 16];
            int pos = 0, end = 0;
            CharBuffer chars = CharBuffer.allocate(1 << 12);
            long line = 0, index = 0;
            boolean eof = false;
            while (!eof) {
                // One line into buf: scan the chunk for '\n', refilling it as needed (no per-byte stream calls).
                int n = 0;
                boolean newline = false;
                while (!newline) {
                    if (pos == end) {
                        try {
                            end = in.read(chunk);
                        } catch (java.io.EOFException | java.util.zip.ZipException e) {
                            // A truncated or corrupt gzip: name the line it broke off in.
                            throw new DataFormatException(file, line + 1, "cannot read past line " + line + ": " + e.getMessage());
                        }
                        pos = 0;
                        if (end <= 0) {
                            end = 0;
                            eof = true;
                            break;
                        }
                    }
                    int stop = pos;
                    while (stop < end && chunk[stop] != '\n') stop++;
                    int len = stop - pos;
                    if (n + len > buf.length) buf = Arrays.copyOf(buf, Math.max(buf.length * 2, n + len));
                    System.arraycopy(chunk, pos, buf, n, len);
                    n += len;
                    newline = stop < end;
                    pos = newline ? stop + 1 : stop;
                }
                if (eof && n == 0) break;
                line++;
                int start = line == 1 && n >= 3 && (buf[0] & 0xFF) == 0xEF && (buf[1] & 0xFF) == 0xBB && (buf[2] & 0xFF) == 0xBF ? 3 : 0;
                if (chars.capacity() < n) chars = CharBuffer.allocate(n);
                chars.clear();
                utf8.reset();
                ByteBuffer bytes = ByteBuffer.wrap(buf, start, n - start);
                CoderResult r = utf8.decode(bytes, chars, true);
                if (r.isError()) {
                    index++;
                    problems.error(file, line, bytes.position() + 1, "bad-encoding", "invalid UTF-8 byte 0x"
                            + Integer.toHexString(buf[bytes.position()] & 0xFF) + " (column counts bytes)");
                    continue;
                }
                chars.flip();
                String text = chars.toString();
                if (text.isBlank()) continue;
                index++;
                JsonNode node;
                try {
                    node = JSON.readTree(text);
                } catch (JsonProcessingException e) {
                    long column = e.getLocation() == null ? 0 : e.getLocation().getColumnNr();
                    problems.error(file, line, column, "malformed-json", "not valid JSON: " + e.getOriginalMessage());
                    continue;
                }
                if (!node.isObject()) {
                    problems.error(file, line, 1, "wrong-type", "expected a JSON object, found " + node.getNodeType().name().toLowerCase(java.util.Locale.ROOT));
                    continue;
                }
                handler.accept(line, 1, index, text, (ObjectNode) node);
            }
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new DataFormatException(file, 0, "invalid UTF-8: " + e.getMessage());
        }
    }

    /** A JSON array read element by element, so a large file needs no more memory than its largest element. */
    private static void forEachElement(Path file, Problems problems, Handler handler) throws IOException {
        try (InputStream in = open(file); JsonParser p = JSON.getFactory().createParser(in)) {
            p.nextToken();   // '['
            long index = 0;
            while (true) {
                JsonToken t;
                try {
                    t = p.nextToken();
                } catch (JsonProcessingException e) {
                    // Inside one array a syntax error leaves no place to resume: report it and stop reading this file.
                    problems.error(file, e.getLocation().getLineNr(), e.getLocation().getColumnNr(), "malformed-json", "not valid JSON: " + e.getOriginalMessage());
                    return;
                }
                if (t == null || t == JsonToken.END_ARRAY) return;
                index++;
                long line = p.currentTokenLocation().getLineNr();
                long column = p.currentTokenLocation().getColumnNr();
                JsonNode node;
                try {
                    node = p.readValueAsTree();
                } catch (JsonProcessingException e) {
                    problems.error(file, e.getLocation().getLineNr(), e.getLocation().getColumnNr(), "malformed-json", "not valid JSON: " + e.getOriginalMessage());
                    return;
                }
                if (!(node instanceof ObjectNode o)) {
                    problems.error(file, line, column, "wrong-type", "expected a JSON object as array element, found " + node.getNodeType().name().toLowerCase(java.util.Locale.ROOT));
                    continue;
                }
                handler.accept(line, column, index, null, o);
            }
        }
    }
}
