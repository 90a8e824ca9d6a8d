package io.tether.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;

import io.tether.engine.AtomicFiles;
import io.tether.engine.CheckpointException;

/**
 * Where the loop stands: optimizer steps taken and the data cursor. With the seed this is all the state a resume
 * needs: the data order of an epoch is a pure function of (seed, epoch), the schedule of the step, and the
 * optimizer moments live beside it in {@code optimizer.safetensors}. {@code methodState} is what the training method
 * keeps beside its parameters ({@link TrainingMethod#state}), under {@code method_state}. {@code worldSize} is the
 * number of data-parallel processes that wrote it ({@code world_size}, written only when more than one): a run
 * resumes with the same number.
 */
public record TrainerState(int globalStep, int epoch, int position, long seed, int totalSteps, Map<String, Double> methodState, int worldSize) {
    public static final String FILE = "trainer_state.json";

    public TrainerState {
        methodState = Map.copyOf(methodState);
        if (worldSize < 1) throw new IllegalArgumentException("world size must be >= 1, got " + worldSize);
    }

    public TrainerState(int globalStep, int epoch, int position, long seed, int totalSteps, Map<String, Double> methodState) {
        this(globalStep, epoch, position, seed, totalSteps, methodState, 1);
    }

    public TrainerState(int globalStep, int epoch, int position, long seed, int totalSteps) {
        this(globalStep, epoch, position, seed, totalSteps, Map.of());
    }

    public void write(Path dir) throws IOException {
        var o = RunDirectory.JSON.createObjectNode();
        o.put("global_step", globalStep);
        o.put("epoch", epoch);
        o.put("position", position);
        o.put("seed", seed);
        o.put("total_steps", totalSteps);
        if (worldSize > 1) o.put("world_size", worldSize);
        if (!methodState.isEmpty()) {
            var state = o.putObject("method_state");
            new java.util.TreeMap<>(methodState).forEach(state::put);
        }
        AtomicFiles.write(dir.resolve(FILE), w -> w.write(RunDirectory.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n"));
    }

    public static TrainerState read(Path dir) {
        Path f = dir.resolve(FILE);
        try {
            JsonNode n = RunDirectory.JSON.readTree(Files.readString(f));
            for (String k : new String[] {"global_step", "epoch", "position", "seed", "total_steps"})
                if (n == null || !n.has(k) || !n.get(k).isIntegralNumber()) throw new CheckpointException(f, null, "key '" + k + "': missing or not an integer");
            Map<String, Double> methodState = new LinkedHashMap<>();
            JsonNode state = n.get("method_state");
            if (state != null && !state.isObject()) throw new CheckpointException(f, null, "key 'method_state': expected an object of numbers");
            if (state != null)
                for (var it = state.fields(); it.hasNext(); ) {
                    var e = it.next();
                    if (!e.getValue().isNumber()) throw new CheckpointException(f, null, "key 'method_state." + e.getKey() + "': expected a number");
                    methodState.put(e.getKey(), e.getValue().asDouble());
                }
            return new TrainerState(n.get("global_step").asInt(), n.get("epoch").asInt(), n.get("position").asInt(),
                    n.get("seed").asLong(), n.get("total_steps").asInt(), methodState, n.has("world_size") ? n.get("world_size").asInt() : 1);
        } catch (IOException e) {
            throw new CheckpointException(f, null, "cannot read trainer state: " + e.getMessage(), e);
        }
    }
}
