package io.tether.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Our own reader and writer for the safetensors format: an 8-byte little-endian header length, a JSON header
 * mapping tensor names to dtype, shape and [begin, end) offsets into the data section, then the data.
 *
 * <p>The reader trusts nothing: the header length is bounded, every entry's dtype, shape and byte length must
 * agree, offsets must lie inside the file and tile the data section without gaps or overlaps (as the reference
 * implementation requires). Data is memory-mapped in windows below 2 GiB, so tensors and files of any size load.
 * The writer produces the same layout as the reference implementation (tensors ordered by the reference dtype order, then
 * name; header padded with spaces to a multiple of 8), so a loaded file saved again is byte-identical.
 */
public final class Safetensors {
    /** The reference implementation refuses headers over 100 MB; so do we. */
    public static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;
    private static final long MAP_WINDOW = 1L << 30;
    /** safetensors' Dtype declaration order, reversed: the order its writer lays tensors out in. */
    private static final List<DType> REFERENCE_ORDER = List.of(DType.I64, DType.F64, DType.F32, DType.I32, DType.BF16, DType.F16,
            DType.I16, DType.I8, DType.U8, DType.BOOL);
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);

    private Safetensors() {}

    /** One tensor's header entry; {@code begin}/{@code end} are absolute file offsets. */
    public record Entry(String name, DType dtype, long[] shape, long begin, long end) {
        public long numel() {
            long n = 1;
            for (long s : shape) n *= s;
            return n;
        }
    }

    /** An opened, validated file. Tensors are read on demand; nothing is held open between reads. */
    public static final class Reader {
        private final Path file;
        private final long fileSize;
        private final Map<String, Entry> entries;
        private final Map<String, String> metadata;

        private Reader(Path file, long fileSize, Map<String, Entry> entries, Map<String, String> metadata) {
            this.file = file;
            this.fileSize = fileSize;
            this.entries = entries;
            this.metadata = metadata;
        }

        public Path file() { return file; }

        /** Entries in header order. */
        public Map<String, Entry> entries() { return Collections.unmodifiableMap(entries); }

        public Map<String, String> metadata() { return Collections.unmodifiableMap(metadata); }

        public Entry entry(String name) {
            Entry e = entries.get(name);
            if (e == null) throw new CheckpointException(file, name, "not present in the file");
            return e;
        }

        /** Reads a tensor in its stored dtype into natively owned memory. */
        public Tensor read(String name) {
            Entry e = entry(name);
            Tensor t = Tensors.empty(e.dtype(), e.shape());
            long length = e.end() - e.begin();
            if (length == 0) return t;
            BytePointer dst = new BytePointer(t.data_ptr()).capacity(length);
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                if (ch.size() != fileSize) throw new CheckpointException(file, name, "file changed size while reading");
                for (long done = 0; done < length; done += MAP_WINDOW) {
                    long n = Math.min(MAP_WINDOW, length - done);
                    MappedByteBuffer window = ch.map(FileChannel.MapMode.READ_ONLY, e.begin() + done, n);
                    Pointer.memcpy(dst.getPointer(done), new BytePointer(window), n);
                }
            } catch (IOException ex) {
                throw new CheckpointException(file, name, "cannot read tensor data: " + ex.getMessage(), ex);
            }
            return t;
        }

        /** Reads a tensor and converts it to {@code dtype} (for example BF16 weights into an F32 model). */
        public Tensor read(String name, DType dtype) {
            Tensor t = read(name);
            if (Tensors.dtype(t) == dtype) return t;
            Tensor converted = t.to(dtype.scalarType);
            t.close();
            return converted;
        }

        /**
         * Copies a stored tensor into {@code target}, converted to the target's dtype, after checking that the shapes
         * agree: {@code copy_} alone would broadcast a wrongly shaped tensor into the target without a word.
         */
        public void readInto(String name, Tensor target) {
            long[] stored = entry(name).shape(), wanted = Tensors.shape(target);
            if (!Arrays.equals(stored, wanted))
                throw new CheckpointException(file, name, "shape " + Arrays.toString(stored) + " does not fit the target " + Arrays.toString(wanted));
            try (NoGradGuard g = new NoGradGuard()) {
                Tensor t = read(name, Tensors.dtype(target));
                target.copy_(t);
                t.close();
            }
        }

        /**
         * The whole file memory-mapped copy-on-write (MAP_PRIVATE, through libtorch's {@code from_file}): tensors
         * from {@link Mapping#view} read the page cache in place, so a frozen model costs no copy and only the pages
         * a forward touches become resident (and the kernel can drop them again, they are clean). A write into a
         * view copies that page privately and never reaches the file. The mapping lives as long as any view of it.
         */
        public Mapping map() {
            long now;
            try {
                now = Files.size(file);
            } catch (IOException ex) {
                throw new CheckpointException(file, null, "cannot map: " + ex.getMessage(), ex);
            }
            // A file cut short after open() would fault on first touch (SIGBUS) instead of failing here.
            if (now != fileSize) throw new CheckpointException(file, null, "file changed size since its header was read (" + fileSize + " -> " + now + " bytes)");
            Tensor bytes = torch.from_file(file.toString(), new BoolOptional(false), new LongOptional(fileSize), Tensors.options(DType.U8));
            return new Mapping(this, bytes);
        }
    }

    /** A memory-mapped file: zero-copy views of its tensors. Closing it drops this handle, never the views. */
    public static final class Mapping implements AutoCloseable {
        private final Reader reader;
        private final Tensor bytes;

        private Mapping(Reader reader, Tensor bytes) {
            this.reader = reader;
            this.bytes = bytes;
        }

        /**
         * The stored tensor as a view of the mapping, in its stored dtype and shape. A tensor whose offset is not a
         * multiple of its element size (which no reference writer produces) is copied instead, since a dtype view
         * needs aligned elements.
         */
        public Tensor view(String name) {
            Entry e = reader.entry(name);
            long length = e.end() - e.begin();
            if (length == 0) return Tensors.empty(e.dtype(), e.shape());
            try (NoGradGuard g = new NoGradGuard()) {
                Tensor raw = bytes.narrow(0, e.begin(), length);
                Tensor aligned = e.begin() % e.dtype().bytes == 0 ? raw : raw.clone();
                Tensor typed = aligned.view(e.dtype().scalarType);
                Tensor shaped = typed.view(e.shape());
                if (aligned != raw) aligned.close();
                raw.close();
                typed.close();
                return shaped;
            }
        }

        @Override public void close() { bytes.close(); }
    }

    /** Opens and validates a file's header. */
    public static Reader open(Path file) {
        long size;
        ByteBuffer head;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            size = ch.size();
            if (size < 8) throw new CheckpointException(file, null, "truncated safetensors file: " + size + " bytes, the 8-byte header length is missing");
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long headerLen = lenBuf.getLong(0);
            if (headerLen < 2 || headerLen > MAX_HEADER_BYTES)
                throw new CheckpointException(file, null, "header length " + Long.toUnsignedString(headerLen) + " is outside [2, " + MAX_HEADER_BYTES + "]");
            if (8 + headerLen > size)
                throw new CheckpointException(file, null, "truncated safetensors file: header claims " + headerLen + " bytes but the file has " + (size - 8) + " after the length");
            head = ByteBuffer.allocate((int) headerLen);
            readFully(ch, head, 8);
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file, null, "file not found");
        } catch (IOException e) {
            throw new CheckpointException(file, null, "cannot read: " + e.getMessage(), e);
        }
        long dataStart = 8 + head.capacity();
        JsonNode root;
        try {
            // Strict UTF-8: a malformed header is refused, never turned into U+FFFD names.
            String text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                    .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT).decode(ByteBuffer.wrap(head.array())).toString();
            root = JSON.readTree(text);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new CheckpointException(file, null, "header is not valid UTF-8");
        } catch (IOException e) {
            throw new CheckpointException(file, null, "header is not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new CheckpointException(file, null, "header is not a JSON object");
        Map<String, Entry> entries = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> f : root.properties()) {
            String name = f.getKey();
            JsonNode v = f.getValue();
            if (name.equals("__metadata__")) {
                if (!v.isObject()) throw new CheckpointException(file, null, "__metadata__ must be an object of strings");
                v.properties().forEach(m -> {
                    if (!m.getValue().isTextual()) throw new CheckpointException(file, null, "__metadata__." + m.getKey() + " must be a string");
                    metadata.put(m.getKey(), m.getValue().asText());
                });
                continue;
            }
            entries.put(name, parseEntry(file, name, v, dataStart, size));
        }
        checkTiling(file, entries, dataStart, size);
        return new Reader(file, size, entries, metadata);
    }

    private static Entry parseEntry(Path file, String name, JsonNode v, long dataStart, long fileSize) {
        if (!v.isObject()) throw new CheckpointException(file, name, "header entry is not an object");
        JsonNode dt = v.get("dtype"), shapeNode = v.get("shape"), offs = v.get("data_offsets");
        if (dt == null || !dt.isTextual()) throw new CheckpointException(file, name, "missing string field 'dtype'");
        DType dtype = DType.fromSafetensors(dt.asText());
        if (dtype == null) throw new CheckpointException(file, name, "unsupported dtype '" + dt.asText() + "'");
        if (shapeNode == null || !shapeNode.isArray()) throw new CheckpointException(file, name, "missing array field 'shape'");
        long[] shape = new long[shapeNode.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode s = shapeNode.get(i);
            if (!s.canConvertToLong() || !s.isIntegralNumber() || s.asLong() < 0)
                throw new CheckpointException(file, name, "shape[" + i + "] is not a non-negative integer: " + s);
            shape[i] = s.asLong();
            try {
                numel = Math.multiplyExact(numel, shape[i]);
            } catch (ArithmeticException e) {
                throw new CheckpointException(file, name, "shape " + shapeNode + " overflows");
            }
        }
        if (offs == null || !offs.isArray() || offs.size() != 2 || !offs.get(0).isIntegralNumber() || !offs.get(1).isIntegralNumber()
                || !offs.get(0).canConvertToLong() || !offs.get(1).canConvertToLong())
            throw new CheckpointException(file, name, "'data_offsets' must be two integers");
        long b = offs.get(0).asLong(), e = offs.get(1).asLong();
        long dataLen = fileSize - dataStart;
        if (b < 0 || e < b || e > dataLen)
            throw new CheckpointException(file, name, "data_offsets [" + b + ", " + e + ") lie outside the data section of " + dataLen + " bytes");
        long expectedBytes;
        try {
            expectedBytes = Math.multiplyExact(numel, dtype.bytes);
        } catch (ArithmeticException ex) {
            throw new CheckpointException(file, name, "shape " + shapeNode + " overflows");
        }
        if (e - b != expectedBytes)
            throw new CheckpointException(file, name, "byte length " + (e - b) + " does not match shape " + shapeNode + " x " + dtype.safetensorsName + " = " + expectedBytes + " bytes");
        return new Entry(name, dtype, shape, dataStart + b, dataStart + e);
    }

    private static void checkTiling(Path file, Map<String, Entry> entries, long dataStart, long fileSize) {
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long cursor = dataStart;
        for (Entry e : sorted) {
            if (e.begin() < cursor)
                throw new CheckpointException(file, e.name(), "data overlaps the previous tensor (starts at " + (e.begin() - dataStart) + ", previous ends at " + (cursor - dataStart) + ")");
            if (e.begin() > cursor)
                throw new CheckpointException(file, e.name(), "gap in the data section before this tensor (" + (e.begin() - cursor) + " bytes unaccounted for)");
            cursor = e.end();
        }
        if (cursor != fileSize)
            throw new CheckpointException(file, null, "data section has " + (fileSize - cursor) + " trailing bytes that no tensor claims");
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos + buf.position());
            if (n < 0) throw new IOException("unexpected end of file");
        }
    }

    /**
     * Writes tensors to {@code file} atomically (a temporary file in the same directory, then a rename), so a crash
     * leaves either the old file or the new one. Each tensor is written in its own dtype; convert first to change it.
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
        record Item(String name, Tensor tensor, DType dtype, long[] shape, long bytes) {}
        List<Item> items = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            Tensor t = e.getValue().detach().contiguous();
            items.add(new Item(e.getKey(), t, Tensors.dtype(t), Tensors.shape(t), t.nbytes()));
        }
        // The reference implementation orders by its dtype enum, highest first, then by name.
        items.sort(Comparator.<Item>comparingInt(i -> REFERENCE_ORDER.indexOf(i.dtype())).thenComparing(Item::name));
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Item i : items) {
            ObjectNode n = header.putObject(i.name());
            n.put("dtype", i.dtype().safetensorsName);
            var shape = n.putArray("shape");
            for (long s : i.shape()) shape.add(s);
            var offs = n.putArray("data_offsets");
            offs.add(offset);
            offs.add(offset + i.bytes());
            offset += i.bytes();
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(header);
        } catch (IOException e) {
            throw new CheckpointException(file, null, "cannot encode header", e);
        }
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();
        Path dir = file.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = AtomicFiles.temporarySibling(file);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW)) {
                while (head.hasRemaining()) ch.write(head);
                for (Item i : items) {
                    if (i.bytes() == 0) continue;
                    BytePointer src = Tensors.bytes(i.tensor());
                    for (long done = 0; done < i.bytes(); done += MAP_WINDOW) {
                        long n = Math.min(MAP_WINDOW, i.bytes() - done);
                        ByteBuffer view = src.getPointer(done).capacity(n).asByteBuffer();
                        while (view.hasRemaining()) ch.write(view);
                    }
                }
                ch.force(true);
            }
            AtomicFiles.move(tmp, file);
            tmp = null;
        } catch (IOException e) {
            throw new CheckpointException(file, null, "cannot write: " + e.getMessage(), e);
        } finally {
            if (tmp != null) {
                try { Files.deleteIfExists(tmp); } catch (IOException ignored) { /* best effort */ }
            }
        }
    }
}
