package io.tether.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import com.fasterxml.jackson.databind.JsonNode;

import io.tether.engine.AtomicFiles;
import io.tether.engine.CheckpointException;

/**
 * Where the loop stands: optimizer steps taken and the data cursor. With the seed this is all the state a resume
 * needs: the data order of an epoch is a pure function of (seed, epoch), the schedule of the step, and the
 * optimizer moments live beside it in {@code optimizer.safetensors}.
 */
public record TrainerState(int globalStep, int epoch, int position, long seed, int totalSteps) {
    public static final String FILE = "trainer_state.json";

    public void write(Path dir) throws IOException {
        var o = RunDirectory.JSON.createObjectNode();
        o.put("global_step", globalStep);
        o.put("epoch", epoch);
        o.put("position", position);
        o.put("seed", seed);
        o.put("total_steps", totalSteps);
        AtomicFiles.write(dir.resolve(FILE), w -> w.write(RunDirectory.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n"));
    }

    public static TrainerState read(Path dir) {
        Path f = dir.resolve(FILE);
        try {
            JsonNode n = RunDirectory.JSON.readTree(Files.readString(f));
            for (String k : new String[] {"global_step", "epoch", "position", "seed", "total_steps"})
                if (n == null || !n.has(k) || !n.get(k).isIntegralNumber()) throw new CheckpointException(f, null, "key '" + k + "': missing or not an integer");
            return new TrainerState(n.get("global_step").asInt(), n.get("epoch").asInt(), n.get("position").asInt(),
                    n.get("seed").asLong(), n.get("total_steps").asInt());
        } catch (IOException e) {
            throw new CheckpointException(f, null, "cannot read trainer state: " + e.getMessage(), e);
        }
    }
}
