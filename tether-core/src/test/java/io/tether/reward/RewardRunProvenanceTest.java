package io.tether.reward;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.run.ConfigTree;
import io.tether.run.DataSettings;
import io.tether.run.Provenance;
import io.tether.run.RunSpec;
import io.tether.text.ByteTokenizer;
import io.tether.train.RunDirectory;
import io.tether.train.TrainerConfig;

/**
 * Reward runs record what they started from as every other run does: {@code initial_weights} is the sha256 of the
 * base model's weights (the path alone, {@code base_model}, says nothing once the directory is overwritten), and the
 * process kind reports its data reading like the rest.
 */
class RewardRunProvenanceTest {
    @TempDir Path tmp;
    static final Path GPT2 = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/checkpoints/lm-buddy-fake-gpt2");
    static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void load() {
        Torch.init();
    }

    @Test
    void aBradleyTerryRunBuiltFromRecordsRecordsTheBaseModelsWeightsHash() throws IOException {
        Random r = new Random(5);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 12; i++)
            lines.add("{\"prompt_ids\": [1, 2], \"chosen_ids\": [" + (3 + r.nextInt(90)) + ", 4], \"rejected_ids\": [" + (3 + r.nextInt(90)) + "]}");
        Path data = tmp.resolve("pairs.jsonl");
        Files.write(data, lines);
        Path out = tmp.resolve("bt");
        RunSpec spec = new RunSpec(GPT2, null, null, data, null, 0, out, "fp32", new DataSettings(TokenRecords.InvalidRecords.ERROR, 64, 0, 0, Truncation.Mode.KEEP_START),
                TrainerConfig.defaults().toBuilder().maxSteps(1).perDeviceTrainBatchSize(4).saveSteps(0).evalSteps(0).build(), null, Map.of());
        RewardRun.Result result = RewardRun.run(spec, RewardSettings.defaults(), false, null);
        assertEquals(1, result.training().steps());

        JsonNode provenance = JSON.readTree(out.resolve("provenance.json").toFile());
        String hash = Provenance.weightsHash(GPT2);
        assertTrue(hash.startsWith("model.safetensors:"), hash);
        assertEquals(hash, provenance.path("initial_weights").asText(), provenance.toString());
        assertEquals(GPT2.toString(), provenance.path("base_model").asText(), "the path is kept beside the hash");
        assertEquals(12, provenance.path("train_pairs").asInt());
        assertEquals("keep_start", provenance.path("data_reading").path("truncation_mode").asText(), provenance.toString());
        // The typed run's config.yaml names its kind as YAML would.
        assertEquals("bradley_terry", RunDirectory.YAML.readTree(out.resolve("config.yaml").toFile()).path("kind").asText(), Files.readString(out.resolve("config.yaml")));
    }

    @Test
    void aProcessRunRecordsTheBaseModelsWeightsHashAndItsDataReading() throws IOException {
        Path base = tmp.resolve("base");
        try (CausalLM lm = Models.create(ModelConfig.llama(259, 32, 2, 4, 2, 64, 64), DType.F32, 4)) {
            Models.save(lm, base, null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
        }
        new ByteTokenizer().save(base);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 20; i++)
            lines.add("{\"prompt\": \"Q:\", \"completions\": [\"1+" + (i % 5) + "=" + (1 + i % 5) + "\", \"2+2=" + (i % 2 == 0 ? 4 : 5) + "\"], \"labels\": [true, " + (i % 2 == 0) + "]}");
        Path data = tmp.resolve("steps.jsonl");
        Files.write(data, lines);
        Path out = tmp.resolve("prm");
        RewardRun.Result result = RewardRun.run(RewardSettings.config(ConfigTree.load(null, List.of("model=" + base, "data=" + data, "output_dir=" + out,
                "kind=process", "max_steps=1", "per_device_train_batch_size=4"))), false, null);
        assertEquals(1, result.training().steps());

        JsonNode provenance = JSON.readTree(out.resolve("provenance.json").toFile());
        String hash = Provenance.weightsHash(base);
        assertFalse(hash.isEmpty());
        assertEquals(hash, provenance.path("initial_weights").asText(), provenance.toString());
        assertNotEquals(Provenance.weightsHash(out.resolve("model")), hash, "the hash is the base model's, not the trained one's");
        assertEquals(base.toString(), provenance.path("base_model").asText());
        // Its own stepwise reader's counts, and the data-reading report every run writes.
        assertEquals(20, provenance.path("stepwise_records").asInt(), provenance.toString());
        assertEquals(20, provenance.path("train_examples").asInt() + provenance.path("eval_examples").asInt(), provenance.toString());
        assertEquals(2 * provenance.path("train_examples").asInt(), provenance.path("train_labelled_steps").asInt(), provenance.toString());
        assertEquals(0, provenance.path("data_reading").path("records_skipped").asInt(-1), provenance.toString());
        assertEquals("process", RunDirectory.YAML.readTree(out.resolve("config.yaml").toFile()).path("kind").asText(), Files.readString(out.resolve("config.yaml")));
    }
}
