package io.tether.train;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;

import io.tether.engine.AtomicFiles;
import io.tether.engine.ConfigException;

/**
 * A run's directory: the resolved {@code config.yaml}, {@code provenance.json} (versions, seeds, hashes),
 * {@code metrics.jsonl}, and {@code checkpoints/step-N/} (HF layout plus trainer state).
 */
public final class RunDirectory {
    public static final ObjectMapper JSON = new ObjectMapper();
    public static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory().disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER));
    private static final Pattern STEP_DIR = Pattern.compile("step-(\\d+)");

    private final Path root;

    public RunDirectory(Path root) {
        this.root = root;
    }

    /**
     * The run directory for a new run (refused when it already holds checkpoints, so a finished run is never
     * overwritten by accident) or for {@code resume}.
     */
    public static RunDirectory open(Path root, boolean resume) throws IOException {
        RunDirectory run = new RunDirectory(root);
        if (!resume && run.latestCheckpoint().isPresent())
            throw new ConfigException("key 'output_dir': " + root + " already holds checkpoints; pass --resume to continue that run or choose another directory");
        return run;
    }

    /** What every run records first: versions, threads, seed, the data's (and eval data's) hash and when it started or resumed. */
    public static Map<String, Object> provenance(long seed, Path data, Path evalData, boolean resume) throws IOException {
        Map<String, Object> p = new java.util.LinkedHashMap<>();
        String v = RunDirectory.class.getPackage().getImplementationVersion();
        p.put("tether", v == null ? "dev" : v);
        p.put("libtorch", io.tether.engine.Torch.version());
        p.put("java", System.getProperty("java.version"));
        p.put("os", System.getProperty("os.name") + " " + System.getProperty("os.arch"));
        p.put("torch_threads", io.tether.engine.Torch.threads());
        p.put("seed", seed);
        p.put("data_sha256", sha256(data));
        if (evalData != null) p.put("eval_data_sha256", sha256(evalData));
        p.put(resume ? "resumed_at" : "started_at", java.time.Instant.now().toString());
        return p;
    }

    public Path root() { return root; }

    public Path checkpoints() { return root.resolve("checkpoints"); }

    public Path metricsFile() { return root.resolve("metrics.jsonl"); }

    public void writeConfig(Object resolvedConfig) throws IOException {
        Files.createDirectories(root);
        AtomicFiles.write(root.resolve("config.yaml"), w -> w.write(YAML.writeValueAsString(resolvedConfig)));
    }

    public void writeProvenance(Map<String, Object> provenance) throws IOException {
        Files.createDirectories(root);
        AtomicFiles.write(root.resolve("provenance.json"), w -> w.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(provenance) + "\n"));
    }

    /** Appends one metrics line. */
    public void appendMetrics(Map<String, Object> line) throws IOException {
        Files.createDirectories(root);
        Files.writeString(metricsFile(), JSON.writeValueAsString(line) + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    /** Drops metrics lines past {@code step}, so a resumed run's log reads as if it had never stopped. */
    public void truncateMetricsAfter(int step) throws IOException {
        if (!Files.exists(metricsFile())) return;
        List<String> kept = new ArrayList<>();
        for (String line : Files.readAllLines(metricsFile())) {
            if (line.isBlank()) continue;
            JsonNode n;
            try {
                n = JSON.readTree(line);
            } catch (IOException e) {
                break;  // a line cut by the crash
            }
            if (n.has("step") && n.get("step").asInt() > step) continue;
            kept.add(line);
        }
        AtomicFiles.write(metricsFile(), w -> { for (String l : kept) w.write(l + "\n"); });
    }

    /** Completed checkpoints (a trainer_state.json present), oldest first. */
    public List<Path> checkpointDirs() throws IOException {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(checkpoints())) return out;
        try (DirectoryStream<Path> s = Files.newDirectoryStream(checkpoints())) {
            for (Path p : s) {
                if (STEP_DIR.matcher(p.getFileName().toString()).matches() && Files.isRegularFile(p.resolve(TrainerState.FILE))) out.add(p);
            }
        }
        out.sort(Comparator.comparingInt(RunDirectory::stepOf));
        return out;
    }

    public Optional<Path> latestCheckpoint() throws IOException {
        List<Path> all = checkpointDirs();
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    static int stepOf(Path checkpoint) {
        Matcher m = STEP_DIR.matcher(checkpoint.getFileName().toString());
        if (!m.matches()) throw new IllegalArgumentException("not a checkpoint directory: " + checkpoint);
        return Integer.parseInt(m.group(1));
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
}
