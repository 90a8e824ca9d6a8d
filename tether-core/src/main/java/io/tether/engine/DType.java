package io.tether.engine;

import org.bytedeco.pytorch.global.torch.ScalarType;

/** Element types Tether reads and writes, with their safetensors names and byte widths. */
public enum DType {
    F64("F64", 8, ScalarType.Double),
    F32("F32", 4, ScalarType.Float),
    F16("F16", 2, ScalarType.Half),
    BF16("BF16", 2, ScalarType.BFloat16),
    I64("I64", 8, ScalarType.Long),
    I32("I32", 4, ScalarType.Int),
    I16("I16", 2, ScalarType.Short),
    I8("I8", 1, ScalarType.Char),
    U8("U8", 1, ScalarType.Byte),
    BOOL("BOOL", 1, ScalarType.Bool);

    public final String safetensorsName;
    public final int bytes;
    public final ScalarType scalarType;

    DType(String safetensorsName, int bytes, ScalarType scalarType) {
        this.safetensorsName = safetensorsName;
        this.bytes = bytes;
        this.scalarType = scalarType;
    }

    public boolean isFloatingPoint() {
        return this == F64 || this == F32 || this == F16 || this == BF16;
    }

    /** The safetensors dtype string, or null if unknown. */
    public static DType fromSafetensors(String name) {
        for (DType d : values()) if (d.safetensorsName.equals(name)) return d;
        return null;
    }

    /** Parses user input ("fp32", "float32", "bf16", "bfloat16", "F16", ...). */
    public static DType parse(String name) {
        switch (name.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "f32": case "fp32": case "float32": case "float": return F32;
            case "f64": case "fp64": case "float64": case "double": return F64;
            case "f16": case "fp16": case "float16": case "half": return F16;
            case "bf16": case "bfloat16": return BF16;
            default: throw new ConfigException("unknown dtype '" + name + "' (expected fp32, bf16, fp16 or fp64)");
        }
    }

    /** HF's torch_dtype spelling. */
    public String torchName() {
        switch (this) {
            case F64: return "float64";
            case F32: return "float32";
            case F16: return "float16";
            case BF16: return "bfloat16";
            default: return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /**
     * Maps a tensor's native scalar type to a DType. Native enums fail identity comparison and make a switch pick
     * its first case (engine-notes.md), so this compares by the enum's integer value.
     */
    public static DType of(ScalarType scalarType) {
        int v = scalarType.value;
        for (DType d : values()) if (d.scalarType.value == v) return d;
        throw new IllegalArgumentException("unsupported scalar type " + scalarType);
    }
}
