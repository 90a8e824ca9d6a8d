package io.tether.train;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;

/**
 * Training from scratch on real text: the assistant turns of LLaMA-Factory's DPO demo set, as UTF-8 bytes (ids
 * 0-255), loss on the assistant reply only. Train and held-out loss must both fall well below the uniform
 * log(256) = 5.55.
 */
class RealCorpusSftTest {
    @TempDir Path tmp;

    @Test
    void lossFallsOnAssistantTurnsOfARealDataset() throws IOException {
        Torch.init();
        Path file = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/datasets/llamafactory/dpo_en_demo.json");
        JsonNode all = new ObjectMapper().readTree(file.toFile());
        List<Sft.Example> examples = new ArrayList<>();
        for (JsonNode row : all) {
            JsonNode turns = row.get("conversations");
            String prompt = turns.get(turns.size() - 1).get("value").asText();
            String reply = row.get("chosen").get("value").asText();
            byte[] p = ("User: " + prompt + "\nAssistant: ").getBytes(StandardCharsets.UTF_8), c = reply.getBytes(StandardCharsets.UTF_8);
            int pn = Math.min(p.length, 48), cn = Math.min(c.length, 80);   // short rows keep the test to seconds
            long[] ids = new long[pn + cn], mask = new long[pn + cn];
            for (int i = 0; i < pn; i++) ids[i] = p[p.length - pn + i] & 0xff;
            for (int i = 0; i < cn; i++) {
                ids[pn + i] = c[i] & 0xff;
                mask[pn + i] = 1;
            }
            examples.add(new Sft.Example(ids, mask));
        }
        List<List<Sft.Example>> split = DataSplit.of(examples, 0.1, 1);
        try (CausalLM model = Models.create(ModelConfig.llama(256, 64, 2, 4, 2, 128, 256), DType.F32, 1)) {
            TrainerConfig c = new TrainerConfig(60, 1, 16, 1, 3e-3, "cosine", 5, 0, 0.01, 0.9, 0.999, 1e-8, 1.0, 1, 10, 30, 0, 1, "stop", false);
            Trainer<Sft.Row> t = new Trainer<>(model, new Sft(), Sft.pack(split.get(0), 256), Sft.rows(split.get(1), 256), c,
                    new RunDirectory(tmp), GradientSync.SINGLE_PROCESS, null, null);
            double before = t.evaluate();
            Trainer.Result r = t.train(false);
            System.out.printf("real corpus: held-out loss %.3f -> %.3f, last train loss %.3f%n", before, r.evalLoss(), r.lastLoss());
            assertTrue(before > 5.0, "untrained held-out loss " + before);
            assertTrue(r.evalLoss() < 3.6, "held-out loss " + before + " -> " + r.evalLoss());
            assertTrue(r.lastLoss() < 3.6, "train loss " + r.lastLoss());
        }
    }
}
