package io.tether.cli;

import static io.tether.cli.Bench.*;

import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.ProcessMemory;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.Models;
import io.tether.model.ModelConfig;

/**
 * Load time and memory of a real-size checkpoint: a random-weight bf16 checkpoint of a published model's shape,
 * sharded as HF shards it, written once to a temporary directory, then loaded frozen (bf16, memory-mapped) and
 * trainable (fp32 masters). Each step runs in a JVM of its own so that VmHWM is that step's alone: in one process
 * the peak of writing the checkpoint would hide the peak of loading it.
 */
@Command(name = "load", mixinStandardHelpOptions = true,
        description = {"Load time and RSS (VmRSS, VmHWM) of a random-weight bf16 sharded checkpoint of a real model's shape,",
                "loaded frozen (bf16, memory-mapped) and trainable (fp32 masters), each in a fresh JVM."})
final class BenchLoad implements Callable<Integer> {
    @ParentCommand BenchCommand bench;

    @Option(names = "--shape", required = true, description = "qwen3-1.7b or gemma3-1b") String shape;
    @Option(names = "--dir", description = "where the checkpoint is written once (default: <tmp>/tether-bench-load-<shape>-<shard bytes>)") Path dir;
    /** 1 GB: both shapes then come in several shards (at HF's 5 GB default Gemma 3 1B is one file). */
    @Option(names = "--shard-bytes", defaultValue = "1000000000", description = "max_shard_size in bytes (default: ${DEFAULT-VALUE})") long shardBytes;
    @Option(names = "--tokens", defaultValue = "16", description = "tokens of the forward after each load (default: ${DEFAULT-VALUE})") int tokens;
    @Mixin JsonFile out;

    /** The published config.json of each shape (the fields Tether reads). */
    static ModelConfig config(String shape) {
        ObjectNode j = JSON.createObjectNode();
        switch (shape) {
            case "qwen3-1.7b" -> {
                // Qwen/Qwen3-1.7B config.json
                j.putArray("architectures").add("Qwen3ForCausalLM");
                j.put("model_type", "qwen3");
                j.put("vocab_size", 151936);
                j.put("hidden_size", 2048);
                j.put("num_hidden_layers", 28);
                j.put("num_attention_heads", 16);
                j.put("num_key_value_heads", 8);
                j.put("head_dim", 128);
                j.put("intermediate_size", 6144);
                j.put("max_position_embeddings", 40960);
                j.put("rms_norm_eps", 1e-6);
                j.put("rope_theta", 1000000.0);
                j.putNull("rope_scaling");
                j.put("hidden_act", "silu");
                j.put("attention_bias", false);
                j.put("tie_word_embeddings", true);
                j.put("use_sliding_window", false);
                j.putNull("sliding_window");
                j.put("max_window_layers", 28);
                j.put("bos_token_id", 151643);
                j.put("eos_token_id", 151645);
            }
            case "gemma3-1b" -> {
                // google/gemma-3-1b-pt config.json
                j.putArray("architectures").add("Gemma3ForCausalLM");
                j.put("model_type", "gemma3_text");
                j.put("vocab_size", 262144);
                j.put("hidden_size", 1152);
                j.put("num_hidden_layers", 26);
                j.put("num_attention_heads", 4);
                j.put("num_key_value_heads", 1);
                j.put("head_dim", 256);
                j.put("intermediate_size", 6912);
                j.put("max_position_embeddings", 32768);
                j.put("rms_norm_eps", 1e-6);
                j.put("rope_theta", 1000000.0);
                j.put("rope_local_base_freq", 10000.0);
                j.putNull("rope_scaling");
                j.put("hidden_activation", "gelu_pytorch_tanh");
                j.put("query_pre_attn_scalar", 256);
                j.put("sliding_window", 512);
                j.put("sliding_window_pattern", 6);
                j.putNull("attn_logit_softcapping");
                j.putNull("final_logit_softcapping");
                j.put("attention_bias", false);
                j.put("tie_word_embeddings", true);
                j.put("bos_token_id", 2);
                j.put("eos_token_id", 1);
                j.put("pad_token_id", 0);
            }
            default -> throw new ConfigException("option '--shape': expected qwen3-1.7b or gemma3-1b, got '" + shape + "'");
        }
        j.put("initializer_range", 0.02);
        j.put("torch_dtype", "bfloat16");
        return ModelConfig.parse(j, Path.of("<" + shape + " config>"));
    }

