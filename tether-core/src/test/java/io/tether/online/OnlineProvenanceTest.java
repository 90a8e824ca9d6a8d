package io.tether.online;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.run.Provenance;
import io.tether.run.RunSpec;
import io.tether.train.RunDirectory;
import io.tether.train.TrainerConfig;

/**
 * Every model an online run loads is named in its provenance.json by the sha256 of its weights: the policy
 * ({@code initial_weights}), the reward model, the frozen reference and the critic's starting point. Models differ in
 * their weights here (other seeds), so a hash recorded for the wrong directory fails.
 */
class OnlineProvenanceTest {
    @TempDir Path tmp;
    Path policy, rewardModel, valueModel, prompts;

    @BeforeEach
    void models() throws IOException {
        Torch.init();
        policy = save(Models.create(PpoTrainingTest.TINY, DType.F32, 2), "policy");
        rewardModel = saveScorer(3, "rm");
        valueModel = saveScorer(4, "vm");
        prompts = tmp.resolve("prompts.jsonl");
        Files.write(prompts, List.of("{\"prompt_ids\": [8, 9]}", "{\"prompt_ids\": [10, 11, 12]}", "{\"prompt_ids\": [13]}", "{\"prompt_ids\": [14, 15]}"));
    }

    private Path save(CausalLM m, String name) {
        try (m) {
            Path dir = tmp.resolve(name);
            Models.save(m, dir, null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
            return dir;
        }
    }

    /** A one-output sequence classifier (a reward model, or a critic's start). */
    private Path saveScorer(long seed, String name) {
        try (CausalLM lm = Models.create(PpoTrainingTest.TINY, DType.F32, seed)) {
            return save(Models.withRewardHead(lm, 1), name);
        }
    }

    private RunSpec spec(String out) {
        return RunSpec.of(policy, prompts, tmp.resolve(out), TrainerConfig.defaults().toBuilder().maxSteps(1).perDeviceTrainBatchSize(2).learningRate(1e-4)
                .loggingSteps(1).saveSteps(0).build());
    }

    private OnlineSettings online(OnlineSettings.Defaults method) {
        return OnlineSettings.defaults(method).toBuilder().maxCompletionLength(3).rewardModel(rewardModel).build();
    }

    private static JsonNode provenance(Path out) throws IOException {
        return RunDirectory.JSON.readTree(out.resolve("provenance.json").toFile());
    }

    @Test
    void ppoRecordsPolicyRewardModelReferenceAndValueModel() throws IOException {
        PpoRun.run(Online.config(spec("ppo"), online(PpoSettings.ONLINE), PpoSettings.defaults().toBuilder().numPpoEpochs(1).valueModel(valueModel).build()), false, null, Map.of());
        JsonNode p = provenance(tmp.resolve("ppo"));
        assertEquals(Provenance.weightsHash(policy), p.path("initial_weights").asText(), p.toString());
        assertEquals(Provenance.weightsHash(rewardModel), p.path("reward_model_weights").asText(), p.toString());
        assertEquals(Provenance.weightsHash(policy), p.path("reference_weights").asText(), p.toString());
        assertEquals(Provenance.weightsHash(valueModel), p.path("value_model_weights").asText(), p.toString());
        assertNotEquals(p.path("reward_model_weights").asText(), p.path("value_model_weights").asText());
        assertEquals(4, p.path("prompts").asInt(), p.toString());

        // Without value_model the critic starts from the reward model, as TRL initialises it.
        PpoRun.run(Online.config(spec("ppo-rm-critic"), online(PpoSettings.ONLINE), PpoSettings.defaults().toBuilder().numPpoEpochs(1).build()), false, null, Map.of());
        assertEquals(Provenance.weightsHash(rewardModel), provenance(tmp.resolve("ppo-rm-critic")).path("value_model_weights").asText());
    }

    @Test
    void grpoRecordsPolicyRewardModelAndReference() throws IOException {
        GrpoRun.run(Online.config(spec("grpo"), online(GrpoSettings.ONLINE), GrpoSettings.defaults(GrpoTraining.Estimator.GRPO).withNumGenerations(2)
                .withBeta(0.04)), false, null, Map.of());
        JsonNode p = provenance(tmp.resolve("grpo"));
        assertEquals(Provenance.weightsHash(policy), p.path("initial_weights").asText(), p.toString());
        assertEquals(Provenance.weightsHash(rewardModel), p.path("reward_model_weights").asText(), p.toString());
        assertEquals(Provenance.weightsHash(policy), p.path("reference_weights").asText(), p.toString());
        assertFalse(p.has("value_model_weights"), p.toString());
        // The Java-built run's config.yaml carries the online and GRPO keys at the top level, as a YAML config would.
        JsonNode config = RunDirectory.YAML.readTree(tmp.resolve("grpo").resolve("config.yaml").toFile());
        assertEquals(0.04, config.path("beta").asDouble(), 0.0, config.toString());
        assertEquals(3, config.path("max_completion_length").asInt(), config.toString());
        assertEquals(2, config.path("num_generations").asInt(), config.toString());
    }
}
