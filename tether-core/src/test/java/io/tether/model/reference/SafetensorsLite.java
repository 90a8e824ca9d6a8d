package io.tether.model.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Minimal, independent safetensors reader used only by the float64 reference decoder in tests.
 *
 * <p>File layout (https://github.com/huggingface/safetensors): an unsigned 64-bit little-endian
 * header length N, then N bytes of UTF-8 JSON mapping tensor name to
 * {@code {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}} (plus an optional
 * {@code "__metadata__"} entry), then the raw little-endian tensor bytes; offsets are relative to
 * the first byte after the header.
 *
 * <p>Deliberately shares no code with the production loader ({@code io.tether.engine.Safetensors}).
 * F32, F16, BF16 (and F64) tensors are decoded into {@code double[]} in row-major order.
 */
public final class SafetensorsLite {

    private static final ObjectMapper JSON = new ObjectMapper();

    private SafetensorsLite() {}

    /** Decoded tensors of one checkpoint: values (row-major) and shapes, keyed by tensor name. */
    public static final class Tensors {
        private final Map<String, double[]> values = new LinkedHashMap<>();
        private final Map<String, long[]> shapes = new LinkedHashMap<>();

        /** Name to row-major data (unmodifiable view). */
        public Map<String, double[]> values() {
            return java.util.Collections.unmodifiableMap(values);
        }

        /** Name to shape (unmodifiable view). */
        public Map<String, long[]> shapes() {
            return java.util.Collections.unmodifiableMap(shapes);
        }

        public boolean has(String name) {
            return values.containsKey(name);
        }

        /** The tensor's data; throws if absent. */
        public double[] get(String name) {
            double[] v = values.get(name);
            if (v == null) {
                throw new IllegalArgumentException("missing tensor: " + name);
            }
            return v;
        }

        /** The tensor's shape; throws if absent. */
        public long[] shape(String name) {
            long[] s = shapes.get(name);
            if (s == null) {
                throw new IllegalArgumentException("missing tensor: " + name);
            }
            return s.clone();
        }

        /** The tensor's data after checking that its shape equals {@code expected}. */
        public double[] get(String name, long... expected) {
            double[] v = get(name);
            long[] s = shapes.get(name);
            if (!Arrays.equals(s, expected)) {
                throw new IllegalArgumentException("tensor " + name + " has shape " + Arrays.toString(s)
                        + ", expected " + Arrays.toString(expected));
            }
            return v;
        }

        void put(String name, long[] shape, double[] data) {
            if (values.put(name, data) != null) {
                throw new IllegalArgumentException("duplicate tensor: " + name);
            }
            shapes.put(name, shape);
        }
    }

    /**
     * Reads all tensors of a model directory: {@code model.safetensors}, or, when absent, every shard
     * named in {@code model.safetensors.index.json}'s {@code weight_map}.
     */
    public static Tensors readModelDir(Path modelDir) throws IOException {
        Path single = modelDir.resolve("model.safetensors");
        if (Files.exists(single)) {
            return read(single);
        }
        Path index = modelDir.resolve("model.safetensors.index.json");
        if (!Files.exists(index)) {
            throw new IOException("no model.safetensors or model.safetensors.index.json in " + modelDir);
        }
        JsonNode weightMap = JSON.readTree(index.toFile()).get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new IOException("index has no weight_map: " + index);
        }
        TreeSet<String> shards = new TreeSet<>();
        weightMap.elements().forEachRemaining(n -> shards.add(n.asText()));
        Tensors all = new Tensors();
        for (String shard : shards) {
            readInto(modelDir.resolve(shard), all);
        }
        // Every name the index promises must have been found in some shard.
        for (Iterator<String> it = weightMap.fieldNames(); it.hasNext(); ) {
            String name = it.next();
            if (!all.has(name)) {
                throw new IOException("tensor " + name + " listed in index but not found in shards");
            }
        }
        return all;
    }

    /** Reads every tensor of one safetensors file. */
    public static Tensors read(Path file) throws IOException {
        Tensors t = new Tensors();
        readInto(file, t);
        return t;
    }

    private static void readInto(Path file, Tensors out) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long fileSize = ch.size();
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long headerLen = lenBuf.flip().getLong();
            if (headerLen < 2 || headerLen > fileSize - 8 || headerLen > Integer.MAX_VALUE) {
                throw new IOException("bad safetensors header length " + headerLen + " in " + file);
            }
            ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
            readFully(ch, headerBuf, 8);
            JsonNode header = JSON.readTree(new String(headerBuf.array(), StandardCharsets.UTF_8));
            long dataStart = 8 + headerLen;
            long dataLen = fileSize - dataStart;
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) {
                    continue;
                }
                JsonNode info = e.getValue();
                String dtype = info.get("dtype").asText();
                JsonNode shapeNode = info.get("shape");
                long[] shape = new long[shapeNode.size()];
                long numel = 1;
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = shapeNode.get(i).asLong();
                    numel *= shape[i];
                }
                long begin = info.get("data_offsets").get(0).asLong();
                long end = info.get("data_offsets").get(1).asLong();
                int elemSize = elementSize(dtype);
                if (begin < 0 || end < begin || end > dataLen || end - begin != numel * elemSize) {
                    throw new IOException("bad data_offsets for " + e.getKey() + " in " + file);
                }
                if (numel > Integer.MAX_VALUE) {
                    throw new IOException("tensor too large for reference decoder: " + e.getKey());
                }
                double[] data = new double[(int) numel];
                if (numel > 0) {
                    MappedByteBuffer buf = ch.map(FileChannel.MapMode.READ_ONLY, dataStart + begin, end - begin);
                    buf.order(ByteOrder.LITTLE_ENDIAN);
                    decode(dtype, buf, data);
                }
                out.put(e.getKey(), shape, data);
            }
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos);
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
            pos += n;
        }
    }

    private static int elementSize(String dtype) {
        switch (dtype) {
            case "F64":
                return 8;
            case "F32":
                return 4;
            case "F16":
            case "BF16":
                return 2;
            default:
                throw new IllegalArgumentException("unsupported dtype " + dtype);
        }
    }

    private static void decode(String dtype, ByteBuffer buf, double[] out) {
        switch (dtype) {
            case "F64":
                for (int i = 0; i < out.length; i++) {
                    out[i] = buf.getDouble();
                }
                break;
            case "F32":
                for (int i = 0; i < out.length; i++) {
                    out[i] = buf.getFloat();
                }
                break;
            case "BF16":
                for (int i = 0; i < out.length; i++) {
                    out[i] = bf16ToDouble(buf.getShort());
                }
                break;
            case "F16":
                for (int i = 0; i < out.length; i++) {
                    out[i] = f16ToDouble(buf.getShort());
                }
                break;
            default:
                throw new IllegalArgumentException("unsupported dtype " + dtype);
        }
    }

    /** bfloat16 is the top 16 bits of an IEEE binary32. */
    public static double bf16ToDouble(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** IEEE binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. */
    public static double f16ToDouble(short bits) {
        int h = bits & 0xFFFF;
        int sign = (h >>> 15) != 0 ? -1 : 1;
        int exp = (h >>> 10) & 0x1F;
        int mant = h & 0x3FF;
        if (exp == 0) {
            return sign * mant * 0x1p-24; // zero / subnormal: mant * 2^-14 / 2^10
        }
        if (exp == 31) {
            return mant == 0 ? sign * Double.POSITIVE_INFINITY : Double.NaN;
        }
        return sign * (1.0 + mant / 1024.0) * Math.scalb(1.0, exp - 15);
    }

    /** A float32 tensor to be written by {@link #writeF32}. */
    public record F32Tensor(long[] shape, float[] data) {
        public F32Tensor {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            if (n != data.length) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " does not match "
                        + data.length + " elements");
            }
        }
    }

    /**
     * Writes an F32-only safetensors file (tensors laid out in sorted name order, header keys sorted,
     * header padded with spaces to a multiple of 8 bytes as the reference implementation does).
     * Intended for synthetic test checkpoints.
     */
    public static void writeF32(Path file, Map<String, F32Tensor> tensors) throws IOException {
        SortedMap<String, F32Tensor> sorted = new TreeMap<>(tensors);
        ObjectNode header = JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Map.Entry<String, F32Tensor> e : sorted.entrySet()) {
            ObjectNode info = header.putObject(e.getKey());
            info.put("dtype", "F32");
            var shape = info.putArray("shape");
            for (long d : e.getValue().shape()) {
                shape.add(d);
            }
            long size = 4L * e.getValue().data().length;
            info.putArray("data_offsets").add(offset).add(offset + size);
            offset += size;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;
        byte[] headerBytes = Arrays.copyOf(json, padded);
        Arrays.fill(headerBytes, json.length, padded, (byte) ' ');
        try (OutputStream os = Files.newOutputStream(file)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
            os.write(len.array());
            os.write(headerBytes);
            for (F32Tensor t : sorted.values()) {
                ByteBuffer b = ByteBuffer.allocate(4 * t.data().length).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : t.data()) {
                    b.putFloat(f);
                }
                os.write(b.array());
            }
        }
    }
}
