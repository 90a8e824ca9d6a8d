package io.tether.engine;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The safetensors reader and writer against real fixture checkpoints (byte-exact round trips), synthetic tensors of
 * every float/int width, crafted malformed files, and the atomic-write contract.
 */
class SafetensorsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path tmp;

    @BeforeAll
    static void load() {
        Torch.init();
    }

    // ---------------------------------------------------------------- helpers

    private static Path fixture(String name) {
        Path p = Path.of(System.getProperty("tether.shared", "../shared"))
                .resolve("fixtures/checkpoints").resolve(name).resolve("model.safetensors");
        assertTrue(Files.isRegularFile(p), "missing fixture " + p.toAbsolutePath());
        return p;
    }

    /** [u64 LE header length][header bytes][dataBytes zero bytes]. */
    private Path crafted(String fileName, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path p = tmp.resolve(fileName);
        Files.write(p, b.array());
        return p;
    }

    /** Just the 8-byte length field (plus optional zero bytes), no header. */
    private Path lengthOnly(String fileName, long headerLen, int extraBytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + extraBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(headerLen);
        Path p = tmp.resolve(fileName);
        Files.write(p, b.array());
        return p;
    }

    /** Opening {@code p} must fail naming the file, the tensor (when given), and the phrase. */
    private static CheckpointException assertRejected(Path p, String tensor, String phrase) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> Safetensors.open(p),
                "expected " + p.getFileName() + " to be rejected (" + phrase + ")");
        String msg = e.getMessage();
        assertTrue(msg.contains(p.getFileName().toString()), "message lacks the file name: " + msg);
        if (tensor != null) assertTrue(msg.contains(tensor), "message lacks the tensor name '" + tensor + "': " + msg);
        assertTrue(msg.contains(phrase), "message lacks '" + phrase + "': " + msg);
        return e;
    }

    private static String entry(String dtype, String shape, long begin, long end) {
        return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + "," + end + "]}";
    }

    private static byte[] rawBytes(Tensor t) {
        Tensor c = t.contiguous();
        long n = c.nbytes();
        byte[] out = new byte[Math.toIntExact(n)];
        if (n > 0) Tensors.bytes(c).get(out);
        return out;
    }

    private static long headerLength(byte[] file) {
        return ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private static JsonNode header(byte[] file) throws IOException {
        int n = Math.toIntExact(headerLength(file));
        return JSON.readTree(new String(file, 8, n, StandardCharsets.UTF_8));
    }

    private static List<String> tensorOrder(JsonNode header) {
        List<String> names = new ArrayList<>();
        for (Iterator<String> it = header.fieldNames(); it.hasNext(); ) {
            String n = it.next();
            if (!n.equals("__metadata__")) names.add(n);
        }
        return names;
    }

    private List<Path> tempLeftovers() throws IOException {
        try (Stream<Path> s = Files.walk(tmp)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".tmp")).toList();
        }
    }

    // ---------------------------------------------------------------- 1. fixture round trips

    @ParameterizedTest
    @ValueSource(strings = {"lm-buddy-fake-gpt2", "lm-buddy-tiny-gpt2", "verl-arithmetic-llama"})
    void fixtureRoundTripsByteExact(String name) throws IOException {
        Path src = fixture(name);
        Path out = tmp.resolve(name + ".safetensors");
        try (StepScope s = new StepScope()) {
            Safetensors.Reader r = Safetensors.open(src);
            assertFalse(r.entries().isEmpty());
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Safetensors.Entry e : r.entries().values()) {
                Tensor t = r.read(e.name());
                assertEquals(e.dtype(), Tensors.dtype(t), e.name());
                assertArrayEquals(e.shape(), Tensors.shape(t), e.name());
                tensors.put(e.name(), t);
            }
            Safetensors.write(out, tensors, r.metadata());
        }
        byte[] expected = Files.readAllBytes(src);
        byte[] actual = Files.readAllBytes(out);
        assertEquals(expected.length, actual.length, "file length");
        assertEquals(headerLength(expected), headerLength(actual), "header length field");
        assertEquals(new String(expected, 8, (int) headerLength(expected), StandardCharsets.UTF_8),
                new String(actual, 8, (int) headerLength(actual), StandardCharsets.UTF_8), "header text");
        assertArrayEquals(expected, actual, "written file differs from " + src);
    }

    @Test
    void fixtureHeadersAreParsed() {
        Safetensors.Reader llama = Safetensors.open(fixture("verl-arithmetic-llama"));
        assertEquals(39, llama.entries().size());
        assertEquals(Map.of("format", "pt"), llama.metadata());
        Safetensors.Entry head = llama.entry("lm_head.weight");
        assertEquals(DType.BF16, head.dtype());
        assertArrayEquals(new long[] {16, 128}, head.shape());
        assertEquals(16 * 128 * 2, head.end() - head.begin());
        // The writer's order: entries() is header order, and the first tensor starts right after the header.
        assertEquals("lm_head.weight", llama.entries().keySet().iterator().next());
        assertEquals(8 + 4112, head.begin());

        Safetensors.Reader fake = Safetensors.open(fixture("lm-buddy-fake-gpt2"));
        assertEquals(16, fake.entries().size());
        Safetensors.Entry wte = fake.entry("transformer.wte.weight");
        assertEquals(DType.F32, wte.dtype());
        assertArrayEquals(new long[] {50257, 2}, wte.shape());
        assertEquals(50257L * 2, wte.numel());

        Safetensors.Reader tiny = Safetensors.open(fixture("lm-buddy-tiny-gpt2"));
        assertEquals(16, tiny.entries().size());
        for (Safetensors.Entry e : tiny.entries().values()) assertEquals(DType.F32, e.dtype(), e.name());

        CheckpointException missing = assertThrows(CheckpointException.class, () -> llama.entry("no.such.tensor"));
        assertTrue(missing.getMessage().contains("no.such.tensor"), missing.getMessage());
        assertTrue(missing.getMessage().contains("not present"), missing.getMessage());
    }

    // ---------------------------------------------------------------- 2. BF16 -> F32

    @Test
    void bf16WidensToF32Exactly() throws IOException {
        Path src = fixture("verl-arithmetic-llama");
        String name = "model.embed_tokens.weight";
        // Locate the tensor independently of the reader: parse the header ourselves.
        byte[] file = Files.readAllBytes(src);
        long headerLen = headerLength(file);
        JsonNode info = header(file).get(name);
        assertEquals("BF16", info.get("dtype").asText());
        long begin = 8 + headerLen + info.get("data_offsets").get(0).asLong();
        long end = 8 + headerLen + info.get("data_offsets").get(1).asLong();
        int n = Math.toIntExact((end - begin) / 2);
        assertEquals(16 * 128, n);
        ByteBuffer raw = ByteBuffer.wrap(file, (int) begin, (int) (end - begin)).slice().order(ByteOrder.LITTLE_ENDIAN);
        float[] expected = new float[n];
        int nonZero = 0;
        for (int i = 0; i < n; i++) {
            int bits = (raw.getShort(2 * i) & 0xFFFF) << 16;
            expected[i] = Float.intBitsToFloat(bits);
            if (bits != 0) nonZero++;
        }
        assertTrue(nonZero > n / 2, "fixture data looks empty");

        try (StepScope s = new StepScope()) {
            Safetensors.Reader r = Safetensors.open(src);
            Tensor t = r.read(name, DType.F32);
            assertEquals(DType.F32, Tensors.dtype(t));
            assertArrayEquals(new long[] {16, 128}, Tensors.shape(t));
            float[] actual = new float[n];
            t.contiguous().data_ptr_float().get(actual);
            for (int i = 0; i < n; i++)
                assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(actual[i]), "element " + i);
            // Reading in the stored dtype gives the raw bf16 bits unchanged.
            byte[] stored = rawBytes(r.read(name, DType.BF16));
            byte[] fromFile = new byte[(int) (end - begin)];
            System.arraycopy(file, (int) begin, fromFile, 0, fromFile.length);
            assertArrayEquals(fromFile, stored);
        }
    }

    // ---------------------------------------------------------------- 3. synthetic dtypes

    @Test
    void mixedDtypesRoundTripExactly() throws IOException {
        Path out = tmp.resolve("mixed.safetensors");
        Map<String, byte[]> expectedBytes = new LinkedHashMap<>();
        Map<String, DType> expectedDtype = new LinkedHashMap<>();
        Map<String, long[]> expectedShape = new LinkedHashMap<>();
        String odd = "odd \"name\" é/\\";
        try (StepScope s = new StepScope()) {
            // Inserted deliberately out of the expected header order.
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("b.half", Tensors.floats(new float[] {1.5f, -2.25f, 65504f, 6.1035156e-05f, 5.9604645e-08f}, 5).to(DType.F16.scalarType));
            tensors.put("e.empty", Tensors.zeros(DType.F32, 0, 4));
            tensors.put("n.double", Tensors.doubles(new double[] {Math.PI, -0.0, Double.MIN_VALUE, Double.MAX_VALUE,
                    Double.NEGATIVE_INFINITY, 1e-300}, 2, 3));
            tensors.put("a.bf16", Tensors.floats(new float[] {1f, -3.5f, 0.15625f, 3.3895314e38f, -0f, 1024f}, 3, 2).to(DType.BF16.scalarType));
            tensors.put("d.scalar", Tensors.floats(new float[] {42.125f}));
            tensors.put("m.long", Tensors.longs(new long[] {Long.MIN_VALUE, -1, 0, (1L << 53) + 1, Long.MAX_VALUE}, 5));
            // Non-contiguous (transposed) input is written in logical order.
            tensors.put("c.float", Tensors.floats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3).t());
            tensors.put(odd, Tensors.floats(new float[] {7, 8}, 2));
            for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                expectedBytes.put(e.getKey(), rawBytes(e.getValue()));
                expectedDtype.put(e.getKey(), Tensors.dtype(e.getValue()));
                expectedShape.put(e.getKey(), Tensors.shape(e.getValue()));
            }
            assertArrayEquals(new long[] {}, expectedShape.get("d.scalar"));
            Safetensors.write(out, tensors, Map.of("format", "pt"));
        }

        byte[] file = Files.readAllBytes(out);
        long headerLen = headerLength(file);
        assertEquals(0, headerLen % 8, "header length " + headerLen + " is not a multiple of 8");
        JsonNode h = header(file);
        assertEquals(List.of("m.long", "n.double", "c.float", "d.scalar", "e.empty", odd, "a.bf16", "b.half"), tensorOrder(h));
        assertEquals("__metadata__", h.fieldNames().next());
        assertEquals("pt", h.get("__metadata__").get("format").asText());
        long dataLen = file.length - 8 - headerLen;
        assertEquals(5 * 8 + 6 * 8 + 6 * 4 + 4 + 0 + 2 * 4 + 6 * 2 + 5 * 2, dataLen);

        try (StepScope s = new StepScope()) {
            Safetensors.Reader r = Safetensors.open(out);
            assertEquals(expectedBytes.keySet(), r.entries().keySet());
            assertEquals(Map.of("format", "pt"), r.metadata());
            for (String name : expectedBytes.keySet()) {
                Tensor t = r.read(name);
                assertEquals(expectedDtype.get(name), Tensors.dtype(t), name);
                assertEquals(expectedDtype.get(name), r.entry(name).dtype(), name);
                assertArrayEquals(expectedShape.get(name), Tensors.shape(t), name);
                assertArrayEquals(expectedBytes.get(name), rawBytes(t), name);
            }
            assertEquals(0, r.read("d.scalar").dim());
            assertEquals(0, r.read("e.empty").numel());
            assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, Tensors.toFloats(r.read("c.float")));
            assertArrayEquals(new long[] {Long.MIN_VALUE, -1, 0, (1L << 53) + 1, Long.MAX_VALUE}, Tensors.toLongs(r.read("m.long")));
            double[] d = Tensors.toDoubles(r.read("n.double"));
            assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits(d[1]));
            assertEquals(Double.MIN_VALUE, d[2]);
            assertEquals(Double.NEGATIVE_INFINITY, d[4]);
            assertArrayEquals(new float[] {1.5f, -2.25f, 65504f, 6.1035156e-05f, 5.9604645e-08f}, Tensors.toFloats(r.read("b.half")));
            assertArrayEquals(new float[] {1f, -3.5f, 0.15625f, 3.3895314e38f, -0f, 1024f}, Tensors.toFloats(r.read("a.bf16")));
            assertArrayEquals(new float[] {42.125f}, Tensors.toFloats(r.read("d.scalar")));
        }

        // Saving what was loaded reproduces the file byte for byte.
        Path again = tmp.resolve("mixed-again.safetensors");
        try (StepScope s = new StepScope()) {
            Safetensors.Reader r = Safetensors.open(out);
            Map<String, Tensor> loaded = new LinkedHashMap<>();
            for (String name : r.entries().keySet()) loaded.put(name, r.read(name));
            Safetensors.write(again, loaded, r.metadata());
        }
        assertArrayEquals(file, Files.readAllBytes(again));
    }

    @Test
    void emptyFileAndNoMetadata() throws IOException {
        Path out = tmp.resolve("empty.safetensors");
        Safetensors.write(out, new LinkedHashMap<>(), null);
        // The reference implementation writes "{}" padded with spaces to 8 bytes.
        byte[] expected = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
        assertArrayEquals(expected, Files.readAllBytes(out));
        Safetensors.Reader r = Safetensors.open(out);
        assertTrue(r.entries().isEmpty());
        assertTrue(r.metadata().isEmpty());
    }

    @Test
    void singleTensorMatchesReferenceBytes() throws IOException {
        // The reference implementation's own serialization test (safetensors tensor.rs, test_serialization):
        // "attn.0" F32 [1,2,3] = 0..5, no metadata; header is 64 bytes, already aligned.
        Path out = tmp.resolve("ref.safetensors");
        try (StepScope s = new StepScope()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            t.put("attn.0", Tensors.floats(new float[] {0, 1, 2, 3, 4, 5}, 1, 2, 3));
            Safetensors.write(out, t, Map.of());
        }
        String json = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
        ByteBuffer b = ByteBuffer.allocate(8 + 64 + 24).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(64).put(json.getBytes(StandardCharsets.US_ASCII));
        while (b.position() < 72) b.put((byte) ' ');
        for (int i = 0; i < 6; i++) b.putFloat(i);
        assertArrayEquals(b.array(), Files.readAllBytes(out));
    }

    /**
     * The reference implementation sorts by its Dtype enum (U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, ...,
     * I8, U8, BOOL) descending, then by name; within one width the dtype decides before the name. {@link
     * Safetensors#write} compares only widths, so same-width dtypes fall back to name order and a reference-written
     * file that mixes them (I64+F64, BF16+F16, I32+F32, U8+I8+BOOL) is not saved back byte-identically.
     */
    @Test
    void sameWidthDtypesFollowReferenceOrder() throws IOException {
        Path out = tmp.resolve("order.safetensors");
        try (StepScope s = new StepScope()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            t.put("a.f64", Tensors.zeros(DType.F64, 1));
            t.put("b.i64", Tensors.zeros(DType.I64, 1));
            t.put("a.f32", Tensors.zeros(DType.F32, 1));
            t.put("b.i32", Tensors.zeros(DType.I32, 1));
            t.put("a.f16", Tensors.zeros(DType.F16, 1));
            t.put("b.bf16", Tensors.zeros(DType.BF16, 1));
            t.put("a.bool", Tensors.zeros(DType.BOOL, 1));
            t.put("b.u8", Tensors.zeros(DType.U8, 1));
            t.put("c.i8", Tensors.zeros(DType.I8, 1));
            Safetensors.write(out, t, null);
        }
        assertEquals(List.of("b.i64", "a.f64", "a.f32", "b.i32", "b.bf16", "a.f16", "c.i8", "b.u8", "a.bool"),
                tensorOrder(header(Files.readAllBytes(out))));
    }

    // ---------------------------------------------------------------- 4. malformed files

    @Test
    void rejectsFileShorterThanLengthField() throws IOException {
        Path p = tmp.resolve("short.safetensors");
        Files.write(p, new byte[] {1, 0, 0, 0, 0});
        assertRejected(p, null, "truncated");
        Path empty = tmp.resolve("zero-bytes.safetensors");
        Files.write(empty, new byte[0]);
        assertRejected(empty, null, "8-byte header length is missing");
    }

    @Test
    void rejectsHeaderLongerThanFile() throws IOException {
        assertRejected(lengthOnly("long-header.safetensors", 1000, 10), null, "header claims 1000 bytes");
        // Off by one: the header would end one byte past the end.
        Path p = crafted("off-by-one.safetensors", "{}      ", 0);
        byte[] b = Files.readAllBytes(p);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 9);
        Files.write(p, b);
        assertRejected(p, null, "truncated");
    }

    @Test
    void rejectsHugeHeaderLengthWithoutAllocating() throws IOException {
        assertRejected(lengthOnly("huge.safetensors", Safetensors.MAX_HEADER_BYTES + 1, 0), null, "outside [2, ");
        assertRejected(lengthOnly("max-long.safetensors", Long.MAX_VALUE, 0), null, "outside [2, ");
        // A u64 above 2^63 is negative as a Java long.
        CheckpointException e = assertRejected(lengthOnly("u64.safetensors", -1L, 0), null, "outside [2, ");
        assertTrue(e.getMessage().contains("18446744073709551615"), e.getMessage());
    }

    @Test
    void rejectsHeaderThatIsNotJson() throws IOException {
        assertRejected(crafted("not-json.safetensors", "{\"w\": nope}", 0), null, "not valid JSON");
        assertRejected(crafted("truncated-json.safetensors", "{\"w\":{\"dtype\":\"F32\"", 0), null, "not valid JSON");
    }

    @Test
    void rejectsJsonThatIsNotAnObject() throws IOException {
        assertRejected(crafted("array.safetensors", "[1,2]", 0), null, "not a JSON object");
        assertRejected(crafted("string.safetensors", "\"hello\"", 0), null, "not a JSON object");
        assertRejected(crafted("null.safetensors", "null", 0), null, "not a JSON object");
        assertRejected(crafted("blank.safetensors", "        ", 0), null, "not a JSON object");
        assertRejected(crafted("entry-not-object.safetensors", "{\"w\":[1]}", 0), "tensor 'w'", "not an object");
    }

    @Test
    void rejectsUnknownDtype() throws IOException {
        assertRejected(crafted("dtype.safetensors", "{\"w.q\":" + entry("Q4_K", "[4]", 0, 16) + "}", 16),
                "tensor 'w.q'", "unsupported dtype 'Q4_K'");
        // Case matters: "f32" is not a safetensors dtype.
        assertRejected(crafted("dtype-case.safetensors", "{\"w\":" + entry("f32", "[4]", 0, 16) + "}", 16),
                "tensor 'w'", "unsupported dtype");
    }

    @Test
    void rejectsNegativeShape() throws IOException {
        assertRejected(crafted("neg-shape.safetensors", "{\"neg\":" + entry("F32", "[-4]", 0, 16) + "}", 16),
                "tensor 'neg'", "not a non-negative integer");
        // -1 x -4 would multiply to a positive 4: each dimension must be checked, not the product.
        assertRejected(crafted("neg-pair.safetensors", "{\"neg\":" + entry("F32", "[-1,-4]", 0, 16) + "}", 16),
                "tensor 'neg'", "not a non-negative integer");
        assertRejected(crafted("float-shape.safetensors", "{\"f\":" + entry("F32", "[4.0]", 0, 16) + "}", 16),
                "tensor 'f'", "not a non-negative integer");
    }

    @Test
    void rejectsOffsetsBeyondTheDataSection() throws IOException {
        assertRejected(crafted("beyond.safetensors", "{\"big\":" + entry("F32", "[4]", 0, 16) + "}", 12),
                "tensor 'big'", "outside the data section");
        assertRejected(crafted("reversed.safetensors", "{\"rev\":" + entry("F32", "[0]", 8, 4) + "}", 8),
                "tensor 'rev'", "outside the data section");
        assertRejected(crafted("neg-offset.safetensors", "{\"neg\":" + entry("F32", "[1]", -4, 0) + "}", 4),
                "tensor 'neg'", "outside the data section");
    }

    @Test
    void rejectsByteLengthThatDisagreesWithShape() throws IOException {
        assertRejected(crafted("length.safetensors", "{\"w\":" + entry("F32", "[2,2]", 0, 12) + "}", 12),
                "tensor 'w'", "does not match shape");
        assertRejected(crafted("length-bf16.safetensors", "{\"w\":" + entry("BF16", "[4]", 0, 16) + "}", 16),
                "tensor 'w'", "does not match shape");
        assertRejected(crafted("overflow.safetensors", "{\"w\":" + entry("F32", "[4611686018427387904,4]", 0, 16) + "}", 16),
                "tensor 'w'", "overflows");
        // numel fits in a long but numel x 8 bytes does not.
        assertRejected(crafted("overflow-bytes.safetensors", "{\"w\":" + entry("F64", "[2305843009213693952]", 0, 16) + "}", 16),
                "tensor 'w'", "overflows");
    }

    @Test
    void rejectsOverlappingTensors() throws IOException {
        String h = "{\"a\":" + entry("F32", "[4]", 0, 16) + ",\"b\":" + entry("F32", "[2]", 8, 16) + "}";
        assertRejected(crafted("overlap.safetensors", h, 16), "tensor 'b'", "overlaps");
        // Two tensors claiming the very same bytes.
        String same = "{\"x\":" + entry("F32", "[2]", 0, 8) + ",\"y\":" + entry("F32", "[2]", 0, 8) + "}";
        assertRejected(crafted("alias.safetensors", same, 8), "tensor '", "overlaps");
    }

    @Test
    void rejectsGapBetweenTensors() throws IOException {
        String h = "{\"a\":" + entry("F32", "[1]", 0, 4) + ",\"b\":" + entry("F32", "[1]", 8, 12) + "}";
        assertRejected(crafted("gap.safetensors", h, 12), "tensor 'b'", "gap in the data section");
        // A gap before the first tensor.
        assertRejected(crafted("lead-gap.safetensors", "{\"a\":" + entry("F32", "[2]", 8, 16) + "}", 16),
                "tensor 'a'", "gap in the data section");
    }

    @Test
    void rejectsTrailingBytes() throws IOException {
        assertRejected(crafted("trailing.safetensors", "{\"a\":" + entry("F32", "[2]", 0, 8) + "}", 16),
                null, "8 trailing bytes");
        assertRejected(crafted("trailing-empty.safetensors", "{}", 3), null, "3 trailing bytes");
    }

    @Test
    void rejectsNonStringMetadata() throws IOException {
        assertRejected(crafted("meta-number.safetensors", "{\"__metadata__\":{\"format\":\"pt\",\"step\":1}}", 0),
                null, "__metadata__.step must be a string");
        assertRejected(crafted("meta-nested.safetensors", "{\"__metadata__\":{\"cfg\":{\"a\":\"b\"}}}", 0),
                null, "__metadata__.cfg must be a string");
        assertRejected(crafted("meta-array.safetensors", "{\"__metadata__\":[\"pt\"]}", 0),
                null, "__metadata__ must be an object");
    }

    @Test
    void rejectsDuplicateTensorKeys() throws IOException {
        String h = "{\"dup.weight\":" + entry("F32", "[1]", 0, 4) + ",\"dup.weight\":" + entry("F32", "[1]", 4, 8) + "}";
        assertRejected(crafted("dup.safetensors", h, 8), "dup.weight", "not valid JSON");
        // Duplicates must be caught even when the second copy is an exact repeat of the first.
        String same = "{\"twice\":" + entry("F32", "[1]", 0, 4) + ",\"twice\":" + entry("F32", "[1]", 0, 4) + "}";
        assertRejected(crafted("dup-same.safetensors", same, 4), "twice", "Duplicate");
        String meta = "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}";
        assertRejected(crafted("dup-meta.safetensors", meta, 0), null, "Duplicate");
    }

    @Test
    void rejectsMissingFile() {
        Path p = tmp.resolve("does-not-exist.safetensors");
        CheckpointException e = assertRejected(p, null, "file not found");
        assertEquals(p, e.file());
        assertNull(e.tensor());
    }

    @Test
    void exceptionRecordsFileAndTensor() throws IOException {
        Path p = crafted("fields.safetensors", "{\"w\":" + entry("F32", "[2,2]", 0, 12) + "}", 12);
        CheckpointException e = assertRejected(p, "tensor 'w'", "does not match shape");
        assertEquals(p, e.file());
        assertEquals("w", e.tensor());
        assertTrue(e.getMessage().startsWith(p.toString() + ": tensor 'w': "), e.getMessage());
    }

    /**
     * The reference parses the header with {@code serde_json::from_str}, which rejects anything but whitespace after
     * the JSON value; a second object or stray characters after the header object are corruption.
     */
    @Test
    void rejectsTrailingGarbageAfterHeaderObject() throws IOException {
        Path p = crafted("trailing-json.safetensors", "{\"a\":" + entry("F32", "[1]", 0, 4) + "}{\"b\":1}", 4);
        assertRejected(p, null, "not valid JSON");
    }

    /** The reference rejects a header that is not valid UTF-8 (SafeTensorError::InvalidHeader). */
    @Test
    void rejectsHeaderThatIsNotUtf8() throws IOException {
        Path p = crafted("latin1.safetensors", "{\"a\":" + entry("F32", "[1]", 0, 4) + "}", 4);
        byte[] b = Files.readAllBytes(p);
        b[10] = (byte) 0xFF;   // inside the name "a" -> invalid UTF-8 byte
        Files.write(p, b);
        assertThrows(CheckpointException.class, () -> Safetensors.open(p));
    }

    // ---------------------------------------------------------------- 5. atomic writes

    @Test
    void failedWriteLeavesNoTemporaryFiles() throws IOException {
        Path notADir = tmp.resolve("plain-file");
        Files.writeString(notADir, "I am a file");
        Path target = notADir.resolve("model.safetensors");
        try (StepScope s = new StepScope()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            t.put("w", Tensors.ones(DType.F32, 4));
            CheckpointException e = assertThrows(CheckpointException.class, () -> Safetensors.write(target, t, null));
            assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
            assertTrue(e.getMessage().contains("cannot write"), e.getMessage());
        }
        assertEquals("I am a file", Files.readString(notADir));
        assertEquals(List.of(), tempLeftovers());
    }

    @Test
    void failedRenameRemovesItsTemporaryFile() throws IOException {
        // The temporary file is written, then the rename onto a non-empty directory fails: it must be cleaned up.
        Path target = tmp.resolve("occupied.safetensors");
        Files.createDirectory(target);
        Files.writeString(target.resolve("keep.txt"), "keep");
        try (StepScope s = new StepScope()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            t.put("w", Tensors.ones(DType.F32, 4));
            CheckpointException e = assertThrows(CheckpointException.class, () -> Safetensors.write(target, t, null));
            assertTrue(e.getMessage().contains("occupied.safetensors"), e.getMessage());
        }
        assertEquals("keep", Files.readString(target.resolve("keep.txt")));
        assertEquals(List.of(), tempLeftovers());
    }

    @Test
    void successfulWriteReplacesExistingFile() throws IOException {
        Path target = tmp.resolve("model.safetensors");
        Path reference = tmp.resolve("sub/reference.safetensors");   // parent is created on demand
        try (StepScope s = new StepScope()) {
            Map<String, Tensor> first = new LinkedHashMap<>();
            first.put("old.weight", Tensors.floats(new float[] {1, 2, 3, 4, 5, 6, 7, 8}, 2, 4));
            first.put("old.bias", Tensors.zeros(DType.F32, 16));
            Safetensors.write(target, first, Map.of("v", "1"));
            assertEquals(Map.of("v", "1"), Safetensors.open(target).metadata());

            Map<String, Tensor> second = new LinkedHashMap<>();
            second.put("new.weight", Tensors.floats(new float[] {9, 8}, 2).to(DType.BF16.scalarType));
            Safetensors.write(target, second, Map.of("v", "2"));
            Safetensors.write(reference, second, Map.of("v", "2"));
        }
        // The new, shorter file fully replaced the old one (no stale tail from the bigger first file).
        assertArrayEquals(Files.readAllBytes(reference), Files.readAllBytes(target));
        try (StepScope s = new StepScope()) {
            Safetensors.Reader r = Safetensors.open(target);
            assertEquals(List.of("new.weight"), List.copyOf(r.entries().keySet()));
            assertEquals(Map.of("v", "2"), r.metadata());
            assertArrayEquals(new float[] {9, 8}, Tensors.toFloats(r.read("new.weight")));
        }
        assertEquals(List.of(), tempLeftovers());
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of("model.safetensors", "sub"), s.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void readIntoConvertsToTheTargetDtypeAndRefusesAShapeThatWouldBroadcast() {
        Path file = tmp.resolve("row.safetensors");
        Safetensors.write(file, Map.of("row", Tensors.floats(new float[] {1.5f, -2f, 3f}, 1, 3)), Map.of("format", "pt"));
        Safetensors.Reader r = Safetensors.open(file);

        Tensor same = Tensors.zeros(DType.F64, 1, 3);
        r.readInto("row", same);
        assertEquals(-2.0, same.select(1, 1).item_double());
        assertEquals(DType.F64, Tensors.dtype(same));

        // copy_ would broadcast the (1, 3) row into every row of a (2, 3) target; readInto must refuse instead.
        Tensor wider = Tensors.zeros(DType.F32, 2, 3);
        CheckpointException e = assertThrows(CheckpointException.class, () -> r.readInto("row", wider));
        assertTrue(e.getMessage().contains("row") && e.getMessage().contains("[1, 3]") && e.getMessage().contains("[2, 3]"), e.getMessage());
        assertEquals(0.0, wider.abs().sum().item_double());
    }
}
