package io.tether.engine;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every header field is bounded, and every violation names the file and the tensor. */
class SafetensorsBoundsTest {
    @TempDir Path tmp;

    @BeforeAll
    static void load() {
        Torch.init();
    }

    private Path crafted(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path p = tmp.resolve("crafted.safetensors");
        Files.write(p, b.array());
        return p;
    }

    private static String error(Path p) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> Safetensors.open(p));
        assertTrue(e.getMessage().contains(p.getFileName().toString()), e.getMessage());
        return e.getMessage();
    }

    @Test
    void rejectsLyingHeaders() throws IOException {
        String[][] cases = {
                {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", "16", "'w'", "does not match shape"},
                {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,32]}}", "16", "'w'", "outside the data section"},
                {"{\"w\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", "16", "'w'", "unsupported dtype"},
                {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", "16", "'w'", "not a non-negative integer"},
                {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", "16", "'b'", "overlaps"},
                {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", "16", "'a'", "gap"},
                {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "16", null, "trailing bytes"},
                {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,16]}}", "16", "'w'", "overflows"},
                {"{\"__metadata__\":{\"n\":1}}", "0", null, "must be a string"},
                {"{\"w\":1}", "0", "'w'", "not an object"},
                {"[1,2]", "0", null, "not a JSON object"},
                {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "8", null, "not valid JSON"},
        };
        for (String[] c : cases) {
            String msg = error(crafted(c[0], Integer.parseInt(c[1])));
            if (c[2] != null) assertTrue(msg.contains("tensor " + c[2]), c[0] + " -> " + msg);
            assertTrue(msg.contains(c[3]), c[0] + " -> " + msg);
        }
    }

    @Test
    void boundsTheHeaderLengthBeforeReadingIt() throws IOException {
        Path p = tmp.resolve("huge.safetensors");
        Files.write(p, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE).array());
        assertTrue(error(p).contains("outside [2, "));
        Files.write(p, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).array());
        assertTrue(error(p).contains("truncated"));
        Files.write(p, new byte[5]);
        assertTrue(error(p).contains("truncated"));
        assertTrue(error(tmp.resolve("missing.safetensors")).contains("file not found"));
    }

    @Test
    void writesAndReadsEveryDtypeExactly() {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (StepScope s = new StepScope()) {
            Tensor base = Tensors.floats(new float[] {1.5f, -2.25f, 3e-3f, 65504f, 0f, -0f}, 2, 3);
            tensors.put("f32", base);
            tensors.put("f64", Tensors.doubles(new double[] {Math.PI, -1e-300}, 2));
            tensors.put("bf16", base.to(DType.BF16.scalarType));
            tensors.put("f16", base.to(DType.F16.scalarType));
            tensors.put("i64", Tensors.longs(new long[] {Long.MIN_VALUE, 7}, 2));
            tensors.put("scalar", Tensors.floats(new float[] {42f}));
            tensors.put("empty", Tensors.zeros(DType.F32, 0, 3));
            Path p = tmp.resolve("all.safetensors");
            Safetensors.write(p, tensors, Map.of("format", "pt"));
            Safetensors.Reader r = Safetensors.open(p);
            assertEquals(Map.of("format", "pt"), r.metadata());
            assertEquals(java.util.List.of("f64", "i64", "f32", "scalar", "empty", "bf16", "f16").stream().sorted().toList(),
                    r.entries().keySet().stream().sorted().toList());
            // The reference implementation's dtype order (I64 before F64, BF16 before F16), then by name.
            assertEquals(java.util.List.of("i64", "f64", "empty", "f32", "scalar", "bf16", "f16"), java.util.List.copyOf(r.entries().keySet()));
            for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                Tensor back = r.read(e.getKey());
                assertEquals(Tensors.dtype(e.getValue()), Tensors.dtype(back), e.getKey());
                assertArrayEquals(Tensors.shape(e.getValue()), Tensors.shape(back), e.getKey());
                assertTrue(back.eq(e.getValue()).all().item().toBool() || back.numel() == 0, e.getKey());
            }
            assertEquals(0, (Files.size(p) - 8 - (r.entries().values().stream().mapToLong(x -> x.end() - x.begin()).sum())) % 8);
        } catch (IOException e) {
            fail(e);
        }
    }

    @Test
    void aFailedWriteLeavesTheOldFileAndNoTemporaries() throws IOException {
        Path p = tmp.resolve("model.safetensors");
        try (StepScope s = new StepScope()) {
            Safetensors.write(p, Map.of("w", Tensors.floats(new float[] {1, 2}, 2)), Map.of());
            byte[] before = Files.readAllBytes(p);
            Path blocked = tmp.resolve("file-not-dir");
            Files.writeString(blocked, "x");
            assertThrows(CheckpointException.class, () -> Safetensors.write(blocked.resolve("m.safetensors"), Map.of("w", Tensors.floats(new float[] {1}, 1)), Map.of()));
            assertArrayEquals(before, Files.readAllBytes(p));
            try (var files = Files.list(tmp)) {
                assertTrue(files.noneMatch(f -> f.getFileName().toString().endsWith(".tmp")));
            }
        }
    }
}
