package io.tether.run;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.core.type.TypeReference;

import io.tether.engine.Torch;
import io.tether.train.RunDirectory;

/** What a run records about where it came from: versions, seed, data hashes, weights hashes (provenance.json). */
public final class Provenance {
    private Provenance() {}

    /** What every run records first: versions, threads, seed, the data's (and eval data's) hash and when it started or resumed. */
    public static Map<String, Object> start(long seed, Path data, Path evalData, boolean resume) throws IOException {
        Map<String, Object> p = new LinkedHashMap<>();
        String v = RunDirectory.class.getPackage().getImplementationVersion();
        p.put("tether", v == null ? "dev" : v);
        p.put("libtorch", Torch.version());
        p.put("java", System.getProperty("java.version"));
        p.put("os", System.getProperty("os.name") + " " + System.getProperty("os.arch"));
        p.put("torch_threads", Torch.threads());
        p.put("seed", seed);
        p.put("data_sha256", sha256(data));
        if (evalData != null) p.put("eval_data_sha256", sha256(evalData));
        p.put(resume ? "resumed_at" : "started_at", java.time.Instant.now().toString());
        return p;
    }

    /** The weights of a model directory, as "file:sha256" of each safetensors file, sorted. */
    public static String weightsHash(Path dir) throws IOException {
        List<String> parts = new ArrayList<>();
        try (var files = Files.list(dir)) {
            for (Path f : files.sorted().toList())
                if (f.getFileName().toString().endsWith(".safetensors")) parts.add(f.getFileName() + ":" + sha256(f));
        }
        return String.join(",", parts);
    }

    /** sha256 of a file's bytes, hex. */
    public static String sha256(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) d.update(buf, 0, n);
            return HexFormat.of().formatHex(d.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static final JsonMapper SNAKE = JsonMapper.builder().propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .addModule(new com.fasterxml.jackson.databind.module.SimpleModule().addSerializer(Path.class,
                    com.fasterxml.jackson.databind.ser.std.ToStringSerializer.instance)
                    // Enums as their YAML values (keep_start, error), which are their names in lower case.
                    .addSerializer(Enum.class, new com.fasterxml.jackson.databind.ser.std.StdSerializer<Enum>(Enum.class) {
                        @Override
                        public void serialize(Enum v, com.fasterxml.jackson.core.JsonGenerator g, com.fasterxml.jackson.databind.SerializerProvider p) throws IOException {
                            g.writeString(v.name().toLowerCase(java.util.Locale.ROOT));
                        }
                    })).build();

    /**
     * A run built by Java code rather than from YAML, as config.yaml keys: the spec's and the method's components in
     * snake_case, the loop's and the reading settings' keys at the top level as in a YAML config, LoRA as TRL's
     * {@code use_peft} and {@code lora_*} keys, paths as written.
     */
    public static Map<String, Object> recordForm(RunSpec spec, Object method) {
        Map<String, Object> out = new LinkedHashMap<>();
        Map<String, Object> s = SNAKE.convertValue(spec, MAP);
        s.remove("resolved");
        for (Map.Entry<String, Object> e : s.entrySet()) {
            switch (e.getKey()) {
                case "trainer" -> out.putAll(SNAKE.convertValue(e.getValue(), MAP));
                // A length limit of 0 is unset (it comes from the model, and the session writes the value in force).
                case "reading" -> SNAKE.convertValue(e.getValue(), MAP).forEach((k, v) -> { if (!(v instanceof Number n && n.intValue() == 0)) out.put(k, v); });
                case "lora" -> {
                    out.put("use_peft", spec.lora() != null);
                    if (spec.lora() != null)
                        SNAKE.convertValue(spec.lora(), MAP).forEach((k, v) -> out.put(k.startsWith("use_") ? k : "lora_" + k, v));
                }
                default -> { if (e.getValue() != null) out.put(e.getKey(), e.getValue()); }
            }
        }
        if (method != null) out.putAll(SNAKE.convertValue(method, MAP));
        return out;
    }

    private static final TypeReference<LinkedHashMap<String, Object>> MAP = new TypeReference<>() {};
}
