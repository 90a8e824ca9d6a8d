package io.tether.engine;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Views of a memory-mapped safetensors file equal what the copying reader reads, aligned or not. */
class SafetensorsMappingTest {
    @TempDir Path tmp;

    @Test
    void mappedViewsEqualReadsIncludingAMisalignedTensor() throws IOException {
        // A hand-made file no reference writer would produce: one byte of U8, then an F32 at data offset 1 and a
        // BF16 pair at offset 5, neither aligned to its element size (a dtype view needs that, so those are copied).
        String header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5]},"
                + "\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[5,9]},"
                + "\"g\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[12,20]},"
                + "\"pad\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[9,12]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8;
        ByteBuffer b = ByteBuffer.allocate(8 + padded + 20).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(padded).put(h);
        while (b.position() < 8 + padded) b.put((byte) ' ');
        b.put((byte) 7).putFloat(1.5f).putShort((short) 0x3FC0).putShort((short) 0xC040).put(new byte[3]).putFloat(-2.25f).putFloat(3e-3f);
        Path file = tmp.resolve("odd.safetensors");
        Files.write(file, b.array());
        Safetensors.Reader r = Safetensors.open(file);
        try (Safetensors.Mapping m = r.map()) {
            for (String name : new String[] {"a", "f", "h", "g", "pad"}) {
                Tensor mapped = m.view(name), read = r.read(name);
                assertEquals(Tensors.dtype(read), Tensors.dtype(mapped), name);
                assertArrayEquals(Tensors.shape(read), Tensors.shape(mapped), name);
                assertArrayEquals(Tensors.toDoubles(read.to(DType.F64.scalarType)), Tensors.toDoubles(mapped.to(DType.F64.scalarType)), name);
            }
            assertEquals(1.5, Tensors.toDoubles(m.view("f").to(DType.F64.scalarType))[0]);
            assertArrayEquals(new double[] {1.5, -3.0}, Tensors.toDoubles(m.view("h").to(DType.F64.scalarType)));
        }
    }

    @Test
    void aFileThatChangedSizeSinceItsHeaderWasReadIsNotMapped() throws IOException {
        Path file = tmp.resolve("t.safetensors");
        try (Tensor t = Tensors.zeros(DType.F32, 4)) {
            Safetensors.write(file, java.util.Map.of("t", t), null);
        }
        Safetensors.Reader r = Safetensors.open(file);
        Files.write(file, new byte[] {1, 2, 3}, java.nio.file.StandardOpenOption.APPEND);
        CheckpointException e = assertThrows(CheckpointException.class, r::map);
        assertTrue(e.getMessage().contains("changed size") && e.getMessage().contains("t.safetensors"), e.getMessage());
    }
}