    @Override
    public Integer call() throws IOException, InterruptedException {
        ModelConfig config = config(shape);
        Path d = dir != null ? dir : Path.of(System.getProperty("java.io.tmpdir"), "tether-bench-load-" + shape + "-" + shardBytes);
        ObjectNode r = JSON.createObjectNode();
        r.put("benchmark", "load");
        r.put("shape", shape);
        putCpu(r);
        r.put("cores", Runtime.getRuntime().availableProcessors());
        r.put("checkpoint", d.toString());
        r.put("max_shard_bytes", shardBytes);
        if (!matches(d, config)) r.set("write", child("write", d));
        else r.put("write", "reused");
        try (var files = Files.list(d)) {
            List<Path> shards = files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
            r.put("shards", shards.size());
            long bytes = 0;
            for (Path p : shards) bytes += Files.size(p);
            r.put("checkpoint_mb", round(bytes / 1048576.0));
        }
        r.set("baseline", child("baseline", d));
        r.set("frozen", child("frozen", d));
        r.set("trainable", child("trainable", d));
        report(bench.root.spec.commandLine().getOut(), out.path, r);
        return 0;
    }

    /** Whether {@code dir} already holds this shape's checkpoint (written by an earlier run). */
    private static boolean matches(Path dir, ModelConfig config) throws IOException {
        Path c = dir.resolve("config.json");
        if (!Files.isRegularFile(c)) return false;
        JsonNode stored = JSON.readTree(c.toFile());
        ObjectNode expected = config.json().deepCopy();
        expected.put("torch_dtype", "bfloat16");
        return stored.equals(expected);
    }

    /** Runs one step in a fresh JVM with this one's options and returns the JSON line it prints. */
    private ObjectNode child(String step, Path d) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(BenchLoad.class.getName());
        cmd.add(step);
        cmd.add(shape);
        cmd.add(d.toString());
        cmd.add(Long.toString(shardBytes));
        cmd.add(Integer.toString(tokens));
        cmd.add(Integer.toString(Torch.threads()));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String text;
        try (InputStream in = p.getInputStream()) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
        }
        int code = p.waitFor();
        if (code != 0) throw new IllegalStateException("bench load step '" + step + "' exited with " + code + ": " + text);
        String last = text.substring(text.lastIndexOf('\n') + 1);
        return (ObjectNode) JSON.readTree(last);
    }

    /** A child step: prints one JSON line with its timings and this process's memory. */
    public static void main(String[] args) throws Exception {
        String step = args[0];
        ModelConfig config = config(args[1]);
        Path d = Path.of(args[2]);
        long shardBytes = Long.parseLong(args[3]);
        int tokens = Integer.parseInt(args[4]);
        Torch.init(Integer.parseInt(args[5]));
        ObjectNode o = JSON.createObjectNode();
        long t0 = System.nanoTime();
        switch (step) {
            case "write" -> {
                Models.createCheckpoint(config, d, DType.BF16, 0, shardBytes);
                o.put("seconds", round3((System.nanoTime() - t0) / 1e9));
            }
            case "baseline" -> {
                // The JVM plus libtorch with a tensor made: the floor under both loads.
                try (Tensor t = Tensors.zeros(DType.F32, 4)) {
                    o.put("note", "JVM + libtorch, no model");
                }
            }
            case "frozen", "trainable" -> {
                boolean frozen = step.equals("frozen");
                Models.LoadedModel m = frozen ? Models.loadFrozen(d) : Models.load(d, DType.F32);
                o.put("load_seconds", round3((System.nanoTime() - t0) / 1e9));
                o.put("dtype", m.model().dtype().toString());
                o.put("parameters", m.model().parameterCount());
                o.put("rss_after_load_mb", round(ProcessMemory.residentMb()));
                o.put("hwm_after_load_mb", round(ProcessMemory.peakResidentMb()));
                long[] ids = new long[tokens];
                for (int i = 0; i < tokens; i++) ids[i] = (i * 7919L + 13) % config.vocabSize();
                long f0 = System.nanoTime();
                try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                    Tensor logits = m.model().forward(Tensors.longs(ids, 1, tokens));
                    double sum = Tensors.toDoubles(logits.to(DType.F64.scalarType).sum())[0];
                    if (!Double.isFinite(sum)) throw new IllegalStateException("non-finite logits after the " + step + " load");
                }
                o.put("forward_seconds", round3((System.nanoTime() - f0) / 1e9));
                o.put("forward_tokens", tokens);
                // Mapped pages the forward touched are resident now (clean, shared with the page cache).
                o.put("rss_after_forward_mb", round(ProcessMemory.residentMb()));
                m.close();
            }
            default -> throw new IllegalArgumentException("unknown step " + step);
        }
        o.put("rss_mb", round(ProcessMemory.residentMb()));
        o.put("hwm_mb", round(ProcessMemory.peakResidentMb()));
        System.out.println(JSON.writeValueAsString(o));
        System.out.flush();
        System.exit(0);
    }
}
