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

}
